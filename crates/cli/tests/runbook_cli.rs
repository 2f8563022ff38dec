#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers
//! `firebreak runbook lint|render` as a user runs them.

use std::path::PathBuf;
use std::process::Command;

fn runbooks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")
}

fn firebreak(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn shipped_runbooks_lint_clean() {
    let dir = runbooks();
    let (code, out, err) = firebreak(&["runbook", "lint", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("0 errors"), "{out}");
}

#[test]
fn lint_exits_1_listing_file_runbook_field_and_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "id: bad\ntitle: Bad\ntrigger: { alarms: [\"x\"] }\nimpact: i\ninvestigation:\n  - name: q\n    query: \"fields @message\"\ncauses:\n  - id: c\n    description: d\n    signatures:\n      - pattern: { query: q, matches: x }\n    remediation:\n      - { action: ecs-teleport }\nprevention: [p]\n",
    )
    .unwrap();
    let (code, out, _) = firebreak(&["runbook", "lint", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.yaml: bad: causes[c].remediation[0]: "), "{out}");
    assert!(out.contains("ecs-teleport"), "{out}");
}

#[test]
fn render_prints_the_runbook_and_unknown_ids_exit_2() {
    let dir = runbooks();
    let (code, out, _) = firebreak(&[
        "runbook",
        "render",
        "high-error-rate",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("# High 5xx error rate"), "{out}");
    assert!(
        out.contains("| filter @message like /database connection/"),
        "{out}"
    );
    let (code, _, err) = firebreak(&["runbook", "render", "nope", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("high-cpu"), "{err}");
}
