//! The pipeline's own events: what one stage tells the next on the custom EventBridge bus.
//! Typed here, carried as [`PipelineEvent`] (detail-type + JSON detail) by the `EventBus` port.

use crate::model::incident::{EcsService, IncidentId};
use crate::model::severity::Severity;
use chrono::{DateTime, Utc};
use detail_types as dt;
use serde::{Deserialize, Serialize};

/// "Incident Opened" and "Incident Escalated": diagnose starts on both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRaised {
    pub incident_id: IncidentId,
    pub service: String,
    pub ecs: Option<EcsService>,
    pub severity: Severity,
    /// The alarm that opened or escalated it.
    pub alarm_name: String,
    /// The alarm's state-change time.
    pub alarm_at: DateTime<Utc>,
    /// The alarm's `runbook` tag, when set.
    pub runbook_hint: Option<String>,
    /// Metric namespace and name of the alarm, for runbook selection.
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// The dimensions of the alarm's metrics (first occurrence wins), for metric steps that
    /// read the alarm's own dimensions.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dimensions: std::collections::BTreeMap<String, String>,
    /// A composite alarm's rule (`ALARM("a") OR ALARM("b")`); `None` for metric alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub composite_rule: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    /// How many times the incident has been reopened: each cycle is diagnosed afresh.
    #[serde(default)]
    pub reopened: u32,
}

/// "Alarm Recovered".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRecovered {
    pub incident_id: IncidentId,
    pub service: String,
    pub alarm_name: String,
    pub recovered_at: DateTime<Utc>,
}

/// "Diagnosis Completed".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisCompleted {
    pub incident_id: IncidentId,
    pub service: String,
    pub runbook: Option<String>,
    /// The matched cause's id, if any.
    pub cause: Option<String>,
    /// Lines of evidence a person reads.
    pub evidence: Vec<String>,
    /// The remediations the runbook suggests for the cause, in order (action names).
    pub suggested: Vec<String>,
    pub estimated_start: Option<DateTime<Utc>>,
}

/// "Remediation Applied".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationApplied {
    pub incident_id: IncidentId,
    pub service: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// "Remediation Approved": a person approved an action that was awaiting approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationApproved {
    pub incident_id: IncidentId,
    pub action: String,
    /// The approver's verified IAM or STS ARN (STS `GetCallerIdentity`), never a typed name;
    /// remediate accepts only the approver role's sessions.
    pub approved_by: String,
    /// The incident's cycle (`reopened` count) the approval was given for: an approval from an
    /// earlier cycle is refused. Events from before this field read as cycle 0.
    #[serde(default)]
    pub cycle: u32,
}

/// "Incident Resolved".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentResolved {
    pub incident_id: IncidentId,
    pub service: String,
    pub severity: Severity,
    pub time_to_resolve_s: Option<i64>,
}

/// "Incident Acknowledged": someone took the page (`firebreak ack`, the chat button). The
/// on-call tools are told; what they are told comes from the stored incident, not from this
/// event, so a forged one can only repeat what is true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentAcknowledged {
    pub incident_id: IncidentId,
    pub by: String,
    #[serde(default)]
    pub cycle: u32,
}

/// Every pipeline event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Opened(IncidentRaised),
    Escalated(IncidentRaised),
    Recovered(AlarmRecovered),
    Diagnosed(DiagnosisCompleted),
    Applied(RemediationApplied),
    Approved(RemediationApproved),
    Resolved(IncidentResolved),
    Acknowledged(IncidentAcknowledged),
}

