//! The timeline: every step Firebreak takes on an incident, in order, each entry idempotent on
//! its event id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod detail;
pub use detail::Detail;

/// What happened. Serialised kebab-case (`alarm-fired`), the `kind` of the drill contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    AlarmFired,
    AlarmRecovered,
    AlarmInsufficientData,
    Opened,
    Attached,
    Reopened,
    Classified,
    Escalated,
    Paged,
    DiagnosisStarted,
    QueryCompleted,
    QueryFailed,
    RecentChanges,
    /// What a metric step read against its baseline.
    MetricRead,
    CauseMatched,
    /// The diagnosis's ranked hypotheses, and why it abstained when it did.
    Hypotheses,
    NoRunbook,
    DiagnosisCompleted,
    RemediationRequested,
    RemediationRefused,
    RemediationDryRun,
    ApprovalRequested,
    /// The intent of an ECS change, written just before the call (write-ahead): a delivery that
    /// finds it without a result reconciles from ECS what really happened.
    RemediationStarted,
    RemediationApplied,
    RemediationFailed,
    /// At the end of an applied action's verification window every alarm was OK.
    RemediationVerified,
    /// At the end of an applied action's verification window an alarm was still in ALARM.
    RemediationIneffective,
    /// A proposal compared, at the resolution, with what people did to the service.
    ShadowScored,
    Mitigated,
    Resolved,
    Acknowledged,
    Note,
    PostmortemDrafted,
    /// A stage told the next one (an event went on the pipeline bus).
    Handoff,
    /// An event or state change refused at the trust boundary (forged, stale, unverifiable).
    Refused,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::AlarmFired => "alarm-fired",
            EntryKind::AlarmRecovered => "alarm-recovered",
            EntryKind::AlarmInsufficientData => "alarm-insufficient-data",
            EntryKind::Opened => "opened",
            EntryKind::Attached => "attached",
            EntryKind::Reopened => "reopened",
            EntryKind::Classified => "classified",
            EntryKind::Escalated => "escalated",
            EntryKind::Paged => "paged",
            EntryKind::DiagnosisStarted => "diagnosis-started",
            EntryKind::QueryCompleted => "query-completed",
            EntryKind::QueryFailed => "query-failed",
            EntryKind::RecentChanges => "recent-changes",
            EntryKind::MetricRead => "metric-read",
            EntryKind::Hypotheses => "hypotheses",
            EntryKind::CauseMatched => "cause-matched",
            EntryKind::NoRunbook => "no-runbook",
            EntryKind::DiagnosisCompleted => "diagnosis-completed",
            EntryKind::RemediationRequested => "remediation-requested",
            EntryKind::RemediationRefused => "remediation-refused",
            EntryKind::RemediationDryRun => "remediation-dry-run",
            EntryKind::ApprovalRequested => "approval-requested",
            EntryKind::RemediationStarted => "remediation-started",
            EntryKind::RemediationApplied => "remediation-applied",
            EntryKind::RemediationFailed => "remediation-failed",
            EntryKind::RemediationVerified => "remediation-verified",
            EntryKind::RemediationIneffective => "remediation-ineffective",
            EntryKind::ShadowScored => "shadow-scored",
            EntryKind::Mitigated => "mitigated",
            EntryKind::Resolved => "resolved",
            EntryKind::Acknowledged => "acknowledged",
            EntryKind::Note => "note",
            EntryKind::PostmortemDrafted => "postmortem-drafted",
            EntryKind::Handoff => "handoff",
            EntryKind::Refused => "refused",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step on an incident's timeline. Its kind follows from its detail (see [`detail`]), so
/// the two cannot disagree; both are read through methods.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// Deterministic for the step that wrote it (see [`super::entry_id::EntryId`]): writing the
    /// same entry twice is a no-op.
    pub event_id: String,
    pub at: DateTime<Utc>,
    kind: EntryKind,
    /// One line a person reads.
    pub summary: String,
    detail: Detail,
}

impl TimelineEntry {
    /// An entry of a kind that carries nothing beyond its summary (or whose detail follows with
    /// [`TimelineEntry::with_detail`]).
    pub fn new(
        event_id: impl Into<String>,
        at: DateTime<Utc>,
        kind: EntryKind,
        summary: impl Into<String>,
    ) -> TimelineEntry {
        TimelineEntry {
            event_id: event_id.into(),
            at,
            kind,
            summary: summary.into(),
            detail: Detail::None,
        }
    }

    /// An entry whose kind is its detail's.
    pub fn of(
        event_id: impl Into<String>,
        at: DateTime<Utc>,
        detail: impl Into<Detail>,
        summary: impl Into<String>,
    ) -> TimelineEntry {
        let detail = detail.into();
        TimelineEntry {
            event_id: event_id.into(),
            at,
            kind: detail.kind().unwrap_or(EntryKind::Note),
            summary: summary.into(),
            detail,
        }
    }

    /// Sets the detail; the entry takes the detail's kind.
    pub fn with_detail(mut self, detail: impl Into<Detail>) -> TimelineEntry {
        let detail = detail.into();
        if let Some(k) = detail.kind() {
            self.kind = k;
        }
        self.detail = detail;
        self
    }

    /// Sets the detail from its stored JSON, read as this entry's kind's payload (what a store
    /// does on read; tests and tools build entries this way).
    pub fn with_json_detail(
        mut self,
        value: serde_json::Value,
    ) -> Result<TimelineEntry, detail::DetailError> {
        self.detail = Detail::from_value(self.kind, value)?;
        Ok(self)
    }

    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    pub fn detail(&self) -> &Detail {
        &self.detail
    }
}

/// The stored form: `{event_id, at, kind, summary, detail}`, detail `null` when there is none.
#[derive(Serialize, Deserialize)]
struct Stored {
    event_id: String,
    at: DateTime<Utc>,
    kind: EntryKind,
    summary: String,
    #[serde(default)]
    detail: serde_json::Value,
}

impl Serialize for TimelineEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            event_id: self.event_id.clone(),
            at: self.at,
            kind: self.kind,
            summary: self.summary.clone(),
            detail: self.detail.to_value(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimelineEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimelineEntry, D::Error> {
        let s = Stored::deserialize(d)?;
        let detail = Detail::from_value(s.kind, s.detail)
            .map_err(|e| serde::de::Error::custom(format!("entry {}: {e}", s.event_id)))?;
        Ok(TimelineEntry {
            event_id: s.event_id,
            at: s.at,
            kind: s.kind,
            summary: s.summary,
            detail,
        })
    }
}

/// Orders entries by time; entries at the same instant keep the order they were written in, so
/// stores hand them over in write order and call this.
pub fn sort_entries(entries: &mut [TimelineEntry]) {
    entries.sort_by_key(|e| e.at);
}
