//! The sweeper, run on a schedule (every 5 minutes): escalates what nobody is handling.
//!
//! Rules, for every active (open or mitigated) incident:
//!
//! 1. **Unacknowledged.** A SEV1 or SEV2 incident nobody acknowledged within the severity's
//!    response target (SEV1 15 min, SEV2 1 h), counted from when it opened or was last escalated
//!    (a new page asks for a new response). SEV2 is raised to SEV1 and paged; SEV1 cannot go
//!    higher and is re-paged at SEV1. Event id `<incident>/sweeper/unacked/<severity>`: each level
//!    is escalated for this at most once.
//! 2. **Remediation did not recover.** An applied remediation older than the runbook's
//!    `verify_window` (or `settings.sweeper.default_verify_window_s` without a runbook) while
//!    CloudWatch still reports an alarm of the incident in ALARM: the severity is raised one level
//!    and paged. Event id `<incident>/sweeper/not-recovered/<remediation time in ms>`.
//! 3. **Open too long.** Active for longer than `settings.sweeper.open_too_long_s` since it
//!    opened: paged once at the current severity. Event id
//!    `<incident>/sweeper/open-too-long/<reopened>`.
//!
//! An escalation is one conditional save (new severity, `last_escalated_at`, an `escalated`
//! entry); the page follows and is recorded by a `<event id>/paged` entry, so a sweep that died
//! between the two pages on the next run, and a sweep in an unchanged state does nothing. When the
//! severity rises, "Incident Escalated" goes on the bus so diagnose runs again.

use crate::model::autonomy::{AutonomyKey, Verification};
use crate::model::entry_id::{EntryId, SweepKind};
use crate::model::incident::{Incident, IncidentId};
use crate::model::pipeline::{Event, IncidentRaised};
use crate::model::settings::Settings;
use crate::model::severity::Severity;
use crate::model::signal::AlarmState;
use crate::model::text::{plain, plain_line};
use crate::model::timeline::{detail, Detail, EntryKind, TimelineEntry};
use crate::ports::bundle::*;
use crate::ports::update::{Saved, Update};
use crate::ports::{
    AlarmStatus, Clock, EventBus, IncidentStore, ListQuery, Notification, Notifier, PointerChange, Route,
};
use crate::report::metrics::human;
use crate::runbook::Runbook;
use crate::stages::closed_loop;
use crate::Error;

/// How far back a sweep looks for resolved incidents whose applied action still awaits its
/// verification (a verification window is minutes to hours).
const VERIFY_LOOKBACK_DAYS: i64 = 2;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// The sweeper, over its ports.
pub struct Sweeper<'a, P: SweeperPorts> {
    pub ports: P,
    pub runbooks: &'a [Runbook],
    pub settings: &'a Settings,
}

/// Which rule escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SweepRule {
    Unacknowledged,
    RemediationNotRecovered,
    OpenTooLong,
}

impl SweepRule {
    /// As serialised (`unacknowledged`).
    pub fn as_str(self) -> &'static str {
        match self {
            SweepRule::Unacknowledged => "unacknowledged",
            SweepRule::RemediationNotRecovered => "remediation-not-recovered",
            SweepRule::OpenTooLong => "open-too-long",
        }
    }
}

/// One escalation a sweep carried out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    pub incident: IncidentId,
    pub rule: SweepRule,
    pub from: Severity,
    pub to: Severity,
    pub event_id: String,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SweepReport {
    /// Active incidents looked at.
    pub examined: usize,
    pub escalations: Vec<Escalation>,
    /// Pages re-sent for escalations an earlier sweep saved but did not page.
    pub repaged: usize,
    /// Flapping incidents whose hold ended (stable again) in this sweep.
    #[serde(default)]
    pub stable: Vec<IncidentId>,
    /// Incidents that could not be swept this time, with the reason; the next sweep tries again.
    pub failures: Vec<(IncidentId, String)>,
}

/// An escalation a rule asks for.
struct Due {
    rule: SweepRule,
    event_id: String,
    to: Severity,
    summary: String,
}

