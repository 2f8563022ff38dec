//! The alarm signal: one normalised shape for every way a CloudWatch alarm reaches Firebreak
//! (SNS notification, EventBridge state change, direct Lambda alarm action). Parsing lives in
//! `intake`; this module owns the shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// Parses the spelling CloudWatch uses (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    pub fn parse(s: &str) -> Option<AlarmState> {
        match s {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which path the alarm took to reach us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Sns,
    EventBridge,
    LambdaAction,
}

impl Channel {
    /// As serialised (`event-bridge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sns => "sns",
            Channel::EventBridge => "event-bridge",
            Channel::LambdaAction => "lambda-action",
        }
    }
}

/// One metric the alarm watches: a plain metric, or one entry of a metric-math alarm.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricRef {
    /// The id of a metric-math entry (`m1`, `e1`); `None` for single-metric alarms.
    pub id: Option<String>,
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: BTreeMap<String, String>,
    pub statistic: Option<String>,
    pub period_s: Option<i64>,
    /// Metric-math expression, for expression entries.
    pub expression: Option<String>,
    /// Whether this entry's value is the one the alarm compares (metric math `ReturnData`).
    pub return_data: bool,
}

/// What the alarm evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// A single-metric alarm, or a metric-math alarm (several entries).
    Metric {
        metrics: Vec<MetricRef>,
        threshold: Option<f64>,
        comparison: Option<String>,
        evaluation_periods: Option<i64>,
    },
    /// A composite alarm over other alarms.
    Composite {
        rule: String,
        /// Names of the child alarms that caused the state change, when AWS reports them.
        triggering_alarms: Vec<String>,
    },
}

impl Trigger {
    /// The metric entries (empty for composites).
    pub fn metrics(&self) -> &[MetricRef] {
        match self {
            Trigger::Metric { metrics, .. } => metrics,
            Trigger::Composite { .. } => &[],
        }
    }

    /// The namespace and metric name the alarm is mainly about: the single metric, or the first
    /// metric-math entry that names one.
    pub fn primary_metric(&self) -> Option<&MetricRef> {
        self.metrics().iter().find(|m| m.metric_name.is_some())
    }

    /// All dimensions of all metric entries, first occurrence wins.
    pub fn dimensions(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in self.metrics() {
            for (k, v) in &m.dimensions {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        out
    }
}

/// A CloudWatch alarm state change, however it was delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmSignal {
    /// Unique per delivery of this state change (SNS MessageId, EventBridge event id, or a digest
    /// of the direct payload): redeliveries carry the same id.
    pub delivery_id: String,
    pub channel: Channel,
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub description: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub state: AlarmState,
    pub previous_state: Option<AlarmState>,
    pub reason: String,
    /// When the alarm changed state (not when we received it).
    pub changed_at: DateTime<Utc>,
    pub trigger: Trigger,
    /// Alarm tags, when the delivery carries them (EventBridge with tag propagation, direct
    /// payloads, SNS `AlarmTags`).
    pub tags: BTreeMap<String, String>,
}

impl AlarmSignal {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The ECS service the alarm's dimensions name, as `(cluster, service)`.
    pub fn ecs_dimensions(&self) -> Option<(String, String)> {
        let dims = self.trigger.dimensions();
        match (dims.get("ClusterName"), dims.get("ServiceName")) {
            (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => Some((c.clone(), s.clone())),
            _ => None,
        }
    }
}
