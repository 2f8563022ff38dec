//! The pipeline driver: the five functions over faulty ports, with Lambda's async-invoke
//! semantics, on a simulated clock, as a discrete-event simulation.
//!
//! - Each invocation is due at a simulated time; they run in (time, sequence) order.
//! - An invocation whose handler returns a retryable `Err` is retried after 60 s and then after
//!   120 s more (MaximumRetryAttempts 2); after that, or after a non-retryable `Err`, it goes to
//!   the failure queue (docs/operations.md "Failure queue").
//! - Every event a stage puts on the bus is delivered to the stage it triggers after that
//!   stage's latency; EventBridge may deliver it twice (decided from the schedule's seed and the
//!   event itself, so the fault-free reference run gets the same duplicates).
//! - Alarm transitions change the simulated CloudWatch at their time; their deliveries may be
//!   late, out of order and repeated, as the schedule says.
//! - The sweeper runs every 5 minutes while there are steps, and at the end: faults are
//!   switched off, the failure queue is redriven (the operator's runbook), and the sweeper runs
//!   a few more times.

use super::workload::{Delivery, Schedule, Workload};
use chrono::{DateTime, Duration, Utc};
use firebreak_core::adapters::fault::{splitmix64, FaultPlan, Faulty};
use firebreak_core::adapters::local_logs::LocalLogQueries;
use firebreak_core::adapters::memory::{
    InMemoryAlarmStatus, InMemoryCallerIdentity, InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier,
    InMemoryServiceControl, SimClock,
};
use firebreak_core::model::incident::{Incident, IncidentId};
use firebreak_core::model::pipeline::Event;
use firebreak_core::model::signal::AlarmSignal;
use firebreak_core::model::timeline::TimelineEntry;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{
    Clock, EventBus, IncidentStore, Notification, PipelineEvent, Route, ServiceUpdate,
};
use firebreak_core::stages::boundary::{admit, Admission};
use firebreak_core::stages::diagnose::Diagnose;
use firebreak_core::stages::remediate::{request_approval, Approvers, Remediate};
use firebreak_core::stages::resolve::Resolve;
use firebreak_core::stages::sweeper::Sweeper;
use firebreak_core::stages::triage::{Triage, TriageOutcome};
use firebreak_core::Error;
use std::collections::{BTreeMap, BinaryHeap};

/// What an invocation carries.
#[derive(Debug, Clone)]
pub enum Payload {
    /// The simulated CloudWatch changes an alarm's state (not an invocation).
    Transition(String, firebreak_core::model::signal::AlarmState),
    /// An alarm delivery to triage.
    Alarm(Box<AlarmSignal>),
    /// A pipeline event to the stage it triggers.
    Pipeline(PipelineEvent),
    /// An envelope from outside the pipeline, checked at the boundary.
    Envelope(serde_json::Value),
    Sweep,
    /// `firebreak approve`: (action, by, incident or the only open one).
    Approve(String, String, Option<String>),
    /// People change an ECS service (not an invocation of Firebreak's).
    People(firebreak_core::drill::PeopleStep),
}

impl Payload {
    pub fn function(&self) -> &'static str {
        match self {
            Payload::Transition(..) => "cloudwatch",
            Payload::Alarm(_) => "triage",
            Payload::Envelope(_) => "boundary",
            Payload::Sweep => "sweeper",
            Payload::Approve(..) => "approve",
            Payload::People(_) => "people",
            Payload::Pipeline(p) => match p.detail_type.as_str() {
                "Incident Opened" | "Incident Escalated" => "diagnose",
                "Diagnosis Completed" | "Remediation Approved" => "remediate",
                "Alarm Recovered" => "resolve",
                _ => "none",
            },
        }
    }

    fn describe(&self) -> String {
        match self {
            Payload::Transition(a, s) => format!("CloudWatch: {a} -> {s}"),
            Payload::Alarm(s) => format!(
                "triage {} {} at {} (delivery {})",
                s.alarm_name,
                s.state,
                s.changed_at.format("%H:%M:%S"),
                s.delivery_id
            ),
            Payload::Pipeline(p) => format!(
                "{} <- {} {}",
                self.function(),
                p.detail_type,
                p.detail.get("incident_id").and_then(|v| v.as_str()).unwrap_or("")
            ),
            Payload::Envelope(_) => "boundary: envelope from outside".into(),
            Payload::Sweep => "sweeper".into(),
            Payload::Approve(a, by, _) => format!("approve {a} by {by}"),
            Payload::People(p) => format!("people change {}", p.service),
        }
    }
}

