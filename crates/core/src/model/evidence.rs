//! What a diagnosis found, in the form the timeline stores it: query summaries and counts, the
//! service's recent changes, the causes that matched, and the report that ties them together.
//! These are the payloads of `query-completed`, `recent-changes`, `cause-matched` and
//! `diagnosis-completed` entries; `runbook::findings` computes them, `stages::diagnose` records
//! them, `report` reads them.

use crate::model::incident::IncidentId;
use crate::model::pipeline::{DiagnosisCompleted, Event};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a query step counts, for the postmortem's impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    FailedRequests,
    Requests,
}

/// A message and how often it occurred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageCount {
    pub message: String,
    pub count: u64,
}

/// The first bin whose count reached `factor` times the median of the bins before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeBin {
    /// The start of the bin.
    pub at: DateTime<Utc>,
    pub count: f64,
    /// The median of the earlier bins.
    pub baseline: f64,
    /// `count / baseline`; `None` when the baseline is zero.
    pub ratio: Option<f64>,
    /// The column the counts were read from.
    pub field: String,
}

impl SpikeBin {
    pub fn describe(&self) -> String {
        let ratio = match self.ratio {
            Some(r) => format!("{r:.1}x"),
            None => "up from none".to_string(),
        };
        format!(
            "{} in the bin at {} against a baseline of {} ({ratio})",
            fmt_num(self.count),
            self.at.format("%H:%M"),
            fmt_num(self.baseline)
        )
    }
}

/// A compact summary of one query's result: what goes on the timeline instead of all rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuerySummary {
    pub query: String,
    pub rows: usize,
    pub records_matched: f64,
    pub records_scanned: f64,
    /// The most frequent messages (numbers masked when grouping), most frequent first.
    pub top_messages: Vec<MessageCount>,
    /// How many time bins the result has (0 when it is not binned).
    pub bins: usize,
    pub spike: Option<SpikeBin>,
    /// For a step that `measures` something: what it counted, bin by bin (absent in entries
    /// written before 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<Count>,
}

/// What a measuring query counted over the diagnosis window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count {
    pub measures: Measure,
    /// The column counted (`errors`, `count()`).
    pub field: String,
    /// The sum over every bin.
    pub total: f64,
    /// The bin width in seconds (0 when the result has one bin).
    pub bin_s: i64,
    /// `(bin start, count)`, oldest first, empty bins included.
    pub series: Series,
}

impl Count {
    /// From the first non-empty bin's start to the last non-empty bin's end, when any bin counted.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.series.iter().find(|(_, c)| *c > 0.0)?.0;
        let last = self.series.iter().rev().find(|(_, c)| *c > 0.0)?.0;
        Some((first, last + chrono::Duration::seconds(self.bin_s)))
    }

    /// The sum over the bins that start inside `[from, to)`.
    pub fn within(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
        self.series
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, c)| c)
            .sum()
    }
}

impl QuerySummary {
    /// One line for the timeline.
    pub fn line(&self) -> String {
        let mut s = format!("{}: {} rows", self.query, self.rows);
        if let Some(top) = self.top_messages.first() {
            s.push_str(&format!(
                ", top message ({}x): {}",
                top.count,
                cut(&top.message, 120)
            ));
        }
        if let Some(sp) = &self.spike {
            s.push_str(&format!(", spike: {}", sp.describe()));
        } else if self.bins > 0 {
            s.push_str(&format!(", {} bins, no spike", self.bins));
        }
        s
    }
}

/// Counts per time bin, `(bin start, count)`, oldest first.
pub type Series = Vec<(DateTime<Utc>, f64)>;

/// A cause whose signatures all matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CauseMatch {
    pub cause: String,
    pub description: String,
    /// One line per signature.
    pub evidence: Vec<String>,
    /// The remediation action names, in order.
    pub remediation: Vec<String>,
}

/// One ECS deployment of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    /// `PRIMARY`, `ACTIVE`, `INACTIVE`.
    pub status: String,
    /// `family:revision`.
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    /// `COMPLETED`, `IN_PROGRESS`, `FAILED`, when ECS reports it.
    pub rollout_state: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A task definition as the diagnosis compares it with the one before: what a deployment of it
