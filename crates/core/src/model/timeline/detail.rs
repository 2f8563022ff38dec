//! The detail of each kind of timeline entry: the contract between the stages that write the
//! timeline and everything that reads it back (the next stage, the postmortem, the CLI).
//!
//! An entry's detail is one [`Detail`] variant, and the variant decides the entry's kind, so a
//! kind and its payload cannot disagree. Kinds that carry nothing beyond their summary
//! (`opened`, `mitigated`, …) have [`Detail::None`]. The JSON of each payload is the object the
//! 0.1 release wrote with `json!`, field for field; optional fields default, so entries written
//! before a field existed still read.

use super::EntryKind;
use crate::model::autonomy::{Verdict, Verification};
use crate::model::evidence::{
    CauseMatch, DiagnosisReport, Hypothesis, MetricSummary, QuerySummary, RecentChanges,
};
use crate::model::incident::RemediationRecord;
use crate::model::remedy::{RemediationStep, ServiceUpdate};
use crate::model::settings::RemediationMode;
use crate::model::severity::Severity;
use crate::model::signal::{Channel, Trigger};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;

/// A typed entry detail. See the module documentation.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Detail {
    /// Nothing beyond the summary (or an entry written without detail).
    #[default]
    None,
    AlarmFired(AlarmFired),
    Classified(Classified),
    Escalated(Escalated),
    Paged(Paged),
    DiagnosisStarted(DiagnosisStarted),
    QueryCompleted(QueryCompleted),
    QueryFailed(QueryFailed),
    RecentChanges(Box<RecentChanges>),
    MetricRead(Box<MetricSummary>),
    CauseMatched(CauseMatch),
    Hypotheses(Hypotheses),
    NoRunbook(NoRunbook),
    DiagnosisCompleted(Box<DiagnosisReport>),
    RemediationRequested(RemediationRequested),
    RemediationRefused(RemediationRefused),
    RemediationDryRun(RemediationDryRun),
    ApprovalRequested(Box<ApprovalRequested>),
    RemediationStarted(Box<RemediationStarted>),
    RemediationApplied(Box<RemediationApplied>),
    RemediationFailed(Box<RemediationFailed>),
    /// `remediation-verified` and `remediation-ineffective` (the result says which).
    Verification(Box<VerificationDetail>),
    ShadowScored(Box<ShadowDetail>),
    Resolved(Resolved),
    Acknowledged(By),
    Note(Note),
    Refused(Refused),
}

/// `hypotheses`: the candidate causes, best first, and why the diagnosis abstained when it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypotheses {
    pub hypotheses: Vec<Hypothesis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abstained: Option<String>,
}

/// `alarm-fired`: the alarm as CloudWatch described it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmFired {
    pub alarm: String,
    #[serde(default)]
    pub arn: Option<String>,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    #[serde(default)]
    pub previous_state: Option<String>,
    pub channel: Channel,
    pub trigger: Trigger,
}

/// `classified`: the severity policy's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classified {
    pub severity: Severity,
    #[serde(default)]
    pub rule: Option<String>,
    pub service: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// `escalated`: a severity change (or, from the sweeper, a repeated page at the same one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalated {
    /// The sweeper's rule (`unacknowledged`, `unmitigated`), absent when an alarm raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub from: Severity,
    pub to: Severity,
}

/// `paged`: a message published to a severity topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paged {
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The pipeline event the stage sent beside the page (`Incident Opened`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// The time window a diagnosis read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// `diagnosis-started`: what the diagnosis chose to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisStarted {
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default)]
    pub selected_because: Option<String>,
    pub alarm: String,
    pub window: Window,
    #[serde(default)]
    pub log_groups: Vec<String>,
}

/// `query-completed`: one query's summary, and what was asked of which log groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryCompleted {
    pub summary: QuerySummary,
    /// Absent when the request could not be built (then the query failed instead).
    #[serde(default)]
    pub log_groups: Option<Vec<String>>,
    #[serde(default)]
    pub query: Option<String>,
}

/// `query-failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryFailed {
    pub query_name: String,
    pub error: String,
    #[serde(default)]
    pub log_groups: Option<Vec<String>>,
    #[serde(default)]
    pub query: Option<String>,
}

/// `no-runbook`: generic diagnostics ran instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoRunbook {
    pub alarm: String,
    /// The alarm's `runbook` tag when it names a runbook that does not exist.
    #[serde(default)]
    pub runbook_tag: Option<String>,
}

/// `remediation-requested`: a runbook step was taken up (`mode` set), or a person approved an
/// action awaiting approval (`approved_by` set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationRequested {
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<RemediationStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RemediationMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// The parts of an ECS service's state a remediation records before and after it acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    /// How many deployments the service had.
    pub deployments: usize,
}

