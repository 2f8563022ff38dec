//! The SNS notification: `Records[].Sns.Message` holding the alarm notification JSON (single
//! metric, metric math `Trigger.Metrics`, composite).

use super::json::*;
use super::Result;
use crate::error::Error;
use crate::model::signal::{AlarmSignal, Channel, MetricRef, Trigger};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(super) fn parse(obj: &Map<String, Value>) -> Result<Vec<AlarmSignal>> {
    let records = Node::root(obj, "").req_array("Records")?;
    if records.is_empty() {
        return Err(Error::invalid("Records", "no records"));
    }
    records
        .iter()
        .map(|record| {
            let record = record.object()?;
            let sns = record.req_object("Sns")?;
            let message_id = sns.req_str("MessageId")?;
            let message_node = sns.req("Message")?;
            // SNS always delivers the notification as a JSON string; accept an object too (tools
            // that build test events sometimes inline it).
            let parsed;
            let message = match message_node.v {
                Value::String(text) => {
                    parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                        Error::invalid(
                            message_node.path.clone(),
                            format!("not a CloudWatch alarm notification (not JSON: {e})"),
                        )
                    })?;
                    Node::new(&parsed, message_node.path.clone()).object()?
                }
                _ => message_node.object()?,
            };
            sns_notification(message_id, &message)
        })
        .collect()
}

pub(super) fn sns_notification(message_id: &str, m: &Obj<'_>) -> Result<AlarmSignal> {
    let alarm_name = m.req_str("AlarmName")?.to_string();
    let state = state_field(m, "NewStateValue")?;
    let previous_state = m
        .opt("OldStateValue")
        .map(|n| n.str().and_then(|s| state_value(&n, s)))
        .transpose()?;
    let changed_at = time_field(m, "StateChangeTime")?;
    let alarm_arn = m.opt_str("AlarmArn")?.map(str::to_string);
    let account = m
        .opt_str("AWSAccountId")?
        .map(str::to_string)
        .or_else(|| alarm_arn.as_deref().and_then(arn_account));
    let region = alarm_arn
        .as_deref()
        .and_then(arn_region)
        .or_else(|| m.opt_str("Region").ok().flatten().and_then(region_code_from_name));

    let trigger = if let Some(rule) = m.opt("AlarmRule") {
        let rule = rule.str()?.to_string();
        let mut triggering = Vec::new();
        for key in ["TriggeringChildren", "TriggeringAlarms"] {
            if let Some(children) = m.opt_array(key)? {
                for child in children {
                    let child = child.object()?;
                    let arn = child.opt_str("Arn")?.or(child.opt_str("arn")?);
                    if let Some(name) = arn.and_then(arn_alarm_name) {
                        triggering.push(name);
                    }
                }
            }
        }
        Trigger::Composite {
            rule,
            triggering_alarms: triggering,
        }
    } else if let Some(t) = m.opt("Trigger") {
        sns_trigger(&t.object()?)?
    } else {
        Trigger::Metric {
            metrics: Vec::new(),
            threshold: None,
            comparison: None,
            evaluation_periods: None,
        }
    };

    Ok(AlarmSignal {
        delivery_id: message_id.to_string(),
        channel: Channel::Sns,
        alarm_name,
        alarm_arn,
        description: m.opt_str("AlarmDescription")?.map(str::to_string),
        account,
        region,
        state,
        previous_state,
        reason: m.opt_str("NewStateReason")?.unwrap_or_default().to_string(),
        changed_at,
        trigger,
        tags: tags_field(m, "AlarmTags")?,
    })
}

pub(super) fn sns_trigger(t: &Obj<'_>) -> Result<Trigger> {
    let metrics = if let Some(entries) = t.opt_array("Metrics")? {
        let single = entries.len() == 1;
        entries
            .iter()
            .map(|e| {
                let e = e.object()?;
                let (namespace, metric_name, dimensions, statistic, period_s) = match e.opt("MetricStat") {
                    Some(ms) => {
                        let ms = ms.object()?;
                        let metric = ms.req_object("Metric")?;
                        (
                            metric.opt_str("Namespace")?.map(str::to_string),
                            metric.opt_str("MetricName")?.map(str::to_string),
                            dimensions_field(&metric, "Dimensions")?,
                            ms.opt_str("Stat")?.map(str::to_string),
                            ms.opt_i64("Period")?,
                        )
                    }
                    None => (None, None, BTreeMap::new(), None, e.opt_i64("Period")?),
                };
                Ok(MetricRef {
                    id: e.opt_str("Id")?.map(str::to_string),
                    namespace,
                    metric_name,
                    dimensions,
                    statistic,
                    period_s,
                    expression: e.opt_str("Expression")?.map(str::to_string),
                    return_data: e.opt_bool("ReturnData")?.unwrap_or(single),
                })
            })
            .collect::<Result<Vec<_>>>()?
    } else if t.opt("MetricName").is_some() || t.opt("Namespace").is_some() {
        let statistic = match t.opt_str("Statistic")? {
            Some(s) => Some(s.to_string()),
            None => t.opt_str("ExtendedStatistic")?.map(str::to_string),
        };
        vec![MetricRef {
            id: None,
            namespace: t.opt_str("Namespace")?.map(str::to_string),
            metric_name: t.opt_str("MetricName")?.map(str::to_string),
            dimensions: dimensions_field(t, "Dimensions")?,
            statistic,
            period_s: t.opt_i64("Period")?,
            expression: None,
            return_data: true,
        }]
    } else {
        Vec::new()
    };
    Ok(Trigger::Metric {
        metrics,
        threshold: t.opt_f64("Threshold")?,
        comparison: t.opt_str("ComparisonOperator")?.map(str::to_string),
        evaluation_periods: t.opt_i64("EvaluationPeriods")?,
    })
}
