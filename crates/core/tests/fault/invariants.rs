//! The invariants checked over a whole run, against the fault-free run of the same schedule.
//!
//! What "recorded" means for an alarm transition (one state change of one alarm: its name, its
//! state and the time CloudWatch changed it): triage records it with one entry whose id is
//! `<delivery id>/<step>`. The step is `alarm-fired`, `alarm-recovered` or `insufficient-data`
//! when the transition changed the incident's state; `stale` when the incident already knew a
//! later state of that alarm (SNS and EventBridge do not keep order); `copy` when another
//! channel's delivery of the same transition was recorded first. So:
//! - at most one state entry per transition, over every incident;
//! - at most one recording entry (state, stale or copy) per delivery id: a redelivery of a
//!   delivery already recorded adds nothing;
//! - at least one recording entry per transition, unless triage found nothing to record it on
//!   (an OK or INSUFFICIENT_DATA for a service with no incident, or of an alarm the incident
//!   does not have).
//!
//! Pages: a repeat of the very same message is forced by at-least-once delivery when SNS took
//! the page and the caller could not know: (1) the Publish response was lost (or timed out
//! after SNS took it), or (2) the Publish succeeded but the `paged` marker that records it could
//! not be written, so the retry finds no marker. Both are counted, not failed. A repeat after
//! any other failure between the page and its marker (the bus put in between, for one) is not
//! forced: the marker could have been written first.

use super::driver::{Outcome, Payload};
use firebreak_core::adapters::fault::TracedCall;
use firebreak_core::model::entry_id::EntryId;
use firebreak_core::model::incident::{Incident, IncidentId};
use firebreak_core::model::severity::Severity;
use firebreak_core::model::timeline::EntryKind;
use firebreak_core::ports::Route;
use firebreak_core::stages::triage::TriageOutcome;
use std::collections::{BTreeMap, BTreeSet};

pub const TRANSITIONS: &str = "every alarm transition recorded exactly once";
pub const INCIDENTS: &str = "no incident lost or duplicated";
pub const ECS_ONCE: &str = "no ECS action executed twice or unrecorded";
pub const PAGED: &str = "every SEV1/SEV2 incident paged at its severity";
pub const PAGE_REPEAT: &str = "no page repeated unless at-least-once forces it";
pub const REMEDIATION_SAME: &str = "no transient fault ends a remediation decision";
pub const REDRIVE: &str = "the redriven failure queue drains";

pub const ALL: [&str; 7] = [
    TRANSITIONS,
    INCIDENTS,
    ECS_ONCE,
    PAGED,
    PAGE_REPEAT,
    REMEDIATION_SAME,
    REDRIVE,
];

/// One violation of one invariant.
#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

/// What a run showed.
#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    /// Repeated pages forced by at-least-once: lost Publish responses.
    pub forced_repeat_lost_response: usize,
    /// Repeated pages forced by at-least-once: a marker write failed after the page.
    pub forced_repeat_marker: usize,
    /// Services whose incident count differs from the fault-free run while one of their
    /// invocations waited in the failure queue: the invariant cannot hold there (see
    /// `incidents`).
    pub incident_count_differs_queued: usize,
    /// Decisions of the fault-free run not made because their invocation waited in the failure
    /// queue (not comparable, as above).
    pub decision_differs_queued: usize,
}

impl Verdict {
    fn fail(&mut self, invariant: &'static str, detail: String) {
        self.violations.push(Violation { invariant, detail });
    }
    pub fn failed(&self) -> BTreeSet<&'static str> {
        self.violations.iter().map(|v| v.invariant).collect()
    }
}

type Transition = (String, &'static str, chrono::DateTime<chrono::Utc>);

const STATE_STEPS: [&str; 3] = ["alarm-fired", "alarm-recovered", "insufficient-data"];
const NOTE_STEPS: [&str; 2] = ["stale", "copy"];

fn service_of<'a>(incidents: &'a [Incident], id: &IncidentId) -> &'a str {
    incidents
        .iter()
        .find(|i| &i.id == id)
        .map_or("?", |i| i.service.as_str())
}

