//! Path-tracking JSON access: every error names the JSON path of the offending field; and the
//! field readers (states, times, dimensions, tags) and ARN helpers the shapes share.

use super::Result;
use crate::error::Error;
use crate::model::signal::AlarmState;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(super) fn state_field(o: &Obj<'_>, key: &str) -> Result<AlarmState> {
    let n = o.req(key)?;
    state_value(&n, n.str()?)
}

pub(super) fn state_value(n: &Node<'_>, s: &str) -> Result<AlarmState> {
    AlarmState::parse(s).ok_or_else(|| {
        Error::invalid(
            n.path.clone(),
            format!("unknown alarm state {s:?}: expected OK, ALARM or INSUFFICIENT_DATA"),
        )
    })
}

pub(super) fn time_field(o: &Obj<'_>, key: &str) -> Result<DateTime<Utc>> {
    parse_time_node(&o.req(key)?)
}

pub(super) fn parse_time_node(n: &Node<'_>) -> Result<DateTime<Utc>> {
    let s = n.str()?;
    parse_time(s).ok_or_else(|| {
        Error::invalid(
            n.path.clone(),
            format!("{s:?} is not a timestamp (expected e.g. 2026-03-14T14:35:00.000+0000)"),
        )
    })
}

/// Parses RFC 3339 and CloudWatch's `2026-03-14T14:35:00.000+0000` (offset without colon).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // No offset at all: CloudWatch times are UTC.
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Dimensions as SNS sends them (`[{"name","value"}]`) or as EventBridge does (`{name: value}`).
pub(super) fn dimensions_field(o: &Obj<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(n) = o.opt(key) else {
        return Ok(BTreeMap::new());
    };
    pairs(&n, &["name", "Name"], &["value", "Value"])
}

/// Tags as a map, or as a `[{"Key","Value"}]` list. Non-string values are stringified; a tag
/// whose value is a list, object or null is skipped.
pub(super) fn tags_field(o: &Obj<'_>, key: &str) -> Result<BTreeMap<String, String>> {
    let Some(n) = o.opt(key) else {
        return Ok(BTreeMap::new());
    };
    pairs(&n, &["Key", "key"], &["Value", "value"])
}

pub(super) fn pairs(
    n: &Node<'_>,
    key_names: &[&str],
    value_names: &[&str],
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match n.v {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(v) = scalar_string(v) {
                    out.insert(k.clone(), v);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let item = Node::new(item, format!("{}[{i}]", n.path)).object()?;
                let k = first_present(&item, key_names)?;
                let v = first_present(&item, value_names)?;
                if let Some(v) = scalar_string(v.v) {
                    out.insert(k.str()?.to_string(), v);
                }
            }
        }
        _ => {
            return Err(Error::invalid(
                n.path.clone(),
                format!("expected an object or a list of pairs, got {}", kind(n.v)),
            ))
        }
    }
    Ok(out)
}

pub(super) fn first_present<'a>(o: &Obj<'a>, names: &[&str]) -> Result<Node<'a>> {
    names
        .iter()
        .find_map(|k| o.opt(k))
        .ok_or_else(|| Error::invalid(o.child_path(names.first().copied().unwrap_or("")), "missing"))
}

pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `arn:aws:cloudwatch:us-east-1:123456789012:alarm:NAME` → fields 3, 4 and the name (which may
/// itself contain `:`).
pub(super) fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut it = arn.splitn(7, ':');
    let (prefix, _partition, service) = (it.next()?, it.next()?, it.next()?);
    let (region, account, resource, name) = (it.next()?, it.next()?, it.next()?, it.next()?);
    (prefix == "arn" && service == "cloudwatch" && resource == "alarm" && !name.is_empty())
        .then_some((region, account, name))
}

