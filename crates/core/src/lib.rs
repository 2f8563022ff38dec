//! Firebreak's domain: alarm signals, severity policy, incidents and their timeline, runbooks,
//! guardrails, postmortems and metrics, the ports the use-cases need, and the use-cases
//! themselves. Nothing here knows an AWS SDK type.
//!
//! The folders follow the architecture (docs/architecture.md has the code map):
//! - [`model`]: the vocabulary every other part speaks (signal, severity, incident, timeline,
//!   pipeline events, remediation actions, settings);
//! - [`intake`]: the three alarm shapes, normalised into a signal;
//! - [`policy`]: the severity policy;
//! - [`runbook`]: runbooks as code: model, loading, lint, templating, evidence matching, rendering;
//! - [`ports`]: the traits the stages reach the world through, and the one way to change an
//!   incident under contention;
//! - [`stages`]: the use-cases (triage, diagnose, remediate, resolve, sweeper, people's commands);
//!   the only code that writes the timeline;
//! - [`report`]: what is computed from a finished timeline (postmortem, stage times, MTTR);
//! - [`adapters`]: in-memory ports and the local Logs Insights backend;
//! - [`drill`]: the offline composition root that replays a recorded incident.

pub mod adapters;
pub mod drill;
pub mod error;
pub mod intake;
pub mod model;
pub mod policy;
pub mod ports;
pub mod report;
pub mod runbook;
pub mod stages;

pub use error::{Error, Result};