/// Checks `run` (with faults) against `reference` (the same schedule, no faults).
pub fn check(run: &Outcome, reference: &Outcome, trace: &[TracedCall]) -> Verdict {
    let mut v = Verdict::default();
    transitions(run, &mut v);
    incidents(run, reference, &mut v);
    ecs_once(run, &mut v);
    paged(run, reference, &mut v);
    page_repeats(run, reference, trace, &mut v);
    remediation_same(run, reference, &mut v);
    for r in &run.failed_after_redrive {
        v.fail(
            REDRIVE,
            format!(
                "{} still fails with faults off: {}",
                r.what,
                r.error.as_ref().map_or("", |e| e.0.as_str())
            ),
        );
    }
    v
}

fn transitions(run: &Outcome, v: &mut Verdict) {
    // delivery id -> transition
    let mut of_delivery: BTreeMap<String, Transition> = BTreeMap::new();
    for d in &run.deliveries {
        if let Payload::Alarm(s) = &d.payload {
            of_delivery.insert(
                s.delivery_id.clone(),
                (s.alarm_name.clone(), s.state.as_str(), s.changed_at),
            );
        }
    }
    let mut state_entries: BTreeMap<Transition, Vec<String>> = BTreeMap::new();
    let mut state_deliveries: BTreeMap<Transition, BTreeSet<String>> = BTreeMap::new();
    let mut per_delivery: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (inc, timeline) in &run.timelines {
        for e in timeline {
            let Some(EntryId::Delivery { delivery, step }) = EntryId::parse(&e.event_id) else {
                continue;
            };
            let Some(t) = of_delivery.get(&delivery) else {
                continue;
            };
            let place = format!("{inc}: {step} ({})", e.summary);
            if STATE_STEPS.contains(&step.as_str()) {
                state_entries.entry(t.clone()).or_default().push(place.clone());
                state_deliveries
                    .entry(t.clone())
                    .or_default()
                    .insert(delivery.clone());
            }
            if STATE_STEPS.contains(&step.as_str()) || NOTE_STEPS.contains(&step.as_str()) {
                per_delivery.entry(delivery.clone()).or_default().push(place);
            }
        }
    }
    let mut transitions: BTreeMap<Transition, Vec<String>> = BTreeMap::new();
    for (d, t) in &of_delivery {
        transitions.entry(t.clone()).or_default().push(d.clone());
    }
    for (t, deliveries) in &transitions {
        let (alarm, state, at) = t;
        let name = format!("{alarm} {state} at {}", at.format("%H:%M:%S"));
        let states = state_entries.get(t).map_or(0, Vec::len);
        if states > 1 {
            v.fail(
                TRANSITIONS,
                format!(
                    "{name} changed state {states} times {}: {:?}",
                    match state_deliveries[t].len() {
                        1 => "by one delivery".to_string(),
                        n => format!("through {n} deliveries (channel copies)"),
                    },
                    state_entries[t]
                ),
            );
        }
        let mut recorded = 0;
        for d in deliveries {
            let n = per_delivery.get(d).map_or(0, Vec::len);
            recorded += n;
            if n > 1 {
                v.fail(
                    TRANSITIONS,
                    format!(
                        "{name}: delivery {d} recorded again ({n} entries): {:?}",
                        per_delivery[d]
                    ),
                );
            }
        }
        if recorded == 0 {
            let outcomes: Vec<&TriageOutcome> = deliveries
                .iter()
                .flat_map(|d| run.triage.get(d).into_iter().flatten())
                .collect();
            let nothing_to_record_on = !outcomes.is_empty()
                && outcomes.iter().all(|o| {
                    matches!(
                        o,
                        TriageOutcome::NoIncident | TriageOutcome::Recorded { id: None }
                    )
                });
            if !nothing_to_record_on {
                v.fail(
                    TRANSITIONS,
                    format!("{name} is on no timeline (triage outcomes {outcomes:?})"),
                );
            }
        }
    }
}

fn per_service(o: &Outcome) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in &o.incidents {
        *m.entry(i.service.clone()).or_default() += 1;
    }
    m
}

