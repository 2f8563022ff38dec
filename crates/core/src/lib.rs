//! Firebreak's domain: alarm signals, severity policy, incidents and their timeline, runbooks,
//! guardrails, postmortems and metrics, the ports the use-cases need, and the use-cases
//! themselves. Nothing here knows an AWS SDK type.

pub mod diagnose;
pub mod drill;
pub mod duration;
pub mod embedded;
pub mod error;
pub mod findings;
pub mod guardrails;
pub mod incident;
pub mod intake;
pub mod lint;
pub mod local_logs;
pub mod manage;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod ports;
pub mod postmortem;
pub mod remediate;
pub mod remedy;
pub mod render;
pub mod resolve;
pub mod retry;
pub mod runbook;
pub mod settings;
pub mod severity;
pub mod signal;
pub mod sweeper;
pub mod template;
pub mod timeline;
pub mod triage;

pub use error::{Error, Result};
