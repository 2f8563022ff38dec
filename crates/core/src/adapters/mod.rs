//! Port implementations that need no AWS: in memory (tests, drills, offline CLI) and the local
//! Logs Insights backend and recorded metrics.

pub mod fault;
pub mod local_logs;
pub mod local_metrics;
pub mod memory;
