//! In-memory implementations of the ports: for unit tests, drills and the CLI's offline modes.
//! They keep the same guarantees as the AWS adapters (atomic open, optimistic locking,
//! idempotent entries, atomic leases) so the use-cases are tested against real semantics.

use crate::model::incident::{EcsService, Incident, IncidentId, IncidentStatus};
use crate::model::signal::AlarmState;
use crate::model::timeline::{sort_entries, TimelineEntry};
use crate::ports::*;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Clone)]
struct Pointer {
    incident: IncidentId,
    resolved_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct StoreState {
    incidents: BTreeMap<IncidentId, Incident>,
    timelines: HashMap<IncidentId, Vec<TimelineEntry>>,
    event_ids: HashSet<(IncidentId, String)>,
    pointers: HashMap<String, Pointer>,
    /// key → (holder, until)
    leases: HashMap<String, (String, DateTime<Utc>)>,
    autonomy: BTreeMap<String, AutonomyRecord>,
    postmortems: HashMap<IncidentId, String>,
    /// transition → (claiming delivery, its service)
    transitions: HashMap<String, (String, String)>,
    /// The largest document written so far, by kind (`incident`, `entry`), in JSON bytes.
    largest: BTreeMap<&'static str, usize>,
    /// Calls made, by method name: lets tests and benches count round trips.
    calls: BTreeMap<&'static str, usize>,
}

impl StoreState {
    fn claims(&self, p: &Pointer, window: Duration, now: DateTime<Utc>) -> bool {
        match p.resolved_at {
            None => true,
            Some(at) => chrono::Duration::from_std(window).is_ok_and(|w| now - at <= w),
        }
    }

    /// Sizes the documents a write would store: refused over [`MAX_ITEM_BYTES`], as DynamoDB
    /// would; otherwise the largest so far is kept.
    fn check_sizes(
        &mut self,
        incident: Option<&Incident>,
        id: &IncidentId,
        entries: &[TimelineEntry],
    ) -> Result<(), StoreError> {
        let size = |v: serde_json::Result<Vec<u8>>| v.map_or(0, |b| b.len());
        let mut seen = Vec::with_capacity(entries.len() + 1);
        if let Some(i) = incident {
            let n = size(serde_json::to_vec(i));
            check_item_size(&format!("INC#{}/META", i.id), n)?;
            seen.push(("incident", n));
        }
        for e in entries {
            let n = size(serde_json::to_vec(e));
            check_item_size(&format!("INC#{id}/T#{}", e.event_id), n)?;
            seen.push(("entry", n));
        }
        for (kind, n) in seen {
            let m = self.largest.entry(kind).or_default();
            *m = (*m).max(n);
        }
        Ok(())
    }

    fn check_new_entries(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        for e in entries {
            if self.event_ids.contains(&(id.clone(), e.event_id.clone())) || !seen.insert(&e.event_id) {
                return Err(StoreError::Duplicate(e.event_id.clone()));
            }
        }
        Ok(())
    }

    fn claim_transition(&mut self, t: &Transition) -> TransitionClaim {
        let (holder, service) = self
            .transitions
            .entry(t.key.clone())
            .or_insert_with(|| (t.delivery.clone(), t.service.clone()));
        if *holder == t.delivery {
            TransitionClaim::Mine
        } else {
            TransitionClaim::Theirs {
                delivery: holder.clone(),
                service: service.clone(),
            }
        }
    }

    fn push_entries(&mut self, id: &IncidentId, entries: &[TimelineEntry]) -> usize {
        let mut n = 0;
        for e in entries {
            if self.event_ids.insert((id.clone(), e.event_id.clone())) {
                self.timelines.entry(id.clone()).or_default().push(e.clone());
                n += 1;
            }
        }
        n
    }
}

/// An incident store in memory.
#[derive(Debug, Default)]
pub struct InMemoryIncidentStore {
    state: Mutex<StoreState>,
}

impl InMemoryIncidentStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest document written so far, by kind (`incident`, `entry`), in JSON bytes.
    pub fn largest_items(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.state).largest.clone()
    }

    /// How many times each method was called.
    pub fn calls(&self) -> BTreeMap<&'static str, usize> {
        lock(&self.state).calls.clone()
    }

    /// Every incident, oldest first.
    pub fn all(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = lock(&self.state).incidents.values().cloned().collect();
        v.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)));
        v
    }

    fn count(&self, name: &'static str) -> MutexGuard<'_, StoreState> {
        let mut s = lock(&self.state);
        *s.calls.entry(name).or_default() += 1;
        s
    }
}

