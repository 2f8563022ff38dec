//! Port implementations that need no AWS: in memory (tests, drills, offline CLI) and the local
//! Logs Insights backend.

pub mod fault;
pub mod local_logs;
pub mod memory;
