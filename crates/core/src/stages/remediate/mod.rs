//! The remediate use-case: on "Diagnosis Completed", take the runbook's remediation for the
//! diagnosed cause and carry it out through the ECS port behind the guardrails; on "Remediation
//! Approved" (or `firebreak approve`), carry out an action that was awaiting approval.
//!
//! Every decision (refused, dry-run, awaiting-approval, applied, failed) becomes a timeline entry
//! and a [`RemediationRecord`] on the incident. The record travels inside the entry's detail
//! (`detail.record`), so the timeline is the source of truth and the incident's `remediations`
//! are reconciled from it: a crash between the two writes heals on redelivery.
//!
//! Idempotency. Entries have deterministic ids `<incident>/remediate/<cause>/<action>/<phase>`.
//! Before anything that could change a service, the `requested` entry of the cause's first step
//! (or the `approved` entry of an approval) is appended; the store appends an id only once, so
//! of two concurrent or redelivered invocations exactly one goes on, and the other only
//! reconciles what the first recorded. Reads that a retry can fix (throttled ECS or CloudWatch)
//! happen before that entry, so returning `Err` for them lets the delivery be retried.

use crate::model::incident::{EcsService, Incident, IncidentId, IncidentStatus, RemediationRecord};
use crate::model::pipeline::{DiagnosisCompleted, Event, RemediationApplied, RemediationApproved};
use crate::model::remedy::{Action, RemediationStep};
use crate::model::settings::{RemediationMode, Settings};
use crate::model::signal::AlarmState;
use crate::model::timeline::{EntryKind, TimelineEntry};
use crate::ports::update::{Saved, Update};
use crate::ports::{
    AlarmStatus, Clock, EventBus, IncidentStore, Notification, Notifier, PointerChange, PortError, Route,
    ServiceControl, ServiceState, ServiceUpdate,
};
use crate::runbook::Runbook;
use crate::stages::guardrails::{self as g, Refusal};
use crate::Error;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// What one invocation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RemediationReport {
    pub incident_id: IncidentId,
    pub cause: Option<String>,
    /// The decisions this invocation recorded, in order (on a redelivery: those already on
    /// record for the cause).
    pub decisions: Vec<RemediationRecord>,
    /// Why nothing new was decided, when so (`already decided`, `no cause`, ...).
    pub skipped: Option<String>,
}

/// Where an approval stands for one incident and action.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalState {
    /// No approval was requested for this action.
    NotRequested,
    /// Awaiting a person's approval.
    Pending(PendingApproval),
    /// Approved already (carried out, failed or refused since).
    Approved(PendingApproval),
}

/// An approval request as recorded on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    pub cause: String,
    pub runbook: Option<String>,
    pub step: RemediationStep,
    pub requested_at: DateTime<Utc>,
    /// What the plan was when approval was asked for.
    pub plan: String,
    pub estimated_start: Option<DateTime<Utc>>,
}

/// The deterministic event id of a remediation entry.
pub fn event_id(incident: &IncidentId, cause: &str, action: &str, phase: &str) -> String {
    format!("{incident}/remediate/{cause}/{action}/{phase}")
}

/// The exact command that approves `action` on `incident`.
pub fn approve_command(incident: &IncidentId, action: &str) -> String {
    format!("firebreak approve {incident} {action}")
}

/// Finds the approval request for `action` on the timeline and whether it was approved since.
pub fn approval_state(incident: &IncidentId, timeline: &[TimelineEntry], action: &str) -> ApprovalState {
    let prefix = format!("{incident}/remediate/");
    let suffix = format!("/{action}/awaiting-approval");
    let found = timeline.iter().rev().find_map(|e| {
        let cause = e
            .event_id
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(&suffix))
            .filter(|c| !c.is_empty())?;
        (e.kind == EntryKind::ApprovalRequested).then(|| (e, cause.to_string()))
    });
    let Some((req, cause)) = found else {
        return ApprovalState::NotRequested;
    };
    let step = req
        .detail
        .get("step")
        .and_then(|s| serde_json::from_value::<RemediationStep>(s.clone()).ok())
        .unwrap_or_else(|| RemediationStep {
            action: action.to_string(),
            params: BTreeMap::new(),
        });
    let pending = PendingApproval {
        cause: cause.clone(),
        runbook: req
            .detail
            .get("runbook")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        step,
        requested_at: req.at,
        plan: req
            .detail
            .get("plan")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
        estimated_start: req
            .detail
            .get("estimated_start")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    };
    let approved = event_id(incident, &cause, action, "approved");
    if timeline.iter().any(|e| e.event_id == approved) {
        ApprovalState::Approved(pending)
    } else {
        ApprovalState::Pending(pending)
    }
}

