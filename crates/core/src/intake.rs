//! Intake: turns the three ways a CloudWatch alarm reaches Firebreak (an SNS notification, an
//! EventBridge "CloudWatch Alarm State Change" event, the payload of a direct Lambda alarm action)
//! into [`AlarmSignal`]s. Bad input is an [`Error::Invalid`] whose `what` is the JSON path of the
//! offending field; nothing here panics, whatever the input.
//!
//! Which `aws_lambda_events` types are used, and why not the others:
//! - EventBridge: the envelope is read with [`EventBridgeEvent`] (every envelope field we need is
//!   there and optional where AWS may omit it); `detail` stays a `serde_json::Value` because the
//!   crate has no type for the alarm detail.
//! - SNS: [`SnsMessage`](aws_lambda_events::event::sns::SnsMessage) requires `Signature`,
//!   `SigningCertUrl`, `UnsubscribeUrl`, `TopicArn` and `Type`, none of which triage reads, and
//!   rejects events recorded or written for drills without them; a missing signature must not
//!   lose an alarm. We read `MessageId` and `Message` ourselves.
//! - Direct Lambda action: [`CloudWatchAlarm`](aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarm)
//!   requires `metricStat` on every metric entry (metric-math expression entries have none),
//!   requires `actionsSuppressor*` on composite configurations (absent when no suppressor is set),
//!   and defaults a missing `state.value` to `OK`, which would silently resolve incidents. The
//!   payload is read field by field instead.
//! - The alarm notification inside the SNS message has no type in the crate at all.
//!
//! Timestamps are accepted as RFC 3339 and in CloudWatch's own `2026-03-14T14:35:00.000+0000`
//! (offset without a colon).

use crate::error::Error;
use crate::incident::fnv1a;
use crate::signal::{AlarmSignal, AlarmState, Channel, MetricRef, Trigger};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The EventBridge `detail-type` of alarm state changes.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

