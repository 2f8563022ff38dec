//! [`DynamoIncidentStore`]: the [`IncidentStore`] port over one DynamoDB table, with the same
//! semantics as `firebreak_core::adapters::memory::InMemoryIncidentStore`. Every write that must not race
//! is a conditional write; docs/storage.md lists the items, conditions and call counts.
//!
//! Items (`pk` / `sk`):
//! - `INC#<id>` / `META`: the incident as one JSON `doc`, its `version` (the optimistic lock), and
//!   the index keys (`gsi1pk`/`gsi1sk` while active, `gsi2pk`/`gsi2sk` always).
//! - `INC#<id>` / `T#<event_id>`: a timeline entry as JSON `doc`, with `at` and `written_at` (ns,
//!   orders entries of equal `at` in write order).
//! - `INC#<id>` / `POSTMORTEM`: the postmortem draft (Markdown `doc`), replaced at each draft.
//! - `OPEN#<service>` / `OPEN`: the service's open pointer: `incident`, and `resolved_at` once the
//!   incident is resolved.
//! - `LEASE#<key>` / `LEASE`: a lease held `until` by its `owner`, deleted by TTL (`expires_at`)
//!   a day later.
//! - `TRANSITION#<alarm>/<state>/<ms>` / `TRANSITION`: the `delivery` that claimed one alarm
//!   state change and the `service` whose incident it records it on; deleted by TTL.
//! - `AUTONOMY` / `<runbook>#<cause>#<action>`: the autonomy record of one (runbook, cause,
//!   action) as one JSON `doc`, with its `version` (the optimistic lock). Never expires.

use crate::error::{build_error, port_error};
use crate::table::{GSI1, GSI1_PK, GSI1_SK, GSI2, GSI2_PK, GSI2_SK, PK, SK, TTL_ATTRIBUTE};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use firebreak_core::model::incident::{Incident, IncidentId};
use firebreak_core::model::timeline::TimelineEntry;
use firebreak_core::ports::{
    check_item_size, AutonomyKey, AutonomyRecord, IncidentStore, Lease, ListQuery, OpenOutcome,
    PointerChange, PortError, StoreError, Transition, TransitionClaim,
};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on the items of one TransactWriteItems.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
/// How often `open` and `save` re-run a transaction that DynamoDB cancelled because another
/// transaction was touching the same items (`TransactionConflict`).
const CONFLICT_ATTEMPTS: u32 = 4;
/// Concurrent PutItems of one `append`.
const APPEND_CONCURRENCY: usize = 8;
/// How long a lease item outlives its `until` before TTL may delete it.
const LEASE_GRACE_S: i64 = 86_400;

const META: &str = "META";
const POINTER_SK: &str = "OPEN";
const LEASE_SK: &str = "LEASE";
const TRANSITION_SK: &str = "TRANSITION";
const POSTMORTEM_SK: &str = "POSTMORTEM";
const ACTIVE: &str = "ACTIVE";
/// The partition of every autonomy record (one item per key, sorted by its text).
const AUTONOMY_PK: &str = "AUTONOMY";

const TRANSACT: &str = "DynamoDB TransactWriteItems";

fn inc_pk(id: &IncidentId) -> String {
    format!("INC#{id}")
}

fn entry_sk(event_id: &str) -> String {
    format!("T#{event_id}")
}

fn pointer_pk(service: &str) -> String {
    format!("OPEN#{service}")
}

fn lease_pk(key: &str) -> String {
    format!("LEASE#{key}")
}

fn transition_pk(key: &str) -> String {
    format!("TRANSITION#{key}")
}

/// Fixed-width RFC 3339 with nanoseconds: sorts as text in time order (years 0000-9999).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn month_key(t: DateTime<Utc>) -> String {
    format!("MONTH#{:04}-{:02}", t.year(), t.month())
}

fn index_sort_key(inc: &Incident) -> String {
    format!("{}#{}", ts(inc.opened_at), inc.id)
}

fn av(s: impl Into<String>) -> AttributeValue {
    AttributeValue::S(s.into())
}

fn num(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Nanoseconds since the epoch, strictly increasing within this process: orders entries written
/// at the same `at`, including those of one batch.
fn next_written_at() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = Utc::now()
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), av(pk)), (SK.to_string(), av(sk))])
}

fn transition_item(t: &Transition) -> Item {
    let mut item = key(transition_pk(&t.key), TRANSITION_SK);
    item.insert("kind".into(), av("transition"));
    item.insert("delivery".into(), av(t.delivery.as_str()));
    item.insert("service".into(), av(t.service.as_str()));
    item.insert(TTL_ATTRIBUTE.into(), num(t.until.timestamp()));
    item
}

