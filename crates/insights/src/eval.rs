//! Execution: streams events through a [`Plan`]'s stages. Rows are kept only at the first
//! stage that needs more than one (a `sort`'s top-k buffer, `stats` groups), within a memory
//! budget; partial executions over chunks of the input merge into what one pass gives.
//! `in (subquery)` buffers the events until the subqueries are known; `logcompare` runs the
//! plan over the window and over the shifted window side by side.

use crate::aggregate::Groups;
use crate::ast::*;
use crate::budget::{default_memory_budget, heap, Budget};
use crate::compare::compare_results;
use crate::event::{EventRef, LogEvent};
use crate::expr::{ptr, Evaluator};
use crate::plan::{Plan, SortKey, Stage};
use crate::row::{Rec, Row};
use crate::stages::{apply, apply_rows, unnest_items};
use crate::value::{encode_key, FastMap, Value};
use crate::Unsupported;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

/// Rows a query returns when it has no `limit` (and the most GetQueryResults returns).
pub const DEFAULT_LIMIT: usize = 10_000;

/// Where and when to look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvalOptions {
    /// Inclusive, epoch milliseconds.
    pub start_ms: Option<i64>,
    /// Inclusive, epoch milliseconds.
    pub end_ms: Option<i64>,
    /// Only events of these log groups; empty means all.
    pub log_groups: Vec<String>,
    /// When set, `@log` is `account:group` as in CloudWatch; otherwise just the group.
    pub account_id: Option<String>,
}

/// One field of a result row, as GetQueryResults returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultField {
    pub field: String,
    pub value: String,
}

/// GetQueryResults' statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    /// Events that passed the filters before the first `stats`/`sort` (all of them without
    /// filters).
    pub records_matched: u64,
    /// Events in the time range and log groups.
    pub records_scanned: u64,
    /// Bytes of the messages of the scanned events.
    pub bytes_scanned: u64,
}

impl Statistics {
    pub(crate) fn add(&mut self, o: &Statistics) {
        self.records_matched += o.records_matched;
        self.records_scanned += o.records_scanned;
        self.bytes_scanned += o.bytes_scanned;
    }
}

/// The answer to a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResults {
    /// Rows of present fields, in result order; a field with no value is left out of its row.
    pub rows: Vec<Vec<ResultField>>,
    pub statistics: Statistics,
}

impl QueryResults {
    /// The value of `field` in row `row`.
    pub fn value(&self, row: usize, field: &str) -> Option<&str> {
        self.rows
            .get(row)?
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.value.as_str())
    }
}

/// Why a query cannot be evaluated locally.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The query parses but does not make sense (an aggregate outside `stats` that names no
    /// `stats` column, ...), or it needs more than its memory budget (the message names the
    /// budget; see [`EvalError::is_over_budget`]).
    #[error("{0}")]
    Invalid(String),
}

const OVER_BUDGET: &str = "the query needs more than its memory budget";

impl EvalError {
    /// Whether the evaluation stopped because it would have passed its memory budget.
    pub fn is_over_budget(&self) -> bool {
        matches!(self, EvalError::Invalid(m) if m.starts_with(OVER_BUDGET))
    }
}

impl Query {
    /// Checks that the query can be evaluated locally: no unsupported commands, and every
    /// aggregate referenced after `stats` names one of its columns.
    ///
    /// # Errors
    /// As [`Query::start`].
    pub fn check_local(&self) -> Result<(), EvalError> {
        self.compile().map(|_| ())
    }

    /// Starts a streaming evaluation within the default memory budget
    /// ([`crate::set_default_memory_budget`]): push events, then [`Execution::finish`].
    ///
    /// # Errors
    /// [`EvalError::Unsupported`] for commands only CloudWatch runs; [`EvalError::Invalid`]
    /// for a query that parses but cannot mean anything.
    pub fn start(&self, options: &EvalOptions) -> Result<Execution, EvalError> {
        self.start_with_budget(options, default_memory_budget())
    }

