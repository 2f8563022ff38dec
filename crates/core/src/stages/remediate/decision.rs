//! Deciding an action: what is read before deciding (the service, the live alarm states), every
//! guardrail in order and the plan they allow, and the ECS call itself behind the cooldown lease
//! and the last re-check.

use super::*;
use crate::ports::Lease;

/// What was read before deciding.
pub(super) struct Reads {
    /// `None` when the incident names no ECS service or no step needs it.
    pub(super) state: Option<Result<ServiceState, PortError>>,
    pub(super) live: Result<BTreeMap<String, AlarmState>, PortError>,
}

/// A planned change, guardrails passed.
pub(super) struct Plan {
    pub(super) service: EcsService,
    pub(super) update: ServiceUpdate,
    /// `desiredCount 4 → 8 (step +4, max 20, ≤2x)`.
    pub(super) detail: String,
    pub(super) before: ServiceState,
}

/// One decision's context, for recording.
pub(super) struct Decision<'x> {
    pub(super) incident: &'x Incident,
    /// The incident's cycle the decision belongs to (its entries' ids carry it).
    pub(super) cycle: u32,
    pub(super) cause: &'x str,
    pub(super) runbook: Option<&'x str>,
    pub(super) key: String,
    pub(super) action: ActionName,
    pub(super) mode: RemediationMode,
    /// Which try at the ECS call this is (1, or more after calls that never reached ECS).
    pub(super) attempt: u32,
}

pub(super) enum Executed {
    Applied(ServiceState),
    Failed(PortError),
    Refused(Refusal),
}