impl<P: SweeperPorts> Sweeper<'_, P> {
    /// Sweeps every active incident once.
    ///
    /// # Errors
    /// Only when the active incidents cannot be listed; a failure on one incident is reported in
    /// [`SweepReport::failures`] and the sweep goes on.
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        let now = self.ports.clock().now();
        let active = self
            .ports
            .store()
            .list(&ListQuery {
                active_only: true,
                since: None,
            })
            .await?;
        // a resolved incident's applied action still has its verification window to finish
        let recent = self
            .ports
            .store()
            .list(&ListQuery {
                active_only: false,
                since: Some(now - chrono::Duration::days(VERIFY_LOOKBACK_DAYS)),
            })
            .await?;
        let mut report = SweepReport {
            examined: active.len(),
            ..SweepReport::default()
        };
        for inc in recent.into_iter().filter(|i| !i.status.is_active()) {
            let id = inc.id.clone();
            if !applied_ever(&inc) {
                continue;
            }
            let verified = match self.ports.store().timeline(&inc.id).await {
                Ok(timeline) => self.verify_due(&inc, &timeline, now).await,
                Err(e) => Err(e.into()),
            };
            match verified {
                Ok(Some(e)) => report.escalations.push(e),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(incident = %id, error = %e, "verification of a resolved incident failed");
                    report.failures.push((id, e.to_string()));
                }
            }
        }
        for inc in active {
            let id = inc.id.clone();
            if let Err(e) = self.sweep_one(inc, now, &mut report).await {
                tracing::warn!(incident = %id, error = %e, "sweep of incident failed");
                report.failures.push((id, e.to_string()));
            }
        }
        tracing::info!(
            examined = report.examined,
            escalated = report.escalations.len(),
            failures = report.failures.len(),
            "sweep done"
        );
        Ok(report)
    }

    async fn sweep_one(
        &self,
        mut inc: Incident,
        now: DateTime<Utc>,
        report: &mut SweepReport,
    ) -> Result<(), Error> {
        // one read of the timeline serves the unpaged escalation and the verifications (the
        // page markers the first may add are not what the second looks at)
        let timeline = self.ports.store().timeline(&inc.id).await?;
        if self.finish_unpaged(&inc, &timeline, now).await? {
            report.repaged += 1;
        }
        // an action's window ends whatever else holds the incident
        if let Some(e) = self.verify_due(&inc, &timeline, now).await? {
            report.escalations.push(e);
        }
        if inc.flapping_since.is_some() {
            // held: nothing is paged for it until it is stable again
            if self.end_hold_if_stable(&inc, now).await? {
                report.stable.push(inc.id.clone());
            }
            return Ok(());
        }
        for rule in [SweepRule::Unacknowledged, SweepRule::OpenTooLong] {
            let mut up = Update::from_read(self.ports.store(), inc.clone());
            loop {
                inc = up.read().await?;
                if !inc.status.is_active() {
                    return Ok(());
                }
                let Some(due) = self.due(&inc, rule, now).await? else {
                    break;
                };
                let from = inc.severity;
                match self.escalate(&mut up, &inc, &due, now, Also::default()).await? {
                    Escalated::Saved(updated) => {
                        self.page(&updated, &due, from, now).await?;
                        report.escalations.push(Escalation {
                            incident: updated.id.clone(),
                            rule,
                            from,
                            to: due.to,
                            event_id: due.event_id.clone(),
                        });
                        inc = *updated;
                        break;
                    }
                    Escalated::Already => {
                        if self.page_if_missing(&inc, &due, now).await? {
                            report.repaged += 1;
                        }
                        break;
                    }
                    Escalated::Conflict => continue,
                }
            }
        }
        Ok(())
    }

    /// Whether `rule` asks for an escalation of `inc` now.
    async fn due(&self, inc: &Incident, rule: SweepRule, now: DateTime<Utc>) -> Result<Option<Due>, Error> {
        let id = &inc.id;
        Ok(match rule {
            SweepRule::Unacknowledged => {
                let Some(target) = inc.severity.response_target_s() else {
                    return Ok(None);
                };
                // counted from the latest of opening, reopening and escalation: a reopened
                // incident is a new page nobody has taken yet
                let since = [inc.last_escalated_at, inc.reopened_at]
                    .into_iter()
                    .flatten()
                    .fold(inc.opened_at, DateTime::max);
                let waited = (now - since).num_seconds();
                let applies = matches!(inc.severity, Severity::Sev1 | Severity::Sev2)
                    && inc.acknowledged_at.is_none()
                    && waited >= target;
                applies.then(|| Due {
                    rule,
                    // one escalation per severity per cycle (cycle 0 keeps the key it always had)
                    event_id: sweep_id(
                        id,
                        SweepKind::Unacknowledged,
                        &match inc.reopened {
                            0 => inc.severity.as_str().to_string(),
                            n => format!("{}-r{n}", inc.severity.as_str()),
                        },
                    ),
                    to: inc.severity.raised(),
                    summary: format!(
                        "Unacknowledged for {} (target {} for {}); {}",
                        human(waited),
                        human(target),
                        inc.severity,
                        if inc.severity == Severity::Sev1 {
                            "paging SEV1 again".to_string()
                        } else {
                            format!("raised to {}", inc.severity.raised())
                        }
                    ),
                })
            }
            // verification windows are judged by `verify_due`, not by a rule
            SweepRule::RemediationNotRecovered => None,
            SweepRule::OpenTooLong => {
                let open_s = (now - inc.opened_at).num_seconds();
                let limit = self.settings.sweeper.open_too_long_s;
                (limit > 0 && open_s >= limit).then(|| Due {
                    rule,
                    event_id: sweep_id(id, SweepKind::OpenTooLong, &inc.reopened.to_string()),
                    to: inc.severity,
                    summary: format!(
                        "Still {} after {} (limit {}); paging {}",
                        inc.status,
                        human(open_s),
                        human(limit),
                        inc.severity
                    ),
                })
            }
        })
    }

    /// The runbook's verification window, else the settings' default, in seconds.
    pub fn verify_window_s(&self, inc: &Incident) -> i64 {
        self.runbook_for(inc)
            .map_or(self.settings.sweeper.default_verify_window_s, |r| {
                r.verify_window.as_secs()
            })
    }

    /// The incident's runbook, when it is loaded.
    fn runbook_for(&self, inc: &Incident) -> Option<&Runbook> {
        let id = inc.runbook.as_deref()?;
        self.runbooks.iter().find(|r| r.id == id)
    }

    async fn escalate(
        &self,
        up: &mut Update<'_, P::Store>,
        inc: &Incident,
        due: &Due,
        now: DateTime<Utc>,
        with: Also<'_>,
    ) -> Result<Escalated, Error> {
        let mut next = inc.clone();
        // A re-page at the same severity (SEV1 unacknowledged again) is an escalation too.
        next.severity = due.to;
        next.last_escalated_at = Some(now);
        if let Some(held) = with.hold {
            next.auto_held = Some(held);
        }
        let entry = TimelineEntry::new(
            due.event_id.clone(),
            now,
            EntryKind::Escalated,
            due.summary.clone(),
        )
        .with_detail(detail::Escalated {
            rule: Some(due.rule.as_str().to_string()),
            from: inc.severity,
            to: due.to,
        });
        let mut entries = with.entries.to_vec();
        entries.push(entry);
        Ok(
            match up.save(inc, &mut next, PointerChange::Keep, &entries).await? {
                Saved::Saved => Escalated::Saved(Box::new(next)),
                Saved::AlreadyRecorded(_) => Escalated::Already,
                Saved::Conflict => Escalated::Conflict,
            },
        )
    }

    /// Pages for a saved escalation, puts "Incident Escalated" when the severity rose, and records
    /// the page.
    async fn page(&self, inc: &Incident, due: &Due, from: Severity, now: DateTime<Utc>) -> Result<(), Error> {
        let subject = format!(
            "[{}] ESCALATED {}: {}",
            inc.severity,
            inc.service,
            inc.title.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let body = format!(
            "Incident {} on {} ({}, {}).\n{}\n\n{}\nAcknowledge: firebreak ack {}\n",
            inc.id,
            inc.service,
            inc.severity,
            inc.status,
            due.summary,
            inc.severity.response(),
            inc.id
        );
        let kind = match due.rule {
            SweepRule::Unacknowledged => "unacknowledged",
            SweepRule::RemediationNotRecovered => "not-recovered",
            SweepRule::OpenTooLong => "open-too-long",
        };
        // the title comes from the alarm: inert (no mentions, no control characters)
        let message = Notification {
            subject: plain_line(&subject),
            body: plain(&body),
            attributes: BTreeMap::from([
                ("severity".to_string(), inc.severity.as_str().to_string()),
                ("service".to_string(), inc.service.clone()),
                ("kind".to_string(), format!("escalated-{kind}")),
                ("incident".to_string(), inc.id.to_string()),
            ]),
            facts: crate::ports::PageFacts::of(
                inc,
                match due.rule {
                    SweepRule::RemediationNotRecovered => crate::ports::PageEvent::Verification,
                    _ => crate::ports::PageEvent::Escalated,
                },
            )
            .next(format!("Acknowledge: firebreak ack {}", inc.id))
            .next(format!("Timeline: firebreak show {}", inc.id)),
        };
        // the event before the page: a retry puts the event again harmlessly, a page it would not
        if inc.severity.is_more_severe_than(from) {
            let event = Event::Escalated(self.raised(inc).await?);
            self.ports.bus().put(&event.to_pipeline()).await?;
        }
        let message_id = self
            .ports
            .notifier()
            .notify(Route::Severity(inc.severity), &message)
            .await?;
        let paged = TimelineEntry::new(
            paged_marker(&due.event_id),
            now,
            EntryKind::Paged,
            format!("Paged {} ({kind})", inc.severity),
        )
        .with_detail(detail::Paged {
            message_id: Some(message_id),
            subject: None,
            event: None,
        });
        self.ports.store().append(&inc.id, &[paged]).await?;
        tracing::info!(incident = %inc.id, rule = kind, severity = %inc.severity, "escalated");
        Ok(())
    }

    /// An earlier sweep saved an escalation but could not page (SNS failed, or the function
    /// stopped): page it now. The rules cannot find such an entry themselves, because the
    /// unacknowledged rule's id moves with the severity it raised. True when it paged.
    async fn finish_unpaged(
        &self,
        inc: &Incident,
        timeline: &[TimelineEntry],
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let unpaged = timeline.iter().find_map(|e| match EntryId::parse(&e.event_id)? {
            EntryId::Sweeper {
                incident,
                kind,
                paged: false,
                ..
            } if incident == inc.id => {
                let marker = paged_marker(&e.event_id);
                (!timeline.iter().any(|p| p.event_id == marker)).then_some((e, kind))
            }
            _ => None,
        });
        let Some((entry, kind)) = unpaged else {
            return Ok(false);
        };
        let rule = match kind {
            SweepKind::Stable => {
                self.after_stable(inc, &entry.event_id, now).await?;
                return Ok(true);
            }
            SweepKind::Unacknowledged => SweepRule::Unacknowledged,
            SweepKind::NotRecovered => SweepRule::RemediationNotRecovered,
            SweepKind::OpenTooLong => SweepRule::OpenTooLong,
        };
        let due = Due {
            rule,
            event_id: entry.event_id.clone(),
            to: inc.severity,
            summary: entry.summary.clone(),
        };
        self.page_if_missing(inc, &due, now).await
    }

    /// After a sweep that saved an escalation but died before paging: page now. True when it paged.
    async fn page_if_missing(&self, inc: &Incident, due: &Due, now: DateTime<Utc>) -> Result<bool, Error> {
        let marker = paged_marker(&due.event_id);
        let timeline = self.ports.store().timeline(&inc.id).await?;
        if timeline.iter().any(|e| e.event_id == marker) {
            return Ok(false);
        }
        let Some(saved) = timeline.iter().find(|e| e.event_id == due.event_id) else {
            return Ok(false);
        };
        let from = match saved.detail() {
            Detail::Escalated(e) => e.from,
            _ => inc.severity,
        };
        let summary = saved.summary.clone();
        let due = Due {
            rule: due.rule,
            event_id: due.event_id.clone(),
            to: inc.severity,
            summary,
        };
        self.page(inc, &due, from, now).await?;
        Ok(true)
    }
}

