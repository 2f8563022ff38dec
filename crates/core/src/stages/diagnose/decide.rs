//! Deciding a diagnosis: which queries and metrics to read, and from what they gave and the
//! service's recent changes, the summaries, the hypotheses (each cause scored), the cause or an
//! abstention, and the estimated start. Pure: the use-case in `mod.rs` does the reading,
//! `record` turns the decision into timeline entries.

use super::MAX_EVENTS;
use crate::model::duration::{human, Span};
use crate::model::evidence::{
    ContainerDefinition, DefinitionDiff, Hypothesis, MetricSummary, TaskDefinition,
};
pub use crate::model::evidence::{DiagnosisReport, QueryOutcome, RecentChanges};
use crate::model::incident::EcsService;
use crate::model::pipeline::IncidentRaised;
use crate::model::settings::DiagnosisSettings;
use crate::ports::{Deployment, MetricQuery, QueryOutput, QueryRequest, ServiceEvent, ServiceState};
use crate::runbook::findings::{self, CauseMatch, Evidence, QuerySummary};
use crate::runbook::model::{DimensionSource, Dimensions, MetricStep};
use crate::runbook::template::{self, TemplateVars};
use crate::runbook::{QueryStep, Runbook, RunbookTrigger};
use crate::Error;
use chrono::{DateTime, Utc};

use std::collections::BTreeMap;
use std::time::Duration;

/// The queries run when no runbook matches: errors and exceptions in the service's log group,
/// and their counts per 5 minutes.
pub fn generic_runbook(lookback: Span) -> Runbook {
    let step = |name: &str, description: &str, query: &str| QueryStep {
        name: name.to_string(),
        description: description.to_string(),
        query: query.to_string(),
        log_groups: Vec::new(),
        measures: None,
    };
    Runbook {
        id: "generic".to_string(),
        title: "Generic diagnostics".to_string(),
        trigger: RunbookTrigger::default(),
        impact: String::new(),
        log_groups: vec![crate::runbook::DEFAULT_LOG_GROUP.to_string()],
        lookback,
        metrics: Vec::new(),
        investigation: vec![
            step(
                "errors",
                "Errors and exceptions, newest first",
                "fields @timestamp, @message\n| filter @message like /ERROR/ or @message like /Exception/\n| sort @timestamp desc\n| limit 50",
            ),
            step(
                "error-counts",
                "Errors and exceptions per 5 minutes",
                "filter @message like /ERROR/ or @message like /Exception/\n| stats count() as errors by bin(5m)",
            ),
        ],
        status_checks: vec!["ecs-service".to_string(), "ecs-deployments".to_string()],
        causes: Vec::new(),
        resolution: Vec::new(),
        prevention: Vec::new(),
        verify_window: Span::minutes(10),
    }
}

/// One query ready to run, or why it cannot.
pub(super) struct Planned {
    pub name: String,
    pub measures: Option<crate::runbook::Measure>,
    pub request: Result<QueryRequest, String>,
    /// Log groups left out of the query because their names, taken from the alarm's values,
    /// fall outside the configured prefix.
    pub dropped: Vec<DroppedGroup>,
}

/// A log group a query will not read: its template took a value from the alarm and the name it
/// gave does not start with `diagnosis.log_group_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DroppedGroup {
    pub template: String,
    pub name: String,
}

