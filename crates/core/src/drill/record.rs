//! `firebreak drill record`: the pure part. From an incident, its timeline and what the AWS
//! reads returned (the ECS fleet, the log events of the diagnosis window, the metric points),
//! the files of a drill directory that replays the incident: `scenario.yaml`, one EventBridge
//! "CloudWatch Alarm State Change" file per recorded state change, `logs.jsonl` and
//! `metrics.jsonl`. No AWS types: the CLI does the reads through the adapters.

use crate::adapters::local_metrics::MetricPoint;
use crate::model::evidence::{MetricSummary, TaskDefinition};
use crate::model::incident::{EcsService, Incident, Outcome};
use crate::model::settings::RemediationMode;
use crate::model::signal::{AlarmState, Trigger};
use crate::model::timeline::detail::{AlarmFired, Detail, RemediationApplied, Window};
use crate::model::timeline::{EntryKind, TimelineEntry};
use crate::ports::{MetricData, MetricQuery, MetricRequest, ServiceState};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What the AWS reads need, found on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The ECS service the incident is about.
    pub ecs: Option<EcsService>,
    /// The log groups the diagnosis queried (every diagnosis of the incident), in order.
    pub log_groups: Vec<String>,
    /// The window the diagnosis read: the widest over its diagnoses.
    pub window: Option<Window>,
    /// The metric steps the diagnosis read (one per namespace, name, dimensions, stat, period).
    pub metric_reads: Vec<MetricSummary>,
    /// The runbook the (first) diagnosis chose.
    pub runbook: Option<String>,
    /// The incident's first alarm time.
    pub alarm_at: Option<DateTime<Utc>>,
}

/// Reads the plan from the timeline.
pub fn plan(incident: &Incident, timeline: &[TimelineEntry]) -> Plan {
    let mut p = Plan {
        ecs: incident.ecs.clone(),
        log_groups: Vec::new(),
        window: None,
        metric_reads: Vec::new(),
        runbook: None,
        alarm_at: None,
    };
    let add_group = |groups: &mut Vec<String>, g: &str| {
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    };
    for e in timeline {
        match e.detail() {
            Detail::AlarmFired(_) => {
                p.alarm_at = Some(p.alarm_at.map_or(e.at, |a| a.min(e.at)));
            }
            Detail::DiagnosisStarted(d) => {
                if p.runbook.is_none() {
                    p.runbook.clone_from(&d.runbook);
                }
                p.window = Some(match p.window {
                    None => d.window,
                    Some(w) => Window {
                        start: w.start.min(d.window.start),
                        end: w.end.max(d.window.end),
                    },
                });
                for g in &d.log_groups {
                    add_group(&mut p.log_groups, g);
                }
            }
            Detail::QueryCompleted(q) => {
                for g in q.log_groups.iter().flatten() {
                    add_group(&mut p.log_groups, g);
                }
            }
            Detail::QueryFailed(q) => {
                for g in q.log_groups.iter().flatten() {
                    add_group(&mut p.log_groups, g);
                }
            }
            Detail::MetricRead(m) => {
                let same = |x: &MetricSummary| {
                    x.namespace == m.namespace
                        && x.metric == m.metric
                        && x.dimensions == m.dimensions
                        && x.stat == m.stat
                        && x.period_s == m.period_s
                };
                if !p.metric_reads.iter().any(same) {
                    p.metric_reads.push((**m).clone());
                }
            }
            _ => {}
        }
    }
    p
}

/// The GetMetricData request that reads the metric steps again: one query per step (`m0`, `m1`,
/// …) from `start` (the earliest baseline start) to `end`. `None` when nothing was read.
pub fn metric_request(
    reads: &[MetricSummary],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<MetricRequest> {
    if reads.is_empty() || start >= end {
        return None;
    }
    Some(MetricRequest {
        queries: reads
            .iter()
            .enumerate()
            .map(|(i, m)| MetricQuery {
                id: format!("m{i}"),
                namespace: m.namespace.clone(),
                name: m.metric.clone(),
                dimensions: m.dimensions.clone(),
                stat: m.stat.clone(),
                period_s: m.period_s,
            })
            .collect(),
        start,
        end,
    })
}

/// The points GetMetricData answered, as drill metric lines: each answer's points under its
/// query's metric. A statistic is written as the value of its period; the drill aggregates the
/// period again with the same statistic, which gives the value back for one point a period.
pub fn metric_points(request: &MetricRequest, answers: &[MetricData]) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    for a in answers {
        let Some(q) = request.queries.iter().find(|q| q.id == a.id) else {
            continue;
        };
        for (at, value) in &a.points {
            out.push(MetricPoint {
                namespace: q.namespace.clone(),
                name: q.name.clone(),
                dimensions: q.dimensions.clone(),
                at: *at,
                value: *value,
            });
        }
    }
    out.sort_by(|a, b| (a.at, &a.namespace, &a.name).cmp(&(b.at, &b.namespace, &b.name)));
    out
}

/// One log event as FilterLogEvents returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedLog {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub message: String,
}

