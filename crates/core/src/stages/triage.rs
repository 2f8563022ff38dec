//! Triage: an alarm signal becomes a classified incident. On ALARM it opens, attaches to, reopens
//! or escalates the service's incident and pages; on OK it records the recovery and tells
//! resolve; INSUFFICIENT_DATA is recorded, never paged.
//!
//! Every path is safe to run twice on the same delivery: the store writes are conditional on
//! event ids derived from the delivery id, and each side effect (page, pipeline event) is
//! followed by a marker entry, so a redelivery finishes what a crashed attempt left undone and
//! otherwise changes nothing.

use crate::model::entry_id::EntryId;
use crate::model::incident::{AttachedAlarm, Flap, Incident, IncidentId, IncidentStatus};
use crate::model::pipeline::{AlarmRecovered, Event, IncidentRaised};
use crate::model::settings::Settings;
use crate::model::signal::{AlarmSignal, AlarmState};
use crate::model::text::plain_line;
use crate::model::timeline::{detail, EntryKind, TimelineEntry};
use crate::policy::{Classification, SeverityPolicy};
use crate::ports::bundle::*;
use crate::ports::update::{Saved, Update};
use crate::ports::{
    Clock, EventBus, IncidentStore, Notification, Notifier, OpenOutcome, PageEvent, PageFacts, PointerChange,
    PortError, Route, StoreError, Transition, TransitionClaim,
};
use crate::Error;
use std::collections::BTreeMap;
use tracing::{info, warn};

use crate::ports::retry::{next, pause, CONFLICT_ATTEMPTS};

/// Tries of one contended step inside an invocation: in practice its deadline stops them first
/// (see `retry::may_retry`).
const MAX_ATTEMPTS: usize = 1 << 20;

/// What triage did with one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum TriageOutcome {
    /// A new incident, paged.
    Opened { id: IncidentId },
    /// The alarm joined the service's active incident; `escalated` when it raised the severity
    /// (and paged again).
    Attached { id: IncidentId, escalated: bool },
    /// A resolved incident came back within the reopen window.
    Reopened { id: IncidentId },
    /// The alarm recovered; resolve was told.
    Recovered { id: IncidentId },
    /// INSUFFICIENT_DATA, recorded on the incident when there is one.
    Recorded { id: Option<IncidentId> },
    /// OK for a service with no incident: nothing to do.
    NoIncident,
    /// This delivery was already handled in full.
    Duplicate { id: IncidentId },
    /// The signal is older than the state already recorded for its alarm (SNS and EventBridge
    /// do not keep order): noted on the timeline, state unchanged.
    Stale { id: IncidentId },
}

impl TriageOutcome {
    pub fn incident(&self) -> Option<&IncidentId> {
        match self {
            TriageOutcome::Opened { id }
            | TriageOutcome::Attached { id, .. }
            | TriageOutcome::Reopened { id }
            | TriageOutcome::Recovered { id }
            | TriageOutcome::Duplicate { id }
            | TriageOutcome::Stale { id } => Some(id),
            TriageOutcome::Recorded { id } => id.as_ref(),
            TriageOutcome::NoIncident => None,
        }
    }
}

/// The triage use-case over its ports.
pub struct Triage<'a, P: TriagePorts> {
    pub ports: P,
    pub policy: &'a SeverityPolicy,
    pub settings: &'a Settings,
}

/// How long the claim on one alarm state change is kept: far longer than its copies can be
/// apart (SNS and EventBridge retry for up to a day; the failure queue's redrive is by hand).
const TRANSITION_KEEP_S: i64 = 3 * 86_400;

/// One alarm state change, whichever channel delivers it: the alarm, the state and the time
/// CloudWatch gives it (to the millisecond, the same in the SNS and the EventBridge copy).
pub fn transition_key(signal: &AlarmSignal) -> String {
    format!(
        "{}/{}/{}",
        signal.alarm_name,
        signal.state.as_str(),
        signal.changed_at.timestamp_millis()
    )
}

/// The id of triage's `step` for this delivery.
fn eid(signal: &AlarmSignal, step: &str) -> String {
    EntryId::Delivery {
        delivery: signal.delivery_id.clone(),
        step: step.to_string(),
    }
    .text()
}