/// Renders one query. Log groups whose templates take values from the alarm (`{tag.log-group}`,
/// `/ecs/{service_name}`) must come out under `prefix`: the alarm's tags and dimensions are
/// written by whoever can edit the alarm, and must not point the diagnosis at other log groups.
/// Those that do not are dropped (returned, for the timeline); when none is left the query is
/// not run.
pub(super) fn plan(
    runbook: &Runbook,
    step: &QueryStep,
    vars: &TemplateVars,
    prefix: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (Result<QueryRequest, Error>, Vec<DroppedGroup>) {
    let mut dropped = Vec::new();
    let mut log_groups = Vec::new();
    for g in runbook.log_groups_for(step) {
        match template::render_log_group(g, vars) {
            Ok(name) if template::log_group_takes_values(g) && !name.starts_with(prefix) => {
                dropped.push(DroppedGroup {
                    template: g.to_string(),
                    name,
                });
            }
            Ok(name) => log_groups.push(name),
            Err(e) => return (Err(e), dropped),
        }
    }
    if log_groups.is_empty() && !dropped.is_empty() {
        let names: Vec<&str> = dropped.iter().map(|d| d.name.as_str()).collect();
        let e = Error::invalid(
            "log groups",
            format!(
                "every log group of the query is outside the prefix {prefix:?} ({})",
                names.join(", ")
            ),
        );
        return (Err(e), dropped);
    }
    let request = template::render_query(&step.query, vars).map(|query| QueryRequest {
        name: step.name.clone(),
        log_groups,
        query,
        start,
        end,
        deadline: Duration::ZERO,
    });
    (request, dropped)
}

pub use crate::runbook::findings::LOG_VOLUME;

/// Every log group the planned queries read, sorted, once each.
pub(super) fn planned_groups(planned: &[Planned]) -> Vec<String> {
    planned
        .iter()
        .filter_map(|p| p.request.as_ref().ok())
        .flat_map(|r| r.log_groups.iter().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The [`LOG_VOLUME`] query over the log groups of `planned`; `None` when no query can run.
pub(super) fn log_volume(planned: &[Planned], start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Planned> {
    let groups = planned_groups(planned);
    if groups.is_empty() || planned.iter().any(|p| p.name == LOG_VOLUME) {
        return None;
    }
    Some(Planned {
        name: LOG_VOLUME.to_string(),
        measures: None,
        request: Ok(QueryRequest {
            name: LOG_VOLUME.to_string(),
            log_groups: groups,
            query: "stats count() as lines by bin(5m)".to_string(),
            start,
            end,
            deadline: Duration::ZERO,
        }),
        dropped: Vec::new(),
    })
}

/// One metric step ready to read, or why it cannot be.
pub(super) struct PlannedMetric<'r> {
    pub step: &'r MetricStep,
    pub query: Result<MetricQuery, String>,
    /// The baseline's start and the incident window.
    pub baseline_start: DateTime<Utc>,
    pub incident: (DateTime<Utc>, DateTime<Utc>),
}

/// The dimensions of a metric step: the alarm's, the ECS service's, or the runbook's (templated).
fn dimensions_of(
    step: &MetricStep,
    raised: &IncidentRaised,
    ecs: Option<&EcsService>,
    vars: &TemplateVars,
) -> Result<BTreeMap<String, String>, String> {
    match &step.metric.dimensions {
        Dimensions::From(DimensionSource::Alarm) => {
            if raised.dimensions.is_empty() {
                Err(format!(
                    "alarm {} has no metric dimensions to read {} with",
                    raised.alarm_name, step.metric.name
                ))
            } else {
                Ok(raised.dimensions.clone())
            }
        }
        Dimensions::From(DimensionSource::EcsService) => ecs
            .map(|e| {
                BTreeMap::from([
                    ("ClusterName".to_string(), e.cluster.clone()),
                    ("ServiceName".to_string(), e.service.clone()),
                ])
            })
            .ok_or_else(|| "the incident has no ECS service for the ecs-service dimensions".to_string()),
        Dimensions::Fixed(map) => map
            .iter()
            .map(|(k, v)| {
                template::render_value(v, vars)
                    .map(|val| (k.clone(), val))
                    .map_err(|e| format!("dimension {k}: {e}"))
            })
            .collect(),
    }
}

/// Plans every metric step of `runbook`: ids `m0`, `m1`, … in step order.
pub(super) fn plan_metrics<'r>(
    runbook: &'r Runbook,
    raised: &IncidentRaised,
    ecs: Option<&EcsService>,
    vars: &TemplateVars,
    window_end: DateTime<Utc>,
) -> Vec<PlannedMetric<'r>> {
    runbook
        .metrics
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let incident_start = raised.alarm_at - step.window.to_chrono();
            PlannedMetric {
                step,
                query: dimensions_of(step, raised, ecs, vars)
                    .map(|d| findings::metric_query(&format!("m{i}"), step, d)),
                baseline_start: incident_start - step.baseline.to_chrono(),
                incident: (incident_start, window_end),
            }
        })
        .collect()
}

/// The image's digest when the reference pins one (`repo@sha256:...`).
fn digest(image: &str) -> Option<&str> {
    image.split_once('@').map(|(_, d)| d)
}

fn shown(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".to_string()
    } else {
        format!("{v:?}")
    }
}

