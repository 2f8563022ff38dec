//! Firebreak's domain: alarm signals, severity policy, incidents and their timeline, runbooks,
//! guardrails, postmortems and metrics, the ports the use-cases need, and the use-cases
//! themselves. Nothing here knows an AWS SDK type.

pub mod error;
pub mod incident;
pub mod local_logs;
pub mod memory;
pub mod ports;
pub mod settings;
pub mod severity;
pub mod signal;
pub mod timeline;

pub use error::{Error, Result};
pub mod diagnose;
pub mod duration;
pub mod findings;
pub mod lint;
pub mod pipeline;
pub mod remedy;
pub mod render;
pub mod runbook;
pub mod template;