/// changes. Secret values are never read, only their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskDefinition {
    /// `family:revision`.
    pub name: String,
    /// Task-level CPU units and memory (MiB), as ECS gives them (`"512"`, `"1 vCPU"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    pub containers: Vec<ContainerDefinition>,
}

/// One container of a [`TaskDefinition`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerDefinition {
    pub name: String,
    /// The image reference (`repo:tag` or `repo@sha256:...`).
    pub image: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The names of the secrets injected (values stay in Secrets Manager or SSM).
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
}

/// An ECS service event (`(service x) has reached a steady state.`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvent {
    pub at: DateTime<Utc>,
    pub message: String,
}

/// How one query went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum QueryOutcome {
    Completed(QuerySummary),
    Failed { query: String, error: String },
}

impl QueryOutcome {
    pub fn name(&self) -> &str {
        match self {
            QueryOutcome::Completed(s) => &s.query,
            QueryOutcome::Failed { query, .. } => query,
        }
    }
}

/// What changed on the ECS service shortly before the alarm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecentChanges {
    /// The service described (`cluster/service`), when the incident has one.
    pub service: Option<String>,
    /// Deployments created or updated in the window, newest first, and the primary one.
    pub deployments: Vec<Deployment>,
    /// Service events in the window, newest first (at most 20).
    pub events: Vec<ServiceEvent>,
    pub task_definition: Option<String>,
    pub desired: Option<i32>,
    pub running: Option<i32>,
    pub pending: Option<i32>,
    /// Why nothing could be read (no ECS service, describe failed).
    pub note: Option<String>,
}

impl RecentChanges {
    /// One line for the timeline.
    pub fn line(&self) -> String {
        if let Some(n) = &self.note {
            return format!("Recent changes unavailable: {n}");
        }
        let svc = self.service.as_deref().unwrap_or("the service");
        let mut s = format!(
            "{svc}: {} running of {} desired ({} pending) on {}",
            self.running.unwrap_or_default(),
            self.desired.unwrap_or_default(),
            self.pending.unwrap_or_default(),
            self.task_definition.as_deref().unwrap_or("?")
        );
        let recent: Vec<String> = self
            .deployments
            .iter()
            .filter_map(|d| {
                d.created_at
                    .map(|at| format!("{} at {} ({})", d.task_definition, at.format("%H:%M"), d.status))
            })
            .collect();
        if recent.is_empty() {
            s.push_str("; no deployment in the window");
        } else {
            s.push_str(&format!("; deployments: {}", recent.join(", ")));
        }
        s.push_str(&format!("; {} service events", self.events.len()));
        s
    }
}

/// The diagnosis: what the timeline's `diagnosis-completed` entry holds and `handle` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisReport {
    pub incident_id: IncidentId,
    pub service: String,
    /// The runbook used; `None` when none matched and generic diagnostics ran.
    pub runbook: Option<String>,
    /// Why the runbook was selected.
    pub selected_because: Option<String>,
    /// The first matched cause in runbook order.
    pub cause: Option<String>,
    pub evidence: Vec<String>,
    /// The cause's remediation actions, in order.
    pub suggested: Vec<String>,
    /// The first anomalous bin.
    pub estimated_start: Option<DateTime<Utc>>,
    /// From the estimated start to the alarm.
    pub time_to_detect_s: Option<i64>,
    /// Every cause whose signatures matched, in runbook order.
    pub matched: Vec<CauseMatch>,
    pub queries: Vec<QueryOutcome>,
    pub recent_changes: RecentChanges,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// True when this delivery found the diagnosis already recorded and did nothing new.
    #[serde(default)]
    pub repeated: bool,
}

impl DiagnosisReport {
    /// The "Diagnosis Completed" event for it.
    pub fn event(&self) -> Event {
        Event::Diagnosed(DiagnosisCompleted {
            incident_id: self.incident_id.clone(),
            service: self.service.clone(),
            runbook: self.runbook.clone(),
            cause: self.cause.clone(),
            evidence: self.evidence.clone(),
            suggested: self.suggested.clone(),
            estimated_start: self.estimated_start,
        })
    }
}

pub(crate) fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

pub(crate) fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n).collect();
        out.push('…');
        out
    }
}