/// The ECS service as DescribeServices and DescribeTaskDefinition returned it, now.
#[derive(Debug, Clone)]
pub struct RecordedFleet {
    pub state: ServiceState,
    /// Each revision read, with what DescribeTaskDefinition returned (`None`: unknown to ECS).
    pub task_definitions: Vec<(String, Option<TaskDefinition>)>,
}

/// The revisions a recording describes: the service's, its deployments', the one a remediation
/// replaced, and the previous revision of each family (a rollback's target).
pub fn revisions_to_read(state: &ServiceState, timeline: &[TimelineEntry]) -> Vec<String> {
    fn add(names: &mut Vec<String>, n: &str) {
        let n = short_name(n);
        if !n.is_empty() && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    let mut names: Vec<String> = Vec::new();
    add(&mut names, &state.task_definition);
    for d in &state.deployments {
        add(&mut names, &d.task_definition);
    }
    for a in applied(timeline) {
        add(&mut names, &a.before.task_definition);
    }
    let mut previous = Vec::new();
    for n in &names {
        if let Some((family, rev)) = n.rsplit_once(':') {
            if let Ok(r) = rev.parse::<u64>() {
                if r > 1 {
                    previous.push(format!("{family}:{}", r - 1));
                }
            }
        }
    }
    for p in previous {
        add(&mut names, &p);
    }
    names
}

fn short_name(n: &str) -> &str {
    n.rsplit('/').next().unwrap_or(n)
}

fn applied(timeline: &[TimelineEntry]) -> impl Iterator<Item = &RemediationApplied> {
    timeline.iter().filter_map(|e| match e.detail() {
        Detail::RemediationApplied(a) => Some(&**a),
        _ => None,
    })
}

/// The metrics part of a recording.
#[derive(Debug, Clone)]
pub enum RecordedMetrics {
    /// The diagnosis read no metric.
    NotRead,
    /// GetMetricData answered (possibly with no points).
    Points(Vec<MetricPoint>),
    /// Not recorded: the reason (the call that failed, `--no-metrics`).
    Missing(String),
}

/// Everything a recording is made from.
#[derive(Debug, Clone)]
pub struct Recording<'a> {
    pub incident: &'a Incident,
    pub timeline: &'a [TimelineEntry],
    /// `None` when the incident names no ECS service, or it could not be described (the reason).
    pub fleet: Result<RecordedFleet, String>,
    pub logs: Vec<RecordedLog>,
    /// Why the logs are incomplete (the bound was reached), when they are.
    pub logs_note: Option<String>,
    pub metrics: RecordedMetrics,
}

/// The files of a drill directory: name and content.
#[derive(Debug, Clone)]
pub struct DrillFiles {
    pub files: Vec<(String, String)>,
    /// What was inferred or could not be recorded (also in scenario.yaml's comments).
    pub notes: Vec<String>,
}

impl DrillFiles {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }
}

#[derive(Serialize)]
struct OutScenario {
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ecs: Vec<OutFleet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    services: Vec<OutMapping>,
    #[serde(skip_serializing_if = "OutSettings::is_empty")]
    settings: OutSettings,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    alarms: Vec<OutAlarm>,
    steps: Vec<OutStep>,
    expect: OutExpect,
}

#[derive(Serialize)]
struct OutFleet {
    cluster: String,
    service: String,
    desired: i32,
    running: i32,
    task_definition: String,
    task_definitions: Vec<OutTd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deployments: Vec<OutDeployment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<OutEvent>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct OutDeployment {
    task_definition: String,
    started: String,
}

#[derive(Serialize)]
struct OutEvent {
    at: String,
    message: String,
}

#[derive(Serialize)]
struct OutMapping {
    alarm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ecs: Option<String>,
}

#[derive(Serialize, Default)]
struct OutSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation_mode: Option<RemediationMode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow: Vec<String>,
}

impl OutSettings {
    fn is_empty(&self) -> bool {
        self.remediation_mode.is_none() && self.allow.is_empty()
    }
}

#[derive(Serialize)]
struct OutAlarm {
    name: String,
    state: AlarmState,
}

#[derive(Serialize)]
struct OutStep {
    at: String,
    event: String,
}

#[derive(Serialize)]
struct OutExpect {
    severity: crate::model::severity::Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    remediation: String,
    status: crate::model::incident::IncidentStatus,
    incidents: usize,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// One alarm state change the timeline recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub at: DateTime<Utc>,
    pub alarm: String,
    pub state: AlarmState,
    pub reason: String,
}

