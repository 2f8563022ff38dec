//! `firebreak drill`: the JSON contract of DESIGN.md ("Drills"), --check on every shipped
//! scenario, and exit codes for failed checks and bad scenarios.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn firebreak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn scenarios() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("events/scenarios"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("scenario.yaml").exists())
        .map(|e| format!("events/scenarios/{}", e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_drill_passes_its_check() {
    let all = scenarios();
    assert!(all.len() >= 7, "{all:?}");
    for dir in all {
        let out = firebreak(&["drill", &dir, "--check"]);
        assert!(
            out.status.success(),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn json_output_has_every_contract_key_with_nulls_not_missing() {
    let out = firebreak(&["drill", "events/scenarios/seed-connection-pool", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["scenario"].is_string());
    let incidents = v["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    let inc = &incidents[0];
    for key in [
        "id",
        "service",
        "severity",
        "status",
        "cause",
        "remediations",
        "timeline",
        "metrics",
        "postmortem_markdown",
    ] {
        assert!(inc.get(key).is_some(), "missing {key}");
    }
    assert_eq!(inc["service"], "prod/articles-api");
    assert_eq!(inc["severity"], "SEV2");
    assert_eq!(inc["status"], "resolved");
    assert_eq!(inc["cause"], "db-connection-pool-exhausted");
    let rem = &inc["remediations"][0];
    assert_eq!(
        (
            rem["action"].as_str(),
            rem["mode"].as_str(),
            rem["outcome"].as_str()
        ),
        (Some("ecs-scale-out"), Some("auto"), Some("applied"))
    );
    assert!(rem["detail"].is_string());
    for e in inc["timeline"].as_array().unwrap() {
        assert!(
            e["at"].is_string() && e["kind"].is_string() && e["summary"].is_string(),
            "{e}"
        );
    }
    let m = &inc["metrics"];
    assert_eq!(m["time_to_detect_s"], 300, "alarm at 14:35, spike from 14:30");
    assert!(
        m["time_to_diagnose_s"].as_i64().unwrap() <= 60,
        "root cause within a minute of the alarm"
    );
    assert!(
        m["time_to_mitigate_s"].as_i64().unwrap() <= 120,
        "mitigation within two minutes"
    );
    assert_eq!(
        m["time_to_resolve_s"], 360,
        "the added tasks take traffic and the alarm is OK at 14:41 (people took 25 minutes)"
    );
    assert_eq!(rem["verification"], "verified");
    assert!(rem["shadow"].is_object() && rem["shadow"]["verdict"].is_null());
    assert!(inc["postmortem_markdown"]
        .as_str()
        .unwrap()
        .contains("## Action items"));

    // An incident that never resolves: the absent values are null, present as keys.
    let out = firebreak(&["drill", "events/scenarios/certificate-expiry", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inc = &v["incidents"][0];
    assert_eq!(inc["status"], "open");
    assert!(inc["cause"].is_null() && inc["postmortem_markdown"].is_null());
    for key in ["time_to_detect_s", "time_to_mitigate_s", "time_to_resolve_s"] {
        assert!(inc["metrics"].get(key).is_some_and(Value::is_null), "{key}");
    }
}

#[test]
fn a_failed_check_exits_1_naming_the_difference_and_a_bad_scenario_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let seed = root().join("events/scenarios/seed-connection-pool");
    for f in [
        "alarm.sns.json",
        "ok.eventbridge.json",
        "logs.jsonl",
        "metrics.jsonl",
    ] {
        std::fs::copy(seed.join(f), dir.path().join(f)).unwrap();
    }
    let yaml = std::fs::read_to_string(seed.join("scenario.yaml"))
        .unwrap()
        .replace("severity: SEV2", "severity: SEV1");
    std::fs::write(dir.path().join("scenario.yaml"), yaml).unwrap();
    let out = firebreak(&["drill", dir.path().to_str().unwrap(), "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("severity: expected SEV1, got SEV2"), "{err}");

    std::fs::write(dir.path().join("scenario.yaml"), "description: x\nsteps: []\n").unwrap();
    let out = firebreak(&["drill", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("steps"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    std::fs::write(
        dir.path().join("scenario.yaml"),
        "description: x\nsteps:\n  - { at: 2026-03-14T14:35:00Z, event: missing.json }\n",
    )
    .unwrap();
    let out = firebreak(&["drill", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}

/// The sum of the last column of `firebreak query --json` rows.
fn query_total(query: &str, logs: &str, start: &str, end: &str) -> f64 {
    let out = firebreak(&[
        "query", query, "--logs", logs, "--start", start, "--end", end, "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let cells = row.as_array().unwrap();
            cells.last().unwrap()["value"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .sum()
}

#[test]
fn the_seed_postmortem_states_the_failed_requests_that_firebreak_query_counts() {
    let out = firebreak(&["drill", "events/scenarios/seed-connection-pool", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let md = v["incidents"][0]["postmortem_markdown"].as_str().unwrap();
    let line = md
        .lines()
        .find(|l| l.starts_with("- **Failed requests:**"))
        .unwrap_or_else(|| panic!("{md}"));
    // "- **Failed requests:** 46 between 14:30 and 14:40 (query `failed-requests`, over the
    // diagnosis window 13:35 to 14:37)."
    let words: Vec<&str> = line.split_whitespace().collect();
    let failed: f64 = words[3]
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{line}"));
    let window_at = words.iter().position(|w| *w == "window").unwrap();
    let (from, to) = (
        words[window_at + 1],
        words[window_at + 3].trim_end_matches(").").trim_end_matches(')'),
    );
    let t = |hm: &str| format!("2026-03-14T{hm}:00Z");

    let runbook: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("runbooks/high-error-rate.yaml")).unwrap(),
    )
    .unwrap();
    let step = |name: &str| {
        runbook["investigation"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["query"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let logs = "events/scenarios/seed-connection-pool/logs.jsonl";
    let counted = query_total(&step("failed-requests"), logs, &t(from), &t(to));
    assert!(failed > 0.0, "{line}");
    assert_eq!(failed, counted, "{line}");

    let rate = md.lines().find(|l| l.starts_with("- **Error rate:**")).unwrap();
    // "- **Error rate:** 17.5% of the 263 requests in that time (query `requests`)."
    let of = rate.split_whitespace().nth(6).unwrap().replace(',', "");
    let requests: f64 = of.parse().unwrap_or_else(|_| panic!("{rate}"));
    // the failed requests' span, 14:30 to 14:40, clipped to the window's end
    let in_span = query_total(&step("requests"), logs, &t("14:30"), &t(to));
    assert_eq!(requests, in_span, "{rate}");
}

#[test]
fn trust_steps_are_checked_an_approve_step_needs_an_open_incident_and_an_arn() {
    let dir = tempfile::tempdir().unwrap();
    let seed = root().join("events/scenarios/seed-connection-pool");
    for f in ["alarm.sns.json", "ok.eventbridge.json", "logs.jsonl"] {
        std::fs::copy(seed.join(f), dir.path().join(f)).unwrap();
    }
    let run = |yaml: &str| {
        std::fs::write(dir.path().join("scenario.yaml"), yaml).unwrap();
        let out = firebreak(&["drill", dir.path().to_str().unwrap(), "--json"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let head = "description: x\nlogs: logs.jsonl\necs:\n  - { cluster: prod, service: articles-api, desired: 4, running: 4, task_definition: articles-api:42 }\nservices:\n  - { alarm: \"articles-api-*\", ecs: prod/articles-api }\n";
    // a step that is two things at once
    let (code, _, err) = run(&format!(
        "{head}steps:\n  - {{ at: 2026-03-14T14:35:00Z, event: alarm.sns.json, sweep: true }}\n"
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exactly one of"), "{err}");
    // approving with no incident open
    let (code, _, err) = run(&format!(
        "{head}steps:\n  - {{ at: 2026-03-14T14:35:00Z, approve: {{ action: ecs-scale-out, by: \"arn:aws:iam::123456789012:role/oncall\" }} }}\n"
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no open incident"), "{err}");
    // approving as free text, not a verified ARN
    let (code, _, err) = run(&format!(
        "{head}settings: {{ remediation_mode: approve, allow: [prod/articles-api] }}\nsteps:\n  - {{ at: 2026-03-14T14:35:00Z, event: alarm.sns.json }}\n  - {{ at: 2026-03-14T14:38:00Z, approve: {{ action: ecs-scale-out, by: alice }} }}\n"
    ));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("approve") && err.contains("ARN"), "{err}");
    // a forged OK leaves CloudWatch as it was: the real alarm's recovery is refused while
    // CloudWatch (seeded) still has it in ALARM
    let (code, out, err) = run(&format!(
        "{head}alarms:\n  - {{ name: articles-api-5xx-rate, state: ALARM }}\nsteps:\n  - {{ at: 2026-03-14T14:35:00Z, event: alarm.sns.json, origin: forged }}\n  - {{ at: 2026-03-14T14:40:00Z, event: ok.eventbridge.json, origin: forged }}\n"
    ));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["incidents"][0]["status"], "open", "{out}");
    let kinds: Vec<&str> = v["incidents"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"refused"), "{kinds:?}");
}

#[test]
fn autonomy_report_counts_drills_in_the_order_given() {
    let out = firebreak(&[
        "autonomy",
        "report",
        "--drills",
        "events/scenarios/people-matched",
        "events/scenarios/people-contradicted",
        "events/scenarios/seed-connection-pool",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{v}");
    let r = &recs[0];
    for k in [
        "runbook",
        "cause",
        "action",
        "matched",
        "different",
        "unneeded",
        "contradicted",
        "verified",
        "ineffective",
        "median_lead_s",
        "level",
        "next_level",
        "needs",
    ] {
        assert!(r.get(k).is_some(), "missing {k}");
    }
    assert_eq!(
        (r["runbook"].as_str(), r["action"].as_str()),
        (Some("high-error-rate"), Some("ecs-scale-out"))
    );
    assert_eq!(
        (
            r["matched"].as_u64(),
            r["contradicted"].as_u64(),
            r["verified"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(r["median_lead_s"], 684);
    assert_eq!(r["level"], "dry-run");
    // the earned-autonomy drill alone earns approve
    let out = firebreak(&[
        "autonomy",
        "report",
        "--drills",
        "events/scenarios/earned-autonomy",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"][0]["level"], "approve", "{v}");
    // a directory that is not a drill: a clear error
    let out = firebreak(&["autonomy", "report", "--drills", "events/nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("events/nope"));
}

#[test]
fn coverage_places_alarms_on_runbooks_and_fails_on_what_no_passing_drill_exercises() {
    // every shipped runbook has a passing drill (make test runs this too)
    let out = firebreak(&["drill", "coverage", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runbooks = v["runbooks"].as_array().unwrap();
    assert_eq!(runbooks.len(), 5);
    assert!(runbooks.iter().all(|r| r["covered"] == true), "{v}");
    assert!(v["alarms"].is_null());

    let dir = std::env::temp_dir().join(format!("fb-coverage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let alarms = dir.join("alarms.json");
    std::fs::write(
        &alarms,
        r#"{"MetricAlarms": [
            {"AlarmName": "orders-5xx-rate", "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count"},
            {"AlarmName": "orders-cpu-high", "Namespace": "AWS/ECS", "MetricName": "CPUUtilization"},
            {"AlarmName": "nightly-batch-late", "Namespace": "Batch", "MetricName": "Lag"}],
          "CompositeAlarms": []}"#,
    )
    .unwrap();
    let a = alarms.to_str().unwrap();
    // only the seed drill: high-cpu is not exercised, and the batch alarm has no runbook
    let out = firebreak(&[
        "drill",
        "coverage",
        "--alarms",
        a,
        "--drills",
        "events/scenarios/seed-connection-pool",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["alarms"].as_array().unwrap();
    assert_eq!(
        (rows[0]["runbook"].as_str(), rows[0]["covered"].as_bool()),
        (Some("high-error-rate"), Some(true))
    );
    assert_eq!(
        (rows[1]["runbook"].as_str(), rows[1]["covered"].as_bool()),
        (Some("high-cpu"), Some(false))
    );
    assert!(rows[2]["runbook"].is_null());
    let text = firebreak(&[
        "drill",
        "coverage",
        "--alarms",
        a,
        "--drills",
        "events/scenarios/seed-connection-pool",
    ]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(
        t.contains("NONE orders-cpu-high → high-cpu")
            && t.contains("nightly-batch-late → no runbook matches"),
        "{t}"
    );
    // a file that is not DescribeAlarms output: a clear error, exit 2
    std::fs::write(&alarms, "[1, 2]").unwrap();
    let out = firebreak(&["drill", "coverage", "--alarms", a]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("describe-alarms"));
    std::fs::remove_dir_all(&dir).ok();
    // the drill contract's own command line still works
    let out = firebreak(&["drill", "events/scenarios/seed-connection-pool", "--check"]);
    assert_eq!(out.status.code(), Some(0));
}
