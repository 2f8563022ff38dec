//! The store-backed commands read their configuration as the functions do
//! (`firebreak_aws::Environment`): a runbook directory or a bad value is honoured or named,
//! before anything is read from AWS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::process::Command;

fn incidents_with(vars: &[(&str, &str)]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_firebreak"));
    c.arg("incidents")
        .env_clear()
        .env("TABLE_NAME", "fb-env-test")
        .env("AWS_REGION", "us-east-1")
        // nothing listens here: a command that got past its configuration would fail on it
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_honours_the_runbook_directory_the_functions_read() {
    let (code, err) = incidents_with(&[("FIREBREAK_RUNBOOKS_DIR", "/definitely/not/runbooks")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/definitely/not/runbooks"), "{err}");
}

#[test]
fn a_bad_value_is_named_before_any_aws_call() {
    for (k, v) in [
        ("DIAGNOSIS_BACKEND", "athena"),
        ("DIAGNOSIS_LOCAL_MAX_EVENTS", "lots"),
        ("REMEDIATION_MODE", "yolo"),
    ] {
        let (code, err) = incidents_with(&[("DIAGNOSIS_BACKEND", "local"), (k, v)]);
        assert_eq!(code, 1, "{k}: {err}");
        assert!(err.contains(k) && !err.contains("dispatch failure"), "{k}: {err}");
    }
}
