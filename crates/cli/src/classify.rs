//! `firebreak classify FILE...`: what triage would decide for the alarms in event files (SNS,
//! EventBridge or direct Lambda alarm action JSON), offline: severity, the rule that decided it,
//! and the service the incident would be keyed on.

use anyhow::Context;
use chrono::SecondsFormat;
use firebreak_core::intake::parse_event_str;
use firebreak_core::model::signal::AlarmSignal;
use firebreak_core::policy::{Classification, SeverityPolicy, SHIPPED_POLICY_YAML};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The policy used when `--policy` is not given and this file exists (relative to the current
/// directory); otherwise the copy embedded at build time.
pub const DEFAULT_POLICY_PATH: &str = "runbooks/policy.yaml";

/// Exit status for bad input (an event or policy file that does not parse).
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct ClassifyArgs {
    /// Event files: SNS, EventBridge or Lambda alarm action JSON.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Severity policy [default: runbooks/policy.yaml, else the embedded copy].
    #[arg(long, value_name = "PATH")]
    pub policy: Option<PathBuf>,
}

/// Runs the subcommand on stdout and stderr; returns the exit status (0, or 2 on bad input).
///
/// # Errors
/// Only when writing the output fails.
pub fn run(args: &ClassifyArgs) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_to(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with the output streams given.
///
/// # Errors
/// Only when writing to `out` or `err` fails.
pub fn run_to(args: &ClassifyArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let policy = match load_policy(args.policy.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };

    // Read everything first: on bad input nothing is printed on stdout, so `--json` output is
    // either one complete object or nothing.
    let mut rows: Vec<(PathBuf, AlarmSignal)> = Vec::new();
    let mut failed = false;
    for file in &args.files {
        match read_signals(file) {
            Ok(signals) => rows.extend(signals.into_iter().map(|s| (file.clone(), s))),
            Err(e) => {
                writeln!(err, "error: {e:#}")?;
                failed = true;
            }
        }
    }
    if failed {
        return Ok(EXIT_BAD_INPUT);
    }

    let classified: Vec<(PathBuf, AlarmSignal, Classification)> = rows
        .into_iter()
        .map(|(f, s)| {
            let c = policy.classify(&s);
            (f, s, c)
        })
        .collect();

    if args.json {
        serde_json::to_writer_pretty(&mut *out, &json_output(&classified))?;
        writeln!(out)?;
    } else {
        write_table(out, &classified)?;
    }
    Ok(0)
}

fn load_policy(explicit: Option<&Path>) -> anyhow::Result<SeverityPolicy> {
    match explicit {
        Some(path) => Ok(SeverityPolicy::load(path)?),
        None if Path::new(DEFAULT_POLICY_PATH).exists() => Ok(SeverityPolicy::load(DEFAULT_POLICY_PATH)?),
        None => Ok(SeverityPolicy::from_yaml_str(SHIPPED_POLICY_YAML)?),
    }
}

fn read_signals(file: &Path) -> anyhow::Result<Vec<AlarmSignal>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}: cannot read", file.display()))?;
    parse_event_str(&text).with_context(|| file.display().to_string())
}

/// `{"signals": [{alarm_name, state, previous_state, changed_at, service, severity}]}`; absent
/// values are `null`, `changed_at` is RFC 3339 UTC.
fn json_output(rows: &[(PathBuf, AlarmSignal, Classification)]) -> Value {
    let signals: Vec<Value> = rows
        .iter()
        .map(|(_, s, c)| {
            json!({
                "alarm_name": s.alarm_name,
                "state": s.state.as_str(),
                "previous_state": s.previous_state.map(|p| p.as_str()),
                "changed_at": s.changed_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "service": c.service,
                "severity": c.severity.as_str(),
            })
        })
        .collect();
    json!({ "signals": signals })
}

