//! Recording decisions: the deterministic entry ids, the entries and records each outcome
//! writes, reconciling the incident's records from the timeline (a crash between the two writes
//! heals on redelivery), and announcing what was applied.

use super::*;
use crate::model::text::{plain, plain_line};

/// What a redelivery of a decided (or claimed) decision comes to.
pub(super) enum Redelivery {
    /// Nothing to do but report what was decided.
    Done(RemediationReport),
    /// Every try so far is known not to have reached ECS: decide again, at these tries (by
    /// action key).
    Resume(BTreeMap<String, u32>),
}

/// The tries at the ECS call an action gets: a call that never reached ECS (a timeout, a
/// throttle before it got there, as ECS shows afterwards) is asked again, up to this many times.
pub const ECS_ATTEMPTS: u32 = 3;

/// The phase of the intent of try `attempt` (`started`, `started-2`, ...).
pub(super) fn started_phase(attempt: u32) -> String {
    match attempt {
        0 | 1 => "started".to_string(),
        n => format!("started-{n}"),
    }
}

/// The phase recording that try `attempt` never reached ECS (`interrupted`, `interrupted-2`).
fn interrupted_phase(attempt: u32) -> String {
    match attempt {
        0 | 1 => "interrupted".to_string(),
        n => format!("interrupted-{n}"),
    }
}

/// The try a `started…` or `interrupted…` phase belongs to.
fn phase_attempt(phase: &str, stem: &str) -> Option<u32> {
    match phase.strip_prefix(stem)? {
        "" => Some(1),
        rest => rest.strip_prefix('-')?.parse().ok(),
    }
}

/// When the decision for `cause` in `cycle` was claimed (its `requested`, or for an approval of
/// `action` its `approved`, entry is recorded) but no outcome of it is, because the claiming
/// invocation stopped on an error a retry fixes: the try each action's ECS call is at (1 when
/// it never got that far; more when earlier calls are known not to have reached ECS). `None`
/// when there is an outcome, or an intent whose result is not known yet (it is reconciled,
/// never repeated).
pub(super) fn unfinished(
    id: &IncidentId,
    cycle: u32,
    cause: &str,
    action: Option<&str>,
    timeline: &[TimelineEntry],
) -> Option<BTreeMap<String, u32>> {
    let mut claimed = false;
    let mut started: BTreeMap<String, u32> = BTreeMap::new();
    let mut interrupted: BTreeMap<String, u32> = BTreeMap::new();
    for e in timeline {
        let Some(EntryId::Remediation {
            incident,
            cycle: n,
            cause: c,
            action: a,
            phase,
        }) = EntryId::parse(&e.event_id)
        else {
            continue;
        };
        if incident != *id || n != cycle || c != cause || action.is_some_and(|x| x != a) {
            continue;
        }
        if let Some(k) = phase_attempt(&phase, "started") {
            let m = started.entry(a).or_default();
            *m = (*m).max(k);
            continue;
        }
        if let Some(k) = phase_attempt(&phase, "interrupted") {
            let m = interrupted.entry(a).or_default();
            *m = (*m).max(k);
            continue;
        }
        match (action, phase.as_str()) {
            (None, "requested") | (Some(_), "approved") => claimed = true,
            // what the request itself wrote before the approval
            (Some(_), "requested" | "awaiting-approval" | "approval-request-failed") => {}
            _ => return None,
        }
    }
    if !claimed {
        return None;
    }
    // every try started must be known not to have reached ECS
    let mut next = BTreeMap::new();
    for (a, n) in started {
        if interrupted.get(&a) != Some(&n) {
            return None;
        }
        next.insert(a, n + 1);
    }
    Some(next)
}