impl<P: SweeperPorts> Sweeper<'_, P> {
    /// Applied actions of `inc` (of any cycle) not verified yet, whether or not their window has
    /// ended: the applied entry, its detail and the verification's entry id.
    pub fn pending_verifications<'t>(
        inc: &Incident,
        timeline: &'t [TimelineEntry],
    ) -> Vec<(&'t TimelineEntry, &'t detail::RemediationApplied, String)> {
        timeline
            .iter()
            .filter_map(|e| match e.detail() {
                Detail::RemediationApplied(d) => {
                    let vid = verification_id(&e.event_id)?;
                    (!timeline.iter().any(|x| x.event_id == vid)).then_some((e, &**d, vid))
                }
                _ => None,
            })
            .filter(|(e, _, _)| {
                EntryId::parse(&e.event_id).and_then(|i| i.incident().cloned()) == Some(inc.id.clone())
            })
            .collect()
    }

    /// The earliest deadline a sweep still has to act on for `inc`: an applied action's
    /// verification, or the end of a flapping hold. `None` when nothing is pending.
    pub async fn next_deadline(&self, inc: &Incident) -> Result<Option<DateTime<Utc>>, Error> {
        let mut next: Option<DateTime<Utc>> = None;
        if applied_ever(inc) {
            let timeline = self.ports.store().timeline(&inc.id).await?;
            for (_, d, _) in Self::pending_verifications(inc, &timeline) {
                next = Some(next.map_or(d.verify_by, |n| n.min(d.verify_by)));
            }
        }
        if let (Some(_), Some(last)) = (inc.flapping_since, inc.last_change()) {
            let end = last + chrono::Duration::seconds(self.settings.flapping.stable_s);
            next = Some(next.map_or(end, |n| n.min(end)));
        }
        Ok(next)
    }

    /// Judges every applied action of `inc` whose verification window has ended: CloudWatch's
    /// alarm states then decide (see [`closed_loop::verification`]). Verified is recorded and
    /// counted. Ineffective is recorded and counted, and (on an active incident) escalates the
    /// incident one severity level, pages, and holds it to approval: no further automatic action.
    /// States that decide nothing (INSUFFICIENT_DATA, an alarm CloudWatch does not report) wait
    /// for the next sweep. Returns the escalation, when there was one.
    async fn verify_due(
        &self,
        inc: &Incident,
        timeline: &[TimelineEntry],
        now: DateTime<Utc>,
    ) -> Result<Option<Escalation>, Error> {
        if !applied_ever(inc) {
            return Ok(None);
        }
        let due: Vec<_> = Self::pending_verifications(inc, timeline)
            .into_iter()
            .filter(|(_, d, _)| d.verify_by <= now)
            .collect();
        if due.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = inc.alarms.keys().cloned().collect();
        let live = self.ports.alarms().states(&names).await?;
        let Some(result) = closed_loop::verification(&names, &live) else {
            tracing::info!(incident = %inc.id, "verification window ended but CloudWatch decides nothing yet");
            return Ok(None);
        };
        let states: BTreeMap<String, String> = names
            .iter()
            .map(|n| {
                let s = live.get(n).map_or("not reported", |s| s.as_str());
                (n.clone(), s.to_string())
            })
            .collect();
        let firing: Vec<&str> = names
            .iter()
            .filter(|n| live.get(*n) == Some(&AlarmState::Alarm))
            .map(String::as_str)
            .collect();
        let mut escalation = None;
        for (applied, d, vid) in due {
            let window = human(d.verify_window_s);
            let summary = match result {
                Verification::Verified => format!(
                    "{} verified: every alarm OK at the end of its {window} verification window (applied {})",
                    d.record.action,
                    d.applied_at.format("%H:%M:%S")
                ),
                Verification::Ineffective => format!(
                    "{} ineffective: {} still in ALARM at the end of its {window} verification window (applied {})",
                    d.record.action,
                    firing.join(", "),
                    d.applied_at.format("%H:%M:%S")
                ),
            };
            let entry = TimelineEntry::new(vid.clone(), now, EntryKind::Note, summary.clone()).with_detail(
                detail::VerificationDetail {
                    applied: d.record.clone(),
                    result,
                    applied_at: d.applied_at,
                    verify_by: d.verify_by,
                    alarms: states.clone(),
                    cause: d.cause.clone(),
                    runbook: d.runbook.clone(),
                },
            );
            // counted first (once, whatever the retries): an entry saved and then a failure
            // would otherwise leave the outcome uncounted, the next sweep finding it judged
            if let Some(runbook) = &d.runbook {
                let key = AutonomyKey::new(runbook, &d.cause, d.record.action.as_str());
                closed_loop::count_outcome(
                    self.ports.store(),
                    &key,
                    &vid,
                    result.into(),
                    None,
                    now,
                    &self.settings.remediation.earned,
                )
                .await?;
            }
            let escalate = result == Verification::Ineffective && escalation.is_none();
            if escalate {
                escalation = self.ineffective(inc, applied, d, entry, &firing, now).await?;
            } else {
                self.ports.store().append(&inc.id, &[entry]).await?;
            }
            tracing::info!(incident = %inc.id, action = %d.record.action, result = result.as_str(), "verification");
        }
        // a resolved incident's postmortem was drafted before the verdict: draft it again
        if let Some(now_inc) = self.ports.store().get(&inc.id).await? {
            if now_inc.status == crate::model::incident::IncidentStatus::Resolved {
                let timeline = self.ports.store().timeline(&inc.id).await?;
                let md = crate::report::postmortem::draft(&now_inc, &timeline, self.runbook_for(&now_inc));
                self.ports.store().put_postmortem(&inc.id, &md).await?;
            }
        }
        Ok(escalation)
    }

    /// Records an ineffective action: on an active incident, in one save with the escalation one
    /// level up and the hold on automatic actions, then the page. A resolved incident is not
    /// escalated (its alarms recovered since; a new ALARM reopens it on its own).
    async fn ineffective(
        &self,
        inc: &Incident,
        applied: &TimelineEntry,
        d: &detail::RemediationApplied,
        entry: TimelineEntry,
        firing: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Option<Escalation>, Error> {
        let event_id = sweep_id(
            &inc.id,
            SweepKind::NotRecovered,
            &applied
                .at
                .timestamp_millis()
                .max(d.applied_at.timestamp_millis())
                .to_string(),
        );
        let mut up = Update::from_read(self.ports.store(), inc.clone());
        loop {
            let read = up.read().await?;
            // resolved since (a new ALARM reopens it on its own), or held as flapping (no pages
            // while held): recorded and counted, not escalated
            if !read.status.is_active() || read.flapping_since.is_some() {
                self.ports.store().append(&read.id, &[entry]).await?;
                return Ok(None);
            }
            let to = read.severity.raised();
            let due = Due {
                rule: SweepRule::RemediationNotRecovered,
                event_id: event_id.clone(),
                to,
                summary: format!(
                    "{} applied at {} did not work: {} still in ALARM after its {} verification window; raised to {to}, and no further automatic action on this incident (approval still possible)",
                    d.record.action,
                    d.applied_at.format("%H:%M:%S"),
                    firing.join(", "),
                    human(d.verify_window_s),
                ),
            };
            let with = Also {
                entries: std::slice::from_ref(&entry),
                hold: Some(format!(
                    "{} applied at {} was ineffective",
                    d.record.action,
                    d.applied_at.format("%H:%M")
                )),
            };
            let from = read.severity;
            match self.escalate(&mut up, &read, &due, now, with).await? {
                Escalated::Saved(next) => {
                    self.page(&next, &due, from, now).await?;
                    return Ok(Some(Escalation {
                        incident: next.id.clone(),
                        rule: due.rule,
                        from,
                        to,
                        event_id: due.event_id.clone(),
                    }));
                }
                Escalated::Already => {
                    self.page_if_missing(&read, &due, now).await?;
                    return Ok(None);
                }
                Escalated::Conflict => continue,
            }
        }
    }
}

