//! Scalar functions and the time arithmetic of periods.

use crate::ast::{Period, PeriodUnit};
use crate::value::Value;
use chrono::{DateTime, Datelike, NaiveDate};
use std::borrow::Cow;
use std::net::IpAddr;

/// The start of the period containing `ms`.
pub(crate) fn floor_time(ms: i64, p: Period) -> Option<i64> {
    round_time(ms, p, false)
}

/// The end of the period containing `ms` (`ms` itself when on a boundary).
pub(crate) fn ceil_time(ms: i64, p: Period) -> Option<i64> {
    round_time(ms, p, true)
}

fn round_time(ms: i64, p: Period, up: bool) -> Option<i64> {
    if let Some(len) = p.fixed_millis() {
        if len <= 0 {
            return None;
        }
        let floor = ms.div_euclid(len).checked_mul(len)?;
        return if up && floor != ms {
            floor.checked_add(len)
        } else {
            Some(floor)
        };
    }
    // Calendar periods count months from year 0, UTC.
    let t = DateTime::from_timestamp_millis(ms)?.naive_utc();
    let months_per = match p.unit {
        PeriodUnit::Month => 1,
        PeriodUnit::Quarter => 3,
        _ => 12,
    };
    let span = i64::try_from(p.count).ok()?.checked_mul(months_per)?;
    let index = i64::from(t.year()) * 12 + i64::from(t.month0());
    let start = index.div_euclid(span) * span;
    let floor = month_start(start)?;
    if up && floor != ms {
        month_start(start.checked_add(span)?)
    } else {
        Some(floor)
    }
}

fn month_start(index: i64) -> Option<i64> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
    Some(
        NaiveDate::from_ymd_opt(year, month, 1)?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp_millis(),
    )
}

fn text<'r>(v: &'r Value<'_>) -> Option<Cow<'r, str>> {
    v.as_text()
}

fn owned(s: String) -> Value<'static> {
    Value::Str(Cow::Owned(s))
}

fn num(v: &Value<'_>) -> Option<f64> {
    v.as_number()
}

fn ip(v: &Value<'_>) -> Option<IpAddr> {
    text(v)?.trim().parse().ok()
}

