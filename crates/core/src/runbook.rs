//! Runbooks as code: the seed's structure (trigger, impact, investigation, common causes,
//! resolution, prevention) as typed data loaded from `runbooks/*.yaml`.
//!
//! This module owns the shape. Loading, linting, selection and rendering are added next to it.

use crate::duration::Span;
use crate::remedy::RemediationStep;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Stable id, also the file stem and the value of an alarm's `runbook` tag.
    pub id: String,
    pub title: String,
    pub trigger: RunbookTrigger,
    /// How this affects users (helps whoever reads it judge severity).
    pub impact: String,
    /// Default log groups for the queries, templated (`/ecs/{service_name}`).
    #[serde(default)]
    pub log_groups: Vec<String>,
    /// How far before the alarm the queries look.
    #[serde(default = "default_lookback")]
    pub lookback: Span,
    pub investigation: Vec<QueryStep>,
    /// Status checks to run besides the queries (`ecs-service`, `ecs-deployments`).
    #[serde(default)]
    pub status_checks: Vec<String>,
    #[serde(default)]
    pub causes: Vec<Cause>,
    /// Free-text resolution procedure for people (the automated part is in `causes[].remediation`).
    #[serde(default)]
    pub resolution: Vec<String>,
    /// Long-term fixes; each becomes a postmortem action item.
    #[serde(default)]
    pub prevention: Vec<String>,
    /// After a remediation is applied, the alarm should recover within this long; the sweeper
    /// escalates otherwise.
    #[serde(default = "default_verify_window")]
    pub verify_window: Span,
}

fn default_lookback() -> Span {
    Span::minutes(60)
}

fn default_verify_window() -> Span {
    Span::minutes(10)
}

/// Which alarms a runbook is for. An alarm whose `runbook` tag names the runbook always selects
/// it; otherwise any of the criteria below, and the highest `priority` wins among matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbookTrigger {
    /// Alarm-name globs (`*-5xx*`).
    pub alarms: Vec<String>,
    /// Metrics, by namespace and/or name.
    pub metrics: Vec<MetricMatch>,
    /// Tags that must all be present with these values.
    pub tags: BTreeMap<String, String>,
    pub priority: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatch {
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// A named Logs Insights query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryStep {
    pub name: String,
    /// What a person learns from it.
    #[serde(default)]
    pub description: String,
    pub query: String,
    /// Overrides the runbook's log groups.
    #[serde(default)]
    pub log_groups: Vec<String>,
}

/// A common cause with how to recognise it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// Stable id (`db-connection-pool-exhausted`), reported as the incident's cause.
    pub id: String,
    pub description: String,
    /// All signatures must match (usually one).
    pub signatures: Vec<Signature>,
    /// Tried in order; the first one the guardrails allow is carried out.
    #[serde(default)]
    pub remediation: Vec<RemediationStep>,
}

/// Evidence that a cause is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Signature {
    /// At least `min_count` rows of `query` whose `field` (default `@message`) matches `matches`
    /// (a regex).
    Pattern {
        query: String,
        matches: String,
        #[serde(default)]
        field: Option<String>,
        #[serde(default = "one")]
        min_count: u64,
    },
    /// Some row of `query` has a numeric `field` that compares to `value` with `op`
    /// (`>`, `>=`, `<`, `<=`, `=`).
    Threshold {
        query: String,
        field: String,
        op: String,
        value: f64,
    },
    /// A time-binned `query` (`stats count() by bin(5m)`) has a bin at least `factor` times the
    /// baseline (the median of the earlier bins).
    Spike {
        query: String,
        #[serde(default = "two")]
        factor: f64,
        /// The count column; defaults to the first numeric column that is not the bin.
        #[serde(default)]
        field: Option<String>,
    },
    /// The ECS service had a deployment within `within` before the incident's start.
    Deployment { within: Span },
}

fn one() -> u64 {
    1
}

fn two() -> f64 {
    2.0
}