#[derive(Debug, Clone)]
struct Invocation {
    due: DateTime<Utc>,
    seq: u64,
    payload: Payload,
    /// 0 for the first attempt.
    attempt: u32,
    /// Redriven from the failure queue.
    redriven: bool,
}

impl PartialEq for Invocation {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Invocation {}
impl PartialOrd for Invocation {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Invocation {
    // a min-heap on (due, seq)
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// One handler run, as the driver saw it.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The invocation number the fault plan's trace carries.
    pub context: u64,
    pub at: DateTime<Utc>,
    pub what: String,
    pub attempt: u32,
    pub redriven: bool,
    /// `None` when it succeeded, else the error and whether it was retryable.
    pub error: Option<(String, bool)>,
}

/// Everything a run leaves behind for the invariants.
#[derive(Debug, Default)]
pub struct Outcome {
    pub incidents: Vec<Incident>,
    pub timelines: BTreeMap<IncidentId, Vec<TimelineEntry>>,
    pub sent: Vec<(Route, Notification)>,
    pub updates: Vec<(firebreak_core::model::incident::EcsService, ServiceUpdate)>,
    /// Triage's last successful outcome for each delivery id.
    pub triage: BTreeMap<String, Vec<TriageOutcome>>,
    pub ran: Vec<Ran>,
    /// Invocations that reached the failure queue while faults were on.
    pub failed_over: usize,
    /// Of those, how many failed with a non-retryable error (a transient fault surfaced as a
    /// permanent error).
    pub failed_permanent: usize,
    /// Invocations still failing after the redrive, with faults off.
    pub failed_after_redrive: Vec<Ran>,
    /// Alarm deliveries made (with redeliveries and copies).
    pub deliveries: Vec<Delivery>,
    /// Services one of whose invocations (an alarm delivery, or a pipeline event of one of its
    /// incidents) waited in the failure queue for the redrive.
    pub queued_services: std::collections::BTreeSet<String>,
    /// `approve:` steps that still failed after a person's two retries.
    pub approvals_given_up: usize,
}

const RETRY_DELAYS_S: [i64; 2] = [60, 120];

fn latency_of(w: &Workload, function: &str) -> i64 {
    match function {
        "diagnose" => w.latency.diagnose_s,
        "remediate" => w.latency.remediate_s,
        "resolve" => w.latency.resolve_s,
        _ => 0,
    }
}

fn hash_str(seed: u64, s: &str) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(&mut h)
}

/// Runs `schedule` of `w` with `plan`'s faults.
pub async fn run(w: &Workload, schedule: &Schedule, plan: &FaultPlan) -> Outcome {
    let start = schedule.start;
    let clock = SimClock::new(start);
    let store = InMemoryIncidentStore::new();
    let notifier = InMemoryNotifier::new();
    let bus = InMemoryEventBus::new();
    let alarms = InMemoryAlarmStatus::new();
    for (name, state) in &w.seed_alarms {
        alarms.set(name, *state);
    }
    let ecs = InMemoryServiceControl::with_clock(&clock);
    for (state, revisions) in &w.fleet {
        ecs.add_service(state.clone(), revisions);
    }
    let logs = LocalLogQueries::new(w.logs.clone());
    let metrics = firebreak_core::adapters::local_metrics::RecordedMetrics::new(w.metrics.clone());

    let f_store = Faulty::new(&store, plan);
    let f_notifier = Faulty::new(&notifier, plan);
    let f_bus = Faulty::new(&bus, plan);
    let f_ecs = Faulty::new(&ecs, plan);
    let f_alarms = Faulty::new(&alarms, plan);
    let f_logs = Faulty::new(&logs, plan);
    let f_metrics = Faulty::new(&metrics, plan);

    let runbooks = w.runbooks.runbooks();
    let ports = Wired::new()
        .store(&f_store)
        .notifier(&f_notifier)
        .bus(&f_bus)
        .clock(&clock)
        .ecs(&f_ecs)
        .alarms(&f_alarms)
        .logs(&f_logs)
        .metrics(&f_metrics);
    let triage = Triage {
        ports,
        policy: &w.policy,
        settings: &w.settings,
    };
    let diagnose = Diagnose {
        ports,
        runbooks: &w.runbooks,
        settings: &w.settings,
    };
    let remediate = Remediate {
        ports,
        runbooks,
        settings: &w.settings,
    };
    let resolve = Resolve {
        ports,
        runbooks,
        settings: &w.settings,
        metrics_namespace: "Firebreak",
        emf_to_stdout: false,
    };
    let sweeper = Sweeper {
        ports,
        runbooks,
        settings: &w.settings,
    };

    let mut out = Outcome {
        deliveries: schedule.deliveries.clone(),
        ..Outcome::default()
    };
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<Invocation>, due, payload, attempt, redriven| {
        seq += 1;
        queue.push(Invocation {
            due,
            seq,
            payload,
            attempt,
            redriven,
        });
    };
    for d in &schedule.deliveries {
        push(&mut queue, d.at, d.payload.clone(), 0, false);
    }
    // the sweeper's schedule while there is traffic
    let mut t = start;
    while t <= schedule.end {
        push(&mut queue, t, Payload::Sweep, 0, false);
        t += Duration::minutes(5);
    }

    let mut failure_queue: Vec<Invocation> = Vec::new();
    let mut queued: Vec<Payload> = Vec::new();
    let mut context = 0u64;
    let mut event_occurrence: BTreeMap<u64, u32> = BTreeMap::new();
    let mut redrive_round = 0;
    loop {
        let Some(inv) = queue.pop() else {
            // Faults stop; the operator redrives the failure queue; the sweeper keeps running.
            if plan.enabled() {
                plan.set_enabled(false);
            }
            if redrive_round < 3 && !failure_queue.is_empty() {
                redrive_round += 1;
                let now = clock.now();
                for f in std::mem::take(&mut failure_queue) {
                    push(&mut queue, now, f.payload, 0, true);
                }
                continue;
            }
            if redrive_round < 10 {
                // the final sweeps, at fixed offsets from the end of the traffic
                redrive_round = 10;
                let base = clock.now().max(schedule.end);
                for k in 1..=4 {
                    push(
                        &mut queue,
                        base + Duration::minutes(5 * k),
                        Payload::Sweep,
                        0,
                        true,
                    );
                }
                continue;
            }
            break;
        };
        if inv.due > clock.now() {
            clock.set(inv.due);
        }
        if let Payload::Transition(name, state) = &inv.payload {
            alarms.set(name, *state);
            continue;
        }
        if let Payload::People(p) = &inv.payload {
            // people's UpdateService, straight to ECS (Firebreak's faults are not theirs)
            let svc = firebreak_core::model::incident::EcsService::parse(&p.service).unwrap();
            let change = firebreak_core::model::remedy::ServiceUpdate {
                task_definition: p.task_definition.clone(),
                desired: p.desired,
                force_new_deployment: p.force_new_deployment,
            };
            ecs.update_by_people(&svc, &change).unwrap();
            continue;
        }
        context += 1;
        plan.set_context(context);
        let result: Result<Option<TriageOutcome>, Error> = match &inv.payload {
            Payload::Transition(..) | Payload::People(_) => Ok(None),
            Payload::Alarm(s) => triage.handle(s).await.map(Some),
            Payload::Pipeline(pe) => match Event::from_pipeline(pe) {
                Err(e) => Err(e),
                Ok(Event::Opened(r) | Event::Escalated(r)) => diagnose.handle(&r).await.map(|_| None),
                Ok(Event::Diagnosed(d)) => remediate.on_diagnosis(&d).await.map(|_| None),
                Ok(Event::Approved(a)) => remediate.on_approval(&a, &Approvers::any()).await.map(|_| None),
                Ok(Event::Recovered(r)) => resolve.on_recovered(&r).await.map(|_| None),
                Ok(Event::Applied(_) | Event::Resolved(_) | Event::Acknowledged(_)) => Ok(None),
            },
            Payload::Envelope(v) => match admit(&f_store, &clock, v).await {
                Ok(Admission::Admitted(event)) => f_bus
                    .put(&event.to_pipeline())
                    .await
                    .map(|_| None)
                    .map_err(Error::from),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            },
            Payload::Sweep => sweeper.sweep().await.map(|_| None),
            Payload::Approve(action, by, incident) => {
                approve(&f_store, &f_bus, action, by, incident.as_deref()).await
            }
        };
        let error = result.as_ref().err().map(|e| (e.to_string(), e.is_retryable()));
        out.ran.push(Ran {
            context,
            at: clock.now(),
            what: inv.payload.describe(),
            attempt: inv.attempt,
            redriven: inv.redriven,
            error: error.clone(),
        });
        match result {
            Ok(Some(o)) => {
                if let Payload::Alarm(s) = &inv.payload {
                    out.triage.entry(s.delivery_id.clone()).or_default().push(o);
                }
            }
            Ok(None) => {}
            Err(e) => {
                let person = matches!(inv.payload, Payload::Approve(..));
                if person {
                    // `firebreak approve` is a person at a terminal, not an async invoke: they
                    // try again a minute later, twice, whatever the error; then give up.
                    if (inv.attempt as usize) < RETRY_DELAYS_S.len() {
                        let due = clock.now() + Duration::seconds(RETRY_DELAYS_S[inv.attempt as usize]);
                        push(
                            &mut queue,
                            due,
                            inv.payload.clone(),
                            inv.attempt + 1,
                            inv.redriven,
                        );
                    } else {
                        out.approvals_given_up += 1;
                    }
                } else if e.is_retryable() && (inv.attempt as usize) < RETRY_DELAYS_S.len() {
                    let due = clock.now() + Duration::seconds(RETRY_DELAYS_S[inv.attempt as usize]);
                    push(
                        &mut queue,
                        due,
                        inv.payload.clone(),
                        inv.attempt + 1,
                        inv.redriven,
                    );
                } else if plan.enabled() || redrive_round == 0 {
                    out.failed_over += 1;
                    if !e.is_retryable() {
                        out.failed_permanent += 1;
                    }
                    queued.push(inv.payload.clone());
                    failure_queue.push(inv.clone());
                } else if let Some(last) = out.ran.last() {
                    out.failed_after_redrive.push(last.clone());
                    if redrive_round < 3 {
                        failure_queue.push(inv.clone());
                    }
                }
            }
        }
        // What the invocation put on the bus goes to the stages it triggers.
        for pe in bus.drain() {
            let function = Payload::Pipeline(pe.clone()).function();
            if function == "none" {
                continue;
            }
            let due = clock.now() + Duration::seconds(latency_of(w, function));
            // EventBridge delivers at least once: sometimes twice, later.
            let key = hash_str(schedule.seed, &format!("{}{}", pe.detail_type, pe.detail));
            let n = event_occurrence.entry(key).or_default();
            *n += 1;
            let mut h = key ^ u64::from(*n);
            let roll = splitmix64(&mut h) % 1000;
            push(&mut queue, due, Payload::Pipeline(pe.clone()), 0, false);
            if roll < schedule.pipeline_dup_permille {
                let later = due + Duration::seconds(1 + (splitmix64(&mut h) % 120) as i64);
                push(&mut queue, later, Payload::Pipeline(pe), 0, false);
            }
        }
    }

    out.incidents = store.all();
    for i in &out.incidents {
        out.timelines
            .insert(i.id.clone(), store.timeline(&i.id).await.unwrap_or_default());
    }
    for p in &queued {
        let service = match p {
            Payload::Alarm(s) => Some(w.policy.classify(s).service),
            Payload::Pipeline(pe) => pe
                .detail
                .get("incident_id")
                .and_then(|v| v.as_str())
                .and_then(|id| out.incidents.iter().find(|i| i.id.to_string() == id))
                .map(|i| i.service.clone()),
            _ => None,
        };
        out.queued_services.extend(service);
    }
    out.sent = notifier.sent();
    out.updates = ecs.updates();
    out
}

/// `firebreak approve` through the faulty store and bus, as the drill's approve step does.
async fn approve<S: IncidentStore, B: EventBus>(
    store: &S,
    bus: &B,
    action: &str,
    by: &str,
    incident: Option<&str>,
) -> Result<Option<TriageOutcome>, Error> {
    let id = firebreak_core::drill::approval_target(store, incident, "approve").await?;
    let identity = InMemoryCallerIdentity::new(by.to_string());
    request_approval(store, bus, &identity, &id, action).await?;
    Ok(None)
}