type Result<T> = std::result::Result<T, Error>;

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
        parse_sns(obj)
    } else if obj.contains_key("detail-type") || obj.contains_key("detail") {
        parse_eventbridge(value).map(|s| vec![s])
    } else if obj.contains_key("alarmData") {
        parse_direct(obj).map(|s| vec![s])
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

// ---------------------------------------------------------------------------------------------
// SNS

fn parse_sns(obj: &Map<String, Value>) -> Result<Vec<AlarmSignal>> {
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

fn sns_notification(message_id: &str, m: &Obj<'_>) -> Result<AlarmSignal> {
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

fn sns_trigger(t: &Obj<'_>) -> Result<Trigger> {
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

// ---------------------------------------------------------------------------------------------
// EventBridge

fn parse_eventbridge(value: &Value) -> Result<AlarmSignal> {
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
    let event: EventBridgeEvent<Value> = serde_json::from_value(value.clone())
        .map_err(|e| Error::invalid("event", format!("not an EventBridge event: {e}")))?;
    let delivery_id = event
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::invalid("id", "missing: the EventBridge event id is the delivery id"))?;
    let alarm_arn = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .filter(|a| !a.is_empty())
        .cloned();
    let mut signal = alarm_detail(&detail, Channel::EventBridge, delivery_id, event.time)?;
    signal.account = event
        .account
        .filter(|a| !a.is_empty())
        .or_else(|| alarm_arn.as_deref().and_then(arn_account));
    signal.region = event
        .region
        .filter(|r| !r.is_empty())
        .or_else(|| alarm_arn.as_deref().and_then(arn_region));
    signal.alarm_arn = alarm_arn;
    Ok(signal)
}

// ---------------------------------------------------------------------------------------------
// Direct Lambda alarm action

fn parse_direct(obj: &Map<String, Value>) -> Result<AlarmSignal> {
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

// ---------------------------------------------------------------------------------------------
// The alarm detail shared by EventBridge `detail` and the direct action's `alarmData`

fn alarm_detail(
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

fn detail_metric(e: &Obj<'_>, single: bool) -> Result<MetricRef> {
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
fn reason_data(n: &Node<'_>) -> Option<Value> {
    match n.v {
        Value::String(s) => serde_json::from_str::<Value>(s).ok().filter(Value::is_object),
        Value::Object(_) => Some(n.v.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers

fn state_field(o: &Obj<'_>, key: &str) -> Result<AlarmState> {
    let n = o.req(key)?;
    state_value(&n, n.str()?)
}

fn state_value(n: &Node<'_>, s: &str) -> Result<AlarmState> {
    AlarmState::parse(s).ok_or_else(|| {
        Error::invalid(
            n.path.clone(),
            format!("unknown alarm state {s:?}: expected OK, ALARM or INSUFFICIENT_DATA"),
        )
    })
}

fn time_field(o: &Obj<'_>, key: &str) -> Result<DateTime<Utc>> {
    parse_time_node(&o.req(key)?)
}

fn parse_time_node(n: &Node<'_>) -> Result<DateTime<Utc>> {
    let s = n.str()?;
    parse_time(s).ok_or_else(|| {
        Error::invalid(
            n.path.clone(),
            format!("{s:?} is not a timestamp (expected e.g. 2026-03-14T14:35:00.000+0000)"),
        )
    })
}

/// Parses RFC 3339 and CloudWatch's `2026-03-14T14:35:00.000+0000` (offset without colon).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // No offset at all: CloudWatch times are UTC.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Dimensions as SNS sends them (`[{"name","value"}]`) or as EventBridge does (`{name: value}`).
fn dimensions_field(o: &Obj<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(n) = o.opt(key) else {
        return Ok(BTreeMap::new());
    };
    pairs(&n, &["name", "Name"], &["value", "Value"])
}

/// Tags as a map, or as a `[{"Key","Value"}]` list. Non-string values are stringified; a tag
/// whose value is a list, object or null is skipped.
fn tags_field(o: &Obj<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(n) = o.opt(key) else {
        return Ok(BTreeMap::new());
    };
    pairs(&n, &["Key", "key"], &["Value", "value"])
}

fn pairs(n: &Node<'_>, key_names: &[&str], value_names: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match n.v {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(v) = scalar_string(v) {
                    out.insert(k.clone(), v);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item = Node::new(item, format!("{}[{i}]", n.path)).object()?;
                let k = first_present(&item, key_names)?;
                let v = first_present(&item, value_names)?;
                if let Some(v) = scalar_string(v.v) {
                    out.insert(k.str()?.to_string(), v);
                }
            }
        }
        _ => {
            return Err(Error::invalid(
                n.path.clone(),
                format!("expected an object or a list of pairs, got {}", kind(n.v)),
            ))
        }
    }
    Ok(out)
}

fn first_present<'a>(o: &Obj<'a>, names: &[&str]) -> Result<Node<'a>> {
    names
        .iter()
        .find_map(|k| o.opt(k))
        .ok_or_else(|| Error::invalid(o.child_path(names.first().copied().unwrap_or("")), "missing"))
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// ARNs and regions

/// `arn:aws:cloudwatch:us-east-1:123456789012:alarm:NAME` → fields 3, 4 and the name (which may
/// itself contain `:`).
fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut it = arn.splitn(7, ':');
    let (prefix, _partition, service) = (it.next()?, it.next()?, it.next()?);
    let (region, account, resource, name) = (it.next()?, it.next()?, it.next()?, it.next()?);
    (prefix == "arn" && service == "cloudwatch" && resource == "alarm" && !name.is_empty())
        .then_some((region, account, name))
}

fn arn_region(arn: &str) -> Option<String> {
    arn_parts(arn)
        .map(|(r, _, _)| r)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

fn arn_account(arn: &str) -> Option<String> {
    arn_parts(arn)
        .map(|(_, a, _)| a)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

/// The alarm name in an alarm ARN.
pub fn arn_alarm_name(arn: &str) -> Option<String> {
    arn_parts(arn).map(|(_, _, n)| n.to_string())
}

/// SNS notifications name the region in words ("US East (N. Virginia)"); used only when there is
/// no alarm ARN to read the code from.
fn region_code_from_name(name: &str) -> Option<String> {
    const REGIONS: &[(&str, &str)] = &[
        ("US East (N. Virginia)", "us-east-1"),
        ("US East (Ohio)", "us-east-2"),
        ("US West (N. California)", "us-west-1"),
        ("US West (Oregon)", "us-west-2"),
        ("Africa (Cape Town)", "af-south-1"),
        ("Asia Pacific (Hong Kong)", "ap-east-1"),
        ("Asia Pacific (Mumbai)", "ap-south-1"),
        ("Asia Pacific (Osaka)", "ap-northeast-3"),
        ("Asia Pacific (Seoul)", "ap-northeast-2"),
        ("Asia Pacific (Singapore)", "ap-southeast-1"),
        ("Asia Pacific (Sydney)", "ap-southeast-2"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("Canada (Central)", "ca-central-1"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("Europe (Frankfurt)", "eu-central-1"),
        ("EU (Ireland)", "eu-west-1"),
        ("EU - Ireland", "eu-west-1"),
        ("Europe (Ireland)", "eu-west-1"),
        ("EU (London)", "eu-west-2"),
        ("Europe (London)", "eu-west-2"),
        ("EU (Paris)", "eu-west-3"),
        ("Europe (Paris)", "eu-west-3"),
        ("EU (Milan)", "eu-south-1"),
        ("Europe (Milan)", "eu-south-1"),
        ("EU (Stockholm)", "eu-north-1"),
        ("Europe (Stockholm)", "eu-north-1"),
        ("Middle East (Bahrain)", "me-south-1"),
        ("South America (Sao Paulo)", "sa-east-1"),
        ("South America (São Paulo)", "sa-east-1"),
    ];
    let name = name.trim();
    REGIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| (*c).to_string())
        .or_else(|| {
            // Already a code (hand-written events).
            let looks_like_code = name.split('-').count() >= 3
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            looks_like_code.then(|| name.to_string())
        })
}

// ---------------------------------------------------------------------------------------------
// Path-tracking JSON access

/// A JSON value and its path from the event root, for error messages.
struct Node<'a> {
    v: &'a Value,
    path: String,
}

/// A JSON object and its path.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Node<'a> {
    fn new(v: &'a Value, path: String) -> Node<'a> {
        Node { v, path }
    }

    fn root(map: &'a Map<String, Value>, path: &str) -> Obj<'a> {
        Obj {
            map,
            path: path.to_string(),
        }
    }

    fn display_path(&self) -> String {
        if self.path.is_empty() {
            "event".to_string()
        } else {
            self.path.clone()
        }
    }

    fn object(&self) -> Result<Obj<'a>> {
        match self.v {
            Value::Object(map) => Ok(Obj {
                map,
                path: self.path.clone(),
            }),
            other => Err(Error::invalid(
                self.display_path(),
                format!("expected an object, got {}", kind(other)),
            )),
        }
    }

    fn str(&self) -> Result<&'a str> {
        match self.v {
            Value::String(s) => Ok(s),
            other => Err(Error::invalid(
                self.display_path(),
                format!("expected a string, got {}", kind(other)),
            )),
        }
    }
}

impl<'a> Obj<'a> {
    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The field, or `None` when it is missing or null.
    fn opt(&self, key: &str) -> Option<Node<'a>> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| Node::new(v, self.child_path(key)))
    }

    fn req(&self, key: &str) -> Result<Node<'a>> {
        self.opt(key)
            .ok_or_else(|| Error::invalid(self.child_path(key), "missing"))
    }

    fn req_str(&self, key: &str) -> Result<&'a str> {
        let s = self.req(key)?.str()?;
        if s.trim().is_empty() {
            return Err(Error::invalid(self.child_path(key), "empty"));
        }
        Ok(s)
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.opt(key).map(|n| n.str()).transpose()
    }

    fn req_object(&self, key: &str) -> Result<Obj<'a>> {
        self.req(key)?.object()
    }

    fn req_array(&self, key: &str) -> Result<Vec<Node<'a>>> {
        let n = self.req(key)?;
        self.array_of(n)
    }

    fn opt_array(&self, key: &str) -> Result<Option<Vec<Node<'a>>>> {
        self.opt(key).map(|n| self.array_of(n)).transpose()
    }

    fn array_of(&self, n: Node<'a>) -> Result<Vec<Node<'a>>> {
        match n.v {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Node::new(v, format!("{}[{i}]", n.path)))
                .collect()),
            other => Err(Error::invalid(
                n.path,
                format!("expected a list, got {}", kind(other)),
            )),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => match n.v {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
                other => Err(Error::invalid(
                    n.path,
                    format!("expected a boolean, got {}", kind(other)),
                )),
            },
        }
    }

    /// A number; numeric strings are accepted (`"60"`), empty strings are absent.
    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => match n.v {
                Value::Number(x) => Ok(x.as_f64()),
                Value::String(s) if s.trim().is_empty() => Ok(None),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| Error::invalid(n.path.clone(), format!("{s:?} is not a number"))),
                other => Err(Error::invalid(
                    n.path,
                    format!("expected a number, got {}", kind(other)),
                )),
            },
        }
    }

    fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        let path = self.child_path(key);
        match self.opt_f64(key)? {
            None => Ok(None),
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Some(x as i64)),
            Some(x) => Err(Error::invalid(path, format!("{x} is not a whole number"))),
        }
    }
}

#[cfg(test)]
mod tests;