/// What changed from `prev` to `next`, one line per difference: images (and digests),
/// environment variable names and changed values, secret names (never values), CPU and memory,
/// command and entry point.
pub(super) fn diff_definitions(prev: &TaskDefinition, next: &TaskDefinition) -> Vec<String> {
    let mut out = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unset".into());
    if prev.cpu != next.cpu {
        out.push(format!("task CPU {} -> {}", opt(&prev.cpu), opt(&next.cpu)));
    }
    if prev.memory != next.memory {
        out.push(format!(
            "task memory {} -> {}",
            opt(&prev.memory),
            opt(&next.memory)
        ));
    }
    let single = prev.containers.len() == 1 && next.containers.len() == 1;
    for n in &next.containers {
        let p = prev
            .containers
            .iter()
            .find(|p| p.name == n.name)
            .or_else(|| single.then(|| &prev.containers[0]));
        let Some(p) = p else {
            out.push(format!("container {} added ({})", n.name, n.image));
            continue;
        };
        let c = if next.containers.len() > 1 {
            format!("container {}: ", n.name)
        } else {
            String::new()
        };
        diff_container(p, n, &c, &mut out);
    }
    for p in &prev.containers {
        if !next.containers.iter().any(|n| n.name == p.name) && !single {
            out.push(format!("container {} removed", p.name));
        }
    }
    out
}

fn diff_container(p: &ContainerDefinition, n: &ContainerDefinition, c: &str, out: &mut Vec<String>) {
    if p.image != n.image {
        let d = match (digest(&p.image), digest(&n.image)) {
            (Some(a), Some(b)) if a != b => format!(" (digest {a} -> {b})"),
            _ => String::new(),
        };
        out.push(format!("{c}image {} -> {}{d}", p.image, n.image));
    }
    for (k, v) in &n.environment {
        match p.environment.get(k) {
            None => out.push(format!("{c}environment {k} added = {v:?}")),
            Some(old) if old != v => out.push(format!("{c}environment {k}: {old:?} -> {v:?}")),
            Some(_) => {}
        }
    }
    for k in p.environment.keys() {
        if !n.environment.contains_key(k) {
            out.push(format!("{c}environment {k} removed"));
        }
    }
    for k in &n.secrets {
        if !p.secrets.contains(k) {
            out.push(format!("{c}secret {k} added"));
        }
    }
    for k in &p.secrets {
        if !n.secrets.contains(k) {
            out.push(format!("{c}secret {k} removed"));
        }
    }
    let num = |o: Option<i32>| o.map_or_else(|| "unset".to_string(), |v| v.to_string());
    if p.cpu != n.cpu {
        out.push(format!("{c}CPU {} -> {}", num(p.cpu), num(n.cpu)));
    }
    if p.memory != n.memory {
        out.push(format!("{c}memory {} -> {}", num(p.memory), num(n.memory)));
    }
    if p.command != n.command {
        out.push(format!(
            "{c}command {} -> {}",
            shown(&p.command),
            shown(&n.command)
        ));
    }
    if p.entry_point != n.entry_point {
        out.push(format!(
            "{c}entry point {} -> {}",
            shown(&p.entry_point),
            shown(&n.entry_point)
        ));
    }
}

/// The diff of one deployed revision against `previous`, from what ECS returned for each.
pub(super) fn definition_diff(
    revision: &str,
    previous: Option<&str>,
    next: Result<Option<TaskDefinition>, String>,
    prev: Option<Result<Option<TaskDefinition>, String>>,
) -> DefinitionDiff {
    let mut d = DefinitionDiff {
        revision: revision.to_string(),
        previous: previous.map(str::to_string),
        ..DefinitionDiff::default()
    };
    let unknown = |name: &str, r: &Result<Option<TaskDefinition>, String>| match r {
        Err(e) => Some(format!("reading {name} failed: {e}")),
        Ok(None) => Some(format!("ECS does not know {name}")),
        Ok(Some(td)) if td.containers.is_empty() => Some(format!("no details recorded for {name}")),
        Ok(Some(_)) => None,
    };
    if let Some(n) = unknown(revision, &next) {
        d.note = Some(n);
        return d;
    }
    let Some((pname, prev)) = previous.zip(prev) else {
        return d;
    };
    if let Some(n) = unknown(pname, &prev) {
        d.note = Some(n);
        return d;
    }
    if let (Ok(Some(a)), Ok(Some(b))) = (prev, next) {
        d.changes = diff_definitions(&a, &b);
    }
    d
}