/// A failed call to something outside the domain, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub operation: String,
    #[serde(default)]
    pub code: Option<String>,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
}

/// `remediation-refused`: a guardrail said no.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationRefused {
    pub record: RemediationRecord,
    pub guardrail: String,
    pub reason: String,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `remediation-dry-run`: what would have been done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationDryRun {
    pub record: RemediationRecord,
    pub update: ServiceUpdate,
    pub before: ServiceSnapshot,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `approval-requested`: everything an approval needs to carry the action out later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    pub record: RemediationRecord,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
    pub step: RemediationStep,
    /// The planned change in words (`desiredCount 4 → 8`).
    pub plan: String,
    pub update: ServiceUpdate,
    pub before: ServiceSnapshot,
    /// The command that approves it.
    pub command: String,
    #[serde(default)]
    pub estimated_start: Option<DateTime<Utc>>,
}

/// `remediation-started`: what is about to be asked of ECS, recorded before asking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationStarted {
    pub action: crate::model::remedy::ActionName,
    pub mode: RemediationMode,
    /// `desiredCount 4 → 8 (step +4, max 20, ≤2x)`.
    pub plan: String,
    /// `cluster/service`.
    pub service: String,
    pub update: ServiceUpdate,
    pub before: ServiceSnapshot,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `remediation-applied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationApplied {
    pub record: RemediationRecord,
    pub before: ServiceSnapshot,
    pub after: ServiceSnapshot,
    pub update: ServiceUpdate,
    pub applied_at: DateTime<Utc>,
    pub verify_window_s: i64,
    pub verify_by: DateTime<Utc>,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `remediation-failed`: the ECS call failed (not retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationFailed {
    pub record: RemediationRecord,
    pub error: CallError,
    pub before: ServiceSnapshot,
    pub update: ServiceUpdate,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `remediation-verified` / `remediation-ineffective`: what CloudWatch said at the end of an
/// applied action's verification window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationDetail {
    /// The applied action's record (as on the incident).
    pub applied: RemediationRecord,
    pub result: Verification,
    pub applied_at: DateTime<Utc>,
    pub verify_by: DateTime<Utc>,
    /// Each alarm of the incident as CloudWatch reported it then.
    pub alarms: BTreeMap<String, String>,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// `shadow-scored`: a proposal compared with what people did to the service before it recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowDetail {
    /// The proposal's record (dry-run, awaiting approval or applied, as on the incident).
    pub proposal: RemediationRecord,
    /// `None` for an applied action people did not undo.
    pub verdict: Option<Verdict>,
    pub people_action: Option<String>,
    pub lead_s: Option<i64>,
    /// When Firebreak asked for it; the window ends at `recovered_at`.
    pub proposed_at: DateTime<Utc>,
    pub recovered_at: DateTime<Utc>,
    pub cause: String,
    #[serde(default)]
    pub runbook: Option<String>,
}

/// The four stage times of one incident, in whole seconds (computed by `report::metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Estimated start of the problem → the alarm (`null` without an estimate).
    pub time_to_detect_s: Option<i64>,
    /// The alarm → the diagnosis.
    pub time_to_diagnose_s: Option<i64>,
    /// The alarm → the mitigation (`null` if never mitigated).
    pub time_to_mitigate_s: Option<i64>,
    /// The alarm → resolution: MTTR.
    pub time_to_resolve_s: Option<i64>,
}

/// Why a stage time is `null` although both its timestamps exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageAnomaly {
    /// The field (`time_to_detect_s`).
    pub stage: String,
    pub reason: String,
}

/// `resolved`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// True when a person resolved it (`firebreak resolve`).
    #[serde(default)]
    pub manual: bool,
    /// Who, when manual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default)]
    pub stage_times: StageTimes,
    /// Each attached alarm's state at resolution.
    #[serde(default)]
    pub alarms: BTreeMap<String, String>,
    #[serde(default)]
    pub anomalies: Vec<StageAnomaly>,
}

/// Who did it (`acknowledged`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct By {
    pub by: String,
}

/// `note`: a person's note (`by`), a summary sent (`message_id`), a notification that failed
/// (`error`), or a partial recovery (`still_firing`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Note {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CallError>,
    /// After one of several alarms recovered: those still not OK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub still_firing: Option<Vec<String>>,
}

/// `refused`: what arrived, from where, and why it changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The pipeline event's detail-type, or the alarm state change (`Alarm OK`).
    pub what: String,
    /// The envelope's `source`, or the alarm name, when there is one.
    #[serde(default)]
    pub from: Option<String>,
    pub reason: String,
}

/// Why a stored detail could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the detail of a {kind} entry does not read: {reason}")]
pub struct DetailError {
    pub kind: EntryKind,
    pub reason: String,
}