fn incidents(run: &Outcome, reference: &Outcome, v: &mut Verdict) {
    let (a, b) = (per_service(run), per_service(reference));
    let services: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for s in services {
        let (x, y) = (a.get(s).copied().unwrap_or(0), b.get(s).copied().unwrap_or(0));
        if x != y && run.queued_services.contains(s.as_str()) {
            // Cannot hold: an invocation for this service exhausted its retries and waited in
            // the failure queue until the redrive, and meanwhile the pipeline went on without
            // it (an incident resolved without an alarm whose ALARM was queued, or stayed open
            // because its resolve was queued, so the next episode attached to it). Every
            // transition is still recorded once after the redrive (checked above); only the
            // grouping into episodes differs.
            v.incident_count_differs_queued += 1;
            continue;
        }
        if x != y {
            let ids: Vec<String> = run
                .incidents
                .iter()
                .filter(|i| &i.service == s)
                .map(|i| format!("{} ({}, {}, reopened {})", i.id, i.severity, i.status, i.reopened))
                .collect();
            let ref_ids: Vec<String> = reference
                .incidents
                .iter()
                .filter(|i| &i.service == s)
                .map(|i| format!("{} ({}, {}, reopened {})", i.id, i.severity, i.status, i.reopened))
                .collect();
            v.fail(
                INCIDENTS,
                format!(
                    "{s}: {} incidents: {x} {ids:?}, the fault-free run has {y} {ref_ids:?}",
                    if x > y { "more" } else { "fewer" }
                ),
            );
        }
    }
    // one open incident per service
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &run.incidents {
        if i.status != firebreak_core::model::incident::IncidentStatus::Resolved {
            *open.entry(i.service.as_str()).or_default() += 1;
        }
    }
    for (s, n) in open {
        if n > 1 {
            v.fail(INCIDENTS, format!("{s} ends with {n} incidents not resolved"));
        }
    }
}

fn ecs_once(run: &Outcome, v: &mut Verdict) {
    let mut updates: BTreeMap<String, usize> = BTreeMap::new();
    for (svc, _) in &run.updates {
        *updates.entry(svc.to_string()).or_default() += 1;
    }
    let mut applied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut started: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in &run.incidents {
        let Some(ecs) = &i.ecs else { continue };
        for e in run.timelines.get(&i.id).into_iter().flatten() {
            match e.kind() {
                EntryKind::RemediationApplied => applied
                    .entry(ecs.to_string())
                    .or_default()
                    .push(format!("{}: {}", i.id, e.event_id)),
                EntryKind::RemediationStarted => {
                    started
                        .entry(ecs.to_string())
                        .or_default()
                        .insert(e.event_id.clone());
                }
                _ => {}
            }
        }
    }
    let services: BTreeSet<&String> = updates.keys().chain(applied.keys()).collect();
    for s in services {
        let u = updates.get(s).copied().unwrap_or(0);
        let a = applied.get(s).map_or(0, Vec::len);
        let intents = started.get(s).map_or(0, BTreeSet::len);
        if u > intents.max(a) {
            v.fail(
                ECS_ONCE,
                format!("{s}: ECS UpdateService ran {u} times for {intents} intent(s) and {a} applied entr(ies): executed twice"),
            );
        } else if u > a {
            v.fail(
                ECS_ONCE,
                format!(
                    "{s}: ECS UpdateService ran {u} times, {a} remediation-applied entr(ies): unrecorded"
                ),
            );
        } else if a > u {
            v.fail(
                ECS_ONCE,
                format!(
                    "{s}: {a} remediation-applied entr(ies) {:?} but ECS was updated {u} times",
                    applied[s]
                ),
            );
        }
    }
}

fn pages_of(o: &Outcome, inc: &Incident) -> usize {
    let id = inc.id.to_string();
    o.sent
        .iter()
        .filter(|(route, n)| {
            *route == Route::Severity(inc.severity)
                && (n.attributes.get("incident") == Some(&id) || n.body.contains(&id))
        })
        .count()
}