/// The revision each shown deployment replaced: the task definition of the next older
/// deployment ECS lists, else the highest registered revision below it.
pub(super) fn previous_revision(
    revision: &str,
    state: &ServiceState,
    registered: &[String],
) -> Option<String> {
    let rev = |td: &str| td.rsplit_once(':').and_then(|(_, r)| r.parse::<u64>().ok());
    let family = |td: &str| {
        td.rsplit('/')
            .next()
            .unwrap_or(td)
            .split_once(':')
            .map(|(f, _)| f.to_string())
    };
    let mut by_time: Vec<&Deployment> = state
        .deployments
        .iter()
        .filter(|d| d.created_at.is_some())
        .collect();
    by_time.sort_by_key(|d| d.created_at);
    if let Some(i) = by_time.iter().rposition(|d| d.task_definition == revision) {
        if let Some(older) = by_time[..i].iter().rev().find(|d| d.task_definition != revision) {
            return Some(older.task_definition.clone());
        }
    }
    let (fam, r) = (family(revision)?, rev(revision)?);
    registered
        .iter()
        .filter(|td| family(td).as_deref() == Some(fam.as_str()))
        .filter_map(|td| rev(td).map(|n| (n, td)))
        .filter(|(n, _)| *n < r)
        .max_by_key(|(n, _)| *n)
        .map(|(_, td)| td.clone())
}

pub(super) fn recent_changes(
    service: Option<&EcsService>,
    state: Option<Result<ServiceState, String>>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> RecentChanges {
    let svc = service.map(ToString::to_string);
    match state {
        None => RecentChanges {
            note: Some("the incident has no ECS service".to_string()),
            ..RecentChanges::default()
        },
        Some(Err(e)) => RecentChanges {
            service: svc,
            note: Some(format!("describing the ECS service failed: {e}")),
            ..RecentChanges::default()
        },
        Some(Ok(st)) => {
            let in_window = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t >= start && t <= end);
            let mut deployments: Vec<Deployment> = st
                .deployments
                .iter()
                .filter(|d| d.status == "PRIMARY" || in_window(d.created_at) || in_window(d.updated_at))
                .cloned()
                .collect();
            deployments.sort_by_key(|d| std::cmp::Reverse(d.created_at));
            let mut events: Vec<ServiceEvent> = st
                .events
                .iter()
                .filter(|e| e.at >= start && e.at <= end)
                .cloned()
                .collect();
            events.sort_by_key(|e| std::cmp::Reverse(e.at));
            events.truncate(MAX_EVENTS);
            RecentChanges {
                service: svc,
                deployments,
                events,
                task_definition: Some(st.task_definition),
                desired: Some(st.desired),
                running: Some(st.running),
                pending: Some(st.pending),
                note: None,
                diffs: Vec::new(),
                as_of: None,
            }
        }
    }
}

/// What `decide` works from: the alarm, the runbook and why it was chosen, the planned
/// queries and their results, the metric steps' summaries, the service's recent changes, the
/// window, the thresholds.
pub(super) struct DecideInput<'a> {
    pub raised: &'a IncidentRaised,
    pub runbook: &'a Runbook,
    pub selected: Option<String>,
    pub because: Option<String>,
    pub planned: &'a [Planned],
    pub results: Vec<(String, Result<QueryOutput, String>)>,
    pub metrics: Vec<MetricSummary>,
    pub recent: RecentChanges,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub settings: &'a DiagnosisSettings,
}

/// How many hypotheses a diagnosis keeps.
pub const MAX_HYPOTHESES: usize = 3;