fn meta_item(inc: &Incident) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(inc).map_err(|e| StoreError::Corrupt {
        record: format!("{}/{META}", inc_pk(&inc.id)),
        reason: format!("doc: cannot serialise: {e}"),
    })?;
    // refused here, naming the record, rather than by DynamoDB's ValidationException
    check_item_size(&format!("{}/{META}", inc_pk(&inc.id)), doc.len())?;
    let mut item = key(inc_pk(&inc.id), META);
    item.insert("kind".into(), av("incident"));
    item.insert("doc".into(), av(doc));
    item.insert("version".into(), num(inc.version));
    item.insert("service".into(), av(&inc.service));
    item.insert("status".into(), av(inc.status.as_str()));
    item.insert("opened_at".into(), av(ts(inc.opened_at)));
    if inc.status.is_active() {
        item.insert(GSI1_PK.into(), av(ACTIVE));
        item.insert(GSI1_SK.into(), av(index_sort_key(inc)));
    }
    item.insert(GSI2_PK.into(), av(month_key(inc.opened_at)));
    item.insert(GSI2_SK.into(), av(index_sort_key(inc)));
    Ok(item)
}

fn entry_item(id: &IncidentId, e: &TimelineEntry) -> Result<Item, StoreError> {
    let doc = serde_json::to_string(e).map_err(|err| StoreError::Corrupt {
        record: format!("{}/{}", inc_pk(id), entry_sk(&e.event_id)),
        reason: format!("doc: cannot serialise: {err}"),
    })?;
    check_item_size(&format!("{}/{}", inc_pk(id), entry_sk(&e.event_id)), doc.len())?;
    let mut item = key(inc_pk(id), &entry_sk(&e.event_id));
    item.insert("kind".into(), av("entry"));
    item.insert("at".into(), av(ts(e.at)));
    item.insert("written_at".into(), num(next_written_at()));
    item.insert("doc".into(), av(doc));
    Ok(item)
}

/// A conditional Put for a transaction. Names in `names` are `#x` placeholders, values `:x`.
fn put(
    table: &str,
    item: Item,
    condition: &str,
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (k, v) in names {
        p = p.expression_attribute_names(*k, *v);
    }
    for (k, v) in values {
        p = p.expression_attribute_values(k, v);
    }
    let p = p.build().map_err(|e| build_error(TRANSACT, &e))?;
    Ok(TransactWriteItem::builder().put(p).build())
}

fn entry_puts(
    table: &str,
    id: &IncidentId,
    entries: &[TimelineEntry],
) -> Result<Vec<TransactWriteItem>, StoreError> {
    entries
        .iter()
        .map(|e| put(table, entry_item(id, e)?, "attribute_not_exists(pk)", &[], vec![]))
        .collect()
}

fn corrupt(record: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        record: record.to_string(),
        reason: reason.into(),
    }
}

fn get_s<'a>(item: &'a Item, record: &str, field: &str) -> Result<&'a str, StoreError> {
    match item.get(field) {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(corrupt(record, format!("{field}: not a string"))),
        None => Err(corrupt(record, format!("{field}: missing"))),
    }
}

fn get_u64(item: &Item, record: &str, field: &str) -> Result<u64, StoreError> {
    match item.get(field) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| corrupt(record, format!("{field}: {n:?} is not an unsigned integer"))),
        Some(_) => Err(corrupt(record, format!("{field}: not a number"))),
        None => Err(corrupt(record, format!("{field}: missing"))),
    }
}

fn parse_time(record: &str, field: &str, s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(record, format!("{field}: {s:?} is not an RFC 3339 time: {e}")))
}

fn record_name(item: &Item) -> String {
    let part = |f: &str| match item.get(f) {
        Some(AttributeValue::S(s)) => s.as_str(),
        _ => "?",
    };
    format!("{}/{}", part(PK), part(SK))
}

fn parse_incident(item: &Item) -> Result<Incident, StoreError> {
    let record = record_name(item);
    let doc = get_s(item, &record, "doc")?;
    let inc: Incident =
        serde_json::from_str(doc).map_err(|e| corrupt(&record, format!("doc: not an incident: {e}")))?;
    let version = get_u64(item, &record, "version")?;
    if version != inc.version {
        return Err(corrupt(
            &record,
            format!("version: attribute says {version}, doc says {}", inc.version),
        ));
    }
    Ok(inc)
}