/// The alarm state changes of the timeline, oldest first: `alarm-fired`, `alarm-recovered`
/// and `alarm-insufficient-data` entries (the last two carry their alarm and reason in the
/// summary only).
pub fn state_changes(timeline: &[TimelineEntry]) -> Vec<StateChange> {
    let mut out: Vec<StateChange> = timeline
        .iter()
        .filter_map(|e| {
            let (alarm, state, reason) = match (e.kind(), e.detail()) {
                (EntryKind::AlarmFired, Detail::AlarmFired(f)) => {
                    let reason = e
                        .summary
                        .strip_prefix(&format!("{} is ALARM: ", f.alarm))
                        .unwrap_or(&e.summary);
                    (f.alarm.clone(), AlarmState::Alarm, reason.to_string())
                }
                (EntryKind::AlarmRecovered, _) => {
                    let (name, rest) = e.summary.split_once(" is OK")?;
                    let reason = rest.split_once("): ").map_or("", |(_, r)| r);
                    (name.to_string(), AlarmState::Ok, reason.to_string())
                }
                (EntryKind::AlarmInsufficientData, _) => {
                    let (name, rest) = e.summary.split_once(" has INSUFFICIENT_DATA")?;
                    let reason = rest.split_once("): ").map_or("", |(_, r)| r);
                    (name.to_string(), AlarmState::InsufficientData, reason.to_string())
                }
                _ => return None,
            };
            Some(StateChange {
                at: e.at,
                alarm,
                state,
                reason,
            })
        })
        .collect();
    out.sort_by_key(|c| c.at);
    out
}

/// The EventBridge "CloudWatch Alarm State Change" event of one state change: the alarm's ARN,
/// account and region, metrics or composite rule from its `alarm-fired` entry, `tags` as the
/// recording could tell them.
pub fn eventbridge_event(
    change: &StateChange,
    fired: Option<&AlarmFired>,
    previous: Option<AlarmState>,
    tags: &BTreeMap<String, String>,
    id: &str,
) -> Value {
    let arn = fired.and_then(|f| f.arn.clone());
    let parts: Vec<&str> = arn.as_deref().map(|a| a.split(':').collect()).unwrap_or_default();
    let region = parts
        .get(3)
        .copied()
        .filter(|s| !s.is_empty())
        .unwrap_or("us-east-1");
    let account = parts
        .get(4)
        .copied()
        .filter(|s| !s.is_empty())
        .unwrap_or("123456789012");
    let ts = change.at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let mut state = json!({"value": change.state.as_str(), "reason": change.reason, "timestamp": ts});
    let configuration = match fired.map(|f| &f.trigger) {
        Some(Trigger::Composite {
            rule,
            triggering_alarms,
        }) => {
            let arns: Vec<Value> = triggering_alarms
                .iter()
                .map(|a| json!({"arn": format!("arn:aws:cloudwatch:{region}:{account}:alarm:{a}")}))
                .collect();
            state["reasonData"] = Value::String(json!({"triggeringAlarms": arns}).to_string());
            json!({"alarmRule": rule})
        }
        Some(Trigger::Metric {
            metrics, threshold, ..
        }) => {
            if let Some(t) = threshold {
                state["reasonData"] = Value::String(json!({"version": "1.0", "threshold": t}).to_string());
            }
            let entries: Vec<Value> = metrics
                .iter()
                .map(|m| {
                    let mut e = serde_json::Map::new();
                    if let Some(id) = &m.id {
                        e.insert("id".into(), json!(id));
                    }
                    if let Some(x) = &m.expression {
                        e.insert("expression".into(), json!(x));
                    }
                    if m.metric_name.is_some() || m.namespace.is_some() {
                        let mut stat = json!({
                            "metric": {
                                "namespace": m.namespace,
                                "name": m.metric_name,
                                "dimensions": m.dimensions,
                            }
                        });
                        if let Some(p) = m.period_s {
                            stat["period"] = json!(p);
                        }
                        if let Some(s) = &m.statistic {
                            stat["stat"] = json!(s);
                        }
                        e.insert("metricStat".into(), stat);
                    } else if let Some(p) = m.period_s {
                        e.insert("period".into(), json!(p));
                    }
                    e.insert("returnData".into(), json!(m.return_data));
                    Value::Object(e)
                })
                .collect();
            json!({"metrics": entries})
        }
        None => json!({"metrics": []}),
    };
    let mut detail = json!({
        "alarmName": change.alarm,
        "state": state,
        "configuration": configuration,
    });
    if let Some(p) = previous {
        detail["previousState"] = json!({"value": p.as_str()});
    }
    if !tags.is_empty() {
        detail["alarmTags"] = json!(tags);
    }
    json!({
        "version": "0",
        "id": id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": rfc3339(change.at),
        "region": region,
        "resources": arn.map_or_else(Vec::new, |a| vec![a]),
        "detail": detail,
    })
}