fn in_subnet(addr: &Value<'_>, cidr: &Value<'_>, want_v4: Option<bool>) -> bool {
    let Some(addr) = ip(addr) else { return false };
    let Some(cidr) = text(cidr) else { return false };
    let Some((net, bits)) = cidr.trim().split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    if let Some(v4) = want_v4 {
        if addr.is_ipv4() != v4 {
            return false;
        }
    }
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Applies a scalar function (not `bin`, which needs the record). Missing or unusable
/// arguments give a missing result, as in Logs Insights.
pub(crate) fn call<'r>(name: &str, args: &[Value<'r>], period: Option<Period>) -> Value<'r> {
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Missing);
    let numeric = |f: fn(f64) -> f64| num(arg(0)).map_or(Value::Missing, |n| Value::Num(f(n)));
    match name {
        "ispresent" => Value::Bool(!arg(0).is_missing()),
        "coalesce" => args
            .iter()
            .find(|a| !a.is_missing())
            .cloned()
            .unwrap_or(Value::Missing),
        "isempty" => Value::Bool(text(arg(0)).is_none_or(|s| s.is_empty())),
        "isblank" => Value::Bool(text(arg(0)).is_none_or(|s| s.trim().is_empty())),
        "concat" => {
            let mut s = String::new();
            for a in args {
                if let Some(t) = text(a) {
                    s.push_str(&t);
                }
            }
            owned(s)
        }
        "strlen" => text(arg(0)).map_or(Value::Missing, |s| Value::Num(s.chars().count() as f64)),
        "toupper" => text(arg(0)).map_or(Value::Missing, |s| owned(s.to_uppercase())),
        "tolower" => text(arg(0)).map_or(Value::Missing, |s| owned(s.to_lowercase())),
        "trim" => text(arg(0)).map_or(Value::Missing, |s| owned(s.trim().to_string())),
        "ltrim" => text(arg(0)).map_or(Value::Missing, |s| owned(s.trim_start().to_string())),
        "rtrim" => text(arg(0)).map_or(Value::Missing, |s| owned(s.trim_end().to_string())),
        "substr" => {
            let Some(s) = text(arg(0)) else {
                return Value::Missing;
            };
            let Some(start) = num(arg(1)) else {
                return Value::Missing;
            };
            let chars: Vec<char> = s.chars().collect();
            let start = (start.max(0.0) as usize).min(chars.len());
            let end = match args.get(2) {
                Some(l) => match num(l) {
                    Some(len) => start.saturating_add(len.max(0.0) as usize).min(chars.len()),
                    None => return Value::Missing,
                },
                None => chars.len(),
            };
            owned(chars[start..end].iter().collect())
        }
        "replace" => match (text(arg(0)), text(arg(1)), text(arg(2))) {
            (Some(s), Some(from), Some(to)) if !from.is_empty() => owned(s.replace(from.as_ref(), &to)),
            (Some(s), Some(_), Some(_)) => owned(s.into_owned()),
            _ => Value::Missing,
        },
        "strcontains" => match (text(arg(0)), text(arg(1))) {
            (Some(s), Some(sub)) => Value::Num(if s.contains(sub.as_ref()) { 1.0 } else { 0.0 }),
            _ => Value::Missing,
        },
        "abs" => numeric(f64::abs),
        "ceil" => numeric(f64::ceil),
        "floor" => numeric(f64::floor),
        "sqrt" => match num(arg(0)) {
            Some(n) if n >= 0.0 => Value::Num(n.sqrt()),
            _ => Value::Missing,
        },
        "log" => match num(arg(0)) {
            Some(n) if n > 0.0 => Value::Num(n.ln()),
            _ => Value::Missing,
        },
        "greatest" | "least" => {
            let nums = args.iter().filter_map(num);
            let r = if name == "greatest" {
                nums.reduce(f64::max)
            } else {
                nums.reduce(f64::min)
            };
            r.map_or(Value::Missing, Value::Num)
        }
        "datefloor" | "dateceil" => {
            let (Some(t), Some(p)) = (arg(0).as_time(), period) else {
                return Value::Missing;
            };
            let r = if name == "datefloor" {
                floor_time(t, p)
            } else {
                ceil_time(t, p)
            };
            r.map_or(Value::Missing, Value::Time)
        }
        "fromMillis" => num(arg(0)).map_or(Value::Missing, |n| Value::Time(n as i64)),
        "jsonParse" => match arg(0) {
            Value::Json(j) => Value::Json(j.clone()),
            v => match text(v).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
                Some(j) => Value::from_json(&j),
                None => Value::Missing,
            },
        },
        // In a sort key these place missing values; elsewhere they are their argument.
        "sortsFirst" | "sortsLast" => arg(0).clone(),
        // logcompare's patterns: runs of digits become `<*>`.
        "mask_digits" => text(arg(0)).map_or(Value::Missing, |s| {
            let mut out = String::with_capacity(s.len());
            let mut in_digits = false;
            for c in s.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push_str("<*>");
                    }
                    in_digits = true;
                } else {
                    in_digits = false;
                    out.push(c);
                }
            }
            owned(out)
        }),
        "toMillis" => arg(0).as_time().map_or(Value::Missing, |t| Value::Num(t as f64)),
        "isValidIp" => Value::Bool(ip(arg(0)).is_some()),
        "isValidIpV4" => Value::Bool(ip(arg(0)).is_some_and(|a| a.is_ipv4())),
        "isValidIpV6" => Value::Bool(ip(arg(0)).is_some_and(|a| a.is_ipv6())),
        "isIpInSubnet" => Value::Bool(in_subnet(arg(0), arg(1), None)),
        "isIpv4InSubnet" => Value::Bool(in_subnet(arg(0), arg(1), Some(true))),
        "isIpv6InSubnet" => Value::Bool(in_subnet(arg(0), arg(1), Some(false))),
        _ => Value::Missing,
    }
}