impl Detail {
    /// The kind this detail belongs to; `None` for [`Detail::None`], which fits every kind.
    pub fn kind(&self) -> Option<EntryKind> {
        Some(match self {
            Detail::None => return None,
            Detail::AlarmFired(_) => EntryKind::AlarmFired,
            Detail::Classified(_) => EntryKind::Classified,
            Detail::Escalated(_) => EntryKind::Escalated,
            Detail::Paged(_) => EntryKind::Paged,
            Detail::DiagnosisStarted(_) => EntryKind::DiagnosisStarted,
            Detail::QueryCompleted(_) => EntryKind::QueryCompleted,
            Detail::QueryFailed(_) => EntryKind::QueryFailed,
            Detail::RecentChanges(_) => EntryKind::RecentChanges,
            Detail::MetricRead(_) => EntryKind::MetricRead,
            Detail::Hypotheses(_) => EntryKind::Hypotheses,
            Detail::CauseMatched(_) => EntryKind::CauseMatched,
            Detail::NoRunbook(_) => EntryKind::NoRunbook,
            Detail::DiagnosisCompleted(_) => EntryKind::DiagnosisCompleted,
            Detail::RemediationRequested(_) => EntryKind::RemediationRequested,
            Detail::RemediationRefused(_) => EntryKind::RemediationRefused,
            Detail::RemediationDryRun(_) => EntryKind::RemediationDryRun,
            Detail::ApprovalRequested(_) => EntryKind::ApprovalRequested,
            Detail::RemediationStarted(_) => EntryKind::RemediationStarted,
            Detail::RemediationApplied(_) => EntryKind::RemediationApplied,
            Detail::RemediationFailed(_) => EntryKind::RemediationFailed,
            Detail::Verification(v) => match v.result {
                Verification::Verified => EntryKind::RemediationVerified,
                Verification::Ineffective => EntryKind::RemediationIneffective,
            },
            Detail::ShadowScored(_) => EntryKind::ShadowScored,
            Detail::Resolved(_) => EntryKind::Resolved,
            Detail::Acknowledged(_) => EntryKind::Acknowledged,
            Detail::Note(_) => EntryKind::Note,
            Detail::Refused(_) => EntryKind::Refused,
        })
    }

    /// The remediation record carried by a remediation entry.
    pub fn record(&self) -> Option<&RemediationRecord> {
        match self {
            Detail::RemediationRefused(d) => Some(&d.record),
            Detail::RemediationDryRun(d) => Some(&d.record),
            Detail::ApprovalRequested(d) => Some(&d.record),
            Detail::RemediationApplied(d) => Some(&d.record),
            Detail::RemediationFailed(d) => Some(&d.record),
            _ => None,
        }
    }

    /// Who did it, for the entries a person caused.
    pub fn by(&self) -> Option<&str> {
        match self {
            Detail::Acknowledged(b) => Some(&b.by),
            Detail::Note(n) => n.by.as_deref(),
            Detail::Resolved(r) => r.by.as_deref(),
            Detail::RemediationRequested(r) => r.approved_by.as_deref(),
            _ => None,
        }
    }

    /// The JSON stored for it (`null` for [`Detail::None`]).
    pub fn to_value(&self) -> serde_json::Value {
        fn v<T: Serialize>(t: &T) -> serde_json::Value {
            serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
        }
        match self {
            Detail::None => serde_json::Value::Null,
            Detail::AlarmFired(d) => v(d),
            Detail::Classified(d) => v(d),
            Detail::Escalated(d) => v(d),
            Detail::Paged(d) => v(d),
            Detail::DiagnosisStarted(d) => v(d),
            Detail::QueryCompleted(d) => v(d),
            Detail::QueryFailed(d) => v(d),
            Detail::RecentChanges(d) => v(d),
            Detail::MetricRead(d) => v(d),
            Detail::Hypotheses(d) => v(d),
            Detail::CauseMatched(d) => v(d),
            Detail::NoRunbook(d) => v(d),
            Detail::DiagnosisCompleted(d) => v(d),
            Detail::RemediationRequested(d) => v(d),
            Detail::RemediationRefused(d) => v(d),
            Detail::RemediationDryRun(d) => v(d),
            Detail::ApprovalRequested(d) => v(d),
            Detail::RemediationStarted(d) => v(d),
            Detail::RemediationApplied(d) => v(d),
            Detail::RemediationFailed(d) => v(d),
            Detail::Verification(d) => v(d),
            Detail::ShadowScored(d) => v(d),
            Detail::Resolved(d) => v(d),
            Detail::Acknowledged(d) => v(d),
            Detail::Note(d) => v(d),
            Detail::Refused(d) => v(d),
        }
    }

