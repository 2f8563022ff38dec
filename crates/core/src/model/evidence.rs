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

/// A candidate cause and how well the evidence supports it: every signature of the cause is
/// judged matched, contradicted, or unknown (its data is missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub cause: String,
    /// `(matched - contradicted) / signatures`, at least 0: a contradicted signature counts
    /// against its cause, an unknown one counts for nothing.
    pub score: f64,
    /// What matched, one line per signature.
    pub evidence: Vec<String>,
    /// What the data contradicts, one line per signature.
    #[serde(default)]
    pub against: Vec<String>,
    /// The signatures that could not be judged, and why.
    pub missing: Vec<String>,
    /// The remediation action names, in order.
    #[serde(default)]
    pub remediation: Vec<String>,
}

impl Hypothesis {
    /// `cause (0.67)`.
    pub fn label(&self) -> String {
        format!("{} ({:.2})", self.cause, self.score)
    }
}

/// How a metric step's incident window compares with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricChange {
    Rose,
    Fell,
    Unchanged,
    /// Data in the incident window but too little before it to compare.
    NoBaseline,
    NoData,
}

/// What a metric step read: its baseline, its level in the incident window, and since when it
/// changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The runbook step.
    pub step: String,
    pub namespace: String,
    pub metric: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    pub period_s: u32,
    /// The median of the baseline window's datapoints.
    pub baseline: Option<f64>,
    pub baseline_points: usize,
    /// The median of the incident window's datapoints since the change (all of them when
    /// nothing changed).
    pub level: Option<f64>,
    /// The first datapoint of a sustained change.
    pub since: Option<DateTime<Utc>>,
    pub change: MetricChange,
    /// The incident window's datapoints, oldest first.
    pub points: Series,
    /// Shown after values (`%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Why there is nothing to compare (the read failed, no data), or what CloudWatch noted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl MetricSummary {
    /// `level / baseline`, when both are known and the baseline is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.level, self.baseline) {
            (Some(l), Some(b)) if b != 0.0 => Some(l / b),
            _ => None,
        }
    }

    fn value(&self, x: f64) -> String {
        // as many digits as a person compares: 2382, 39.7, 0.42
        let digits = if x.abs() >= 100.0 {
            0
        } else if x.abs() >= 10.0 {
            1
        } else {
            2
        };
        let mut v = format!("{x:.digits$}");
        if v.contains('.') {
            v = v.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        format!("{v}{}", self.unit.as_deref().unwrap_or_default())
    }

    /// In words a responder reads: `RequestCount 2.0x baseline since 14:30 (2400 vs 1200)`,
    /// `CPUUtilization normal (41% vs 39%)`, `RunningTaskCount unchanged at 4`.
    pub fn line(&self) -> String {
        let m = &self.metric;
        let (Some(level), baseline) = (self.level, self.baseline) else {
            return format!(
                "{m}: no data{}",
                self.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
        };
        let since = self
            .since
            .map(|t| format!(" since {}", t.format("%H:%M")))
            .unwrap_or_default();
        match (self.change, baseline) {
            (MetricChange::Rose | MetricChange::Fell, Some(b)) => {
                let how = match self.ratio() {
                    Some(r) => format!("{r:.1}x baseline"),
                    None => "up from 0".to_string(),
                };
                format!("{m} {how}{since} ({} vs {})", self.value(level), self.value(b))
            }
            (MetricChange::Unchanged, Some(b)) if (level - b).abs() <= f64::EPSILON * b.abs().max(1.0) => {
                format!("{m} unchanged at {}", self.value(level))
            }
            (MetricChange::Unchanged, Some(b)) => {
                format!("{m} normal ({} vs {})", self.value(level), self.value(b))
            }
            _ => format!(
                "{m} at {} with no baseline to compare ({} datapoint(s) before the incident window)",
                self.value(level),
                self.baseline_points
            ),
        }
    }
}

/// What one task-definition revision changed against the one before it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefinitionDiff {
    /// `family:revision` deployed.
    pub revision: String,
    /// `family:revision` it replaced; `None` when none is known.
    pub previous: Option<String>,
    /// One line per difference (`image api:3.4.0 -> api:3.4.1`, `environment DB_POOL_SIZE: 10 -> 5`,
    /// `secret added: API_KEY`); never a secret's value.
    pub changes: Vec<String>,
    /// Why nothing could be compared (a revision unknown to ECS, no details recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
    /// For each deployment shown, what its task definition changed (absent in entries written
    /// before 0.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<DefinitionDiff>,
    /// When the recent changes were read (the alarm time), for the deployments' ages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
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
            .filter_map(|d| self.deployment_line(d))
            .collect();
        if recent.is_empty() {
            s.push_str("; no deployment in the window");
        } else {
            s.push_str(&format!("; deployments: {}", recent.join(", ")));
        }
        let notable: Vec<&ServiceEvent> = self.events.iter().filter(|e| e.is_notable()).collect();
        s.push_str(&format!("; {} service events", self.events.len()));
        if !notable.is_empty() {
            let shown: Vec<String> = notable
                .iter()
                .take(3)
                .map(|e| format!("{} {}", e.at.format("%H:%M"), cut(&e.message, 200)))
                .collect();
            s.push_str(&format!(" ({} notable: {})", notable.len(), shown.join("; ")));
        }
        s
    }

    /// `orders:17 deployed 2026-03-11 09:10 UTC, 3d 5h before the alarm (PRIMARY): image ...`.
    pub fn deployment_line(&self, d: &Deployment) -> Option<String> {
        let at = d.created_at?;
        let age = self
            .as_of
            .map(|alarm_at| format!(", {}", from_alarm(at, alarm_at)))
            .unwrap_or_default();
        let diff = self
            .diffs
            .iter()
            .find(|x| x.revision == d.task_definition)
            .map(DefinitionDiff::line)
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        Some(format!(
            "{} deployed {}{age} ({}){diff}",
            d.task_definition,
            at.format("%Y-%m-%d %H:%M UTC"),
            d.status
        ))
    }
}