    /// [`Query::start`] within `budget_bytes` of memory for what the query keeps.
    ///
    /// # Errors
    /// As [`Query::start`].
    pub fn start_with_budget(
        &self,
        options: &EvalOptions,
        budget_bytes: usize,
    ) -> Result<Execution, EvalError> {
        let plan = Arc::new(self.compile()?);
        Ok(Execution::new(plan, options, Budget::new(budget_bytes)))
    }

    /// Evaluates the query over `events` (owned or borrowed [`LogEvent`]s) within the default
    /// memory budget.
    ///
    /// # Errors
    /// As [`Query::start`], and [`EvalError::Invalid`] naming the budget when the query would
    /// need more memory than it.
    pub fn evaluate<I>(&self, events: I, options: &EvalOptions) -> Result<QueryResults, EvalError>
    where
        I: IntoIterator,
        I::Item: Borrow<LogEvent>,
    {
        self.evaluate_with_budget(events, options, default_memory_budget())
    }

    /// [`Query::evaluate`] within `budget_bytes`.
    ///
    /// # Errors
    /// As [`Query::evaluate`].
    pub fn evaluate_with_budget<I>(
        &self,
        events: I,
        options: &EvalOptions,
        budget_bytes: usize,
    ) -> Result<QueryResults, EvalError>
    where
        I: IntoIterator,
        I::Item: Borrow<LogEvent>,
    {
        let mut exec = self.start_with_budget(options, budget_bytes)?;
        for e in events {
            exec.push(e.borrow().as_ref());
        }
        exec.finish()
    }
}

/// Resolves `SOURCE ... start= end=` against the query's window.
fn source_options(options: &EvalOptions, source: &Source) -> EvalOptions {
    let now = options
        .end_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let at = |t: TimeSpec| match t {
        TimeSpec::Now => now,
        TimeSpec::Relative(d) => now.saturating_add(d),
        TimeSpec::Absolute(ms) => ms,
    };
    EvalOptions {
        start_ms: source.start.map(at).or(options.start_ms),
        end_ms: source.end.map(at).or(options.end_ms),
        log_groups: source.log_groups.clone(),
        account_id: options.account_id.clone(),
    }
}

enum Barrier {
    Rows {
        rows: Vec<Row>,
        /// Bytes the rows hold against the budget.
        bytes: usize,
        worst: Option<Vec<Value<'static>>>,
        /// `sort | dedup`: the least row of each dedup key so far.
        best: FastMap<Box<[u8]>, Row>,
    },
    Stats(Groups),
}

enum Mode {
    /// Events go straight through the plan.
    Direct,
    /// `in (subquery)`: the subqueries see every event; the events wait here until they are
    /// known.
    Buffered {
        subs: Vec<Execution>,
        events: Vec<LogEvent>,
    },
    /// `logcompare`: the same plan over the window shifted back.
    Compare { baseline: Box<Execution> },
}

/// A running evaluation. Push events in any order; memory stays within the budget.
pub struct Execution {
    plan: Arc<Plan>,
    options: Arc<EvalOptions>,
    budget: Budget,
    barrier: Barrier,
    stats: Statistics,
    ordinal: u64,
    sets: Arc<Vec<HashSet<String>>>,
    mode: Mode,
    error: Option<EvalError>,
}

impl Execution {
    fn new(plan: Arc<Plan>, options: &EvalOptions, budget: Budget) -> Execution {
        let options = match &plan.source {
            Some(s) => source_options(options, s),
            None => options.clone(),
        };
        let mode = if !plan.subqueries.is_empty() {
            Mode::Buffered {
                subs: plan
                    .subqueries
                    .iter()
                    .map(|p| Execution::new(Arc::clone(p), &options, budget.clone()))
                    .collect(),
                events: Vec::new(),
            }
        } else if let Some(shift) = plan.logcompare.and_then(|p| p.fixed_millis()) {
            let mut shifted = options.clone();
            shifted.start_ms = options.start_ms.map(|s| s.saturating_sub(shift));
            shifted.end_ms = options.end_ms.map(|e| e.saturating_sub(shift));
            Mode::Compare {
                baseline: Box::new(Execution::direct(Arc::clone(&plan), shifted, budget.clone())),
            }
        } else {
            Mode::Direct
        };
        let mut exec = Execution::direct(plan, options, budget);
        exec.mode = mode;
        exec
    }