fn parse_entry(item: &Item) -> Result<(TimelineEntry, u64), StoreError> {
    let record = record_name(item);
    let doc = get_s(item, &record, "doc")?;
    let entry: TimelineEntry =
        serde_json::from_str(doc).map_err(|e| corrupt(&record, format!("doc: not a timeline entry: {e}")))?;
    let written_at = get_u64(item, &record, "written_at")?;
    Ok((entry, written_at))
}

fn autonomy_record_name(key: &AutonomyKey) -> String {
    format!("{AUTONOMY_PK}/{}", key.text())
}

fn autonomy_item(record: &AutonomyRecord) -> Result<Item, StoreError> {
    let name = autonomy_record_name(&record.key);
    let doc =
        serde_json::to_string(record).map_err(|e| corrupt(&name, format!("doc: cannot serialise: {e}")))?;
    // refused here, naming the record, rather than by DynamoDB's ValidationException
    check_item_size(&name, doc.len())?;
    let mut item = key(AUTONOMY_PK.to_string(), &record.key.text());
    item.insert("kind".into(), av("autonomy"));
    item.insert("doc".into(), av(doc));
    item.insert("version".into(), num(record.version));
    Ok(item)
}

fn parse_autonomy(item: &Item) -> Result<AutonomyRecord, StoreError> {
    let record = record_name(item);
    let doc = get_s(item, &record, "doc")?;
    let rec: AutonomyRecord = serde_json::from_str(doc)
        .map_err(|e| corrupt(&record, format!("doc: not an autonomy record: {e}")))?;
    let sk = get_s(item, &record, SK)?;
    if sk != rec.key.text() {
        return Err(corrupt(
            &record,
            format!("doc: is the record of {}, not of {sk}", rec.key.text()),
        ));
    }
    let version = get_u64(item, &record, "version")?;
    if version != rec.version {
        return Err(corrupt(
            &record,
            format!("version: attribute says {version}, doc says {}", rec.version),
        ));
    }
    Ok(rec)
}

fn parse_lease(item: &Item) -> Result<Lease, StoreError> {
    let record = record_name(item);
    let owner = get_s(item, &record, "owner")?.to_string();
    let until = parse_time(&record, "until", get_s(item, &record, "until")?)?;
    Ok(Lease { owner, until })
}

/// A record whose `version` is not `expected + 1`: the caller's bug, not a race, so not
/// retryable (re-reading would not change it).
fn version_mismatch(record: &AutonomyRecord, expected: u64) -> StoreError {
    StoreError::Port(
        PortError::new(
            "store",
            format!(
                "{} carries version {}, but a save expecting version {expected} must carry {}: not written",
                autonomy_record_name(&record.key),
                record.version,
                expected.saturating_add(1)
            ),
            false,
        )
        .with_code("VersionMismatch"),
    )
}

/// The service's open pointer.
#[derive(Debug, Clone, PartialEq)]
struct Pointer {
    incident: IncidentId,
    resolved_at: Option<DateTime<Utc>>,
}

impl Pointer {
    /// Same rule as the in-memory store: active, or resolved within the window before `now`.
    fn claims(&self, window: Duration, now: DateTime<Utc>) -> bool {
        match self.resolved_at {
            None => true,
            Some(at) => chrono::Duration::from_std(window).is_ok_and(|w| now - at <= w),
        }
    }
}

fn parse_pointer(item: &Item) -> Result<Pointer, StoreError> {
    let record = record_name(item);
    let incident = IncidentId(get_s(item, &record, "incident")?.to_string());
    let resolved_at = match item.get("resolved_at") {
        None => None,
        Some(AttributeValue::S(s)) => Some(parse_time(&record, "resolved_at", s)?),
        Some(_) => return Err(corrupt(&record, "resolved_at: not a string")),
    };
    Ok(Pointer {
        incident,
        resolved_at,
    })
}

/// The `resolved_at` below which a resolved pointer no longer claims new alarms at `now`: the
/// text form of `now - window`, compared as text in the condition. Matches
/// [`Pointer::claims`] at the edges: a window too large for chrono never claims (everything is
/// below `~`), a cutoff before year 0 always claims (nothing is below "").
fn cutoff(now: DateTime<Utc>, window: Duration) -> String {
    match chrono::Duration::from_std(window) {
        Err(_) => "~".to_string(),
        Ok(w) => now.checked_sub_signed(w).map_or_else(String::new, ts),
    }
}

/// What the cancellation reasons of a cancelled transaction say, item by item.
#[derive(Debug)]
enum Cancelled {
    /// One code per transaction item, in order (`None`, `ConditionalCheckFailed`, ...).
    Reasons(Vec<String>),
    Other(PortError),
}

