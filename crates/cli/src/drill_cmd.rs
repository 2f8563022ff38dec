//! `firebreak drill DIR [--json] [--check]`: replays a recorded incident through the whole
//! pipeline offline (the contract in DESIGN.md, "Drills"); `firebreak drill coverage`: which
//! runbooks (and alarms) a passing drill exercises; `firebreak drill record`: a drill from a
//! real incident.

use anyhow::Context;
use firebreak_core::drill::{self, DrillEnv, LoadedScenario};
use firebreak_core::model::text::terminal;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::embedded;
use firebreak_core::runbook::RunbookSet;
use std::io::Write;
use std::path::PathBuf;

#[path = "drill_record.rs"]
pub mod record;

/// Exit status when `--check` finds the outcome differs from `expect`.
pub const EXIT_CHECK_FAILED: i32 = 1;
/// Exit status for an invalid scenario, event, log, policy or runbook file.
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DrillArgs {
    #[command(subcommand)]
    pub sub: Option<DrillSub>,
    /// The scenario directory (holding scenario.yaml).
    #[arg(required = true)]
    pub dir: Option<PathBuf>,
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

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DrillSub {
    /// Which runbooks a passing drill exercises, and for alarms (as `aws cloudwatch
    /// describe-alarms` prints them) the runbook each would use; exits 1 when something is not
    /// covered
    Coverage(CoverageArgs),
    /// Write a drill directory from a real incident: its alarm events, the ECS fleet, the logs of
    /// the diagnosis window and the metrics it read, `expect` set to the real outcome
    Record(record::RecordArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CoverageArgs {
    /// `aws cloudwatch describe-alarms --output json` (each alarm may add `Tags: [{Key, Value}]`).
    #[arg(long, value_name = "FILE", conflicts_with = "from_cloudwatch")]
    pub alarms: Option<PathBuf>,
    /// Read every alarm of the account and region from CloudWatch (DescribeAlarms and
    /// ListTagsForResource, with the usual AWS credentials; `AWS_ENDPOINT_URL` for an emulator).
    #[arg(long)]
    pub from_cloudwatch: bool,
    /// The drills [default: every directory under events/scenarios].
    #[arg(long, value_name = "DIR", num_args = 1..)]
    pub drills: Vec<PathBuf>,
    /// Print one JSON object instead of the account.
    #[arg(long)]
    pub json: bool,
    /// Runbook directory [default: the shipped runbooks, embedded].
    #[arg(long, value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
}

/// The severity policy (a file, else the shipped one) and the runbooks (a directory, else the
/// shipped ones, embedded) a drill runs with.
///
/// # Errors
/// The first that does not load, naming the file.
pub fn load_env(
    policy: Option<&std::path::Path>,
    runbooks: Option<&std::path::Path>,
) -> Result<(SeverityPolicy, RunbookSet), firebreak_core::Error> {
    let policy = match policy {
        Some(p) => SeverityPolicy::load(p)?,
        None => SeverityPolicy::shipped()?,
    };
    let runbooks = match runbooks {
        Some(d) => RunbookSet::load_dir(d)?,
        None => RunbookSet::from_embedded(embedded::FILES)?,
    };
    Ok((policy, runbooks))
}

/// The single-threaded runtime the offline commands run on.
///
/// # Errors
/// When it cannot be started.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
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
    match &args.sub {
        Some(DrillSub::Coverage(c)) => return coverage(c, out, err),
        Some(DrillSub::Record(r)) => return record::run(r, out, err),
        None => {}
    }
    let Some(dir) = &args.dir else {
        writeln!(err, "error: name the drill's directory (firebreak drill DIR)")?;
        return Ok(EXIT_BAD_INPUT);
    };
    let loaded = match LoadedScenario::load(dir) {
        Ok(l) => l,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let (policy, runbooks) = match load_env(args.policy.as_deref(), args.runbooks.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let runtime = runtime()?;
    let report = match runtime.block_on(drill::run(
        &loaded,
        &DrillEnv {
            policy: &policy,
            runbooks: &runbooks,
        },
    )) {
        Ok(r) => r,
        Err(e) => {
            writeln!(err, "error: {}: {e}", dir.display())?;
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
                    dir.display()
                )?;
                return Ok(EXIT_BAD_INPUT);
            }
            Some(expect) => {
                let diffs = drill::check(&report, expect);
                if !diffs.is_empty() {
                    writeln!(err, "check failed: {}", dir.display())?;
                    for d in diffs {
                        writeln!(err, "  {d}")?;
                    }
                    return Ok(EXIT_CHECK_FAILED);
                }
                writeln!(err, "check passed: {}", dir.display())?;
            }
        }
    }
    Ok(0)
}

/// `firebreak drill coverage`.
fn coverage(args: &CoverageArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let (policy, runbooks) = match load_env(None, args.runbooks.as_deref()) {
        Ok(x) => x,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let runtime = runtime()?;
    let alarms = match &args.alarms {
        None if args.from_cloudwatch => {
            let listed = runtime.block_on(async {
                let clients = firebreak_aws::Clients::from_env().await;
                firebreak_aws::CloudWatchAlarmStatus::new(clients.cloudwatch())
                    .all_alarms()
                    .await
            });
            match listed {
                Ok(a) => Some(a),
                Err(e) => {
                    writeln!(err, "error: reading the alarms from CloudWatch: {e}")?;
                    return Ok(EXIT_BAD_INPUT);
                }
            }
        }
        None => None,
        Some(f) => match drill::coverage::read_alarms(f) {
            Ok(a) => Some(a),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(EXIT_BAD_INPUT);
            }
        },
    };
    let dirs = if args.drills.is_empty() {
        let root = PathBuf::from("events/scenarios");
        let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&root) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("scenario.yaml").is_file())
                .collect(),
            Err(e) => {
                writeln!(
                    err,
                    "error: {}: {e}; name the drills with --drills DIR...",
                    root.display()
                )?;
                return Ok(EXIT_BAD_INPUT);
            }
        };
        dirs.sort();
        dirs
    } else {
        args.drills.clone()
    };
    let env = DrillEnv {
        policy: &policy,
        runbooks: &runbooks,
    };
    let runs = runtime.block_on(drill::coverage::run_drills(&dirs, &env));
    let report = drill::coverage::coverage(&runbooks, runs, alarms.as_deref());
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", terminal(&drill::coverage::render_text(&report)))?;
    }
    Ok(if report.complete() { 0 } else { EXIT_CHECK_FAILED })
}