impl IncidentStore for InMemoryIncidentStore {
    async fn open_claiming(
        &self,
        incident: &Incident,
        entries: &[TimelineEntry],
        reopen_window: Duration,
        transition: Option<&Transition>,
    ) -> Result<OpenOutcome, StoreError> {
        let mut s = self.count("open");
        if let Some(t) = transition {
            if let Some((holder, service)) = s.transitions.get(&t.key) {
                if *holder != t.delivery {
                    return Ok(OpenOutcome::TransitionTaken {
                        delivery: holder.clone(),
                        service: service.clone(),
                    });
                }
            }
        }
        if let Some(existing) = s.incidents.get(&incident.id) {
            return Ok(OpenOutcome::IdTaken(Box::new(existing.clone())));
        }
        if let Some(p) = s.pointers.get(&incident.service) {
            // the window counts to the alarm's state change, not to when triage got to it
            if s.claims(p, reopen_window, incident.detected_at.min(incident.opened_at)) {
                let id = p.incident.clone();
                return match s.incidents.get(&id) {
                    Some(i) => Ok(OpenOutcome::Existing(Box::new(i.clone()))),
                    None => Err(StoreError::Corrupt {
                        record: format!("OPEN#{}", incident.service),
                        reason: format!("points at missing incident {id}"),
                    }),
                };
            }
        }
        s.check_new_entries(&incident.id, entries)?;
        s.check_sizes(Some(incident), &incident.id, entries)?;
        s.pointers.insert(
            incident.service.clone(),
            Pointer {
                incident: incident.id.clone(),
                resolved_at: None,
            },
        );
        s.incidents.insert(incident.id.clone(), incident.clone());
        s.push_entries(&incident.id, entries);
        if let Some(t) = transition {
            s.claim_transition(t);
        }
        Ok(OpenOutcome::Opened)
    }

    async fn save(
        &self,
        incident: &Incident,
        expected_version: u64,
        pointer: PointerChange,
        entries: &[TimelineEntry],
    ) -> Result<(), StoreError> {
        let mut s = self.count("save");
        let current = s
            .incidents
            .get(&incident.id)
            .ok_or_else(|| StoreError::NotFound(incident.id.clone()))?;
        if current.version != expected_version || incident.version != expected_version + 1 {
            return Err(StoreError::Conflict(incident.id.clone()));
        }
        s.check_new_entries(&incident.id, entries)?;
        s.check_sizes(Some(incident), &incident.id, entries)?;
        match pointer {
            PointerChange::Keep => {}
            PointerChange::Release => {
                if let Some(p) = s.pointers.get_mut(&incident.service) {
                    if p.incident == incident.id {
                        p.resolved_at = Some(incident.resolved_at.unwrap_or(incident.opened_at));
                    }
                }
            }
            PointerChange::Reclaim => {
                let ok = s
                    .pointers
                    .get(&incident.service)
                    .is_none_or(|p| p.incident == incident.id);
                if !ok {
                    return Err(StoreError::Conflict(incident.id.clone()));
                }
                s.pointers.insert(
                    incident.service.clone(),
                    Pointer {
                        incident: incident.id.clone(),
                        resolved_at: None,
                    },
                );
            }
        }
        s.incidents.insert(incident.id.clone(), incident.clone());
        s.push_entries(&incident.id, entries);
        Ok(())
    }