impl Event {
    /// The incident the event is about.
    pub fn incident_id(&self) -> &IncidentId {
        match self {
            Event::Opened(d) | Event::Escalated(d) => &d.incident_id,
            Event::Recovered(d) => &d.incident_id,
            Event::Diagnosed(d) => &d.incident_id,
            Event::Applied(d) => &d.incident_id,
            Event::Approved(d) => &d.incident_id,
            Event::Resolved(d) => &d.incident_id,
            Event::Acknowledged(d) => &d.incident_id,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        match self {
            Event::Opened(_) => dt::INCIDENT_OPENED,
            Event::Escalated(_) => dt::INCIDENT_ESCALATED,
            Event::Recovered(_) => dt::ALARM_RECOVERED,
            Event::Diagnosed(_) => dt::DIAGNOSIS_COMPLETED,
            Event::Applied(_) => dt::REMEDIATION_APPLIED,
            Event::Approved(_) => dt::REMEDIATION_APPROVED,
            Event::Resolved(_) => dt::INCIDENT_RESOLVED,
            Event::Acknowledged(_) => dt::INCIDENT_ACKNOWLEDGED,
        }
    }

    /// The event as the bus carries it.
    pub fn to_pipeline(&self) -> PipelineEvent {
        let detail = match self {
            Event::Opened(d) | Event::Escalated(d) => serde_json::to_value(d),
            Event::Recovered(d) => serde_json::to_value(d),
            Event::Diagnosed(d) => serde_json::to_value(d),
            Event::Applied(d) => serde_json::to_value(d),
            Event::Approved(d) => serde_json::to_value(d),
            Event::Resolved(d) => serde_json::to_value(d),
            Event::Acknowledged(d) => serde_json::to_value(d),
        }
        .unwrap_or(serde_json::Value::Null);
        PipelineEvent {
            detail_type: self.detail_type().to_string(),
            detail,
        }
    }

    /// Reads an event back from its detail-type and detail. Errors name the detail-type and the
    /// field serde found wrong.
    pub fn from_pipeline(ev: &PipelineEvent) -> Result<Event, crate::Error> {
        fn de<T: serde::de::DeserializeOwned>(ev: &PipelineEvent) -> Result<T, crate::Error> {
            serde_json::from_value(ev.detail.clone())
                .map_err(|e| crate::Error::invalid(format!("{} detail", ev.detail_type), e.to_string()))
        }
        Ok(match ev.detail_type.as_str() {
            dt::INCIDENT_OPENED => Event::Opened(de(ev)?),
            dt::INCIDENT_ESCALATED => Event::Escalated(de(ev)?),
            dt::ALARM_RECOVERED => Event::Recovered(de(ev)?),
            dt::DIAGNOSIS_COMPLETED => Event::Diagnosed(de(ev)?),
            dt::REMEDIATION_APPLIED => Event::Applied(de(ev)?),
            dt::REMEDIATION_APPROVED => Event::Approved(de(ev)?),
            dt::INCIDENT_RESOLVED => Event::Resolved(de(ev)?),
            dt::INCIDENT_ACKNOWLEDGED => Event::Acknowledged(de(ev)?),
            other => {
                return Err(crate::Error::invalid(
                    "detail-type",
                    format!("{other:?} is not a Firebreak pipeline event"),
                ))
            }
        })
    }

    /// Parses an EventBridge envelope (`{"detail-type": ..., "detail": {...}}`) as Lambda
    /// receives it.
    ///
    /// Only Firebreak's own events are read: the envelope's `source` must be `firebreak` (the
    /// bus policy lets only Firebreak's roles put that source; anything else is refused here
    /// too, so a direct invoke with another source acts on nothing).
    pub fn from_envelope(v: &serde_json::Value) -> Result<Event, crate::Error> {
        match v.get("source").and_then(|s| s.as_str()) {
            Some(detail_types::SOURCE) => {}
            Some(other) => {
                return Err(crate::Error::invalid(
                    "source",
                    format!(
                        "{other:?} is not {:?}: not a Firebreak pipeline event",
                        detail_types::SOURCE
                    ),
                ))
            }
            None => return Err(crate::Error::invalid("source", "missing or not a string")),
        }
        let detail_type = v
            .get("detail-type")
            .and_then(|d| d.as_str())
            .ok_or_else(|| crate::Error::invalid("detail-type", "missing or not a string"))?;
        let detail = v
            .get("detail")
            .cloned()
            .ok_or_else(|| crate::Error::invalid("detail", "missing"))?;
        Event::from_pipeline(&PipelineEvent {
            detail_type: detail_type.to_string(),
            detail,
        })
    }
}

/// The pipeline's own events on the custom bus (source `firebreak`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineEvent {
    /// `Incident Opened`, `Incident Escalated`, `Alarm Recovered`, `Diagnosis Completed`,
    /// `Remediation Applied`, `Remediation Approved`, `Incident Resolved`, `Incident Acknowledged`.
    pub detail_type: String,
    pub detail: serde_json::Value,
}

pub mod detail_types {
    pub const INCIDENT_OPENED: &str = "Incident Opened";
    pub const INCIDENT_ESCALATED: &str = "Incident Escalated";
    pub const ALARM_RECOVERED: &str = "Alarm Recovered";
    pub const DIAGNOSIS_COMPLETED: &str = "Diagnosis Completed";
    pub const REMEDIATION_APPLIED: &str = "Remediation Applied";
    pub const REMEDIATION_APPROVED: &str = "Remediation Approved";
    pub const INCIDENT_RESOLVED: &str = "Incident Resolved";
    pub const INCIDENT_ACKNOWLEDGED: &str = "Incident Acknowledged";
    pub const SOURCE: &str = "firebreak";
}