impl DefinitionDiff {
    /// `against orders:16: image ... -> ...; environment DB_POOL_SIZE: 10 -> 5`.
    pub fn line(&self) -> String {
        let against = self
            .previous
            .as_deref()
            .map(|p| format!("against {p}"))
            .unwrap_or_else(|| "no earlier revision".to_string());
        if let Some(n) = &self.note {
            return format!("{against}: {n}");
        }
        if self.changes.is_empty() {
            return format!("{against}: no change in images, environment, secrets, CPU, memory or command");
        }
        format!("{against}: {}", self.changes.join("; "))
    }
}

impl ServiceEvent {
    /// An event worth a responder's eye: failed placements, unhealthy targets, failed health
    /// checks, stopped tasks, a rollout rolled back; not the routine steady-state, started and
    /// registered messages.
    pub fn is_notable(&self) -> bool {
        const NOTABLE: [&str; 10] = [
            "unhealthy",
            "unable to",
            "failed",
            "failure",
            "error",
            "insufficient",
            "stopped",
            "throttl",
            "rolled back",
            "circuit breaker",
        ];
        let m = self.message.to_ascii_lowercase();
        NOTABLE.iter().any(|k| m.contains(k))
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
    /// The best hypothesis's cause, unless the diagnosis abstained.
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
    /// The candidate causes that some evidence supports, best first (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypotheses: Vec<Hypothesis>,
    /// Why no cause was set although some evidence points at one (the best scores too low, or
    /// the top two are too close), and which evidence would decide it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstained: Option<String>,
    /// Why the start could not be estimated, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_note: Option<String>,
    /// What each metric step read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSummary>,
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

/// `4d 5h before the alarm` (or `after`).
pub(crate) fn from_alarm(at: DateTime<Utc>, alarm_at: DateTime<Utc>) -> String {
    let s = (alarm_at - at).num_seconds();
    if s >= 0 {
        format!("{} before the alarm", crate::model::duration::human(s))
    } else {
        format!("{} after the alarm", crate::model::duration::human(-s))
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