    async fn append(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<usize, StoreError> {
        let mut s = self.count("append");
        if !s.incidents.contains_key(id) {
            return Err(StoreError::NotFound(id.clone()));
        }
        s.check_sizes(None, id, entries)?;
        Ok(s.push_entries(id, entries))
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        Ok(self.count("get").incidents.get(id).cloned())
    }

    async fn put_postmortem(&self, id: &IncidentId, markdown: &str) -> Result<(), StoreError> {
        let mut s = self.count("put_postmortem");
        check_item_size(&format!("INC#{id}/POSTMORTEM"), markdown.len())?;
        let m = s.largest.entry("postmortem").or_default();
        *m = (*m).max(markdown.len());
        s.postmortems.insert(id.clone(), markdown.to_string());
        Ok(())
    }

    async fn postmortem(&self, id: &IncidentId) -> Result<Option<String>, StoreError> {
        Ok(self.count("postmortem").postmortems.get(id).cloned())
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<TimelineEntry>, StoreError> {
        let mut v = self
            .count("timeline")
            .timelines
            .get(id)
            .cloned()
            .unwrap_or_default();
        sort_entries(&mut v);
        Ok(v)
    }

    async fn find_for_service(
        &self,
        service: &str,
        reopen_window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        let s = self.count("find_for_service");
        Ok(s.pointers
            .get(service)
            .filter(|p| s.claims(p, reopen_window, now))
            .and_then(|p| s.incidents.get(&p.incident).cloned()))
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Incident>, StoreError> {
        let s = self.count("list");
        let mut v: Vec<Incident> = s
            .incidents
            .values()
            .filter(|i| !query.active_only || i.status != IncidentStatus::Resolved)
            .filter(|i| query.since.is_none_or(|t| i.opened_at >= t))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)));
        Ok(v)
    }

    async fn claim_transition(&self, t: &Transition) -> Result<TransitionClaim, StoreError> {
        Ok(self.count("claim_transition").claim_transition(t))
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut s = self.count("claim");
        match s.leases.get(key) {
            Some((holder, held)) if *held > now && holder != owner => Ok(false),
            _ => {
                s.leases.insert(key.to_string(), (owner.to_string(), until));
                Ok(true)
            }
        }
    }

    async fn lease(&self, key: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.count("lease").leases.get(key).map(|(owner, until)| Lease {
            owner: owner.clone(),
            until: *until,
        }))
    }

    async fn autonomy(&self, key: &AutonomyKey) -> Result<Option<AutonomyRecord>, StoreError> {
        Ok(self.count("autonomy").autonomy.get(&key.text()).cloned())
    }

    async fn save_autonomy(&self, record: &AutonomyRecord, expected: u64) -> Result<bool, StoreError> {
        let mut s = self.count("save_autonomy");
        let k = record.key.text();
        let stored = s.autonomy.get(&k).map_or(0, |r| r.version);
        if record.version != expected + 1 {
            return Err(StoreError::Port(
                PortError::new(
                    "DynamoDB PutItem (save_autonomy)",
                    format!(
                        "record {k} has version {}, not {} (expected + 1)",
                        record.version,
                        expected + 1
                    ),
                    false,
                )
                .with_code("VersionMismatch"),
            ));
        }
        if stored != expected {
            return Ok(false);
        }
        s.autonomy.insert(k, record.clone());
        Ok(true)
    }

    async fn autonomy_records(&self) -> Result<Vec<AutonomyRecord>, StoreError> {
        Ok(self
            .count("autonomy_records")
            .autonomy
            .values()
            .cloned()
            .collect())
    }
}

impl InMemoryIncidentStore {
    /// Stores autonomy records as they are (the drills carry them from one drill to the next).
    pub fn load_autonomy(&self, records: impl IntoIterator<Item = AutonomyRecord>) {
        let mut s = lock(&self.state);
        for r in records {
            s.autonomy.insert(r.key.text(), r);
        }
    }
}

/// Records notifications instead of sending them.
#[derive(Debug, Default)]
pub struct InMemoryNotifier {
    sent: Mutex<Vec<(Route, Notification)>>,
    /// When each was sent, by `clock` (empty without one).
    at: Mutex<Vec<DateTime<Utc>>>,
    clock: Option<SimClock>,
    failures: Mutex<usize>,
}

impl InMemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }
    /// Stamps each notification with `clock`'s time (drills show when each page went out).
    pub fn stamped(clock: SimClock) -> Self {
        InMemoryNotifier {
            clock: Some(clock),
            ..Self::default()
        }
    }
    pub fn sent(&self) -> Vec<(Route, Notification)> {
        lock(&self.sent).clone()
    }
    /// What was sent and when (a notifier made with [`InMemoryNotifier::stamped`]).
    pub fn sent_at(&self) -> Vec<(DateTime<Utc>, Route, Notification)> {
        let at = lock(&self.at).clone();
        lock(&self.sent)
            .iter()
            .zip(at)
            .map(|((r, n), t)| (t, *r, n.clone()))
            .collect()
    }
    /// Makes the next `n` notifications fail with a retryable error, as a throttled SNS does.
    pub fn fail_next(&self, n: usize) {
        *lock(&self.failures) = n;
    }
}