/// What an escalation saves besides itself: entries (a verification), and the hold on automatic
/// actions.
#[derive(Default)]
struct Also<'x> {
    entries: &'x [TimelineEntry],
    hold: Option<String>,
}

/// The id of the verification of the applied entry `applied_id` (its remediation id with the
/// phase `verification`); `None` for an id that is not a remediation's.
fn verification_id(applied_id: &str) -> Option<String> {
    EntryId::parse(applied_id)?.with_phase("verification")
}

/// Whether any cycle of `inc` applied an action (its verification may still be due after a
/// reopening).
fn applied_ever(inc: &Incident) -> bool {
    inc.remediations
        .iter()
        .any(|r| r.outcome == crate::model::incident::Outcome::Applied)
}

impl<P: SweeperPorts> Sweeper<'_, P> {
    /// A flapping incident with no alarm state change for the settings' `stable_s`: the hold
    /// ends. True when this sweep ended it.
    async fn end_hold_if_stable(&self, inc: &Incident, now: DateTime<Utc>) -> Result<bool, Error> {
        let f = &self.settings.flapping;
        let (Some(since), Some(last)) = (inc.flapping_since, inc.last_change()) else {
            return Ok(false);
        };
        if (now - last).num_seconds() < f.stable_s {
            return Ok(false);
        }
        let event_id = sweep_id(&inc.id, SweepKind::Stable, &since.timestamp_millis().to_string());
        let mut up = Update::from_read(self.ports.store(), inc.clone());
        loop {
            let read = up.read().await?;
            if read.flapping_since != Some(since) {
                return Ok(false);
            }
            let mut next = read.clone();
            let held = next.held_changes;
            next.end_flapping();
            let steady_alarm = !next.all_alarms_ok();
            if steady_alarm {
                // a steady problem now: a new cycle, diagnosed and decided afresh
                next.reopen(now);
            }
            let entry = TimelineEntry::new(
                event_id.clone(),
                now,
                EntryKind::Note,
                format!(
                    "stable again: no alarm state change since {} ({} without one) after {} held while flapping; {}",
                    last.format("%H:%M:%S"),
                    human(f.stable_s),
                    held,
                    if steady_alarm {
                        format!(
                            "still in ALARM: cycle {} begins, paged, and diagnosis and remediation resume",
                            next.reopened
                        )
                    } else {
                        "every alarm is OK: told resolve".to_string()
                    }
                ),
            );
            match up.save(&read, &mut next, PointerChange::Keep, &[entry]).await? {
                Saved::Saved => {
                    self.after_stable(&next, &event_id, now).await?;
                    return Ok(true);
                }
                Saved::AlreadyRecorded(_) => return Ok(false),
                Saved::Conflict => continue,
            }
        }
    }

    /// What follows the end of a hold (saved as `event_id`): every alarm OK → resolve is told
    /// (it checks CloudWatch and closes, with one postmortem); otherwise one page says the
    /// incident is stable in ALARM and diagnose is told, as for a new incident. Then the marker.
    async fn after_stable(&self, inc: &Incident, event_id: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let latest = inc.alarms.iter().max_by_key(|(_, a)| a.changed_at);
        let told = if inc.all_alarms_ok() {
            let Some((name, a)) = latest else {
                return Ok(());
            };
            let event = Event::Recovered(crate::model::pipeline::AlarmRecovered {
                incident_id: inc.id.clone(),
                service: inc.service.clone(),
                alarm_name: name.clone(),
                recovered_at: a.changed_at,
            });
            self.ports.bus().put(&event.to_pipeline()).await?;
            "told resolve (Alarm Recovered)".to_string()
        } else {
            let firing: Vec<&str> = inc.alarms_firing().collect();
            let message = Notification {
                subject: plain_line(&format!(
                    "[{}] {} stable in ALARM: {}",
                    inc.severity,
                    inc.service,
                    firing.join(", ")
                )),
                body: plain(&format!(
                    "Incident {} on {} stopped flapping and is in ALARM ({}).
                     Firebreak held it while it flapped; it now runs the runbook's diagnosis and,                      within its guardrails, remediation.
{}
Acknowledge: firebreak ack {}
",
                    inc.id,
                    inc.service,
                    firing.join(", "),
                    inc.severity.response(),
                    inc.id
                )),
                attributes: BTreeMap::from([
                    ("severity".to_string(), inc.severity.as_str().to_string()),
                    ("service".to_string(), inc.service.clone()),
                    ("kind".to_string(), "stable".to_string()),
                    ("incident".to_string(), inc.id.to_string()),
                ]),
                facts: crate::ports::PageFacts::of(inc, crate::ports::PageEvent::Escalated)
                    .next(format!("Acknowledge: firebreak ack {}", inc.id)),
            };
            let event = Event::Escalated(self.raised(inc).await?);
            self.ports.bus().put(&event.to_pipeline()).await?;
            self.ports
                .notifier()
                .notify(Route::Severity(inc.severity), &message)
                .await?;
            format!(
                "paged {} (stable in ALARM); told diagnose (Incident Escalated)",
                inc.severity
            )
        };
        let marker = TimelineEntry::new(paged_marker(event_id), now, EntryKind::Note, told);
        self.ports.store().append(&inc.id, &[marker]).await?;
        Ok(())
    }
}

