//! The resolve use-case, run on "Alarm Recovered": when every alarm of the incident is OK the
//! incident is resolved (stage times, EMF metrics, postmortem draft, a summary to the severity's
//! topic, "Incident Resolved" on the bus); when a remediation was applied but some alarm still
//! fires it is mitigated; otherwise it stays open with a note. Also the manual resolution behind
//! `firebreak resolve ID`.
//!
//! Idempotent on redelivery: every entry has a deterministic event id
//! `<incident>/resolve/<reopened>/<step>`, the resolution is one conditional save, and the
//! notification is sent until the `notified` entry records it (at least once, guarded by a short
//! lease against a concurrent delivery).

use crate::model::autonomy::{AutonomyKey, Mark, Verdict};
use crate::model::entry_id::EntryId;
use crate::model::incident::Outcome;
use crate::model::incident::{Incident, IncidentId, IncidentStatus};
use crate::model::pipeline::{AlarmRecovered, Event, IncidentResolved};
use crate::model::settings::Settings;
use crate::model::signal::AlarmState;
use crate::model::text::{plain, plain_line};
use crate::model::timeline::Detail;
use crate::model::timeline::{detail, sort_entries, EntryKind, TimelineEntry};
use crate::ports::bundle::*;
use crate::ports::update::{Saved, Update};
use crate::ports::{
    AlarmStatus, Clock, EventBus, IncidentStore, Notification, Notifier, PointerChange, Route,
};
use crate::ports::{ServiceControl, ServiceState};
use crate::report::metrics::{emf_lines, human_opt, StageTimes};
use crate::report::postmortem;
use crate::runbook::Runbook;
use crate::stages::boundary::refusal_entry;
use crate::stages::closed_loop::{self, people_changes, score, OwnChange, Proposal, Scored};
use crate::stages::manage::validate_person;
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::io::Write as _;

/// How long a delivery holds the right to send the resolution summary before another may.
const NOTIFY_LEASE_S: i64 = 60;
/// How far in the future an event's time may be (clocks differ a little), in seconds.
pub const MAX_CLOCK_SKEW_S: i64 = 300;

/// The resolve stage, over its ports.
pub struct Resolve<'a, P: ResolvePorts> {
    pub ports: P,
    pub runbooks: &'a [Runbook],
    pub settings: &'a Settings,
    /// The CloudWatch namespace of the EMF metrics (`Firebreak`).
    pub metrics_namespace: &'a str,
    /// Write the EMF lines to stdout (true in the Lambda function, where CloudWatch Logs extracts
    /// them; false in drills and the CLI, whose stdout is their own output). The lines are returned
    /// in [`Resolution::emf`] either way.
    pub emf_to_stdout: bool,
}

/// A resolution this call carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The incident as saved.
    pub incident: Incident,
    pub times: StageTimes,
    /// The EMF documents (written to stdout when `emf_to_stdout`).
    pub emf: Vec<String>,
    pub postmortem: String,
    /// Resolved by hand, not by the alarms.
    pub manual: bool,
    /// The resolution summary went out in this call.
    pub notified: bool,
}

/// Who closes an incident: its alarms' recovery (one delivery of it), or a person by hand.
#[derive(Clone, Copy)]
enum Closer<'x> {
    Alarms(&'x AlarmRecovered),
    Hand(&'x str),
}

impl<'x> Closer<'x> {
    fn manual_by(self) -> Option<&'x str> {
        match self {
            Closer::Alarms(_) => None,
            Closer::Hand(by) => Some(by),
        }
    }

    /// The summary lease's owner: the delivery, by what it carries, so its retries are it.
    fn owner(self) -> String {
        match self {
            Closer::Alarms(r) => format!("recovered/{}/{}", r.alarm_name, r.recovered_at.timestamp_millis()),
            Closer::Hand(by) => format!("manual/{by}"),
        }
    }
}

/// What `on_recovered` or `resolve_manually` did.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveOutcome {
    Resolved(Box<Resolution>),
    /// It was resolved before (a redelivery). `notified` is true when this call sent the summary a
    /// previous delivery had not managed to send.
    AlreadyResolved {
        notified: bool,
    },
    /// A remediation was applied and some alarms still fire.
    Mitigated {
        still_firing: Vec<String>,
    },
    /// No remediation was applied and some alarms still fire.
    StillOpen {
        still_firing: Vec<String>,
    },
    /// The recovery was not taken as true (see the reason); nothing changed but a `refused` entry.
    Refused {
        reason: String,
    },
}