impl Notifier for InMemoryNotifier {
    async fn notify(&self, route: Route, message: &Notification) -> Result<String, PortError> {
        {
            let mut failures = lock(&self.failures);
            if *failures > 0 {
                *failures -= 1;
                return Err(PortError::new("SNS Publish", "rate exceeded", true).with_code("Throttling"));
            }
        }
        let mut v = lock(&self.sent);
        v.push((route, message.clone()));
        if let Some(c) = &self.clock {
            lock(&self.at).push(c.now());
        }
        Ok(format!("msg-{}", v.len()))
    }
}

/// Records HTTP posts to on-call tools and answers each with the next scripted reply (202 when
/// none is left), as PagerDuty does when it accepts an event.
#[derive(Debug, Default)]
pub struct InMemoryHttp {
    posts: Mutex<Vec<crate::ports::HttpPost>>,
    replies: Mutex<std::collections::VecDeque<Result<crate::ports::HttpReply, PortError>>>,
}

impl InMemoryHttp {
    pub fn new() -> Self {
        Self::default()
    }
    /// The next post gets `reply` (in order, one each).
    pub fn reply(&self, reply: Result<crate::ports::HttpReply, PortError>) {
        lock(&self.replies).push_back(reply);
    }
    pub fn posts(&self) -> Vec<crate::ports::HttpPost> {
        lock(&self.posts).clone()
    }
}

impl crate::ports::HttpSender for InMemoryHttp {
    async fn post(
        &self,
        request: &crate::ports::HttpPost,
        _timeout: std::time::Duration,
    ) -> Result<crate::ports::HttpReply, PortError> {
        lock(&self.posts).push(request.clone());
        lock(&self.replies).pop_front().unwrap_or_else(|| {
            Ok(crate::ports::HttpReply {
                status: 202,
                body: r#"{"status":"success","message":"Event processed"}"#.to_string(),
            })
        })
    }
}

/// Records events instead of putting them on a bus.
#[derive(Debug, Default)]
pub struct InMemoryEventBus {
    events: Mutex<Vec<PipelineEvent>>,
}

impl InMemoryEventBus {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn events(&self) -> Vec<PipelineEvent> {
        lock(&self.events).clone()
    }
    /// Removes and returns what was put so far (drills route them to the next stage).
    pub fn drain(&self) -> Vec<PipelineEvent> {
        std::mem::take(&mut *lock(&self.events))
    }
}

impl EventBus for InMemoryEventBus {
    async fn put(&self, event: &PipelineEvent) -> Result<(), PortError> {
        lock(&self.events).push(event.clone());
        Ok(())
    }
}

/// An [`InMemoryIncidentStore`] with the faults a test asks for: the next saves conflict, as
/// when another writer got there first; the next append of an entry whose id ends with a given
/// suffix fails, as when the write failed or its response was lost.
pub struct FaultyStore<'a> {
    inner: &'a InMemoryIncidentStore,
    save_conflicts: Mutex<usize>,
    lose_append: Mutex<Option<String>>,
    lose_claims: Mutex<usize>,
}

impl<'a> FaultyStore<'a> {
    /// `inner` without faults yet.
    pub fn new(inner: &'a InMemoryIncidentStore) -> Self {
        FaultyStore {
            inner,
            save_conflicts: Mutex::new(0),
            lose_append: Mutex::new(None),
            lose_claims: Mutex::new(0),
        }
    }

    /// The next `n` lease claims take effect, but their response is lost: a retryable error,
    /// as when DynamoDB's answer to the PutItem never arrived.
    pub fn lose_next_claim_responses(self, n: usize) -> Self {
        *lock(&self.lose_claims) = n;
        self
    }

    /// The next `n` saves fail with [`StoreError::Conflict`].
    pub fn conflict_next_saves(self, n: usize) -> Self {
        *lock(&self.save_conflicts) = n;
        self
    }

    /// The next append that holds an entry whose id ends with `suffix` fails with a retryable
    /// error and writes nothing.
    pub fn lose_next_append_of(self, suffix: impl Into<String>) -> Self {
        *lock(&self.lose_append) = Some(suffix.into());
        self
    }
}

