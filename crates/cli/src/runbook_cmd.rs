//! `firebreak runbook lint [DIR]` and `firebreak runbook render ID`: check runbooks before they
//! are needed, and read one as Markdown during an incident.

use firebreak_core::runbook::lint::{self, Level};
use firebreak_core::runbook::{parse_source, read_dir};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit code for findings at error level.
pub const EXIT_LINT_ERRORS: i32 = 1;
/// Exit code for an unknown runbook or an unreadable directory.
pub const EXIT_BAD_INPUT: i32 = 2;

/// The directory runbooks are read from when none is given.
pub const DEFAULT_DIR: &str = "runbooks";

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RunbookCmd {
    /// Check every runbook: queries parse, causes name existing queries, remediations are known
    /// actions with valid parameters, no two runbooks claim an alarm ambiguously. Exits 1 on
    /// errors.
    Lint {
        /// The runbook directory (every *.yaml but policy.yaml).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print {"runbooks", "errors", "warnings", "findings": [{"level","file","runbook","field","message"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Print a runbook as Markdown: trigger, impact, the exact queries, causes, resolution,
    /// prevention.
    Render {
        /// The runbook id (its file name without .yaml).
        id: String,
        /// The runbook directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Runs the command, printing to stdout and stderr. Returns the exit code.
///
/// # Errors
/// Only when writing the output fails.
pub fn run(cmd: &RunbookCmd) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, &mut stdout.lock(), &mut stderr.lock())
}

/// As [`run`], writing to `out` and `err`.
///
/// # Errors
/// Only when writing fails.
pub fn run_with(cmd: &RunbookCmd, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    match cmd {
        RunbookCmd::Lint { dir, json } => lint_cmd(dir_or_default(dir.as_deref()), *json, out, err),
        RunbookCmd::Render { id, dir } => render_cmd(id, dir_or_default(dir.as_deref()), out, err),
    }
}

fn dir_or_default(dir: Option<&Path>) -> &Path {
    dir.unwrap_or(Path::new(DEFAULT_DIR))
}

fn lint_cmd(dir: &Path, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let sources = match read_dir(dir) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "firebreak runbook lint: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let mut findings = lint::lint_sources(&sources);
    if sources.is_empty() {
        findings.push(lint::Finding::warning(
            dir.display().to_string(),
            None,
            "-",
            "no runbooks (*.yaml) found",
        ));
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings.len() - errors;
    if json {
        let v = serde_json::json!({
            "runbooks": sources.len(),
            "errors": errors,
            "warnings": warnings,
            "findings": findings,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for f in &findings {
            writeln!(out, "{f}")?;
        }
        writeln!(
            out,
            "{} runbook{} in {}: {errors} error{}, {warnings} warning{}",
            sources.len(),
            if sources.len() == 1 { "" } else { "s" },
            dir.display(),
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        )?;
    }
    Ok(if errors > 0 { EXIT_LINT_ERRORS } else { 0 })
}

fn render_cmd(id: &str, dir: &Path, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let sources = match read_dir(dir) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "firebreak runbook render: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    // render what parses even when another runbook in the directory is broken
    let mut known = Vec::new();
    for src in &sources {
        match parse_source(src) {
            Ok(rb) if rb.id == id => {
                write!(out, "{}", firebreak_core::runbook::render::render_markdown(&rb))?;
                return Ok(0);
            }
            Ok(rb) => known.push(rb.id),
            Err(f) if src.file.trim_end_matches(".yaml").trim_end_matches(".yml") == id => {
                writeln!(err, "firebreak runbook render: {f}")?;
                return Ok(EXIT_BAD_INPUT);
            }
            Err(_) => {}
        }
    }
    known.sort();
    writeln!(
        err,
        "firebreak runbook render: unknown runbook {id:?} in {}; known: {}",
        dir.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )?;
    Ok(EXIT_BAD_INPUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")
    }

    fn run_cmd(cmd: RunbookCmd) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&cmd, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn lint_of_the_shipped_runbooks_is_clean() {
        let (code, out, _) = run_cmd(RunbookCmd::Lint {
            dir: Some(shipped()),
            json: false,
        });
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("5 runbooks in") && out.contains("0 errors, 0 warnings"),
            "{out}"
        );
    }

    #[test]
    fn lint_lists_each_finding_and_exits_1() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("broken.yaml"),
            "id: broken\ntitle: Broken\ntrigger: { alarms: [\"x\"] }\nimpact: i\ninvestigation:\n  - name: q\n    query: \"fields @message | sort @timestamp sideways(\"\ncauses:\n  - id: c\n    description: d\n    signatures:\n      - pattern: { query: nope, matches: x }\n    remediation:\n      - { action: ecs-reboot }\nprevention: [p]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("policy.yaml"), "not: a runbook\n").unwrap();
        let (code, out, _) = run_cmd(RunbookCmd::Lint {
            dir: Some(dir.path().to_path_buf()),
            json: false,
        });
        assert_eq!(code, EXIT_LINT_ERRORS, "{out}");
        assert!(
            out.contains("broken.yaml: broken: investigation[q].query: line 1, column"),
            "{out}"
        );
        assert!(
            out.contains("broken.yaml: broken: causes[c].signatures[0].query: names query \"nope\""),
            "{out}"
        );
        assert!(
            out.contains("broken.yaml: broken: causes[c].remediation[0]:"),
            "{out}"
        );
        assert!(
            out.contains("1 runbook in"),
            "policy.yaml is not a runbook: {out}"
        );
        let (code, out, _) = run_cmd(RunbookCmd::Lint {
            dir: Some(dir.path().to_path_buf()),
            json: true,
        });
        assert_eq!(code, EXIT_LINT_ERRORS);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["errors"], 3);
        assert_eq!(v["findings"][0]["level"], "error");
    }

    #[test]
    fn lint_of_a_missing_directory_exits_2() {
        let (code, _, err) = run_cmd(RunbookCmd::Lint {
            dir: Some(PathBuf::from("/definitely/not/here")),
            json: false,
        });
        assert_eq!(code, EXIT_BAD_INPUT);
        assert!(err.contains("/definitely/not/here"), "{err}");
    }

    #[test]
    fn render_prints_markdown_and_names_the_known_ids_for_an_unknown_one() {
        let (code, out, _) = run_cmd(RunbookCmd::Render {
            id: "db-connection-pool".into(),
            dir: Some(shipped()),
        });
        assert_eq!(code, 0);
        assert!(out.starts_with("# Database connection pool exhausted\n"), "{out}");
        let (code, out, err) = run_cmd(RunbookCmd::Render {
            id: "nope".into(),
            dir: Some(shipped()),
        });
        assert_eq!(code, EXIT_BAD_INPUT);
        assert!(out.is_empty());
        assert!(
            err.contains("unknown runbook \"nope\"") && err.contains("high-error-rate, high-latency"),
            "{err}"
        );
    }
}