    fn direct(plan: Arc<Plan>, options: EvalOptions, budget: Budget) -> Execution {
        let barrier = match plan.stages.get(plan.barrier) {
            Some(Stage::Stats(_)) => Barrier::Stats(Groups::default()),
            _ => Barrier::Rows {
                rows: Vec::new(),
                bytes: 0,
                worst: None,
                best: FastMap::default(),
            },
        };
        Execution {
            plan,
            options: Arc::new(options),
            budget,
            barrier,
            stats: Statistics::default(),
            ordinal: 0,
            sets: Arc::new(Vec::new()),
            mode: Mode::Direct,
            error: None,
        }
    }

    /// An empty execution of the same plan and budget, for another chunk of the input.
    pub(crate) fn fork(&self) -> Execution {
        let mut e = Execution::direct(
            Arc::clone(&self.plan),
            (*self.options).clone(),
            self.budget.clone(),
        );
        e.sets = Arc::clone(&self.sets);
        e
    }

    /// Whether chunks may be evaluated apart and merged (no subqueries, no `logcompare`).
    pub(crate) fn mergeable(&self) -> bool {
        matches!(self.mode, Mode::Direct)
    }

    /// The next events get ordinals (`@ptr`, the tie-break of sorts) from `base + 1`.
    pub(crate) fn set_ordinal(&mut self, base: u64) {
        self.ordinal = base;
    }

    /// Literals the message of an event must contain to pass the first filter (see
    /// `Plan::needles`); empty when nothing is known.
    pub(crate) fn needles(&self) -> &[Vec<u8>] {
        match self.mode {
            Mode::Direct => &self.plan.needles,
            _ => &[],
        }
    }

    /// Whether an event at `timestamp_ms` of `log_group` is in the time range and log groups.
    pub(crate) fn in_scope(&self, timestamp_ms: i64, log_group: &str) -> bool {
        let o = &self.options;
        o.start_ms.is_none_or(|s| timestamp_ms >= s)
            && o.end_ms.is_none_or(|e| timestamp_ms <= e)
            && (o.log_groups.is_empty() || o.log_groups.iter().any(|g| g == log_group))
    }

    /// Whether every event is in scope (no time range, no log groups).
    pub(crate) fn scope_is_everything(&self) -> bool {
        let o = &self.options;
        o.start_ms.is_none() && o.end_ms.is_none() && o.log_groups.is_empty()
    }

    /// Counts an in-scope event that cannot pass the first filter, without evaluating it.
    pub(crate) fn skip(&mut self, message_len: usize) {
        self.stats.records_scanned += 1;
        self.stats.bytes_scanned += message_len as u64;
        self.ordinal += 1;
    }

    /// Bytes of the budget in use, and the budget.
    pub fn memory(&self) -> (usize, usize) {
        (self.budget.used(), self.budget.limit())
    }

    pub(crate) fn charge(&self, bytes: usize) -> bool {
        self.budget.charge(bytes)
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.budget.release(bytes);
    }

