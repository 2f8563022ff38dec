//! Fault injection: a wrapper for every port that, on each call, asks a shared seeded
//! [`FaultPlan`] whether to pass the call through or to fail it the way AWS calls fail:
//! throttled, a 5xx, a timeout (the effect may or may not have happened), or a success whose
//! response was lost (the effect happened, the caller sees a retryable error).
//!
//! The plan is deterministic for a seed: the same calls in the same order get the same faults,
//! so a schedule that breaks an invariant can be replayed and shrunk. It can be switched off
//! (faults stop, as when a throttled dependency recovers) and it keeps a trace of the calls it
//! saw, with the invocation the driver said they belong to, so a violation can be explained call
//! by call.
//!
//! The wrapper keeps the inner adapter's semantics for the calls it lets through; the faults it
//! injects are all retryable, so a stage that is correct under at-least-once delivery, retried
//! by Lambda, must end in the same state as without faults.

use crate::model::incident::{EcsService, Incident, IncidentId};
use crate::model::timeline::TimelineEntry;
use crate::ports::*;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Throttled (`ThrottlingException`): nothing happened.
    Throttle,
    /// A 5xx (`InternalServerError`): nothing happened.
    ServerError,
    /// The call timed out; `effect` says whether it reached the service and took effect anyway.
    Timeout { effect: bool },
    /// The call took effect and its response was lost (a connection reset on the way back).
    LostResponse,
}

impl Fault {
    /// Whether the inner call ran.
    pub fn took_effect(self) -> bool {
        matches!(self, Fault::Timeout { effect: true } | Fault::LostResponse)
    }

    /// A short name for traces.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::ServerError => "5xx",
            Fault::Timeout { effect: false } => "timeout (no effect)",
            Fault::Timeout { effect: true } => "timeout (took effect)",
            Fault::LostResponse => "lost-response",
        }
    }

    /// The retryable error the caller sees for `operation`.
    pub fn error(self, operation: &str) -> PortError {
        match self {
            Fault::Throttle => {
                PortError::new(operation, "Rate exceeded", true).with_code("ThrottlingException")
            }
            Fault::ServerError => PortError::new(operation, "service unavailable (HTTP 500)", true)
                .with_code("InternalServerError"),
            Fault::Timeout { .. } => {
                PortError::new(operation, "operation timed out", true).with_code("RequestTimeout")
            }
            Fault::LostResponse => PortError::new(
                operation,
                "connection reset by peer while reading the response",
                true,
            ),
        }
    }
}

/// Faults injected so far, by kind, and calls seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub calls: u64,
    pub throttle: u64,
    pub server_error: u64,
    /// Timeouts, with and without effect.
    pub timeout: u64,
    /// Of `timeout`, those whose call took effect.
    pub timeout_with_effect: u64,
    pub lost_response: u64,
}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.throttle + self.server_error + self.timeout + self.lost_response
    }

    pub fn add(&mut self, o: &FaultCounts) {
        self.calls += o.calls;
        self.throttle += o.throttle;
        self.server_error += o.server_error;
        self.timeout += o.timeout;
        self.timeout_with_effect += o.timeout_with_effect;
        self.lost_response += o.lost_response;
    }

    fn count(&mut self, f: Fault) {
        match f {
            Fault::Throttle => self.throttle += 1,
            Fault::ServerError => self.server_error += 1,
            Fault::Timeout { effect } => {
                self.timeout += 1;
                if effect {
                    self.timeout_with_effect += 1;
                }
            }
            Fault::LostResponse => self.lost_response += 1,
        }
    }
}

/// One call the plan saw.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedCall {
    /// Index of the call in the run (0-based).
    pub n: u64,
    /// The invocation the driver said was running ([`FaultPlan::set_context`]).
    pub context: u64,
    /// `DynamoDB PutItem (claim)`, `SNS Publish`, ...
    pub operation: &'static str,
    /// A short description of the arguments (the incident, the event id, the subject).
    pub what: String,
    pub fault: Option<Fault>,
}

#[derive(Debug)]
struct PlanState {
    rng: u64,
    /// Faults per million calls.
    rate_ppm: u64,
    enabled: bool,
    /// When set, only these call indices fault (replay and shrinking).
    script: Option<BTreeMap<u64, Fault>>,
    /// Operations never faulted (prefix match).
    exempt: Vec<&'static str>,
    counts: FaultCounts,
    by_operation: BTreeMap<&'static str, FaultCounts>,
    context: u64,
    trace: Vec<TracedCall>,
    keep_trace: bool,
}

/// The shared, seeded schedule of faults every wrapper consults.
#[derive(Debug)]
pub struct FaultPlan {
    state: Mutex<PlanState>,
}

