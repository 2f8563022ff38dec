//! `firebreak query` as a user runs it: the binary, its exit codes and its output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::io::Write;
use std::process::Command;

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

fn seed_logs() -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".jsonl").tempfile().unwrap();
    for (t, m) in [
        ("2026-03-14T14:29:00Z", "acquired database connection in 3ms"),
        ("2026-03-14T14:30:10Z", "acquired database connection in 40ms"),
        (
            "2026-03-14T14:32:00Z",
            "GET /articles/7 500 DatabaseError: connection pool exhausted, max_connections=10",
        ),
        ("2026-03-14T14:33:20Z", "waiting for database connection"),
    ] {
        writeln!(
            f,
            r#"{{"group":"/ecs/articles-api","stream":"web/1","timestamp":"{t}","message":"{m}"}}"#
        )
        .unwrap();
    }
    f
}

#[test]
fn query_over_a_drill_file_prints_cloudwatch_shaped_json() {
    let logs = seed_logs();
    let path = logs.path().to_str().unwrap();
    let (code, out, err) = firebreak(&[
        "query",
        "filter @message like /database connection/ | stats count() by bin(5m)",
        "--logs",
        path,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["results"],
        serde_json::json!([
            [{"field": "bin(5m)", "value": "2026-03-14 14:25:00.000"}, {"field": "count()", "value": "1"}],
            [{"field": "bin(5m)", "value": "2026-03-14 14:30:00.000"}, {"field": "count()", "value": "2"}]
        ])
    );
    assert_eq!(v["statistics"]["recordsMatched"], 3);
}

#[test]
fn check_accepts_a_valid_query_and_rejects_a_typo_with_exit_2() {
    assert_eq!(
        firebreak(&["query", "--check", "fields @timestamp | sort @timestamp desc"]).0,
        0
    );
    let (code, _, err) = firebreak(&["query", "--check", "fields @timestamp\n| sort @timestamp dsc"]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2, column 19"), "{err}");
}
