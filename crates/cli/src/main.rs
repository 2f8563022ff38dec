//! `firebreak`: drills, offline classification and queries, runbooks, and the incidents in the
//! store (AWS, or the emulator through `AWS_ENDPOINT_URL`).

mod approve;
mod autonomy_cmd;
mod aws_ctx;
mod classify;
mod drill_cmd;
mod incidents_cmd;
mod query;
mod runbook_cmd;

use anyhow::Context;
use clap::{Parser, Subcommand};
use firebreak_core::ports::SystemClock;

#[derive(Debug, Parser)]
#[command(
    name = "firebreak",
    version,
    about = "Automated incident response for ECS services on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a recorded incident through the whole pipeline, offline
    Drill(drill_cmd::DrillArgs),
    /// What triage would decide for alarm event files, offline
    Classify(classify::ClassifyArgs),
    /// Run a Logs Insights query over local log files, or only check it
    Query(query::QueryArgs),
    /// Lint and render runbooks
    #[command(subcommand)]
    Runbook(runbook_cmd::RunbookCmd),
    /// Approve a remediation that is awaiting approval
    Approve(approve::ApproveArgs),
    /// How far each runbook's actions have earned their way out of dry-run
    #[command(subcommand)]
    Autonomy(autonomy_cmd::AutonomyCmd),
    #[command(flatten)]
    Incidents(incidents_cmd::IncidentsCmd),
}

async fn store_command(command: Command) -> anyhow::Result<i32> {
    let ctx = aws_ctx::from_env().await?;
    match command {
        Command::Approve(args) => approve::run(&args, &ctx.store, &ctx.bus, &ctx.identity).await,
        Command::Incidents(cmd) => {
            // the same variables, read the same way, as the functions
            let env = firebreak_aws::Environment::from_env()?;
            let runbooks = env.runbooks()?;
            let ictx = incidents_cmd::IncidentsCtx {
                store: &ctx.store,
                notifier: &ctx.notifier,
                bus: &ctx.bus,
                clock: &SystemClock,
                runbooks: runbooks.runbooks(),
                settings: &env.settings,
                metrics_namespace: &env.metrics_namespace,
            };
            incidents_cmd::run(
                &cmd,
                &ictx,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
            .await
        }
        _ => Ok(2),
    }
}

fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Drill(args) => drill_cmd::run(&args),
        Command::Classify(args) => classify::run(&args),
        Command::Query(args) => query::run(&args),
        Command::Runbook(cmd) => runbook_cmd::run(&cmd),
        Command::Autonomy(cmd) => {
            autonomy_cmd::run(&cmd, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())
        }
        store @ (Command::Approve(_) | Command::Incidents(_)) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?
                .block_on(store_command(store))
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("firebreak: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