/// splitmix64: a small, good, seedable generator (no dependency).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FaultPlan {
    /// Faults at `rate` (0.0 ..= 1.0) of calls, chosen from `seed`.
    pub fn new(seed: u64, rate: f64) -> FaultPlan {
        let rate_ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        FaultPlan {
            state: Mutex::new(PlanState {
                rng: seed ^ 0x5eed_f00d_dead_beef,
                rate_ppm,
                enabled: rate_ppm > 0,
                script: None,
                exempt: Vec::new(),
                counts: FaultCounts::default(),
                by_operation: BTreeMap::new(),
                context: 0,
                trace: Vec::new(),
                keep_trace: true,
            }),
        }
    }

    /// A plan that never faults (the fault-free reference run).
    pub fn off() -> FaultPlan {
        FaultPlan::new(0, 0.0)
    }

    /// A plan that faults exactly the calls named (by index), for replaying and shrinking a
    /// schedule.
    pub fn scripted(faults: BTreeMap<u64, Fault>) -> FaultPlan {
        let plan = FaultPlan::new(0, 0.0);
        {
            let mut s = lock(&plan.state);
            s.script = Some(faults);
            s.enabled = true;
        }
        plan
    }

    /// Never faults operations whose name starts with `prefix`.
    pub fn exempt(self, prefix: &'static str) -> FaultPlan {
        lock(&self.state).exempt.push(prefix);
        self
    }

    /// Keeps (the default) or drops the call trace (long runs that only count).
    pub fn keep_trace(self, keep: bool) -> FaultPlan {
        lock(&self.state).keep_trace = keep;
        self
    }

    /// Switches faults on or off; calls are still counted and traced.
    pub fn set_enabled(&self, on: bool) {
        lock(&self.state).enabled = on;
    }

    pub fn enabled(&self) -> bool {
        lock(&self.state).enabled
    }

    /// Tags the calls that follow with `context` (the driver's invocation number).
    pub fn set_context(&self, context: u64) {
        lock(&self.state).context = context;
    }

    pub fn counts(&self) -> FaultCounts {
        lock(&self.state).counts
    }

    pub fn counts_by_operation(&self) -> BTreeMap<&'static str, FaultCounts> {
        lock(&self.state).by_operation.clone()
    }

    pub fn trace(&self) -> Vec<TracedCall> {
        lock(&self.state).trace.clone()
    }

    /// The faults injected, by call index: replaying them with [`FaultPlan::scripted`] gives the
    /// same run.
    pub fn injected(&self) -> BTreeMap<u64, Fault> {
        lock(&self.state)
            .trace
            .iter()
            .filter_map(|c| c.fault.map(|f| (c.n, f)))
            .collect()
    }

    /// Decides the fate of one call.
    pub fn decide(&self, operation: &'static str, what: impl FnOnce() -> String) -> Option<Fault> {
        let mut s = lock(&self.state);
        let n = s.counts.calls;
        s.counts.calls += 1;
        s.by_operation.entry(operation).or_default().calls += 1;
        let exempt = s.exempt.iter().any(|p| operation.starts_with(p));
        let fault = if !s.enabled || exempt {
            None
        } else if let Some(script) = &s.script {
            script.get(&n).copied()
        } else {
            let roll = splitmix64(&mut s.rng) % 1_000_000;
            if roll < s.rate_ppm {
                let kind = splitmix64(&mut s.rng);
                Some(match kind % 4 {
                    0 => Fault::Throttle,
                    1 => Fault::ServerError,
                    2 => Fault::Timeout {
                        effect: (kind >> 8) % 2 == 0,
                    },
                    _ => Fault::LostResponse,
                })
            } else {
                None
            }
        };
        if let Some(f) = fault {
            s.counts.count(f);
            s.by_operation.entry(operation).or_default().count(f);
        }
        if s.keep_trace {
            let context = s.context;
            s.trace.push(TracedCall {
                n,
                context,
                operation,
                what: what(),
                fault,
            });
        }
        fault
    }
}

/// Any port, behind a [`FaultPlan`]. `Faulty<'_, InMemoryIncidentStore>` is an
/// [`IncidentStore`], `Faulty<'_, InMemoryNotifier>` a [`Notifier`], and so on for every port.
#[derive(Debug)]
pub struct Faulty<'a, T> {
    pub inner: &'a T,
    pub plan: &'a FaultPlan,
}

impl<'a, T> Faulty<'a, T> {
    pub fn new(inner: &'a T, plan: &'a FaultPlan) -> Self {
        Faulty { inner, plan }
    }

    /// Runs `call` unless the plan fails it; `wrap` turns the injected port error into the
    /// port's own error type.
    async fn run<R, E>(
        &self,
        operation: &'static str,
        what: impl FnOnce() -> String,
        call: impl Future<Output = Result<R, E>>,
        wrap: impl FnOnce(PortError) -> E,
    ) -> Result<R, E> {
        match self.plan.decide(operation, what) {
            None => call.await,
            Some(f) => {
                if f.took_effect() {
                    // whatever the call returned, the caller never sees it
                    let _ = call.await;
                }
                Err(wrap(f.error(operation)))
            }
        }
    }
}