impl<P: SweeperPorts> Sweeper<'_, P> {
    /// "Incident Escalated" for `inc`, naming an alarm in ALARM (else its first), with what that
    /// alarm's latest `alarm-fired` entry recorded of its metric (namespace, name, dimensions)
    /// or composite rule: the diagnosis it starts reads the same metrics as the first one.
    async fn raised(&self, inc: &Incident) -> Result<IncidentRaised, Error> {
        let alarm = inc
            .alarms
            .iter()
            .find(|(_, a)| a.state == AlarmState::Alarm)
            .or_else(|| inc.alarms.iter().next());
        let name = alarm.map_or_else(String::new, |(n, _)| n.clone());
        let timeline = self.ports.store().timeline(&inc.id).await?;
        let trigger = timeline.iter().rev().find_map(|e| match e.detail() {
            Detail::AlarmFired(f) if f.alarm == name => Some(f.trigger.clone()),
            _ => None,
        });
        let metric = trigger.as_ref().and_then(|t| t.primary_metric());
        Ok(IncidentRaised {
            incident_id: inc.id.clone(),
            service: inc.service.clone(),
            ecs: inc.ecs.clone(),
            severity: inc.severity,
            alarm_at: alarm.map_or(inc.detected_at, |(_, a)| a.changed_at),
            alarm_name: name,
            runbook_hint: inc.runbook.clone(),
            namespace: metric.and_then(|m| m.namespace.clone()),
            metric_name: metric.and_then(|m| m.metric_name.clone()),
            dimensions: trigger.as_ref().map(|t| t.dimensions()).unwrap_or_default(),
            composite_rule: match &trigger {
                Some(crate::model::signal::Trigger::Composite { rule, .. }) => Some(rule.clone()),
                _ => None,
            },
            tags: BTreeMap::new(),
            reopened: inc.reopened,
        })
    }
}