pub(super) fn arn_region(arn: &str) -> Option<String> {
    arn_parts(arn)
        .map(|(r, _, _)| r)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

pub(super) fn arn_account(arn: &str) -> Option<String> {
    arn_parts(arn)
        .map(|(_, a, _)| a)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

/// The alarm name in an alarm ARN.
pub fn arn_alarm_name(arn: &str) -> Option<String> {
    arn_parts(arn).map(|(_, _, n)| n.to_string())
}

/// SNS notifications name the region in words ("US East (N. Virginia)"); used only when there is
/// no alarm ARN to read the code from.
pub(super) fn region_code_from_name(name: &str) -> Option<String> {
    const REGIONS: &[(&str, &str)] = &[
        ("US East (N. Virginia)", "us-east-1"),
        ("US East (Ohio)", "us-east-2"),
        ("US West (N. California)", "us-west-1"),
        ("US West (Oregon)", "us-west-2"),
        ("Africa (Cape Town)", "af-south-1"),
        ("Asia Pacific (Hong Kong)", "ap-east-1"),
        ("Asia Pacific (Mumbai)", "ap-south-1"),
        ("Asia Pacific (Osaka)", "ap-northeast-3"),
        ("Asia Pacific (Seoul)", "ap-northeast-2"),
        ("Asia Pacific (Singapore)", "ap-southeast-1"),
        ("Asia Pacific (Sydney)", "ap-southeast-2"),
        ("Asia Pacific (Tokyo)", "ap-northeast-1"),
        ("Canada (Central)", "ca-central-1"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("Europe (Frankfurt)", "eu-central-1"),
        ("EU (Ireland)", "eu-west-1"),
        ("EU - Ireland", "eu-west-1"),
        ("Europe (Ireland)", "eu-west-1"),
        ("EU (London)", "eu-west-2"),
        ("Europe (London)", "eu-west-2"),
        ("EU (Paris)", "eu-west-3"),
        ("Europe (Paris)", "eu-west-3"),
        ("EU (Milan)", "eu-south-1"),
        ("Europe (Milan)", "eu-south-1"),
        ("EU (Stockholm)", "eu-north-1"),
        ("Europe (Stockholm)", "eu-north-1"),
        ("Middle East (Bahrain)", "me-south-1"),
        ("South America (Sao Paulo)", "sa-east-1"),
        ("South America (São Paulo)", "sa-east-1"),
    ];
    let name = name.trim();
    REGIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| (*c).to_string())
        .or_else(|| {
            // Already a code (hand-written events).
            let looks_like_code = name.split('-').count() >= 3
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            looks_like_code.then(|| name.to_string())
        })
}

/// A JSON value and its path from the event root, for error messages.
pub(super) struct Node<'a> {
    pub(super) v: &'a Value,
    pub(super) path: String,
}

/// A JSON object and its path.
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: String,
}

impl<'a> Node<'a> {
    pub(super) fn new(v: &'a Value, path: String) -> Node<'a> {
        Node { v, path }
    }

    pub(super) fn root(map: &'a Map<String, Value>, path: &str) -> Obj<'a> {
        Obj {
            map,
            path: path.to_string(),
        }
    }

    pub(super) fn display_path(&self) -> String {
        if self.path.is_empty() {
            "event".to_string()
        } else {
            self.path.clone()
        }
    }

    pub(super) fn object(&self) -> Result<Obj<'a>> {
        match self.v {
            Value::Object(map) => Ok(Obj {
                map,
                path: self.path.clone(),
            }),
            other => Err(Error::invalid(
                self.display_path(),
                format!("expected an object, got {}", kind(other)),
            )),
        }
    }

    pub(super) fn str(&self) -> Result<&'a str> {
        match self.v {
            Value::String(s) => Ok(s),
            other => Err(Error::invalid(
                self.display_path(),
                format!("expected a string, got {}", kind(other)),
            )),
        }
    }
}

impl<'a> Obj<'a> {
    pub(super) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The field, or `None` when it is missing or null.
    pub(super) fn opt(&self, key: &str) -> Option<Node<'a>> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| Node::new(v, self.child_path(key)))
    }

    pub(super) fn req(&self, key: &str) -> Result<Node<'a>> {
        self.opt(key)
            .ok_or_else(|| Error::invalid(self.child_path(key), "missing"))
    }

    pub(super) fn req_str(&self, key: &str) -> Result<&'a str> {
        let s = self.req(key)?.str()?;
        if s.trim().is_empty() {
            return Err(Error::invalid(self.child_path(key), "empty"));
        }
        Ok(s)
    }

    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        self.opt(key).map(|n| n.str()).transpose()
    }

    pub(super) fn req_object(&self, key: &str) -> Result<Obj<'a>> {
        self.req(key)?.object()
    }

    pub(super) fn req_array(&self, key: &str) -> Result<Vec<Node<'a>>> {
        let n = self.req(key)?;
        self.array_of(n)
    }

    pub(super) fn opt_array(&self, key: &str) -> Result<Option<Vec<Node<'a>>>> {
        self.opt(key).map(|n| self.array_of(n)).transpose()
    }

    pub(super) fn array_of(&self, n: Node<'a>) -> Result<Vec<Node<'a>>> {
        match n.v {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Node::new(v, format!("{}[{i}]", n.path)))
                .collect()),
            other => Err(Error::invalid(
                n.path,
                format!("expected a list, got {}", kind(other)),
            )),
        }
    }

    pub(super) fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => match n.v {
                Value::Bool(b) => Ok(Some(*b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
                other => Err(Error::invalid(
                    n.path,
                    format!("expected a boolean, got {}", kind(other)),
                )),
            },
        }
    }

    /// A number; numeric strings are accepted (`"60"`), empty strings are absent.
    pub(super) fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.opt(key) {
            None => Ok(None),
            Some(n) => match n.v {
                Value::Number(x) => Ok(x.as_f64()),
                Value::String(s) if s.trim().is_empty() => Ok(None),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| Error::invalid(n.path.clone(), format!("{s:?} is not a number"))),
                other => Err(Error::invalid(
                    n.path,
                    format!("expected a number, got {}", kind(other)),
                )),
            },
        }
    }

    pub(super) fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        let path = self.child_path(key);
        match self.opt_f64(key)? {
            None => Ok(None),
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Some(x as i64)),
            Some(x) => Err(Error::invalid(path, format!("{x} is not a whole number"))),
        }
    }
}
