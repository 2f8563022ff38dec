//! `firebreak classify` end to end: the real binary on the sample events, from the workspace
//! root so the default policy path resolves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn firebreak(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

#[test]
fn classify_json_prints_one_object_with_what_triage_would_decide() {
    let out = firebreak(&[
        "classify",
        "--json",
        "events/sns-metric-alarm.json",
        "events/eventbridge-metric-ok.json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"signals": [
            {"alarm_name": "articles-api-5xx-rate", "state": "ALARM", "previous_state": "OK",
             "changed_at": "2026-03-14T14:35:00Z", "service": "prod/articles-api", "severity": "SEV2"},
            {"alarm_name": "articles-api-5xx-rate", "state": "OK", "previous_state": "ALARM",
             "changed_at": "2026-03-14T15:00:00Z", "service": "prod/articles-api", "severity": "SEV2"},
        ]})
    );
}

#[test]
fn classify_prints_a_table_by_default() {
    let out = firebreak(&["classify", "events/sns-batch-2-records.json"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("articles-api-db-connections") && text.contains("SEV2"),
        "{text}"
    );
}

#[test]
fn classify_exits_2_naming_the_file_and_the_field_on_bad_input() {
    let out = firebreak(&[
        "classify",
        "--json",
        "events/invalid/lambda-action-missing-state.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("lambda-action-missing-state.json"), "{err}");
    assert!(err.contains("alarmData.state"), "{err}");
}

#[test]
fn classify_refuses_a_policy_file_that_does_not_exist() {
    let out = firebreak(&[
        "classify",
        "--policy",
        "runbooks/nope.yaml",
        "events/sns-metric-alarm.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("runbooks/nope.yaml"));
}