impl IncidentStore for FaultyStore<'_> {
    async fn open_claiming(
        &self,
        i: &Incident,
        e: &[TimelineEntry],
        w: Duration,
        t: Option<&Transition>,
    ) -> Result<OpenOutcome, StoreError> {
        self.inner.open_claiming(i, e, w, t).await
    }
    async fn save(
        &self,
        i: &Incident,
        v: u64,
        p: PointerChange,
        e: &[TimelineEntry],
    ) -> Result<(), StoreError> {
        {
            let mut n = lock(&self.save_conflicts);
            if *n > 0 {
                *n -= 1;
                return Err(StoreError::Conflict(i.id.clone()));
            }
        }
        self.inner.save(i, v, p, e).await
    }
    async fn append(&self, id: &IncidentId, e: &[TimelineEntry]) -> Result<usize, StoreError> {
        {
            let mut lose = lock(&self.lose_append);
            if lose
                .as_deref()
                .is_some_and(|suffix| e.iter().any(|x| x.event_id.ends_with(suffix)))
            {
                *lose = None;
                return Err(StoreError::Port(PortError::new(
                    "DynamoDB BatchWriteItem",
                    "connection reset",
                    true,
                )));
            }
        }
        self.inner.append(id, e).await
    }
    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        self.inner.get(id).await
    }
    async fn put_postmortem(&self, id: &IncidentId, md: &str) -> Result<(), StoreError> {
        self.inner.put_postmortem(id, md).await
    }
    async fn postmortem(&self, id: &IncidentId) -> Result<Option<String>, StoreError> {
        self.inner.postmortem(id).await
    }
    async fn timeline(&self, id: &IncidentId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.inner.timeline(id).await
    }
    async fn find_for_service(
        &self,
        s: &str,
        w: Duration,
        n: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        self.inner.find_for_service(s, w, n).await
    }
    async fn list(&self, q: &ListQuery) -> Result<Vec<Incident>, StoreError> {
        self.inner.list(q).await
    }
    async fn claim_transition(&self, t: &Transition) -> Result<TransitionClaim, StoreError> {
        self.inner.claim_transition(t).await
    }
    async fn claim(&self, k: &str, o: &str, u: DateTime<Utc>, n: DateTime<Utc>) -> Result<bool, StoreError> {
        let taken = self.inner.claim(k, o, u, n).await?;
        let mut lose = lock(&self.lose_claims);
        if *lose > 0 {
            *lose -= 1;
            return Err(StoreError::Port(PortError::new(
                "DynamoDB PutItem",
                "response lost: connection reset",
                true,
            )));
        }
        Ok(taken)
    }
    async fn lease(&self, k: &str) -> Result<Option<Lease>, StoreError> {
        self.inner.lease(k).await
    }
    async fn autonomy(&self, k: &AutonomyKey) -> Result<Option<AutonomyRecord>, StoreError> {
        self.inner.autonomy(k).await
    }
    async fn save_autonomy(&self, r: &AutonomyRecord, v: u64) -> Result<bool, StoreError> {
        self.inner.save_autonomy(r, v).await
    }
    async fn autonomy_records(&self) -> Result<Vec<AutonomyRecord>, StoreError> {
        self.inner.autonomy_records().await
    }
}

/// Alarm states set by the test or drill.
#[derive(Debug, Default)]
pub struct InMemoryAlarmStatus {
    states: Mutex<BTreeMap<String, AlarmState>>,
    /// Calls to let through before failing, and how many to fail.
    failing: Mutex<Option<(usize, usize)>>,
}

impl InMemoryAlarmStatus {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&self, alarm: &str, state: AlarmState) {
        lock(&self.states).insert(alarm.to_string(), state);
    }
    /// After `pass` more calls, the next `fail` calls are throttled (retryable).
    pub fn throttle_after(&self, pass: usize, fail: usize) {
        *lock(&self.failing) = Some((pass, fail));
    }
}

impl AlarmStatus for InMemoryAlarmStatus {
    async fn states(&self, alarm_names: &[String]) -> Result<BTreeMap<String, AlarmState>, PortError> {
        {
            let mut f = lock(&self.failing);
            match &mut *f {
                Some((0, 0)) => *f = None,
                Some((0, fail)) => {
                    *fail -= 1;
                    return Err(PortError::new("CloudWatch DescribeAlarms", "Rate exceeded", true)
                        .with_code("Throttling"));
                }
                Some((pass, _)) => *pass -= 1,
                None => {}
            }
        }
        let s = lock(&self.states);
        Ok(alarm_names
            .iter()
            .filter_map(|n| s.get(n).map(|st| (n.clone(), *st)))
            .collect())
    }
}