fn ids(entries: &[TimelineEntry]) -> String {
    entries
        .iter()
        .map(|e| e.event_id.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

impl<T: IncidentStore> IncidentStore for Faulty<'_, T> {
    async fn open_claiming(
        &self,
        incident: &Incident,
        entries: &[TimelineEntry],
        reopen_window: Duration,
        transition: Option<&Transition>,
    ) -> Result<OpenOutcome, StoreError> {
        self.run(
            "DynamoDB TransactWriteItems (open)",
            || format!("{} [{}]", incident.id, ids(entries)),
            self.inner
                .open_claiming(incident, entries, reopen_window, transition),
            StoreError::Port,
        )
        .await
    }

    async fn claim_transition(&self, transition: &Transition) -> Result<TransitionClaim, StoreError> {
        self.run(
            "DynamoDB UpdateItem (claim_transition)",
            || format!("{} by {}", transition.key, transition.delivery),
            self.inner.claim_transition(transition),
            StoreError::Port,
        )
        .await
    }

    async fn save(
        &self,
        incident: &Incident,
        expected_version: u64,
        pointer: PointerChange,
        entries: &[TimelineEntry],
    ) -> Result<(), StoreError> {
        self.run(
            "DynamoDB TransactWriteItems (save)",
            || {
                format!(
                    "{} v{expected_version} {pointer:?} [{}]",
                    incident.id,
                    ids(entries)
                )
            },
            self.inner.save(incident, expected_version, pointer, entries),
            StoreError::Port,
        )
        .await
    }

    async fn append(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<usize, StoreError> {
        self.run(
            "DynamoDB BatchWriteItem (append)",
            || format!("{id} [{}]", ids(entries)),
            self.inner.append(id, entries),
            StoreError::Port,
        )
        .await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.run(
            "DynamoDB GetItem (get)",
            || id.to_string(),
            self.inner.get(id),
            StoreError::Port,
        )
        .await
    }

    async fn put_postmortem(&self, id: &IncidentId, markdown: &str) -> Result<(), StoreError> {
        self.run(
            "DynamoDB PutItem (put_postmortem)",
            || id.to_string(),
            self.inner.put_postmortem(id, markdown),
            StoreError::Port,
        )
        .await
    }

    async fn postmortem(&self, id: &IncidentId) -> Result<Option<String>, StoreError> {
        self.run(
            "DynamoDB GetItem (postmortem)",
            || id.to_string(),
            self.inner.postmortem(id),
            StoreError::Port,
        )
        .await
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.run(
            "DynamoDB Query (timeline)",
            || id.to_string(),
            self.inner.timeline(id),
            StoreError::Port,
        )
        .await
    }

    async fn find_for_service(
        &self,
        service: &str,
        reopen_window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        self.run(
            "DynamoDB GetItem (find_for_service)",
            || service.to_string(),
            self.inner.find_for_service(service, reopen_window, now),
            StoreError::Port,
        )
        .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Incident>, StoreError> {
        self.run(
            "DynamoDB Query (list)",
            || format!("active_only={}", query.active_only),
            self.inner.list(query),
            StoreError::Port,
        )
        .await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(
            "DynamoDB PutItem (claim)",
            || format!("{key} for {owner}"),
            self.inner.claim(key, owner, until, now),
            StoreError::Port,
        )
        .await
    }

    async fn lease(&self, key: &str) -> Result<Option<Lease>, StoreError> {
        self.run(
            "DynamoDB GetItem (lease)",
            || key.to_string(),
            self.inner.lease(key),
            StoreError::Port,
        )
        .await
    }

    async fn autonomy(&self, key: &AutonomyKey) -> Result<Option<AutonomyRecord>, StoreError> {
        self.run(
            "DynamoDB GetItem (autonomy)",
            || key.text(),
            self.inner.autonomy(key),
            StoreError::Port,
        )
        .await
    }

    async fn save_autonomy(&self, record: &AutonomyRecord, expected: u64) -> Result<bool, StoreError> {
        self.run(
            "DynamoDB PutItem (save_autonomy)",
            || format!("{} v{expected}", record.key.text()),
            self.inner.save_autonomy(record, expected),
            StoreError::Port,
        )
        .await
    }

    async fn autonomy_records(&self) -> Result<Vec<AutonomyRecord>, StoreError> {
        self.run(
            "DynamoDB Query (autonomy_records)",
            String::new,
            self.inner.autonomy_records(),
            StoreError::Port,
        )
        .await
    }
}

impl<T: Notifier> Notifier for Faulty<'_, T> {
    async fn notify(&self, route: Route, message: &Notification) -> Result<String, PortError> {
        self.run(
            "SNS Publish",
            || format!("{route:?} {}", message.subject),
            self.inner.notify(route, message),
            |e| e,
        )
        .await
    }
}

impl<T: EventBus> EventBus for Faulty<'_, T> {
    async fn put(&self, event: &PipelineEvent) -> Result<(), PortError> {
        self.run(
            "EventBridge PutEvents",
            || event.detail_type.clone(),
            self.inner.put(event),
            |e| e,
        )
        .await
    }
}

impl<T: LogQueries> LogQueries for Faulty<'_, T> {
    async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        Faulty::run(
            self,
            "CloudWatch Logs StartQuery",
            || request.name.clone(),
            self.inner.run(request),
            QueryError::Port,
        )
        .await
    }
}

