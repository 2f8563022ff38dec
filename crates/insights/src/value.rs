//! Runtime values and how Logs Insights renders and compares them.

use chrono::DateTime;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    /// The field does not exist on this record.
    Missing,
    Str(Cow<'a, str>),
    Num(f64),
    /// Milliseconds since the epoch (`@timestamp`, `bin()`, `fromMillis()`).
    Time(i64),
    Bool(bool),
    /// A structure from `jsonParse()` or `unnest`: a map or a list.
    Json(Arc<serde_json::Value>),
}

/// Renders epoch milliseconds the way Logs Insights does: `2026-03-14 14:30:00.000` (UTC).
pub fn format_timestamp(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

pub(crate) fn format_number(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else if n.is_nan() {
        "NaN".to_string()
    } else {
        format!("{n}")
    }
}

/// Parses a string the way a numeric comparison sees it.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

impl<'a> Value<'a> {
    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    pub(crate) fn into_owned(self) -> Value<'static> {
        match self {
            Value::Missing => Value::Missing,
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Num(n) => Value::Num(n),
            Value::Time(t) => Value::Time(t),
            Value::Bool(b) => Value::Bool(b),
            Value::Json(j) => Value::Json(j),
        }
    }

    /// A view of the value that borrows its text.
    pub(crate) fn borrowed(&self) -> Value<'_> {
        match self {
            Value::Missing => Value::Missing,
            Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
            Value::Num(n) => Value::Num(*n),
            Value::Time(t) => Value::Time(*t),
            Value::Bool(b) => Value::Bool(*b),
            Value::Json(j) => Value::Json(Arc::clone(j)),
        }
    }

    /// A JSON value as a query value: strings, numbers and booleans become scalars, null is
    /// missing, maps and lists stay structures.
    pub(crate) fn from_json(v: &serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::Null => Value::Missing,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Missing, Value::Num),
            serde_json::Value::String(s) => Value::Str(Cow::Owned(s.clone())),
            other => Value::Json(Arc::new(other.clone())),
        }
    }

    pub(crate) fn as_number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(t) => Some(*t as f64),
            Value::Str(s) => parse_number(s),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Missing | Value::Json(_) => None,
        }
    }

    /// Epoch milliseconds: times, numbers, and timestamp strings.
    pub(crate) fn as_time(&self) -> Option<i64> {
        match self {
            Value::Time(t) => Some(*t),
            Value::Num(n) if n.is_finite() => Some(*n as i64),
            Value::Str(s) => crate::reader::parse_timestamp(s),
            _ => None,
        }
    }

    pub(crate) fn truthy(&self) -> bool {
        match self {
            Value::Missing => false,
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0,
            Value::Time(_) | Value::Json(_) => true,
            Value::Str(s) => !s.is_empty() && !s.eq_ignore_ascii_case("false"),
        }
    }

    /// The text of the value as a string operand (`concat`, `like`).
    pub(crate) fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Missing => None,
            Value::Str(s) => Some(Cow::Borrowed(s)),
            other => Some(Cow::Owned(other.render())),
        }
    }

    /// How the value appears in GetQueryResults.
    pub(crate) fn render(&self) -> String {
        match self {
            Value::Missing => String::new(),
            Value::Str(s) => s.to_string(),
            Value::Num(n) => format_number(*n),
            Value::Time(t) => format_timestamp(*t),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Json(j) => j.to_string(),
        }
    }

    /// Comparison for `=`, `<`, sort and min/max: numeric when both sides are numbers (or
    /// strings that read as numbers), otherwise by text. `None` when either side is missing.
    pub(crate) fn compare(&self, other: &Value<'_>) -> Option<Ordering> {
        if self.is_missing() || other.is_missing() {
            return None;
        }
        if let (Value::Time(a), Value::Time(b)) = (self, other) {
            return Some(a.cmp(b));
        }
        if let (Value::Time(a), Value::Str(s)) = (self, other) {
            if let Some(b) = crate::reader::parse_timestamp(s) {
                return Some(a.cmp(&b));
            }
        }
        if let (Value::Str(s), Value::Time(b)) = (self, other) {
            if let Some(a) = crate::reader::parse_timestamp(s) {
                return Some(a.cmp(b));
            }
        }
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => {
                let a = self.as_text()?;
                let b = other.as_text()?;
                Some(a.as_ref().cmp(b.as_ref()))
            }
        }
    }

    /// The total order of `sort`, `stats` groups and `dedup`, as Logs Insights documents it
    /// for an ascending sort: every non-number value before every number; numbers by value;
    /// non-numbers in natural order (runs of digits compared by length, then value; other
    /// characters by Unicode value). Missing sorts after everything (the caller keeps missing
    /// values last in either direction). Total whatever the mix of types, so sorting never
    /// panics.
    pub(crate) fn sort_cmp(&self, other: &Value<'_>) -> Ordering {
        match (self.sort_class(), other.sort_class()) {
            (SortClass::Missing, SortClass::Missing) => Ordering::Equal,
            (SortClass::Missing, _) => Ordering::Greater,
            (_, SortClass::Missing) => Ordering::Less,
            (SortClass::Number(a), SortClass::Number(b)) => a.total_cmp(&b),
            (SortClass::Text, SortClass::Number(_)) => Ordering::Less,
            (SortClass::Number(_), SortClass::Text) => Ordering::Greater,
            (SortClass::Text, SortClass::Text) => {
                let (a, b) = (self.render(), other.render());
                natural_cmp(&a, &b)
            }
        }
    }

    fn sort_class(&self) -> SortClass {
        match self {
            Value::Missing => SortClass::Missing,
            Value::Num(n) => SortClass::Number(if *n == 0.0 { 0.0 } else { *n }),
            Value::Time(t) => SortClass::Number(*t as f64),
            Value::Bool(b) => SortClass::Number(if *b { 1.0 } else { 0.0 }),
            Value::Str(s) => match parse_number(s) {
                Some(n) => SortClass::Number(if n == 0.0 { 0.0 } else { n }),
                None => SortClass::Text,
            },
            Value::Json(_) => SortClass::Text,
        }
    }
}