/// A simulated ECS fleet: services, task-definition revisions, deployments. Updates take effect
/// at once (a deployment completes immediately) unless `hold_rollouts` is set.
#[derive(Debug, Default)]
pub struct InMemoryServiceControl {
    state: Mutex<FleetState>,
    /// Stamps deployments and service events, as ECS does; without it they carry no time.
    clock: Option<SimClock>,
}

#[derive(Debug, Default)]
struct FleetState {
    services: BTreeMap<EcsService, ServiceState>,
    task_definitions: BTreeMap<String, Vec<String>>,
    /// What each revision holds, for those registered with their contents.
    documents: BTreeMap<String, TaskDefinition>,
    failures: HashMap<EcsService, PortError>,
    updates: Vec<(EcsService, ServiceUpdate)>,
    hold_rollouts: bool,
}

fn family_of(td: &str) -> &str {
    let name = td.rsplit('/').next().unwrap_or(td);
    name.split_once(':').map_or(name, |(f, _)| f)
}

impl InMemoryServiceControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fleet whose changes carry `clock`'s time: a deployment's creation, the service event
    /// of tasks started or stopped for a new desired count.
    pub fn with_clock(clock: &SimClock) -> Self {
        InMemoryServiceControl {
            state: Mutex::default(),
            clock: Some(clock.clone()),
        }
    }

    /// Adds (or replaces) a service and registers its task-definition revisions.
    pub fn add_service(&self, state: ServiceState, revisions: &[String]) {
        let mut s = lock(&self.state);
        for r in revisions.iter().chain(std::iter::once(&state.task_definition)) {
            let fam = s.task_definitions.entry(family_of(r).to_string()).or_default();
            if !fam.contains(r) {
                fam.push(r.clone());
            }
        }
        s.services.insert(state.service.clone(), state);
    }

    /// Registers a task-definition revision with its contents.
    pub fn add_task_definition(&self, td: TaskDefinition) {
        let mut s = lock(&self.state);
        let fam = s
            .task_definitions
            .entry(family_of(&td.name).to_string())
            .or_default();
        if !fam.contains(&td.name) {
            fam.push(td.name.clone());
        }
        s.documents.insert(td.name.clone(), td);
    }

    /// Makes the next updates of `service` fail with `error`.
    pub fn fail_updates(&self, service: &EcsService, error: PortError) {
        lock(&self.state).failures.insert(service.clone(), error);
    }

    /// Leaves deployments IN_PROGRESS after an update.
    pub fn hold_rollouts(&self, hold: bool) {
        lock(&self.state).hold_rollouts = hold;
    }

    pub fn updates(&self) -> Vec<(EcsService, ServiceUpdate)> {
        lock(&self.state).updates.clone()
    }

    pub fn service(&self, service: &EcsService) -> Option<ServiceState> {
        lock(&self.state).services.get(service).cloned()
    }
}

impl ServiceControl for InMemoryServiceControl {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        lock(&self.state).services.get(service).cloned().ok_or_else(|| {
            PortError::new(
                "ECS DescribeServices",
                format!("service {service} not found"),
                false,
            )
            .with_code("ServiceNotFoundException")
        })
    }

    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        Ok(lock(&self.state)
            .task_definitions
            .get(family)
            .cloned()
            .unwrap_or_default())
    }

    /// A revision registered with its contents gives them; one registered by name only gives
    /// its name and no containers (nothing is known of what it holds).
    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        let name = name.rsplit('/').next().unwrap_or(name);
        let s = lock(&self.state);
        if let Some(td) = s.documents.get(name) {
            return Ok(Some(td.clone()));
        }
        let known = s
            .task_definitions
            .get(family_of(name))
            .is_some_and(|f| f.iter().any(|r| r == name));
        Ok(known.then(|| TaskDefinition {
            name: name.to_string(),
            ..TaskDefinition::default()
        }))
    }

    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        self.apply(service, change, true)
    }
}