fn paged(run: &Outcome, reference: &Outcome, v: &mut Verdict) {
    for inc in &run.incidents {
        if !matches!(inc.severity, Severity::Sev1 | Severity::Sev2) {
            continue;
        }
        if pages_of(run, inc) == 0 {
            let in_ref = reference
                .incidents
                .iter()
                .find(|i| i.id == inc.id)
                .map(|i| pages_of(reference, i));
            v.fail(
                PAGED,
                format!(
                    "{} ({}, {}) was never paged at {}{}",
                    inc.id,
                    inc.service,
                    inc.status,
                    inc.severity,
                    match in_ref {
                        Some(0) => " (nor in the fault-free run)".to_string(),
                        Some(n) => format!(" (the fault-free run paged it {n} time(s))"),
                        None => String::new(),
                    }
                ),
            );
        }
    }
}

type PageKey = (String, String, String);

fn key_of(route: &Route, n: &firebreak_core::ports::Notification) -> PageKey {
    (format!("{route:?}"), n.subject.clone(), n.body.clone())
}

fn page_repeats(run: &Outcome, reference: &Outcome, trace: &[TracedCall], v: &mut Verdict) {
    let mut ref_count: BTreeMap<PageKey, usize> = BTreeMap::new();
    for (r, n) in &reference.sent {
        *ref_count.entry(key_of(r, n)).or_default() += 1;
    }
    // the Publish calls that reached SNS, in order: one per sent message
    let publishes: Vec<&TracedCall> = trace
        .iter()
        .filter(|c| c.operation == "SNS Publish" && c.fault.is_none_or(|f| f.took_effect()))
        .collect();
    if publishes.len() != run.sent.len() {
        // no trace (long runs may drop it): count only
        return;
    }
    let mut sends: BTreeMap<PageKey, Vec<&TracedCall>> = BTreeMap::new();
    for ((r, n), call) in run.sent.iter().zip(&publishes) {
        sends.entry(key_of(r, n)).or_default().push(call);
    }
    for (key, calls) in &sends {
        let allowed = ref_count.get(key).copied().unwrap_or(0).max(1);
        for k in allowed..calls.len() {
            let prev = calls[k - 1];
            if prev.fault.is_some_and(|f| f.took_effect()) {
                v.forced_repeat_lost_response += 1;
                continue;
            }
            let next_fault = trace
                .iter()
                .filter(|c| c.n > prev.n && c.context == prev.context && c.fault.is_some())
                .find(|c| c.n < calls[k].n);
            match next_fault {
                Some(c) if c.operation.starts_with("DynamoDB BatchWriteItem (append)") => {
                    v.forced_repeat_marker += 1;
                }
                Some(c) => v.fail(
                    PAGE_REPEAT,
                    format!(
                        "\"{}\" sent {} times (fault-free run: {}); after call #{} sent it, {} on call #{} {} ({}) failed the invocation and its retry paged again",
                        key.1,
                        calls.len(),
                        ref_count.get(key).copied().unwrap_or(0),
                        prev.n,
                        c.fault.map_or("", |f| f.name()),
                        c.n,
                        c.operation,
                        c.what
                    ),
                ),
                None if trace.iter().any(|c| {
                    c.n > prev.n
                        && c.n < calls[k].n
                        && c.fault.is_none_or(|f| f.took_effect())
                        && c.operation.starts_with("DynamoDB TransactWriteItems (save)")
                        && c.what.contains("/reopened")
                }) =>
                {
                    let reopen = trace
                        .iter()
                        .find(|c| {
                            c.n > prev.n
                                && c.n < calls[k].n
                                && c.operation.starts_with("DynamoDB TransactWriteItems (save)")
                                && c.what.contains("/reopened")
                        })
                        .map_or(String::new(), |c| format!("#{} {}", c.n, c.what));
                    v.fail(
                        PAGE_REPEAT,
                        format!(
                            "\"{}\" sent {} times (fault-free run: {}); calls #{} and #{}, for a new cycle after a reopen the fault-free run does not have ({reopen})",
                            key.1,
                            calls.len(),
                            ref_count.get(key).copied().unwrap_or(0),
                            prev.n,
                            calls[k].n
                        ),
                    );
                }
                None => v.fail(
                    PAGE_REPEAT,
                    format!(
                        "\"{}\" sent {} times (fault-free run: {}); calls #{} and #{}, no fault in between in the first one's invocation",
                        key.1,
                        calls.len(),
                        ref_count.get(key).copied().unwrap_or(0),
                        prev.n,
                        calls[k].n
                    ),
                ),
            }
        }
    }
}