enum SortClass {
    Missing,
    Number(f64),
    Text,
}

/// Natural order: the strings split into runs of ASCII digits and runs of anything else; digit
/// runs compare by length (leading zeros count), then by value; other runs by Unicode value.
/// Ties fall back to the plain byte order, so the order is total.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        let (dx, dy) = (x[i].is_ascii_digit(), y[j].is_ascii_digit());
        let run = |s: &[u8], k: usize, digits: bool| {
            let mut e = k;
            while e < s.len() && s[e].is_ascii_digit() == digits {
                e += 1;
            }
            e
        };
        let (ei, ej) = (run(x, i, dx), run(y, j, dy));
        let (rx, ry) = (&x[i..ei], &y[j..ej]);
        let o = match (dx, dy) {
            (true, true) => rx.len().cmp(&ry.len()).then_with(|| rx.cmp(ry)),
            _ => rx.cmp(ry),
        };
        if o != Ordering::Equal {
            return o;
        }
        i = ei;
        j = ej;
    }
    (x.len() - i).cmp(&(y.len() - j)).then_with(|| x.cmp(y))
}

/// A hashable form of a value, for group keys, `dedup` and `count_distinct`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum KeyValue {
    Missing,
    Num(u64),
    Time(i64),
    Str(Box<str>),
}

impl KeyValue {
    pub(crate) fn from_value(v: &Value<'_>) -> KeyValue {
        match v {
            Value::Missing => KeyValue::Missing,
            Value::Num(n) => KeyValue::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
            Value::Time(t) => KeyValue::Time(*t),
            Value::Str(s) => KeyValue::Str(Box::from(s.as_ref())),
            Value::Bool(b) => KeyValue::Str(Box::from(if *b { "1" } else { "0" })),
            Value::Json(j) => KeyValue::Str(j.to_string().into_boxed_str()),
        }
    }

    /// Heap bytes beyond the enum itself.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            KeyValue::Str(s) => crate::budget::heap(s.len()),
            _ => 0,
        }
    }
}

/// Group keys as compact bytes: one allocation per group, and a lookup of an existing group
/// without any. Each value is a tag (0 missing, 1 number, 2 time, 3 text) and its bytes.
pub(crate) fn encode_key(v: &Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Missing => out.push(0),
        Value::Num(n) => {
            out.push(1);
            out.extend_from_slice(&(if *n == 0.0 { 0.0f64 } else { *n }).to_bits().to_le_bytes());
        }
        Value::Time(t) => {
            out.push(2);
            out.extend_from_slice(&t.to_le_bytes());
        }
        Value::Str(s) => encode_text(s, out),
        Value::Bool(b) => encode_text(if *b { "1" } else { "0" }, out),
        Value::Json(j) => encode_text(&j.to_string(), out),
    }
}

fn encode_text(s: &str, out: &mut Vec<u8>) {
    out.push(3);
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The values of an encoded key.
pub(crate) fn decode_key(mut b: &[u8]) -> Vec<Value<'static>> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = b.split_first() {
        let word = |r: &[u8]| r.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok());
        match tag {
            1 | 2 => {
                let Some(w) = word(rest) else { break };
                out.push(if tag == 1 {
                    Value::Num(f64::from_bits(u64::from_le_bytes(w)))
                } else {
                    Value::Time(i64::from_le_bytes(w))
                });
                b = &rest[8..];
            }
            3 => {
                let Some(len) = rest.get(..4).and_then(|w| <[u8; 4]>::try_from(w).ok()) else {
                    break;
                };
                let len = u32::from_le_bytes(len) as usize;
                let Some(text) = rest.get(4..4 + len) else { break };
                out.push(Value::Str(Cow::Owned(String::from_utf8_lossy(text).into_owned())));
                b = &rest[4 + len..];
            }
            _ => {
                out.push(Value::Missing);
                b = rest;
            }
        }
    }
    out
}

/// A fast hash for group keys and distinct values (FxHash's multiply-rotate; the keys come
/// from local log files, not from an adversary across a network).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        // A final mix so that the low bits hashbrown uses depend on every input bit.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
}

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;
