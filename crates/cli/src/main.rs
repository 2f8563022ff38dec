//! `firebreak`: drills, offline classification and queries, runbooks, and the incidents in the
//! store (AWS, or the emulator through `AWS_ENDPOINT_URL`).

mod classify;
mod query;

use clap::{Parser, Subcommand};

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
    /// What triage would decide for alarm event files, offline
    Classify(classify::ClassifyArgs),
    /// Run a Logs Insights query over local log files, or only check it
    Query(query::QueryArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Classify(args) => classify::run(&args),
        Command::Query(args) => query::run(&args),
    };
    match code {
        Ok(c) => std::process::ExitCode::from(u8::try_from(c).unwrap_or(1)),
        Err(e) => {
            eprintln!("firebreak: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
