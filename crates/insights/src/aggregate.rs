//! Aggregation: the accumulators of `stats` (mergeable, so that chunks scanned in parallel
//! combine into what one pass would give), the group table, and the rows groups become.

use crate::budget::{heap, Budget};
use crate::expr::Evaluator;
use crate::plan::{AggKind, StatsPlan};
use crate::row::{value_size, Rec, Row};
use crate::value::{decode_key, encode_key, FastMap, KeyValue, Value};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Budget estimate of one `count_distinct` entry beyond its heap bytes (hash-set slot at the
/// worst load factor).
const DISTINCT_ENTRY: usize = 2 * std::mem::size_of::<KeyValue>() + 8;
const SKETCH_BUCKET: usize = 48;

/// Exact percentiles up to this many values per group; then a log-bucket sketch with 1%
/// relative accuracy keeps memory bounded.
const EXACT_PCT_VALUES: usize = 10_000;
const SKETCH_GAMMA: f64 = 1.02;

#[derive(Debug, Clone)]
pub(crate) enum Acc {
    Count(u64),
    Distinct(HashSet<KeyValue>),
    Sum {
        sum: f64,
        n: u64,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value<'static>>),
    Max(Option<Value<'static>>),
    Pct {
        p: f64,
        exact: Vec<f64>,
        sketch: Option<Box<Sketch>>,
    },
    Stddev {
        n: u64,
        mean: f64,
        m2: f64,
    },
    Earliest(Option<(i64, Value<'static>)>),
    Latest(Option<(i64, Value<'static>)>),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Sketch {
    positive: HashMap<i32, u64>,
    negative: HashMap<i32, u64>,
    zeros: u64,
    n: u64,
}

impl Sketch {
    fn bucket(x: f64) -> i32 {
        (x.ln() / SKETCH_GAMMA.ln()).ceil() as i32
    }

    /// Adds a value; returns the bytes a new bucket took.
    fn add(&mut self, x: f64) -> usize {
        self.n += 1;
        let map = if x > 0.0 {
            &mut self.positive
        } else if x < 0.0 {
            &mut self.negative
        } else {
            self.zeros += 1;
            return 0;
        };
        let b = Self::bucket(x.abs());
        match map.get_mut(&b) {
            Some(c) => {
                *c += 1;
                0
            }
            None => {
                map.insert(b, 1);
                SKETCH_BUCKET
            }
        }
    }

    fn merge(&mut self, other: Sketch) -> usize {
        let mut grown = 0;
        self.n += other.n;
        self.zeros += other.zeros;
        for (mine, theirs) in [
            (&mut self.positive, other.positive),
            (&mut self.negative, other.negative),
        ] {
            for (b, c) in theirs {
                match mine.get_mut(&b) {
                    Some(m) => *m += c,
                    None => {
                        mine.insert(b, c);
                        grown += SKETCH_BUCKET;
                    }
                }
            }
        }
        grown
    }

    fn value(i: i32) -> f64 {
        2.0 * SKETCH_GAMMA.powi(i) / (SKETCH_GAMMA + 1.0)
    }

    fn quantile(&self, p: f64) -> Option<f64> {
        let rank = nearest_rank(p, self.n)?;
        let mut seen = 0u64;
        let mut neg: Vec<(&i32, &u64)> = self.negative.iter().collect();
        neg.sort_by(|a, b| b.0.cmp(a.0));
        for (i, c) in neg {
            seen += c;
            if seen > rank {
                return Some(-Self::value(*i));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        let mut pos: Vec<(&i32, &u64)> = self.positive.iter().collect();
        pos.sort_by(|a, b| a.0.cmp(b.0));
        for (i, c) in pos {
            seen += c;
            if seen > rank {
                return Some(Self::value(*i));
            }
        }
        None
    }
}

/// 0-based index of the nearest-rank percentile `p` among `n` sorted values.
fn nearest_rank(p: f64, n: u64) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0) * n as f64).ceil() as u64;
    Some(rank.clamp(1, n) - 1)
}

impl Acc {
    pub(crate) fn new(kind: AggKind) -> Acc {
        match kind {
            AggKind::Count => Acc::Count(0),
            AggKind::CountDistinct => Acc::Distinct(HashSet::new()),
            AggKind::Sum => Acc::Sum { sum: 0.0, n: 0 },
            AggKind::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggKind::Min => Acc::Min(None),
            AggKind::Max => Acc::Max(None),
            AggKind::Pct(p) => Acc::Pct {
                p,
                exact: Vec::new(),
                sketch: None,
            },
            AggKind::Stddev => Acc::Stddev {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggKind::Earliest => Acc::Earliest(None),
            AggKind::Latest => Acc::Latest(None),
        }
    }

    /// Adds a value; returns the bytes the accumulator grew by (an estimate).
    pub(crate) fn add(&mut self, v: &Value<'_>, time: Option<i64>) -> usize {
        if v.is_missing() {
            return 0;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Distinct(set) => {
                let k = KeyValue::from_value(v);
                let grown = DISTINCT_ENTRY + k.heap_size();
                if set.insert(k) {
                    return grown;
                }
            }
            Acc::Sum { sum, n } | Acc::Avg { sum, n } => {
                if let Some(x) = v.as_number() {
                    *sum += x;
                    *n += 1;
                }
            }
            Acc::Min(cur) => {
                if cur.as_ref().is_none_or(|c| v.compare(c) == Some(Ordering::Less)) {
                    let grown = value_size(v);
                    *cur = Some(v.clone().into_owned());
                    return grown;
                }
            }
            Acc::Max(cur) => {
                if cur
                    .as_ref()
                    .is_none_or(|c| v.compare(c) == Some(Ordering::Greater))
                {
                    let grown = value_size(v);
                    *cur = Some(v.clone().into_owned());
                    return grown;
                }
            }
            Acc::Pct { exact, sketch, .. } => {
                let Some(x) = v.as_number() else { return 0 };
                match sketch {
                    Some(s) => return s.add(x),
                    None => {
                        exact.push(x);
                        if exact.len() > EXACT_PCT_VALUES {
                            let mut s = Box::<Sketch>::default();
                            for y in exact.drain(..) {
                                s.add(y);
                            }
                            exact.shrink_to_fit();
                            *sketch = Some(s);
                        }
                        return 16;
                    }
                }
            }
            Acc::Stddev { n, mean, m2 } => {
                if let Some(x) = v.as_number() {
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            Acc::Earliest(cur) => {
                let t = time.unwrap_or(i64::MAX);
                if cur.as_ref().is_none_or(|(ct, _)| t < *ct) {
                    let grown = value_size(v);
                    *cur = Some((t, v.clone().into_owned()));
                    return grown;
                }
            }
            Acc::Latest(cur) => {
                let t = time.unwrap_or(i64::MIN);
                if cur.as_ref().is_none_or(|(ct, _)| t >= *ct) {
                    let grown = value_size(v);
                    *cur = Some((t, v.clone().into_owned()));
                    return grown;
                }
            }
        }
        0
    }

    /// Folds `other`, the accumulator of the same group over later events, into this one,
    /// giving what one accumulator over all the events would hold; returns the bytes it grew by.
    pub(crate) fn merge(&mut self, other: Acc) -> usize {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::Distinct(a), Acc::Distinct(b)) => {
                let mut grown = 0;
                for k in b {
                    let size = DISTINCT_ENTRY + k.heap_size();
                    if a.insert(k) {
                        grown += size;
                    }
                }
                return grown;
            }
            (
                Acc::Sum { sum, n } | Acc::Avg { sum, n },
                Acc::Sum { sum: s2, n: n2 } | Acc::Avg { sum: s2, n: n2 },
            ) => {
                *sum += s2;
                *n += n2;
            }
            (Acc::Min(a), Acc::Min(Some(b)))
                if a.as_ref().is_none_or(|c| b.compare(c) == Some(Ordering::Less)) =>
            {
                *a = Some(b);
            }
            (Acc::Max(a), Acc::Max(Some(b)))
                if a.as_ref().is_none_or(|c| b.compare(c) == Some(Ordering::Greater)) =>
            {
                *a = Some(b);
            }
            (
                Acc::Pct { exact, sketch, .. },
                Acc::Pct {
                    exact: e2,
                    sketch: s2,
                    ..
                },
            ) => {
                let mut grown = 0;
                if let Some(s2) = s2 {
                    let s = sketch.get_or_insert_with(Box::default);
                    for y in exact.drain(..) {
                        grown += s.add(y);
                    }
                    grown += s.merge(*s2);
                }
                for y in e2 {
                    match sketch {
                        Some(s) => grown += s.add(y),
                        None => {
                            exact.push(y);
                            grown += 16;
                            if exact.len() > EXACT_PCT_VALUES {
                                let mut s = Box::<Sketch>::default();
                                for z in exact.drain(..) {
                                    s.add(z);
                                }
                                exact.shrink_to_fit();
                                *sketch = Some(s);
                            }
                        }
                    }
                }
                return grown;
            }
            (
                Acc::Stddev { n, mean, m2 },
                Acc::Stddev {
                    n: n2,
                    mean: mean2,
                    m2: m22,
                },
            ) if n2 > 0 => {
                let total = *n + n2;
                let d = mean2 - *mean;
                *m2 += m22 + d * d * (*n as f64) * (n2 as f64) / total as f64;
                *mean += d * n2 as f64 / total as f64;
                *n = total;
            }
            (Acc::Earliest(a), Acc::Earliest(Some((t, v)))) if a.as_ref().is_none_or(|(ct, _)| t < *ct) => {
                *a = Some((t, v));
            }
            (Acc::Latest(a), Acc::Latest(Some((t, v)))) if a.as_ref().is_none_or(|(ct, _)| t >= *ct) => {
                *a = Some((t, v));
            }
            _ => {}
        }
        0
    }

    pub(crate) fn finish(self) -> Value<'static> {
        match self {
            Acc::Count(n) => Value::Num(n as f64),
            Acc::Distinct(set) => Value::Num(set.len() as f64),
            Acc::Sum { sum, n } => {
                if n == 0 {
                    Value::Missing
                } else {
                    Value::Num(sum)
                }
            }
            Acc::Avg { sum, n } => {
                if n == 0 {
                    Value::Missing
                } else {
                    Value::Num(sum / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) => v.unwrap_or(Value::Missing),
            Acc::Pct { p, mut exact, sketch } => match sketch {
                Some(s) => s.quantile(p).map_or(Value::Missing, Value::Num),
                None => {
                    exact.sort_by(f64::total_cmp);
                    nearest_rank(p, exact.len() as u64)
                        .and_then(|i| exact.get(usize::try_from(i).ok()?).copied())
                        .map_or(Value::Missing, Value::Num)
                }
            },
            Acc::Stddev { n, m2, .. } => match n {
                0 => Value::Missing,
                1 => Value::Num(0.0),
                n => Value::Num((m2 / (n - 1) as f64).sqrt()),
            },
            Acc::Earliest(v) | Acc::Latest(v) => v.map_or(Value::Missing, |(_, v)| v),
        }
    }
}
/// One group: its key and accumulators.
type Group = (Box<[u8]>, Box<[Acc]>);

/// The groups of a `stats`: compact keys (boxed slices of boxed strings) to accumulators.
#[derive(Default)]
pub(crate) struct Groups {
    pub map: FastMap<Box<[u8]>, Box<[Acc]>>,
    /// The key of the record being added, reused.
    scratch: Vec<u8>,
}

/// Budget estimate of a new group: its key and accumulators, and its share of the hash table
/// (which may be twice the entries while it grows).
fn group_size(key: &[u8], n_aggs: usize) -> usize {
    let entry = std::mem::size_of::<Group>() + 8;
    2 * entry + heap(key.len()) + heap(n_aggs * std::mem::size_of::<Acc>())
}

impl Groups {
    /// Folds `other` (the groups of later events) into these.
    pub(crate) fn merge(&mut self, other: Groups, budget: &Budget) -> Result<(), String> {
        for (key, accs) in other.map {
            match self.map.get_mut(&key) {
                Some(mine) => {
                    // The worker charged this group too; one copy remains.
                    budget.release(group_size(&key, accs.len()));
                    let mut grown = 0;
                    for (a, b) in mine.iter_mut().zip(accs.into_vec()) {
                        grown += a.merge(b);
                    }
                    if !budget.charge(grown) {
                        return Err(budget.exceeded("the values of the stats aggregates"));
                    }
                }
                None => {
                    // Already charged by the worker that made it.
                    self.map.insert(key, accs);
                }
            }
        }
        Ok(())
    }
}

impl Evaluator<'_> {
    /// Adds a record to its group.
    pub(crate) fn accumulate(
        &self,
        plan: &StatsPlan,
        groups: &mut Groups,
        rec: &Rec<'_>,
        budget: &Budget,
    ) -> Result<(), String> {
        let mut key = std::mem::take(&mut groups.scratch);
        key.clear();
        for (e, _) in &plan.by {
            encode_key(&self.eval(e, rec), &mut key);
        }
        if !groups.map.contains_key(key.as_slice()) {
            if !budget.charge(group_size(&key, plan.aggs.len())) {
                return Err(budget.exceeded("the stats groups"));
            }
            groups.map.insert(
                key.as_slice().into(),
                plan.aggs.iter().map(|a| Acc::new(a.kind)).collect(),
            );
        }
        let found = groups.map.get_mut(key.as_slice());
        groups.scratch = key;
        let Some(accs) = found else { return Ok(()) };
        let time = rec.event.map(|e| e.timestamp_ms);
        let mut grown = 0;
        for (spec, acc) in plan.aggs.iter().zip(accs.iter_mut()) {
            grown += match &spec.arg {
                None => acc.add(&Value::Bool(true), time),
                Some(e) => acc.add(&self.eval(e, rec), time),
            };
        }
        if grown > 0 && !budget.charge(grown) {
            return Err(budget.exceeded("the values of the stats aggregates"));
        }
        Ok(())
    }

    /// The rows of the groups, in ascending order of their `by` values.
    pub(crate) fn group_rows(&self, plan: &StatsPlan, groups: Groups, n_slots: usize) -> Vec<Row> {
        let mut entries: Vec<Group> = groups.map.into_iter().collect();
        // A fixed order first, so that groups equal in the sort order (`0` and `-0`) come out
        // the same way on every run and however the input was split.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if entries.is_empty() && plan.by.is_empty() {
            entries.push((
                Box::default(),
                plan.aggs.iter().map(|a| Acc::new(a.kind)).collect(),
            ));
        }
        let mut rows: Vec<Row> = entries
            .into_iter()
            .map(|(key, accs)| {
                let mut slots = vec![Value::Missing; n_slots];
                let key_values: Vec<Value<'static>> = decode_key(&key);
                for ((_, slot), v) in plan.by.iter().zip(key_values.iter()) {
                    if let Some(s) = slots.get_mut(*slot) {
                        *s = v.clone();
                    }
                }
                let finals: Vec<Value<'static>> = accs.into_vec().into_iter().map(Acc::finish).collect();
                for (e, slot) in &plan.outputs {
                    // Outputs see the earlier ones (`x - y as z`) through the slots.
                    let v = {
                        let rec = Rec {
                            event: None,
                            ordinal: 0,
                            slots: slots.iter().map(Value::borrowed).collect(),
                            json: std::cell::OnceCell::new(),
                        };
                        self.eval_stats(e, &rec, &finals).into_owned()
                    };
                    if let Some(s) = slots.get_mut(*slot) {
                        *s = v;
                    }
                }
                Row {
                    event: None,
                    ordinal: 0,
                    slots,
                    key: key_values,
                }
            })
            .collect();
        // Groups in ascending order of their `by` values (CloudWatch does not promise an order;
        // add `sort` for one).
        rows.sort_by(|a, b| {
            a.key
                .iter()
                .zip(b.key.iter())
                .map(|(x, y)| x.sort_cmp(y))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        for (i, r) in rows.iter_mut().enumerate() {
            r.ordinal = i as u64;
        }
        rows
    }
}