    pub(crate) fn over_budget(&self, what: &str) -> String {
        self.budget.exceeded(what)
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(EvalError::Invalid(message));
        }
    }

    /// Offers one event; events outside the time range or log groups are skipped. After an
    /// error (the memory budget), events are ignored and [`Execution::finish`] reports it.
    pub fn push(&mut self, event: EventRef<'_>) {
        if self.error.is_some() {
            return;
        }
        match &mut self.mode {
            Mode::Direct => {}
            Mode::Buffered { subs, events } => {
                for s in subs.iter_mut() {
                    s.push(event);
                }
                let size = std::mem::size_of::<LogEvent>()
                    + heap(event.message.len())
                    + heap(event.log_group.len())
                    + heap(event.log_stream.len());
                if !self.budget.charge(size) {
                    let m = self
                        .budget
                        .exceeded(&format!("the {} events a subquery waits on", events.len()));
                    self.fail(m);
                    return;
                }
                events.push(event.to_owned_event());
                return;
            }
            Mode::Compare { baseline } => baseline.push(event),
        }
        self.push_direct(event);
    }

    /// Whether the plan reads `@message` or a field of a JSON message.
    pub(crate) fn reads_message(&self) -> bool {
        self.plan.reads_message || !matches!(self.mode, Mode::Direct)
    }

    /// [`Execution::push`] of an event whose message (of `message_len` bytes) was left out
    /// because the plan never reads it.
    pub(crate) fn push_sized(&mut self, event: EventRef<'_>, message_len: usize) {
        if self.error.is_none() {
            self.push_direct_sized(event, message_len);
        }
    }

    fn push_direct(&mut self, event: EventRef<'_>) {
        self.push_direct_sized(event, event.message.len());
    }

    fn push_direct_sized(&mut self, event: EventRef<'_>, message_len: usize) {
        if !self.in_scope(event.timestamp_ms, event.log_group) {
            return;
        }
        self.stats.records_scanned += 1;
        self.stats.bytes_scanned += message_len as u64;
        self.ordinal += 1;
        let mut rec = Rec::new(Some(event), self.ordinal, self.plan.row_slots);
        let ev = Evaluator {
            options: &self.options,
            sets: &self.sets,
        };
        let mut sink = Sink {
            barrier: &mut self.barrier,
            stats: &mut self.stats,
            budget: &self.budget,
        };
        if let Err(m) = sink.run(&ev, &self.plan, 0, &mut rec) {
            self.fail(m);
        }
    }
}

/// Where records go: the barrier's state.
struct Sink<'e> {
    barrier: &'e mut Barrier,
    stats: &'e mut Statistics,
    budget: &'e Budget,
}

impl Sink<'_> {
    /// Runs the one-row stages from `i` on, fanning out at `unnest`, then hands each record
    /// to the barrier.
    fn run(
        &mut self,
        ev: &Evaluator<'_>,
        plan: &Plan,
        mut i: usize,
        rec: &mut Rec<'_>,
    ) -> Result<(), String> {
        while i < plan.barrier {
            let Some(stage) = plan.stages.get(i) else { break };
            if let Stage::Unnest { source, slot } = stage {
                for item in unnest_items(ev.eval(source, rec)) {
                    let mut r = Rec::new(rec.event, rec.ordinal, 0);
                    r.slots = rec.slots.clone();
                    if let Some(s) = r.slots.get_mut(*slot) {
                        *s = item;
                    }
                    self.run(ev, plan, i + 1, &mut r)?;
                }
                return Ok(());
            }
            if !apply(ev, stage, rec) {
                return Ok(());
            }
            i += 1;
        }
        self.stats.records_matched += 1;
        match (&mut *self.barrier, plan.stages.get(plan.barrier)) {
            (Barrier::Stats(groups), Some(Stage::Stats(sp))) => ev.accumulate(sp, groups, rec, self.budget),
            (
                Barrier::Rows {
                    rows,
                    bytes,
                    worst,
                    best,
                },
                Some(Stage::Sort(keys)),
            ) => {
                let key: Vec<Value<'_>> = keys.iter().map(|k| ev.eval(&k.expr, rec)).collect();
                if let Some(dedup) = &plan.dedup_keys {
                    let mut id = Vec::new();
                    let mut missing = false;
                    for e in dedup {
                        let v = ev.eval(e, rec);
                        missing |= v.is_missing();
                        encode_key(&v, &mut id);
                    }
                    // Rows missing a dedup field are never duplicates: they go to the top-k.
                    if !missing {
                        if let Some(old) = best.get(id.as_slice()) {
                            if compare_keys(keys, &key, rec.ordinal, &old.key, old.ordinal) != Ordering::Less
                            {
                                return Ok(());
                            }
                        }
                        let key = key.into_iter().map(Value::into_owned).collect();
                        let row = rec.to_row(key, plan.n_slots);
                        let size = row.size() + heap(id.len()) + 64;
                        if !self.budget.charge(size) {
                            return Err(self
                                .budget
                                .exceeded(&format!("the {} distinct values dedup keeps", best.len())));
                        }
                        if let Some(old) = best.insert(id.into_boxed_slice(), row) {
                            self.budget.release(old.size() + 64);
                        }
                        return Ok(());
                    }
                }
                if let Some(w) = worst {
                    if compare_keys(keys, &key, rec.ordinal, w, u64::MAX) != Ordering::Less {
                        return Ok(());
                    }
                }
                let key = key.into_iter().map(Value::into_owned).collect();
                let row = rec.to_row(key, plan.n_slots);
                let size = row.size();
                if !self.budget.charge(size) {
                    return Err(self
                        .budget
                        .exceeded(&format!("the {} rows a sort holds", rows.len())));
                }
                *bytes += size;
                rows.push(row);
                if let Some(k) = plan.top_k {
                    if rows.len() >= k.saturating_mul(2).max(1024) {
                        truncate_top_k(keys, rows, bytes, k, self.budget);
                        *worst = rows.last().filter(|_| rows.len() == k).map(|r| r.key.clone());
                    }
                }
                Ok(())
            }
            (Barrier::Rows { rows, bytes, .. }, _) => {
                let row = rec.to_row(Vec::new(), plan.n_slots);
                let size = row.size();
                if !self.budget.charge(size) {
                    return Err(self.budget.exceeded(&format!("{} rows", rows.len())));
                }
                *bytes += size;
                rows.push(row);
                Ok(())
            }
            (Barrier::Stats(_), _) => Ok(()),
        }
    }
}