/// The drill directory's files for `r`.
///
/// # Errors
/// [`crate::Error::Invalid`] when the timeline holds no alarm state change (nothing to replay).
pub fn scenario_files(r: &Recording<'_>) -> Result<DrillFiles, crate::Error> {
    let inc = r.incident;
    let mut notes: Vec<String> = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    let changes = state_changes(r.timeline);
    if changes.is_empty() {
        return Err(crate::Error::invalid(
            format!("incident {}", inc.id),
            "its timeline holds no alarm state change to replay",
        ));
    }

    // classification: the severity tag when the policy took it from one
    let tag_severity = r.timeline.iter().find_map(|e| match e.detail() {
        Detail::Classified(c) if c.rule.as_deref() == Some(crate::policy::TAG_RULE) => Some(c.severity),
        _ => None,
    });
    let fired_by_alarm = |name: &str, before: DateTime<Utc>| -> Option<&AlarmFired> {
        r.timeline.iter().rev().find_map(|e| match e.detail() {
            Detail::AlarmFired(f) if f.alarm == name && e.at <= before => Some(f),
            _ => None,
        })
    };
    let any_fired = |name: &str| -> Option<&AlarmFired> {
        r.timeline.iter().find_map(|e| match e.detail() {
            Detail::AlarmFired(f) if f.alarm == name => Some(f),
            _ => None,
        })
    };
    let mut steps = Vec::new();
    let mut last_state: BTreeMap<String, AlarmState> = BTreeMap::new();
    let mut seeds: Vec<OutAlarm> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let fired = fired_by_alarm(&c.alarm, c.at).or_else(|| any_fired(&c.alarm));
        let previous = last_state.get(&c.alarm).copied().or_else(|| {
            fired
                .and_then(|f| f.previous_state.as_deref())
                .and_then(AlarmState::parse)
                .filter(|_| c.state == AlarmState::Alarm)
        });
        if !last_state.contains_key(&c.alarm) {
            if let Some(p) = previous {
                seeds.push(OutAlarm {
                    name: c.alarm.clone(),
                    state: p,
                });
            }
        }
        last_state.insert(c.alarm.clone(), c.state);
        let mut tags = BTreeMap::new();
        if let Some(s) = tag_severity {
            tags.insert("severity".to_string(), s.to_string());
        }
        let name = format!("event-{:03}.eventbridge.json", i + 1);
        let id = format!("firebreak-record-{}-{:03}", inc.id, i + 1);
        let event = eventbridge_event(c, fired, previous, &tags, &id);
        files.push((name.clone(), format!("{}\n", pretty(&event))));
        steps.push(OutStep {
            at: rfc3339(c.at),
            event: name,
        });
    }
    if tag_severity.is_some() {
        notes.push(
            "the timeline does not keep alarm tags: the events carry the `severity` tag the classification took; other tags are not recorded".into(),
        );
    } else {
        notes.push("the timeline does not keep alarm tags: the events carry none, and `services:` maps each alarm to the service triage gave it".into());
    }

    // services: each alarm mapped to the service triage gave it
    let mut alarm_names: Vec<String> = Vec::new();
    for c in &changes {
        if !alarm_names.contains(&c.alarm) {
            alarm_names.push(c.alarm.clone());
        }
    }
    let services: Vec<OutMapping> = alarm_names
        .iter()
        .map(|a| {
            let ecs = inc.alarm_targets.get(a).or(inc.ecs.as_ref());
            OutMapping {
                alarm: a.clone(),
                service: ecs.is_none().then(|| inc.service.clone()),
                ecs: ecs.map(ToString::to_string),
            }
        })
        .collect();

    // the fleet, as it was at the alarm
    let first_applied = applied(r.timeline).next();
    let mut ecs = Vec::new();
    match &r.fleet {
        Ok(f) => {
            let s = &f.state;
            let (mut desired, mut running, mut td) =
                (s.desired, s.running, short_name(&s.task_definition).to_string());
            let cutoff = first_applied.map(|a| a.applied_at);
            if let Some(a) = first_applied {
                desired = a.before.desired;
                running = a.before.running;
                td = short_name(&a.before.task_definition).to_string();
                notes.push(format!(
                    "the fleet is as Firebreak found it before its {} at {} (desired {}, running {}, {}), not as DescribeServices shows it now",
                    a.record.action,
                    rfc3339(a.applied_at),
                    desired,
                    running,
                    td
                ));
            } else {
                notes.push("the fleet is as DescribeServices shows it at recording time: changes people made since the alarm are not recorded".into());
            }
            let mut deployments: Vec<OutDeployment> = s
                .deployments
                .iter()
                .filter_map(|d| {
                    let started = d.created_at?;
                    (cutoff.is_none_or(|c| started < c))
                        .then(|| (started, short_name(&d.task_definition).to_string()))
                })
                .map(|(started, t)| OutDeployment {
                    task_definition: t,
                    started: rfc3339(started),
                })
                .collect();
            deployments.sort_by(|a, b| a.started.cmp(&b.started));
            let events: Vec<OutEvent> = s
                .events
                .iter()
                .filter(|e| cutoff.is_none_or(|c| e.at < c))
                .map(|e| OutEvent {
                    at: rfc3339(e.at),
                    message: e.message.clone(),
                })
                .collect();
            let mut task_definitions = Vec::new();
            for (name, def) in &f.task_definitions {
                match def {
                    Some(d) => task_definitions.push(task_definition_value(name, d, &mut notes)),
                    None => {
                        if short_name(name) == td {
                            task_definitions.push(OutTd::Name(short_name(name).to_string()));
                            notes.push(format!(
                                "{name}: DescribeTaskDefinition knows it no more; recorded by name only"
                            ));
                        }
                    }
                }
            }
            if !task_definitions.iter().any(|v| v.name() == td) {
                task_definitions.push(OutTd::Name(td.clone()));
            }
            ecs.push(OutFleet {
                cluster: s.service.cluster.clone(),
                service: s.service.service.clone(),
                desired,
                running,
                task_definition: td,
                task_definitions,
                deployments,
                events,
                tags: s.tags.clone(),
            });
        }
        Err(why) => notes.push(format!("no ECS fleet recorded: {why}")),
    }

    // logs
    let logs = if r.logs.is_empty() {
        None
    } else {
        let mut text = String::new();
        for l in &r.logs {
            text.push_str(
                &json!({"group": l.group, "stream": l.stream, "timestamp": l.timestamp_ms, "message": l.message})
                    .to_string(),
            );
            text.push('\n');
        }
        files.push(("logs.jsonl".into(), text));
        Some("logs.jsonl".to_string())
    };
    if let Some(n) = &r.logs_note {
        notes.push(n.clone());
    }

    // metrics
    let metrics = match &r.metrics {
        RecordedMetrics::NotRead => None,
        RecordedMetrics::Points(points) => {
            let mut text = String::new();
            for p in points {
                text.push_str(
                    &json!({"namespace": p.namespace, "name": p.name, "dimensions": p.dimensions,
                            "timestamp": rfc3339(p.at), "value": p.value})
                    .to_string(),
                );
                text.push('\n');
            }
            if points.is_empty() {
                notes.push("GetMetricData returned no points for the metric steps (CloudWatch keeps 1-minute data 15 days)".into());
            }
            files.push(("metrics.jsonl".into(), text));
            Some("metrics.jsonl".to_string())
        }
        RecordedMetrics::Missing(why) => {
            notes.push(format!(
                "metrics not recorded: {why}; the replay's metric steps have no data, which may change the diagnosis"
            ));
            None
        }
    };

    // settings: the mode the incident ran under, and the service when an action was applied
    let records = &inc.remediations;
    let requested_mode = r.timeline.iter().find_map(|e| match e.detail() {
        Detail::RemediationRequested(q) => q.mode,
        _ => None,
    });
    let mode = records.first().map(|x| x.mode).or(requested_mode);
    let mut settings = OutSettings::default();
    match mode {
        Some(m) => settings.remediation_mode = Some(m),
        None => {
            settings.remediation_mode = Some(RemediationMode::Off);
            notes
                .push("no remediation ran on the incident: the replay runs with remediation_mode off".into());
        }
    }
    let refused_by_allow = r.timeline.iter().any(|e| match e.detail() {
        Detail::RemediationRefused(x) => x.guardrail.contains("allow"),
        _ => false,
    });
    if let Some(svc) = &inc.ecs {
        if records.iter().any(|x| x.outcome == Outcome::Applied)
            || (!refused_by_allow && records.iter().any(|x| x.outcome != Outcome::Refused))
        {
            settings.allow.push(svc.to_string());
        }
    }

    let remediation = records
        .iter()
        .find(|x| x.outcome == Outcome::Applied)
        .or_else(|| {
            records
                .iter()
                .find(|x| matches!(x.outcome, Outcome::DryRun | Outcome::AwaitingApproval))
        })
        .map_or_else(|| "none".to_string(), |x| x.action.to_string());
    if inc.cause.is_none() {
        notes.push("the diagnosis abstained: `expect` names no cause".into());
    }
    let scenario = OutScenario {
        description: format!("Recorded from incident {}: {}", inc.id, inc.title),
        ecs,
        logs,
        metrics,
        services,
        settings,
        alarms: seeds,
        steps,
        expect: OutExpect {
            severity: inc.severity,
            cause: inc.cause.clone(),
            remediation,
            status: inc.status,
            incidents: 1,
        },
    };
    let yaml = serde_norway::to_string(&scenario)
        .map_err(|e| crate::Error::invalid("scenario.yaml", e.to_string()))?;
    let mut text = format!(
        "# Recorded by `firebreak drill record {}`: the alarm events as the timeline recorded them,\n# the ECS fleet, the log events of the diagnosis window and the metrics it read; `expect` is\n# the real outcome.\n",
        inc.id
    );
    for n in &notes {
        text.push_str(&comment(n));
    }
    text.push_str(&yaml);
    files.insert(0, ("scenario.yaml".into(), text));
    Ok(DrillFiles { files, notes })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// `# text`, wrapped at 100 columns, one line per control-free line.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        let word: String = word.chars().filter(|c| !c.is_control()).collect();
        if line.len() + 1 + word.len() > 100 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(&word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A task definition as the drill format takes it: one container (the one named after the
/// family, else the first), task-level CPU and memory.
fn task_definition_value(name: &str, d: &TaskDefinition, notes: &mut Vec<String>) -> OutTd {
    let name = short_name(if d.name.is_empty() { name } else { &d.name });
    let family = name.split_once(':').map_or(name, |(f, _)| f);
    let Some(c) = d
        .containers
        .iter()
        .find(|c| c.name == family)
        .or_else(|| d.containers.first())
    else {
        return OutTd::Name(name.to_string());
    };
    if d.containers.len() > 1 {
        notes.push(format!(
            "{name} has {} containers; the drill describes one, {}",
            d.containers.len(),
            c.name
        ));
    }
    let v = OutTaskDefinition {
        name: name.to_string(),
        image: c.image.clone(),
        environment: c.environment.clone(),
        secrets: c.secrets.clone(),
        cpu: d.cpu.clone().or_else(|| c.cpu.map(|x| x.to_string())),
        memory: d.memory.clone().or_else(|| c.memory.map(|x| x.to_string())),
        command: c.command.clone(),
        entry_point: c.entry_point.clone(),
    };
    OutTd::Full(Box::new(v))
}

/// A revision of the fleet: by name, or what it holds.
#[derive(Serialize)]
#[serde(untagged)]
enum OutTd {
    Name(String),
    Full(Box<OutTaskDefinition>),
}

impl OutTd {
    fn name(&self) -> &str {
        match self {
            OutTd::Name(n) => n,
            OutTd::Full(b) => &b.name,
        }
    }
}

/// A task definition in the drill format, keys in the documented order.
#[derive(Serialize)]
struct OutTaskDefinition {
    name: String,
    image: String,
    environment: BTreeMap<String, String>,
    secrets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entry_point: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::incident::{IncidentId, IncidentStatus, RemediationRecord};
    use crate::model::remedy::ServiceUpdate;
    use crate::model::severity::Severity;
    use crate::model::signal::{Channel, MetricRef};
    use crate::model::timeline::detail::{Classified, DiagnosisStarted, ServiceSnapshot};
    use crate::ports::Deployment;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
    }

    const ALARM: &str = "articles-api-5xx-rate";

    fn fired() -> AlarmFired {
        AlarmFired {
            alarm: ALARM.into(),
            arn: Some(format!("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:{ALARM}")),
            previous_state: Some("OK".into()),
            channel: Channel::Sns,
            trigger: Trigger::Metric {
                metrics: vec![MetricRef {
                    id: None,
                    namespace: Some("AWS/ApplicationELB".into()),
                    metric_name: Some("HTTPCode_Target_5XX_Count".into()),
                    dimensions: [("LoadBalancer".to_string(), "app/prod-alb/1".to_string())].into(),
                    statistic: Some("Sum".into()),
                    period_s: Some(60),
                    expression: None,
                    return_data: true,
                }],
                threshold: Some(5.0),
                comparison: None,
                evaluation_periods: None,
            },
        }
    }

    fn svc() -> EcsService {
        EcsService::new("prod", "articles-api")
    }

    fn incident() -> Incident {
        let mut inc = Incident::open(
            IncidentId::derive(at(14, 35), "d-1", "prod/articles-api"),
            "prod/articles-api",
            Severity::Sev2,
            format!("{ALARM} on prod/articles-api"),
            at(14, 35),
            at(14, 35),
        );
        inc.ecs = Some(svc());
        inc.cause = Some("db-connection-pool-exhausted".into());
        inc.status = IncidentStatus::Resolved;
        inc.remediations.push(RemediationRecord {
            action: "ecs-scale-out".into(),
            mode: RemediationMode::Auto,
            outcome: Outcome::Applied,
            detail: "desiredCount 4 → 8".into(),
            target: Some("prod/articles-api".into()),
            at: at(14, 36),
        });
        inc
    }

    fn timeline(with_metric: bool) -> Vec<TimelineEntry> {
        let snap = |d: i32| ServiceSnapshot {
            task_definition: "articles-api:42".into(),
            desired: d,
            running: d,
            deployments: 1,
        };
        let mut t = vec![
            TimelineEntry::new(
                "1",
                at(14, 35),
                EntryKind::AlarmFired,
                format!("{ALARM} is ALARM: 15 > 5"),
            )
            .with_detail(fired()),
            TimelineEntry::new("2", at(14, 35), EntryKind::Classified, "classified SEV2").with_detail(
                Classified {
                    severity: Severity::Sev2,
                    rule: Some("elb-5xx".into()),
                    service: "prod/articles-api".into(),
                    notes: vec![],
                },
            ),
            TimelineEntry::new("3", at(14, 35), EntryKind::DiagnosisStarted, "diagnosis started")
                .with_detail(DiagnosisStarted {
                    runbook: Some("db-connection-pool".into()),
                    selected_because: None,
                    alarm: ALARM.into(),
                    window: Window {
                        start: at(13, 35),
                        end: at(14, 35),
                    },
                    log_groups: vec!["/ecs/articles-api".into()],
                }),
            TimelineEntry::new("5", at(14, 36), EntryKind::RemediationApplied, "scaled out").with_detail(
                RemediationApplied {
                    record: incident().remediations[0].clone(),
                    before: snap(4),
                    after: snap(8),
                    update: ServiceUpdate {
                        task_definition: None,
                        desired: Some(8),
                        force_new_deployment: false,
                    },
                    applied_at: at(14, 36),
                    verify_window_s: 900,
                    verify_by: at(14, 51),
                    cause: "db-connection-pool-exhausted".into(),
                    runbook: None,
                },
            ),
            TimelineEntry::new(
                "6",
                at(14, 41),
                EntryKind::AlarmRecovered,
                format!("{ALARM} is OK (0 alarm(s) still firing): back under 5"),
            ),
        ];
        if with_metric {
            let m: MetricSummary = serde_json::from_value(json!({
                "step": "request-rate", "namespace": "AWS/ApplicationELB", "metric": "RequestCount",
                "dimensions": {"LoadBalancer": "app/prod-alb/1"}, "stat": "Sum", "period_s": 60,
                "baseline": null, "baseline_points": 0, "level": null, "since": null,
                "change": "no-data", "points": []
            }))
            .unwrap();
            t.push(
                TimelineEntry::new("4", at(14, 35), EntryKind::MetricRead, "read")
                    .with_detail(Detail::MetricRead(Box::new(m))),
            );
        }
        t
    }

    fn fleet() -> RecordedFleet {
        let td = |n: &str, pool: &str| TaskDefinition {
            name: n.into(),
            cpu: Some("512".into()),
            memory: Some("1024".into()),
            containers: vec![crate::model::evidence::ContainerDefinition {
                name: "articles-api".into(),
                image: "repo/articles-api:1".into(),
                environment: [("DB_POOL_SIZE".to_string(), pool.to_string())].into(),
                secrets: vec!["DB_PASSWORD".into()],
                ..Default::default()
            }],
        };
        RecordedFleet {
            state: ServiceState {
                service: svc(),
                status: "ACTIVE".into(),
                task_definition: "arn:aws:ecs:eu-west-1:111122223333:task-definition/articles-api:42".into(),
                desired: 8,
                running: 8,
                pending: 0,
                deployments: vec![Deployment {
                    id: "ecs-svc/1".into(),
                    status: "PRIMARY".into(),
                    task_definition: "articles-api:42".into(),
                    desired: 8,
                    running: 8,
                    rollout_state: Some("COMPLETED".into()),
                    created_at: Some(at(9, 0)),
                    updated_at: Some(at(14, 36)),
                }],
                events: vec![],
                tags: BTreeMap::new(),
            },
            task_definitions: vec![
                ("articles-api:42".into(), Some(td("articles-api:42", "10"))),
                ("articles-api:41".into(), Some(td("articles-api:41", "10"))),
            ],
        }
    }

    /// A scratch directory removed when dropped (core has no tempfile dependency).
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write(files: &DrillFiles) -> Scratch {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("firebreak-record-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, c) in &files.files {
            std::fs::write(dir.join(name), c).unwrap();
        }
        Scratch(dir)
    }

    #[test]
    fn the_plan_names_the_diagnosis_log_groups_window_and_metric_steps() {
        let p = plan(&incident(), &timeline(true));
        assert_eq!(p.log_groups, vec!["/ecs/articles-api".to_string()]);
        assert_eq!(p.window.unwrap().start, at(13, 35));
        assert_eq!(p.metric_reads.len(), 1);
        assert_eq!(p.alarm_at, Some(at(14, 35)));
        let req = metric_request(&p.metric_reads, at(12, 35), at(14, 35)).unwrap();
        assert_eq!(req.queries[0].name, "RequestCount");
        assert_eq!(req.queries[0].id, "m0");
    }

    #[test]
    fn metric_answers_become_drill_points_under_their_query() {
        let p = plan(&incident(), &timeline(true));
        let req = metric_request(&p.metric_reads, at(12, 35), at(14, 35)).unwrap();
        let points = metric_points(
            &req,
            &[MetricData {
                id: "m0".into(),
                points: vec![(at(14, 1), 2400.0), (at(14, 0), 1200.0)],
                note: None,
            }],
        );
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].at, at(14, 0));
        assert_eq!(
            points[0].dimensions.get("LoadBalancer").map(String::as_str),
            Some("app/prod-alb/1")
        );
    }

    #[test]
    fn the_recording_loads_as_a_drill_with_the_fleet_before_the_scale_out_and_the_real_outcome() {
        let inc = incident();
        let t = timeline(false);
        let files = scenario_files(&Recording {
            incident: &inc,
            timeline: &t,
            fleet: Ok(fleet()),
            logs: vec![RecordedLog {
                group: "/ecs/articles-api".into(),
                stream: "s".into(),
                timestamp_ms: at(14, 30).timestamp_millis(),
                message: "ERROR DatabaseError: connection pool exhausted".into(),
            }],
            logs_note: None,
            metrics: RecordedMetrics::Missing("CloudWatch GetMetricData failed".into()),
        })
        .unwrap();
        let dir = write(&files);
        let loaded = crate::drill::LoadedScenario::load(dir.path()).unwrap();
        let s = &loaded.scenario;
        assert_eq!(s.ecs[0].desired, 4, "the desired count before the scale-out");
        assert_eq!(s.ecs[0].task_definition, "articles-api:42");
        assert_eq!(s.ecs[0].revisions(), vec!["articles-api:42", "articles-api:41"]);
        assert!(s.ecs[0].task_definitions[0].definition().is_some());
        assert_eq!(s.settings.remediation_mode, Some(RemediationMode::Auto));
        assert_eq!(s.settings.allow, vec!["prod/articles-api".to_string()]);
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.steps[0].at, at(14, 35));
        assert_eq!(s.steps[1].at, at(14, 41));
        assert!(s.metrics.is_none());
        let e = s.expect.as_ref().unwrap();
        assert_eq!(e.severity, Some(Severity::Sev2));
        assert_eq!(e.cause.as_deref(), Some("db-connection-pool-exhausted"));
        assert_eq!(e.remediation.as_deref(), Some("ecs-scale-out"));
        assert_eq!(e.status, Some(IncidentStatus::Resolved));
        assert_eq!(e.incidents, Some(1));
        assert_eq!(s.alarms.len(), 1);
        let yaml = files.get("scenario.yaml").unwrap();
        assert!(
            yaml.contains("# metrics not recorded: CloudWatch GetMetricData failed"),
            "{yaml}"
        );
        assert!(yaml.contains("before its ecs-scale-out"), "{yaml}");
        assert!(files
            .get("logs.jsonl")
            .unwrap()
            .contains("connection pool exhausted"));
    }

    #[test]
    fn each_state_change_is_an_eventbridge_event_triage_reads_as_recorded() {
        let inc = incident();
        let t = timeline(false);
        let files = scenario_files(&Recording {
            incident: &inc,
            timeline: &t,
            fleet: Err("not described".into()),
            logs: vec![],
            logs_note: None,
            metrics: RecordedMetrics::NotRead,
        })
        .unwrap();
        let fired = crate::intake::parse_event_str(files.get("event-001.eventbridge.json").unwrap()).unwrap();
        let s = &fired[0];
        assert_eq!(s.alarm_name, ALARM);
        assert_eq!(s.state, AlarmState::Alarm);
        assert_eq!(s.reason, "15 > 5");
        assert_eq!(s.changed_at, at(14, 35));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.trigger, fired_trigger());
        let ok = crate::intake::parse_event_str(files.get("event-002.eventbridge.json").unwrap()).unwrap();
        assert_eq!(ok[0].state, AlarmState::Ok);
        assert_eq!(ok[0].reason, "back under 5");
        assert_eq!(ok[0].previous_state, Some(AlarmState::Alarm));
        assert!(files.get("logs.jsonl").is_none());
    }

    #[test]
    fn a_composite_alarm_keeps_its_rule_and_the_severity_tag_the_policy_took() {
        let mut f = fired();
        f.trigger = Trigger::Composite {
            rule: "ALARM(\"a\") AND ALARM(\"b\")".into(),
            triggering_alarms: vec!["a".into()],
        };
        let t = vec![
            TimelineEntry::new(
                "1",
                at(14, 35),
                EntryKind::AlarmFired,
                format!("{ALARM} is ALARM: a fired"),
            )
            .with_detail(f.clone()),
            TimelineEntry::new("2", at(14, 35), EntryKind::Classified, "classified SEV1").with_detail(
                Classified {
                    severity: Severity::Sev1,
                    rule: Some(crate::policy::TAG_RULE.into()),
                    service: "prod/articles-api".into(),
                    notes: vec![],
                },
            ),
        ];
        let inc = incident();
        let files = scenario_files(&Recording {
            incident: &inc,
            timeline: &t,
            fleet: Err("x".into()),
            logs: vec![],
            logs_note: None,
            metrics: RecordedMetrics::NotRead,
        })
        .unwrap();
        let s = &crate::intake::parse_event_str(files.get("event-001.eventbridge.json").unwrap()).unwrap()[0];
        assert_eq!(s.trigger, f.trigger);
        assert_eq!(s.tag("severity"), Some("SEV1"));
    }

    fn fired_trigger() -> Trigger {
        fired().trigger
    }

    #[test]
    fn an_incident_without_remediation_replays_with_remediation_off_and_expects_none() {
        let mut inc = incident();
        inc.remediations.clear();
        inc.cause = None;
        inc.status = IncidentStatus::Open;
        let t: Vec<TimelineEntry> = timeline(false).into_iter().take(3).collect();
        let files = scenario_files(&Recording {
            incident: &inc,
            timeline: &t,
            fleet: Ok(fleet()),
            logs: vec![],
            logs_note: Some("stopped at the bound".into()),
            metrics: RecordedMetrics::NotRead,
        })
        .unwrap();
        let dir = write(&files);
        let s = crate::drill::LoadedScenario::load(dir.path()).unwrap().scenario;
        assert_eq!(s.settings.remediation_mode, Some(RemediationMode::Off));
        assert!(s.settings.allow.is_empty());
        assert_eq!(s.ecs[0].desired, 8, "nothing Firebreak did to undo");
        let e = s.expect.unwrap();
        assert_eq!(e.cause, None);
        assert_eq!(e.remediation.as_deref(), Some("none"));
        assert!(files
            .get("scenario.yaml")
            .unwrap()
            .contains("# stopped at the bound"));
    }

    #[test]
    fn a_timeline_without_a_state_change_is_refused() {
        let inc = incident();
        let err = scenario_files(&Recording {
            incident: &inc,
            timeline: &[],
            fleet: Err("x".into()),
            logs: vec![],
            logs_note: None,
            metrics: RecordedMetrics::NotRead,
        })
        .unwrap_err();
        assert!(err.to_string().contains("no alarm state change"), "{err}");
    }
}
