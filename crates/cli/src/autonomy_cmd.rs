//! `firebreak autonomy report [--drills DIR...] [--json]`: each (runbook, cause, action) with its
//! outcomes, the level it earned and what moving up takes, from the table (AWS, or the emulator
//! through `AWS_ENDPOINT_URL`) or counted from drills run in the order given.

use anyhow::Context;
use firebreak_core::drill::{self, DrillEnv};
use firebreak_core::model::settings::Settings;
use firebreak_core::model::text::terminal;
use firebreak_core::ports::IncidentStore;
use firebreak_core::report::autonomy;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AutonomyCmd {
    /// Each (runbook, cause, action): verdicts, verifications, median lead time, level, and
    /// what it takes to move up
    Report(ReportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Count the outcomes of these drills, in this order, instead of reading the table.
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub drills: Vec<PathBuf>,
    /// Print `{"records": [...]}` instead of the account.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command; returns the exit status (2 for bad input: a drill or a variable).
///
/// # Errors
/// When the output cannot be written or the table cannot be read.
pub fn run(cmd: &AutonomyCmd, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let AutonomyCmd::Report(args) = cmd;
    // the promotion policy the functions use (EARNED_* variables), so the words match them
    let settings = match Settings::from_lookup(|n| std::env::var(n).ok()) {
        Ok(s) => s,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(2);
        }
    };
    let runtime = crate::drill_cmd::runtime()?;
    let records = if args.drills.is_empty() {
        runtime.block_on(async {
            let ctx = crate::aws_ctx::from_env().await?;
            ctx.store
                .autonomy_records()
                .await
                .context("reading the autonomy records from the table")
        })?
    } else {
        let (policy, runbooks) = match crate::drill_cmd::load_env(None, None) {
            Ok(x) => x,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(2);
            }
        };
        let env = DrillEnv {
            policy: &policy,
            runbooks: &runbooks,
        };
        match runtime.block_on(drill::autonomy_from_drills(&args.drills, &env)) {
            Ok(r) => r,
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(2);
            }
        }
    };
    let report = autonomy::report(&records, &settings.remediation.earned);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            terminal(&autonomy::render_text(&report, &settings.remediation.earned))
        )?;
    }
    Ok(0)
}