enum Escalated {
    Saved(Box<Incident>),
    Already,
    Conflict,
}

/// The id of a sweeper escalation.
fn sweep_id(incident: &IncidentId, kind: SweepKind, key: &str) -> String {
    EntryId::Sweeper {
        incident: incident.clone(),
        kind,
        key: key.to_string(),
        paged: false,
    }
    .text()
}

/// The id of the page that follows the escalation `escalation` (an id of [`sweep_id`]'s form).
fn paged_marker(escalation: &str) -> String {
    match EntryId::parse(escalation) {
        Some(EntryId::Sweeper {
            incident, kind, key, ..
        }) => EntryId::Sweeper {
            incident,
            kind,
            key,
            paged: true,
        }
        .text(),
        // not a sweeper id: never written, but the marker must still differ from it
        _ => format!("{escalation}/paged"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{
        InMemoryAlarmStatus, InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, SimClock,
    };
    use crate::model::incident::Outcome;
    use crate::model::incident::{IncidentStatus, RemediationRecord};
    use crate::ports::detail_types;
    use crate::report::metrics::tests::{at, incident};
    use crate::report::postmortem::tests::runbook;
    use std::time::Duration;

    struct World {
        store: InMemoryIncidentStore,
        alarms: InMemoryAlarmStatus,
        notifier: InMemoryNotifier,
        bus: InMemoryEventBus,
        clock: SimClock,
        runbooks: Vec<Runbook>,
        settings: Settings,
    }

    impl World {
        async fn with(i: &Incident) -> World {
            let w = World {
                store: InMemoryIncidentStore::new(),
                alarms: InMemoryAlarmStatus::new(),
                notifier: InMemoryNotifier::new(),
                bus: InMemoryEventBus::new(),
                clock: SimClock::new(i.opened_at),
                runbooks: vec![runbook()],
                settings: Settings::default(),
            };
            w.store.open(i, &[], Duration::from_secs(1800)).await.unwrap();
            w
        }
        async fn sweep(&self) -> SweepReport {
            Sweeper {
                ports: Wired::new()
                    .store(&self.store)
                    .alarms(&self.alarms)
                    .notifier(&self.notifier)
                    .bus(&self.bus)
                    .clock(&self.clock),
                runbooks: &self.runbooks,
                settings: &self.settings,
            }
            .sweep()
            .await
            .unwrap()
        }
        async fn get(&self) -> Incident {
            self.store.get(&incident().id).await.unwrap().unwrap()
        }
    }

    fn mins(m: i64) -> chrono::Duration {
        chrono::Duration::minutes(m)
    }

    #[tokio::test]
    async fn unacknowledged_sev2_is_raised_to_sev1_once_then_sev1_is_repaged_once() {
        let i = incident(); // SEV2, opened 14:35:01
        let w = World::with(&i).await;
        w.clock.set(i.opened_at + mins(59));
        assert!(w.sweep().await.escalations.is_empty());

        w.clock.set(i.opened_at + mins(60));
        let r = w.sweep().await;
        assert_eq!(r.escalations.len(), 1);
        assert_eq!(r.escalations[0].rule, SweepRule::Unacknowledged);
        assert_eq!(
            (r.escalations[0].from, r.escalations[0].to),
            (Severity::Sev2, Severity::Sev1)
        );
        assert_eq!(w.get().await.severity, Severity::Sev1);
        assert_eq!(w.notifier.sent().len(), 1);
        assert_eq!(w.notifier.sent()[0].0, Route::Severity(Severity::Sev1));
        let events = w.bus.events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, detail_types::INCIDENT_ESCALATED);
        assert_eq!(events[0].detail["severity"], "SEV1");

        // same state, next sweep: nothing new
        w.clock.set(i.opened_at + mins(65));
        assert!(w.sweep().await.escalations.is_empty());
        assert_eq!(w.notifier.sent().len(), 1);

        // SEV1's 15 minutes, counted from the escalation: re-paged at SEV1, no bus event
        w.clock.set(i.opened_at + mins(75));
        let r = w.sweep().await;
        assert_eq!(r.escalations.len(), 1);
        assert_eq!(
            (r.escalations[0].from, r.escalations[0].to),
            (Severity::Sev1, Severity::Sev1)
        );
        assert_eq!(w.notifier.sent().len(), 2);
        assert_eq!(w.bus.events().len(), 1);
        w.clock.set(i.opened_at + mins(100));
        assert!(w.sweep().await.escalations.is_empty());
        assert_eq!(w.notifier.sent().len(), 2);
    }

    #[tokio::test]
    async fn a_reopened_sev1_nobody_acknowledges_is_escalated_again_in_its_cycle() {
        let mut i = incident();
        i.severity = Severity::Sev1;
        let w = World::with(&i).await;
        w.clock.set(i.opened_at + mins(15));
        assert_eq!(w.sweep().await.escalations.len(), 1);
        assert_eq!(w.notifier.sent().len(), 1);
        // resolved, then back within the reopen window: a new cycle, unacknowledged again
        let mut inc = w.get().await;
        let v = inc.version;
        inc.resolve(i.opened_at + mins(20));
        inc.reopen(i.opened_at + mins(25));
        inc.version = v + 1;
        w.store.save(&inc, v, PointerChange::Keep, &[]).await.unwrap();
        // 15 minutes counted from the reopening, not from the first escalation
        w.clock.set(i.opened_at + mins(39));
        assert!(w.sweep().await.escalations.is_empty());
        w.clock.set(i.opened_at + mins(40));
        let r = w.sweep().await;
        assert_eq!(r.escalations.len(), 1, "{r:?}");
        assert_eq!(w.notifier.sent().len(), 2);
        w.clock.set(i.opened_at + mins(45));
        assert!(w.sweep().await.escalations.is_empty());
        assert_eq!(w.notifier.sent().len(), 2);
    }

    #[tokio::test]
    async fn an_escalation_whose_page_failed_is_paged_by_the_next_sweep() {
        let i = incident(); // SEV2, unacknowledged
        let w = World::with(&i).await;
        w.notifier.fail_next(1);
        w.clock.set(i.opened_at + mins(65));
        let first = w.sweep().await;
        assert_eq!(first.failures.len(), 1, "the page failed: {first:?}");
        assert_eq!(
            w.get().await.severity,
            Severity::Sev1,
            "the escalation itself was saved"
        );
        assert!(w.notifier.sent().is_empty());

        // Five minutes later SNS is fine: the SEV1 page goes out, once.
        w.clock.set(i.opened_at + mins(70));
        let second = w.sweep().await;
        assert_eq!(second.repaged, 1, "{second:?}");
        assert_eq!(w.notifier.sent().len(), 1);
        assert_eq!(w.notifier.sent()[0].0, Route::Severity(Severity::Sev1));
        w.clock.set(i.opened_at + mins(72));
        w.sweep().await;
        assert_eq!(w.notifier.sent().len(), 1, "paged once");
    }

    #[tokio::test]
    async fn acknowledged_or_minor_incidents_are_not_escalated_for_acknowledgement() {
        let mut i = incident();
        i.acknowledged_at = Some(i.opened_at + mins(5));
        let w = World::with(&i).await;
        w.clock.set(i.opened_at + mins(120));
        assert!(w.sweep().await.escalations.is_empty());

        let mut i = incident();
        i.severity = Severity::Sev3;
        let w = World::with(&i).await;
        w.clock.set(i.opened_at + mins(5 * 60));
        assert!(w
            .sweep()
            .await
            .escalations
            .iter()
            .all(|e| e.rule != SweepRule::Unacknowledged));
    }

    fn remediated() -> Incident {
        let mut i = incident();
        i.acknowledged_at = Some(at(14, 36, 0));
        i.runbook = Some("http-5xx".into()); // verify window 5m
        i.status = IncidentStatus::Mitigated;
        i.mitigated_at = Some(at(14, 37, 0));
        i.remediations.push(RemediationRecord {
            action: "ecs-rollback".into(),
            mode: crate::model::settings::RemediationMode::Auto,
            outcome: Outcome::Applied,
            detail: "articles-api:42 -> articles-api:41".into(),
            target: Some("prod/articles-api".into()),
            at: at(14, 37, 0),
        });
        i
    }

    /// The applied entry remediate writes for `remediated()`'s rollback, verified by `verify_by`.
    fn applied(i: &Incident, verify_s: i64) -> TimelineEntry {
        let rec = i.remediations[0].clone();
        let snap = |td: &str| detail::ServiceSnapshot {
            task_definition: td.into(),
            desired: 4,
            running: 4,
            deployments: 1,
        };
        TimelineEntry::new(
            crate::stages::remediate::event_id(&i.id, 0, "bad-deployment", "ecs-rollback", "applied"),
            rec.at,
            EntryKind::Note,
            "ecs-rollback applied",
        )
        .with_detail(detail::RemediationApplied {
            applied_at: rec.at,
            record: rec,
            before: snap("articles-api:42"),
            after: snap("articles-api:41"),
            update: crate::model::remedy::ServiceUpdate {
                task_definition: Some("articles-api:41".into()),
                ..Default::default()
            },
            verify_window_s: verify_s,
            verify_by: at(14, 37, 0) + chrono::Duration::seconds(verify_s),
            cause: "bad-deployment".into(),
            runbook: Some("http-5xx".into()),
        })
    }

    async fn with_applied(i: &Incident) -> World {
        let w = World::with(i).await;
        w.store.append(&i.id, &[applied(i, 300)]).await.unwrap();
        w
    }

    fn record_key() -> AutonomyKey {
        AutonomyKey::new("http-5xx", "bad-deployment", "ecs-rollback")
    }

    #[tokio::test]
    async fn an_action_still_firing_at_the_end_of_its_window_is_ineffective_escalated_held_and_paged_once() {
        let i = remediated();
        let w = with_applied(&i).await;
        w.alarms.set("articles-api-5xx", AlarmState::Alarm);
        w.clock.set(at(14, 41, 59));
        assert!(w.sweep().await.escalations.is_empty());

        w.clock.set(at(14, 42, 0));
        let r = w.sweep().await;
        assert_eq!(r.escalations.len(), 1);
        assert_eq!(r.escalations[0].rule, SweepRule::RemediationNotRecovered);
        assert_eq!(r.escalations[0].to, Severity::Sev1);
        let t = w.store.timeline(&i.id).await.unwrap();
        let v = t
            .iter()
            .find(|e| e.kind() == EntryKind::RemediationIneffective)
            .unwrap();
        assert!(
            v.summary
                .contains("articles-api-5xx still in ALARM at the end of its 5m"),
            "{}",
            v.summary
        );
        let e = t.iter().find(|e| e.kind() == EntryKind::Escalated).unwrap();
        assert!(
            e.summary
                .contains("ecs-rollback applied at 14:37:00 did not work")
                && e.summary.contains("no further automatic action"),
            "{}",
            e.summary
        );
        assert!(t.iter().any(|e| e.kind() == EntryKind::Paged));
        assert_eq!(w.bus.events().len(), 1, "Incident Escalated: diagnose runs again");
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(stored.severity, Severity::Sev1);
        assert!(stored.auto_held.as_deref().unwrap().contains("ineffective"));
        let rec = w.store.autonomy(&record_key()).await.unwrap().unwrap();
        assert_eq!((rec.ineffective, rec.verified), (1, 0));

        w.clock.set(at(14, 47, 0));
        assert!(w.sweep().await.escalations.is_empty());
        assert_eq!(w.notifier.sent().len(), 1, "one page");
        assert_eq!(
            w.store
                .autonomy(&record_key())
                .await
                .unwrap()
                .unwrap()
                .ineffective,
            1
        );
    }

    #[tokio::test]
    async fn an_action_of_an_earlier_cycle_or_of_a_held_incident_is_still_judged() {
        // reopened after the action: the current cycle applied nothing, the window still ends
        let mut i = remediated();
        i.reopened = 1;
        i.reopened_at = Some(at(14, 40, 0));
        let w = with_applied(&i).await;
        w.alarms.set("articles-api-5xx", AlarmState::Alarm);
        w.clock.set(at(14, 42, 0));
        assert_eq!(w.sweep().await.escalations.len(), 1);
        assert_eq!(
            w.store
                .autonomy(&record_key())
                .await
                .unwrap()
                .unwrap()
                .ineffective,
            1
        );
        // held as flapping: judged and counted, but nothing is paged while held
        let mut i = remediated();
        i.flapping_since = Some(at(14, 38, 0));
        let w = with_applied(&i).await;
        w.alarms.set("articles-api-5xx", AlarmState::Alarm);
        w.clock.set(at(14, 42, 0));
        assert!(w.sweep().await.escalations.is_empty());
        let t = w.store.timeline(&i.id).await.unwrap();
        assert!(t.iter().any(|e| e.kind() == EntryKind::RemediationIneffective));
        assert!(w.notifier.sent().is_empty());
        assert_eq!(
            w.store
                .autonomy(&record_key())
                .await
                .unwrap()
                .unwrap()
                .ineffective,
            1
        );
    }

    #[tokio::test]
    async fn recovered_alarms_verify_even_after_the_resolution_and_undecided_states_wait() {
        let mut i = remediated();
        let w = with_applied(&i).await;
        w.alarms.set("articles-api-5xx", AlarmState::InsufficientData);
        w.clock.set(at(14, 45, 0));
        assert!(w.sweep().await.escalations.is_empty());
        let sw = Sweeper {
            ports: Wired::new()
                .store(&w.store)
                .alarms(&w.alarms)
                .notifier(&w.notifier)
                .bus(&w.bus)
                .clock(&w.clock),
            runbooks: &w.runbooks,
            settings: &w.settings,
        };
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(
            sw.next_deadline(&stored).await.unwrap(),
            Some(at(14, 42, 0)),
            "still pending"
        );
        // the incident resolves before a sweep decides: the sweep still verifies it
        i = stored;
        let read = i.clone();
        i.resolve(at(14, 46, 0));
        i.version += 1;
        w.store
            .save(&i, read.version, PointerChange::Release, &[])
            .await
            .unwrap();
        w.alarms.set("articles-api-5xx", AlarmState::Ok);
        w.clock.set(at(14, 50, 0));
        assert!(w.sweep().await.escalations.is_empty());
        let t = w.store.timeline(&i.id).await.unwrap();
        let v = t
            .iter()
            .find(|e| e.kind() == EntryKind::RemediationVerified)
            .unwrap();
        assert!(
            v.summary.starts_with("ecs-rollback verified: every alarm OK"),
            "{}",
            v.summary
        );
        assert_eq!(
            w.store.autonomy(&record_key()).await.unwrap().unwrap().verified,
            1
        );
        let stored = w.store.get(&i.id).await.unwrap().unwrap();
        assert_eq!(sw.next_deadline(&stored).await.unwrap(), None);
        assert!(w.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn open_too_long_pages_once_at_the_same_severity() {
        let mut i = incident();
        i.acknowledged_at = Some(i.opened_at);
        let w = World::with(&i).await;
        w.clock.set(i.opened_at + chrono::Duration::hours(4));
        let r = w.sweep().await;
        assert_eq!(r.escalations.len(), 1);
        assert_eq!(r.escalations[0].rule, SweepRule::OpenTooLong);
        assert_eq!(r.escalations[0].to, Severity::Sev2);
        assert_eq!(w.get().await.severity, Severity::Sev2);
        assert!(w.bus.events().is_empty());
        w.clock.set(i.opened_at + chrono::Duration::hours(8));
        assert!(w.sweep().await.escalations.is_empty());
        assert_eq!(w.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn resolved_incidents_are_left_alone() {
        let mut i = incident();
        i.status = IncidentStatus::Resolved;
        i.resolved_at = Some(at(15, 0, 0));
        let w = World::with(&i).await;
        w.clock.set(at(23, 0, 0));
        let r = w.sweep().await;
        assert_eq!(r.examined, 0);
        assert!(w.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn an_escalation_saved_without_its_page_is_paged_by_the_next_sweep() {
        let i = incident();
        let w = World::with(&i).await;
        let now = i.opened_at + mins(60);
        // a sweep saved the escalation, then died before paging
        let mut next = i.clone();
        next.severity = Severity::Sev1;
        next.version += 1;
        let entry = TimelineEntry::new(
            format!("{}/sweeper/unacked/SEV1", i.id),
            now,
            EntryKind::Escalated,
            "Unacknowledged; paging SEV1 again",
        )
        .with_json_detail(serde_json::json!({"from": "SEV1", "to": "SEV1"}))
        .unwrap();
        w.store
            .save(&next, i.version, PointerChange::Keep, &[entry])
            .await
            .unwrap();
        w.clock.set(now + mins(15));
        let r = w.sweep().await;
        assert!(r.escalations.is_empty());
        assert_eq!(r.repaged, 1);
        assert_eq!(w.notifier.sent().len(), 1);
        let r = w.sweep().await;
        assert_eq!(r.repaged, 0);
        assert_eq!(w.notifier.sent().len(), 1);
    }
}