impl<T: MetricQueries> MetricQueries for Faulty<'_, T> {
    async fn get(&self, request: &MetricRequest) -> Result<Vec<MetricData>, PortError> {
        self.run(
            "CloudWatch GetMetricData",
            || format!("{} metrics", request.queries.len()),
            self.inner.get(request),
            |e| e,
        )
        .await
    }
}

impl<T: ServiceControl> ServiceControl for Faulty<'_, T> {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        self.run(
            "ECS DescribeServices",
            || service.to_string(),
            self.inner.describe(service),
            |e| e,
        )
        .await
    }

    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        self.run(
            "ECS ListTaskDefinitions",
            || family.to_string(),
            self.inner.task_definitions(family),
            |e| e,
        )
        .await
    }

    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        self.run(
            "ECS DescribeTaskDefinition",
            || name.to_string(),
            self.inner.task_definition(name),
            |e| e,
        )
        .await
    }

    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        self.run(
            "ECS UpdateService",
            || format!("{service} {change:?}"),
            self.inner.update(service, change),
            |e| e,
        )
        .await
    }
}

impl<T: AlarmStatus> AlarmStatus for Faulty<'_, T> {
    async fn states(
        &self,
        alarm_names: &[String],
    ) -> Result<BTreeMap<String, crate::model::signal::AlarmState>, PortError> {
        self.run(
            "CloudWatch DescribeAlarms",
            || alarm_names.join(","),
            self.inner.states(alarm_names),
            |e| e,
        )
        .await
    }
}

impl<T: CallerIdentity> CallerIdentity for Faulty<'_, T> {
    async fn caller_arn(&self) -> Result<String, PortError> {
        self.run(
            "STS GetCallerIdentity",
            String::new,
            self.inner.caller_arn(),
            |e| e,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{InMemoryEventBus, InMemoryNotifier};
    use std::collections::BTreeMap as Map;

    fn note() -> Notification {
        Notification {
            subject: "s".into(),
            body: "b".into(),
            attributes: Map::new(),
            facts: Default::default(),
        }
    }

    #[tokio::test]
    async fn the_same_seed_gives_the_same_faults_and_every_kind_comes_up() {
        let run = |seed| async move {
            let plan = FaultPlan::new(seed, 0.5);
            let inner = InMemoryNotifier::new();
            let n = Faulty::new(&inner, &plan);
            let mut out = Vec::new();
            for _ in 0..400 {
                out.push(
                    n.notify(Route::Severity(crate::model::severity::Severity::Sev1), &note())
                        .await
                        .is_ok(),
                );
            }
            (out, plan.counts(), inner.sent().len())
        };
        let (a, ca, _) = run(7).await;
        let (b, cb, _) = run(7).await;
        assert_eq!(a, b);
        assert_eq!(ca, cb);
        assert!(ca.throttle > 0 && ca.server_error > 0 && ca.timeout > 0 && ca.lost_response > 0);
        let (c, _, _) = run(8).await;
        assert_ne!(a, c);
    }

    #[tokio::test]
    async fn a_lost_response_takes_effect_and_a_throttle_does_not() {
        let inner = InMemoryEventBus::new();
        let plan = FaultPlan::scripted([(0, Fault::LostResponse), (1, Fault::Throttle)].into());
        let bus = Faulty::new(&inner, &plan);
        let ev = PipelineEvent {
            detail_type: "Incident Opened".into(),
            detail: serde_json::json!({}),
        };
        let e = bus.put(&ev).await.unwrap_err();
        assert!(e.retryable);
        assert_eq!(inner.events().len(), 1);
        let e = bus.put(&ev).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(inner.events().len(), 1);
        bus.put(&ev).await.unwrap();
        assert_eq!(inner.events().len(), 2);
        plan.set_enabled(false);
        assert_eq!(plan.counts().total(), 2);
        assert_eq!(plan.counts().calls, 3);
    }
}