impl<P: ResolvePorts> Resolve<'_, P> {
    /// Resolves the incident by hand (`firebreak resolve ID`) at `now`, even when alarms still fire;
    /// the timeline entry and the postmortem say so. `by` is recorded in the entry's detail only.
    ///
    /// # Errors
    /// As [`Resolve::on_recovered`], and [`Error::Invalid`] for a bad name.
    pub async fn resolve_manually(
        &self,
        id: &IncidentId,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ResolveOutcome, Error> {
        let by = validate_person(by)?;
        let mut up = Update::new(self.ports.store(), id);
        loop {
            let read = up.read().await?;
            let inc = read.clone();
            if inc.status == IncidentStatus::Resolved {
                let notified = self
                    .complete_notification(&inc, &Closer::Hand(by).owner())
                    .await?;
                return Ok(ResolveOutcome::AlreadyResolved { notified });
            }
            let not_ok: Vec<&str> = inc
                .alarms
                .iter()
                .filter(|(_, a)| a.state != AlarmState::Ok)
                .map(|(n, _)| n.as_str())
                .collect();
            let summary = if not_ok.is_empty() {
                "Resolved by hand (firebreak resolve)".to_string()
            } else {
                format!(
                    "Resolved by hand (firebreak resolve) while not OK: {}",
                    not_ok.join(", ")
                )
            };
            if let Some(res) = self
                .resolve_at(
                    &mut up,
                    &read,
                    inc,
                    Closing {
                        at: now,
                        summary,
                        closer: Closer::Hand(by),
                        scored: Vec::new(),
                    },
                )
                .await?
            {
                return Ok(ResolveOutcome::Resolved(Box::new(res)));
            }
        }
    }

    /// Acknowledges the page (see [`crate::stages::manage::acknowledge`]) at the clock's time.
    ///
    /// # Errors
    /// As [`crate::stages::manage::acknowledge`].
    pub async fn acknowledge(
        &self,
        id: &IncidentId,
        by: &str,
    ) -> Result<crate::stages::manage::AckOutcome, Error> {
        crate::stages::manage::acknowledge(self.ports.store(), id, by, self.ports.clock().now()).await
    }

    /// Adds a note (see [`crate::stages::manage::add_note`]) at the clock's time.
    ///
    /// # Errors
    /// As [`crate::stages::manage::add_note`].
    pub async fn add_note(
        &self,
        id: &IncidentId,
        by: &str,
        text: &str,
    ) -> Result<(TimelineEntry, bool), Error> {
        crate::stages::manage::add_note(self.ports.store(), id, by, text, self.ports.clock().now()).await
    }

    /// The runbook the diagnosis used, when it is one of ours.
    pub fn runbook_for(&self, inc: &Incident) -> Option<&Runbook> {
        let id = inc.runbook.as_deref()?;
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// Saves `inc` as resolved as `closing` says, with its postmortem and the proposals'
    /// verdicts, then emits the metrics and the summary. `None` when the save lost a race
    /// (re-read and try again).
    async fn resolve_at(
        &self,
        up: &mut Update<'_, P::Store>,
        read: &Incident,
        mut inc: Incident,
        closing: Closing<'_>,
    ) -> Result<Option<Resolution>, Error> {
        let Closing {
            at,
            summary,
            closer,
            scored,
        } = closing;
        let (manual_by, owner) = (closer.manual_by(), closer.owner());
        let base = base_id(&inc);
        inc.resolve(at);
        let times = StageTimes::of(&inc);
        let anomalies = StageTimes::anomalies(&inc);
        let detail = detail::Resolved {
            manual: manual_by.is_some(),
            by: manual_by.map(str::to_string),
            stage_times: times,
            alarms: inc
                .alarms
                .iter()
                .map(|(n, a)| (n.clone(), a.state.as_str().to_string()))
                .collect(),
            anomalies: anomalies.clone(),
        };
        let resolved =
            TimelineEntry::new(base.step("resolved"), at, EntryKind::Resolved, summary).with_detail(detail);
        let mut timeline = self.ports.store().timeline(&inc.id).await?;
        timeline.push(resolved.clone());
        timeline.extend(scored.iter().map(|s| s.entry.clone()));
        sort_entries(&mut timeline);
        let md = postmortem::draft(&inc, &timeline, self.runbook_for(&inc));
        // The draft goes in its own item, before the resolution that it describes is saved: a
        // save that loses a race is drafted again and replaces it. The incident item stays
        // small whatever the timeline holds.
        self.ports.store().put_postmortem(&inc.id, &md).await?;
        inc.postmortem = None;
        let drafted = TimelineEntry::new(
            base.step("postmortem-drafted"),
            self.ports.clock().now().max(at),
            EntryKind::PostmortemDrafted,
            format!(
                "Postmortem draft stored with the incident (firebreak postmortem {})",
                inc.id
            ),
        );
        // Each verdict counts on its (runbook, cause, action) record before the resolution that
        // carries it is saved: counting is once per outcome id whatever the retries, and a save
        // followed by a failure would leave a redelivery (already resolved) nothing to count.
        for s in &scored {
            if let Some((key, mark, lead)) = &s.counts {
                closed_loop::count_outcome(
                    self.ports.store(),
                    key,
                    &s.entry.event_id,
                    *mark,
                    *lead,
                    at,
                    &self.settings.remediation.earned,
                )
                .await?;
            }
        }
        let mut entries: Vec<TimelineEntry> = scored.into_iter().map(|s| s.entry).collect();
        entries.extend([resolved, drafted]);
        match up.save(read, &mut inc, PointerChange::Release, &entries).await? {
            Saved::Saved => {}
            // another delivery resolved it meanwhile: the next read sees that
            Saved::Conflict | Saved::AlreadyRecorded(_) => return Ok(None),
        }
        let emf = emf_lines(&inc, &times, self.metrics_namespace);
        if self.emf_to_stdout {
            write_emf(&emf);
        }
        tracing::info!(
            incident = %inc.id,
            severity = %inc.severity,
            service = %inc.service,
            time_to_resolve_s = ?times.time_to_resolve_s,
            manual = manual_by.is_some(),
            "resolved"
        );
        for a in &anomalies {
            tracing::warn!(incident = %inc.id, stage = a.stage, reason = %a.reason, "stage time left out");
        }
        let notified = self.complete_notification(&inc, &owner).await?;
        Ok(Some(Resolution {
            incident: inc,
            times,
            emf,
            postmortem: md,
            manual: manual_by.is_some(),
            notified,
        }))
    }

    /// Sends the resolution summary and puts "Incident Resolved" unless the `notified` entry
    /// shows a delivery did so already, then records that entry. Returns whether it sent.
    ///
    /// The summary's lease belongs to `owner` (the delivery, named by what it carries, so its
    /// retries take the lease again). When another delivery holds it, that delivery is sending
    /// the summary and has its own retries and failure queue: this one has nothing to do, which
    /// is success, not an error (two alarms recovering together must not fail one of them).
    async fn complete_notification(&self, inc: &Incident, owner: &str) -> Result<bool, Error> {
        let base = base_id(inc);
        let marker = base.step("notified");
        let timeline = self.ports.store().timeline(&inc.id).await?;
        if timeline.iter().any(|e| e.event_id == marker) {
            return Ok(false);
        }
        let now = self.ports.clock().now();
        let lease_until = now + chrono::Duration::seconds(NOTIFY_LEASE_S);
        if !self
            .ports
            .store()
            .claim(&base.step("notify"), owner, lease_until, now)
            .await?
        {
            tracing::info!(incident = %inc.id, "another delivery holds the summary's lease and sends it");
            return Ok(false);
        }
        let times = StageTimes::of(inc);
        let manual = postmortem::resolved_manually(&timeline);
        let message = summary_notification(inc, &times, manual);
        // the event first: put again by a retry, it is harmless; the summary is not
        let event = Event::Resolved(IncidentResolved {
            incident_id: inc.id.clone(),
            service: inc.service.clone(),
            severity: inc.severity,
            time_to_resolve_s: times.time_to_resolve_s,
        });
        self.ports.bus().put(&event.to_pipeline()).await?;
        let message_id = self
            .ports
            .notifier()
            .notify(Route::Severity(inc.severity), &message)
            .await?;
        let entry = TimelineEntry::new(
            marker,
            now.max(inc.resolved_at.unwrap_or(now)),
            EntryKind::Note,
            format!("Resolution summary sent to the {} topic", inc.severity),
        )
        .with_detail(detail::Note {
            message_id: Some(message_id),
            ..detail::Note::default()
        });
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(true)
    }
}

impl<P: ResolvePorts + HasAlarms + HasEcs> Resolve<'_, P> {
    /// Handles "Alarm Recovered".
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown incident; store, notifier and bus failures (retryable
    /// ones should be retried by redelivery, which is safe); [`StoreError::Conflict`] when the
    /// incident kept changing for every attempt.
    #[tracing::instrument(skip(self), fields(incident = %r.incident_id, alarm = %r.alarm_name))]
    pub async fn on_recovered(&self, r: &AlarmRecovered) -> Result<ResolveOutcome, Error> {
        let mut up = Update::new(self.ports.store(), &r.incident_id);
        let mut live = None;
        let mut service = None;
        loop {
            let read = up.read().await?;
            let mut inc = read.clone();
            if inc.status == IncidentStatus::Resolved {
                let notified = self
                    .complete_notification(&inc, &Closer::Alarms(r).owner())
                    .await?;
                return Ok(ResolveOutcome::AlreadyResolved { notified });
            }
            // Ground truth: what CloudWatch reports now, never the event's word alone.
            let live = match &live {
                Some(l) => l,
                None => {
                    let names: Vec<String> = inc.alarms.keys().cloned().collect();
                    live.insert(self.ports.alarms().states(&names).await.map_err(Error::Port)?)
                }
            };
            if let Some(reason) = self.refuse_recovery(&inc, r, live) {
                return self.refused(&inc, r, reason).await;
            }
            // the event is newer news than a stored ALARM older than it
            if let Some(a) = inc.alarms.get_mut(&r.alarm_name) {
                if a.state != AlarmState::Ok && a.changed_at <= r.recovered_at {
                    a.state = AlarmState::Ok;
                    a.changed_at = r.recovered_at;
                }
            }
            // closed only when CloudWatch reports every attached alarm OK (unknown is not OK)
            if !inc.alarms.is_empty() && inc.alarms.keys().all(|n| live.get(n) == Some(&AlarmState::Ok)) {
                let last_ok = inc.alarms.values().map(|a| a.changed_at).max();
                let at = last_ok.map_or(r.recovered_at, |t| t.max(r.recovered_at));
                let summary = format!(
                    "All {} alarm(s) OK (last: {} at {}); resolved",
                    inc.alarms.len(),
                    r.alarm_name,
                    r.recovered_at.format("%H:%M:%S")
                );
                let scored = self.score_proposals(&inc, at, &mut service).await?;
                match self
                    .resolve_at(
                        &mut up,
                        &read,
                        inc,
                        Closing {
                            at,
                            summary,
                            closer: Closer::Alarms(r),
                            scored,
                        },
                    )
                    .await?
                {
                    Some(res) => return Ok(ResolveOutcome::Resolved(Box::new(res))),
                    None => continue,
                }
            }
            let still_firing: Vec<String> = inc
                .alarms
                .keys()
                .filter(|n| live.get(*n) != Some(&AlarmState::Ok))
                .cloned()
                .collect();
            let base = base_id(&inc);
            let ok = inc.alarms.len() - still_firing.len();
            let note = TimelineEntry::new(
                base.step(format!(
                    "partial/{}/{}",
                    r.alarm_name,
                    r.recovered_at.timestamp_millis()
                )),
                r.recovered_at,
                EntryKind::Note,
                format!(
                    "{} recovered; {ok} of {} alarm(s) OK, still not OK: {}",
                    r.alarm_name,
                    inc.alarms.len(),
                    if still_firing.is_empty() {
                        "none".to_string()
                    } else {
                        still_firing.join(", ")
                    }
                ),
            )
            .with_detail(detail::Note {
                still_firing: Some(still_firing.iter().map(ToString::to_string).collect()),
                ..detail::Note::default()
            });
            if inc.remediation_applied() && (inc.status == IncidentStatus::Open || inc.mitigated_at.is_none())
            {
                let applied = inc.remediations.iter().find(|x| x.outcome == Outcome::Applied);
                let mitigated_at = inc
                    .mitigated_at
                    .or(applied.map(|x| x.at))
                    .unwrap_or(r.recovered_at);
                let action = applied.map_or_else(String::new, |x| x.action.to_string());
                inc.mitigate(mitigated_at);
                let entry = TimelineEntry::new(
                    base.step("mitigated"),
                    mitigated_at,
                    EntryKind::Mitigated,
                    format!("Mitigated by {action}; not every alarm has recovered yet"),
                );
                match up
                    .save(&read, &mut inc, PointerChange::Keep, &[entry, note.clone()])
                    .await?
                {
                    Saved::Saved | Saved::AlreadyRecorded(_) => {}
                    Saved::Conflict => continue,
                }
            } else {
                self.ports.store().append(&inc.id, &[note]).await?;
            }
            return Ok(if inc.status == IncidentStatus::Mitigated {
                ResolveOutcome::Mitigated { still_firing }
            } else {
                ResolveOutcome::StillOpen { still_firing }
            });
        }
    }

    /// Why this recovery cannot be taken as true, if it cannot: a recovery time in the future (by
    /// more than [`MAX_CLOCK_SKEW_S`]) or before the alarm last changed to ALARM, an alarm the
    /// incident does not have, or CloudWatch reporting the alarm as anything but OK (or not at all).
    fn refuse_recovery(
        &self,
        inc: &Incident,
        r: &AlarmRecovered,
        live: &BTreeMap<String, AlarmState>,
    ) -> Option<String> {
        let now = self.ports.clock().now();
        if r.recovered_at > now + chrono::Duration::seconds(MAX_CLOCK_SKEW_S) {
            return Some(format!(
                "the recovery time {} is in the future (now {})",
                r.recovered_at.to_rfc3339(),
                now.to_rfc3339()
            ));
        }
        let Some(attached) = inc.alarms.get(&r.alarm_name) else {
            return Some(format!("{} is not one of the incident's alarms", r.alarm_name));
        };
        if attached.state == AlarmState::Alarm && r.recovered_at < attached.changed_at {
            return Some(format!(
                "the recovery time {} is before {} last went into ALARM ({})",
                r.recovered_at.to_rfc3339(),
                r.alarm_name,
                attached.changed_at.to_rfc3339()
            ));
        }
        match live.get(&r.alarm_name) {
            Some(AlarmState::Ok) => None,
            Some(state) => Some(format!("CloudWatch reports {} as {state}, not OK", r.alarm_name)),
            None => Some(format!("CloudWatch does not know {}", r.alarm_name)),
        }
    }

    /// Records a refused recovery on the timeline (once per event) and changes nothing else.
    async fn refused(
        &self,
        inc: &Incident,
        r: &AlarmRecovered,
        reason: String,
    ) -> Result<ResolveOutcome, Error> {
        tracing::warn!(incident = %inc.id, alarm = %r.alarm_name, reason = %reason, "recovery refused");
        let key = format!(
            "recovered\u{0}{}\u{0}{}",
            r.alarm_name,
            r.recovered_at.to_rfc3339()
        );
        let entry = refusal_entry(
            &inc.id,
            self.ports.clock(),
            "Alarm Recovered",
            Some(r.alarm_name.clone()),
            &reason,
            &key,
        );
        self.ports.store().append(&inc.id, &[entry]).await?;
        Ok(ResolveOutcome::Refused { reason })
    }
}

/// `<incident>/resolve/<reopened>`: one resolution per open→resolved cycle.
/// The ids of one resolution cycle's entries (and of its notification lease).
struct ResolutionIds {
    incident: crate::model::incident::IncidentId,
    cycle: u32,
}

/// How an incident is closed: when, the timeline's words, by whom, and the verdicts saved with it.
struct Closing<'x> {
    at: DateTime<Utc>,
    summary: String,
    closer: Closer<'x>,
    scored: Vec<Scoring>,
}