impl<P: RemediatePorts> Remediate<'_, P> {
    /// Reads ECS and CloudWatch. A retryable failure is returned (nothing is recorded yet, the
    /// delivery can be retried); any other is kept and becomes a refusal.
    pub(super) async fn read(&self, incident: &Incident) -> Result<Reads, Error> {
        let state = match &incident.ecs {
            Some(svc) => match self.ports.ecs().describe(svc).await {
                Err(e) if e.retryable => return Err(e.into()),
                r => Some(r),
            },
            None => None,
        };
        let names: Vec<String> = incident.alarms.keys().cloned().collect();
        let live = match self.ports.alarms().states(&names).await {
            Err(e) if e.retryable => return Err(e.into()),
            r => r,
        };
        Ok(Reads { state, live })
    }

    /// Every guardrail but the mode and the cooldown, in order, then the plan.
    pub(super) async fn guard_and_plan(
        &self,
        incident: &Incident,
        action: &Action,
        reads: &Reads,
        start: DateTime<Utc>,
    ) -> Result<Plan, Refusal> {
        let svc = g::target(incident)?;
        g::check_targets_agree(incident)?;
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
        g::check_not_flapping(incident)?;
        let live = reads.live.as_ref().map_err(|e| {
            Refusal::incident(
                "alarm-state",
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
                        let listed = self.ports.ecs().task_definitions(&family).await.map_err(|e| {
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

    /// The last re-check, the cooldown lease, the intent, then the ECS call. A failure a retry
    /// can fix (a throttled re-read, a lost lease response, an intent that could not be
    /// written) is returned as an error before ECS is asked anything, so the delivery is retried
    /// and resumes the decision; it never becomes a refusal.
    pub(super) async fn act(&self, dec: &Decision<'_>, plan: &Plan) -> Result<Executed, Error> {
        let svc = &plan.service;
        let cooldown_s = self.settings.remediation.cooldown_s;
        // Just before acting: the incident still open, its alarm still in ALARM. Read before the
        // lease, so that a read failing does not leave a cooldown behind it.
        let fresh = match self.ports.store().get(&dec.incident.id).await {
            Ok(Some(i)) => i,
            Ok(None) => {
                return Ok(Executed::Refused(Refusal::incident(
                    "incident-closed",
                    format!("incident {} is gone", dec.incident.id),
                )))
            }
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => {
                return Ok(Executed::Refused(Refusal::incident(
                    "incident-unreadable",
                    format!("could not re-read incident {}: {e}", dec.incident.id),
                )))
            }
        };
        if fresh.reopened != dec.cycle {
            return Ok(Executed::Refused(Refusal::incident(
                "cycle",
                format!(
                    "incident {} moved on to cycle {} while cycle {} was being decided",
                    fresh.id, fresh.reopened, dec.cycle
                ),
            )));
        }
        if let Err(r) = g::check_incident_active(&fresh)
            .and_then(|()| g::check_not_flapping(&fresh))
            .and_then(|()| g::check_targets_agree(&fresh))
        {
            return Ok(Executed::Refused(r));
        }
        // an action proved ineffective while this one was being decided: nothing automatic
        if let (RemediationMode::Auto, Some(held)) = (dec.mode, &fresh.auto_held) {
            return Ok(Executed::Refused(Refusal::incident(
                "held",
                format!(
                    "no further automatic action on {}: {held}; approval is still possible",
                    fresh.id
                ),
            )));
        }
        let names: Vec<String> = fresh.alarms.keys().cloned().collect();
        match self.ports.alarms().states(&names).await {
            Ok(live) => {
                if let Err(r) = g::check_alarms_firing(&fresh, &live) {
                    return Ok(Executed::Refused(r));
                }
            }
            Err(e) if e.retryable => return Err(e.into()),
            Err(e) => {
                return Ok(Executed::Refused(Refusal::incident(
                    "alarm-state",
                    format!("could not re-read the alarms' state: {}", port_error_text(&e)),
                )))
            }
        }
        let now = self.ports.clock().now();
        let key = g::cooldown_key(svc, dec.action.as_str());
        // the lease belongs to this decision: its own retry takes it again
        let owner = event_id(&dec.incident.id, dec.cycle, dec.cause, &dec.key, "cooldown");
        match self
            .ports
            .store()
            .claim(&key, &owner, g::cooldown_until(now, cooldown_s), now)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Executed::Refused(g::cooldown_refusal(
                    svc,
                    dec.action.as_str(),
                    cooldown_s,
                )))
            }
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => {
                return Ok(Executed::Refused(Refusal::incident(
                    "cooldown",
                    format!("could not take the cooldown lease {key}: {e}"),
                )))
            }
        }
        // Circuit breakers: an automatic action takes a slot of the service's circuit and of
        // the global one (a person's approval is not automation and takes none)
        if dec.mode == RemediationMode::Auto {
            if let Some(r) = self.take_circuit(dec, svc, now).await? {
                // the cooldown lease was taken for an action that will not run: give it back
                let _ = self.ports.store().claim(&key, &owner, now, now).await;
                return Ok(Executed::Refused(r));
            }
        }
        // Write-ahead: the intent goes on the timeline before ECS is asked, so a delivery that
        // finds it without a result learns from ECS what happened (record::reconcile_started).
        // The intent is also the claim on the call: of two invocations only the one that wrote
        // it goes on.
        let intent = self.started_entry(dec, plan);
        match self.ports.store().append(&dec.incident.id, &[intent]).await {
            Ok(1..) => {}
            Ok(0) => {
                return Err(Error::Port(PortError::new(
                    "remediation",
                    format!(
                        "{} on {svc} was started by another invocation; the retry reconciles it",
                        dec.action
                    ),
                    true,
                )))
            }
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(e) => {
                return Ok(Executed::Refused(Refusal::incident(
                    "write-ahead",
                    format!("could not record the intent before acting, so nothing was asked of ECS: {e}"),
                )))
            }
        }
        Ok(match self.ports.ecs().update(svc, &plan.update).await {
            Ok(after) => Executed::Applied(after),
            // A timeout or a lost response may have changed the service: the intent stays
            // without a result, and the retry reconciles it from what ECS shows
            // (record::reconcile_started), never calls again.
            Err(e) if e.retryable => return Err(e.into()),
            Err(e) => Executed::Failed(e),
        })
    }
}

/// What [`Remediate::take_slot`] found.
enum Slot {
    /// This slot is the decision's.
    Taken(String),
    /// Every slot is held by another action: the leases, live as read.
    Full(Vec<Lease>),
}

/// One circuit: at most `limit` actions within `window_s`, counted by `limit` lease slots.
struct Circuit {
    /// `circuit#svc#prod/orders`, `circuit#all`.
    prefix: String,
    limit: u32,
    window_s: i64,
    /// `on prod/orders`, `across all services`.
    scope: String,
}

impl<P: RemediatePorts> Remediate<'_, P> {
    /// Takes a slot of the service's circuit, then of the global one, for this decision (a retry
    /// finds the slots it holds and takes no other). `Some(refusal)` when a circuit is open:
    /// every slot is held by another action within the window; a slot already taken is given
    /// back, and one page per opening says so.
    pub(super) async fn take_circuit(
        &self,
        dec: &Decision<'_>,
        svc: &EcsService,
        now: DateTime<Utc>,
    ) -> Result<Option<Refusal>, Error> {
        let c = &self.settings.remediation.circuit;
        let circuits = [
            Circuit {
                prefix: format!("circuit#svc#{svc}"),
                limit: c.per_service,
                window_s: c.service_window_s,
                scope: format!("on {svc}"),
            },
            Circuit {
                prefix: "circuit#all".to_string(),
                limit: c.global,
                window_s: c.global_window_s,
                scope: "across all services".to_string(),
            },
        ];
        let owner = event_id(&dec.incident.id, dec.cycle, dec.cause, &dec.key, "circuit");
        let mut taken: Vec<String> = Vec::new();
        for circuit in circuits.iter().filter(|c| c.limit > 0) {
            match self.take_slot(circuit, &owner, now).await {
                Ok(Slot::Taken(key)) => taken.push(key),
                Ok(Slot::Full(held)) => {
                    self.release(&taken, &owner, now).await;
                    let refusal = self.circuit_open(circuit, &held, dec, now).await?;
                    return Ok(Some(refusal));
                }
                Err(e) => {
                    self.release(&taken, &owner, now).await;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// One slot of `circuit` for `owner`: the one it already holds (a retry of the same
    /// decision, which must not take a second), else the first free or lapsed one, taken with a
    /// conditional write (a concurrent invocation that took it first makes this look again).
    /// [`Slot::Full`], with the leases read, when every slot is held by others within the window.
    async fn take_slot(&self, circuit: &Circuit, owner: &str, now: DateTime<Utc>) -> Result<Slot, Error> {
        let keys: Vec<String> = (0..circuit.limit)
            .map(|k| format!("{}#{k}", circuit.prefix))
            .collect();
        let until = now
            .checked_add_signed(chrono::Duration::seconds(circuit.window_s.max(1)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut held = Vec::new();
        for _ in 0..=circuit.limit {
            let mut free = None;
            held.clear();
            for key in &keys {
                match self.ports.store().lease(key).await? {
                    Some(l) if l.owner == owner && l.until > now => return Ok(Slot::Taken(key.clone())),
                    Some(l) if l.until > now => held.push(l),
                    _ => {
                        if free.is_none() {
                            free = Some(key.clone());
                        }
                    }
                }
            }
            let Some(key) = free else {
                return Ok(Slot::Full(held));
            };
            if self.ports.store().claim(&key, owner, until, now).await? {
                return Ok(Slot::Taken(key));
            }
        }
        Ok(Slot::Full(held))
    }

    /// Gives back slots taken for an action that will not run (best effort: a slot left behind
    /// lapses with its window).
    async fn release(&self, keys: &[String], owner: &str, now: DateTime<Utc>) {
        for key in keys {
            if let Err(e) = self.ports.store().claim(key, owner, now, now).await {
                tracing::warn!(key, error = %e, "could not give back a circuit slot; it lapses with its window");
            }
        }
    }

    /// The refusal of an open circuit, naming since when it is full, and its one page.
    async fn circuit_open(
        &self,
        circuit: &Circuit,
        held: &[Lease],
        dec: &Decision<'_>,
        now: DateTime<Utc>,
    ) -> Result<Refusal, Error> {
        let window_s = chrono::Duration::seconds(circuit.window_s.max(1));
        // each live slot was taken one window before it lapses
        let since = held
            .iter()
            .map(|l| l.until.checked_sub_signed(window_s).unwrap_or(now))
            .min()
            .unwrap_or(now);
        let closes = held.iter().map(|l| l.until).min().unwrap_or(now);
        let window = crate::model::duration::human(circuit.window_s);
        let reason = format!(
            "circuit open: {} actions {} since {} (at most {} automatic actions {} in {window}); no automatic action until {}",
            circuit.limit,
            circuit.scope,
            since.format("%H:%M"),
            circuit.limit,
            circuit.scope,
            closes.format("%H:%M")
        );
        // one page per opening: the first refusal of it takes the page's lease until it closes
        let page_key = format!("{}#paged", circuit.prefix);
        let owner = event_id(&dec.incident.id, dec.cycle, dec.cause, &dec.key, "circuit-page");
        if self.ports.store().claim(&page_key, &owner, closes, now).await? {
            let inc = dec.incident;
            let message = Notification {
                subject: crate::model::text::plain_line(&format!(
                    "[{}] Circuit open {}: automatic remediation paused",
                    inc.severity, circuit.scope
                )),
                body: crate::model::text::plain(&format!(
                    "Firebreak refused {} for incident {} on {}: {reason}.\n\
                     Automatic actions resume when the oldest action counted leaves the window. \
                     Repeated actions on one service usually hide a problem they do not fix: \
                     look at the earlier incidents' verifications, and act by hand if the \
                     incident needs it.\nTimeline: firebreak show {}\n",
                    dec.action, inc.id, inc.service, inc.id
                )),
                attributes: BTreeMap::from([
                    ("severity".to_string(), inc.severity.as_str().to_string()),
                    ("service".to_string(), inc.service.clone()),
                    ("kind".to_string(), "circuit-open".to_string()),
                    ("incident".to_string(), inc.id.to_string()),
                ]),
                facts: crate::ports::PageFacts::of(inc, crate::ports::PageEvent::CircuitOpen)
                    .next(format!(
                        "Read the earlier incidents' verifications: firebreak show {}",
                        inc.id
                    ))
                    .next(format!(
                        "Act by hand if the incident needs it; automatic actions resume at {}",
                        closes.format("%H:%M UTC")
                    )),
            };
            if let Err(e) = self
                .ports
                .notifier()
                .notify(Route::Severity(inc.severity), &message)
                .await
            {
                // give the page's lease back, so the next refusal of this opening pages
                tracing::warn!(error = %e, "could not page that the circuit is open");
                let _ = self.ports.store().claim(&page_key, &owner, now, now).await;
            }
        }
        Ok(Refusal::incident("circuit-breaker", reason))
    }
}