/// The text of the errors the fault plan injects (see `Fault::error`).
const INJECTED: [&str; 4] = [
    "Rate exceeded",
    "service unavailable (HTTP 500)",
    "operation timed out",
    "connection reset by peer while reading the response",
];

const DECIDED: [&str; 3] = ["applied", "dry-run", "awaiting-approval"];

fn decided(o: &Outcome) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in &o.incidents {
        for r in &i.remediations {
            if DECIDED.contains(&r.outcome.to_string().as_str()) {
                m.entry(i.service.clone())
                    .or_default()
                    .insert(r.action.to_string());
            }
        }
    }
    m
}

/// A retryable error must not end a remediation decision: no refusal or failure is recorded
/// because of an injected (transient) fault, and every action the fault-free run decided
/// (applied, dry-run or awaiting approval) is decided with faults too.
fn remediation_same(run: &Outcome, reference: &Outcome, v: &mut Verdict) {
    for i in &run.incidents {
        for r in &i.remediations {
            let outcome = r.outcome.to_string();
            if DECIDED.contains(&outcome.as_str()) {
                continue;
            }
            if let Some(e) = INJECTED.iter().find(|e| r.detail.contains(*e)) {
                v.fail(
                    REMEDIATION_SAME,
                    format!(
                        "{} {}: {} {} because of a transient error ({e}): {}",
                        i.id, i.service, r.action, outcome, r.detail
                    ),
                );
            }
        }
    }
    let (a, b) = (decided(run), decided(reference));
    for (s, actions) in &b {
        for action in actions {
            if !a.get(s).is_some_and(|x| x.contains(action)) {
                let why = missing_decision(run, reference, s);
                if why.starts_with("this run has") && run.queued_services.contains(s.as_str()) {
                    // Cannot hold: the decision's invocation waited in the failure queue and
                    // ran after the redrive, when the incident was resolved (refused: it is).
                    v.decision_differs_queued += 1;
                    continue;
                }
                v.fail(
                    REMEDIATION_SAME,
                    format!("{s}: the fault-free run decided {action}; {why}"),
                );
            }
        }
    }
}

/// Why a decision the fault-free run made is missing: claimed and never made, a different
/// diagnosis, or what was recorded instead.
fn missing_decision(run: &Outcome, reference: &Outcome, s: &str) -> String {
    let mine: Vec<&Incident> = run.incidents.iter().filter(|i| i.service == s).collect();
    let entries: Vec<&firebreak_core::model::timeline::TimelineEntry> = mine
        .iter()
        .flat_map(|i| run.timelines.get(&i.id).into_iter().flatten())
        .collect();
    let claimed: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.event_id.strip_suffix("/requested"))
        .filter(|p| {
            let prefix = format!("{p}/");
            !entries
                .iter()
                .any(|e| e.event_id.starts_with(&prefix) && !e.event_id.ends_with("/requested"))
        })
        .collect();
    let causes: Vec<Option<&str>> = mine.iter().map(|i| i.cause.as_deref()).collect();
    let ref_causes: Vec<Option<&str>> = reference
        .incidents
        .iter()
        .filter(|i| i.service == s)
        .map(|i| i.cause.as_deref())
        .collect();
    if !claimed.is_empty() {
        format!("decision claimed but never made (requested without an outcome: {claimed:?})")
    } else if causes != ref_causes {
        format!("diagnosed cause {causes:?}, the fault-free run {ref_causes:?}")
    } else {
        let got: Vec<String> = mine
            .iter()
            .flat_map(|i| {
                i.remediations
                    .iter()
                    .map(|r| format!("{} {}: {}", r.action, r.outcome, r.detail))
            })
            .collect();
        format!("this run has {got:?}")
    }
}

/// `service_of` is used by callers that explain a violation.
pub fn incident_service<'a>(o: &'a Outcome, id: &IncidentId) -> &'a str {
    service_of(&o.incidents, id)
}
