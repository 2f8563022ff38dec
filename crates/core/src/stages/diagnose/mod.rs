//! The diagnose use-case: on "Incident Opened" or "Incident Escalated", select the runbook, run
//! its Logs Insights queries in parallel (bounded, under one deadline) beside its CloudWatch
//! metric steps (one GetMetricData), read the ECS service's recent changes (deployments with
//! what their task definitions changed, service events), score the runbook's causes as
//! hypotheses, name the cause or abstain, record everything on the timeline, update the
//! incident, put "Diagnosis Completed" on the bus and page what it found.
//!
//! Safe to run twice on the same delivery: every timeline entry has a deterministic event id
//! (`<incident>/diagnosis/<severity>/...`), and a delivery that finds `.../completed` recorded
//! changes nothing and runs no query (it only re-sends "Diagnosis Completed" when the earlier
//! run recorded the diagnosis but failed to send it).

use crate::model::duration::Span;
use crate::model::entry_id::EntryId;
use crate::model::evidence::MetricSummary;
use crate::model::incident::{EcsService, Incident};
use crate::model::pipeline::IncidentRaised;
use crate::model::settings::Settings;
use crate::model::timeline::{EntryKind, TimelineEntry};
use crate::ports::bundle::*;
use crate::ports::update::{Saved, Update};
use crate::ports::{
    Clock, EventBus, IncidentStore, LogQueries, MetricQueries, MetricRequest, Notifier, PointerChange,
    QueryError, QueryOutput, Route, ServiceControl, ServiceState, StoreError,
};
use crate::runbook::findings;
use crate::runbook::template::TemplateVars;
use crate::runbook::{Runbook, RunbookSet, TriggerMatch};
use crate::Error;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

/// The queries' window ends this long after the alarm, for late log lines.
pub const WINDOW_MARGIN: Span = Span::minutes(2);
/// Extra time a query gets beyond its own deadline before the use-case stops waiting.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Service events kept in the recent changes.
const MAX_EVENTS: usize = 20;
/// Deployments whose task definitions a diagnosis compares.
const MAX_DIFFS: usize = 5;

mod decide;
mod record;

pub use decide::{generic_runbook, DiagnosisReport, QueryOutcome, RecentChanges, LOG_VOLUME};
use decide::{plan, plan_metrics, recent_changes, DecideInput, Planned, PlannedMetric};

/// The diagnose use-case over its ports.
pub struct Diagnose<'a, P: DiagnosePorts> {
    pub ports: P,
    pub runbooks: &'a RunbookSet,
    pub settings: &'a Settings,
}

/// Tries of one read (a query, the ECS describe) that fails with a retryable error, within the
/// diagnosis deadline, before the diagnosis records it as missing evidence.
const READ_ATTEMPTS: usize = 4;