fn cancelled(err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>) -> Cancelled {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.as_service_error() {
        let reasons: Vec<String> = e
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None").to_string())
            .collect();
        if !reasons.is_empty() {
            return Cancelled::Reasons(reasons);
        }
    }
    Cancelled::Other(port_error(TRANSACT, err))
}

fn failed(reasons: &[String], i: usize) -> bool {
    reasons.get(i).is_some_and(|c| c == "ConditionalCheckFailed")
}

/// A cancellation not caused by our conditions: conflict with another transaction (retry),
/// throttling, validation.
fn other_reason(reasons: &[String]) -> Option<&str> {
    reasons
        .iter()
        .map(String::as_str)
        .find(|c| *c != "None" && *c != "ConditionalCheckFailed")
}

fn reason_error(code: &str) -> StoreError {
    StoreError::Port(
        PortError::new(
            TRANSACT,
            format!("transaction cancelled: {code}"),
            crate::error::is_retryable_code(code),
        )
        .with_code(code),
    )
}

async fn conflict_backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(20u64 << attempt.min(5))).await;
}

fn first_batch_duplicate(entries: &[TimelineEntry]) -> Option<&str> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .find(|e| !seen.insert(e.event_id.as_str()))
        .map(|e| e.event_id.as_str())
}

fn too_many(n: usize) -> StoreError {
    StoreError::Port(
        PortError::new(
            TRANSACT,
            format!(
                "{n} items exceed DynamoDB's limit of {MAX_TRANSACTION_ITEMS} per transaction; \
                 write fewer timeline entries with the incident and append the rest"
            ),
            false,
        )
        .with_code("TooManyTransactionItems"),
    )
}

/// Incidents, timelines, open pointers, leases and autonomy records in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoIncidentStore {
    client: Client,
    table: String,
}