fn write_table(out: &mut dyn Write, rows: &[(PathBuf, AlarmSignal, Classification)]) -> std::io::Result<()> {
    const HEAD: [&str; 9] = [
        "FILE",
        "ALARM",
        "STATE",
        "FROM",
        "CHANGED (UTC)",
        "SEVERITY",
        "RULE",
        "SERVICE",
        "RUNBOOK",
    ];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|(f, s, c)| {
            [
                f.file_name()
                    .map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().to_string()),
                s.alarm_name.clone(),
                s.state.as_str().to_string(),
                s.previous_state.map_or("-", |p| p.as_str()).to_string(),
                s.changed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                c.severity.as_str().to_string(),
                c.rule.clone().unwrap_or_else(|| "-".to_string()),
                match &c.ecs {
                    Some(ecs) if ecs.to_string() != c.service => format!("{} (ecs {ecs})", c.service),
                    _ => c.service.clone(),
                },
                c.runbook_hint.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    let mut widths = HEAD.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, row: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &HEAD)?;
    for row in &cells {
        line(out, &row.each_ref().map(String::as_str))?;
    }
    for (f, s, c) in rows {
        for note in &c.notes {
            writeln!(out, "note: {} ({}): {note}", s.alarm_name, f.display())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn args(files: &[&str], json: bool) -> ClassifyArgs {
        ClassifyArgs {
            files: files.iter().map(|f| root().join("events").join(f)).collect(),
            json,
            policy: Some(root().join("runbooks/policy.yaml")),
        }
    }

    fn run_captured(a: &ClassifyArgs) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_to(a, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn json_output_is_one_object_with_a_row_per_signal() {
        let (code, out, err) = run_captured(&args(
            &["sns-batch-2-records.json", "lambda-action-composite-ok.json"],
            true,
        ));
        assert_eq!((code, err.as_str()), (0, ""));
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            json!({"signals": [
                {"alarm_name": "articles-api-5xx-rate", "state": "ALARM", "previous_state": "OK",
                 "changed_at": "2026-03-14T14:35:00Z", "service": "prod/articles-api", "severity": "SEV2"},
                {"alarm_name": "articles-api-db-connections", "state": "ALARM", "previous_state": "OK",
                 "changed_at": "2026-03-14T14:35:20Z", "service": "prod/articles-api", "severity": "SEV2"},
                {"alarm_name": "articles-api-degraded", "state": "OK", "previous_state": "ALARM",
                 "changed_at": "2026-03-14T15:00:00Z", "service": "prod/articles-api", "severity": "SEV2"},
            ]})
        );
    }

    #[test]
    fn absent_previous_state_is_null_not_missing() {
        let dir = std::env::temp_dir().join(format!("firebreak-classify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("minimal.json");
        let message = json!({"AlarmName": "orders-cpu", "NewStateValue": "ALARM",
            "StateChangeTime": "2026-03-14T15:35:00.000+0100"});
        std::fs::write(
            &file,
            json!({"Records": [{"Sns": {"MessageId": "m", "Message": message.to_string()}}]}).to_string(),
        )
        .unwrap();
        let a = ClassifyArgs {
            files: vec![file],
            json: true,
            policy: Some(root().join("runbooks/policy.yaml")),
        };
        let (code, out, _) = run_captured(&a);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, 0);
        let v: Value = serde_json::from_str(&out).unwrap();
        let row = &v["signals"][0];
        assert_eq!(row.get("previous_state"), Some(&Value::Null));
        assert_eq!(row["changed_at"], "2026-03-14T14:35:00Z");
        assert_eq!(row["service"], "orders-cpu");
        assert_eq!(row["severity"], "SEV3");
    }

    #[test]
    fn table_output_has_a_header_and_a_line_per_signal() {
        let (code, out, _) = run_captured(&args(&["eventbridge-composite-alarm.json"], false));
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("FILE") && lines[0].contains("SEVERITY"),
            "{out}"
        );
        assert!(lines[1].contains("articles-api-degraded"), "{out}");
        assert!(
            lines[1].contains("SEV2") && lines[1].contains("tag:severity"),
            "{out}"
        );
        assert!(lines[1].trim_end().ends_with("db-connection-pool"), "{out}");
    }

    #[test]
    fn an_ignored_severity_tag_is_reported_under_the_table() {
        let dir = std::env::temp_dir().join(format!("firebreak-classify-note-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tagged.json");
        let text = std::fs::read_to_string(root().join("events/eventbridge-composite-alarm.json"))
            .unwrap()
            .replace("\"severity\": \"SEV2\"", "\"severity\": \"whenever\"");
        std::fs::write(&file, text).unwrap();
        let a = ClassifyArgs {
            files: vec![file],
            json: false,
            policy: Some(root().join("runbooks/policy.yaml")),
        };
        let (code, out, _) = run_captured(&a);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(code, 0);
        assert!(out.contains("degraded-by-name"), "{out}");
        assert!(
            out.contains("note: articles-api-degraded") && out.contains("whenever"),
            "{out}"
        );
    }

    #[test]
    fn a_bad_event_file_exits_2_naming_the_file_and_the_field_and_prints_nothing() {
        let (code, out, err) = run_captured(&args(
            &["sns-metric-alarm.json", "invalid/sns-unknown-state.json"],
            true,
        ));
        assert_eq!(code, EXIT_BAD_INPUT);
        assert_eq!(out, "");
        assert!(err.contains("sns-unknown-state.json"), "{err}");
        assert!(err.contains("Records[0].Sns.Message.NewStateValue"), "{err}");
    }

    #[test]
    fn a_missing_explicit_policy_is_bad_input_but_no_policy_falls_back_to_the_embedded_one() {
        let mut a = args(&["sns-metric-alarm.json"], true);
        a.policy = Some(root().join("runbooks/no-such-policy.yaml"));
        let (code, _, err) = run_captured(&a);
        assert_eq!(code, EXIT_BAD_INPUT);
        assert!(err.contains("no-such-policy.yaml"), "{err}");
        // Tests run in the crate directory, where runbooks/policy.yaml does not exist.
        a.policy = None;
        let (code, out, _) = run_captured(&a);
        assert_eq!(code, 0);
        assert!(out.contains("\"SEV2\""), "{out}");
    }
}