impl<P: DiagnosePorts> Diagnose<'_, P> {
    /// Diagnoses the incident `raised` names. A failed query or ECS call is recorded, not
    /// returned; only store and bus failures are errors (retryable ones are worth a redelivery).
    ///
    /// # Errors
    /// [`Error::Store`] when the incident does not exist or the store fails, [`Error::Port`]
    /// when the bus refuses the event, [`Error::Invalid`] when a recorded diagnosis is unreadable.
    #[tracing::instrument(skip(self), fields(incident = %raised.incident_id))]
    pub async fn handle(&self, raised: &IncidentRaised) -> Result<DiagnosisReport, Error> {
        let id = &raised.incident_id;
        let ids = record::DiagnosisIds::of(raised);
        let (completed_id, published_id) = (ids.completed(), ids.published());

        let timeline = self.ports.store().timeline(id).await?;
        if let Some(done) = timeline.iter().find(|e| e.event_id == completed_id) {
            let mut report = record::read_report(done)?;
            report.repeated = true;
            if !timeline.iter().any(|e| e.event_id == published_id) {
                self.publish(&report, &published_id).await?;
            }
            if !timeline.iter().any(|e| e.event_id == ids.paged()) {
                let extras = self.page_extras(&report, None);
                self.page(raised, &report, &ids, &extras).await?;
            }
            tracing::info!(cause = ?report.cause, "diagnosis already recorded; nothing to do");
            return Ok(report);
        }
        let incident = self
            .ports
            .store()
            .get(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id.clone()))?;

        // the runbook
        let facts = crate::runbook::AlarmFacts::from(raised);
        let selected = self.runbooks.select_explained(facts);
        let hint_unknown = facts
            .explicit_runbook()
            .filter(|h| self.runbooks.get(h).is_none())
            .map(str::to_string);
        let generic;
        let (runbook, because): (&Runbook, Option<TriggerMatch>) = match &selected {
            Some((rb, why)) => (*rb, Some(why.clone())),
            None => {
                generic = generic_runbook(Span::seconds(self.settings.diagnosis.default_lookback_s.max(60)));
                (&generic, None)
            }
        };
        let window_start = raised.alarm_at - runbook.lookback.to_chrono();
        let window_end = raised.alarm_at + WINDOW_MARGIN.to_chrono();
        let mut vars = TemplateVars::from_raised(raised);
        vars.set("runbook", runbook.id.clone());

        let prefix = self.settings.diagnosis.log_group_prefix.as_str();
        let planned: Vec<Planned> = runbook
            .investigation
            .iter()
            .map(|step| {
                let (request, dropped) = plan(runbook, step, &vars, prefix, window_start, window_end);
                Planned {
                    name: step.name.clone(),
                    measures: step.measures,
                    request: request.map_err(|e| e.to_string()),
                    dropped,
                }
            })
            .collect();
        let mut planned = planned;
        if let Some(volume) = decide::log_volume(&planned, window_start, window_end) {
            planned.push(volume);
        }

        let now = self.ports.clock().now();
        self.ports
            .store()
            .append(
                id,
                &[record::started_entry(
                    &ids,
                    runbook,
                    &selected,
                    &because,
                    raised,
                    &planned,
                    (window_start, window_end),
                    now,
                )],
            )
            .await?;
        if let Some(note) = dropped_groups_entry(raised, &planned, prefix, now) {
            self.ports.store().append(id, &[note]).await?;
        }

        // queries, metrics and ECS at once
        let ecs_target = raised.ecs.clone().or_else(|| incident.ecs.clone());
        let planned_metrics = plan_metrics(runbook, raised, ecs_target.as_ref(), &vars, window_end);
        let (results, metrics, ecs_state) = futures::join!(
            self.run_queries(&planned),
            self.read_metrics(&planned_metrics),
            self.describe(ecs_target.as_ref())
        );
        let mut recent = recent_changes(ecs_target.as_ref(), ecs_state.clone(), window_start, window_end);
        recent.as_of = Some(raised.alarm_at);
        if let Some(Ok(state)) = &ecs_state {
            recent.diffs = self.diffs(state, &recent).await;
        }

        let (report, matched) = decide::decide(DecideInput {
            raised,
            runbook,
            selected: selected.as_ref().map(|(r, _)| r.id.clone()),
            because: because.as_ref().map(ToString::to_string),
            planned: &planned,
            results,
            metrics,
            recent,
            window: (window_start, window_end),
            settings: &self.settings.diagnosis,
        });

        // the timeline
        let now = self.ports.clock().now();
        let unknown_hint = selected.is_none().then_some(hint_unknown.as_deref());
        let entries = record::finding_entries(&ids, &report, &matched, &planned, raised, unknown_hint, now);
        self.ports.store().append(id, &entries).await?;

        let completed = record::completed_entry(&ids, &report, raised, now);
        match self.save(&incident, &report, now, completed, &ids).await {
            Ok(()) => {}
            Err(Error::Store(StoreError::Duplicate(e))) if e == completed_id => {
                // a concurrent delivery recorded it first; it also sends the event
                let timeline = self.ports.store().timeline(id).await?;
                if let Some(done) = timeline.iter().find(|e| e.event_id == completed_id) {
                    let mut r = record::read_report(done)?;
                    r.repeated = true;
                    return Ok(r);
                }
                return Err(Error::Store(StoreError::Duplicate(e)));
            }
            Err(e) => return Err(e),
        }
        self.publish(&report, &published_id).await?;
        let extras = self.page_extras(&report, Some(&planned));
        self.page(raised, &report, &ids, &extras).await?;
        tracing::info!(
            runbook = ?report.runbook,
            cause = ?report.cause,
            estimated_start = ?report.estimated_start,
            "diagnosis completed"
        );
        Ok(report)
    }

    /// The runbook's resolution steps and the first query run, for the page's next steps and
    /// links (a redelivery, which has no plan at hand, links no query).
    fn page_extras(&self, report: &DiagnosisReport, planned: Option<&[Planned]>) -> record::PageExtras {
        record::PageExtras {
            next_steps: report
                .runbook
                .as_deref()
                .and_then(|r| self.runbooks.get(r))
                .map(|rb| rb.resolution.clone())
                .unwrap_or_default(),
            log_query: planned
                .unwrap_or_default()
                .iter()
                .find_map(|p| p.request.as_ref().ok())
                .map(|q| crate::model::page::LogQueryLink {
                    log_groups: q.log_groups.clone(),
                    query: q.query.clone(),
                    start: q.start,
                    end: q.end,
                }),
        }
    }

    async fn run_queries(&self, planned: &[Planned]) -> Vec<(String, Result<QueryOutput, String>)> {
        let budget = Duration::from_secs(self.settings.diagnosis.deadline_s.max(1));
        let started = std::time::Instant::now();
        let parallel = self.settings.diagnosis.max_parallel.max(1);
        // futures from an async fn (not a closure) keep `handle` Send for the Lambda runtime
        let futs: Vec<_> = planned.iter().map(|p| self.run_one(p, budget, started)).collect();
        let mut results: Vec<(String, Result<QueryOutput, String>)> = futures::stream::iter(futs)
            .buffer_unordered(parallel)
            .collect()
            .await;
        let order: BTreeMap<&str, usize> = planned
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();
        results.sort_by_key(|(n, _)| order.get(n.as_str()).copied().unwrap_or(usize::MAX));
        results
    }

    async fn run_one(
        &self,
        p: &Planned,
        budget: Duration,
        started: std::time::Instant,
    ) -> (String, Result<QueryOutput, String>) {
        let result = match &p.request {
            Err(e) => Err(format!("not run: {e}")),
            Ok(req) => {
                let remaining = budget.saturating_sub(started.elapsed());
                if remaining.is_zero() {
                    Err(QueryError::Timeout(budget).to_string())
                } else {
                    let mut req = req.clone();
                    req.deadline = remaining;
                    let retryable = |e: &QueryError| matches!(e, QueryError::Port(p) if p.retryable);
                    match read_within(budget, started, &p.name, retryable, || {
                        self.ports.logs().run(&req)
                    })
                    .await
                    {
                        Some(r) => r.map_err(|e| e.to_string()),
                        None => Err(QueryError::Timeout(remaining).to_string()),
                    }
                }
            }
        };
        if let Err(e) = &result {
            tracing::warn!(query = %p.name, error = %e, "query failed");
        }
        (p.name.clone(), result)
    }

    /// Every metric step in one GetMetricData (tried again while throttled, within the
    /// diagnosis deadline); a step that cannot be read says why.
    async fn read_metrics(&self, planned: &[PlannedMetric<'_>]) -> Vec<MetricSummary> {
        let queries: Vec<_> = planned
            .iter()
            .filter_map(|p| p.query.as_ref().ok().cloned())
            .collect();
        let answer = if queries.is_empty() {
            Ok(Vec::new())
        } else {
            let request = MetricRequest {
                queries,
                start: planned.iter().map(|p| p.baseline_start).min().unwrap_or_default(),
                end: planned.iter().map(|p| p.incident.1).max().unwrap_or_default(),
            };
            let budget = Duration::from_secs(self.settings.diagnosis.deadline_s.max(1));
            let retryable = |e: &crate::ports::PortError| e.retryable;
            let read = || self.ports.metrics().get(&request);
            match read_within(
                budget,
                std::time::Instant::now(),
                "GetMetricData",
                retryable,
                read,
            )
            .await
            {
                Some(r) => r.map_err(|e| e.to_string()),
                None => Err(format!(
                    "CloudWatch GetMetricData did not answer within {budget:?}"
                )),
            }
        };
        if let Err(e) = &answer {
            tracing::warn!(error = %e, "metrics could not be read");
        }
        planned
            .iter()
            .map(|p| {
                let found = match (&p.query, &answer) {
                    (Err(e), _) => Err(format!("not read: {e}")),
                    (Ok(_), Err(e)) => Err(e.clone()),
                    (Ok(q), Ok(data)) => data
                        .iter()
                        .find(|d| d.id == q.id)
                        .ok_or_else(|| "CloudWatch gave no answer for it".to_string()),
                };
                match &p.query {
                    Ok(q) => findings::summarize_metric(
                        p.step,
                        q,
                        found.as_ref().map(|d| *d).map_err(String::as_str),
                        p.baseline_start,
                        p.incident,
                    ),
                    Err(e) => {
                        let q = findings::metric_query("m", p.step, Default::default());
                        let mut m =
                            findings::summarize_metric(p.step, &q, Err(e), p.baseline_start, p.incident);
                        m.note = Some(format!("not read: {e}"));
                        m
                    }
                }
            })
            .collect()
    }

    /// For each deployment shown, what its task definition changed against the one before.
    /// A read that fails is a note in the diff, not a failed diagnosis.
    async fn diffs(
        &self,
        state: &ServiceState,
        recent: &RecentChanges,
    ) -> Vec<crate::model::evidence::DefinitionDiff> {
        let shown: Vec<&str> = recent
            .deployments
            .iter()
            .filter(|d| d.created_at.is_some())
            .map(|d| d.task_definition.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .take(MAX_DIFFS)
            .collect();
        let mut out = Vec::new();
        let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for rev in shown {
            let family = rev
                .rsplit('/')
                .next()
                .unwrap_or(rev)
                .split_once(':')
                .map_or(rev, |(f, _)| f)
                .to_string();
            if !families.contains_key(&family) {
                let registered = self
                    .ports
                    .ecs()
                    .task_definitions(&family)
                    .await
                    .unwrap_or_default();
                families.insert(family.clone(), registered);
            }
            let previous = decide::previous_revision(rev, state, &families[&family]);
            let next = self
                .ports
                .ecs()
                .task_definition(rev)
                .await
                .map_err(|e| e.to_string());
            let prev = match &previous {
                Some(p) => Some(
                    self.ports
                        .ecs()
                        .task_definition(p)
                        .await
                        .map_err(|e| e.to_string()),
                ),
                None => None,
            };
            out.push(decide::definition_diff(rev, previous.as_deref(), next, prev));
        }
        out
    }

    /// The diagnosis page: the cause (or why none is named), the hypotheses, the metrics, what
    /// changed. Not sent while the incident is held as flapping or after it resolved, nor when
    /// it was escalated or reopened since this diagnosis's trigger (that trigger's diagnosis
    /// pages). Recorded as `.../paged`.
    async fn page(
        &self,
        raised: &IncidentRaised,
        report: &DiagnosisReport,
        ids: &record::DiagnosisIds<'_>,
        extras: &record::PageExtras,
    ) -> Result<(), Error> {
        let Some(inc) = self.ports.store().get(&raised.incident_id).await? else {
            return Ok(());
        };
        if inc.flapping_since.is_some() || inc.status == crate::model::incident::IncidentStatus::Resolved {
            return Ok(());
        }
        if inc.severity != raised.severity || inc.reopened != raised.reopened {
            // escalated or reopened since: that trigger's own diagnosis pages, this one would only
            // repeat its subject
            let note = TimelineEntry::new(
                ids.paged(),
                self.ports.clock().now(),
                EntryKind::Note,
                format!(
                    "Diagnosis not paged: the incident is {} (cycle {}) now, and the diagnosis of that pages",
                    inc.severity, inc.reopened
                ),
            );
            self.ports.store().append(&inc.id, &[note]).await?;
            return Ok(());
        }
        let message = record::page_message(&inc, report, extras);
        let summary = format!("Diagnosis paged: {}", message.subject);
        let now = self.ports.clock().now();
        let entry = match self
            .ports
            .notifier()
            .notify(Route::Severity(inc.severity), &message)
            .await
        {
            Ok(message_id) => TimelineEntry::of(
                ids.paged(),
                now,
                crate::model::timeline::detail::Paged {
                    message_id: Some(message_id),
                    subject: Some(message.subject.clone()),
                    event: None,
                },
                summary,
            ),
            Err(e) if e.retryable => return Err(Error::Port(e)),
            // a page nobody can send is recorded; the diagnosis stands
            Err(e) => TimelineEntry::new(
                ids.paged(),
                now,
                EntryKind::Note,
                format!("The diagnosis page could not be sent: {e}"),
            ),
        };
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(())
    }

    async fn describe(&self, service: Option<&EcsService>) -> Option<Result<ServiceState, String>> {
        let s = service?;
        let mut attempt = 0;
        loop {
            match self.ports.ecs().describe(s).await {
                Ok(state) => return Some(Ok(state)),
                // a throttled read is tried again before the diagnosis goes without it
                Err(e) if e.retryable && attempt + 1 < READ_ATTEMPTS => {
                    tracing::info!(service = %s, error = %e, "ECS describe failed; trying again");
                    crate::ports::retry::pause(attempt).await;
                    attempt += 1;
                }
                Err(e) => return Some(Err(e.to_string())),
            }
        }
    }

    /// Updates the incident and records `completed` with it, re-reading on conflicts.
    async fn save(
        &self,
        first: &Incident,
        report: &DiagnosisReport,
        now: DateTime<Utc>,
        completed: TimelineEntry,
        ids: &record::DiagnosisIds<'_>,
    ) -> Result<(), Error> {
        let mut up = Update::from_read(self.ports.store(), first.clone());
        loop {
            let read = up.read().await?;
            let mut next = read.clone();
            next.record_diagnosis(
                report.runbook.as_deref(),
                report.cause.as_deref(),
                report.estimated_start,
                now,
            );
            let mut entries = vec![completed.clone()];
            if read.status == crate::model::incident::IncidentStatus::Resolved {
                // The incident resolved while the diagnosis ran: its postmortem was drafted
                // without what the diagnosis found. Drafted again, with it, in the same write.
                let redrafted = TimelineEntry::new(
                    ids.redrafted(),
                    now,
                    EntryKind::PostmortemDrafted,
                    format!(
                        "Postmortem drafted again with the diagnosis that finished after the resolution \
                         (firebreak postmortem {})",
                        read.id
                    ),
                );
                let mut timeline = self.ports.store().timeline(&read.id).await?;
                timeline.extend(entries.iter().cloned());
                timeline.push(redrafted.clone());
                crate::model::timeline::sort_entries(&mut timeline);
                let runbook = next.runbook.as_deref().and_then(|r| self.runbooks.get(r));
                let md = crate::report::postmortem::draft(&next, &timeline, runbook);
                self.ports.store().put_postmortem(&read.id, &md).await?;
                next.postmortem = None;
                entries.push(redrafted);
            }
            match up.save(&read, &mut next, PointerChange::Keep, &entries).await? {
                Saved::Saved => return Ok(()),
                Saved::Conflict => tracing::debug!("incident changed underneath; re-reading"),
                Saved::AlreadyRecorded(id) => {
                    return Err(StoreError::Duplicate(id).into());
                }
            }
        }
    }

    async fn publish(&self, report: &DiagnosisReport, published_id: &str) -> Result<(), Error> {
        self.ports.bus().put(&report.event().to_pipeline()).await?;
        self.ports
            .store()
            .append(
                &report.incident_id,
                &[TimelineEntry::new(
                    published_id,
                    self.ports.clock().now(),
                    EntryKind::Note,
                    format!(
                        "Diagnosis Completed sent{}",
                        if report.suggested.is_empty() {
                            String::new()
                        } else {
                            format!(" (suggested: {})", report.suggested.join(", "))
                        }
                    ),
                )],
            )
            .await?;
        Ok(())
    }
}

/// One read (a query, the metrics) within the diagnosis deadline: each try stopped when the
/// time left (plus a grace) runs out, a throttled or unavailable answer tried again while the
/// deadline leaves room for the pause, at most [`READ_ATTEMPTS`] times, rather than a diagnosis
/// without this evidence. `None` when a try outlived the time left.
async fn read_within<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    budget: Duration,
    started: std::time::Instant,
    what: &str,
    retryable: impl Fn(&E) -> bool,
    mut call: impl FnMut() -> F,
) -> Option<Result<T, E>> {
    let remaining = budget.saturating_sub(started.elapsed());
    let mut attempt = 0;
    loop {
        match tokio::time::timeout(remaining + STOP_GRACE, call()).await {
            Ok(Err(e))
                if retryable(&e)
                    && attempt + 1 < READ_ATTEMPTS
                    && started.elapsed() + crate::ports::retry::pause_for(attempt) < budget =>
            {
                tracing::info!(read = %what, error = %e, "read failed; trying again");
                crate::ports::retry::pause(attempt).await;
                attempt += 1;
            }
            Ok(r) => return Some(r),
            Err(_) => return None,
        }
    }
}