    /// Reads the stored JSON of a `kind` entry. `null` (or an empty object) is
    /// [`Detail::None`] for every kind; kinds without a payload ignore what they are given.
    pub fn from_value(kind: EntryKind, value: serde_json::Value) -> Result<Detail, DetailError> {
        if value.is_null() || value.as_object().is_some_and(serde_json::Map::is_empty) {
            return Ok(Detail::None);
        }
        fn p<T: DeserializeOwned>(kind: EntryKind, v: serde_json::Value) -> Result<T, DetailError> {
            serde_json::from_value(v).map_err(|e| DetailError {
                kind,
                reason: e.to_string(),
            })
        }
        Ok(match kind {
            EntryKind::AlarmFired => Detail::AlarmFired(p(kind, value)?),
            EntryKind::Classified => Detail::Classified(p(kind, value)?),
            EntryKind::Escalated => Detail::Escalated(p(kind, value)?),
            EntryKind::Paged => Detail::Paged(p(kind, value)?),
            EntryKind::DiagnosisStarted => Detail::DiagnosisStarted(p(kind, value)?),
            EntryKind::QueryCompleted => Detail::QueryCompleted(p(kind, value)?),
            EntryKind::QueryFailed => Detail::QueryFailed(p(kind, value)?),
            EntryKind::RecentChanges => Detail::RecentChanges(p(kind, value)?),
            EntryKind::MetricRead => Detail::MetricRead(p(kind, value)?),
            EntryKind::Hypotheses => Detail::Hypotheses(p(kind, value)?),
            EntryKind::CauseMatched => Detail::CauseMatched(p(kind, value)?),
            EntryKind::NoRunbook => Detail::NoRunbook(p(kind, value)?),
            EntryKind::DiagnosisCompleted => Detail::DiagnosisCompleted(p(kind, value)?),
            EntryKind::RemediationRequested => Detail::RemediationRequested(p(kind, value)?),
            EntryKind::RemediationRefused => Detail::RemediationRefused(p(kind, value)?),
            EntryKind::RemediationDryRun => Detail::RemediationDryRun(p(kind, value)?),
            EntryKind::ApprovalRequested => Detail::ApprovalRequested(p(kind, value)?),
            EntryKind::RemediationStarted => Detail::RemediationStarted(p(kind, value)?),
            EntryKind::RemediationApplied => Detail::RemediationApplied(p(kind, value)?),
            EntryKind::RemediationFailed => Detail::RemediationFailed(p(kind, value)?),
            EntryKind::RemediationVerified | EntryKind::RemediationIneffective => {
                Detail::Verification(p(kind, value)?)
            }
            EntryKind::ShadowScored => Detail::ShadowScored(p(kind, value)?),
            EntryKind::Resolved => Detail::Resolved(p(kind, value)?),
            EntryKind::Acknowledged => Detail::Acknowledged(p(kind, value)?),
            EntryKind::Note => Detail::Note(p(kind, value)?),
            EntryKind::Refused => Detail::Refused(p(kind, value)?),
            EntryKind::AlarmRecovered
            | EntryKind::AlarmInsufficientData
            | EntryKind::Opened
            | EntryKind::Attached
            | EntryKind::Reopened
            | EntryKind::Mitigated
            | EntryKind::PostmortemDrafted
            | EntryKind::Handoff => Detail::None,
        })
    }
}

macro_rules! into_detail {
    ($($t:ty => $v:ident $(boxed $b:tt)?),* $(,)?) => {$(
        impl From<$t> for Detail {
            fn from(d: $t) -> Detail {
                Detail::$v(into_detail!(@wrap d $($b)?))
            }
        }
    )*};
    (@wrap $d:ident) => { $d };
    (@wrap $d:ident box) => { Box::new($d) };
}

into_detail! {
    AlarmFired => AlarmFired,
    Classified => Classified,
    Escalated => Escalated,
    Paged => Paged,
    DiagnosisStarted => DiagnosisStarted,
    QueryCompleted => QueryCompleted,
    QueryFailed => QueryFailed,
    RecentChanges => RecentChanges boxed box,
    MetricSummary => MetricRead boxed box,
    Hypotheses => Hypotheses,
    CauseMatch => CauseMatched,
    NoRunbook => NoRunbook,
    DiagnosisReport => DiagnosisCompleted boxed box,
    RemediationRequested => RemediationRequested,
    RemediationRefused => RemediationRefused,
    RemediationDryRun => RemediationDryRun,
    ApprovalRequested => ApprovalRequested boxed box,
    RemediationStarted => RemediationStarted boxed box,
    RemediationApplied => RemediationApplied boxed box,
    RemediationFailed => RemediationFailed boxed box,
    VerificationDetail => Verification boxed box,
    ShadowDetail => ShadowScored boxed box,
    Resolved => Resolved,
    By => Acknowledged,
    Note => Note,
    Refused => Refused,
}