/// The diagnosis from what was read: each query summarised, every cause scored, the best one
/// named the cause unless it scores below `min_score` or leads the next by less than
/// `min_margin` (then the diagnosis abstains), the estimated start from the cause's own
/// evidence. Reads and writes nothing.
pub(super) fn decide(input: DecideInput<'_>) -> (DiagnosisReport, Vec<CauseMatch>) {
    let DecideInput {
        raised,
        runbook,
        selected,
        because,
        planned,
        results,
        metrics,
        recent,
        window: (window_start, window_end),
        settings,
    } = input;
    let id = &raised.incident_id;
    let window = Some((window_start, window_end));
    let data_since = findings::data_since(results.iter().filter_map(|(_, r)| r.as_ref().ok()));
    let outcomes: Vec<QueryOutcome> = results
        .iter()
        .map(|(name, result)| match result {
            Ok(out) => {
                let measures = planned.iter().find(|p| p.name == *name).and_then(|p| p.measures);
                QueryOutcome::Completed(findings::summarize_step(name, measures, out, window, data_since))
            }
            Err(error) => QueryOutcome::Failed {
                query: name.clone(),
                error: error.clone(),
            },
        })
        .collect();
    let mut outputs: BTreeMap<String, QueryOutput> = BTreeMap::new();
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    for (name, result) in results {
        match result {
            Ok(out) => {
                outputs.insert(name, out);
            }
            Err(e) => {
                failed.insert(name, e);
            }
        }
    }
    let summaries: Vec<QuerySummary> = outcomes
        .iter()
        .filter_map(|o| match o {
            QueryOutcome::Completed(s) => Some(s.clone()),
            QueryOutcome::Failed { .. } => None,
        })
        .collect();
    let before_alarm = |t: &DateTime<Utc>| *t <= raised.alarm_at;
    // more log lines is not itself evidence of a cause
    let evidential: Vec<QuerySummary> = summaries
        .iter()
        .filter(|s| s.query != LOG_VOLUME)
        .cloned()
        .collect();
    let earliest = findings::earliest_rise(&evidential, &metrics).filter(before_alarm);
    let by_step: BTreeMap<String, MetricSummary> =
        metrics.iter().map(|m| (m.step.clone(), m.clone())).collect();
    let deployments = match &recent.note {
        Some(n) => Err(n.as_str()),
        None => Ok(recent.deployments.as_slice()),
    };
    let ev = Evidence {
        outputs: &outputs,
        failed: &failed,
        window,
        data_since,
        metrics: &by_step,
        deployments,
        start: earliest.unwrap_or(raised.alarm_at),
        alarm_at: raised.alarm_at,
    };
    let matched: Vec<CauseMatch> = runbook
        .causes
        .iter()
        .filter_map(|c| findings::match_cause(c, &ev))
        .collect();
    let mut scored: Vec<(usize, Hypothesis, Option<DateTime<Utc>>)> = runbook
        .causes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (h, rose) = findings::hypothesis(c, &ev);
            (i, h, rose)
        })
        .filter(|(_, h, _)| h.score > 0.0)
        .collect();
    scored.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
    let (chosen, abstained) = choose(&scored, settings, runbook);
    let hypotheses: Vec<Hypothesis> = scored
        .iter()
        .take(MAX_HYPOTHESES)
        .map(|(_, h, _)| h.clone())
        .collect();
    let estimated_start = chosen
        .and_then(|(_, _, rose)| *rose)
        .filter(before_alarm)
        .or(earliest);
    let start_note = estimated_start
        .is_none()
        .then(|| start_note(&summaries, &metrics, data_since));

    let mut evidence: Vec<String> = match chosen {
        Some((_, h, _)) => h.evidence.clone(),
        None => evidential.iter().map(QuerySummary::line).collect(),
    };
    for m in &metrics {
        if !evidence.iter().any(|e| e.ends_with(&m.line())) {
            evidence.push(m.line());
        }
    }
    if let Some(s) = estimated_start {
        evidence.push(format!(
            "estimated start {} ({} before the alarm)",
            s.format("%H:%M"),
            human((raised.alarm_at - s).num_seconds())
        ));
    }
    let report = DiagnosisReport {
        incident_id: id.clone(),
        service: raised.service.clone(),
        runbook: selected,
        selected_because: because,
        cause: chosen.map(|(_, h, _)| h.cause.clone()),
        evidence,
        suggested: chosen.map(|(_, h, _)| h.remediation.clone()).unwrap_or_default(),
        estimated_start,
        time_to_detect_s: estimated_start.map(|s| (raised.alarm_at - s).num_seconds()),
        matched: matched.clone(),
        hypotheses,
        abstained,
        start_note,
        metrics,
        queries: outcomes,
        recent_changes: recent,
        window_start,
        window_end,
        repeated: false,
    };

    (report, matched)
}

type Scored = (usize, Hypothesis, Option<DateTime<Utc>>);

