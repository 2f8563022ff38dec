//! The emulator itself: the integration tests rely on DynamoDB's guarantee that transactions
//! are serializable. Plain moto does not keep it under concurrent requests (see
//! tests/moto/server.py); the server the harness starts must.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use anyhow::Result;
use firebreak_integration::{moto, workspace_root};
use std::process::Command;

#[test]
fn the_test_emulator_isolates_concurrent_dynamodb_transactions() -> Result<()> {
    let m = moto()?;
    let root = workspace_root();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/moto/transact_isolation.py"))
        .arg(m.endpoint())
        .args(["--workers", "10", "--rounds", "5", "--expect", "isolated"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("committed 50 transactions; counter version 50; log items 50"),
        "{stdout}"
    );
    Ok(())
}
