//! Deciding a diagnosis: which queries to run, and from their results and the service's recent
//! changes, the summaries, the matched causes and the estimated start. Pure: the use-case in
//! `mod.rs` does the reading, `record` turns the decision into timeline entries.

use super::MAX_EVENTS;
use crate::model::duration::{human, Span};
pub use crate::model::evidence::{DiagnosisReport, QueryOutcome, RecentChanges};
use crate::model::incident::EcsService;
use crate::model::pipeline::IncidentRaised;
use crate::ports::{Deployment, QueryOutput, QueryRequest, ServiceEvent, ServiceState};
use crate::runbook::findings::{self, CauseMatch, Evidence, QuerySummary};
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
            }
        }
    }
}

/// What `decide` works from: the alarm, the runbook and why it was chosen, the planned
/// queries and their results, the service's recent changes, the window.
pub(super) struct DecideInput<'a> {
    pub raised: &'a IncidentRaised,
    pub runbook: &'a Runbook,
    pub selected: Option<String>,
    pub because: Option<String>,
    pub planned: &'a [Planned],
    pub results: Vec<(String, Result<QueryOutput, String>)>,
    pub recent: RecentChanges,
    pub window: (DateTime<Utc>, DateTime<Utc>),
}

/// The diagnosis from what was read: each query summarised, the causes whose signatures all
/// hold (the first is the cause), the estimated start. Reads and writes nothing.
pub(super) fn decide(input: DecideInput<'_>) -> (DiagnosisReport, Vec<CauseMatch>) {
    let DecideInput {
        raised,
        runbook,
        selected,
        because,
        planned,
        results,
        recent,
        window: (window_start, window_end),
    } = input;
    let id = &raised.incident_id;
    let window = Some((window_start, window_end));
    let mut outputs: BTreeMap<String, QueryOutput> = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (name, result) in results {
        match result {
            Ok(out) => {
                let measures = planned.iter().find(|p| p.name == name).and_then(|p| p.measures);
                outcomes.push(QueryOutcome::Completed(findings::summarize_step(
                    &name, measures, &out, window,
                )));
                outputs.insert(name, out);
            }
            Err(error) => outcomes.push(QueryOutcome::Failed { query: name, error }),
        }
    }
    let summaries: Vec<QuerySummary> = outcomes
        .iter()
        .filter_map(|o| match o {
            QueryOutcome::Completed(s) => Some(s.clone()),
            QueryOutcome::Failed { .. } => None,
        })
        .collect();
    let estimated_start = findings::estimated_start(&summaries).filter(|s| *s <= raised.alarm_at);
    let all_deployments: Vec<Deployment> = recent.deployments.clone();
    let evidence_in = Evidence {
        outputs: &outputs,
        window,
        deployments: &all_deployments,
        start: estimated_start.unwrap_or(raised.alarm_at),
        alarm_at: raised.alarm_at,
    };
    let matched: Vec<CauseMatch> = runbook
        .causes
        .iter()
        .filter_map(|c| findings::match_cause(c, &evidence_in))
        .collect();
    let chosen = matched.first();
    let mut evidence: Vec<String> = match chosen {
        Some(m) => m.evidence.clone(),
        None => summaries.iter().map(QuerySummary::line).collect(),
    };
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
        cause: chosen.map(|m| m.cause.clone()),
        evidence,
        suggested: chosen.map(|m| m.remediation.clone()).unwrap_or_default(),
        estimated_start,
        time_to_detect_s: estimated_start.map(|s| (raised.alarm_at - s).num_seconds()),
        matched: matched.clone(),
        queries: outcomes,
        recent_changes: recent,
        window_start,
        window_end,
        repeated: false,
    };

    (report, matched)
}
