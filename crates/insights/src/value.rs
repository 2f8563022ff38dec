//! Runtime values and how Logs Insights renders and compares them.

use chrono::DateTime;
use std::borrow::Cow;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    /// The field does not exist on this record.
    Missing,
    Str(Cow<'a, str>),
    Num(f64),
    /// Milliseconds since the epoch (`@timestamp`, `bin()`, `fromMillis()`).
    Time(i64),
    Bool(bool),
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
        }
    }

    pub(crate) fn as_number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Time(t) => Some(*t as f64),
            Value::Str(s) => parse_number(s),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Missing => None,
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
            Value::Time(_) => true,
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

    /// Ordering for sort: missing values last in either direction is applied by the caller;
    /// here missing sorts after everything.
    pub(crate) fn sort_cmp(&self, other: &Value<'_>) -> Ordering {
        match (self.is_missing(), other.is_missing()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => self.compare(other).unwrap_or(Ordering::Equal),
        }
    }
}

/// A hashable form of a value, for group keys, `dedup` and `count_distinct`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum KeyValue {
    Missing,
    Num(u64),
    Time(i64),
    Str(String),
}

impl KeyValue {
    pub(crate) fn from_value(v: &Value<'_>) -> KeyValue {
        match v {
            Value::Missing => KeyValue::Missing,
            Value::Num(n) => KeyValue::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
            Value::Time(t) => KeyValue::Time(*t),
            Value::Str(s) => KeyValue::Str(s.to_string()),
            Value::Bool(b) => KeyValue::Str(if *b { "1" } else { "0" }.to_string()),
        }
    }

    pub(crate) fn to_value(&self) -> Value<'static> {
        match self {
            KeyValue::Missing => Value::Missing,
            KeyValue::Num(bits) => Value::Num(f64::from_bits(*bits)),
            KeyValue::Time(t) => Value::Time(*t),
            KeyValue::Str(s) => Value::Str(Cow::Owned(s.clone())),
        }
    }
}