/// The note saying which log groups were left out of which queries and why, when any were.
fn dropped_groups_entry(
    raised: &IncidentRaised,
    planned: &[Planned],
    prefix: &str,
    now: DateTime<Utc>,
) -> Option<TimelineEntry> {
    let parts: Vec<String> = planned
        .iter()
        .flat_map(|p| {
            p.dropped
                .iter()
                .map(move |d| format!("{} (from {}) for query {}", d.name, d.template, p.name))
        })
        .collect();
    if parts.is_empty() {
        return None;
    }
    let id = EntryId::Diagnosis {
        incident: raised.incident_id.clone(),
        cycle: raised.reopened,
        severity: raised.severity.as_str().to_string(),
        step: "log-groups-dropped".to_string(),
    };
    Some(TimelineEntry::new(
        id.text(),
        now,
        EntryKind::Note,
        format!(
            "not queried, outside the log-group prefix {prefix:?}: {}; these names take values from the alarm's tags or dimensions, which must not point the diagnosis at other log groups (diagnosis.log_group_prefix)",
            parts.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::local_logs::LocalLogQueries;
    use crate::adapters::local_metrics::RecordedMetrics;
    use crate::adapters::memory::{
        InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, InMemoryServiceControl, SimClock,
    };
    use crate::model::incident::IncidentId;
    use crate::model::pipeline::Event;
    use crate::model::severity::Severity;
    use crate::ports::{detail_types, QueryRequest};
    use crate::runbook::RunbookSource;
    use chrono::TimeZone;
    use firebreak_insights::LogEvent;
    use std::sync::Mutex;

    const ID: &str = "INC-20260314-143500-0abc";

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
    }

    fn incident() -> Incident {
        let mut i = Incident::open(
            IncidentId(ID.into()),
            "prod/api",
            Severity::Sev2,
            "api-5xx",
            at(14, 35),
            at(14, 35),
        );
        i.ecs = Some(EcsService::new("prod", "api"));
        i
    }

    fn raised(alarm: &str) -> IncidentRaised {
        IncidentRaised {
            incident_id: IncidentId(ID.into()),
            service: "prod/api".into(),
            ecs: Some(EcsService::new("prod", "api")),
            severity: Severity::Sev2,
            alarm_name: alarm.into(),
            alarm_at: at(14, 35),
            runbook_hint: None,
            namespace: None,
            metric_name: None,
            dimensions: Default::default(),
            composite_rule: None,
            tags: BTreeMap::new(),
            reopened: 0,
        }
    }

    const RUNBOOK: &str = r#"
id: api-errors
title: API errors
trigger: { alarms: ["api-5xx"] }
impact: errors
investigation:
  - name: errors
    query: "fields @timestamp, @message | filter @message like /ERROR/ | limit 20"
  - name: slow
    query: "fields @message | filter @message like /slow/"
  - name: hostile
    log_groups: ["/ecs/api"]
    query: "fields @message | filter @message like /{tag.route}/"
causes:
  - id: boom
    description: it went boom
    signatures:
      - pattern: { query: errors, matches: "boom" }
    remediation:
      - { action: ecs-restart }
prevention: ["don't"]
"#;

    fn runbooks() -> RunbookSet {
        RunbookSet::from_sources(&[RunbookSource {
            file: "api-errors.yaml".into(),
            text: RUNBOOK.into(),
        }])
        .unwrap()
    }

    /// Answers from a local engine, except the queries told to fail or hang; counts calls.
    struct FakeLogs {
        local: LocalLogQueries,
        fail: Vec<String>,
        hang: Vec<String>,
        calls: Mutex<Vec<QueryRequest>>,
    }

    impl FakeLogs {
        fn new(fail: &[&str], hang: &[&str]) -> FakeLogs {
            let ev = |m: u32, msg: &str| LogEvent::new(at(14, m).timestamp_millis(), "/ecs/api", "s", msg);
            FakeLogs {
                local: LocalLogQueries::new(vec![
                    ev(30, "ERROR boom"),
                    ev(31, "ERROR boom again"),
                    ev(32, "x/ | stats count() by @message"),
                    ev(33, "INFO fine"),
                ]),
                fail: fail.iter().map(|s| s.to_string()).collect(),
                hang: hang.iter().map(|s| s.to_string()).collect(),
                calls: Mutex::new(Vec::new()),
            }
        }
        fn calls(&self) -> Vec<QueryRequest> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl LogQueries for FakeLogs {
        async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
            self.calls.lock().unwrap().push(request.clone());
            if self.fail.contains(&request.name) {
                return Err(QueryError::Failed("MalformedQueryException: nope".into()));
            }
            if self.hang.contains(&request.name) {
                futures::future::pending::<()>().await;
            }
            self.local.run(request).await
        }
    }

    struct World {
        store: InMemoryIncidentStore,
        logs: FakeLogs,
        metrics: RecordedMetrics,
        notifier: InMemoryNotifier,
        ecs: InMemoryServiceControl,
        bus: InMemoryEventBus,
        clock: SimClock,
        runbooks: RunbookSet,
        settings: Settings,
    }

    impl World {
        async fn new(logs: FakeLogs) -> World {
            let store = InMemoryIncidentStore::new();
            store
                .open(&incident(), &[], Duration::from_secs(60))
                .await
                .unwrap();
            World {
                store,
                logs,
                metrics: RecordedMetrics::default(),
                notifier: InMemoryNotifier::new(),
                ecs: InMemoryServiceControl::new(),
                bus: InMemoryEventBus::new(),
                clock: SimClock::new(at(14, 36)),
                runbooks: runbooks(),
                settings: Settings::default(),
            }
        }
        fn uc(&self) -> Diagnose<'_, impl DiagnosePorts + '_> {
            Diagnose {
                ports: Wired::new()
                    .store(&self.store)
                    .logs(&self.logs)
                    .metrics(&self.metrics)
                    .notifier(&self.notifier)
                    .ecs(&self.ecs)
                    .bus(&self.bus)
                    .clock(&self.clock),
                runbooks: &self.runbooks,
                settings: &self.settings,
            }
        }
        async fn timeline(&self) -> Vec<TimelineEntry> {
            self.store.timeline(&IncidentId(ID.into())).await.unwrap()
        }
    }

    fn with_route(mut r: IncidentRaised, route: &str) -> IncidentRaised {
        r.tags.insert("route".into(), route.into());
        r
    }

    #[tokio::test]
    async fn a_failed_query_is_a_timeline_entry_and_the_diagnosis_completes() {
        let w = World::new(FakeLogs::new(&["slow"], &[])).await;
        let r = w.uc().handle(&with_route(raised("api-5xx"), "r")).await.unwrap();
        assert_eq!(r.cause.as_deref(), Some("boom"));
        let tl = w.timeline().await;
        let failed = tl.iter().find(|e| e.kind() == EntryKind::QueryFailed).unwrap();
        assert_eq!(failed.event_id, format!("{ID}/diagnosis/SEV2/query/slow"));
        assert!(
            failed.summary.contains("MalformedQueryException"),
            "{}",
            failed.summary
        );
        assert!(tl.iter().any(|e| e.kind() == EntryKind::DiagnosisCompleted));
        assert!(tl
            .iter()
            .find(|e| e.kind() == EntryKind::DiagnosisCompleted)
            .unwrap()
            .summary
            .contains("1 of 4 queries failed"));
        assert_eq!(w.bus.events().len(), 1);
    }

    #[tokio::test]
    async fn a_diagnosis_finishing_after_the_resolution_drafts_the_postmortem_again_with_its_cause() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        // resolved (its postmortem drafted without a cause) while the diagnosis was running
        let mut inc = w.store.get(&IncidentId(ID.into())).await.unwrap().unwrap();
        let v = inc.version;
        inc.resolve(at(14, 36));
        inc.postmortem = Some("drafted before the diagnosis".into());
        inc.version = v + 1;
        w.store.save(&inc, v, PointerChange::Release, &[]).await.unwrap();
        let r = w.uc().handle(&with_route(raised("api-5xx"), "r")).await.unwrap();
        assert_eq!(r.cause.as_deref(), Some("boom"));
        let stored = w.store.get(&IncidentId(ID.into())).await.unwrap().unwrap();
        assert_eq!(stored.cause.as_deref(), Some("boom"));
        let pm = w.store.postmortem(&IncidentId(ID.into())).await.unwrap().unwrap();
        assert!(pm.contains("boom"), "{pm}");
        assert!(w
            .timeline()
            .await
            .iter()
            .any(|e| e.event_id == format!("{ID}/diagnosis/SEV2/postmortem-redrafted")));
    }

    #[tokio::test]
    async fn a_query_that_outlives_the_deadline_is_stopped_and_recorded() {
        let mut w = World::new(FakeLogs::new(&[], &["slow"])).await;
        w.settings.diagnosis.deadline_s = 1;
        let r = w.uc().handle(&with_route(raised("api-5xx"), "r")).await.unwrap();
        assert_eq!(r.cause.as_deref(), Some("boom"));
        let slow = r.queries.iter().find(|q| q.name() == "slow").unwrap();
        match slow {
            QueryOutcome::Failed { error, .. } => assert!(error.contains("did not finish"), "{error}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        // the adapter was told how long it had
        let sent = w.logs.calls();
        assert!(sent
            .iter()
            .all(|q| q.deadline > Duration::ZERO && q.deadline <= Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn redelivery_runs_no_query_and_sends_nothing_twice() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let ev = with_route(raised("api-5xx"), "r");
        let first = w.uc().handle(&ev).await.unwrap();
        let timeline = w.timeline().await;
        let second = w.uc().handle(&ev).await.unwrap();
        assert!(!first.repeated && second.repeated);
        assert_eq!(second.cause, first.cause);
        assert_eq!(
            w.logs.calls().len(),
            4,
            "queries ran once (the runbook's 3 and log-volume)"
        );
        assert_eq!(w.bus.events().len(), 1);
        assert_eq!(w.timeline().await, timeline);
        let inc = w.store.get(&IncidentId(ID.into())).await.unwrap().unwrap();
        assert_eq!(inc.version, 2);
        // an escalation is a new trigger: diagnosed again, under its own ids
        let mut esc = ev.clone();
        esc.severity = Severity::Sev1;
        w.uc().handle(&esc).await.unwrap();
        assert_eq!(w.logs.calls().len(), 8);
        assert_eq!(w.bus.events().len(), 2);
        assert!(w
            .timeline()
            .await
            .iter()
            .any(|e| e.event_id == format!("{ID}/diagnosis/SEV1/completed")));
    }

    #[tokio::test]
    async fn when_the_bus_failed_the_redelivery_sends_the_recorded_diagnosis() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let ev = with_route(raised("api-5xx"), "r");
        w.uc().handle(&ev).await.unwrap();
        // forget the send, as if put had failed after the diagnosis was recorded
        w.bus.drain();
        let store2 = InMemoryIncidentStore::new();
        store2
            .open(&incident(), &[], Duration::from_secs(60))
            .await
            .unwrap();
        let tl: Vec<TimelineEntry> = w
            .timeline()
            .await
            .into_iter()
            .filter(|e| !e.event_id.ends_with("/published"))
            .collect();
        store2.append(&IncidentId(ID.into()), &tl).await.unwrap();
        let uc = Diagnose {
            ports: Wired::new()
                .store(&store2)
                .logs(&w.logs)
                .metrics(&w.metrics)
                .notifier(&w.notifier)
                .ecs(&w.ecs)
                .bus(&w.bus)
                .clock(&w.clock),
            runbooks: &w.runbooks,
            settings: &w.settings,
        };
        let r = uc.handle(&ev).await.unwrap();
        assert!(r.repeated);
        assert_eq!(w.bus.events().len(), 1);
        assert_eq!(w.logs.calls().len(), 4, "no query ran again");
    }

    #[tokio::test]
    async fn without_a_matching_runbook_generic_diagnostics_run() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let r = w.uc().handle(&raised("disk-70-percent")).await.unwrap();
        assert_eq!(r.runbook, None);
        assert_eq!(r.cause, None);
        let names: Vec<String> = w.logs.calls().iter().map(|q| q.name.clone()).collect();
        assert_eq!(names.len(), 3);
        assert!(names.contains(&"errors".to_string()) && names.contains(&"error-counts".to_string()));
        assert!(names.contains(&LOG_VOLUME.to_string()));
        assert!(w
            .logs
            .calls()
            .iter()
            .all(|q| q.log_groups == vec!["/ecs/api".to_string()]));
        let tl = w.timeline().await;
        let nr = tl.iter().find(|e| e.kind() == EntryKind::NoRunbook).unwrap();
        assert!(nr.summary.contains("disk-70-percent"), "{}", nr.summary);
        let errors = r.queries.iter().find(|q| q.name() == "errors").unwrap();
        match errors {
            QueryOutcome::Completed(s) => assert_eq!(s.rows, 2),
            other => panic!("{other:?}"),
        }
        match Event::from_pipeline(&w.bus.events()[0]).unwrap() {
            Event::Diagnosed(d) => {
                assert_eq!(d.runbook, None);
                assert!(d.suggested.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(w.bus.events()[0].detail_type, detail_types::DIAGNOSIS_COMPLETED);
    }

    #[tokio::test]
    async fn a_hostile_dimension_value_stays_a_literal() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let r = w
            .uc()
            .handle(&with_route(raised("api-5xx"), "x/ | stats count() by @message"))
            .await
            .unwrap();
        let sent = w.logs.calls();
        let q = sent.iter().find(|q| q.name == "hostile").unwrap();
        assert_eq!(
            q.query,
            r"fields @message | filter @message like /x\/ \| stats count\(\) by \@message/"
        );
        // the query still has two commands, and finds the one line that holds the value
        assert_eq!(firebreak_insights::parse(&q.query).unwrap().commands.len(), 2);
        match r.queries.iter().find(|q| q.name() == "hostile").unwrap() {
            QueryOutcome::Completed(s) => {
                assert_eq!(s.rows, 1);
                assert_eq!(s.top_messages[0].message, "x/ | stats count() by @message");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_value_that_cannot_be_a_log_group_fails_only_its_queries() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let mut ev = with_route(raised("api-5xx"), "r");
        ev.ecs = Some(EcsService::new("prod", "x/ | stats count() by @message"));
        let r = w.uc().handle(&ev).await.unwrap();
        // the two queries over /ecs/{service_name} are not run; the one with a fixed group is,
        // and log-volume over that group
        assert_eq!(w.logs.calls().len(), 2);
        let failed: Vec<&str> = r
            .queries
            .iter()
            .filter(|q| matches!(q, QueryOutcome::Failed { .. }))
            .map(QueryOutcome::name)
            .collect();
        assert_eq!(failed, vec!["errors", "slow"]);
        // and the ECS service does not exist: a note, not a failure
        assert!(r
            .recent_changes
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("not found"));
    }

    #[tokio::test]
    async fn a_tag_cannot_point_the_diagnosis_at_log_groups_outside_the_prefix() {
        const TAGGED: &str = r#"
id: tagged-groups
title: Log groups from tags
trigger: { alarms: ["api-5xx"] }
impact: errors
log_groups: ["/ecs/{service_name}", "{tag.log-group}"]
investigation:
  - name: errors
    query: "fields @message | filter @message like /ERROR/"
  - name: only-tagged
    log_groups: ["{tag.log-group}"]
    query: "fields @message"
  - name: literal
    log_groups: ["/aws/rds/cluster/prod/error"]
    query: "fields @message"
prevention: ["x"]
"#;
        let mut w = World::new(FakeLogs::new(&[], &[])).await;
        w.runbooks = RunbookSet::from_sources(&[RunbookSource {
            file: "tagged-groups.yaml".into(),
            text: TAGGED.into(),
        }])
        .unwrap();
        let mut ev = raised("api-5xx");
        ev.tags
            .insert("log-group".into(), "/aws/lambda/payments-secrets".into());
        let r = w.uc().handle(&ev).await.unwrap();

        let sent = w.logs.calls();
        let groups = |name: &str| sent.iter().find(|q| q.name == name).map(|q| q.log_groups.clone());
        // the tagged group is dropped, the service's own stays
        assert_eq!(groups("errors"), Some(vec!["/ecs/api".to_string()]));
        // a query left with no log group is not run
        assert_eq!(groups("only-tagged"), None);
        match r.queries.iter().find(|q| q.name() == "only-tagged").unwrap() {
            QueryOutcome::Failed { error, .. } => assert!(error.contains("outside the prefix"), "{error}"),
            other => panic!("{other:?}"),
        }
        // a literal group in the runbook is its author's choice
        assert_eq!(
            groups("literal"),
            Some(vec!["/aws/rds/cluster/prod/error".to_string()])
        );
        // the timeline says which group was dropped, for which queries, and why
        let notes: Vec<String> = w
            .timeline()
            .await
            .into_iter()
            .filter(|e| e.kind() == EntryKind::Note && e.summary.contains("log-group prefix"))
            .map(|e| e.summary)
            .collect();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("/aws/lambda/payments-secrets (from {tag.log-group}) for query errors"),
            "{}",
            notes[0]
        );
        assert!(notes[0].contains("for query only-tagged"), "{}", notes[0]);
        assert!(notes[0].contains("\"/ecs/\""), "{}", notes[0]);

        // a tag within the prefix is queried
        let mut w2 = World::new(FakeLogs::new(&[], &[])).await;
        w2.runbooks = w.runbooks.clone();
        let mut ev = raised("api-5xx");
        ev.tags.insert("log-group".into(), "/ecs/api-worker".into());
        w2.uc().handle(&ev).await.unwrap();
        let sent = w2.logs.calls();
        let q = sent.iter().find(|q| q.name == "only-tagged").unwrap();
        assert_eq!(q.log_groups, vec!["/ecs/api-worker".to_string()]);
    }

    #[tokio::test]
    async fn an_unknown_incident_is_an_error() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let mut ev = raised("api-5xx");
        ev.incident_id = IncidentId("INC-20260314-143500-ffff".into());
        let e = w.uc().handle(&ev).await.unwrap_err();
        assert!(matches!(e, Error::Store(StoreError::NotFound(_))), "{e}");
        assert!(w.logs.calls().is_empty());
    }

    #[tokio::test]
    async fn an_alarm_named_with_spaces_still_names_its_log_group() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let mut ev = raised("Orders API disk 70 percent");
        ev.ecs = None;
        ev.service = "Orders API disk 70 percent".into();
        w.uc().handle(&ev).await.unwrap();
        let sent = w.logs.calls();
        assert!(!sent.is_empty());
        assert!(
            sent.iter()
                .all(|q| q.log_groups == vec!["/ecs/Orders-API-disk-70-percent".to_string()]),
            "{sent:?}"
        );
        let tl = w.timeline().await;
        let started = tl
            .iter()
            .find(|e| e.kind() == EntryKind::DiagnosisStarted)
            .unwrap();
        assert!(
            started.summary.contains("over /ecs/Orders-API-disk-70-percent,"),
            "{}",
            started.summary
        );
    }

    #[tokio::test]
    async fn a_composite_alarm_is_named_by_its_rule() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let mut ev = raised("api-degraded");
        ev.composite_rule = Some(r#"ALARM("api-5xx") AND ALARM("api-latency")"#.into());
        w.uc().handle(&ev).await.unwrap();
        let tl = w.timeline().await;
        let nr = tl.iter().find(|e| e.kind() == EntryKind::NoRunbook).unwrap();
        assert!(
            nr.summary
                .contains(r#"(composite alarm: ALARM("api-5xx") AND ALARM("api-latency"))"#),
            "{}",
            nr.summary
        );
        assert!(!nr.summary.contains("()"), "{}", nr.summary);
    }

    #[tokio::test]
    async fn the_diagnosis_is_paged_once_with_its_hypotheses() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let ev = with_route(raised("api-5xx"), "r");
        w.uc().handle(&ev).await.unwrap();
        w.uc().handle(&ev).await.unwrap();
        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 1, "a redelivery pages nothing more");
        let (_, n) = &sent[0];
        assert_eq!(n.subject, "[SEV2] Diagnosis: boom on prod/api");
        assert!(
            n.body.contains("Hypotheses, best first:\n1. boom (1.00)"),
            "{}",
            n.body
        );
        assert_eq!(n.attributes.get("kind").map(String::as_str), Some("diagnosis"));
        let tl = w.timeline().await;
        assert!(tl
            .iter()
            .any(|e| e.event_id == format!("{ID}/diagnosis/SEV2/paged")));
        assert!(tl.iter().any(|e| e.kind() == EntryKind::Hypotheses));
    }

    #[tokio::test]
    async fn a_diagnosis_overtaken_by_an_escalation_leaves_the_page_to_the_escalation() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        // escalated to SEV1 while the SEV2 diagnosis waited
        let mut inc = w.store.get(&IncidentId(ID.into())).await.unwrap().unwrap();
        let v = inc.version;
        inc.severity = Severity::Sev1;
        inc.version = v + 1;
        w.store.save(&inc, v, PointerChange::Keep, &[]).await.unwrap();
        let ev = with_route(raised("api-5xx"), "r");
        w.uc().handle(&ev).await.unwrap();
        assert!(w.notifier.sent().is_empty());
        let mut esc = ev.clone();
        esc.severity = Severity::Sev1;
        w.uc().handle(&esc).await.unwrap();
        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].1.subject.starts_with("[SEV1] Diagnosis"),
            "{}",
            sent[0].1.subject
        );
    }

    #[tokio::test]
    async fn a_failed_page_is_sent_by_the_redelivery() {
        let w = World::new(FakeLogs::new(&[], &[])).await;
        let ev = with_route(raised("api-5xx"), "r");
        w.notifier.fail_next(1);
        assert!(
            w.uc().handle(&ev).await.is_err(),
            "a page that could not go out fails the delivery"
        );
        let again = w.uc().handle(&ev).await.unwrap();
        assert!(again.repeated);
        assert_eq!(w.notifier.sent().len(), 1);
        assert_eq!(w.logs.calls().len(), 4, "no query ran again");
    }

    #[test]
    fn handle_is_send_so_lambda_can_run_it() {
        fn assert_send<T: Send>(_: &T) {}
        let store = InMemoryIncidentStore::new();
        let logs = FakeLogs::new(&[], &[]);
        let ecs = InMemoryServiceControl::new();
        let bus = InMemoryEventBus::new();
        let clock = SimClock::new(at(14, 36));
        let runbooks = runbooks();
        let settings = Settings::default();
        let metrics = RecordedMetrics::default();
        let notifier = InMemoryNotifier::new();
        let uc = Diagnose {
            ports: Wired::new()
                .store(&store)
                .logs(&logs)
                .metrics(&metrics)
                .notifier(&notifier)
                .ecs(&ecs)
                .bus(&bus)
                .clock(&clock),
            runbooks: &runbooks,
            settings: &settings,
        };
        let ev = raised("api-5xx");
        assert_send(&uc.handle(&ev));
    }
}