impl Execution {
    /// Folds `other`, an execution of the same plan over later events, into this one.
    pub(crate) fn merge(&mut self, other: Execution) {
        if self.error.is_some() {
            return;
        }
        if let Some(e) = other.error {
            self.error = Some(e);
            return;
        }
        self.stats.add(&other.stats);
        let result = match (&mut self.barrier, other.barrier) {
            (Barrier::Stats(a), Barrier::Stats(b)) => a.merge(b, &self.budget),
            (
                Barrier::Rows {
                    rows,
                    bytes,
                    worst,
                    best,
                },
                Barrier::Rows {
                    rows: more,
                    bytes: b2,
                    best: more_best,
                    ..
                },
            ) => {
                if let Some(Stage::Sort(keys)) = self.plan.stages.get(self.plan.barrier) {
                    for (id, row) in more_best {
                        let keep_old = best.get(&id).is_some_and(|old| {
                            compare_keys(keys, &old.key, old.ordinal, &row.key, row.ordinal) == Ordering::Less
                        });
                        if keep_old {
                            self.budget.release(row.size() + heap(id.len()) + 64);
                        } else if let Some(old) = best.insert(id, row) {
                            self.budget.release(old.size() + 64);
                        }
                    }
                }
                rows.extend(more);
                *bytes += b2;
                if let (Some(k), Some(Stage::Sort(keys))) =
                    (self.plan.top_k, self.plan.stages.get(self.plan.barrier))
                {
                    if rows.len() > k {
                        truncate_top_k(keys, rows, bytes, k, &self.budget);
                        *worst = rows.last().filter(|_| rows.len() == k).map(|r| r.key.clone());
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(m) = result {
            self.fail(m);
        }
    }

    /// The results and the statistics.
    ///
    /// # Errors
    /// [`EvalError::Invalid`] naming the memory budget when the query needed more.
    pub fn finish(mut self) -> Result<QueryResults, EvalError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match std::mem::replace(&mut self.mode, Mode::Direct) {
            Mode::Direct => self.finish_direct(),
            Mode::Buffered { subs, events } => {
                let mut sets = Vec::new();
                for (sub, plan) in subs.into_iter().zip(self.plan.subqueries.iter()) {
                    let results = sub.finish()?;
                    let column = plan.columns.first().map(|(n, _)| n.clone()).unwrap_or_default();
                    let mut set = HashSet::new();
                    for row in &results.rows {
                        if let Some(f) = row.iter().find(|f| f.field == column) {
                            set.insert(f.value.clone());
                        }
                    }
                    sets.push(set);
                }
                self.sets = Arc::new(sets);
                let events_bytes: usize = events
                    .iter()
                    .map(|e| {
                        std::mem::size_of::<LogEvent>()
                            + heap(e.message.len())
                            + heap(e.log_group.len())
                            + heap(e.log_stream.len())
                    })
                    .sum();
                for e in &events {
                    self.push_direct(e.as_ref());
                    if self.error.is_some() {
                        break;
                    }
                }
                drop(events);
                self.budget.release(events_bytes);
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                self.finish_direct()
            }
            Mode::Compare { baseline } => {
                let plan = Arc::clone(&self.plan);
                let current = self.finish_direct()?;
                let previous = baseline.finish()?;
                Ok(compare_results(&plan, current, previous))
            }
        }
    }

    fn finish_direct(self) -> Result<QueryResults, EvalError> {
        let sets = Arc::clone(&self.sets);
        let ev = Evaluator {
            options: &self.options,
            sets: &sets,
        };
        let plan = &self.plan;
        let stages = &plan.stages;
        let mut rows = match (self.barrier, stages.get(plan.barrier)) {
            (Barrier::Stats(groups), Some(Stage::Stats(sp))) => ev.group_rows(sp, groups, plan.n_slots),
            (Barrier::Rows { mut rows, best, .. }, Some(Stage::Sort(keys))) => {
                rows.extend(best.into_values());
                sort_rows(keys, &mut rows);
                if let Some(k) = plan.top_k {
                    rows.truncate(k);
                }
                rows
            }
            (Barrier::Rows { rows, .. }, _) => rows,
            (Barrier::Stats(_), _) => Vec::new(),
        };
        for stage in stages.iter().skip(plan.barrier + 1) {
            rows = apply_rows(&ev, stage, rows, plan.n_slots, &self.budget).map_err(EvalError::Invalid)?;
        }
        rows.truncate(DEFAULT_LIMIT);
        let results = rows
            .iter()
            .map(|row| {
                let rec = row.rec();
                let mut fields: Vec<ResultField> = plan
                    .columns
                    .iter()
                    .filter_map(|(name, e)| {
                        let v = ev.eval(e, &rec);
                        (!v.is_missing()).then(|| ResultField {
                            field: name.clone(),
                            value: v.render(),
                        })
                    })
                    .collect();
                if plan.with_ptr && row.event.is_some() {
                    fields.push(ResultField {
                        field: "@ptr".into(),
                        value: ptr(row.ordinal),
                    });
                }
                fields
            })
            .collect();
        Ok(QueryResults {
            rows: results,
            statistics: self.stats,
        })
    }
}

pub(crate) fn compare_keys(
    keys: &[SortKey],
    a: &[Value<'_>],
    a_ord: u64,
    b: &[Value<'_>],
    b_ord: u64,
) -> Ordering {
    for (i, k) in keys.iter().enumerate() {
        let (x, y) = (
            a.get(i).unwrap_or(&Value::Missing),
            b.get(i).unwrap_or(&Value::Missing),
        );
        let o = match (x.is_missing(), y.is_missing()) {
            (false, false) => {
                let o = x.sort_cmp(y);
                if k.descending {
                    o.reverse()
                } else {
                    o
                }
            }
            // Missing values last in either direction, unless `sortsFirst`.
            _ if k.missing_first => x.sort_cmp(y).reverse(),
            _ => x.sort_cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a_ord.cmp(&b_ord)
}

pub(crate) fn sort_rows(keys: &[SortKey], rows: &mut [Row]) {
    rows.sort_by(|a, b| compare_keys(keys, &a.key, a.ordinal, &b.key, b.ordinal));
}

fn truncate_top_k(keys: &[SortKey], rows: &mut Vec<Row>, bytes: &mut usize, k: usize, budget: &Budget) {
    sort_rows(keys, rows);
    let freed: usize = rows.iter().skip(k).map(Row::size).sum();
    rows.truncate(k);
    *bytes = bytes.saturating_sub(freed);
    budget.release(freed);
}