impl InMemoryServiceControl {
    /// An UpdateService that people make (the console, the CLI): applied as ECS would, and not
    /// counted among [`InMemoryServiceControl::updates`], which are Firebreak's.
    ///
    /// # Errors
    /// As UpdateService: an unknown service or revision.
    pub fn update_by_people(
        &self,
        service: &EcsService,
        change: &ServiceUpdate,
    ) -> Result<ServiceState, PortError> {
        self.apply(service, change, false)
    }

    fn apply(
        &self,
        service: &EcsService,
        change: &ServiceUpdate,
        firebreak: bool,
    ) -> Result<ServiceState, PortError> {
        let mut s = lock(&self.state);
        if let Some(e) = s.failures.get(service).filter(|_| firebreak) {
            return Err(e.clone());
        }
        if firebreak {
            s.updates.push((service.clone(), change.clone()));
        }
        let hold = s.hold_rollouts;
        let known = change.task_definition.as_ref().is_none_or(|td| {
            s.task_definitions
                .get(family_of(td))
                .is_some_and(|f| f.contains(td))
        });
        if !known {
            return Err(
                PortError::new("ECS UpdateService", "task definition is not registered", false)
                    .with_code("InvalidParameterException"),
            );
        }
        let st = s.services.get_mut(service).ok_or_else(|| {
            PortError::new("ECS UpdateService", format!("service {service} not found"), false)
                .with_code("ServiceNotFoundException")
        })?;
        if let Some(td) = &change.task_definition {
            st.task_definition = td.clone();
        }
        let now = self.clock.as_ref().map(Clock::now);
        if let Some(d) = change.desired {
            // what ECS says when it starts or stops tasks for a new count
            if let (Some(at), true) = (now, d != st.desired) {
                let name = &service.service;
                let message = if d > st.desired {
                    format!("(service {name}) has started {} tasks.", d - st.desired)
                } else {
                    format!("(service {name}) has stopped {} running tasks.", st.desired - d)
                };
                st.events.insert(0, ServiceEvent { at, message });
            }
            st.desired = d;
            if !hold {
                st.running = d;
            }
        }
        if change.task_definition.is_some() || change.force_new_deployment {
            let n = st.deployments.len() + 1;
            let dep = Deployment {
                id: format!("ecs-svc/{n}"),
                status: "PRIMARY".into(),
                task_definition: st.task_definition.clone(),
                desired: st.desired,
                running: if hold { 0 } else { st.desired },
                rollout_state: Some(if hold { "IN_PROGRESS" } else { "COMPLETED" }.into()),
                created_at: now,
                updated_at: now,
            };
            if hold {
                for d in &mut st.deployments {
                    d.status = "ACTIVE".into();
                }
                st.deployments.insert(0, dep);
            } else {
                st.deployments = vec![dep];
            }
        } else if let Some(primary) = st.deployments.first_mut() {
            primary.desired = st.desired;
            primary.running = st.running;
        }
        Ok(st.clone())
    }
}

/// A clock the drill or test moves by hand.
/// Clones share one time: the simulated ECS stamps its changes with the drill's clock.
#[derive(Clone)]
pub struct SimClock {
    now: std::sync::Arc<Mutex<DateTime<Utc>>>,
}

impl std::fmt::Debug for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimClock({})", self.now())
    }
}

impl SimClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        SimClock {
            now: std::sync::Arc::new(Mutex::new(start)),
        }
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *lock(&self.now) = t;
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut n = lock(&self.now);
        *n += d;
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.now)
    }
}

/// A caller identity the test or drill sets: the ARN that STS would have verified, or none
/// (no credentials).
#[derive(Debug, Default)]
pub struct InMemoryCallerIdentity {
    arn: Mutex<Option<String>>,
}

impl InMemoryCallerIdentity {
    /// A caller whose verified ARN is `arn`.
    pub fn new(arn: impl Into<String>) -> Self {
        InMemoryCallerIdentity {
            arn: Mutex::new(Some(arn.into())),
        }
    }
    /// A caller without credentials: every call fails.
    pub fn unknown() -> Self {
        Self::default()
    }
    pub fn set(&self, arn: Option<String>) {
        *lock(&self.arn) = arn;
    }
}

impl CallerIdentity for InMemoryCallerIdentity {
    async fn caller_arn(&self) -> Result<String, PortError> {
        lock(&self.arn).clone().ok_or_else(|| {
            PortError::new(
                "STS GetCallerIdentity",
                "no credentials: the caller is unknown",
                false,
            )
            .with_code("NoCredentials")
        })
    }
}