impl DynamoIncidentStore {
    /// The store over `table` (created from [`crate::table::table_spec`]).
    pub fn new(client: Client, table: impl Into<String>) -> DynamoIncidentStore {
        DynamoIncidentStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("DynamoDB GetItem", &e))?;
        Ok(out.item)
    }

    /// Who holds the claim on `t` (consistent read), after a write conditioned on it failed.
    async fn transition_holder(&self, t: &Transition) -> Result<TransitionClaim, StoreError> {
        let record = transition_pk(&t.key);
        let item = self
            .get_item(key(record.clone(), TRANSITION_SK))
            .await?
            .ok_or_else(|| corrupt(&record, "claimed by another delivery, then gone"))?;
        let delivery = get_s(&item, &record, "delivery")?.to_string();
        if delivery == t.delivery {
            return Ok(TransitionClaim::Mine);
        }
        Ok(TransitionClaim::Theirs {
            delivery,
            service: get_s(&item, &record, "service")?.to_string(),
        })
    }

    async fn read_pointer(&self, service: &str) -> Result<Option<Pointer>, StoreError> {
        match self.get_item(key(pointer_pk(service), POINTER_SK)).await? {
            Some(item) => Ok(Some(parse_pointer(&item)?)),
            None => Ok(None),
        }
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError>> {
        // One token per logical call: the SDK's own retries (after a timeout or a 5xx) resend
        // the same request with the same token, and DynamoDB answers a transaction that already
        // committed with success instead of failing its conditions against its own writes.
        // Firebreak's retry loops build a new call, so a new token.
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let token = format!(
            "{:016x}{:016x}",
            nanos as u64,
            CALLS.fetch_add(1, Ordering::Relaxed)
        );
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(token)
            .send()
            .await
            .map(|_| ())
    }

    /// What `open` returns when the service or the id is taken, or `None` when nothing claims the
    /// service (any more) and the open may be tried again. `same_id` first looks for an incident
    /// with the offered id ([`OpenOutcome::IdTaken`]).
    async fn existing(
        &self,
        incident: &Incident,
        reopen_window: Duration,
        same_id: bool,
    ) -> Result<Option<OpenOutcome>, StoreError> {
        if same_id {
            if let Some(same) = self.get(&incident.id).await? {
                return Ok(Some(OpenOutcome::IdTaken(Box::new(same))));
            }
        }
        match self.read_pointer(&incident.service).await? {
            Some(p) if p.claims(reopen_window, incident.detected_at.min(incident.opened_at)) => {
                // DynamoDB writes the pointer and the incident in one transaction, and a
                // strongly consistent read after it sees both: a pointer without its incident
                // is a damaged table, not a race.
                match self.get(&p.incident).await? {
                    Some(i) => Ok(Some(OpenOutcome::Existing(Box::new(i)))),
                    None => Err(corrupt(
                        &format!("{}/{POINTER_SK}", pointer_pk(&incident.service)),
                        format!("incident: points at missing incident {}", p.incident),
                    )),
                }
            }
            _ => Ok(None),
        }
    }

    /// `NotFound` when the incident is absent, else `Conflict` (its version moved).
    async fn missing_or_conflict(&self, id: &IncidentId) -> StoreError {
        match self.get(id).await {
            Ok(None) => StoreError::NotFound(id.clone()),
            Ok(Some(_)) => StoreError::Conflict(id.clone()),
            Err(e) => e,
        }
    }

    fn pointer_op(
        &self,
        incident: &Incident,
        change: PointerChange,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let pk = pointer_pk(&incident.service);
        match change {
            PointerChange::Keep => Ok(None),
            PointerChange::Release => {
                let resolved = incident.resolved_at.unwrap_or(incident.opened_at);
                let u = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, POINTER_SK)))
                    .update_expression("SET #r = :r")
                    .condition_expression("#inc = :id")
                    .expression_attribute_names("#r", "resolved_at")
                    .expression_attribute_names("#inc", "incident")
                    .expression_attribute_values(":r", av(ts(resolved)))
                    .expression_attribute_values(":id", av(incident.id.as_str()))
                    .build()
                    .map_err(|e| build_error(TRANSACT, &e))?;
                Ok(Some(TransactWriteItem::builder().update(u).build()))
            }
            PointerChange::Reclaim => {
                let mut item = key(pk, POINTER_SK);
                item.insert("kind".into(), av("pointer"));
                item.insert("incident".into(), av(incident.id.as_str()));
                put(
                    &self.table,
                    item,
                    "attribute_not_exists(pk) OR #inc = :id",
                    &[("#inc", "incident")],
                    vec![(":id", av(incident.id.as_str()))],
                )
                .map(Some)
            }
        }
    }

    async fn query_all(
        &self,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = build()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("DynamoDB Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    async fn scan_incidents(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :meta")
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":meta", av(META))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error("DynamoDB Scan", &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

impl DynamoIncidentStore {
    /// One conditional Put per entry (already-recorded ones are skipped); entries have distinct
    /// event ids and the incident is known to exist.
    async fn append_each(&self, id: &IncidentId, entries: &[&TimelineEntry]) -> Result<usize, StoreError> {
        let mut items = Vec::new();
        for e in entries {
            items.push(entry_item(id, e)?);
        }
        let results: Vec<Result<bool, StoreError>> = futures::stream::iter(items)
            .map(|item| async move {
                match self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .send()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e)
                        if matches!(
                            e.as_service_error(),
                            Some(PutItemError::ConditionalCheckFailedException(_))
                        ) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(port_error("DynamoDB PutItem", &e).into()),
                }
            })
            .buffer_unordered(APPEND_CONCURRENCY)
            .collect()
            .await;
        let mut new = 0;
        for r in results {
            if r? {
                new += 1;
            }
        }
        Ok(new)
    }
}

