//! The EventBridge "CloudWatch Alarm State Change" event (metric or composite alarm, with
//! `alarmTags` when tag propagation is on). The envelope is read field by field, as the other
//! shapes are: its `id` is the delivery id.

use super::detail::alarm_detail;
use super::json::*;
use super::Result;
use super::ALARM_STATE_CHANGE;
use crate::error::Error;
use crate::model::signal::{AlarmSignal, Channel};
use serde_json::Value;

pub(super) fn parse(value: &Value) -> Result<AlarmSignal> {
    let root = Node::new(value, String::new()).object()?;
    // Check the routing fields first so a wrong event names the field, not serde's position.
    let detail_type = root.req_str("detail-type")?;
    if detail_type != ALARM_STATE_CHANGE {
        return Err(Error::invalid(
            "detail-type",
            format!("{detail_type:?} is not {ALARM_STATE_CHANGE:?}"),
        ));
    }
    let source = root.req_str("source")?;
    if source != "aws.cloudwatch" {
        return Err(Error::invalid(
            "source",
            format!("{source:?} is not \"aws.cloudwatch\""),
        ));
    }
    let detail = root.req_object("detail")?;
    let delivery_id = root
        .opt_str("id")?
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| Error::invalid("id", "missing: the EventBridge event id is the delivery id"))?;
    let alarm_arn = match root.opt_array("resources")? {
        Some(resources) => resources.first().map(Node::str).transpose()?,
        None => None,
    }
    .filter(|a| !a.is_empty())
    .map(str::to_string);
    let time = root.opt("time").map(|n| parse_time_node(&n)).transpose()?;
    let mut signal = alarm_detail(&detail, Channel::EventBridge, delivery_id, time)?;
    signal.account = root
        .opt_str("account")?
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .or_else(|| alarm_arn.as_deref().and_then(arn_account));
    signal.region = root
        .opt_str("region")?
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or_else(|| alarm_arn.as_deref().and_then(arn_region));
    signal.alarm_arn = alarm_arn;
    Ok(signal)
}
