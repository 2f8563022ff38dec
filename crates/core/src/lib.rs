//! Firebreak's domain: alarm signals, severity policy, incidents and their timeline, runbooks,
//! guardrails, postmortems and metrics, the ports the use-cases need, and the use-cases
//! themselves. Nothing here knows an AWS SDK type.

pub mod error;
pub mod incident;
pub mod intake;
pub mod memory;
pub mod policy;
pub mod ports;
pub mod settings;
pub mod severity;
pub mod signal;
pub mod timeline;

pub mod duration;
pub mod embedded;
pub mod pipeline;
pub mod remedy;
pub mod runbook;
pub mod triage;

pub use error::{Error, Result};
