//! The payload CloudWatch sends when an alarm invokes a Lambda function directly (`alarmData`).

use super::detail::alarm_detail;
use super::json::*;
use super::Result;
use crate::error::Error;
use crate::model::incident::fnv1a;
use crate::model::signal::{AlarmSignal, Channel};
use serde_json::{Map, Value};

pub(super) fn parse(obj: &Map<String, Value>) -> Result<AlarmSignal> {
    let root = Node::root(obj, "");
    if let Some(source) = root.opt_str("source")? {
        if source != "aws.cloudwatch" {
            return Err(Error::invalid(
                "source",
                format!("{source:?} is not \"aws.cloudwatch\""),
            ));
        }
    }
    let data = root.req_object("alarmData")?;
    let alarm_arn = root.opt_str("alarmArn")?.map(str::to_string);
    let fallback_time = root.opt("time").map(|n| parse_time_node(&n)).transpose()?;

    // The delivery id is a digest of what identifies this state change, so a redelivery of the
    // same payload computes the same id.
    let state = data.req_object("state")?;
    let state_value_text = state.req_str("value")?;
    let state_time_text = state.opt_str("timestamp")?.unwrap_or_default();
    let identity = match &alarm_arn {
        Some(arn) => arn.clone(),
        None => data.req_str("alarmName")?.to_string(),
    };
    let digest = fnv1a(format!("{identity}\n{state_time_text}\n{state_value_text}").as_bytes());
    let delivery_id = format!("{digest:016x}");

    let mut signal = alarm_detail(&data, Channel::LambdaAction, delivery_id, fallback_time)?;
    if signal.tags.is_empty() {
        signal.tags = tags_field(&root, "alarmTags")?;
    }
    signal.account = root
        .opt_str("accountId")?
        .map(str::to_string)
        .or_else(|| alarm_arn.as_deref().and_then(arn_account));
    signal.region = root
        .opt_str("region")?
        .map(str::to_string)
        .or_else(|| alarm_arn.as_deref().and_then(arn_region));
    signal.alarm_arn = alarm_arn;
    Ok(signal)
}
