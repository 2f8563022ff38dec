//! Recording a diagnosis: the timeline entries it writes, with their deterministic ids
//! (`<incident>/diagnosis[/r<cycle>]/<severity>/<step>`), and reading a recorded one back.

use super::decide::{DiagnosisReport, Planned, QueryOutcome};
use crate::model::duration::human;
use crate::model::entry_id::EntryId;
use crate::model::evidence::Hypothesis;
use crate::model::incident::Incident;
use crate::model::pipeline::IncidentRaised;
use crate::model::text::{plain, plain_line};
use crate::model::timeline::{detail, Detail, EntryKind, TimelineEntry};
use crate::ports::Notification;
use crate::runbook::findings::CauseMatch;
use crate::runbook::{Runbook, TriggerMatch};
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The ids of one diagnosis's entries: one diagnosis per severity (an escalation re-diagnoses)
/// and per reopened cycle.
pub(super) struct DiagnosisIds<'r> {
    raised: &'r IncidentRaised,
}

impl<'r> DiagnosisIds<'r> {
    pub fn of(raised: &'r IncidentRaised) -> DiagnosisIds<'r> {
        DiagnosisIds { raised }
    }

    fn step(&self, step: &str) -> String {
        EntryId::Diagnosis {
            incident: self.raised.incident_id.clone(),
            cycle: self.raised.reopened,
            severity: self.raised.severity.as_str().to_string(),
            step: step.to_string(),
        }
        .text()
    }

    pub fn completed(&self) -> String {
        self.step("completed")
    }

    pub fn published(&self) -> String {
        self.step("published")
    }

    pub fn redrafted(&self) -> String {
        self.step("postmortem-redrafted")
    }

    pub fn paged(&self) -> String {
        self.step("paged")
    }
}

/// `diagnosis-started`: the runbook and why, the queries' log groups and window.
#[allow(clippy::too_many_arguments)]
pub(super) fn started_entry(
    ids: &DiagnosisIds<'_>,
    runbook: &Runbook,
    selected: &Option<(&Runbook, TriggerMatch)>,
    because: &Option<TriggerMatch>,
    raised: &IncidentRaised,
    planned: &[Planned],
    (window_start, window_end): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> TimelineEntry {
    let groups = super::decide::planned_groups(planned);
    let over = if groups.is_empty() {
        let why = planned
            .iter()
            .find_map(|p| p.request.as_ref().err())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        format!("no log group{why}")
    } else {
        groups.join(", ")
    };
    let metrics = if runbook.metrics.is_empty() {
        String::new()
    } else {
        format!(" and {} metrics", runbook.metrics.len())
    };
    let started_summary = match &because {
        Some(why) => format!(
            "Diagnosis started with runbook {} ({why}): {} queries over {over}{metrics}, {}–{}",
            runbook.id,
            planned.len(),
            window_start.format("%H:%M"),
            window_end.format("%H:%M")
        ),
        None => format!(
            "Diagnosis started without a runbook: generic queries over {over}, {}–{}",
            window_start.format("%H:%M"),
            window_end.format("%H:%M")
        ),
    };
    TimelineEntry::new(
        ids.step("started"),
        now,
        EntryKind::DiagnosisStarted,
        started_summary,
    )
    .with_detail(detail::DiagnosisStarted {
        runbook: selected.as_ref().map(|(r, _)| r.id.clone()),
        selected_because: because.as_ref().map(ToString::to_string),
        alarm: raised.alarm_name.clone(),
        window: detail::Window {
            start: window_start,
            end: window_end,
        },
        log_groups: groups.iter().map(ToString::to_string).collect(),
    })
}

/// The entries of the findings: each query, the recent changes, no runbook, each matched cause.
pub(super) fn finding_entries(
    ids: &DiagnosisIds<'_>,
    report: &DiagnosisReport,
    matched: &[CauseMatch],
    planned: &[Planned],
    raised: &IncidentRaised,
    unknown_hint: Option<Option<&str>>,
    now: DateTime<Utc>,
) -> Vec<TimelineEntry> {
    let chosen = matched.first();
    let mut entries = Vec::new();
    for (o, p) in report.queries.iter().zip(sorted_like(planned, &report.queries)) {
        let eid = ids.step(&format!("query/{}", o.name()));
        let (log_groups, text) = match &p.request {
            Ok(r) => (Some(r.log_groups.clone()), Some(r.query.clone())),
            Err(_) => (None, None),
        };
        entries.push(match o {
            QueryOutcome::Completed(s) => TimelineEntry::of(
                eid,
                now,
                detail::QueryCompleted {
                    summary: s.clone(),
                    log_groups,
                    query: text,
                },
                s.line(),
            ),
            QueryOutcome::Failed { query, error } => TimelineEntry::of(
                eid,
                now,
                detail::QueryFailed {
                    query_name: query.clone(),
                    error: error.clone(),
                    log_groups,
                    query: text,
                },
                format!("Query {query} failed: {error}"),
            ),
        });
    }
    for m in &report.metrics {
        entries.push(TimelineEntry::of(
            ids.step(&format!("metric/{}", m.step)),
            now,
            m.clone(),
            format!("Metric {}: {}", m.step, m.line()),
        ));
    }
    entries.push(
        TimelineEntry::new(
            ids.step("recent-changes"),
            now,
            EntryKind::RecentChanges,
            report.recent_changes.line(),
        )
        .with_detail(report.recent_changes.clone()),
    );
    if let Some(hint_unknown) = unknown_hint {
        let why = match hint_unknown {
            Some(h) => {
                format!("the alarm's runbook tag names {h:?}, which does not exist, and no trigger matches")
            }
            None => {
                let metric = [raised.namespace.as_deref(), raised.metric_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                let what = match (&raised.composite_rule, metric.is_empty()) {
                    (Some(rule), _) => {
                        format!(" (composite alarm: {})", crate::model::evidence::cut(rule, 200))
                    }
                    (None, false) => format!(" ({metric})"),
                    (None, true) => " (no metric named)".to_string(),
                };
                format!("no runbook's trigger matches alarm {}{what}", raised.alarm_name)
            }
        };
        entries.push(
            TimelineEntry::new(
                ids.step("no-runbook"),
                now,
                EntryKind::NoRunbook,
                format!("No runbook: {why}; ran generic diagnostics (errors and exceptions, counts per 5 minutes)"),
            )
            .with_detail(detail::NoRunbook {
                alarm: raised.alarm_name.clone(),
                runbook_tag: hint_unknown.map(str::to_string),
            }),
        );
    }
    for m in matched {
        let first = chosen.is_some_and(|c| c.cause == m.cause);
        entries.push(
            TimelineEntry::new(
                ids.step(&format!("cause/{}", m.cause)),
                now,
                EntryKind::CauseMatched,
                format!(
                    "Cause {}{}: {} (suggested: {})",
                    m.cause,
                    if first { "" } else { " (also matched)" },
                    m.description.trim(),
                    if m.remediation.is_empty() {
                        "none".to_string()
                    } else {
                        m.remediation.join(", ")
                    }
                ),
            )
            .with_detail(m.clone()),
        );
    }
    if !report.hypotheses.is_empty() || report.abstained.is_some() {
        entries.push(TimelineEntry::of(
            ids.step("hypotheses"),
            now,
            detail::Hypotheses {
                hypotheses: report.hypotheses.clone(),
                abstained: report.abstained.clone(),
            },
            hypotheses_line(report),
        ));
    }
    entries
}

/// `Hypotheses: a (1.00), b (0.50); cause a` or `...; abstained: why`.
fn hypotheses_line(r: &DiagnosisReport) -> String {
    let ranked: Vec<String> = r.hypotheses.iter().map(Hypothesis::label).collect();
    let ranked = if ranked.is_empty() {
        "none".to_string()
    } else {
        ranked.join(", ")
    };
    match (&r.cause, &r.abstained) {
        (_, Some(why)) => format!("Hypotheses: {ranked}; abstained, no cause named: {why}"),
        (Some(c), None) => format!("Hypotheses: {ranked}; cause {c}"),
        (None, None) => format!("Hypotheses: {ranked}"),
    }
}

/// The page a diagnosis sends: what it found and what it did not, for a person to read.
/// What the diagnosis page links to beside its text: the runbook's resolution steps and the
/// first Logs Insights query it ran.
#[derive(Debug, Clone, Default)]
pub(super) struct PageExtras {
    pub next_steps: Vec<String>,
    pub log_query: Option<crate::model::page::LogQueryLink>,
}

pub(super) fn page_message(inc: &Incident, r: &DiagnosisReport, extras: &PageExtras) -> Notification {
    let subject = match (&r.cause, &r.abstained) {
        (Some(c), _) => format!("[{}] Diagnosis: {c} on {}", inc.severity, inc.service),
        (None, Some(_)) => format!(
            "[{}] Diagnosis inconclusive on {}: no automatic action",
            inc.severity, inc.service
        ),
        (None, None) => format!("[{}] Diagnosis: no known cause on {}", inc.severity, inc.service),
    };
    let mut body = vec![format!("Incident {} ({}).", inc.id, inc.title)];
    match (&r.cause, &r.abstained) {
        (Some(c), _) => body.push(format!(
            "Cause: {c}, runbook {}{}.",
            r.runbook.as_deref().unwrap_or("none"),
            if r.suggested.is_empty() {
                String::new()
            } else {
                format!("; suggested {}", r.suggested.join(", "))
            }
        )),
        (None, Some(why)) => body.push(format!(
            "No cause is named, so no remediation is proposed or taken; a responder decides: {why}."
        )),
        (None, None) => body.push(format!(
            "No known cause of runbook {} matched.",
            r.runbook.as_deref().unwrap_or("(none: generic diagnostics)")
        )),
    }
    if !r.hypotheses.is_empty() {
        body.push("Hypotheses, best first:".to_string());
        for (i, h) in r.hypotheses.iter().enumerate() {
            body.push(format!("{}. {}", i + 1, h.label()));
            body.extend(h.evidence.iter().map(|e| format!("   for: {e}")));
            body.extend(h.against.iter().map(|e| format!("   against: {e}")));
            body.extend(h.missing.iter().map(|e| format!("   missing: {e}")));
        }
    }
    if !r.metrics.is_empty() {
        body.push("Metrics:".to_string());
        body.extend(r.metrics.iter().map(|m| format!("- {}", m.line())));
    }
    body.push(format!("What changed: {}", r.recent_changes.line()));
    match (r.estimated_start, &r.start_note) {
        (Some(t), _) => body.push(format!("Started ~{} UTC.", t.format("%H:%M"))),
        (None, Some(n)) => body.push(format!("Start unknown: {n}.")),
        (None, None) => {}
    }
    Notification {
        subject: plain_line(&subject),
        // alarm names, log lines and metric dimensions come from outside: inert
        body: plain(&body.join("\n")),
        attributes: BTreeMap::from([
            ("kind".to_string(), "diagnosis".to_string()),
            ("severity".to_string(), inc.severity.to_string()),
            ("service".to_string(), inc.service.clone()),
            ("incident".to_string(), inc.id.to_string()),
        ]),
        facts: crate::ports::PageFacts {
            log_query: extras.log_query.clone(),
            ..crate::ports::PageFacts::of(inc, crate::ports::PageEvent::Diagnosis)
        }
        .steps(match (&r.cause, &r.abstained) {
            (Some(_), _) => extras
                .next_steps
                .iter()
                .map(|s| format!("Runbook: {s}"))
                .collect::<Vec<_>>(),
            _ => vec![
                "No cause is named: a responder decides; the hypotheses and their evidence are above"
                    .to_string(),
            ],
        })
        .next(format!("Timeline: firebreak show {}", inc.id)),
    }
}

/// `diagnosis-completed`, carrying the whole report.
pub(super) fn completed_entry(
    ids: &DiagnosisIds<'_>,
    report: &DiagnosisReport,
    raised: &IncidentRaised,
    now: DateTime<Utc>,
) -> TimelineEntry {
    TimelineEntry::new(
        ids.completed(),
        now,
        EntryKind::DiagnosisCompleted,
        completed_summary(report, raised),
    )
    .with_detail(report.clone())
}

pub(super) fn read_report(entry: &TimelineEntry) -> Result<DiagnosisReport, Error> {
    match entry.detail() {
        Detail::DiagnosisCompleted(r) => Ok((**r).clone()),
        _ => Err(Error::invalid(
            format!("timeline entry {}", entry.event_id),
            "has no diagnosis report",
        )),
    }
}

/// The planned queries in the order of `outcomes` (both follow the runbook's order).
fn sorted_like<'p>(planned: &'p [Planned], outcomes: &[QueryOutcome]) -> Vec<&'p Planned> {
    outcomes
        .iter()
        .filter_map(|o| planned.iter().find(|p| p.name == o.name()))
        .collect()
}

fn completed_summary(r: &DiagnosisReport, raised: &IncidentRaised) -> String {
    let mut s = match (&r.cause, &r.runbook) {
        (Some(c), Some(rb)) => format!("Diagnosis completed: cause {c} (runbook {rb})"),
        (None, Some(rb)) if r.abstained.is_some() => {
            format!("Diagnosis completed: abstained, the evidence of runbook {rb} does not decide the cause")
        }
        (None, Some(rb)) => format!("Diagnosis completed: no known cause of runbook {rb} matched"),
        (_, None) => "Diagnosis completed without a runbook".to_string(),
    };
    if let Some(start) = r.estimated_start {
        s.push_str(&format!(
            ", started ~{} ({} before the alarm)",
            start.format("%H:%M"),
            human((raised.alarm_at - start).num_seconds())
        ));
    }
    if !r.suggested.is_empty() {
        s.push_str(&format!(", suggested {}", r.suggested.join(", ")));
    }
    let failed = r
        .queries
        .iter()
        .filter(|q| matches!(q, QueryOutcome::Failed { .. }))
        .count();
    if failed > 0 {
        s.push_str(&format!(", {failed} of {} queries failed", r.queries.len()));
    }
    s
}