impl<P: TriagePorts> Triage<'_, P> {
    /// Handles one signal.
    ///
    /// # Errors
    /// Store, notifier and bus failures; [`Error::is_retryable`] tells whether a redelivery may
    /// succeed.
    #[tracing::instrument(skip(self, signal), fields(alarm = %signal.alarm_name, state = %signal.state, delivery = %signal.delivery_id))]
    pub async fn handle(&self, signal: &AlarmSignal) -> Result<TriageOutcome, Error> {
        let class = self.policy.classify(signal);
        match signal.state {
            AlarmState::Alarm => self.on_alarm(signal, &class).await,
            AlarmState::Ok => self.on_ok(signal, &class).await,
            AlarmState::InsufficientData => self.on_insufficient(signal, &class).await,
        }
    }

    /// The incident this signal would open, under the `n`th candidate id of its delivery.
    fn new_incident(&self, signal: &AlarmSignal, class: &Classification, n: u32) -> Incident {
        let now = self.ports.clock().now();
        let mut alarms = BTreeMap::new();
        alarms.insert(
            signal.alarm_name.clone(),
            AttachedAlarm {
                state: AlarmState::Alarm,
                changed_at: signal.changed_at,
                reason: signal.reason.clone(),
            },
        );
        let mut inc = Incident::open(
            IncidentId::derive_nth(signal.changed_at, &signal.delivery_id, &class.service, n),
            &class.service,
            class.severity,
            format!("{} on {}", signal.alarm_name, class.service),
            signal.changed_at,
            now,
        );
        inc.ecs = class.ecs.clone();
        inc.rule = class.rule.clone();
        // the opening change counts towards flapping like any other
        inc.record_change(
            &signal.alarm_name,
            signal.changed_at,
            now,
            &self.settings.flapping,
        );
        inc.policy_severity = Some(class.policy_severity);
        inc.alarms = alarms;
        if let Some(target) = &class.ecs {
            inc.alarm_targets
                .insert(signal.alarm_name.clone(), target.clone());
        }
        inc
    }

    fn fired_entry(&self, signal: &AlarmSignal) -> TimelineEntry {
        TimelineEntry::new(
            eid(signal, "alarm-fired"),
            signal.changed_at,
            EntryKind::AlarmFired,
            format!("{} is ALARM: {}", signal.alarm_name, signal.reason),
        )
        .with_detail(detail::AlarmFired {
            alarm: signal.alarm_name.clone(),
            arn: signal.alarm_arn.clone(),
            previous_state: signal.previous_state.map(|s| s.as_str().to_string()),
            channel: signal.channel,
            trigger: signal.trigger.clone(),
        })
    }

    fn classified_entry(&self, signal: &AlarmSignal, class: &Classification) -> TimelineEntry {
        let rule = class.rule.as_deref().unwrap_or("default");
        let mut summary = format!(
            "classified {} ({}) by rule {rule}",
            class.severity,
            class.severity.label()
        );
        if let Some(note) = tag_note(class) {
            summary.push_str("; ");
            summary.push_str(&note);
        }
        for n in &class.notes {
            summary.push_str("; ");
            summary.push_str(n);
        }
        TimelineEntry::new(
            eid(signal, "classified"),
            self.ports.clock().now(),
            EntryKind::Classified,
            summary,
        )
        .with_detail(detail::Classified {
            severity: class.severity,
            rule: Some(rule.to_string()),
            service: class.service.clone(),
            notes: class.notes.clone(),
        })
    }

    /// The incident this signal would open and the entries that open it.
    fn opening(
        &self,
        signal: &AlarmSignal,
        class: &Classification,
        n: u32,
    ) -> (Incident, [TimelineEntry; 3]) {
        let candidate = self.new_incident(signal, class, n);
        let opened = TimelineEntry::new(
            eid(signal, "opened"),
            self.ports.clock().now(),
            EntryKind::Opened,
            format!("incident {} opened for {}", candidate.id, candidate.service),
        );
        let entries = [
            self.fired_entry(signal),
            opened,
            self.classified_entry(signal, class),
        ];
        (candidate, entries)
    }

    /// ALARM: the first copy of the state change to claim it decides the incident (opens,
    /// attaches, reopens); a copy by the other channel only adds a note, with its tags, to that
    /// incident, however it classifies on its own. A new incident claims the change in the same
    /// write that opens it.
    async fn on_alarm(&self, signal: &AlarmSignal, class: &Classification) -> Result<TriageOutcome, Error> {
        let now = self.ports.clock().now();
        let transition = Transition {
            key: transition_key(signal),
            delivery: signal.delivery_id.clone(),
            service: class.service.clone(),
            until: now.max(signal.changed_at) + chrono::Duration::seconds(TRANSITION_KEEP_S),
        };
        // A copy that classifies to the same service needs no claim: the service's one incident
        // takes both, the second as a copy. The claim matters when copies classify apart.
        let mut claim = Some(&transition);
        let mut n = 0;
        let (mut candidate, mut entries) = self.opening(signal, class, n);
        for attempt in 0..MAX_ATTEMPTS {
            let outcome = match self
                .ports
                .store()
                .open_claiming(&candidate, &entries, self.settings.reopen_window(), claim)
                .await
            {
                Ok(outcome) => outcome,
                // Other invocations kept the same items busy: contention, not failure, retried
                // while the deadline allows
                Err(StoreError::Conflict(_)) => {
                    if next(attempt).await {
                        continue;
                    }
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            match outcome {
                OpenOutcome::Opened => {
                    info!(incident = %candidate.id, severity = %candidate.severity, service = %candidate.service, "opened");
                    self.page_and_announce(&candidate, signal, class, Announce::Opened)
                        .await?;
                    return Ok(TriageOutcome::Opened { id: candidate.id });
                }
                OpenOutcome::IdTaken(existing) => {
                    if self.delivered_before(&existing, signal).await? {
                        // This delivery opened it before: finish what may have been left undone.
                        return self.resume(&existing, signal, class, Announce::Opened).await;
                    }
                    // Another incident holds this name: the delivery's next candidate id.
                    warn!(incident = %existing.id, service = %existing.service, "incident id taken by another incident; deriving another");
                    n += 1;
                    (candidate, entries) = self.opening(signal, class, n);
                }
                OpenOutcome::TransitionTaken { service, .. } if service == class.service => {
                    claim = None;
                }
                OpenOutcome::TransitionTaken { delivery, service } => {
                    return self.copy_of(signal, &transition, &delivery, &service).await;
                }
                OpenOutcome::Existing(existing) => {
                    if let Some(t) = claim {
                        if let TransitionClaim::Theirs { delivery, service } =
                            self.ports.store().claim_transition(t).await?
                        {
                            if service != class.service {
                                return self.copy_of(signal, &transition, &delivery, &service).await;
                            }
                        }
                    }
                    match self.join(*existing, signal, class).await {
                        Err(Error::Store(StoreError::Conflict(_))) => {
                            if !next(attempt).await {
                                break;
                            }
                        }
                        other => return other,
                    }
                }
            }
        }
        Err(Error::Store(StoreError::Conflict(candidate.id)))
    }

    /// Another copy (`delivery`) of this state change claimed it for the incident of `service`:
    /// a note on that incident, once that copy has recorded it (it may be doing so right now;
    /// waited for briefly, then a retryable error).
    async fn copy_of(
        &self,
        signal: &AlarmSignal,
        transition: &Transition,
        delivery: &str,
        service: &str,
    ) -> Result<TriageOutcome, Error> {
        let store = self.ports.store();
        for attempt in 0..CONFLICT_ATTEMPTS / 4 {
            let found = store
                .find_for_service(service, self.settings.reopen_window(), self.ports.clock().now())
                .await?;
            let known = |inc: &Incident| {
                inc.alarms
                    .get(&signal.alarm_name)
                    .is_some_and(|a| a.changed_at >= signal.changed_at)
            };
            match found {
                Some(inc) if known(&inc) => {
                    return if is_copy(&inc, signal) {
                        self.record_copy(&inc, signal).await
                    } else {
                        self.record_stale(&inc, signal, EntryKind::AlarmFired).await
                    };
                }
                _ => pause(attempt).await,
            }
        }
        Err(Error::Port(PortError::new(
            "triage",
            format!(
                "another copy ({delivery}) of {} is still being recorded for {service}; retry to attach to its incident",
                transition.key
            ),
            true,
        )))
    }

    /// Whether this very delivery was recorded on `inc` before: a redelivery is known by the
    /// delivery's own identity (its message or event id, and the alarm's state-change time it
    /// carries), never by an incident id that another delivery may share.
    async fn delivered_before(&self, inc: &Incident, signal: &AlarmSignal) -> Result<bool, Error> {
        let fired = eid(signal, "alarm-fired");
        Ok(self
            .ports
            .store()
            .timeline(&inc.id)
            .await?
            .iter()
            .any(|e| e.event_id == fired && e.at == signal.changed_at))
    }

    /// Whether this delivery already left its note (a copy's or a late signal's) on `inc`.
    async fn noted_before(&self, inc: &Incident, signal: &AlarmSignal) -> Result<bool, Error> {
        let notes = [eid(signal, "copy"), eid(signal, "stale")];
        Ok(self
            .ports
            .store()
            .timeline(&inc.id)
            .await?
            .iter()
            .any(|e| notes.contains(&e.event_id)))
    }

    /// Attaches the alarm to an existing incident, reopening or escalating it as needed.
    async fn join(
        &self,
        mut inc: Incident,
        signal: &AlarmSignal,
        class: &Classification,
    ) -> Result<TriageOutcome, Error> {
        if is_stale(&inc, signal) || is_copy(&inc, signal) {
            // This very delivery recorded before (a retry whose save took effect though its
            // answer was lost), or another one: only the delivery's own entry tells.
            if self.delivered_before(&inc, signal).await? {
                return self.resume(&inc, signal, class, Announce::Escalated).await;
            }
            if is_stale(&inc, signal) {
                // noted even when it may belong to an earlier incident: a late ALARM nobody
                // recorded must not vanish
                return self.record_stale(&inc, signal, EntryKind::AlarmFired).await;
            }
            return self.record_copy(&inc, signal).await;
        }
        let now = self.ports.clock().now();
        let read = inc.clone();
        let reopening = inc.status == IncidentStatus::Resolved;
        let known_alarm = inc.alarms.contains_key(&signal.alarm_name);
        let mut entries = vec![self.fired_entry(signal)];
        let escalate_to = crate::policy::escalate(inc.severity, class.severity);

        inc.set_alarm(
            &signal.alarm_name,
            AlarmState::Alarm,
            signal.changed_at,
            &signal.reason,
        );
        // What the policy's own rules say, for remediation modes; and what this alarm names,
        // so remediation can refuse when the incident's alarms disagree about the target.
        inc.classified_by_policy(class.policy_severity);
        if let Some(target) = &class.ecs {
            inc.alarm_targets
                .insert(signal.alarm_name.clone(), target.clone());
        }
        let flap = inc.record_change(
            &signal.alarm_name,
            signal.changed_at,
            now,
            &self.settings.flapping,
        );
        if flap == Flap::Started {
            entries.push(self.flapping_entry(&inc, signal));
        }
        if reopening {
            inc.reopen(now);
            let why = if known_alarm {
                format!(
                    "{} fired again within the {}s reopen window",
                    signal.alarm_name, self.settings.reopen_window_s
                )
            } else {
                // a late delivery: its state change is older than the resolution, but nobody
                // had seen it
                format!(
                    "{} is ALARM since {} (delivered after the resolution)",
                    signal.alarm_name,
                    signal.changed_at.format("%H:%M:%S")
                )
            };
            entries.push(TimelineEntry::new(
                eid(signal, "reopened"),
                now,
                EntryKind::Reopened,
                format!("{why}: incident reopened (time {})", inc.reopened),
            ));
        } else {
            entries.push(TimelineEntry::new(
                eid(signal, "attached"),
                now,
                EntryKind::Attached,
                format!(
                    "{} attached to the open incident ({} alarms)",
                    signal.alarm_name,
                    inc.alarms.len()
                ),
            ));
        }
        if let Some(sev) = escalate_to {
            entries.push(
                TimelineEntry::new(
                    eid(signal, "escalated"),
                    now,
                    EntryKind::Escalated,
                    format!(
                        "escalated {} → {} by {} (rule {}){}",
                        inc.severity,
                        sev,
                        signal.alarm_name,
                        class.rule.as_deref().unwrap_or("default"),
                        tag_note(class).map(|n| format!("; {n}")).unwrap_or_default()
                    ),
                )
                .with_detail(detail::Escalated {
                    rule: None,
                    from: inc.severity,
                    to: sev,
                }),
            );
            inc.escalate(sev, now);
        }
        let pointer = if reopening {
            PointerChange::Reclaim
        } else {
            PointerChange::Keep
        };
        let mut up = Update::from_read(self.ports.store(), read);
        let read = up.read().await?;
        match up.save(&read, &mut inc, pointer, &entries).await? {
            Saved::Saved => {}
            Saved::AlreadyRecorded(_) => {
                return self.resume(&inc, signal, class, Announce::Escalated).await;
            }
            // the caller reads the service's incident again
            Saved::Conflict => return Err(StoreError::Conflict(inc.id).into()),
        }
        // flapping: one page says so; while held, nothing is paged or announced
        let held = matches!(flap, Flap::Started | Flap::Held);
        if flap == Flap::Started {
            warn!(incident = %inc.id, alarm = %signal.alarm_name, "flapping: held");
            self.page_and_announce(&inc, signal, class, Announce::Flapping)
                .await?;
        }
        if reopening {
            info!(incident = %inc.id, held, "reopened");
            if !held {
                self.page_and_announce(&inc, signal, class, Announce::Reopened)
                    .await?;
            }
            Ok(TriageOutcome::Reopened { id: inc.id })
        } else if escalate_to.is_some() {
            info!(incident = %inc.id, severity = %inc.severity, held, "escalated");
            if !held {
                self.page_and_announce(&inc, signal, class, Announce::Escalated)
                    .await?;
            }
            Ok(TriageOutcome::Attached {
                id: inc.id,
                escalated: true,
            })
        } else {
            info!(incident = %inc.id, "attached");
            Ok(TriageOutcome::Attached {
                id: inc.id,
                escalated: false,
            })
        }
    }

    /// A redelivery: page and announce only if the first attempt did not get that far. What
    /// the first attempt set out to announce is read back from the entries it wrote.
    async fn resume(
        &self,
        inc: &Incident,
        signal: &AlarmSignal,
        class: &Classification,
        first: Announce,
    ) -> Result<TriageOutcome, Error> {
        let timeline = self.ports.store().timeline(&inc.id).await?;
        let has = |step: &str| timeline.iter().any(|e| e.event_id == eid(signal, step));
        let announce = if has("flapping") {
            Some(Announce::Flapping)
        } else if inc.flapping_since.is_some() {
            // held when this delivery was recorded: nothing to finish
            None
        } else if has("reopened") {
            Some(Announce::Reopened)
        } else if has("escalated") {
            Some(Announce::Escalated)
        } else if first == Announce::Opened {
            Some(Announce::Opened)
        } else {
            None
        };
        if let Some(announce) = announce.filter(|_| !has("paged")) {
            warn!(incident = %inc.id, "redelivery found an unfinished page; finishing it");
            self.page_and_announce(inc, signal, class, announce).await?;
        }
        Ok(TriageOutcome::Duplicate { id: inc.id.clone() })
    }

    async fn page_and_announce(
        &self,
        inc: &Incident,
        signal: &AlarmSignal,
        class: &Classification,
        announce: Announce,
    ) -> Result<(), Error> {
        let message = page_message(inc, signal, announce, self.settings);
        let raised = IncidentRaised {
            incident_id: inc.id.clone(),
            service: inc.service.clone(),
            ecs: inc.ecs.clone(),
            severity: inc.severity,
            alarm_name: signal.alarm_name.clone(),
            alarm_at: signal.changed_at,
            runbook_hint: class.runbook_hint.clone(),
            namespace: signal.trigger.primary_metric().and_then(|m| m.namespace.clone()),
            metric_name: signal
                .trigger
                .primary_metric()
                .and_then(|m| m.metric_name.clone()),
            dimensions: signal.trigger.dimensions(),
            composite_rule: match &signal.trigger {
                crate::model::signal::Trigger::Composite { rule, .. } => Some(rule.clone()),
                crate::model::signal::Trigger::Metric { .. } => None,
            },
            tags: signal.tags.clone(),
            reopened: inc.reopened,
        };
        let event = match announce {
            Announce::Escalated => Some(Event::Escalated(raised)),
            Announce::Opened | Announce::Reopened => Some(Event::Opened(raised)),
            // held: no diagnosis, no remediation
            Announce::Flapping => None,
        };
        // The event before the page: a retry after a failed page puts the event again, which
        // diagnose takes once (its entries are per cycle); the page, which a person reads, goes
        // out again only when its own response was lost.
        if let Some(event) = &event {
            self.ports.bus().put(&event.to_pipeline()).await?;
        }
        let message_id = self
            .ports
            .notifier()
            .notify(Route::Severity(inc.severity), &message)
            .await?;
        let paged = TimelineEntry::new(
            eid(signal, "paged"),
            self.ports.clock().now(),
            EntryKind::Paged,
            match &event {
                Some(event) => format!(
                    "paged the {} topic ({}); told diagnose ({})",
                    inc.severity,
                    inc.severity.response(),
                    event.detail_type()
                ),
                None => format!(
                    "paged the {} topic ({}): flapping, held",
                    inc.severity,
                    inc.severity.response()
                ),
            },
        )
        .with_detail(detail::Paged {
            message_id: Some(message_id),
            subject: Some(message.subject.clone()),
            event: event.as_ref().map(|e| e.detail_type().to_string()),
        });
        self.ports.store().append(&inc.id, &[paged]).await?;
        Ok(())
    }

    async fn on_ok(&self, signal: &AlarmSignal, class: &Classification) -> Result<TriageOutcome, Error> {
        for attempt in 0..MAX_ATTEMPTS {
            let now = self.ports.clock().now();
            let Some(mut inc) = self
                .ports
                .store()
                .find_for_service(&class.service, self.settings.reopen_window(), now)
                .await?
            else {
                info!(service = %class.service, "recovery for a service with no incident");
                return Ok(TriageOutcome::NoIncident);
            };
            if !inc.alarms.contains_key(&signal.alarm_name) {
                info!(incident = %inc.id, "recovery of an alarm that is not part of the incident");
                return Ok(TriageOutcome::NoIncident);
            }
            if signal.changed_at < inc.detected_at {
                // an OK from before this incident began belongs to an earlier one (a retry or a
                // redrive arriving late): nothing to record here
                info!(incident = %inc.id, "recovery from before the incident began; not part of it");
                return Ok(TriageOutcome::NoIncident);
            }
            if is_stale(&inc, signal) || is_copy(&inc, signal) {
                let timeline = self.ports.store().timeline(&inc.id).await?;
                let mine = timeline
                    .iter()
                    .any(|e| e.event_id == eid(signal, "alarm-recovered"));
                match (mine, is_stale(&inc, signal)) {
                    // recorded by this delivery, and the alarm has changed since: nothing left
                    (true, true) => return Ok(TriageOutcome::Duplicate { id: inc.id }),
                    (false, true) => {
                        return self.record_stale(&inc, signal, EntryKind::AlarmRecovered).await;
                    }
                    // the same OK by the other channel: a note, not a second recovery
                    (false, false) => return self.record_copy(&inc, signal).await,
                    // this delivery's own retry goes on, finds its entry, finishes the handoff
                    (true, false) => {}
                }
            }
            let read = inc.clone();
            inc.set_alarm(
                &signal.alarm_name,
                AlarmState::Ok,
                signal.changed_at,
                &signal.reason,
            );
            let flap = inc.record_change(
                &signal.alarm_name,
                signal.changed_at,
                now,
                &self.settings.flapping,
            );
            let still = inc.alarms_firing().count();
            let entry = TimelineEntry::new(
                eid(signal, "alarm-recovered"),
                signal.changed_at,
                EntryKind::AlarmRecovered,
                format!(
                    "{} is OK ({still} alarm(s) still firing): {}",
                    signal.alarm_name, signal.reason
                ),
            );
            let mut entries = vec![entry];
            if flap == Flap::Started {
                entries.push(self.flapping_entry(&inc, signal));
            }
            match Update::from_read(self.ports.store(), read.clone())
                .save(&read, &mut inc, PointerChange::Keep, &entries)
                .await?
            {
                Saved::Saved => {}
                Saved::Conflict => {
                    if next(attempt).await {
                        continue;
                    }
                    break;
                }
                Saved::AlreadyRecorded(_) => {
                    // what the first attempt of this delivery left undone
                    let timeline = self.ports.store().timeline(&inc.id).await?;
                    let has = |step: &str| timeline.iter().any(|e| e.event_id == eid(signal, step));
                    if has("flapping") {
                        if !has("paged") {
                            self.page_flapping_on_ok(&inc, signal, class).await?;
                        }
                    } else if read.flapping_since.is_none() && !has("handoff") {
                        self.announce_recovery(&inc, signal).await?;
                    }
                    return Ok(TriageOutcome::Duplicate { id: inc.id });
                }
            }
            match flap {
                Flap::Started => self.page_flapping_on_ok(&inc, signal, class).await?,
                // held: resolve is told when the incident is stable again (the sweeper)
                Flap::Held => {}
                Flap::Steady | Flap::Ended => self.announce_recovery(&inc, signal).await?,
            }
            return Ok(TriageOutcome::Recovered { id: inc.id });
        }
        Err(Error::Store(StoreError::Conflict(IncidentId(
            class.service.clone(),
        ))))
    }

    /// The note that the incident is flapping now, on the change that made it so.
    fn flapping_entry(&self, inc: &Incident, signal: &AlarmSignal) -> TimelineEntry {
        let f = &self.settings.flapping;
        TimelineEntry::new(
            eid(signal, "flapping"),
            self.ports.clock().now(),
            EntryKind::Note,
            format!(
                "flapping: {} changed state {} times within {}; held: no pages and no automatic remediation \
                 until no state change for {} (every change stays on this timeline)",
                signal.alarm_name,
                inc.recent_changes(&signal.alarm_name),
                crate::report::metrics::human(f.window_s),
                crate::report::metrics::human(f.stable_s)
            ),
        )
    }

    async fn page_flapping_on_ok(
        &self,
        inc: &Incident,
        signal: &AlarmSignal,
        class: &Classification,
    ) -> Result<(), Error> {
        warn!(incident = %inc.id, alarm = %signal.alarm_name, "flapping: held");
        self.page_and_announce(inc, signal, class, Announce::Flapping)
            .await
    }

    /// Records a late signal on the timeline without letting it change any state.
    /// Another channel's copy of a state change the incident has (SNS and EventBridge both
    /// deliver it): one timeline entry, with the tags this copy carries; no page, no event.
    async fn record_copy(&self, inc: &Incident, signal: &AlarmSignal) -> Result<TriageOutcome, Error> {
        if self.noted_before(inc, signal).await? {
            return Ok(TriageOutcome::Duplicate { id: inc.id.clone() });
        }
        info!(incident = %inc.id, channel = ?signal.channel, "copy of a recorded state change");
        let tags: Vec<String> = signal.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let summary = format!(
            "{} {} from {} again via {}: a copy of a recorded state change{}",
            signal.alarm_name,
            signal.state,
            signal.changed_at.format("%H:%M:%S"),
            signal.channel.as_str(),
            if tags.is_empty() {
                String::new()
            } else {
                format!(" (tags {})", tags.join(", "))
            }
        );
        let entry = TimelineEntry::new(
            eid(signal, "copy"),
            self.ports.clock().now(),
            EntryKind::Note,
            summary,
        );
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(TriageOutcome::Duplicate { id: inc.id.clone() })
    }

    async fn record_stale(
        &self,
        inc: &Incident,
        signal: &AlarmSignal,
        kind: EntryKind,
    ) -> Result<TriageOutcome, Error> {
        // one note per delivery, whatever it was noted as first
        if self.noted_before(inc, signal).await? {
            return Ok(TriageOutcome::Duplicate { id: inc.id.clone() });
        }
        let newer = inc
            .alarms
            .get(&signal.alarm_name)
            .map(|a| (a.state, a.changed_at));
        warn!(incident = %inc.id, "signal older than the recorded state; ignored");
        let summary = match newer {
            Some((state, at)) => format!(
                "{} {} from {} arrived after its {} from {}: recorded, state unchanged",
                signal.alarm_name,
                signal.state,
                signal.changed_at.format("%H:%M:%S"),
                state,
                at.format("%H:%M:%S")
            ),
            None => format!(
                "{} {} from {} arrived after the incident was resolved: recorded, not reopened",
                signal.alarm_name,
                signal.state,
                signal.changed_at.format("%H:%M:%S")
            ),
        };
        let entry = TimelineEntry::new(eid(signal, "stale"), self.ports.clock().now(), kind, summary);
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(TriageOutcome::Stale { id: inc.id.clone() })
    }

    async fn announce_recovery(&self, inc: &Incident, signal: &AlarmSignal) -> Result<(), Error> {
        let event = Event::Recovered(AlarmRecovered {
            incident_id: inc.id.clone(),
            service: inc.service.clone(),
            alarm_name: signal.alarm_name.clone(),
            recovered_at: signal.changed_at,
        });
        self.ports.bus().put(&event.to_pipeline()).await?;
        let entry = TimelineEntry::new(
            eid(signal, "handoff"),
            self.ports.clock().now(),
            EntryKind::Handoff,
            "told resolve (Alarm Recovered)",
        );
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(())
    }

    async fn on_insufficient(
        &self,
        signal: &AlarmSignal,
        class: &Classification,
    ) -> Result<TriageOutcome, Error> {
        let now = self.ports.clock().now();
        let Some(inc) = self
            .ports
            .store()
            .find_for_service(&class.service, self.settings.reopen_window(), now)
            .await?
        else {
            info!(service = %class.service, "INSUFFICIENT_DATA with no incident: logged only");
            return Ok(TriageOutcome::Recorded { id: None });
        };
        let entry = TimelineEntry::new(
            eid(signal, "insufficient-data"),
            signal.changed_at,
            EntryKind::AlarmInsufficientData,
            format!(
                "{} has INSUFFICIENT_DATA (not paged): {}",
                signal.alarm_name, signal.reason
            ),
        );
        // Only the timeline changes: an alarm with missing data neither pages nor counts as
        // recovered, so the incident's alarm states stay as they were.
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(TriageOutcome::Recorded { id: Some(inc.id) })
    }
}

/// When the alarm's `severity` tag set a severity other than the policy's rules give: that the
/// tag changes paging only, and which severity remediation modes follow.
fn tag_note(class: &Classification) -> Option<String> {
    (class.rule.as_deref() == Some(crate::policy::TAG_RULE) && class.severity != class.policy_severity).then(
        || {
            format!(
                "the severity tag changes paging only: remediation modes follow {} (rule {})",
                class.policy_severity, class.policy_rule
            )
        },
    )
}

/// True when the incident knows a later state change of the signal's alarm. An alarm the
/// incident never had is news however late it arrives: an ALARM from before the resolution that
/// nobody saw reopens the incident and is paged.
fn is_stale(inc: &Incident, signal: &AlarmSignal) -> bool {
    inc.alarms
        .get(&signal.alarm_name)
        .is_some_and(|a| a.changed_at > signal.changed_at)
}

/// True when the incident already has this very state change of the alarm (the same state at the
/// same time): the copy another channel delivered.
fn is_copy(inc: &Incident, signal: &AlarmSignal) -> bool {
    inc.alarms
        .get(&signal.alarm_name)
        .is_some_and(|a| a.changed_at == signal.changed_at && a.state == signal.state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announce {
    Opened,
    Reopened,
    Escalated,
    /// The incident started flapping: paged once, nobody else is told.
    Flapping,
}

/// The page: short enough for a phone lock screen, complete enough to act on.
fn page_message(
    inc: &Incident,
    signal: &AlarmSignal,
    announce: Announce,
    settings: &Settings,
) -> Notification {
    let verb = match announce {
        Announce::Opened => "opened",
        Announce::Reopened => "REOPENED",
        Announce::Escalated => "ESCALATED",
        Announce::Flapping => "FLAPPING",
    };
    // the alarm's words are inert: no mentions, no control characters (chat renders this text)
    let subject = format!(
        "[{}] {} {}: {}",
        inc.severity,
        plain_line(&inc.service),
        verb,
        plain_line(&signal.alarm_name)
    );
    let mode = match &inc.ecs {
        Some(_) => format!(
            "remediation mode {} unless configured otherwise per action",
            settings.remediation.mode
        ),
        None => "no ECS service is known, so nothing will be changed automatically".to_string(),
    };
    if announce == Announce::Flapping {
        let f = &settings.flapping;
        let body = format!(
            "{sev} {label} incident {id} for {service} is FLAPPING: {alarm} changed state {n} times within {window} \
             (latest: {state} at {at} UTC).\n\
             Firebreak holds it: no further pages and no automatic remediation until no state change for {stable}; \
             then it resolves the incident if every alarm is OK, or pages once and resumes diagnosis and remediation. \
             Every change stays on the timeline.\n\
             Response: {response}\n\
             Acknowledge: firebreak ack {id}",
            sev = inc.severity,
            label = inc.severity.label(),
            id = inc.id,
            service = plain_line(&inc.service),
            n = inc.recent_changes(&signal.alarm_name),
            window = crate::report::metrics::human(f.window_s),
            alarm = plain_line(&signal.alarm_name),
            state = signal.state,
            at = signal.changed_at.format("%Y-%m-%d %H:%M:%S"),
            stable = crate::report::metrics::human(f.stable_s),
            response = inc.severity.response(),
        );
        let mut attributes = BTreeMap::new();
        attributes.insert("severity".to_string(), inc.severity.to_string());
        attributes.insert("service".to_string(), inc.service.clone());
        attributes.insert("kind".to_string(), "flapping".to_string());
        attributes.insert("incident".to_string(), inc.id.to_string());
        return Notification {
            subject,
            body,
            attributes,
            facts: page_facts(inc, signal, PageEvent::Flapping)
                .next(format!("Acknowledge: firebreak ack {}", inc.id))
                .next("Look at the alarm's threshold and period: an alarm that flaps pages nobody usefully"),
        };
    }
    let body = format!(
        "{sev} {label} incident {verb} for {service}\n\
         Alarm: {alarm} is ALARM since {at} UTC\n\
         Reason: {reason}\n\
         Incident: {id}\n\
         Response: {response}\n\
         Next: Firebreak runs the runbook's diagnostic queries and posts the findings to this incident's timeline; {mode}.\n\
         Acknowledge: firebreak ack {id}",
        sev = inc.severity,
        label = inc.severity.label(),
        service = plain_line(&inc.service),
        alarm = plain_line(&signal.alarm_name),
        at = signal.changed_at.format("%Y-%m-%d %H:%M:%S"),
        reason = plain_line(&signal.reason),
        id = inc.id,
        response = inc.severity.response(),
    );
    let mut attributes = BTreeMap::new();
    attributes.insert("severity".to_string(), inc.severity.to_string());
    attributes.insert("service".to_string(), inc.service.clone());
    attributes.insert("kind".to_string(), verb.to_ascii_lowercase());
    attributes.insert("incident".to_string(), inc.id.to_string());
    let event = match announce {
        Announce::Opened => PageEvent::Opened,
        Announce::Reopened => PageEvent::Reopened,
        Announce::Escalated | Announce::Flapping => PageEvent::Escalated,
    };
    Notification {
        subject,
        body,
        attributes,
        facts: page_facts(inc, signal, event)
            .next(format!("Acknowledge: firebreak ack {}", inc.id))
            .next("Firebreak runs the runbook's diagnosis now; its findings follow in this thread"),
    }
}

/// The incident's facts, with the alarm that paged first among the alarms and its ARN.
fn page_facts(inc: &Incident, signal: &AlarmSignal, event: PageEvent) -> PageFacts {
    let mut f = PageFacts::of(inc, event);
    f.alarms.retain(|a| a != &signal.alarm_name);
    f.alarms.insert(0, signal.alarm_name.clone());
    f.alarm_arns = signal.alarm_arn.iter().cloned().collect();
    f
}