/// The best hypothesis when it is clear, else why the diagnosis abstains and what would decide.
fn choose<'s>(
    scored: &'s [Scored],
    settings: &DiagnosisSettings,
    runbook: &Runbook,
) -> (Option<&'s Scored>, Option<String>) {
    let Some(best) = scored.first() else {
        return (None, None);
    };
    let decide_by = |hs: &[&Hypothesis]| {
        let mut missing: Vec<String> = Vec::new();
        for h in hs {
            for m in &h.missing {
                let line = format!("{}: {m}", h.cause);
                if !missing.contains(&line) {
                    missing.push(line);
                }
            }
        }
        if missing.is_empty() && hs.len() > 1 {
            format!(
                "nothing is missing: the evidence fits both; a signature in runbook {} that one cause has and the other's evidence contradicts would tell them apart",
                runbook.id
            )
        } else if missing.is_empty() {
            format!(
                "nothing is missing, and the data contradicts it: {}",
                hs.iter()
                    .flat_map(|h| h.against.iter().cloned())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        } else {
            format!("would decide it: {}", missing.join("; "))
        }
    };
    let eps = 1e-9;
    if best.1.score + eps < settings.min_score {
        let why = format!(
            "the best hypothesis, {}, scores below {:.2}; {}",
            best.1.label(),
            settings.min_score,
            decide_by(&[&best.1])
        );
        return (None, Some(why));
    }
    if let Some(second) = scored.get(1) {
        if best.1.score - second.1.score + eps < settings.min_margin {
            let why = format!(
                "{} and {} are too close to tell (a lead of at least {:.2} is needed); {}",
                best.1.label(),
                second.1.label(),
                settings.min_margin,
                decide_by(&[&best.1, &second.1])
            );
            return (None, Some(why));
        }
    }
    (Some(best), None)
}

/// Why the start could not be estimated.
fn start_note(
    summaries: &[QuerySummary],
    metrics: &[MetricSummary],
    data_since: Option<DateTime<Utc>>,
) -> String {
    let binned = summaries.iter().any(|s| s.bins > 0);
    let based = metrics.iter().any(|m| m.baseline.is_some());
    if !binned && !based {
        return "no query counts per time bin and no metric has a baseline: there is nothing to see a rise against"
            .to_string();
    }
    format!(
        "nothing rose against an established baseline (at least {} bins of data before the rise){}",
        findings::MIN_BASELINE_BINS,
        data_since
            .map(|t| format!("; the logs begin at {}", t.format("%H:%M")))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::incident::IncidentId;
    use crate::model::severity::Severity;
    use chrono::TimeZone;

    fn td(name: &str, image: &str, env: &[(&str, &str)], secrets: &[&str]) -> TaskDefinition {
        TaskDefinition {
            name: name.into(),
            cpu: Some("512".into()),
            memory: Some("1024".into()),
            containers: vec![ContainerDefinition {
                name: "api".into(),
                image: image.into(),
                environment: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                secrets: secrets.iter().map(|s| s.to_string()).collect(),
                ..ContainerDefinition::default()
            }],
        }
    }

    #[test]
    fn a_diff_names_what_changed_and_never_a_secret_value() {
        let a = td(
            "api:16",
            "repo/api@sha256:aaa",
            &[("POOL", "10"), ("OLD", "x")],
            &["DB_PASSWORD"],
        );
        let mut b = td(
            "api:17",
            "repo/api@sha256:bbb",
            &[("POOL", "2"), ("NEW", "y")],
            &["DB_PASSWORD", "API_KEY"],
        );
        b.memory = Some("2048".into());
        b.containers[0].command = vec!["serve".into(), "--fast".into()];
        let d = diff_definitions(&a, &b);
        assert_eq!(
            d,
            vec![
                "task memory 1024 -> 2048",
                "image repo/api@sha256:aaa -> repo/api@sha256:bbb (digest sha256:aaa -> sha256:bbb)",
                "environment NEW added = \"y\"",
                "environment POOL: \"10\" -> \"2\"",
                "environment OLD removed",
                "secret API_KEY added",
                "command (none) -> [\"serve\", \"--fast\"]",
            ]
        );
        assert!(diff_definitions(&a, &a).is_empty());
        let diff = definition_diff(
            "api:17",
            Some("api:16"),
            Ok(Some(b.clone())),
            Some(Ok(Some(a.clone()))),
        );
        assert!(
            diff.line().starts_with("against api:16: task memory"),
            "{}",
            diff.line()
        );
        let unknown = definition_diff("api:17", Some("api:16"), Ok(Some(b)), Some(Ok(None)));
        assert_eq!(unknown.note.as_deref(), Some("ECS does not know api:16"));
        let failed = definition_diff("api:17", None, Err("Throttling".into()), None);
        assert_eq!(failed.note.as_deref(), Some("reading api:17 failed: Throttling"));
    }

    #[test]
    fn the_previous_revision_is_the_older_deployment_else_the_registered_one_below() {
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 3, d, 9, 0, 0).unwrap();
        let dep = |td: &str, d: u32| Deployment {
            id: format!("ecs-svc/{d}"),
            status: "INACTIVE".into(),
            task_definition: td.into(),
            desired: 1,
            running: 1,
            rollout_state: None,
            created_at: Some(at(d)),
            updated_at: None,
        };
        let state = ServiceState {
            service: EcsService::new("prod", "api"),
            status: "ACTIVE".into(),
            task_definition: "api:17".into(),
            desired: 1,
            running: 1,
            pending: 0,
            deployments: vec![dep("api:17", 10), dep("api:12", 2)],
            events: Vec::new(),
            tags: Default::default(),
        };
        let registered = ["api:12", "api:15", "api:16", "api:17"].map(String::from);
        assert_eq!(
            previous_revision("api:17", &state, &registered).as_deref(),
            Some("api:12")
        );
        assert_eq!(previous_revision("api:12", &state, &registered).as_deref(), None);
        let fresh = ServiceState {
            deployments: vec![dep("api:17", 10)],
            ..state
        };
        assert_eq!(
            previous_revision("api:17", &fresh, &registered).as_deref(),
            Some("api:16")
        );
    }

    fn step(dimensions: Dimensions) -> MetricStep {
        MetricStep {
            name: "m".into(),
            description: String::new(),
            metric: crate::runbook::model::MetricRef {
                namespace: "AWS/X".into(),
                name: "Y".into(),
                dimensions,
                stat: "Sum".into(),
            },
            period: Span::minutes(1),
            window: Span::minutes(15),
            baseline: Span::minutes(60),
            missing: Default::default(),
            unit: None,
        }
    }

    #[test]
    fn metric_dimensions_come_from_the_alarm_the_service_or_the_runbook() {
        let alarm_at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
        let mut raised = IncidentRaised {
            incident_id: IncidentId("INC-1".into()),
            service: "prod/api".into(),
            ecs: Some(EcsService::new("prod", "api")),
            severity: Severity::Sev2,
            alarm_name: "api-5xx".into(),
            alarm_at,
            runbook_hint: None,
            namespace: None,
            metric_name: None,
            dimensions: BTreeMap::from([("LoadBalancer".into(), "app/x".into())]),
            composite_rule: None,
            tags: BTreeMap::from([("tg".into(), "targetgroup/api".into())]),
            reopened: 0,
        };
        let vars = TemplateVars::from_raised(&raised);
        let ecs = raised.ecs.clone();
        let of = |d: Dimensions, r: &IncidentRaised| dimensions_of(&step(d), r, ecs.as_ref(), &vars);
        assert_eq!(
            of(Dimensions::From(DimensionSource::Alarm), &raised).unwrap()["LoadBalancer"],
            "app/x"
        );
        let svc = of(Dimensions::From(DimensionSource::EcsService), &raised).unwrap();
        assert_eq!(
            (svc["ClusterName"].as_str(), svc["ServiceName"].as_str()),
            ("prod", "api")
        );
        let fixed = Dimensions::Fixed(BTreeMap::from([("TargetGroup".into(), "{tag.tg}".into())]));
        assert_eq!(of(fixed, &raised).unwrap()["TargetGroup"], "targetgroup/api");
        let missing = Dimensions::Fixed(BTreeMap::from([("TargetGroup".into(), "{tag.nope}".into())]));
        assert!(of(missing, &raised)
            .unwrap_err()
            .contains("dimension TargetGroup"));
        raised.dimensions.clear();
        assert!(of(Dimensions::From(DimensionSource::Alarm), &raised)
            .unwrap_err()
            .contains("has no metric dimensions"));
        assert!(dimensions_of(
            &step(Dimensions::From(DimensionSource::EcsService)),
            &raised,
            None,
            &vars
        )
        .unwrap_err()
        .contains("no ECS service"));
    }
}
