//! The ports: narrow traits, in the domain's words, through which the use-cases reach storage,
//! people, the event bus, logs, metrics, ECS, alarm state and time. Adapters live in `firebreak-aws`;
//! in-memory implementations in `memory`.
//!
//! Methods return `impl Future + Send` so the use-cases can run under any executor and the
//! Lambda runtime can hold their futures across awaits.

pub mod bundle;
pub mod retry;
pub mod update;

pub use crate::model::evidence::{ContainerDefinition, Deployment, ServiceEvent, TaskDefinition};
use crate::model::incident::{EcsService, Incident, IncidentId};
pub use crate::model::remedy::ServiceUpdate;
use crate::model::severity::Severity;
use crate::model::signal::AlarmState;
use crate::model::timeline::TimelineEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A failure of something outside the domain (network, AWS, emulator).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct PortError {
    /// What was being done (`DynamoDB TransactWriteItems`, `ECS UpdateService`).
    pub operation: String,
    pub message: String,
    /// True when the same call may succeed later (throttling, timeouts, 5xx).
    pub retryable: bool,
    /// The AWS error code when there is one (`ThrottlingException`).
    pub code: Option<String>,
}

impl PortError {
    pub fn new(operation: impl Into<String>, message: impl Into<String>, retryable: bool) -> PortError {
        PortError {
            operation: operation.into(),
            message: message.into(),
            retryable,
            code: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> PortError {
        self.code = Some(code.into());
        self
    }
}

/// Why a store operation did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The incident changed since it was read (optimistic lock). Re-read and retry.
    #[error("incident {0} was changed by someone else; re-read and retry")]
    Conflict(IncidentId),
    /// A timeline entry with this event id is already recorded: the step already happened.
    #[error("timeline entry {0} is already recorded")]
    Duplicate(String),
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    /// A stored record could not be read back (names the record and field).
    #[error("stored record {record} is unreadable: {reason}")]
    Corrupt { record: String, reason: String },
    #[error(transparent)]
    Port(#[from] PortError),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Conflict(_) => true,
            StoreError::Port(p) => p.retryable,
            StoreError::Duplicate(_) | StoreError::NotFound(_) | StoreError::Corrupt { .. } => false,
        }
    }
}

/// The postmortem draft of `inc`: its own item, else the one older releases kept in the incident.
///
/// # Errors
/// As [`IncidentStore::postmortem`].
pub async fn postmortem_of<S: IncidentStore>(
    store: &S,
    inc: &Incident,
) -> Result<Option<String>, StoreError> {
    Ok(store
        .postmortem(&inc.id)
        .await?
        .or_else(|| inc.postmortem.clone()))
}

/// DynamoDB's item limit is 400 KB. A stored document (an incident, an entry) larger than this
/// is refused before it is written, naming the record, whatever the store: so the in-memory
/// store used by tests and drills fails where DynamoDB would.
pub const MAX_ITEM_BYTES: usize = 390 * 1024;

/// [`MAX_ITEM_BYTES`] as a check: a non-retryable error naming `record` and its size.
///
/// # Errors
/// [`StoreError::Port`] with code `ItemTooLarge`.
pub fn check_item_size(record: &str, bytes: usize) -> Result<(), StoreError> {
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::Port(
            PortError::new(
                "store",
                format!(
                    "{record} would be {bytes} bytes, over the {MAX_ITEM_BYTES}-byte item limit: not written"
                ),
                false,
            )
            .with_code("ItemTooLarge"),
        ));
    }
    Ok(())
}

/// What happened when an incident was offered for opening.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenOutcome {
    /// The incident is new; it, its entries and the service's open pointer were written together.
    Opened,
    /// The service already has an incident that claims new alarms: one that is active, or one
    /// resolved within the reopen window. Nothing was written.
    Existing(Box<Incident>),
    /// An incident with the offered id is already stored (it is returned). Nothing was written.
    /// The store does not say whether it is a redelivery of the same alarm or another incident
    /// whose id happens to be the same: the caller decides that from the delivery's identity.
    IdTaken(Box<Incident>),
    /// Another copy of the state change the open claims ([`IncidentStore::open_claiming`])
    /// claimed it first, for the incident of `service`. Nothing was written.
    TransitionTaken { delivery: String, service: String },
}