/// The remediate use-case over its ports.
pub struct Remediate<'a, S, E, A, N, B, K>
where
    S: IncidentStore,
    E: ServiceControl,
    A: AlarmStatus,
    N: Notifier,
    B: EventBus,
    K: Clock,
{
    pub store: &'a S,
    pub ecs: &'a E,
    pub alarms: &'a A,
    pub notifier: &'a N,
    pub bus: &'a B,
    pub clock: &'a K,
    pub runbooks: &'a [Runbook],
    pub settings: &'a Settings,
}

/// What was read before deciding.
struct Reads {
    /// `None` when the incident names no ECS service or no step needs it.
    state: Option<Result<ServiceState, PortError>>,
    live: Result<BTreeMap<String, AlarmState>, PortError>,
}

/// A planned change, guardrails passed.
struct Plan {
    service: EcsService,
    update: ServiceUpdate,
    /// `desiredCount 4 → 8 (step +4, max 20, ≤2x)`.
    detail: String,
    before: ServiceState,
}

/// One decision's context, for recording.
struct Decision<'x> {
    incident: &'x Incident,
    cause: &'x str,
    runbook: Option<&'x str>,
    key: String,
    action: String,
    mode: &'static str,
}

enum Executed {
    Applied(ServiceState),
    Failed(PortError),
    Refused(Refusal),
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn snapshot(s: &ServiceState) -> serde_json::Value {
    json!({
        "task_definition": s.task_definition,
        "desired": s.desired,
        "running": s.running,
        "deployments": s.deployments.len(),
    })
}

fn port_error_json(e: &PortError) -> serde_json::Value {
    json!({"operation": e.operation, "code": e.code, "message": e.message, "retryable": e.retryable})
}

fn port_error_text(e: &PortError) -> String {
    match &e.code {
        Some(c) => format!("{}: {c}: {}", e.operation, e.message),
        None => e.to_string(),
    }
}

/// The record carried in an entry's detail, if any.
fn record_of(e: &TimelineEntry) -> Option<RemediationRecord> {
    e.detail
        .get("record")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
}

impl<S, E, A, N, B, K> Remediate<'_, S, E, A, N, B, K>
where
    S: IncidentStore,
    E: ServiceControl,
    A: AlarmStatus,
    N: Notifier,
    B: EventBus,
    K: Clock,
{
    /// Carries out the remediation the runbook gives for the diagnosed cause, behind the
    /// guardrails.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the incident does not exist; store errors; retryable ECS or
    /// CloudWatch read errors before anything was recorded (the delivery may be retried).
    /// Everything else (refusals, ECS errors while acting) is recorded, not returned.
    #[tracing::instrument(skip(self, d), fields(incident = %d.incident_id, cause = ?d.cause))]
    pub async fn on_diagnosis(&self, d: &DiagnosisCompleted) -> Result<RemediationReport, Error> {
        let id = &d.incident_id;
        let incident = self.load(id).await?;
        let mut report = RemediationReport {
            incident_id: id.clone(),
            cause: d.cause.clone(),
            decisions: Vec::new(),
            skipped: None,
        };
        let Some(cause_id) = d.cause.as_deref() else {
            report.skipped = Some("no cause was diagnosed".into());
            return Ok(report);
        };
        let runbook_id = d.runbook.as_deref().or(incident.runbook.as_deref());
        let runbook = runbook_id.and_then(|r| self.runbooks.iter().find(|b| b.id == r));
        let cause = runbook.and_then(|b| b.causes.iter().find(|c| c.id == cause_id));
        let Some((runbook, cause)) = runbook.zip(cause) else {
            let why = match (runbook_id, runbook) {
                (None, _) => "the incident names no runbook".to_string(),
                (Some(r), None) => format!("runbook {r} is not loaded"),
                (Some(r), Some(_)) => format!("runbook {r} has no cause {cause_id}"),
            };
            let entry = TimelineEntry::new(
                event_id(id, cause_id, "none", "refused"),
                self.clock.now(),
                EntryKind::RemediationRefused,
                format!("no remediation for cause {cause_id}: {why}"),
            );
            self.store.append(id, &[entry]).await?;
            report.skipped = Some(why);
            return Ok(report);
        };
        if cause.remediation.is_empty() {
            let entry = TimelineEntry::new(
                event_id(id, cause_id, "none", "note"),
                self.clock.now(),
                EntryKind::Note,
                format!(
                    "cause {cause_id} has no automated remediation in runbook {}",
                    runbook.id
                ),
            );
            self.store.append(id, &[entry]).await?;
            report.skipped = Some(format!("cause {cause_id} has no automated remediation"));
            return Ok(report);
        }

        // Parse every step and give it a mode; `off` steps need no reads.
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let steps: Vec<(String, &RemediationStep, Result<Action, Error>, RemediationMode)> = cause
            .remediation
            .iter()
            .map(|step| {
                let n = seen.entry(step.action.as_str()).or_default();
                *n += 1;
                let key = if *n == 1 {
                    step.action.clone()
                } else {
                    format!("{}#{n}", step.action)
                };
                let mode = self
                    .settings
                    .remediation
                    .mode_for(&step.action, incident.severity);
                (key, step, Action::parse(step), mode)
            })
            .collect();
        let needs_reads = steps
            .iter()
            .any(|(_, _, a, m)| a.is_ok() && *m != RemediationMode::Off);
        let reads = if needs_reads {
            self.read(&incident).await?
        } else {
            Reads {
                state: None,
                live: Ok(BTreeMap::new()),
            }
        };

        let start = d
            .estimated_start
            .or(incident.estimated_start)
            .unwrap_or(incident.detected_at);
        let mut entries = Vec::new();
        for (i, (key, step, parsed, mode)) in steps.iter().enumerate() {
            let dec = Decision {
                incident: &incident,
                cause: cause_id,
                runbook: Some(runbook.id.as_str()),
                key: key.clone(),
                action: step.action.clone(),
                mode: mode.as_str(),
            };
            let requested = TimelineEntry::new(
                event_id(id, cause_id, key, "requested"),
                self.clock.now(),
                EntryKind::RemediationRequested,
                format!(
                    "remediation for cause {cause_id}: {} (mode {mode})",
                    parsed
                        .as_ref()
                        .map_or_else(|_| step.action.clone(), ToString::to_string)
                ),
            )
            .with_detail(json!({"cause": cause_id, "runbook": runbook.id, "step": step, "mode": mode}));
            if i == 0 {
                // The claim on this decision: only one invocation gets past it.
                if self.store.append(id, &[requested]).await? == 0 {
                    return self.redelivered(id, cause_id, report).await;
                }
            } else {
                entries.push(requested);
            }

            let action = match parsed {
                Ok(a) => a,
                Err(e) => {
                    let r = Refusal::action("step", format!("runbook step is invalid: {e}"));
                    entries.push(self.refused(&dec, None, &r, &mut report));
                    continue;
                }
            };
            if let Err(r) = g::check_mode(&step.action, *mode) {
                entries.push(self.refused(&dec, None, &r, &mut report));
                continue;
            }
            let plan = match self.guard_and_plan(&incident, action, &reads, start).await {
                Ok(p) => p,
                Err(r) => {
                    let target = incident.ecs.as_ref();
                    entries.push(self.refused(&dec, target, &r, &mut report));
                    if r.stops() {
                        break;
                    }
                    continue;
                }
            };
            match mode {
                RemediationMode::Off => {}
                RemediationMode::DryRun => {
                    entries.push(self.dry_run(&dec, &plan, &mut report));
                    break;
                }
                RemediationMode::Approve => {
                    let (entry, note) = self
                        .ask_approval(&dec, step, &plan, Some(start), &mut report)
                        .await;
                    entries.push(entry);
                    entries.extend(note);
                    break;
                }
                RemediationMode::Auto => {
                    let verify = runbook.verify_window.to_chrono();
                    let (new, done) = self.execute(&dec, &plan, verify, &mut report).await;
                    entries.extend(new);
                    if done {
                        break;
                    }
                }
            }
        }
        self.commit(id, &entries).await?;
        self.announce(&incident, cause_id, &report).await?;
        Ok(report)
    }

    /// Carries out an action that is awaiting approval on the incident, re-running every
    /// guardrail except the mode.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the incident does not exist or the action is not awaiting
    /// approval on it; store errors; retryable read errors before anything was recorded.
    #[tracing::instrument(skip(self, a), fields(incident = %a.incident_id, action = %a.action, by = %a.approved_by))]
    pub async fn on_approval(&self, a: &RemediationApproved) -> Result<RemediationReport, Error> {
        let id = &a.incident_id;
        let incident = self.load(id).await?;
        let timeline = self.store.timeline(id).await?;
        let pending = match approval_state(id, &timeline, &a.action) {
            ApprovalState::NotRequested => {
                return Err(Error::invalid(
                    "approval",
                    format!("{} is not awaiting approval on incident {id}", a.action),
                ))
            }
            ApprovalState::Approved(p) => {
                let report = RemediationReport {
                    incident_id: id.clone(),
                    cause: Some(p.cause.clone()),
                    decisions: Vec::new(),
                    skipped: None,
                };
                return self.redelivered(id, &p.cause, report).await;
            }
            ApprovalState::Pending(p) => p,
        };
        let action = Action::parse(&pending.step)?;
        let reads = self.read(&incident).await?;
        let mut report = RemediationReport {
            incident_id: id.clone(),
            cause: Some(pending.cause.clone()),
            decisions: Vec::new(),
            skipped: None,
        };
        let approved = TimelineEntry::new(
            event_id(id, &pending.cause, &a.action, "approved"),
            self.clock.now(),
            EntryKind::RemediationRequested,
            format!("{} approved by {}", a.action, a.approved_by),
        )
        .with_detail(json!({"approved_by": a.approved_by, "cause": pending.cause}));
        if self.store.append(id, &[approved]).await? == 0 {
            return self.redelivered(id, &pending.cause, report).await;
        }
        let dec = Decision {
            incident: &incident,
            cause: &pending.cause,
            runbook: pending.runbook.as_deref(),
            key: a.action.clone(),
            action: a.action.clone(),
            mode: RemediationMode::Approve.as_str(),
        };
        let start = pending
            .estimated_start
            .or(incident.estimated_start)
            .unwrap_or(incident.detected_at);
        let mut entries = Vec::new();
        match self.guard_and_plan(&incident, &action, &reads, start).await {
            Err(r) => entries.push(self.refused(&dec, incident.ecs.as_ref(), &r, &mut report)),
            Ok(plan) => {
                let verify = pending
                    .runbook
                    .as_deref()
                    .and_then(|r| self.runbooks.iter().find(|b| b.id == r))
                    .map_or_else(
                        || chrono::Duration::seconds(self.settings.sweeper.default_verify_window_s),
                        |b| b.verify_window.to_chrono(),
                    );
                let (new, _) = self.execute(&dec, &plan, verify, &mut report).await;
                entries.extend(new);
            }
        }
        self.commit(id, &entries).await?;
        self.announce(&incident, &pending.cause, &report).await?;
        Ok(report)
    }

    async fn load(&self, id: &IncidentId) -> Result<Incident, Error> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| Error::invalid("incident_id", format!("no incident {id}")))
    }

    /// Reads ECS and CloudWatch. A retryable failure is returned (nothing is recorded yet, the
    /// delivery can be retried); any other is kept and becomes a refusal.
    async fn read(&self, incident: &Incident) -> Result<Reads, Error> {
        let state = match &incident.ecs {
            Some(svc) => match self.ecs.describe(svc).await {
                Err(e) if e.retryable => return Err(e.into()),
                r => Some(r),
            },
            None => None,
        };
        let names: Vec<String> = incident.alarms.keys().cloned().collect();
        let live = match self.alarms.states(&names).await {
            Err(e) if e.retryable => return Err(e.into()),
            r => r,
        };
        Ok(Reads { state, live })
    }

    /// Every guardrail but the mode and the cooldown, in order, then the plan.
    async fn guard_and_plan(
        &self,
        incident: &Incident,
        action: &Action,
        reads: &Reads,
        start: DateTime<Utc>,
    ) -> Result<Plan, Refusal> {
        let svc = g::target(incident)?;
        let state = match &reads.state {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                return Err(Refusal::incident(
                    "ecs-read",
                    format!("could not read {svc} from ECS: {}", port_error_text(e)),
                ))
            }
            None => {
                return Err(Refusal::incident(
                    "ecs-read",
                    format!("{svc} was not read from ECS"),
                ))
            }
        };
        g::check_allowlist(svc, &self.settings.remediation, &state.tags)?;
        g::check_incident_active(incident)?;
        let live = reads.live.as_ref().map_err(|e| {
            Refusal::incident(
                "alarm-recovered",
                format!("could not read the alarms' state: {}", port_error_text(e)),
            )
        })?;
        g::check_alarms_firing(incident, live)?;
        g::check_no_deployment(action, state)?;
        g::check_max_actions(incident, self.settings.remediation.max_actions_per_incident)?;
        let (update, detail) = match action {
            Action::EcsRollback { window } => {
                let deployed = g::check_rollback_window(state, start, incident.detected_at, *window)?;
                let (to, source) = match g::previous_from_deployments(state) {
                    Some(td) => (td, g::TargetSource::Deployments),
                    None => {
                        let family = g::parse_revision(&state.task_definition)
                            .map(|r| r.family)
                            .ok_or_else(|| {
                                Refusal::action(
                                    "rollback-target",
                                    format!(
                                        "task definition {:?} is not family:revision",
                                        state.task_definition
                                    ),
                                )
                            })?;
                        let listed = self.ecs.task_definitions(&family).await.map_err(|e| {
                            Refusal::action(
                                "rollback-target",
                                format!("could not list revisions of {family}: {}", port_error_text(&e)),
                            )
                        })?;
                        (
                            g::previous_revision(&state.task_definition, &listed)?,
                            g::TargetSource::Revisions,
                        )
                    }
                };
                (
                    ServiceUpdate {
                        task_definition: Some(to.clone()),
                        ..ServiceUpdate::default()
                    },
                    format!(
                        "task definition {} → {to} ({source}; {} deployed {}, within {window} before the start at {})",
                        state.task_definition,
                        state.task_definition,
                        ts(deployed),
                        ts(start)
                    ),
                )
            }
            Action::EcsScaleOut {
                step,
                factor,
                max,
                max_factor,
            } => {
                let p = g::plan_scale_out(state.desired, *step, *factor, *max, *max_factor)?;
                (
                    ServiceUpdate {
                        desired: Some(p.to),
                        ..ServiceUpdate::default()
                    },
                    p.detail,
                )
            }
            Action::EcsRestart => (
                ServiceUpdate {
                    force_new_deployment: true,
                    ..ServiceUpdate::default()
                },
                format!(
                    "force a new deployment ({}, desiredCount {})",
                    state.task_definition, state.desired
                ),
            ),
        };
        Ok(Plan {
            service: svc.clone(),
            update,
            detail,
            before: state.clone(),
        })
    }

    fn record(
        &self,
        dec: &Decision<'_>,
        outcome: &str,
        detail: String,
        target: Option<&EcsService>,
    ) -> RemediationRecord {
        RemediationRecord {
            action: dec.action.clone(),
            mode: dec.mode.to_string(),
            outcome: outcome.to_string(),
            detail,
            target: target.map(ToString::to_string),
            at: self.clock.now(),
        }
    }

    fn refused(
        &self,
        dec: &Decision<'_>,
        target: Option<&EcsService>,
        r: &Refusal,
        report: &mut RemediationReport,
    ) -> TimelineEntry {
        tracing::info!(action = %dec.action, guardrail = r.guardrail, reason = %r.reason, "remediation refused");
        let rec = self.record(dec, "refused", format!("refused: {}", r.reason), target);
        report.decisions.push(rec.clone());
        TimelineEntry::new(
            event_id(&dec.incident.id, dec.cause, &dec.key, "refused"),
            rec.at,
            EntryKind::RemediationRefused,
            format!("{} refused ({}): {}", dec.action, r.guardrail, r.reason),
        )
        .with_detail(json!({
            "record": rec, "guardrail": r.guardrail, "reason": r.reason,
            "cause": dec.cause, "runbook": dec.runbook,
        }))
    }

    fn dry_run(&self, dec: &Decision<'_>, plan: &Plan, report: &mut RemediationReport) -> TimelineEntry {
        let rec = self.record(
            dec,
            "dry-run",
            format!("dry-run: would update {}: {}", plan.service, plan.detail),
            Some(&plan.service),
        );
        report.decisions.push(rec.clone());
        TimelineEntry::new(
            event_id(&dec.incident.id, dec.cause, &dec.key, "dry-run"),
            rec.at,
            EntryKind::RemediationDryRun,
            format!(
                "dry-run {} on {}: would set {}",
                dec.action, plan.service, plan.detail
            ),
        )
        .with_detail(json!({
            "record": rec, "update": plan.update, "before": snapshot(&plan.before),
            "cause": dec.cause, "runbook": dec.runbook,
        }))
    }

    /// Publishes the approval request and records it; a notification failure is recorded too.
    async fn ask_approval(
        &self,
        dec: &Decision<'_>,
        step: &RemediationStep,
        plan: &Plan,
        estimated_start: Option<DateTime<Utc>>,
        report: &mut RemediationReport,
    ) -> (TimelineEntry, Option<TimelineEntry>) {
        let inc = dec.incident;
        let command = approve_command(&inc.id, &dec.action);
        let rec = self.record(
            dec,
            "awaiting-approval",
            format!(
                "awaiting approval: {} on {}; approve with `{command}`",
                plan.detail, plan.service
            ),
            Some(&plan.service),
        );
        report.decisions.push(rec.clone());
        let message = Notification {
            subject: format!("[{}] Approve {} on {}?", inc.severity, dec.action, plan.service),
            body: format!(
                "Incident {} ({}), cause {}.\nProposed: {} on {}: {}.\nTo carry it out run:\n  {command}",
                inc.id, inc.title, dec.cause, dec.action, plan.service, plan.detail
            ),
            attributes: BTreeMap::from([
                ("kind".to_string(), "approval-request".to_string()),
                ("severity".to_string(), inc.severity.to_string()),
                ("service".to_string(), inc.service.clone()),
                ("incident".to_string(), inc.id.to_string()),
            ]),
        };
        let note = match self
            .notifier
            .notify(Route::Severity(inc.severity), &message)
            .await
        {
            Ok(_) => None,
            Err(e) => Some(self.notify_failed(dec, "approval request", &e)),
        };
        let entry = TimelineEntry::new(
            event_id(&inc.id, dec.cause, &dec.key, "awaiting-approval"),
            rec.at,
            EntryKind::ApprovalRequested,
            format!(
                "approval requested for {} on {}: {}; run `{command}`",
                dec.action, plan.service, plan.detail
            ),
        )
        .with_detail(json!({
            "record": rec, "cause": dec.cause, "runbook": dec.runbook, "step": step,
            "plan": plan.detail, "update": plan.update, "before": snapshot(&plan.before),
            "command": command, "estimated_start": estimated_start,
        }));
        (entry, note)
    }

    fn notify_failed(&self, dec: &Decision<'_>, what: &str, e: &PortError) -> TimelineEntry {
        tracing::warn!(error = %e, what, "notification failed");
        TimelineEntry::new(
            event_id(
                &dec.incident.id,
                dec.cause,
                &dec.key,
                &format!("{}-failed", what.replace(' ', "-")),
            ),
            self.clock.now(),
            EntryKind::Note,
            format!(
                "could not send the {what} for {}: {}",
                dec.action,
                port_error_text(e)
            ),
        )
        .with_detail(json!({"error": port_error_json(e)}))
    }

    /// Cooldown lease, re-check, then the ECS call. Returns the entries and whether the cause is
    /// done (applied, failed, or refused for the whole incident).
    async fn execute(
        &self,
        dec: &Decision<'_>,
        plan: &Plan,
        verify: chrono::Duration,
        report: &mut RemediationReport,
    ) -> (Vec<TimelineEntry>, bool) {
        let inc = dec.incident;
        let svc = &plan.service;
        let outcome = self.act(dec, plan).await;
        let now = self.clock.now();
        let before = snapshot(&plan.before);
        match outcome {
            Executed::Refused(r) => {
                let stops = r.stops();
                (vec![self.refused(dec, Some(svc), &r, report)], stops)
            }
            Executed::Failed(e) => {
                tracing::warn!(action = %dec.action, service = %svc, error = %e, "remediation failed");
                let rec = self.record(
                    dec,
                    "failed",
                    format!("failed: {}: {} (not retried)", plan.detail, port_error_text(&e)),
                    Some(svc),
                );
                report.decisions.push(rec.clone());
                let entry = TimelineEntry::new(
                    event_id(&inc.id, dec.cause, &dec.key, "failed"),
                    now,
                    EntryKind::RemediationFailed,
                    format!("{} on {svc} failed: {}", dec.action, port_error_text(&e)),
                )
                .with_detail(json!({
                    "record": rec, "error": port_error_json(&e), "before": before,
                    "update": plan.update, "cause": dec.cause, "runbook": dec.runbook,
                }));
                (vec![entry], true)
            }
            Executed::Applied(after) => {
                let verify_by = now + verify;
                tracing::info!(action = %dec.action, service = %svc, detail = %plan.detail, "remediation applied");
                let rec = self.record(
                    dec,
                    "applied",
                    format!(
                        "{}; now {}, desiredCount {}; verify by {}",
                        plan.detail,
                        after.task_definition,
                        after.desired,
                        ts(verify_by)
                    ),
                    Some(svc),
                );
                report.decisions.push(rec.clone());
                let mut entries = vec![TimelineEntry::new(
                    event_id(&inc.id, dec.cause, &dec.key, "applied"),
                    now,
                    EntryKind::RemediationApplied,
                    format!("{} applied on {svc}: {}", dec.action, plan.detail),
                )
                .with_detail(json!({
                    "record": rec, "before": before, "after": snapshot(&after),
                    "update": plan.update, "applied_at": now, "verify_window_s": verify.num_seconds(),
                    "verify_by": verify_by, "cause": dec.cause, "runbook": dec.runbook,
                }))];
                if inc.status == IncidentStatus::Open {
                    entries.push(TimelineEntry::new(
                        event_id(&inc.id, dec.cause, &dec.key, "mitigated"),
                        now,
                        EntryKind::Mitigated,
                        format!(
                            "mitigated by {} on {svc}; alarms should recover by {}",
                            dec.action,
                            ts(verify_by)
                        ),
                    ));
                }
                (entries, true)
            }
        }
    }

    async fn act(&self, dec: &Decision<'_>, plan: &Plan) -> Executed {
        let svc = &plan.service;
        let cooldown_s = self.settings.remediation.cooldown_s;
        let now = self.clock.now();
        let key = g::cooldown_key(svc, &dec.action);
        match self
            .store
            .claim(&key, g::cooldown_until(now, cooldown_s), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Executed::Refused(g::cooldown_refusal(svc, &dec.action, cooldown_s)),
            Err(e) => {
                return Executed::Refused(Refusal::incident(
                    "cooldown",
                    format!("could not take the cooldown lease {key}: {e}"),
                ))
            }
        }
        // Just before acting: the incident still open, its alarm still in ALARM.
        let fresh = match self.store.get(&dec.incident.id).await {
            Ok(Some(i)) => i,
            Ok(None) => {
                return Executed::Refused(Refusal::incident(
                    "incident-closed",
                    format!("incident {} is gone", dec.incident.id),
                ))
            }
            Err(e) => {
                return Executed::Refused(Refusal::incident(
                    "incident-closed",
                    format!("could not re-read incident {}: {e}", dec.incident.id),
                ))
            }
        };
        if let Err(r) = g::check_incident_active(&fresh) {
            return Executed::Refused(r);
        }
        let names: Vec<String> = fresh.alarms.keys().cloned().collect();
        match self.alarms.states(&names).await {
            Ok(live) => {
                if let Err(r) = g::check_alarms_firing(&fresh, &live) {
                    return Executed::Refused(r);
                }
            }
            Err(e) => {
                return Executed::Refused(Refusal::incident(
                    "alarm-recovered",
                    format!("could not re-read the alarms' state: {}", port_error_text(&e)),
                ))
            }
        }
        match self.ecs.update(svc, &plan.update).await {
            Ok(after) => Executed::Applied(after),
            Err(e) => Executed::Failed(e),
        }
    }

    /// Appends the entries (idempotent), then reconciles the incident from them.
    async fn commit(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<Incident, Error> {
        if !entries.is_empty() {
            self.store.append(id, entries).await?;
        }
        self.reconcile(id, entries).await
    }

    /// Adds the records the entries carry to the incident (each once), marks it mitigated when
    /// one was applied, and saves with optimistic locking (re-read and retry on conflict).
    async fn reconcile(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<Incident, Error> {
        let records: Vec<RemediationRecord> = entries.iter().filter_map(record_of).collect();
        let mut up = Update::new(self.store, id);
        loop {
            let read = up.read().await?;
            let mut inc = read.clone();
            let mut changed = false;
            for rec in &records {
                if inc.remediations.contains(rec) {
                    continue;
                }
                if rec.outcome == "applied" {
                    inc.mitigate(rec.at);
                }
                inc.remediations.push(rec.clone());
                changed = true;
            }
            if !changed {
                return Ok(inc);
            }
            match up.save(&read, &mut inc, PointerChange::Keep, &[]).await? {
                Saved::Saved => return Ok(inc),
                Saved::Conflict => continue,
                // Another invocation recorded the same step: done.
                Saved::AlreadyRecorded(_) => return Ok(inc),
            }
        }
    }

    /// A redelivery: the decision is already on the timeline. Heal the incident's records from
    /// it and report what was decided; change nothing else.
    async fn redelivered(
        &self,
        id: &IncidentId,
        cause: &str,
        mut report: RemediationReport,
    ) -> Result<RemediationReport, Error> {
        tracing::info!(incident = %id, cause, "remediation already decided; redelivery does nothing");
        let prefix = format!("{id}/remediate/{cause}/");
        let entries: Vec<TimelineEntry> = self
            .store
            .timeline(id)
            .await?
            .into_iter()
            .filter(|e| e.event_id.starts_with(&prefix))
            .collect();
        self.reconcile(id, &entries).await?;
        report.decisions = entries.iter().filter_map(record_of).collect();
        report.skipped = Some("already decided".into());
        Ok(report)
    }

    /// After an applied or failed action: the incident's topic, and "Remediation Applied" on the
    /// bus. Failures to tell are recorded on the timeline (a retry would not resend: the
    /// decision is taken).
    async fn announce(
        &self,
        incident: &Incident,
        cause: &str,
        report: &RemediationReport,
    ) -> Result<(), Error> {
        let Some(rec) = report
            .decisions
            .iter()
            .find(|r| r.outcome == "applied" || r.outcome == "failed")
        else {
            return Ok(());
        };
        let target = rec.target.clone().unwrap_or_default();
        let dec = Decision {
            incident,
            cause,
            runbook: None,
            key: rec.action.clone(),
            action: rec.action.clone(),
            mode: "auto",
        };
        let mut notes = Vec::new();
        let applied = rec.outcome == "applied";
        let message = Notification {
            subject: format!(
                "[{}] Remediation {}: {} on {target}",
                incident.severity,
                if applied { "applied" } else { "FAILED" },
                rec.action
            ),
            body: format!(
                "Incident {} ({}), cause {cause}.\n{} ({} mode): {}",
                incident.id, incident.title, rec.action, rec.mode, rec.detail
            ),
            attributes: BTreeMap::from([
                (
                    "kind".to_string(),
                    if applied {
                        "remediation-applied"
                    } else {
                        "remediation-failed"
                    }
                    .to_string(),
                ),
                ("severity".to_string(), incident.severity.to_string()),
                ("service".to_string(), incident.service.clone()),
                ("incident".to_string(), incident.id.to_string()),
            ]),
        };
        if let Err(e) = self
            .notifier
            .notify(Route::Severity(incident.severity), &message)
            .await
        {
            notes.push(self.notify_failed(&dec, "notification", &e));
        }
        if applied {
            let event = Event::Applied(RemediationApplied {
                incident_id: incident.id.clone(),
                service: incident.service.clone(),
                action: rec.action.clone(),
                target,
                detail: rec.detail.clone(),
            });
            if let Err(e) = self.bus.put(&event.to_pipeline()).await {
                notes.push(self.notify_failed(&dec, "bus event", &e));
            }
        }
        if !notes.is_empty() {
            self.store.append(&incident.id, &notes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