impl IncidentStore for DynamoIncidentStore {
    async fn open_claiming(
        &self,
        incident: &Incident,
        entries: &[TimelineEntry],
        reopen_window: Duration,
        transition: Option<&Transition>,
    ) -> Result<OpenOutcome, StoreError> {
        if let Some(dup) = first_batch_duplicate(entries) {
            // DynamoDB refuses two writes to one item in a transaction; answer as the in-memory
            // store does, which looks for an existing incident first.
            return match self.existing(incident, reopen_window, true).await? {
                Some(existing) => Ok(existing),
                None => Err(StoreError::Duplicate(dup.to_string())),
            };
        }
        let fixed = 2 + usize::from(transition.is_some());
        if entries.len() + fixed > MAX_TRANSACTION_ITEMS {
            return Err(too_many(entries.len() + fixed));
        }
        // the window counts to the alarm's state change, not to when triage got to it
        let cut = cutoff(incident.detected_at.min(incident.opened_at), reopen_window);
        let mut attempt = 0;
        loop {
            let mut pointer = key(pointer_pk(&incident.service), POINTER_SK);
            pointer.insert("kind".into(), av("pointer"));
            pointer.insert("incident".into(), av(incident.id.as_str()));
            let mut items = vec![
                put(
                    &self.table,
                    pointer,
                    "attribute_not_exists(pk) OR (attribute_exists(#r) AND #r < :cutoff)",
                    &[("#r", "resolved_at")],
                    vec![(":cutoff", av(cut.clone()))],
                )?,
                put(
                    &self.table,
                    meta_item(incident)?,
                    "attribute_not_exists(pk)",
                    &[],
                    vec![],
                )?,
            ];
            if let Some(t) = transition {
                items.push(put(
                    &self.table,
                    transition_item(t),
                    "attribute_not_exists(pk) OR #delivery = :d",
                    &[("#delivery", "delivery")],
                    vec![(":d", av(t.delivery.as_str()))],
                )?);
            }
            items.extend(entry_puts(&self.table, &incident.id, entries)?);

            let err = match self.transact(items).await {
                Ok(()) => return Ok(OpenOutcome::Opened),
                Err(e) => e,
            };
            let reasons = match cancelled(&err) {
                Cancelled::Reasons(r) => r,
                Cancelled::Other(e) => return Err(e.into()),
            };
            // another copy of the state change claimed it first: checked before anything else
            if let Some(t) = transition.filter(|_| failed(&reasons, 2)) {
                if let TransitionClaim::Theirs { delivery, service } = self.transition_holder(t).await? {
                    return Ok(OpenOutcome::TransitionTaken { delivery, service });
                }
            }
            if failed(&reasons, 0) || failed(&reasons, 1) {
                if let Some(existing) = self
                    .existing(incident, reopen_window, failed(&reasons, 1))
                    .await?
                {
                    return Ok(existing);
                }
                // The pointer was released past the window between our write and our read:
                // nothing claims the service now, so try again.
            } else if let Some(i) = (0..entries.len()).find(|i| failed(&reasons, i + fixed)) {
                return Err(StoreError::Duplicate(entries[i].event_id.clone()));
            } else if let Some(code) = other_reason(&reasons) {
                if code != "TransactionConflict" {
                    return Err(reason_error(code));
                }
            }
            attempt += 1;
            if attempt >= CONFLICT_ATTEMPTS {
                // Other writers kept touching the same items: the caller re-reads and retries.
                return Err(StoreError::Conflict(incident.id.clone()));
            }
            conflict_backoff(attempt).await;
        }
    }

    async fn save(
        &self,
        incident: &Incident,
        expected_version: u64,
        pointer: PointerChange,
        entries: &[TimelineEntry],
    ) -> Result<(), StoreError> {
        if incident.version != expected_version.saturating_add(1) {
            return Err(self.missing_or_conflict(&incident.id).await);
        }
        if let Some(dup) = first_batch_duplicate(entries) {
            return match self.get(&incident.id).await? {
                None => Err(StoreError::NotFound(incident.id.clone())),
                Some(cur) if cur.version != expected_version => {
                    Err(StoreError::Conflict(incident.id.clone()))
                }
                Some(_) => Err(StoreError::Duplicate(dup.to_string())),
            };
        }
        let mut pointer = pointer;
        let mut attempt = 0;
        loop {
            let mut items = vec![put(
                &self.table,
                meta_item(incident)?,
                "#v = :expected",
                &[("#v", "version")],
                vec![(":expected", num(expected_version))],
            )?];
            let pointer_index = match self.pointer_op(incident, pointer)? {
                Some(op) => {
                    items.push(op);
                    Some(1)
                }
                None => None,
            };
            let first_entry = items.len();
            items.extend(entry_puts(&self.table, &incident.id, entries)?);
            if items.len() > MAX_TRANSACTION_ITEMS {
                return Err(too_many(items.len()));
            }

            let err = match self.transact(items).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let reasons = match cancelled(&err) {
                Cancelled::Reasons(r) => r,
                Cancelled::Other(e) => return Err(e.into()),
            };
            if failed(&reasons, 0) {
                return Err(self.missing_or_conflict(&incident.id).await);
            }
            if let Some(i) = (0..entries.len()).find(|i| failed(&reasons, first_entry + i)) {
                return Err(StoreError::Duplicate(entries[i].event_id.clone()));
            }
            if pointer_index.is_some_and(|p| failed(&reasons, p)) {
                match pointer {
                    PointerChange::Reclaim => return Err(StoreError::Conflict(incident.id.clone())),
                    // The pointer names another incident (or none): releasing is a no-op, as in
                    // memory. Save without it.
                    _ => pointer = PointerChange::Keep,
                }
            } else if let Some(code) = other_reason(&reasons) {
                if code != "TransactionConflict" {
                    return Err(reason_error(code));
                }
                attempt += 1;
                if attempt >= CONFLICT_ATTEMPTS {
                    // Other writers kept touching the same items: the caller re-reads and retries.
                    return Err(StoreError::Conflict(incident.id.clone()));
                }
                conflict_backoff(attempt).await;
            } else {
                return Err(port_error(TRANSACT, &err).into());
            }
        }
    }

