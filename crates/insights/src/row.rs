//! Records as the evaluator sees them: [`Rec`], one event (or one `stats` group) flowing
//! through the stages with its slots, borrowing the event; [`Row`], a record that outlives
//! its event (kept by `sort`, `dedup`, subqueries). JSON messages are parsed at most once per
//! record, when a query first reads one of their fields, and only the fields it reads are
//! looked up (no flattening of the whole message).

use crate::budget::heap;
use crate::event::{EventRef, LogEvent};
use crate::value::Value;
use std::borrow::Cow;
use std::cell::OnceCell;

pub(crate) struct Rec<'a> {
    pub event: Option<EventRef<'a>>,
    pub ordinal: u64,
    pub slots: Vec<Value<'a>>,
    pub json: OnceCell<Option<serde_json::Value>>,
}

/// A record kept past its event.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub event: Option<LogEvent>,
    pub ordinal: u64,
    pub slots: Vec<Value<'static>>,
    /// Sort key, when the barrier is a sort.
    pub key: Vec<Value<'static>>,
}

/// `name` inside a JSON value the way Logs Insights flattens it: `a.b.0` is key `a`, then
/// `b`, then element 0, or any key that itself contains dots (`"a.b"`).
pub(crate) fn json_path<'v>(v: &'v serde_json::Value, name: &str) -> Option<&'v serde_json::Value> {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(x) = map.get(name) {
                return Some(x);
            }
            name.match_indices('.').find_map(|(i, _)| {
                let child = map.get(&name[..i])?;
                json_path(child, &name[i + 1..])
            })
        }
        serde_json::Value::Array(items) => {
            let (head, rest) = match name.split_once('.') {
                Some((h, r)) => (h, Some(r)),
                None => (name, None),
            };
            let item = items.get(head.parse::<usize>().ok()?)?;
            match rest {
                Some(r) => json_path(item, r),
                None => Some(item),
            }
        }
        _ => None,
    }
}

/// A leaf of a JSON message as a field value: strings as they are, numbers and booleans as
/// their JSON text; null, maps and lists are not fields.
fn leaf(v: &serde_json::Value) -> Value<'_> {
    match v {
        serde_json::Value::String(s) => Value::Str(Cow::Borrowed(s)),
        serde_json::Value::Number(n) => Value::Str(Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Value::Str(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => Value::Missing,
    }
}

impl<'a> Rec<'a> {
    pub(crate) fn new(event: Option<EventRef<'a>>, ordinal: u64, n_slots: usize) -> Rec<'a> {
        Rec {
            event,
            ordinal,
            slots: if n_slots == 0 {
                Vec::new()
            } else {
                vec![Value::Missing; n_slots]
            },
            json: OnceCell::new(),
        }
    }

    /// The message parsed as JSON, when it is a JSON object.
    pub(crate) fn message_json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| {
                let msg = self.event?.message.trim_start();
                if !msg.starts_with('{') {
                    return None;
                }
                serde_json::from_str(msg).ok()
            })
            .as_ref()
    }

    pub(crate) fn json_field(&self, name: &str) -> Value<'_> {
        self.message_json()
            .and_then(|v| json_path(v, name))
            .map_or(Value::Missing, leaf)
    }

    /// A row of `n_slots` slots (the later stages may assign ones this record lacks).
    pub(crate) fn to_row(&self, key: Vec<Value<'static>>, n_slots: usize) -> Row {
        let mut slots: Vec<Value<'static>> = self.slots.iter().map(|v| v.clone().into_owned()).collect();
        slots.resize(n_slots.max(slots.len()), Value::Missing);
        Row {
            event: self.event.map(|e| e.to_owned_event()),
            ordinal: self.ordinal,
            slots,
            key,
        }
    }
}

impl Row {
    pub(crate) fn rec(&self) -> Rec<'_> {
        Rec {
            event: self.event.as_ref().map(LogEvent::as_ref),
            ordinal: self.ordinal,
            slots: self.slots.iter().map(Value::borrowed).collect(),
            json: OnceCell::new(),
        }
    }

    /// What the row costs the memory budget.
    pub(crate) fn size(&self) -> usize {
        let event = self.event.as_ref().map_or(0, |e| {
            std::mem::size_of::<LogEvent>()
                + heap(e.message.len())
                + heap(e.log_group.len())
                + heap(e.log_stream.len())
        });
        std::mem::size_of::<Row>()
            + event
            + heap(self.slots.len() * std::mem::size_of::<Value<'static>>())
            + heap(self.key.len() * std::mem::size_of::<Value<'static>>())
            + self
                .slots
                .iter()
                .chain(self.key.iter())
                .map(value_size)
                .sum::<usize>()
    }
}

/// The heap bytes a value holds.
pub(crate) fn value_size(v: &Value<'_>) -> usize {
    match v {
        Value::Str(Cow::Owned(s)) => heap(s.len()),
        Value::Json(j) => heap(j.to_string().len() * 2),
        _ => 0,
    }
}