/// What a save does to the service's open-incident pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerChange {
    Keep,
    /// The incident is resolved: the pointer now records that, so a new alarm after the reopen
    /// window opens a new incident.
    Release,
    /// A resolved incident reopens: the pointer claims the service for it again.
    Reclaim,
}

/// Who handles one alarm state change: SNS and EventBridge each deliver it, and the copies may
/// classify apart (only one carries tags), so the first copy to claim it decides the incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionClaim {
    /// This delivery handles the change (it claimed it now or before).
    Mine,
    /// Another delivery claimed it, for the incident of `service` (its classification).
    Theirs { delivery: String, service: String },
}

/// One alarm state change claimed by one of its copies (see [`IncidentStore::claim_transition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The alarm, state and time (`triage::transition_key`).
    pub key: String,
    /// The copy claiming it.
    pub delivery: String,
    /// The service whose incident records it.
    pub service: String,
    /// Kept until then, long after any copy can still arrive.
    pub until: DateTime<Utc>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    pub active_only: bool,
    /// Opened at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// Incidents and their timelines.
///
/// # Errors
/// Every method returns [`StoreError::Port`] when the backing store fails; the others as named.
pub trait IncidentStore: Send + Sync {
    /// Opens `incident` for its service unless the service already has an incident that claims
    /// new alarms (see [`OpenOutcome::Existing`]). Atomic: two concurrent opens for one service
    /// give one `Opened` and one `Existing`. When an incident with the same id is stored
    /// (a redelivery, or another incident with the same id), [`OpenOutcome::IdTaken`] with it,
    /// before any pointer check.
    fn open(
        &self,
        incident: &Incident,
        entries: &[TimelineEntry],
        reopen_window: Duration,
    ) -> impl Future<Output = Result<OpenOutcome, StoreError>> + Send {
        self.open_claiming(incident, entries, reopen_window, None)
    }

    /// [`IncidentStore::open`] that also claims `transition` (as
    /// [`IncidentStore::claim_transition`] would) in the same atomic write: triage's one call for
    /// a new incident. When another copy holds the claim, [`OpenOutcome::TransitionTaken`]
    /// before any other check.
    fn open_claiming(
        &self,
        incident: &Incident,
        entries: &[TimelineEntry],
        reopen_window: Duration,
        transition: Option<&Transition>,
    ) -> impl Future<Output = Result<OpenOutcome, StoreError>> + Send;

