//! The alarm detail shared by EventBridge's `detail` and the direct action's `alarmData`.

use super::json::*;
use super::Result;
use crate::error::Error;
use crate::model::signal::{AlarmSignal, Channel, MetricRef, Trigger};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn alarm_detail(
    d: &Obj<'_>,
    channel: Channel,
    delivery_id: String,
    fallback_time: Option<DateTime<Utc>>,
) -> Result<AlarmSignal> {
    let alarm_name = d.req_str("alarmName")?.to_string();
    let state = d.req_object("state")?;
    let value = state_field(&state, "value")?;
    let changed_at = match (state.opt("timestamp"), fallback_time) {
        (Some(ts), _) => parse_time_node(&ts)?,
        (None, Some(t)) => t,
        (None, None) => return Err(Error::invalid(state.child_path("timestamp"), "missing")),
    };
    let previous_state = match d.opt("previousState") {
        Some(p) => {
            let p = p.object()?;
            match p.opt("value") {
                Some(v) => Some(state_value(&v, v.str()?)?),
                None => None,
            }
        }
        None => None,
    };
    let reason_data = state.opt("reasonData").and_then(|n| reason_data(&n));
    let config = match d.opt("configuration") {
        Some(c) => Some(c.object()?),
        None => None,
    };
    let description = match &config {
        Some(c) => c.opt_str("description")?.map(str::to_string),
        None => None,
    };
    let trigger = match &config {
        Some(c) if c.opt("alarmRule").is_some() => {
            let rule = c.req_str("alarmRule")?.to_string();
            let triggering_alarms = reason_data
                .as_ref()
                .and_then(|r| r.get("triggeringAlarms"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|a| a.get("arn").and_then(Value::as_str))
                        .filter_map(arn_alarm_name)
                        .collect()
                })
                .unwrap_or_default();
            Trigger::Composite {
                rule,
                triggering_alarms,
            }
        }
        Some(c) => {
            let metrics = match c.opt_array("metrics")? {
                Some(entries) => {
                    let single = entries.len() == 1;
                    entries
                        .iter()
                        .map(|e| detail_metric(&e.object()?, single))
                        .collect::<Result<Vec<_>>>()?
                }
                None => Vec::new(),
            };
            Trigger::Metric {
                metrics,
                // Neither EventBridge nor the direct payload carries the threshold in the
                // configuration; a metric alarm's reasonData does.
                threshold: reason_data
                    .as_ref()
                    .and_then(|r| r.get("threshold"))
                    .and_then(Value::as_f64),
                comparison: None,
                evaluation_periods: None,
            }
        }
        None => Trigger::Metric {
            metrics: Vec::new(),
            threshold: None,
            comparison: None,
            evaluation_periods: None,
        },
    };
    Ok(AlarmSignal {
        delivery_id,
        channel,
        alarm_name,
        alarm_arn: None,
        description,
        account: None,
        region: None,
        state: value,
        previous_state,
        reason: state.opt_str("reason")?.unwrap_or_default().to_string(),
        changed_at,
        trigger,
        tags: tags_field(d, "alarmTags")?,
    })
}

pub(super) fn detail_metric(e: &Obj<'_>, single: bool) -> Result<MetricRef> {
    let (namespace, metric_name, dimensions, statistic, period_s) = match e.opt("metricStat") {
        Some(ms) => {
            let ms = ms.object()?;
            let metric = ms.req_object("metric")?;
            (
                metric.opt_str("namespace")?.map(str::to_string),
                metric.opt_str("name")?.map(str::to_string),
                dimensions_field(&metric, "dimensions")?,
                ms.opt_str("stat")?.map(str::to_string),
                ms.opt_i64("period")?,
            )
        }
        None => (None, None, BTreeMap::new(), None, e.opt_i64("period")?),
    };
    Ok(MetricRef {
        id: e.opt_str("id")?.map(str::to_string),
        namespace,
        metric_name,
        dimensions,
        statistic,
        period_s,
        expression: e.opt_str("expression")?.map(str::to_string),
        return_data: e.opt_bool("returnData")?.unwrap_or(single),
    })
}

/// `reasonData` is a JSON document inside a string (sometimes already an object). It is
/// informational: when it does not parse, it is ignored rather than failing the alarm.
pub(super) fn reason_data(n: &Node<'_>) -> Option<Value> {
    match n.v {
        Value::String(s) => serde_json::from_str::<Value>(s).ok().filter(Value::is_object),
        Value::Object(_) => Some(n.v.clone()),
        _ => None,
    }
}