    async fn append(&self, id: &IncidentId, entries: &[TimelineEntry]) -> Result<usize, StoreError> {
        let mut seen = HashSet::new();
        let unique: Vec<&TimelineEntry> = entries
            .iter()
            .filter(|e| seen.insert(e.event_id.as_str()))
            .collect();
        // Fast path, one call: the incident must exist and every entry be new. Only when some
        // entry is already recorded (a redelivery) does it fall back to one Put per entry.
        if !unique.is_empty() && unique.len() < MAX_TRANSACTION_ITEMS {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(inc_pk(id), META)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(|e| build_error(TRANSACT, &e))?;
            let mut items = vec![TransactWriteItem::builder().condition_check(check).build()];
            for e in &unique {
                items.push(put(
                    &self.table,
                    entry_item(id, e)?,
                    "attribute_not_exists(pk)",
                    &[],
                    vec![],
                )?);
            }
            match self.transact(items).await {
                Ok(()) => return Ok(unique.len()),
                Err(err) => match cancelled(&err) {
                    Cancelled::Reasons(r) if failed(&r, 0) => return Err(StoreError::NotFound(id.clone())),
                    Cancelled::Reasons(r) if other_reason(&r).is_none() => {
                        return self.append_each(id, &unique).await
                    }
                    Cancelled::Reasons(r) => {
                        return Err(reason_error(other_reason(&r).unwrap_or("TransactionCanceled")))
                    }
                    Cancelled::Other(e) => return Err(e.into()),
                },
            }
        }
        let exists = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(inc_pk(id), META)))
            .projection_expression("pk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("DynamoDB GetItem", &e))?
            .item
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(id.clone()));
        }
        self.append_each(id, &unique).await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        match self.get_item(key(inc_pk(id), META)).await? {
            Some(item) => Ok(Some(parse_incident(&item)?)),
            None => Ok(None),
        }
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<TimelineEntry>, StoreError> {
        let pk = inc_pk(id);
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :t)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", av(pk.clone()))
                    .expression_attribute_values(":t", av("T#"))
                    .consistent_read(true)
            })
            .await?;
        let mut entries = items.iter().map(parse_entry).collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|(a, wa), (b, wb)| a.at.cmp(&b.at).then(wa.cmp(wb)));
        Ok(entries.into_iter().map(|(e, _)| e).collect())
    }

    async fn find_for_service(
        &self,
        service: &str,
        reopen_window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Incident>, StoreError> {
        match self.read_pointer(service).await? {
            Some(p) if p.claims(reopen_window, now) => self.get(&p.incident).await,
            _ => Ok(None),
        }
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<Incident>, StoreError> {
        let since_key = query.since.map(ts);
        let items = if query.active_only {
            self.query_all(|| {
                let q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .expression_attribute_names("#pk", GSI1_PK)
                    .expression_attribute_values(":pk", av(ACTIVE));
                match &since_key {
                    Some(s) => q
                        .key_condition_expression("#pk = :pk AND #sk >= :since")
                        .expression_attribute_names("#sk", GSI1_SK)
                        .expression_attribute_values(":since", av(s.clone())),
                    None => q.key_condition_expression("#pk = :pk"),
                }
            })
            .await?
        } else if let (Some(since), Some(since_key)) = (query.since, &since_key) {
            // One query per month from `since` to a month past now: no scan.
            let last = Utc::now().max(since) + chrono::Duration::days(31);
            let mut items = Vec::new();
            for month in months(since, last) {
                items.extend(
                    self.query_all(|| {
                        self.client
                            .query()
                            .table_name(&self.table)
                            .index_name(GSI2)
                            .key_condition_expression("#pk = :pk AND #sk >= :since")
                            .expression_attribute_names("#pk", GSI2_PK)
                            .expression_attribute_names("#sk", GSI2_SK)
                            .expression_attribute_values(":pk", av(month.clone()))
                            .expression_attribute_values(":since", av(since_key.clone()))
                    })
                    .await?,
                );
            }
            items
        } else {
            self.scan_incidents().await?
        };
        let mut out = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for item in &items {
            let inc = parse_incident(item)?;
            // The indexes are eventually consistent: filter on the document itself.
            let keep = (!query.active_only || inc.status.is_active())
                && query.since.is_none_or(|t| inc.opened_at >= t)
                && seen.insert(inc.id.clone());
            if keep {
                out.push(inc);
            }
        }
        out.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn put_postmortem(&self, id: &IncidentId, markdown: &str) -> Result<(), StoreError> {
        let record = format!("{}/{POSTMORTEM_SK}", inc_pk(id));
        check_item_size(&record, markdown.len())?;
        let mut item = key(inc_pk(id), POSTMORTEM_SK);
        item.insert("kind".into(), av("postmortem"));
        item.insert("doc".into(), av(markdown));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| port_error("DynamoDB PutItem", &e))?;
        Ok(())
    }

    async fn postmortem(&self, id: &IncidentId) -> Result<Option<String>, StoreError> {
        let record = format!("{}/{POSTMORTEM_SK}", inc_pk(id));
        match self.get_item(key(inc_pk(id), POSTMORTEM_SK)).await? {
            None => Ok(None),
            Some(item) => Ok(Some(get_s(&item, &record, "doc")?.to_string())),
        }
    }

    async fn claim_transition(&self, t: &Transition) -> Result<TransitionClaim, StoreError> {
        // UpdateItem with the same condition as the open's Put: the claimer's retry is its claim
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(transition_pk(&t.key), TRANSITION_SK)))
            .update_expression("SET #delivery = :d, #service = :s, #kind = :kind, #ttl = :ttl")
            .condition_expression("attribute_not_exists(pk) OR #delivery = :d")
            .expression_attribute_names("#delivery", "delivery")
            .expression_attribute_names("#service", "service")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":d", av(t.delivery.as_str()))
            .expression_attribute_values(":s", av(t.service.as_str()))
            .expression_attribute_values(":kind", av("transition"))
            .expression_attribute_values(":ttl", num(t.until.timestamp()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(TransitionClaim::Mine),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                self.transition_holder(t).await
            }
            Err(e) => Err(port_error("DynamoDB UpdateItem", &e).into()),
        }
    }

    async fn claim(
        &self,
        lease: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(lease_pk(lease), LEASE_SK);
        item.insert("kind".into(), av("lease"));
        item.insert("owner".into(), av(owner));
        item.insert("until".into(), av(ts(until)));
        item.insert(
            TTL_ATTRIBUTE.into(),
            num(until.timestamp().saturating_add(LEASE_GRACE_S)),
        );
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // free, lapsed, or ours already (the SDK's retry of a put whose response was lost)
            .condition_expression("attribute_not_exists(pk) OR #until <= :now OR #owner = :owner")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", av(ts(now)))
            .expression_attribute_values(":owner", av(owner))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("DynamoDB PutItem", &e).into()),
        }
    }

    async fn lease(&self, lease: &str) -> Result<Option<Lease>, StoreError> {
        // held or lapsed: the caller compares `until` (TTL deletes it a day after)
        match self.get_item(key(lease_pk(lease), LEASE_SK)).await? {
            Some(item) => Ok(Some(parse_lease(&item)?)),
            None => Ok(None),
        }
    }

    async fn autonomy(&self, k: &AutonomyKey) -> Result<Option<AutonomyRecord>, StoreError> {
        match self.get_item(key(AUTONOMY_PK.to_string(), &k.text())).await? {
            Some(item) => Ok(Some(parse_autonomy(&item)?)),
            None => Ok(None),
        }
    }

    async fn save_autonomy(
        &self,
        record: &AutonomyRecord,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        if expected_version.checked_add(1) != Some(record.version) {
            return Err(version_mismatch(record, expected_version));
        }
        let item = autonomy_item(record)?;
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let req = if expected_version == 0 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", num(expected_version))
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("DynamoDB PutItem", &e).into()),
        }
    }

    async fn autonomy_records(&self) -> Result<Vec<AutonomyRecord>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_values(":pk", av(AUTONOMY_PK))
                    .consistent_read(true)
            })
            .await?;
        let mut records = items.iter().map(parse_autonomy).collect::<Result<Vec<_>, _>>()?;
        // DynamoDB returns them in sort-key (byte) order already; the port promises it
        records.sort_by_cached_key(|r| r.key.text());
        Ok(records)
    }
}

/// `MONTH#yyyy-mm` keys from the month of `from` to the month of `to`, inclusive.
fn months(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<String> {
    let (mut y, mut m) = (from.year(), from.month());
    let end = (to.year(), to.month());
    let mut out = Vec::new();
    while (y, m) <= end {
        out.push(format!("MONTH#{y:04}-{m:02}"));
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests;
