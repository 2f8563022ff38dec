//! The timeline: every step Firebreak takes on an incident, in order, each entry idempotent on
//! its event id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    CauseMatched,
    NoRunbook,
    DiagnosisCompleted,
    RemediationRequested,
    RemediationRefused,
    RemediationDryRun,
    ApprovalRequested,
    RemediationApplied,
    RemediationFailed,
    RemediationVerified,
    Mitigated,
    Resolved,
    Acknowledged,
    Note,
    PostmortemDrafted,
    /// A stage told the next one (an event went on the pipeline bus).
    Handoff,
    /// The sweeper raised or re-paged an incident.
    SweeperEscalated,
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
            EntryKind::CauseMatched => "cause-matched",
            EntryKind::NoRunbook => "no-runbook",
            EntryKind::DiagnosisCompleted => "diagnosis-completed",
            EntryKind::RemediationRequested => "remediation-requested",
            EntryKind::RemediationRefused => "remediation-refused",
            EntryKind::RemediationDryRun => "remediation-dry-run",
            EntryKind::ApprovalRequested => "approval-requested",
            EntryKind::RemediationApplied => "remediation-applied",
            EntryKind::RemediationFailed => "remediation-failed",
            EntryKind::RemediationVerified => "remediation-verified",
            EntryKind::Mitigated => "mitigated",
            EntryKind::Resolved => "resolved",
            EntryKind::Acknowledged => "acknowledged",
            EntryKind::Note => "note",
            EntryKind::PostmortemDrafted => "postmortem-drafted",
            EntryKind::Handoff => "handoff",
            EntryKind::SweeperEscalated => "sweeper-escalated",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step on an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Deterministic for the step that wrote it (`<delivery id>/<kind>` and the like): writing
    /// the same entry twice is a no-op.
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub kind: EntryKind,
    /// One line a person reads.
    pub summary: String,
    /// Structured detail (query rows, before/after state, errors); `null` when there is none.
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl TimelineEntry {
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
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> TimelineEntry {
        self.detail = detail;
        self
    }
}

/// Orders entries by time; entries at the same instant keep the order they were written in, so
/// stores hand them over in write order and call this.
pub fn sort_entries(entries: &mut [TimelineEntry]) {
    entries.sort_by_key(|e| e.at);
}
