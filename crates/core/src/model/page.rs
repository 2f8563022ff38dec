//! What a page is about, beside its text: the facts each protocol's form (email, SMS, chat) is
//! drawn from (`report::page`). A stage fills them from the incident it pages about; the text
//! stays the stage's own words.

use crate::model::incident::{EcsService, Incident};
use crate::model::severity::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A message a person reads on a phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Fewer than 100 characters (the SNS subject limit); adapters truncate.
    pub subject: String,
    pub body: String,
    /// Message attributes for subscription filter policies (`severity`, `service`, `kind`).
    pub attributes: BTreeMap<String, String>,
    /// What the page is about: the email, SMS and chat forms are drawn from it
    /// (`report::page`). Absent on notifications queued before it existed.
    #[serde(default)]
    pub facts: PageFacts,
}

/// Which stage of an incident a page tells about: the chat form's event type, and what a
/// custom action button is shown on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageEvent {
    /// Not about one stage (pages written before the events were named read as this).
    #[default]
    Notice,
    Opened,
    Reopened,
    Escalated,
    Flapping,
    Diagnosis,
    Remediation,
    ApprovalNeeded,
    Verification,
    CircuitOpen,
    Resolved,
}

impl PageEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            PageEvent::Notice => "notice",
            PageEvent::Opened => "opened",
            PageEvent::Reopened => "reopened",
            PageEvent::Escalated => "escalated",
            PageEvent::Flapping => "flapping",
            PageEvent::Diagnosis => "diagnosis",
            PageEvent::Remediation => "remediation",
            PageEvent::ApprovalNeeded => "approval-needed",
            PageEvent::Verification => "verification",
            PageEvent::CircuitOpen => "circuit-open",
            PageEvent::Resolved => "resolved",
        }
    }

    /// The chat form's `metadata.eventType` (what custom action criteria match).
    pub fn event_type(self) -> String {
        format!("firebreak.incident.{}", self.as_str())
    }
}

/// The Logs Insights query a diagnosis ran first, for a console link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogQueryLink {
    pub log_groups: Vec<String>,
    pub query: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What a page is about. Every field is optional so that a notification stored before they
/// existed (a redriven failure-queue message) still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageFacts {
    #[serde(default)]
    pub event: PageEvent,
    /// The incident id: the chat thread every page of the incident goes to.
    #[serde(default)]
    pub incident: Option<String>,
    /// The incident's cycle (`reopened` count), which an approval button carries.
    #[serde(default)]
    pub cycle: u32,
    #[serde(default)]
    pub severity: Option<Severity>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub ecs: Option<EcsService>,
    /// The incident's alarms (names, as CloudWatch has them; from outside, so rendered inert).
    #[serde(default)]
    pub alarms: Vec<String>,
    /// The alarms' ARNs where known (the chat form's related resources).
    #[serde(default)]
    pub alarm_arns: Vec<String>,
    /// What a responder does next, in Firebreak's or the runbook's words.
    #[serde(default)]
    pub next_steps: Vec<String>,
    #[serde(default)]
    pub log_query: Option<LogQueryLink>,
    /// The action an approval is asked for (`ecs-scale-out`).
    #[serde(default)]
    pub action: Option<String>,
}

impl PageFacts {
    /// The facts every page of `inc` carries; the stage adds its next steps.
    pub fn of(inc: &Incident, event: PageEvent) -> PageFacts {
        PageFacts {
            event,
            incident: Some(inc.id.to_string()),
            cycle: inc.reopened,
            severity: Some(inc.severity),
            service: Some(inc.service.clone()),
            ecs: inc.ecs.clone(),
            alarms: inc.alarms.keys().cloned().collect(),
            alarm_arns: Vec::new(),
            next_steps: Vec::new(),
            log_query: None,
            action: None,
        }
    }

    pub fn next(mut self, step: impl Into<String>) -> PageFacts {
        self.next_steps.push(step.into());
        self
    }

    pub fn steps<I: IntoIterator<Item = S>, S: Into<String>>(mut self, steps: I) -> PageFacts {
        self.next_steps.extend(steps.into_iter().map(Into::into));
        self
    }
}