/// A proposal's verdict, ready to save with the resolution, and what it counts.
pub(crate) struct Scoring {
    entry: TimelineEntry,
    counts: Option<(AutonomyKey, Mark, Option<i64>)>,
}

impl<P: ResolvePorts + HasAlarms + HasEcs> Resolve<'_, P> {
    /// Scores every proposal of this cycle not scored yet (dry-run, awaiting approval, applied)
    /// against what people did to the service between the proposal and `recovered_at`, as ECS
    /// shows it now. The service is read once per delivery (`service` keeps it across retries
    /// of the save). A retryable ECS error fails the delivery (its retry scores); any other is
    /// noted and the incident resolves unscored, rather than staying open.
    async fn score_proposals(
        &self,
        inc: &Incident,
        recovered_at: DateTime<Utc>,
        service: &mut Option<Result<ServiceState, String>>,
    ) -> Result<Vec<Scoring>, Error> {
        let Some(svc) = &inc.ecs else {
            return Ok(Vec::new());
        };
        let timeline = self.ports.store().timeline(&inc.id).await?;
        let cycle = inc.reopened;
        let remediation = |e: &TimelineEntry| match EntryId::parse(&e.event_id) {
            Some(EntryId::Remediation {
                incident,
                cycle: c,
                cause,
                action,
                phase,
            }) if incident == inc.id => Some((c, cause, action, phase)),
            _ => None,
        };
        let own: Vec<OwnChange> = timeline
            .iter()
            .filter_map(|e| match e.detail() {
                Detail::RemediationApplied(d) => Some(OwnChange {
                    at: d.applied_at,
                    update: d.update.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        for e in &timeline {
            let Some((c, cause, key, phase)) = remediation(e) else {
                continue;
            };
            if c != cycle {
                continue;
            }
            let (record, before, update, runbook, applied) = match e.detail() {
                Detail::RemediationDryRun(d) => (&d.record, &d.before, &d.update, &d.runbook, false),
                Detail::ApprovalRequested(d) => (&d.record, &d.before, &d.update, &d.runbook, false),
                Detail::RemediationApplied(d) => (&d.record, &d.before, &d.update, &d.runbook, true),
                _ => continue,
            };
            let id = crate::stages::remediate::event_id(&inc.id, c, &cause, &key, &format!("shadow-{phase}"));
            if timeline.iter().any(|x| x.event_id == id) {
                continue;
            }
            let phase_of = |p: &str| crate::stages::remediate::event_id(&inc.id, c, &cause, &key, p);
            // the remediation request: the first step's `requested`, else this entry
            let proposed_at = timeline
                .iter()
                .find(|x| x.event_id == phase_of("requested"))
                .map_or(e.at, |x| x.at.min(e.at));
            // an approval that carried this proposal out: people chose this very action
            let approved = (record.outcome == Outcome::AwaitingApproval)
                .then(|| timeline.iter().find(|x| x.event_id == phase_of("approved")))
                .flatten()
                .filter(|_| timeline.iter().any(|x| x.event_id == phase_of("applied")))
                .map(|x| (x.at, x.detail().by().unwrap_or("a person").to_string()));
            let state = match service {
                Some(s) => s,
                None => service.insert(match self.ports.ecs().describe(svc).await {
                    Ok(s) => Ok(s),
                    Err(e) if e.retryable => return Err(e.into()),
                    Err(e) => Err(e.to_string()),
                }),
            };
            let state = match state {
                Ok(s) => s,
                Err(why) => {
                    out.push(Scoring {
                        entry: TimelineEntry::new(
                            id,
                            recovered_at,
                            EntryKind::Note,
                            format!(
                                "{} was not scored: could not read {svc} from ECS: {why}",
                                record.action
                            ),
                        ),
                        counts: None,
                    });
                    continue;
                }
            };
            let changes = people_changes(state, before, proposed_at, recovered_at, &own);
            let p = Proposal {
                action: record.action.as_str(),
                at: proposed_at,
                applied,
                before,
                update,
            };
            let scored = score(&p, &changes, approved.as_ref().map(|(t, by)| (*t, by.as_str())));
            let summary = shadow_summary(record, &scored, recovered_at);
            let counts = match (runbook, scored.verdict) {
                (Some(rb), Some(v)) => Some((
                    AutonomyKey::new(rb, &cause, record.action.as_str()),
                    v.into(),
                    scored.lead_s,
                )),
                _ => None,
            };
            out.push(Scoring {
                entry: TimelineEntry::new(id, recovered_at, EntryKind::ShadowScored, summary).with_detail(
                    detail::ShadowDetail {
                        proposal: record.clone(),
                        verdict: scored.verdict,
                        people_action: scored.people_action,
                        lead_s: scored.lead_s,
                        proposed_at,
                        recovered_at,
                        cause: cause.clone(),
                        runbook: runbook.clone(),
                    },
                ),
                counts,
            });
        }
        Ok(out)
    }
}

/// One line for a verdict: `dry-run ecs-scale-out: matched (people scaled out to 6 tasks (from
/// 4) at 14:47; 11m after the proposal, the time Firebreak would have saved)`.
fn shadow_summary(
    record: &crate::model::incident::RemediationRecord,
    s: &Scored,
    recovered_at: DateTime<Utc>,
) -> String {
    let what = format!("{} {}", record.outcome, record.action);
    match s.verdict {
        Some(Verdict::Matched) => format!(
            "{what}: matched ({}{})",
            s.people_action.as_deref().unwrap_or("people did the same"),
            s.lead_s.map_or_else(String::new, |l| format!(
                "; {} after the proposal, the time Firebreak would have saved",
                human_opt(Some(l))
            ))
        ),
        Some(Verdict::Different) => format!(
            "{what}: different (people {} instead, and it recovered at {})",
            s.people_action.as_deref().unwrap_or("did something else"),
            recovered_at.format("%H:%M")
        ),
        Some(Verdict::Unneeded) => format!(
            "{what}: unneeded (nobody changed the service, and it recovered at {})",
            recovered_at.format("%H:%M")
        ),
        Some(Verdict::Contradicted) => format!(
            "{what}: contradicted (people {})",
            s.people_action.as_deref().unwrap_or("did the opposite")
        ),
        None => format!(
            "{what}: not undone by people{}; its verification says whether it worked",
            s.people_action
                .as_deref()
                .map_or_else(String::new, |p| format!(" ({p})"))
        ),
    }
}

impl ResolutionIds {
    fn step(&self, step: impl Into<String>) -> String {
        EntryId::Resolution {
            incident: self.incident.clone(),
            cycle: self.cycle,
            step: step.into(),
        }
        .text()
    }
}

fn base_id(inc: &Incident) -> ResolutionIds {
    ResolutionIds {
        incident: inc.id.clone(),
        cycle: inc.reopened,
    }
}

/// Writes EMF documents to stdout, one per line: in Lambda each becomes one log event that
/// CloudWatch Logs turns into metrics. A failed write is logged, not fatal.
fn write_emf(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        if let Err(e) = writeln!(out, "{l}") {
            tracing::warn!(error = %e, "could not write EMF metrics to stdout");
        }
    }
    let _ = out.flush();
}

/// The resolution summary a person reads.
pub fn summary_notification(inc: &Incident, t: &StageTimes, manual: bool) -> Notification {
    let subject = format!(
        "[{}] RESOLVED {}: {}",
        inc.severity,
        inc.service,
        inc.title.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let how = if manual {
        let firing: Vec<&str> = inc.alarms_firing().collect();
        if firing.is_empty() {
            "by hand".to_string()
        } else {
            format!("by hand; still in ALARM: {}", firing.join(", "))
        }
    } else {
        "all alarms OK".to_string()
    };
    let remediation = inc
        .remediations
        .iter()
        .find(|r| r.outcome == Outcome::Applied)
        .map_or_else(
            || match inc.remediations.last() {
                Some(r) => format!("none applied (last: {} {}: {})", r.action, r.outcome, r.detail),
                None => "none".to_string(),
            },
            |r| format!("{} applied ({})", r.action, r.detail),
        );
    let body = format!(
        "Incident {id} on {svc} ({sev}) is resolved at {at} ({how}).\n\n\
         Time to detect: {d}\nTime to diagnose: {g}\nTime to mitigate: {m}\nTime to resolve (MTTR): {r}\n\n\
         Cause: {cause}\nRemediation: {remediation}\n\n\
         Postmortem draft: firebreak postmortem {id}\n",
        id = inc.id,
        svc = inc.service,
        sev = inc.severity,
        at = inc.resolved_at.map_or_else(
            || "-".to_string(),
            |r| r.format("%Y-%m-%d %H:%M:%S UTC").to_string()
        ),
        d = human_opt(t.time_to_detect_s),
        g = human_opt(t.time_to_diagnose_s),
        m = human_opt(t.time_to_mitigate_s),
        r = human_opt(t.time_to_resolve_s),
        cause = inc.cause.as_deref().unwrap_or("not identified"),
    );
    let attributes = BTreeMap::from([
        ("severity".to_string(), inc.severity.as_str().to_string()),
        ("service".to_string(), inc.service.clone()),
        ("kind".to_string(), "resolved".to_string()),
        ("incident".to_string(), inc.id.to_string()),
    ]);
    // the incident's title and service come from the alarm: inert (no mentions, no controls)
    Notification {
        subject: plain_line(&subject),
        body: plain(&body),
        attributes,
        facts: crate::ports::PageFacts::of(inc, crate::ports::PageEvent::Resolved)
            .next(format!("Postmortem draft: firebreak postmortem {}", inc.id))
            .next("Review it blamelessly within the week: what happened, why, what changes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{
        FaultyStore, InMemoryAlarmStatus, InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier,
        InMemoryServiceControl, SimClock,
    };
    use crate::model::incident::{AttachedAlarm, RemediationRecord};
    use crate::ports::retry::CONFLICT_ATTEMPTS;
    use crate::ports::{detail_types, StoreError};
    use crate::report::metrics::tests::{at, incident};
    use crate::report::postmortem::tests::runbook;
    use std::time::Duration;

    struct World {
        store: InMemoryIncidentStore,
        notifier: InMemoryNotifier,
        bus: InMemoryEventBus,
        clock: SimClock,
        /// What CloudWatch reports: `open` seeds it from the incident, `recovered` makes the
        /// named alarm OK in it (a real recovery).
        alarms: InMemoryAlarmStatus,
        ecs: InMemoryServiceControl,
        runbooks: Vec<Runbook>,
        settings: Settings,
    }

    impl World {
        /// The recovery of `alarm`, true in CloudWatch.
        fn recovered(&self, alarm: &str) -> AlarmRecovered {
            self.alarms.set(alarm, AlarmState::Ok);
            recovered(alarm)
        }
        fn new() -> World {
            World {
                store: InMemoryIncidentStore::new(),
                notifier: InMemoryNotifier::new(),
                bus: InMemoryEventBus::new(),
                clock: SimClock::new(at(15, 0, 5)),
                alarms: InMemoryAlarmStatus::new(),
                ecs: InMemoryServiceControl::new(),
                runbooks: vec![runbook()],
                settings: Settings::default(),
            }
        }
        fn resolve(&self) -> Resolve<'_, impl ResolvePorts + HasAlarms + HasEcs + '_> {
            self.resolve_over(&self.store)
        }

        /// The use-case over this world, with `store` for its store.
        fn resolve_over<'a, St: IncidentStore>(
            &'a self,
            store: &'a St,
        ) -> Resolve<'a, impl ResolvePorts + HasAlarms + HasEcs + 'a> {
            Resolve {
                ports: Wired::new()
                    .store(store)
                    .notifier(&self.notifier)
                    .bus(&self.bus)
                    .clock(&self.clock)
                    .alarms(&self.alarms)
                    .ecs(&self.ecs),
                runbooks: &self.runbooks,
                settings: &self.settings,
                metrics_namespace: "Firebreak",
                emf_to_stdout: false,
            }
        }
    }

    /// The seed incident after triage, diagnosis and remediation, with `alarms` in the given states.
    fn diagnosed(alarms: &[(&str, AlarmState)], applied: bool) -> Incident {
        let mut i = incident();
        i.alarms = alarms
            .iter()
            .map(|(n, s)| {
                let changed_at = if *s == AlarmState::Ok {
                    at(15, 0, 0)
                } else {
                    at(14, 35, 0)
                };
                (
                    n.to_string(),
                    AttachedAlarm {
                        state: *s,
                        changed_at,
                        reason: String::new(),
                    },
                )
            })
            .collect();
        i.runbook = Some("http-5xx".into());
        i.cause = Some("db-connection-pool-exhausted".into());
        i.estimated_start = Some(at(14, 30, 0));
        i.diagnosed_at = Some(at(14, 35, 40));
        if applied {
            i.remediations.push(RemediationRecord {
                action: "ecs-scale-out".into(),
                mode: crate::model::settings::RemediationMode::Auto,
                outcome: Outcome::Applied,
                detail: "desired 4 -> 6".into(),
                target: Some("prod/articles-api".into()),
                at: at(14, 36, 0),
            });
        }
        i
    }

    fn recovered(alarm: &str) -> AlarmRecovered {
        AlarmRecovered {
            incident_id: incident().id,
            service: "prod/articles-api".into(),
            alarm_name: alarm.into(),
            recovered_at: at(15, 0, 0),
        }
    }

    async fn open(w: &World, i: &Incident) {
        let e = TimelineEntry::new(
            format!("{}/opened", i.id),
            i.detected_at,
            EntryKind::Opened,
            "Opened SEV2 incident",
        );
        w.store.open(i, &[e], Duration::from_secs(1800)).await.unwrap();
        for (name, a) in &i.alarms {
            w.alarms.set(name, a.state);
        }
    }

    #[tokio::test]
    async fn all_alarms_ok_resolves_with_stage_times_postmortem_metrics_and_summary() {
        let w = World::new();
        let mut i = diagnosed(&[("articles-api-5xx", AlarmState::Ok)], true);
        i.mitigated_at = Some(at(14, 36, 0));
        i.status = IncidentStatus::Mitigated;
        open(&w, &i).await;

        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        let ResolveOutcome::Resolved(res) = out else {
            panic!("expected resolved, got {out:?}")
        };
        assert_eq!(
            res.times,
            StageTimes {
                time_to_detect_s: Some(300),
                time_to_diagnose_s: Some(40),
                time_to_mitigate_s: Some(60),
                time_to_resolve_s: Some(1500),
            }
        );
        assert!(res.notified && !res.manual);
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(stored.status, IncidentStatus::Resolved);
        assert_eq!(stored.resolved_at, Some(at(15, 0, 0)));
        assert_eq!(stored.version, i.version + 1);
        // the draft is its own item; the incident item does not carry it
        assert_eq!(stored.postmortem, None);
        let pm = w.store.postmortem(&i.id).await.unwrap().unwrap();
        assert_eq!(pm, res.postmortem);
        assert!(pm.contains("| Time to resolve, MTTR (alarm → recovery) | 25m |"));
        assert!(pm.contains("Prevention (runbook `http-5xx`)"));

        let kinds: Vec<EntryKind> = w
            .store
            .timeline(&i.id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                EntryKind::Opened,
                EntryKind::Resolved,
                EntryKind::PostmortemDrafted,
                EntryKind::Note
            ]
        );

        let v: serde_json::Value = serde_json::from_str(&res.emf[0]).unwrap();
        assert_eq!(v["TimeToResolve"], 1500);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Firebreak");

        let sent = w.notifier.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, Route::Severity(crate::model::severity::Severity::Sev2));
        assert!(sent[0].1.subject.starts_with("[SEV2] RESOLVED prod/articles-api"));
        let body = &sent[0].1.body;
        assert!(body.contains("Time to resolve (MTTR): 25m"), "{body}");
        assert!(body.contains("Cause: db-connection-pool-exhausted"), "{body}");
        assert!(
            body.contains("Remediation: ecs-scale-out applied (desired 4 -> 6)"),
            "{body}"
        );

        let events = w.bus.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, detail_types::INCIDENT_RESOLVED);
        assert_eq!(events[0].detail["time_to_resolve_s"], 1500);

        // the service's pointer is released: a new alarm after the reopen window opens a new incident
        let later = at(15, 0, 0) + chrono::Duration::hours(1);
        let found = w
            .store
            .find_for_service("prod/articles-api", Duration::from_secs(1800), later)
            .await
            .unwrap();
        assert!(found.is_none());
    }

    #[tokio::test]
    async fn redelivery_records_one_resolution_and_sends_one_summary() {
        let w = World::new();
        open(&w, &diagnosed(&[("articles-api-5xx", AlarmState::Ok)], false)).await;
        let r = recovered("articles-api-5xx");
        assert!(matches!(
            w.resolve().on_recovered(&r).await.unwrap(),
            ResolveOutcome::Resolved(_)
        ));
        let again = w.resolve().on_recovered(&r).await.unwrap();
        assert_eq!(again, ResolveOutcome::AlreadyResolved { notified: false });
        let t = w.store.timeline(&incident().id).await.unwrap();
        assert_eq!(t.iter().filter(|e| e.kind() == EntryKind::Resolved).count(), 1);
        assert_eq!(w.notifier.sent().len(), 1);
        assert_eq!(w.bus.events().len(), 1);
    }

    #[tokio::test]
    async fn a_summary_lost_to_a_crash_is_sent_on_redelivery() {
        let w = World::new();
        let mut i = diagnosed(&[("articles-api-5xx", AlarmState::Ok)], false);
        open(&w, &i).await;
        // a first delivery saved the resolution and died before notifying
        let expected = i.version;
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(at(15, 0, 0));
        i.version += 1;
        w.store
            .save(&i, expected, PointerChange::Release, &[])
            .await
            .unwrap();
        w.clock.set(at(15, 3, 0));
        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(out, ResolveOutcome::AlreadyResolved { notified: true });
        assert_eq!(w.notifier.sent().len(), 1);
        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(out, ResolveOutcome::AlreadyResolved { notified: false });
        assert_eq!(w.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_summary_whose_send_failed_is_sent_by_a_later_retry_not_dropped() {
        let w = World::new();
        let i = diagnosed(
            &[
                ("articles-api-5xx", AlarmState::Ok),
                ("articles-api-latency", AlarmState::Ok),
            ],
            true,
        );
        open(&w, &i).await;
        w.alarms.set("articles-api-latency", AlarmState::Ok);
        w.notifier.fail_next(1);
        let resolve = w.resolve();
        let first = resolve
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap_err();
        assert!(first.is_retryable(), "{first}");
        // The other alarm's recovery, while the first delivery holds the summary's lease: that
        // delivery sends it (its retries do), so this one succeeds with nothing to do; an error
        // here would page about Firebreak itself.
        let other = resolve
            .on_recovered(&w.recovered("articles-api-latency"))
            .await
            .unwrap();
        assert_eq!(other, ResolveOutcome::AlreadyResolved { notified: false });
        assert!(w.notifier.sent().is_empty());
        // Lambda's retry of the first delivery takes its own lease again: the summary goes out,
        // once, without waiting for the lease to lapse.
        let retry = resolve
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(retry, ResolveOutcome::AlreadyResolved { notified: true });
        assert_eq!(w.notifier.sent().len(), 1);
        for alarm in ["articles-api-5xx", "articles-api-latency"] {
            resolve.on_recovered(&w.recovered(alarm)).await.unwrap();
        }
        assert_eq!(w.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn one_of_two_alarms_ok_with_an_applied_remediation_is_mitigated() {
        let w = World::new();
        let i = diagnosed(
            &[
                ("articles-api-5xx", AlarmState::Ok),
                ("articles-api-latency", AlarmState::Alarm),
            ],
            true,
        );
        open(&w, &i).await;
        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(
            out,
            ResolveOutcome::Mitigated {
                still_firing: vec!["articles-api-latency".into()]
            }
        );
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(stored.status, IncidentStatus::Mitigated);
        assert_eq!(stored.mitigated_at, Some(at(14, 36, 0)));
        assert_eq!(stored.resolved_at, None);
        let t = w.store.timeline(&i.id).await.unwrap();
        assert_eq!(t.iter().filter(|e| e.kind() == EntryKind::Mitigated).count(), 1);
        assert!(w.notifier.sent().is_empty());
        // redelivery: still mitigated, no second entry
        let again = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert!(matches!(again, ResolveOutcome::Mitigated { .. }));
        assert_eq!(w.store.timeline(&i.id).await.unwrap().len(), t.len());
    }

    #[tokio::test]
    async fn without_a_remediation_a_partial_recovery_stays_open_with_a_note() {
        let w = World::new();
        let i = diagnosed(
            &[
                ("articles-api-5xx", AlarmState::Ok),
                ("articles-api-latency", AlarmState::Alarm),
            ],
            false,
        );
        open(&w, &i).await;
        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(
            out,
            ResolveOutcome::StillOpen {
                still_firing: vec!["articles-api-latency".into()]
            }
        );
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(stored.status, IncidentStatus::Open);
        assert_eq!(stored.version, i.version);
        let t = w.store.timeline(&i.id).await.unwrap();
        let notes: Vec<&TimelineEntry> = t.iter().filter(|e| e.kind() == EntryKind::Note).collect();
        assert_eq!(notes.len(), 1);
        assert!(notes[0]
            .summary
            .contains("1 of 2 alarm(s) OK, still not OK: articles-api-latency"));
        w.resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(w.store.timeline(&i.id).await.unwrap().len(), t.len());
    }

    #[tokio::test]
    async fn a_recovery_cloudwatch_does_not_report_is_refused_and_leaves_the_incident_open() {
        let w = World::new();
        let i = diagnosed(&[("articles-api-5xx", AlarmState::Alarm)], false);
        open(&w, &i).await;
        // forged: CloudWatch still reports ALARM
        let out = w
            .resolve()
            .on_recovered(&recovered("articles-api-5xx"))
            .await
            .unwrap();
        let ResolveOutcome::Refused { reason } = out else {
            panic!("a forged recovery was taken: {out:?}")
        };
        assert!(
            reason.contains("CloudWatch reports articles-api-5xx as ALARM"),
            "{reason}"
        );
        // unknown to CloudWatch (deleted or made up): still unresolved
        let w2 = World::new();
        w2.store.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
        let out = w2
            .resolve()
            .on_recovered(&recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert!(
            matches!(&out, ResolveOutcome::Refused { reason } if reason.contains("CloudWatch does not know")),
            "{out:?}"
        );
        for w in [&w, &w2] {
            let got = w.store.get(&i.id).await.unwrap().unwrap();
            assert_eq!(got.status, IncidentStatus::Open);
            assert!(w.notifier.sent().is_empty() && w.bus.events().is_empty());
            let t = w.store.timeline(&i.id).await.unwrap();
            assert_eq!(t.iter().filter(|e| e.kind() == EntryKind::Refused).count(), 1);
        }
        // the same forged event again: still one refusal on the timeline
        w.resolve()
            .on_recovered(&recovered("articles-api-5xx"))
            .await
            .unwrap();
        let t = w.store.timeline(&i.id).await.unwrap();
        assert_eq!(t.iter().filter(|e| e.kind() == EntryKind::Refused).count(), 1);
    }

    #[tokio::test]
    async fn a_recovery_time_in_the_future_or_before_the_alarm_fired_is_refused() {
        let w = World::new();
        let i = diagnosed(&[("articles-api-5xx", AlarmState::Alarm)], false);
        open(&w, &i).await;
        w.alarms.set("articles-api-5xx", AlarmState::Ok);
        let mut future = recovered("articles-api-5xx");
        future.recovered_at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2099, 1, 1, 0, 0, 0).unwrap();
        let out = w.resolve().on_recovered(&future).await.unwrap();
        assert!(
            matches!(&out, ResolveOutcome::Refused { reason } if reason.contains("in the future")),
            "{out:?}"
        );
        let mut early = recovered("articles-api-5xx");
        early.recovered_at = at(14, 0, 0);
        let out = w.resolve().on_recovered(&early).await.unwrap();
        assert!(
            matches!(&out, ResolveOutcome::Refused { reason } if reason.contains("before articles-api-5xx last went into ALARM")),
            "{out:?}"
        );
        let got = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(got.status, IncidentStatus::Open);
        assert_eq!(
            got.alarms["articles-api-5xx"].state,
            AlarmState::Alarm,
            "nothing recorded as OK"
        );
        // a true recovery still resolves
        let out = w
            .resolve()
            .on_recovered(&recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert!(matches!(out, ResolveOutcome::Resolved(_)), "{out:?}");
    }

    #[tokio::test]
    async fn closing_waits_for_cloudwatch_to_report_every_alarm_ok() {
        let w = World::new();
        let i = diagnosed(
            &[
                ("articles-api-5xx", AlarmState::Alarm),
                ("articles-api-latency", AlarmState::Ok),
            ],
            false,
        );
        open(&w, &i).await;
        // the incident recorded latency OK, but CloudWatch says it fires again
        w.alarms.set("articles-api-latency", AlarmState::Alarm);
        let out = w
            .resolve()
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert_eq!(
            out,
            ResolveOutcome::StillOpen {
                still_firing: vec!["articles-api-latency".to_string()]
            }
        );
    }

    #[tokio::test]
    async fn unknown_incident_is_not_found() {
        let w = World::new();
        let e = w.resolve().on_recovered(&w.recovered("x")).await.unwrap_err();
        assert!(matches!(e, Error::Store(StoreError::NotFound(_))), "{e}");
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn manual_resolution_while_alarms_fire_says_so() {
        let w = World::new();
        let i = diagnosed(&[("articles-api-5xx", AlarmState::Alarm)], false);
        open(&w, &i).await;
        let out = w
            .resolve()
            .resolve_manually(&i.id, "alice", at(15, 10, 0))
            .await
            .unwrap();
        let ResolveOutcome::Resolved(res) = out else {
            panic!("expected resolved, got {out:?}")
        };
        assert!(res.manual);
        assert_eq!(res.times.time_to_resolve_s, Some(35 * 60));
        assert!(res
            .postmortem
            .contains("resolved by hand while alarms were still in ALARM: articles-api-5xx"));
        assert!(!res.postmortem.contains("alice"));
        let t = w.store.timeline(&i.id).await.unwrap();
        let r = t.iter().find(|e| e.kind() == EntryKind::Resolved).unwrap();
        assert!(
            r.summary.contains("while not OK: articles-api-5xx"),
            "{}",
            r.summary
        );
        assert_eq!(r.detail().by(), Some("alice"));
        assert!(matches!(r.detail(), crate::model::timeline::Detail::Resolved(d) if d.manual));
        assert!(w.notifier.sent()[0]
            .1
            .body
            .contains("by hand; still in ALARM: articles-api-5xx"));
        let again = w
            .resolve()
            .resolve_manually(&i.id, "alice", at(15, 11, 0))
            .await
            .unwrap();
        assert_eq!(again, ResolveOutcome::AlreadyResolved { notified: false });
    }

    // Paused time: the jittered pauses between attempts pass instantly.
    #[tokio::test(start_paused = true)]
    async fn conflicts_are_retried_then_reported() {
        let w = World::new();
        // the first saves conflict, as when triage writes concurrently
        let inner = InMemoryIncidentStore::new();
        let store = FaultyStore::new(&inner).conflict_next_saves(2);
        let i = diagnosed(&[("articles-api-5xx", AlarmState::Ok)], false);
        inner.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
        let resolve = w.resolve_over(&store);
        let out = resolve
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap();
        assert!(matches!(out, ResolveOutcome::Resolved(_)));

        let inner = InMemoryIncidentStore::new();
        let store = FaultyStore::new(&inner).conflict_next_saves(CONFLICT_ATTEMPTS);
        inner.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
        let resolve = w.resolve_over(&store);
        let e = resolve
            .on_recovered(&w.recovered("articles-api-5xx"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Store(StoreError::Conflict(_))), "{e}");
        assert!(e.is_retryable());
    }
}
