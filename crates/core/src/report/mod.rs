//! What is computed from an incident and its timeline: the postmortem draft, the stage times,
//! MTTR and its EMF metrics. Pure functions; nothing here writes.

pub mod autonomy;
pub mod metrics;
pub mod oncall;
pub mod page;
pub mod postmortem;
