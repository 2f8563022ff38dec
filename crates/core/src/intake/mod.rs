//! Intake: turns the three ways a CloudWatch alarm reaches Firebreak (an SNS notification, an
//! EventBridge "CloudWatch Alarm State Change" event, the payload of a direct Lambda alarm action)
//! into [`AlarmSignal`]s. Bad input is an [`Error::Invalid`] whose `what` is the JSON path of the
//! offending field; nothing here panics, whatever the input.
//!
//! One module per shape (`sns`, `eventbridge`, `lambda_action`), the alarm detail the last two
//! share (`detail`), and a path-tracking JSON reader (`json`). The envelopes are read field by
//! field rather than through `aws_lambda_events` types: those require fields triage never reads
//! (an SNS `Signature`, a `metricStat` on metric-math entries) or default a missing
//! `state.value` to `OK`, which would silently resolve incidents.
//!
//! Timestamps are accepted as RFC 3339 and in CloudWatch's own `2026-03-14T14:35:00.000+0000`
//! (offset without a colon).

mod detail;
mod eventbridge;
mod json;
mod lambda_action;
mod sns;

pub use json::{arn_alarm_name, parse_time};

use crate::error::Error;
use crate::model::signal::AlarmSignal;
use json::kind;
use serde_json::Value;

/// The EventBridge `detail-type` of alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Parses one Lambda event (any of the three shapes) into the signals it carries: one per SNS
/// record, one for an EventBridge event or a direct alarm action.
///
/// # Errors
/// [`Error::Invalid`] naming the JSON path and the reason when the event is not one of the three
/// shapes, or a field the signal needs is missing or malformed.
pub fn parse_event(value: &Value) -> Result<Vec<AlarmSignal>> {
    let Some(obj) = value.as_object() else {
        return Err(Error::invalid(
            "event",
            format!("expected a JSON object, got {}", kind(value)),
        ));
    };
    if obj.contains_key("Records") {
        sns::parse(obj)
    } else if obj.contains_key("detail-type") || obj.contains_key("detail") {
        eventbridge::parse(value).map(|s| vec![s])
    } else if obj.contains_key("alarmData") {
        lambda_action::parse(obj).map(|s| vec![s])
    } else {
        Err(Error::invalid(
            "event",
            "not a CloudWatch alarm event: expected SNS `Records`, an EventBridge `detail-type`, \
             or a Lambda alarm action `alarmData`",
        ))
    }
}

/// [`parse_event`] on JSON text.
///
/// # Errors
/// [`Error::Invalid`] when the text is not JSON, or as [`parse_event`].
pub fn parse_event_str(text: &str) -> Result<Vec<AlarmSignal>> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| Error::invalid("event", format!("not JSON: {e}")))?;
    parse_event(&value)
}

#[cfg(test)]
mod tests;
