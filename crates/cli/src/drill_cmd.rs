//! `firebreak drill DIR [--json] [--check]`: replays a recorded incident through the whole
//! pipeline offline (the contract in DESIGN.md, "Drills").

use anyhow::Context;
use firebreak_core::drill::{self, DrillEnv, LoadedScenario};
use firebreak_core::model::text::terminal;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::embedded;
use firebreak_core::runbook::RunbookSet;
use std::io::Write;
use std::path::PathBuf;

/// Exit status when `--check` finds the outcome differs from `expect`.
pub const EXIT_CHECK_FAILED: i32 = 1;
/// Exit status for an invalid scenario, event, log, policy or runbook file.
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// The scenario directory (holding scenario.yaml).
    pub dir: PathBuf,
    /// Print one JSON object (the drill contract) instead of the account.
    #[arg(long)]
    pub json: bool,
    /// Compare the outcome with the scenario's `expect`; exit 1 when it differs.
    #[arg(long)]
    pub check: bool,
    /// Severity policy file [default: the shipped policy, embedded].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Runbook directory [default: the shipped runbooks, embedded].
    #[arg(long, value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
}

/// Runs the drill, writing to stdout and stderr; returns the exit status.
///
/// # Errors
/// Only when the output cannot be written.
pub fn run(args: &DrillArgs) -> anyhow::Result<i32> {
    run_to(args, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())
}

/// As [`run`], writing to the given streams.
///
/// # Errors
/// Only when the output cannot be written.
pub fn run_to(args: &DrillArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let loaded = match LoadedScenario::load(&args.dir) {
        Ok(l) => l,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let policy = match &args.policy {
        Some(p) => SeverityPolicy::load(p),
        None => SeverityPolicy::shipped(),
    };
    let runbooks = match &args.runbooks {
        Some(d) => RunbookSet::load_dir(d),
        None => RunbookSet::from_embedded(embedded::FILES),
    };
    let (policy, runbooks) = match (policy, runbooks) {
        (Ok(p), Ok(r)) => (p, r),
        (Err(e), _) | (_, Err(e)) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let report = match runtime.block_on(drill::run(
        &loaded,
        &DrillEnv {
            policy: &policy,
            runbooks: &runbooks,
        },
    )) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {}: {e}", args.dir.display())?;
            return Ok(if e.is_retryable() { 1 } else { EXIT_BAD_INPUT });
        }
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        // alarm names, reasons and log lines reach the terminal without control characters
        write!(out, "{}", terminal(&drill::render_text(&report)))?;
    }
    if args.check {
        match &loaded.scenario.expect {
            None => {
                writeln!(
                    err,
                    "check: {} has no `expect`; nothing to compare",
                    args.dir.display()
                )?;
                return Ok(EXIT_BAD_INPUT);
            }
            Some(expect) => {
                let diffs = drill::check(&report, expect);
                if !diffs.is_empty() {
                    writeln!(err, "check failed: {}", args.dir.display())?;
                    for d in diffs {
                        writeln!(err, "  {d}")?;
                    }
                    return Ok(EXIT_CHECK_FAILED);
                }
                writeln!(err, "check passed: {}", args.dir.display())?;
            }
        }
    }
    Ok(0)
}
