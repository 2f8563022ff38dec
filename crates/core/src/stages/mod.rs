//! The use-cases, each written against the ports: one module per pipeline stage, plus what
//! people do to an incident from the CLI. Only these write the timeline.

pub mod boundary;
pub mod chat;
pub mod closed_loop;
pub mod diagnose;
pub mod guardrails;
pub mod manage;
pub mod oncall;
pub mod remediate;
pub mod resolve;
pub mod sweeper;
pub mod triage;