/// The deterministic event id of a remediation entry.
pub fn event_id(incident: &IncidentId, cycle: u32, cause: &str, action: &str, phase: &str) -> String {
    EntryId::Remediation {
        incident: incident.clone(),
        cycle,
        cause: cause.to_string(),
        action: action.to_string(),
        phase: phase.to_string(),
    }
    .text()
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn snapshot(s: &ServiceState) -> detail::ServiceSnapshot {
    detail::ServiceSnapshot {
        task_definition: s.task_definition.clone(),
        desired: s.desired,
        running: s.running,
        deployments: s.deployments.len(),
    }
}

pub(super) fn call_error(e: &PortError) -> detail::CallError {
    detail::CallError {
        operation: e.operation.clone(),
        code: e.code.clone(),
        message: e.message.clone(),
        retryable: e.retryable,
    }
}

pub(super) fn port_error_text(e: &PortError) -> String {
    match &e.code {
        Some(c) => format!("{}: {c}: {}", e.operation, e.message),
        None => e.to_string(),
    }
}

/// How long an intent without a result may still be in flight before a delivery that finds it
/// reconciles it from ECS: the remediate function's timeout (60 s) and some clock skew. Lambda
/// retries a failed async invoke after a minute and again after two more, so a retry of an
/// interrupted delivery gets past it.
pub const RECONCILE_AFTER_S: i64 = 75;

/// Whether `state` shows every change `update` asks for, made after `since`.
fn update_shows(update: &ServiceUpdate, state: &ServiceState, since: DateTime<Utc>) -> bool {
    let td = update
        .task_definition
        .as_ref()
        .is_none_or(|t| &state.task_definition == t);
    let desired = update.desired.is_none_or(|d| state.desired >= d);
    let restarted = !update.force_new_deployment
        || state
            .deployments
            .iter()
            .any(|d| d.created_at.is_some_and(|c| c >= since));
    td && desired && restarted
}

/// The record carried in an entry's detail, if any.
pub(super) fn record_of(e: &TimelineEntry) -> Option<RemediationRecord> {
    e.detail().record().cloned()
}

impl<P: RemediatePorts> Remediate<'_, P> {
    pub(super) fn record(
        &self,
        dec: &Decision<'_>,
        outcome: Outcome,
        detail: String,
        target: Option<&EcsService>,
    ) -> RemediationRecord {
        RemediationRecord {
            action: dec.action.clone(),
            mode: dec.mode,
            outcome,
            detail,
            target: target.map(ToString::to_string),
            at: self.ports.clock().now(),
        }
    }

    pub(super) fn refused(
        &self,
        dec: &Decision<'_>,
        target: Option<&EcsService>,
        r: &Refusal,
        report: &mut RemediationReport,
    ) -> TimelineEntry {
        tracing::info!(action = %dec.action, guardrail = r.guardrail, reason = %r.reason, "remediation refused");
        // a circuit breaker's refusal reads as what it is ("circuit open: …", the drill contract)
        let said = if r.guardrail == "circuit-breaker" {
            r.reason.clone()
        } else {
            format!("refused: {}", r.reason)
        };
        let rec = self.record(dec, Outcome::Refused, said, target);
        report.decisions.push(rec.clone());
        TimelineEntry::new(
            event_id(&dec.incident.id, dec.cycle, dec.cause, &dec.key, "refused"),
            rec.at,
            EntryKind::RemediationRefused,
            format!("{} refused ({}): {}", dec.action, r.guardrail, r.reason),
        )
        .with_detail(detail::RemediationRefused {
            record: rec,
            guardrail: r.guardrail.to_string(),
            reason: r.reason.clone(),
            cause: dec.cause.to_string(),
            runbook: dec.runbook.map(str::to_string),
        })
    }

    pub(super) fn dry_run(
        &self,
        dec: &Decision<'_>,
        plan: &Plan,
        report: &mut RemediationReport,
    ) -> TimelineEntry {
        let rec = self.record(
            dec,
            Outcome::DryRun,
            format!("dry-run: would update {}: {}", plan.service, plan.detail),
            Some(&plan.service),
        );
        report.decisions.push(rec.clone());
        TimelineEntry::new(
            event_id(&dec.incident.id, dec.cycle, dec.cause, &dec.key, "dry-run"),
            rec.at,
            EntryKind::RemediationDryRun,
            format!(
                "dry-run {} on {}: would set {}",
                dec.action, plan.service, plan.detail
            ),
        )
        .with_detail(detail::RemediationDryRun {
            record: rec,
            update: plan.update.clone(),
            before: snapshot(&plan.before),
            cause: dec.cause.to_string(),
            runbook: dec.runbook.map(str::to_string),
        })
    }

    pub(super) fn notify_failed(&self, dec: &Decision<'_>, what: &str, e: &PortError) -> TimelineEntry {
        tracing::warn!(error = %e, what, "notification failed");
        TimelineEntry::new(
            event_id(
                &dec.incident.id,
                dec.cycle,
                dec.cause,
                &dec.key,
                &format!("{}-failed", what.replace(' ', "-")),
            ),
            self.ports.clock().now(),
            EntryKind::Note,
            format!(
                "could not send the {what} for {}: {}",
                dec.action,
                port_error_text(e)
            ),
        )
        .with_detail(detail::Note {
            error: Some(call_error(e)),
            ..detail::Note::default()
        })
    }

    /// Re-check, cooldown lease, intent, then the ECS call. Returns the entries and whether the
    /// cause is done (applied, failed, or refused for the whole incident).
    ///
    /// # Errors
    /// What a retry can fix, before ECS was asked anything (see `act`).
    pub(super) async fn execute(
        &self,
        dec: &Decision<'_>,
        plan: &Plan,
        verify: chrono::Duration,
        report: &mut RemediationReport,
    ) -> Result<(Vec<TimelineEntry>, bool), Error> {
        let inc = dec.incident;
        let svc = &plan.service;
        let outcome = self.act(dec, plan).await?;
        let now = self.ports.clock().now();
        let before = snapshot(&plan.before);
        Ok(match outcome {
            Executed::Refused(r) => {
                let stops = r.stops();
                (vec![self.refused(dec, Some(svc), &r, report)], stops)
            }
            Executed::Failed(e) => {
                tracing::warn!(action = %dec.action, service = %svc, error = %e, "remediation failed");
                let rec = self.record(
                    dec,
                    Outcome::Failed,
                    format!("failed: {}: {} (not retried)", plan.detail, port_error_text(&e)),
                    Some(svc),
                );
                report.decisions.push(rec.clone());
                let entry = TimelineEntry::new(
                    event_id(&inc.id, dec.cycle, dec.cause, &dec.key, "failed"),
                    now,
                    EntryKind::RemediationFailed,
                    format!("{} on {svc} failed: {}", dec.action, port_error_text(&e)),
                )
                .with_detail(detail::RemediationFailed {
                    record: rec,
                    error: call_error(&e),
                    before,
                    update: plan.update.clone(),
                    cause: dec.cause.to_string(),
                    runbook: dec.runbook.map(str::to_string),
                });
                (vec![entry], true)
            }
            Executed::Applied(after) => {
                let verify_by = now + verify;
                tracing::info!(action = %dec.action, service = %svc, detail = %plan.detail, "remediation applied");
                let rec = self.record(
                    dec,
                    Outcome::Applied,
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
                    event_id(&inc.id, dec.cycle, dec.cause, &dec.key, "applied"),
                    now,
                    EntryKind::RemediationApplied,
                    format!("{} applied on {svc}: {}", dec.action, plan.detail),
                )
                .with_detail(detail::RemediationApplied {
                    record: rec,
                    before,
                    after: snapshot(&after),
                    update: plan.update.clone(),
                    applied_at: now,
                    verify_window_s: verify.num_seconds(),
                    verify_by,
                    cause: dec.cause.to_string(),
                    runbook: dec.runbook.map(str::to_string),
                })];
                if inc.status == IncidentStatus::Open {
                    entries.push(TimelineEntry::new(
                        event_id(&inc.id, dec.cycle, dec.cause, &dec.key, "mitigated"),
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
        })
    }

    /// Appends the entries (idempotent), then reconciles the incident from them.
    pub(super) async fn commit(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<Incident, Error> {
        if !entries.is_empty() {
            self.ports.store().append(id, entries).await?;
        }
        self.reconcile(id, entries).await
    }

    /// Adds the records the entries carry to the incident (each once), marks it mitigated when
    /// one was applied, and saves with optimistic locking (re-read and retry on conflict).
    pub(super) async fn reconcile(
        &self,
        id: &IncidentId,
        entries: &[TimelineEntry],
    ) -> Result<Incident, Error> {
        let records: Vec<RemediationRecord> = entries.iter().filter_map(record_of).collect();
        let mut up = Update::new(self.ports.store(), id);
        loop {
            let read = up.read().await?;
            let mut inc = read.clone();
            let mut changed = false;
            for rec in &records {
                if inc.remediations.contains(rec) {
                    continue;
                }
                if rec.outcome == Outcome::Applied {
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
    pub(super) async fn redelivered(
        &self,
        id: &IncidentId,
        cycle: u32,
        cause: &str,
        mut report: RemediationReport,
        action: Option<&str>,
    ) -> Result<Redelivery, Error> {
        tracing::info!(incident = %id, cause, "remediation already decided; redelivery does nothing");
        let entries: Vec<TimelineEntry> = self
            .ports
            .store()
            .timeline(id)
            .await?
            .into_iter()
            .filter(|e| {
                matches!(EntryId::parse(&e.event_id),
                    Some(EntryId::Remediation { incident, cycle: n, cause: c, .. })
                        if incident == *id && n == cycle && c == cause)
            })
            .collect();
        let healed = self.reconcile_started(id, &entries).await?;
        let mut entries = entries;
        if !healed.is_empty() {
            self.ports.store().append(id, &healed).await?;
            entries.extend(healed.iter().cloned());
        }
        // every try so far known not to have reached ECS: the decision is made again
        if let Some(attempts) = unfinished(id, cycle, cause, action, &entries) {
            return Ok(Redelivery::Resume(attempts));
        }
        let incident = self.reconcile(id, &entries).await?;
        report.decisions = entries.iter().filter_map(record_of).collect();
        report.skipped = Some("already decided".into());
        if !healed.is_empty() {
            // what the interrupted delivery never told: the page and "Remediation Applied"
            let told = RemediationReport {
                decisions: healed.iter().filter_map(record_of).collect(),
                ..report.clone()
            };
            self.announce(&incident, cause, &told).await?;
        }
        Ok(Redelivery::Done(report))
    }

    /// The intent of the ECS change `plan` makes, for the timeline before the call.
    pub(super) fn started_entry(&self, dec: &Decision<'_>, plan: &Plan) -> TimelineEntry {
        TimelineEntry::of(
            event_id(
                &dec.incident.id,
                dec.cycle,
                dec.cause,
                &dec.key,
                &started_phase(dec.attempt),
            ),
            self.ports.clock().now(),
            detail::RemediationStarted {
                action: dec.action.clone(),
                mode: dec.mode,
                plan: plan.detail.clone(),
                service: plan.service.to_string(),
                update: plan.update.clone(),
                before: snapshot(&plan.before),
                cause: dec.cause.to_string(),
                runbook: dec.runbook.map(str::to_string),
            },
            format!(
                "{} on {}: asking ECS for {}",
                dec.action, plan.service, plan.detail
            ),
        )
    }

    /// For each intent on `entries` without a result (the invocation stopped, or its result was
    /// lost, between the ECS call and recording it): what ECS shows now decides what is recorded,
    /// applied or not carried out. Never calls ECS to change anything. An intent younger than
    /// [`RECONCILE_AFTER_S`] may still be in flight: that is a retryable error, so the delivery
    /// comes back later.
    pub(super) async fn reconcile_started(
        &self,
        id: &IncidentId,
        entries: &[TimelineEntry],
    ) -> Result<Vec<TimelineEntry>, Error> {
        let now = self.ports.clock().now();
        let mut out = Vec::new();
        // read only when an intent needs reconciling (most redeliveries find none)
        let mut read: Option<Incident> = None;
        for e in entries {
            let Detail::RemediationStarted(s) = e.detail() else {
                continue;
            };
            let Some(EntryId::Remediation {
                cycle,
                cause,
                action: key,
                phase: intent,
                ..
            }) = EntryId::parse(&e.event_id)
            else {
                continue;
            };
            let attempt = phase_attempt(&intent, "started").unwrap_or(1);
            let done = entries.iter().any(|x| {
                matches!(EntryId::parse(&x.event_id), Some(EntryId::Remediation { cycle: n, cause: c, action: a, phase, .. })
                    if n == cycle && c == cause && a == key
                        && (phase == "applied" || phase == "failed" || phase == interrupted_phase(attempt)))
            });
            if done {
                continue;
            }
            if now - e.at < chrono::Duration::seconds(RECONCILE_AFTER_S) {
                return Err(Error::Port(PortError::new(
                    "remediation",
                    format!(
                        "{} on {} started at {} and may still be in flight; try again later",
                        s.action,
                        s.service,
                        ts(e.at)
                    ),
                    true,
                )));
            }
            let incident = match &mut read {
                Some(i) => &*i,
                None => read.insert(
                    self.ports
                        .store()
                        .get(id)
                        .await?
                        .ok_or_else(|| Error::invalid("incident_id", format!("no incident {id}")))?,
                ),
            };
            let svc = EcsService::parse(&s.service)?;
            let state = self.ports.ecs().describe(&svc).await.map_err(Error::Port)?;
            let applied = update_shows(&s.update, &state, e.at);
            let dec = Decision {
                incident,
                cycle,
                cause: &cause,
                runbook: s.runbook.as_deref(),
                key: key.clone(),
                action: s.action.clone(),
                mode: s.mode,
                attempt,
            };
            let seen = format!(
                "{}, desiredCount {}, {} deployment(s)",
                state.task_definition,
                state.desired,
                state.deployments.len()
            );
            if applied {
                tracing::warn!(incident = %incident.id, action = %s.action, "an applied action was not recorded; reconciled from ECS");
                let rec = RemediationRecord {
                    at: e.at,
                    ..self.record(
                        &dec,
                        Outcome::Applied,
                        format!(
                            "{}; reconciled from ECS after an interrupted delivery (now {seen})",
                            s.plan
                        ),
                        Some(&svc),
                    )
                };
                let verify = chrono::Duration::seconds(self.settings.sweeper.default_verify_window_s);
                out.push(
                    TimelineEntry::new(
                        event_id(&incident.id, cycle, &cause, &key, "applied"),
                        now,
                        EntryKind::RemediationApplied,
                        format!(
                            "{} applied on {svc}: {} (reconciled from ECS: the result was not recorded)",
                            s.action, s.plan
                        ),
                    )
                    .with_detail(detail::RemediationApplied {
                        record: rec,
                        before: s.before.clone(),
                        after: snapshot(&state),
                        update: s.update.clone(),
                        applied_at: e.at,
                        verify_window_s: verify.num_seconds(),
                        verify_by: e.at + verify,
                        cause: cause.clone(),
                        runbook: s.runbook.clone(),
                    }),
                );
            } else if attempt < ECS_ATTEMPTS {
                // the call never reached the service: the decision is tried again
                tracing::warn!(incident = %incident.id, action = %s.action, attempt, "an interrupted action is not on the service; it is asked again");
                out.push(TimelineEntry::of(
                    event_id(&incident.id, cycle, &cause, &key, &interrupted_phase(attempt)),
                    now,
                    detail::Note::default(),
                    format!(
                        "{} on {svc} (try {attempt}) did not reach the service (ECS shows {seen}): asked again",
                        s.action
                    ),
                ));
            } else {
                tracing::warn!(incident = %incident.id, action = %s.action, "an interrupted action is not on the service; recorded as not carried out");
                let error = PortError::new(
                    "ECS UpdateService",
                    format!(
                        "interrupted: ECS does not show the change after {attempt} tries (now {seen}); not retried"
                    ),
                    false,
                );
                let rec = self.record(
                    &dec,
                    Outcome::Failed,
                    format!("failed: {}: {}", s.plan, error.message),
                    Some(&svc),
                );
                out.push(
                    TimelineEntry::new(
                        event_id(&incident.id, cycle, &cause, &key, "failed"),
                        now,
                        EntryKind::RemediationFailed,
                        format!(
                            "{} on {svc} was interrupted and is not on the service (ECS shows {seen})",
                            s.action
                        ),
                    )
                    .with_detail(detail::RemediationFailed {
                        record: rec,
                        error: call_error(&error),
                        before: s.before.clone(),
                        update: s.update.clone(),
                        cause: cause.clone(),
                        runbook: s.runbook.clone(),
                    }),
                );
            }
        }
        Ok(out)
    }

    /// After an applied or failed action: the incident's topic, and "Remediation Applied" on the
    /// bus. Failures to tell are recorded on the timeline (a retry would not resend: the
    /// decision is taken).
    pub(super) async fn announce(
        &self,
        incident: &Incident,
        cause: &str,
        report: &RemediationReport,
    ) -> Result<(), Error> {
        let Some(rec) = report
            .decisions
            .iter()
            .find(|r| r.outcome == Outcome::Applied || r.outcome == Outcome::Failed)
        else {
            return Ok(());
        };
        let target = rec.target.clone().unwrap_or_default();
        let dec = Decision {
            incident,
            cycle: incident.reopened,
            cause,
            runbook: None,
            key: rec.action.to_string(),
            action: rec.action.clone(),
            mode: RemediationMode::Auto,
            attempt: 1,
        };
        let mut notes = Vec::new();
        let applied = rec.outcome == Outcome::Applied;
        let message = Notification {
            subject: plain_line(&format!(
                "[{}] Remediation {}: {} on {target}",
                incident.severity,
                if applied { "applied" } else { "FAILED" },
                rec.action
            )),
            // the title comes from the alarm: inert (no mentions, no control characters)
            body: plain(&format!(
                "Incident {} ({}), cause {cause}.\n{} ({} mode): {}",
                incident.id, incident.title, rec.action, rec.mode, rec.detail
            )),
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
            facts: crate::ports::PageFacts {
                action: Some(rec.action.to_string()),
                ..crate::ports::PageFacts::of(incident, crate::ports::PageEvent::Remediation)
            }
            .steps(if applied {
                vec![
                    "Firebreak verifies the action when its window ends: every alarm OK, or it escalates"
                        .to_string(),
                    format!("Timeline: firebreak show {}", incident.id),
                ]
            } else {
                vec![format!(
                    "The action failed: act by hand; timeline: firebreak show {}",
                    incident.id
                )]
            }),
        };
        if let Err(e) = self
            .ports
            .notifier()
            .notify(Route::Severity(incident.severity), &message)
            .await
        {
            notes.push(self.notify_failed(&dec, "notification", &e));
        }
        if applied {
            let event = Event::Applied(RemediationApplied {
                incident_id: incident.id.clone(),
                service: incident.service.clone(),
                action: rec.action.to_string(),
                target,
                detail: rec.detail.clone(),
            });
            if let Err(e) = self.ports.bus().put(&event.to_pipeline()).await {
                notes.push(self.notify_failed(&dec, "bus event", &e));
            }
        }
        if !notes.is_empty() {
            self.ports.store().append(&incident.id, &notes).await?;
        }
        Ok(())
    }
}