    /// Writes `incident` (whose `version` must already be `expected_version + 1`), the pointer
    /// change and the entries, all or nothing. [`StoreError::Conflict`] when the stored version is
    /// not `expected_version`; [`StoreError::Duplicate`] when an entry's event id is recorded.
    fn save(
        &self,
        incident: &Incident,
        expected_version: u64,
        pointer: PointerChange,
        entries: &[TimelineEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends entries, skipping those whose event id is already recorded. Returns how many were
    /// new.
    fn append(
        &self,
        id: &IncidentId,
        entries: &[TimelineEntry],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    fn get(&self, id: &IncidentId) -> impl Future<Output = Result<Option<Incident>, StoreError>> + Send;

    /// Stores the incident's postmortem draft, replacing the one before, in its own item: it
    /// grows with the timeline, and the incident item must not.
    fn put_postmortem(
        &self,
        id: &IncidentId,
        markdown: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The incident's stored postmortem draft, if any (incidents stored before drafts had their
    /// own item keep it in `Incident::postmortem`: see [`postmortem_of`]).
    fn postmortem(&self, id: &IncidentId) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The timeline in order (see [`crate::model::timeline::sort_entries`]).
    fn timeline(
        &self,
        id: &IncidentId,
    ) -> impl Future<Output = Result<Vec<TimelineEntry>, StoreError>> + Send;

    /// The service's incident that claims new alarms, if any (active, or resolved within the
    /// window).
    fn find_for_service(
        &self,
        service: &str,
        reopen_window: Duration,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Incident>, StoreError>> + Send;

    fn list(&self, query: &ListQuery) -> impl Future<Output = Result<Vec<Incident>, StoreError>> + Send;

    /// Claims the alarm state change `transition` (alarm, state and time: see
    /// `triage::transition_key`) for `delivery`, which records it on the incident of `service`,
    /// unless another delivery did; idempotent for one delivery. Kept until `until`, long after
    /// any copy can still arrive. Atomic.
    fn claim_transition(
        &self,
        transition: &Transition,
    ) -> impl Future<Output = Result<TransitionClaim, StoreError>> + Send;

    /// Takes the lease `key` for `owner` until `until` when it is free, expired, or already held
    /// by `owner` (cooldowns, one-shot steps). Returns false when someone else holds it. Atomic,
    /// and idempotent for one owner: a retry of the same claim (the SDK's, after a lost
    /// response, or a Lambda retry of the same delivery) gets the lease it already took instead
    /// of being refused by it. The owner names the work, not the invocation.
    fn claim(
        &self,
        key: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The lease `key` as stored (held or lapsed), if any: who took it and until when. For
    /// saying since when a limit is reached (the circuit breakers).
    fn lease(&self, key: &str) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// The autonomy record of `key`, if any outcome was counted for it.
    fn autonomy(
        &self,
        key: &AutonomyKey,
    ) -> impl Future<Output = Result<Option<AutonomyRecord>, StoreError>> + Send;

    /// Saves `record` (whose `version` must already be `expected_version + 1`) when the stored
    /// version is `expected_version` (0: none stored yet). Returns false, writing nothing, when
    /// it is not: re-read, count again, retry.
    fn save_autonomy(
        &self,
        record: &AutonomyRecord,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every autonomy record, ordered by key.
    fn autonomy_records(&self) -> impl Future<Output = Result<Vec<AutonomyRecord>, StoreError>> + Send;
}

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

pub use crate::model::autonomy::{AutonomyKey, AutonomyRecord};

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The topic for this severity (SEV1 pages, SEV4 files a ticket).
    Severity(Severity),
}

pub use crate::model::page::{Notification, PageEvent, PageFacts};

/// Pages and notifies people.
pub trait Notifier: Send + Sync {
    /// Returns the message id.
    fn notify(
        &self,
        route: Route,
        message: &Notification,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// One HTTP POST to an on-call tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPost {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// At most a few KB of the body, for the timeline.
    pub body: String,
}

/// Posts to on-call tools (PagerDuty, a webhook). A transport failure (connect, TLS, timeout)
/// is a retryable `PortError`; any HTTP status is a reply, which the caller judges.
pub trait HttpSender: Send + Sync {
    fn post(
        &self,
        request: &HttpPost,
        timeout: std::time::Duration,
    ) -> impl Future<Output = Result<HttpReply, PortError>> + Send;
}

pub use crate::model::pipeline::{detail_types, PipelineEvent};

/// Tells the next stages.
pub trait EventBus: Send + Sync {
    fn put(&self, event: &PipelineEvent) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// One Logs Insights query to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The runbook's name for it (`errors`, `connections`).
    pub name: String,
    pub log_groups: Vec<String>,
    pub query: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// How long this query may take in all, polling included.
    pub deadline: Duration,
}

/// One result field, as GetQueryResults returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultField {
    pub field: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryStatistics {
    pub records_matched: f64,
    pub records_scanned: f64,
    pub bytes_scanned: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOutput {
    pub rows: Vec<Vec<ResultField>>,
    pub statistics: QueryStatistics,
}

/// Why a query gave no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("query is invalid: {0}")]
    Invalid(String),
    #[error("query did not finish within {0:?} and was stopped")]
    Timeout(Duration),
    #[error("query failed: {0}")]
    Failed(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Runs Logs Insights queries (in AWS, or locally over fetched or recorded events).
pub trait LogQueries: Send + Sync {
    fn run(&self, request: &QueryRequest) -> impl Future<Output = Result<QueryOutput, QueryError>> + Send;
}

/// What ECS says about a service now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    pub service: EcsService,
    pub status: String,
    /// `family:revision` of the service's task definition.
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// Newest first.
    pub deployments: Vec<Deployment>,
    /// Newest first.
    pub events: Vec<ServiceEvent>,
    pub tags: BTreeMap<String, String>,
}

impl ServiceState {
    /// True while a rollout is under way: an ACTIVE deployment (one being replaced) beside the
    /// PRIMARY, or a deployment whose rollout state is IN_PROGRESS. INACTIVE deployments are
    /// history.
    pub fn deployment_in_progress(&self) -> bool {
        self.deployments
            .iter()
            .any(|d| d.status == "ACTIVE" || d.rollout_state.as_deref() == Some("IN_PROGRESS"))
    }
}

/// Reads and changes ECS services.
pub trait ServiceControl: Send + Sync {
    fn describe(&self, service: &EcsService) -> impl Future<Output = Result<ServiceState, PortError>> + Send;

    /// ACTIVE revisions of a task-definition family as `family:revision`, in any order (callers
    /// sort by revision number themselves).
    fn task_definitions(&self, family: &str) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;

    fn update(
        &self,
        service: &EcsService,
        change: &ServiceUpdate,
    ) -> impl Future<Output = Result<ServiceState, PortError>> + Send;

    /// One task definition (`family:revision` or its ARN): images, environment, secret names,
    /// CPU and memory, command. `None` when ECS does not know it (deregistered and deleted, or
    /// never registered).
    fn task_definition(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<TaskDefinition>, PortError>> + Send;
}

/// One metric to read, as CloudWatch's `MetricStat`: the metric, its exact dimensions, the
/// statistic and the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// The caller's id for the answer (`[a-z][a-zA-Z0-9_]*`, as GetMetricData wants).
    pub id: String,
    pub namespace: String,
    pub name: String,
    /// Matched exactly: a metric with more or fewer dimensions is another metric.
    pub dimensions: BTreeMap<String, String>,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount` or a percentile (`p99`).
    pub stat: String,
    /// Seconds; a multiple of 60.
    pub period_s: u32,
}

/// Several metrics over one time range: one GetMetricData call (it takes up to 500).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRequest {
    pub queries: Vec<MetricQuery>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The datapoints of one [`MetricQuery`]: `(period start, value)`, oldest first. Periods
/// without data are absent: no data is not zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricData {
    pub id: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// A message CloudWatch attached (`PartialData`, an error for this query), if any.
    #[serde(default)]
    pub note: Option<String>,
}

/// Reads CloudWatch metrics (GetMetricData in AWS; recorded datapoints in drills).
pub trait MetricQueries: Send + Sync {
    /// One answer per query of `request`, in any order, matched by id.
    fn get(&self, request: &MetricRequest)
        -> impl Future<Output = Result<Vec<MetricData>, PortError>> + Send;
}

/// Reads the current state of CloudWatch alarms.
pub trait AlarmStatus: Send + Sync {
    /// The state of each named alarm that exists; missing alarms are absent from the map.
    fn states(
        &self,
        alarm_names: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, AlarmState>, PortError>> + Send;
}

/// Time. Real in Lambda, simulated in drills and tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Who is calling: the verified identity of the credentials in use (STS `GetCallerIdentity` in
/// AWS), never a name someone typed. Approvals record it.
pub trait CallerIdentity: Send + Sync {
    /// The caller's IAM or STS ARN (`arn:aws:sts::123456789012:assumed-role/Role/session`).
    ///
    /// # Errors
    /// [`PortError`] when the identity cannot be established (no credentials, network).
    fn caller_arn(&self) -> impl Future<Output = Result<String, PortError>> + Send;
}
