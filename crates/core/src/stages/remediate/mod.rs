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

use crate::model::autonomy::AutonomyKey;
use crate::model::entry_id::EntryId;
use crate::model::incident::Outcome;
use crate::model::incident::{EcsService, Incident, IncidentId, IncidentStatus, RemediationRecord};
use crate::model::pipeline::{DiagnosisCompleted, Event, RemediationApplied, RemediationApproved};
use crate::model::remedy::{Action, ActionName, RemediationStep};
use crate::model::settings::{RemediationMode, Settings};
use crate::model::signal::AlarmState;
use crate::model::timeline::{detail, Detail, EntryKind, TimelineEntry};
use crate::ports::bundle::*;
use crate::ports::update::{Saved, Update};
use crate::ports::{
    AlarmStatus, Clock, EventBus, IncidentStore, Notification, Notifier, PointerChange, PortError, Route,
    ServiceControl, ServiceState, ServiceUpdate,
};
use crate::runbook::Runbook;
use crate::stages::guardrails::{self as g, Refusal};
use crate::Error;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;

mod approval;
mod decision;
mod record;

pub use approval::{
    approval_state, approve_command, request_approval, ApprovalState, ApproveOutcome, Approvers,
    PendingApproval,
};
use decision::{Decision, Executed, Plan, Reads};
pub use record::{event_id, ECS_ATTEMPTS, RECONCILE_AFTER_S};
use record::{port_error_text, snapshot, ts};
use record::{unfinished, Redelivery};

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

/// The remediate use-case over its ports.
pub struct Remediate<'a, P: RemediatePorts> {
    pub ports: P,
    pub runbooks: &'a [Runbook],
    pub settings: &'a Settings,
}

impl<P: RemediatePorts> Remediate<'_, P> {
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
        // each cycle of the incident decides afresh; its entries' ids carry the cycle
        let cycle = incident.reopened;
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
                event_id(id, cycle, cause_id, "none", "refused"),
                self.ports.clock().now(),
                EntryKind::RemediationRefused,
                format!("no remediation for cause {cause_id}: {why}"),
            );
            self.ports.store().append(id, &[entry]).await?;
            report.skipped = Some(why);
            return Ok(report);
        };
        if cause.remediation.is_empty() {
            let entry = TimelineEntry::new(
                event_id(id, cycle, cause_id, "none", "note"),
                self.ports.clock().now(),
                EntryKind::Note,
                format!(
                    "cause {cause_id} has no automated remediation in runbook {}",
                    runbook.id
                ),
            );
            self.ports.store().append(id, &[entry]).await?;
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
                // the policy's own classification, never the severity tag (see `g::mode_for`)
                let mode = g::mode_for(&self.settings.remediation, &step.action, &incident);
                (key, step, Action::parse(step), mode)
            })
            .collect();
        // `earned` takes each action's level from its record; an incident whose action proved
        // ineffective takes no further automatic action (approval is still possible)
        let mut steps = steps;
        let mut why_mode: BTreeMap<String, String> = BTreeMap::new();
        for (key, step, _, mode) in &mut steps {
            if *mode == RemediationMode::Earned {
                let k = AutonomyKey::new(&runbook.id, cause_id, &step.action);
                let record = self.ports.store().autonomy(&k).await?;
                let policy = &self.settings.remediation.earned;
                let (level, said) = match &record {
                    Some(r) => (
                        r.effective(policy),
                        format!(
                            "earned level {} ({} matched, {} contradicted, {} ineffective so far{})",
                            r.level,
                            r.matched,
                            r.contradicted,
                            r.ineffective,
                            if r.level > policy.ceiling {
                                format!("; held at the ceiling {}", policy.ceiling)
                            } else {
                                String::new()
                            }
                        ),
                    ),
                    None => (
                        RemediationMode::DryRun.min(policy.ceiling),
                        "earned level dry-run (no outcome counted yet)".to_string(),
                    ),
                };
                *mode = level;
                why_mode.insert(key.clone(), said);
            }
            if *mode == RemediationMode::Auto {
                if let Some(held) = &incident.auto_held {
                    *mode = RemediationMode::Approve;
                    let said = why_mode.entry(key.clone()).or_default();
                    if !said.is_empty() {
                        said.push_str("; ");
                    }
                    said.push_str(&format!("held to approve: {held}"));
                }
            }
        }
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
        // the try each action's ECS call is at (more than 1 when resuming after calls that
        // never reached ECS)
        let mut attempts: BTreeMap<String, u32> = BTreeMap::new();
        for (i, (key, step, parsed, mode)) in steps.iter().enumerate() {
            let mut dec = Decision {
                incident: &incident,
                cycle,
                cause: cause_id,
                runbook: Some(runbook.id.as_str()),
                key: key.clone(),
                action: ActionName::from_name(&step.action),
                mode: *mode,
                attempt: 1,
            };
            let requested = TimelineEntry::new(
                event_id(id, cycle, cause_id, key, "requested"),
                self.ports.clock().now(),
                EntryKind::RemediationRequested,
                format!(
                    "remediation for cause {cause_id}: {} (mode {mode}{})",
                    parsed
                        .as_ref()
                        .map_or_else(|_| step.action.clone(), ToString::to_string),
                    why_mode
                        .get(key.as_str())
                        .map_or_else(String::new, |w| format!("; {w}"))
                ),
            )
            .with_detail(detail::RemediationRequested {
                cause: cause_id.to_string(),
                runbook: Some(runbook.id.clone()),
                step: Some((*step).clone()),
                mode: Some(*mode),
                approved_by: None,
            });
            if i == 0 {
                // The claim on this decision: only one invocation gets past it, unless an error
                // a retry fixes stopped that invocation before it recorded any outcome (then
                // its retry resumes; the ECS call itself is claimed by its intent).
                if self.ports.store().append(id, &[requested]).await? == 0 {
                    let timeline = self.ports.store().timeline(id).await?;
                    attempts = match unfinished(id, cycle, cause_id, None, &timeline) {
                        Some(a) => a,
                        None => match self
                            .redelivered(id, cycle, cause_id, report.clone(), None)
                            .await?
                        {
                            Redelivery::Done(r) => return Ok(r),
                            Redelivery::Resume(a) => a,
                        },
                    };
                    tracing::info!(incident = %id, cause = cause_id, ?attempts, "resuming a decision that an error interrupted");
                }
            } else {
                entries.push(requested);
            }
            dec.attempt = attempts.get(key.as_str()).copied().unwrap_or(1);

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
                // resolved above to the level the record earned
                RemediationMode::Off | RemediationMode::Earned => {}
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
                    let (new, done) = self.execute(&dec, &plan, verify, &mut report).await?;
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

    async fn load(&self, id: &IncidentId) -> Result<Incident, Error> {
        self.ports
            .store()
            .get(id)
            .await?
            .ok_or_else(|| Error::invalid("incident_id", format!("no incident {id}")))
    }
}

#[cfg(test)]
mod tests;
