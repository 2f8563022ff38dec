//! What a diagnosis learns from query results and metrics: a compact summary per query (top
//! messages with counts, the first bin whose count spiked against an established baseline), each
//! metric against its baseline, each cause's signatures judged (matched, contradicted, or
//! unknown for want of data, with the evidence a person reads), the hypotheses they score, and
//! the estimated start of the incident.

use super::model::{Cause, Measure, MetricStep, Missing, Signature};
use crate::model::duration::Span;
use crate::model::evidence::{cut, fmt_num};
pub use crate::model::evidence::{
    CauseMatch, Count, Hypothesis, MessageCount, MetricChange, MetricSummary, QuerySummary, Series, SpikeBin,
};
use crate::ports::{Deployment, MetricData, MetricQuery, QueryOutput, ResultField};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use std::collections::BTreeMap;

/// The query every diagnosis adds beside the runbook's: log lines per 5 minutes over all the
/// groups it reads, so that it knows where the logs begin (a rise is judged against bins that
/// had data, never against the empty start of the window) and whether there are logs at all.
pub const LOG_VOLUME: &str = "log-volume";

/// How many distinct messages a summary keeps.
pub const TOP_MESSAGES: usize = 5;
/// Messages are cut to this many characters in summaries and evidence.
pub const MESSAGE_CHARS: usize = 240;
/// The factor a bin must reach against the baseline to count as a spike when nothing says
/// otherwise.
pub const DEFAULT_SPIKE_FACTOR: f64 = 2.0;
/// A spike must also exceed the baseline by at least this much, so 1 → 3 errors is not one.
pub const MIN_SPIKE_EXCESS: f64 = 3.0;
/// Bins of data needed before a bin to judge it against them: a rise is against an established
/// baseline, never against the empty start of the window.
pub const MIN_BASELINE_BINS: usize = 3;
/// Datapoints a metric's baseline window needs before its incident window is compared with it.
pub const MIN_BASELINE_POINTS: usize = 3;
/// A metric level this many times its baseline (or below it by as much) is a change; closer is
/// normal.
pub const METRIC_CHANGE: f64 = 1.25;
/// The share of the datapoints from a change on that must stay changed for it to count as
/// sustained.
const SUSTAINED: f64 = 0.75;

fn field<'r>(row: &'r [ResultField], name: &str) -> Option<&'r str> {
    row.iter().find(|f| f.field == name).map(|f| f.value.as_str())
}

/// Parses the time formats Logs Insights and the local engine give bins and timestamps in.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    None
}

fn is_bin_name(name: &str) -> bool {
    name.trim().to_ascii_lowercase().starts_with("bin(")
}

/// The bin width a `bin(5m)` column name gives.
fn bin_width(name: &str) -> Option<chrono::Duration> {
    let inner = name.trim().strip_prefix("bin(")?.strip_suffix(')')?;
    Span::parse(inner).ok().filter(|s| s.ms > 0).map(Span::to_chrono)
}

/// The time bins of a `stats ... by bin(...)` result as `(bin start, count)`, oldest first, with
/// the column the counts came from. Bins missing inside `window` (Logs Insights leaves out empty
/// bins) are filled with zero. `None` when the rows are not binned counts.
pub fn binned_counts(
    rows: &[Vec<ResultField>],
    count_field: Option<&str>,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Option<(Series, String)> {
    let first = rows.first()?;
    // the bin column: named bin(...), else the first whose values are all times
    let bin_name = first
        .iter()
        .map(|f| f.field.as_str())
        .find(|n| is_bin_name(n))
        .or_else(|| {
            first
                .iter()
                .map(|f| f.field.as_str())
                .find(|n| rows.iter().all(|r| field(r, n).and_then(parse_time).is_some()))
        })?
        .to_string();
    let count_name = match count_field {
        Some(c) => c.to_string(),
        None => first
            .iter()
            .map(|f| f.field.as_str())
            .find(|n| {
                *n != bin_name
                    && rows
                        .iter()
                        .all(|r| field(r, n).is_some_and(|v| v.trim().parse::<f64>().is_ok()))
            })?
            .to_string(),
    };
    let mut by_time: BTreeMap<DateTime<Utc>, f64> = BTreeMap::new();
    for r in rows {
        let t = field(r, &bin_name).and_then(parse_time)?;
        let c: f64 = field(r, &count_name)?.trim().parse().ok()?;
        *by_time.entry(t).or_default() += c;
    }
    let width = bin_width(&bin_name).or_else(|| {
        let ts: Vec<_> = by_time.keys().collect();
        ts.windows(2)
            .map(|w| *w[1] - *w[0])
            .filter(|d| *d > chrono::Duration::zero())
            .min()
    });
    if let (Some(w), Some(&first_t)) = (width, by_time.keys().next()) {
        let last_t = by_time.keys().next_back().copied().unwrap_or(first_t);
        let mut t = first_t;
        if let Some((start, _)) = window {
            // back to the bin that contains the window's start
            let mut n = 0;
            while t > start && n < 10_000 {
                t -= w;
                n += 1;
            }
        }
        // fill from the earliest bin overlapping the window to the last observed bin
        let mut n = 0;
        while t <= last_t && n < 10_000 {
            by_time.entry(t).or_insert(0.0);
            t += w;
            n += 1;
        }
    }
    Some((by_time.into_iter().collect(), count_name))
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The bins of `series` there is data for: those ending after `data_since` (the earliest log
/// line any query saw). Bins before it were filled in for the window's start and are not a
/// baseline of zero.
pub fn with_data(
    series: &[(DateTime<Utc>, f64)],
    data_since: Option<DateTime<Utc>>,
) -> &[(DateTime<Utc>, f64)] {
    let Some(since) = data_since else {
        return series;
    };
    let width = series
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|d| *d > chrono::Duration::zero())
        .min()
        .unwrap_or_else(chrono::Duration::zero);
    let skip = series.iter().take_while(|(t, _)| *t + width <= since).count();
    &series[skip..]
}

/// The first bin at least `factor` times the median of the bins before it (and at least
/// [`MIN_SPIKE_EXCESS`] above it), judged once [`MIN_BASELINE_BINS`] bins of data precede it
/// (`data_since`: see [`with_data`]).
pub fn first_spike(
    series: &[(DateTime<Utc>, f64)],
    factor: f64,
    field: &str,
    data_since: Option<DateTime<Utc>>,
) -> Option<SpikeBin> {
    let series = with_data(series, data_since);
    let counts: Vec<f64> = series.iter().map(|(_, c)| *c).collect();
    for i in MIN_BASELINE_BINS..series.len() {
        let baseline = median(&counts[..i]);
        let c = counts[i];
        if c >= factor * baseline && c >= baseline + MIN_SPIKE_EXCESS {
            return Some(SpikeBin {
                at: series[i].0,
                count: c,
                baseline,
                ratio: (baseline > 0.0).then(|| c / baseline),
                field: field.to_string(),
            });
        }
    }
    None
}

/// Masks numbers so that messages differing only in ids, counts and times group together.
fn message_key(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut in_digits = false;
    for c in m.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

/// The most frequent messages of `rows` (`@message`, weighted by a `count(...)` column when the
/// rows are `stats count() by @message`).
pub fn top_messages(rows: &[Vec<ResultField>], n: usize) -> Vec<MessageCount> {
    let mut groups: BTreeMap<String, (String, u64, usize)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(m) = field(r, "@message") else {
            continue;
        };
        let weight = r
            .iter()
            .find(|f| f.field.to_ascii_lowercase().starts_with("count"))
            .and_then(|f| f.value.trim().parse::<f64>().ok())
            .map_or(1, |c| c.max(0.0) as u64);
        let e = groups
            .entry(message_key(m))
            .or_insert_with(|| (cut(m.trim_end(), MESSAGE_CHARS), 0, i));
        e.1 = e.1.saturating_add(weight);
    }
    let mut v: Vec<(String, u64, usize)> = groups.into_values().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    v.into_iter()
        .take(n)
        .map(|(message, count, _)| MessageCount { message, count })
        .collect()
}

/// Summarises one query's output; `window` is the query's time range.
pub fn summarize(
    name: &str,
    output: &QueryOutput,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> QuerySummary {
    summarize_step(name, None, output, window, None)
}

/// The earliest time any of `outputs` shows data for: its earliest bin or `@timestamp`.
pub fn data_since<'o>(outputs: impl IntoIterator<Item = &'o QueryOutput>) -> Option<DateTime<Utc>> {
    outputs
        .into_iter()
        .flat_map(|o| o.rows.iter())
        .flat_map(|r| r.iter())
        .filter(|f| is_bin_name(&f.field) || f.field == "@timestamp")
        .filter_map(|f| parse_time(&f.value))
        .min()
}

/// [`summarize`] for a step that may `measure` something: its counts are kept as well.
/// `data_since` is when the logs begin (see [`with_data`]).
pub fn summarize_step(
    name: &str,
    measures: Option<Measure>,
    output: &QueryOutput,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    data_since: Option<DateTime<Utc>>,
) -> QuerySummary {
    let series = binned_counts(&output.rows, None, window);
    let count = measures.zip(series.as_ref()).map(|(m, (s, f))| {
        let bin_s = s
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).num_seconds())
            .filter(|d| *d > 0)
            .min()
            .or_else(|| {
                f.trim()
                    .strip_prefix("bin(")
                    .and(bin_width(f).map(|w| w.num_seconds()))
            })
            .unwrap_or(0);
        Count {
            measures: m,
            field: f.clone(),
            total: s.iter().map(|(_, c)| c).sum(),
            bin_s,
            series: s.clone(),
        }
    });
    QuerySummary {
        query: name.to_string(),
        rows: output.rows.len(),
        records_matched: output.statistics.records_matched,
        records_scanned: output.statistics.records_scanned,
        top_messages: top_messages(&output.rows, TOP_MESSAGES),
        bins: series.as_ref().map_or(0, |(s, _)| s.len()),
        spike: series.and_then(|(s, f)| first_spike(&s, DEFAULT_SPIKE_FACTOR, &f, data_since)),
        count,
    }
}

/// The earliest rise in any query or metric: the start when no cause says otherwise.
pub fn earliest_rise(summaries: &[QuerySummary], metrics: &[MetricSummary]) -> Option<DateTime<Utc>> {
    let spikes = summaries.iter().filter_map(|s| s.spike.as_ref().map(|b| b.at));
    let metric = metrics
        .iter()
        .filter(|m| m.change == MetricChange::Rose)
        .filter_map(|m| m.since);
    spikes.chain(metric).min()
}

/// What signature judging looks at.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Each query's output by name (queries that failed are absent).
    pub outputs: &'a BTreeMap<String, QueryOutput>,
    /// Each failed query's error by name.
    pub failed: &'a BTreeMap<String, String>,
    /// Each query's time window.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the logs begin (see [`with_data`]).
    pub data_since: Option<DateTime<Utc>>,
    /// What each metric step read, by step name.
    pub metrics: &'a BTreeMap<String, MetricSummary>,
    /// The ECS service's deployments; `Err` says why they are unknown.
    pub deployments: Result<&'a [Deployment], &'a str>,
    /// The estimated start, or the alarm time when there is none.
    pub start: DateTime<Utc>,
    pub alarm_at: DateTime<Utc>,
}

/// What the evidence says of one signature.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// It holds; `at` is when its evidence rose (a spike's bin, a metric's change).
    Matched { line: String, at: Option<DateTime<Utc>> },
    /// The data shows it does not hold.
    Contradicted(String),
    /// Its data is missing (a query failed, no datapoints, too little baseline).
    Unknown(String),
}

fn compare(op: &str, a: f64, b: f64) -> Option<bool> {
    Some(match op.trim() {
        ">" => a > b,
        ">=" => a >= b,
        "<" => a < b,
        "<=" => a <= b,
        "=" | "==" => (a - b).abs() < f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        _ => return None,
    })
}

/// The comparison operators a threshold signature may use.
pub const THRESHOLD_OPS: [&str; 6] = [">", ">=", "<", "<=", "=", "=="];

/// A query that found nothing only contradicts a signature when the logs had data in the
/// window; with no log line at all there is nothing to judge.
fn without_logs(query: &str, ev: &Evidence<'_>) -> Option<Judgement> {
    ev.data_since
        .is_none()
        .then(|| Judgement::Unknown(format!("{query}: no log data in the window")))
}

fn no_output(query: &str, ev: &Evidence<'_>) -> Judgement {
    Judgement::Unknown(match ev.failed.get(query) {
        Some(e) => format!("{query}: the query failed ({})", cut(e, 160)),
        None => format!("{query}: the query did not run"),
    })
}

fn matched(line: String) -> Judgement {
    Judgement::Matched { line, at: None }
}

/// `2026-03-10 09:30 UTC, 4d 5h before the alarm`.
fn when(at: DateTime<Utc>, alarm_at: DateTime<Utc>) -> String {
    format!(
        "{}, {}",
        at.format("%Y-%m-%d %H:%M UTC"),
        crate::model::evidence::from_alarm(at, alarm_at)
    )
}

/// Judges `sig` against the evidence.
pub fn judge(sig: &Signature, ev: &Evidence<'_>) -> Judgement {
    match sig {
        Signature::Pattern {
            query,
            matches,
            field: f,
            min_count,
        } => {
            let Some(out) = ev.outputs.get(query) else {
                return no_output(query, ev);
            };
            let Ok(re) = regex::Regex::new(matches) else {
                return Judgement::Unknown(format!("{query}: /{matches}/ is not a valid regex"));
            };
            let fname = f.as_deref().unwrap_or("@message");
            let mut n: u64 = 0;
            let mut example: Option<&str> = None;
            for r in &out.rows {
                let Some(v) = field(r, fname) else { continue };
                if re.is_match(v) {
                    let w = r
                        .iter()
                        .find(|x| x.field.to_ascii_lowercase().starts_with("count"))
                        .and_then(|x| x.value.trim().parse::<f64>().ok())
                        .map_or(1, |c| c.max(0.0) as u64);
                    n += w;
                    example.get_or_insert(v);
                }
            }
            if n >= *min_count && n > 0 {
                return matched(format!(
                    "{query}: {n} rows whose {fname} matches /{matches}/, e.g. \"{}\"",
                    cut(example.unwrap_or_default().trim_end(), MESSAGE_CHARS)
                ));
            }
            without_logs(query, ev).unwrap_or_else(|| {
                Judgement::Contradicted(format!(
                    "{query}: {n} rows whose {fname} matches /{matches}/ (needs {min_count})"
                ))
            })
        }
        Signature::Threshold {
            query,
            field: f,
            op,
            value,
        } => {
            let Some(out) = ev.outputs.get(query) else {
                return no_output(query, ev);
            };
            let mut values = Vec::new();
            for r in &out.rows {
                let Some(x) = field(r, f).and_then(|v| v.trim().parse::<f64>().ok()) else {
                    continue;
                };
                values.push(x);
                if compare(op, x, *value) == Some(true) {
                    let others: Vec<String> = r
                        .iter()
                        .filter(|o| o.field != *f)
                        .map(|o| format!("{}={}", o.field, cut(&o.value, 60)))
                        .collect();
                    let ctx = if others.is_empty() {
                        String::new()
                    } else {
                        format!(" (row {})", others.join(", "))
                    };
                    return matched(format!(
                        "{query}: {f} = {} {op} {}{ctx}",
                        fmt_num(x),
                        fmt_num(*value)
                    ));
                }
            }
            if compare(op, 0.0, 0.0).is_none() {
                return Judgement::Unknown(format!("{query}: {op:?} is not a comparison"));
            }
            let extreme = if op.contains('<') {
                values.iter().copied().reduce(f64::min)
            } else {
                values.iter().copied().reduce(f64::max)
            };
            match extreme {
                None => Judgement::Unknown(format!("{query}: no row has a numeric {f}")),
                Some(x) => Judgement::Contradicted(format!(
                    "{query}: {f} is {} at most, not {op} {}",
                    fmt_num(x),
                    fmt_num(*value)
                )),
            }
        }
        Signature::Spike {
            query,
            factor,
            field: f,
        } => {
            let Some(out) = ev.outputs.get(query) else {
                return no_output(query, ev);
            };
            let Some((series, name)) = binned_counts(&out.rows, f.as_deref(), ev.window) else {
                return Judgement::Unknown(format!("{query}: no binned counts to compare"));
            };
            let judged = with_data(&series, ev.data_since);
            if judged.len() <= MIN_BASELINE_BINS {
                return Judgement::Unknown(format!(
                    "{query}: {} bin(s) of data, too few to judge a rise against a baseline ({} needed before it)",
                    judged.len(),
                    MIN_BASELINE_BINS
                ));
            }
            match first_spike(&series, *factor, &name, ev.data_since) {
                Some(sp) => Judgement::Matched {
                    line: format!("{query}: {} spiked: {}", sp.field, sp.describe()),
                    at: Some(sp.at),
                },
                None => {
                    let counts: Vec<f64> = judged.iter().map(|(_, c)| *c).collect();
                    Judgement::Contradicted(format!(
                        "{query}: no bin of {name} rose {factor}x against its baseline (median {}, highest {})",
                        fmt_num(median(&counts)),
                        fmt_num(counts.iter().copied().fold(0.0, f64::max))
                    ))
                }
            }
        }
        Signature::Deployment { within } => {
            let deployments = match ev.deployments {
                Ok(d) => d,
                Err(why) => return Judgement::Unknown(format!("deployments unknown: {why}")),
            };
            let from = ev.start - within.to_chrono();
            let to = ev.alarm_at.max(ev.start);
            let dated = deployments.iter().filter_map(|d| d.created_at.map(|at| (d, at)));
            let inside = dated
                .clone()
                .filter(|(_, at)| *at >= from && *at <= to)
                .max_by_key(|(_, at)| *at);
            match inside {
                Some((d, at)) => {
                    let rel = ev.start - at;
                    let rel = if rel >= chrono::Duration::zero() {
                        format!("{}m before the estimated start", rel.num_minutes())
                    } else {
                        format!("{}m after the estimated start", (-rel).num_minutes())
                    };
                    matched(format!(
                        "deployment {} of {} ({}) created {}, {rel}",
                        d.id,
                        d.task_definition,
                        d.status,
                        when(at, ev.alarm_at)
                    ))
                }
                None => {
                    let latest = dated
                        .filter(|(_, at)| *at <= to)
                        .max_by_key(|(_, at)| *at)
                        .map(|(d, at)| {
                            format!(
                                " (the latest: {} deployed {})",
                                d.task_definition,
                                when(at, ev.alarm_at)
                            )
                        })
                        .unwrap_or_else(|| " (none known)".to_string());
                    Judgement::Contradicted(format!(
                        "no deployment within {within} before the estimated start{latest}"
                    ))
                }
            }
        }
        Signature::Metric {
            step,
            factor,
            above,
            below,
        } => {
            let Some(m) = ev.metrics.get(step) else {
                return Judgement::Unknown(format!("metric {step}: not read"));
            };
            let Some(level) = m.level else {
                return Judgement::Unknown(m.line());
            };
            let (holds, want) = match (factor, above, below) {
                (Some(f), _, _) => {
                    let Some(b) = m.baseline.filter(|_| m.change != MetricChange::NoBaseline) else {
                        return Judgement::Unknown(m.line());
                    };
                    let holds = if *f >= 1.0 {
                        if b == 0.0 {
                            level > 0.0
                        } else {
                            level >= f * b
                        }
                    } else {
                        level <= f * b
                    };
                    (
                        holds,
                        format!(
                            "{}{f}x its baseline",
                            if *f >= 1.0 { "at least " } else { "at most " }
                        ),
                    )
                }
                (_, Some(a), _) => (level > *a, format!("above {}", fmt_num(*a))),
                (_, _, Some(b)) => (level < *b, format!("below {}", fmt_num(*b))),
                _ => return Judgement::Unknown(format!("metric {step}: the signature compares nothing")),
            };
            if holds {
                Judgement::Matched {
                    line: format!("{step}: {}", m.line()),
                    at: m
                        .since
                        .filter(|_| matches!(m.change, MetricChange::Rose | MetricChange::Fell)),
                }
            } else {
                Judgement::Contradicted(format!("{step}: {}, not {want}", m.line()))
            }
        }
        Signature::Not(inner) => match judge(inner, ev) {
            Judgement::Matched { line, .. } => {
                Judgement::Contradicted(format!("{line} (the cause expects it not to)"))
            }
            Judgement::Contradicted(line) => matched(line),
            unknown @ Judgement::Unknown(_) => unknown,
        },
    }
}

/// Whether `sig` matches; `Some(evidence line)` when it does.
pub fn match_signature(sig: &Signature, ev: &Evidence<'_>) -> Option<String> {
    match judge(sig, ev) {
        Judgement::Matched { line, .. } => Some(line),
        _ => None,
    }
}

/// Whether every signature of `cause` matches (a cause without signatures never does).
pub fn match_cause(cause: &Cause, ev: &Evidence<'_>) -> Option<CauseMatch> {
    if cause.signatures.is_empty() {
        return None;
    }
    let evidence = cause
        .signatures
        .iter()
        .map(|s| match_signature(s, ev))
        .collect::<Option<Vec<String>>>()?;
    Some(CauseMatch {
        cause: cause.id.clone(),
        description: cause.description.clone(),
        evidence,
        remediation: cause.remediation.iter().map(|r| r.action.clone()).collect(),
    })
}

/// The cause as a hypothesis: each signature judged, the score, and when its evidence rose
/// (the earliest rise among its matched signatures).
pub fn hypothesis(cause: &Cause, ev: &Evidence<'_>) -> (Hypothesis, Option<DateTime<Utc>>) {
    let mut h = Hypothesis {
        cause: cause.id.clone(),
        score: 0.0,
        evidence: Vec::new(),
        against: Vec::new(),
        missing: Vec::new(),
        remediation: cause.remediation.iter().map(|r| r.action.clone()).collect(),
    };
    let mut rose: Option<DateTime<Utc>> = None;
    for sig in &cause.signatures {
        match judge(sig, ev) {
            Judgement::Matched { line, at } => {
                h.evidence.push(line);
                if let Some(t) = at {
                    rose = Some(rose.map_or(t, |r| r.min(t)));
                }
            }
            Judgement::Contradicted(line) => h.against.push(line),
            Judgement::Unknown(why) => h.missing.push(format!("{} ({why})", sig.describe())),
        }
    }
    let n = cause.signatures.len();
    if n > 0 {
        let net = h.evidence.len() as f64 - h.against.len() as f64;
        h.score = ((net / n as f64).max(0.0) * 100.0).round() / 100.0;
    }
    (h, rose)
}

/// The metric query a step makes, with its dimensions resolved.
pub fn metric_query(id: &str, step: &MetricStep, dimensions: BTreeMap<String, String>) -> MetricQuery {
    MetricQuery {
        id: id.to_string(),
        namespace: step.metric.namespace.clone(),
        name: step.metric.name.clone(),
        dimensions,
        stat: step.metric.stat.clone(),
        period_s: u32::try_from(step.period.as_secs().max(60)).unwrap_or(60),
    }
}

/// What a metric step's datapoints say: the baseline (median of the points before `incident`'s
/// start), the level since a sustained change in the incident window (or of the whole window),
/// and the change. `data` is the read's answer or why it failed.
pub fn summarize_metric(
    step: &MetricStep,
    query: &MetricQuery,
    data: Result<&MetricData, &str>,
    baseline_start: DateTime<Utc>,
    incident: (DateTime<Utc>, DateTime<Utc>),
) -> MetricSummary {
    let mut summary = MetricSummary {
        step: step.name.clone(),
        namespace: query.namespace.clone(),
        metric: query.name.clone(),
        dimensions: query.dimensions.clone(),
        stat: query.stat.clone(),
        period_s: query.period_s,
        baseline: None,
        baseline_points: 0,
        level: None,
        since: None,
        change: MetricChange::NoData,
        points: Vec::new(),
        unit: step.unit.clone(),
        note: None,
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            summary.note = Some(format!("reading it failed: {}", cut(e, 160)));
            return summary;
        }
    };
    summary.note = data.note.clone();
    let mut points: BTreeMap<DateTime<Utc>, f64> = data
        .points
        .iter()
        .filter(|(t, v)| v.is_finite() && *t >= baseline_start && *t < incident.1)
        .copied()
        .collect();
    if step.missing == Missing::Zero {
        let period = chrono::Duration::seconds(i64::from(query.period_s.max(60)));
        let mut t = baseline_start;
        let mut n = 0;
        while t < incident.1 && n < 100_000 {
            points.entry(t).or_insert(0.0);
            t += period;
            n += 1;
        }
    }
    let (base, window): (Series, Series) = points.into_iter().partition(|(t, _)| *t < incident.0);
    summary.baseline_points = base.len();
    summary.points = window.clone();
    if window.is_empty() {
        if summary.note.is_none() {
            summary.note = Some(format!(
                "no datapoints from {} to {}",
                incident.0.format("%H:%M"),
                incident.1.format("%H:%M")
            ));
        }
        return summary;
    }
    let values: Vec<f64> = window.iter().map(|(_, v)| *v).collect();
    if base.len() < MIN_BASELINE_POINTS {
        summary.level = Some(median(&values));
        summary.change = MetricChange::NoBaseline;
        return summary;
    }
    let b = median(&base.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    summary.baseline = Some(b);
    let up = |v: f64| if b == 0.0 { v > 0.0 } else { v >= b * METRIC_CHANGE };
    let down = |v: f64| b > 0.0 && v <= b / METRIC_CHANGE;
    let need = if values.len() == 1 { 1 } else { 2 };
    for i in 0..values.len() {
        let rest = &values[i..];
        if rest.len() < need {
            break;
        }
        for (dir, change) in [
            (&up as &dyn Fn(f64) -> bool, MetricChange::Rose),
            (&down, MetricChange::Fell),
        ] {
            let share = rest.iter().filter(|v| dir(**v)).count() as f64 / rest.len() as f64;
            if dir(values[i]) && share >= SUSTAINED {
                summary.since = Some(window[i].0);
                summary.level = Some(median(rest));
                summary.change = change;
                return summary;
            }
        }
    }
    summary.level = Some(median(&values));
    summary.change = MetricChange::Unchanged;
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::remedy::RemediationStep;

    fn row(fields: &[(&str, &str)]) -> Vec<ResultField> {
        fields
            .iter()
            .map(|(f, v)| ResultField {
                field: f.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    fn t(hm: &str) -> DateTime<Utc> {
        parse_time(&format!("2026-03-14 {hm}:00.000")).unwrap()
    }

    fn bins(counts: &[(&str, u32)]) -> QueryOutput {
        QueryOutput {
            rows: counts
                .iter()
                .map(|(hm, c)| {
                    row(&[
                        ("bin(5m)", &format!("2026-03-14 {hm}:00.000")),
                        ("count()", &c.to_string()),
                    ])
                })
                .collect(),
            statistics: Default::default(),
        }
    }

    #[test]
    fn spike_is_the_first_bin_twice_the_median_of_earlier_bins() {
        let out = bins(&[
            ("14:00", 12),
            ("14:05", 11),
            ("14:10", 13),
            ("14:15", 12),
            ("14:20", 14),
            ("14:25", 12),
            ("14:30", 25),
            ("14:35", 30),
        ]);
        let s = summarize("connections", &out, None);
        let sp = s.spike.clone().unwrap();
        assert_eq!(sp.at, t("14:30"));
        assert_eq!(sp.baseline, 12.0);
        assert_eq!(sp.count, 25.0);
        assert_eq!(s.bins, 8);
        assert!(s.line().contains("14:30"), "{}", s.line());
    }

    #[test]
    fn steady_or_tiny_series_has_no_spike() {
        let out = bins(&[("14:00", 10), ("14:05", 12), ("14:10", 11), ("14:15", 13)]);
        assert_eq!(summarize("q", &out, None).spike, None);
        let out = bins(&[("14:00", 0), ("14:05", 1), ("14:10", 2)]);
        assert_eq!(summarize("q", &out, None).spike, None);
    }

    #[test]
    fn missing_bins_inside_the_window_count_as_zero() {
        // errors only from 14:30; the window starts at 14:00
        let out = bins(&[("14:30", 20), ("14:35", 40)]);
        let w = Some((t("14:00"), t("14:36")));
        let sp = summarize("errors", &out, w).spike.unwrap();
        assert_eq!(sp.at, t("14:30"));
        assert_eq!(sp.baseline, 0.0);
        assert_eq!(sp.ratio, None);
        // without the window there is nothing to compare with
        assert_eq!(summarize("errors", &out, None).spike, None);
    }

    #[test]
    fn top_messages_group_numbers_and_count() {
        let rows = vec![
            row(&[
                ("@timestamp", "x"),
                ("@message", "ERROR pool exhausted in_use=10"),
            ]),
            row(&[("@message", "ERROR pool exhausted in_use=11")]),
            row(&[("@message", "WARN slow")]),
            row(&[("@message", "ERROR pool exhausted in_use=12")]),
        ];
        let top = top_messages(&rows, 5);
        assert_eq!(top[0].count, 3);
        assert_eq!(top[0].message, "ERROR pool exhausted in_use=10");
        assert_eq!(top[1].count, 1);
        let stats = vec![
            row(&[("@message", "a"), ("count()", "7")]),
            row(&[("@message", "b"), ("count()", "9")]),
        ];
        let top = top_messages(&stats, 1);
        assert_eq!(
            top,
            vec![MessageCount {
                message: "b".into(),
                count: 9
            }]
        );
    }

    fn cause(sigs: Vec<Signature>) -> Cause {
        Cause {
            id: "c".into(),
            description: "d".into(),
            signatures: sigs,
            remediation: vec![RemediationStep {
                action: "ecs-restart".into(),
                params: Default::default(),
            }],
        }
    }

    #[test]
    fn signatures_match_with_evidence() {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "errors".to_string(),
            QueryOutput {
                rows: vec![
                    row(&[(
                        "@message",
                        "ERROR DatabaseError: connection pool exhausted, max_connections=10",
                    )]),
                    row(&[(
                        "@message",
                        "ERROR DatabaseError: connection pool exhausted, max_connections=10",
                    )]),
                ],
                statistics: Default::default(),
            },
        );
        outputs.insert(
            "latency".to_string(),
            QueryOutput {
                rows: vec![row(&[("p99", "2300"), ("path", "/articles")])],
                statistics: Default::default(),
            },
        );
        let deployments = vec![Deployment {
            id: "ecs-svc/2".into(),
            status: "PRIMARY".into(),
            task_definition: "articles-api:43".into(),
            desired: 4,
            running: 4,
            rollout_state: Some("COMPLETED".into()),
            created_at: Some(t("14:20")),
            updated_at: None,
        }];
        let (failed, metrics) = (BTreeMap::new(), BTreeMap::new());
        let ev = Evidence {
            outputs: &outputs,
            failed: &failed,
            window: None,
            data_since: None,
            metrics: &metrics,
            deployments: Ok(&deployments),
            start: t("14:30"),
            alarm_at: t("14:35"),
        };
        let pat = |min| Signature::Pattern {
            query: "errors".into(),
            matches: "connection pool exhausted".into(),
            field: None,
            min_count: min,
        };
        let m = match_cause(&cause(vec![pat(2)]), &ev).unwrap();
        assert!(
            m.evidence[0].contains("2 rows") && m.evidence[0].contains("max_connections=10"),
            "{m:?}"
        );
        assert_eq!(m.remediation, vec!["ecs-restart"]);
        assert!(match_cause(&cause(vec![pat(3)]), &ev).is_none());
        let thr = |op: &str, v| Signature::Threshold {
            query: "latency".into(),
            field: "p99".into(),
            op: op.into(),
            value: v,
        };
        assert!(match_signature(&thr(">", 1000.0), &ev)
            .unwrap()
            .contains("p99 = 2300 > 1000"));
        assert!(match_signature(&thr(">", 3000.0), &ev).is_none());
        assert!(match_signature(&thr("!!", 3000.0), &ev).is_none());
        let dep = |m| Signature::Deployment {
            within: Span::minutes(m),
        };
        assert!(match_signature(&dep(30), &ev).unwrap().contains("10m before"));
        assert!(match_signature(&dep(5), &ev).is_none());
        // all signatures must match; a missing query never matches
        assert!(match_cause(&cause(vec![pat(1), dep(5)]), &ev).is_none());
        let missing = Signature::Pattern {
            query: "nope".into(),
            matches: "x".into(),
            field: None,
            min_count: 1,
        };
        assert!(match_signature(&missing, &ev).is_none());
        assert!(match_cause(&cause(vec![]), &ev).is_none());
    }

    #[test]
    fn the_earliest_rise_is_the_earliest_spike_or_metric_change() {
        let a = summarize(
            "a",
            &bins(&[("14:00", 5), ("14:05", 5), ("14:10", 5), ("14:15", 20)]),
            None,
        );
        let b = summarize(
            "b",
            &bins(&[
                ("14:00", 5),
                ("14:05", 5),
                ("14:10", 5),
                ("14:15", 5),
                ("14:20", 30),
            ]),
            None,
        );
        assert_eq!(earliest_rise(&[a.clone(), b.clone()], &[]), Some(t("14:15")));
        assert_eq!(earliest_rise(std::slice::from_ref(&b), &[]), Some(t("14:20")));
        assert_eq!(earliest_rise(&[], &[]), None);
        // two bins of data before it are not yet an established baseline
        let short = summarize("c", &bins(&[("14:00", 5), ("14:05", 5), ("14:10", 30)]), None);
        assert_eq!(short.spike, None);
    }

    #[test]
    fn a_window_that_begins_with_data_is_not_a_rise_from_nothing() {
        // the held-out case: logs from 08:30, the window from 08:15, traffic doubles at 09:10
        let counts: Vec<(String, u32)> = (0..9)
            .map(|i| {
                let m = 30 + i * 5;
                (
                    format!("{:02}:{:02}", 8 + m / 60, m % 60),
                    if m >= 70 { 40 } else { 20 },
                )
            })
            .collect();
        let rows: Vec<(&str, u32)> = counts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        let out = bins(&rows);
        let window = Some((t("08:15"), t("09:17")));
        let since = data_since([&out]);
        assert_eq!(since, Some(t("08:30")));
        // without knowing where the data begins, the zero-filled 08:15–08:25 look like a baseline
        let naive = summarize_step("connections", None, &out, window, None);
        assert_eq!(naive.spike.unwrap().at, t("08:30"));
        let s = summarize_step("connections", None, &out, window, since);
        assert_eq!(s.spike.unwrap().at, t("09:10"));
    }

    fn ev_with<'a>(
        outputs: &'a BTreeMap<String, QueryOutput>,
        failed: &'a BTreeMap<String, String>,
        metrics: &'a BTreeMap<String, MetricSummary>,
        deployments: Result<&'a [Deployment], &'a str>,
    ) -> Evidence<'a> {
        Evidence {
            outputs,
            failed,
            window: Some((t("14:00"), t("14:37"))),
            data_since: Some(t("14:00")),
            metrics,
            deployments,
            start: t("14:30"),
            alarm_at: t("14:35"),
        }
    }

    #[test]
    fn signatures_are_matched_contradicted_or_unknown() {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "errors".to_string(),
            QueryOutput {
                rows: vec![row(&[("@message", "ERROR timeout")])],
                statistics: Default::default(),
            },
        );
        outputs.insert(
            "rate".to_string(),
            bins(&[
                ("14:00", 10),
                ("14:05", 11),
                ("14:10", 10),
                ("14:15", 12),
                ("14:20", 11),
            ]),
        );
        let failed = BTreeMap::from([("slow".to_string(), "Throttled".to_string())]);
        let metrics = BTreeMap::new();
        let ev = ev_with(&outputs, &failed, &metrics, Ok(&[]));
        let pat = |q: &str, m: &str| Signature::Pattern {
            query: q.into(),
            matches: m.into(),
            field: None,
            min_count: 1,
        };
        assert!(matches!(
            judge(&pat("errors", "timeout"), &ev),
            Judgement::Matched { .. }
        ));
        match judge(&pat("errors", "pool exhausted"), &ev) {
            Judgement::Contradicted(l) => assert!(l.contains("0 rows") && l.contains("needs 1"), "{l}"),
            other => panic!("{other:?}"),
        }
        match judge(&pat("slow", "x"), &ev) {
            Judgement::Unknown(l) => assert!(l.contains("failed (Throttled)"), "{l}"),
            other => panic!("{other:?}"),
        }
        let spike = Signature::Spike {
            query: "rate".into(),
            factor: 2.0,
            field: None,
        };
        assert!(matches!(judge(&spike, &ev), Judgement::Contradicted(_)));
        let dep = Signature::Deployment {
            within: Span::minutes(30),
        };
        assert!(matches!(judge(&dep, &ev), Judgement::Contradicted(_)));
        let unknown_ecs = ev_with(
            &outputs,
            &failed,
            &metrics,
            Err("describing the ECS service failed"),
        );
        assert!(matches!(judge(&dep, &unknown_ecs), Judgement::Unknown(_)));
        // `not` turns a contradiction into evidence and a match into evidence against
        let not = Signature::Not(Box::new(pat("errors", "pool exhausted")));
        assert!(matches!(judge(&not, &ev), Judgement::Matched { .. }));
        let not = Signature::Not(Box::new(pat("errors", "timeout")));
        assert!(matches!(judge(&not, &ev), Judgement::Contradicted(_)));
        let not = Signature::Not(Box::new(pat("slow", "x")));
        assert!(matches!(judge(&not, &ev), Judgement::Unknown(_)));
    }

    #[test]
    fn a_contradicted_signature_counts_against_its_cause() {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "errors".to_string(),
            QueryOutput {
                rows: vec![row(&[("@message", "ERROR timeout")])],
                statistics: Default::default(),
            },
        );
        let (failed, metrics) = (BTreeMap::new(), BTreeMap::new());
        let ev = ev_with(&outputs, &failed, &metrics, Ok(&[]));
        let pat = |m: &str| Signature::Pattern {
            query: "errors".into(),
            matches: m.into(),
            field: None,
            min_count: 1,
        };
        let missing = Signature::Pattern {
            query: "never-ran".into(),
            matches: "x".into(),
            field: None,
            min_count: 1,
        };
        // half matched, half contradicted: nothing
        let (h, _) = hypothesis(&cause(vec![pat("timeout"), pat("pool")]), &ev);
        assert_eq!(h.score, 0.0);
        assert_eq!((h.evidence.len(), h.against.len()), (1, 1));
        // half matched, half unknown: half
        let (h, _) = hypothesis(&cause(vec![pat("timeout"), missing.clone()]), &ev);
        assert_eq!(h.score, 0.5);
        assert!(h.missing[0].contains("did not run"), "{:?}", h.missing);
        let (h, _) = hypothesis(&cause(vec![pat("timeout")]), &ev);
        assert_eq!(h.score, 1.0);
        let (h, _) = hypothesis(&cause(vec![pat("pool"), missing]), &ev);
        assert_eq!(h.score, 0.0);
    }

    fn step(name: &str, missing: Missing) -> MetricStep {
        MetricStep {
            name: name.into(),
            description: String::new(),
            metric: crate::runbook::model::MetricRef {
                namespace: "AWS/ApplicationELB".into(),
                name: "RequestCount".into(),
                dimensions: Default::default(),
                stat: "Sum".into(),
            },
            period: Span::minutes(1),
            window: Span::minutes(15),
            baseline: Span::minutes(60),
            missing,
            unit: None,
        }
    }

    /// One point a minute from 13:20 to 14:36: `base` until `from`, `level` after.
    fn series(base: f64, level: f64, from: &str) -> MetricData {
        let from = t(from);
        let mut points = Vec::new();
        let mut at = t("13:20");
        while at < t("14:37") {
            points.push((at, if at >= from { level } else { base }));
            at += chrono::Duration::minutes(1);
        }
        MetricData {
            id: "m0".into(),
            points,
            note: None,
        }
    }

    fn metric_of(step_: &MetricStep, data: Result<&MetricData, &str>) -> MetricSummary {
        let q = metric_query("m0", step_, BTreeMap::new());
        summarize_metric(step_, &q, data, t("13:20"), (t("14:20"), t("14:37")))
    }

    #[test]
    fn a_metric_is_compared_with_its_baseline_in_words() {
        let st = step("request-rate", Missing::NoData);
        let doubled = metric_of(&st, Ok(&series(1200.0, 2400.0, "14:30")));
        assert_eq!(doubled.change, MetricChange::Rose);
        assert_eq!(doubled.since, Some(t("14:30")));
        assert_eq!(
            doubled.line(),
            "RequestCount 2.0x baseline since 14:30 (2400 vs 1200)"
        );
        let mut cpu = step("cpu", Missing::NoData);
        cpu.metric.name = "CPUUtilization".into();
        cpu.unit = Some("%".into());
        let normal = metric_of(&cpu, Ok(&series(39.0, 41.0, "14:20")));
        assert_eq!(normal.change, MetricChange::Unchanged);
        assert_eq!(normal.line(), "CPUUtilization normal (41% vs 39%)");
        let mut tasks = step("tasks", Missing::NoData);
        tasks.metric.name = "RunningTaskCount".into();
        let same = metric_of(&tasks, Ok(&series(4.0, 4.0, "14:30")));
        assert_eq!(same.line(), "RunningTaskCount unchanged at 4");
        let fell = metric_of(&tasks, Ok(&series(4.0, 1.0, "14:25")));
        assert_eq!((fell.change, fell.since), (MetricChange::Fell, Some(t("14:25"))));
        // no points is no data, not zero
        let none = metric_of(&st, Ok(&MetricData::default()));
        assert_eq!((none.change, none.level), (MetricChange::NoData, None));
        assert!(none.line().contains("no data"), "{}", none.line());
        // unless the step says a missing period is zero (5xx counts are only sent when some)
        let zero = metric_of(&step("5xx", Missing::Zero), Ok(&MetricData::default()));
        assert_eq!((zero.change, zero.level), (MetricChange::Unchanged, Some(0.0)));
        let failed = metric_of(&st, Err("Throttling: Rate exceeded"));
        assert!(failed.line().contains("Rate exceeded"), "{}", failed.line());
        // too little before the window to compare
        let late = series(0.0, 2400.0, "14:19");
        let late = MetricData {
            points: late
                .points
                .into_iter()
                .filter(|(at, _)| *at >= t("14:19"))
                .collect(),
            ..late
        };
        let nb = metric_of(&st, Ok(&late));
        assert_eq!(nb.change, MetricChange::NoBaseline);
        assert!(nb.line().contains("no baseline"), "{}", nb.line());
        // a lone outlier is not a sustained change
        let mut blip = series(1200.0, 1200.0, "14:30");
        for p in &mut blip.points {
            if p.0 == t("14:25") {
                p.1 = 5000.0;
            }
        }
        assert_eq!(metric_of(&st, Ok(&blip)).change, MetricChange::Unchanged);
    }

    #[test]
    fn metric_signatures_judge_the_level_against_the_baseline() {
        let st = step("request-rate", Missing::NoData);
        let metrics = BTreeMap::from([(
            "request-rate".to_string(),
            metric_of(&st, Ok(&series(1200.0, 2400.0, "14:30"))),
        )]);
        let (outputs, failed) = (BTreeMap::new(), BTreeMap::new());
        let ev = ev_with(&outputs, &failed, &metrics, Ok(&[]));
        let sig = |factor: Option<f64>, above: Option<f64>, below: Option<f64>| Signature::Metric {
            step: "request-rate".into(),
            factor,
            above,
            below,
        };
        match judge(&sig(Some(1.5), None, None), &ev) {
            Judgement::Matched { line, at } => {
                assert_eq!(at, Some(t("14:30")));
                assert!(line.contains("2.0x baseline"), "{line}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(&sig(Some(3.0), None, None), &ev),
            Judgement::Contradicted(_)
        ));
        assert!(matches!(
            judge(&sig(Some(0.5), None, None), &ev),
            Judgement::Contradicted(_)
        ));
        assert!(matches!(
            judge(&sig(None, Some(2000.0), None), &ev),
            Judgement::Matched { .. }
        ));
        assert!(matches!(
            judge(&sig(None, None, Some(2000.0)), &ev),
            Judgement::Contradicted(_)
        ));
        let other = Signature::Metric {
            step: "cpu".into(),
            factor: Some(1.5),
            above: None,
            below: None,
        };
        assert!(matches!(judge(&other, &ev), Judgement::Unknown(_)));
    }

    #[test]
    fn parses_bin_time_formats() {
        let want = t("14:30");
        for s in [
            "2026-03-14 14:30:00.000",
            "2026-03-14T14:30:00Z",
            "2026-03-14T14:30:00",
            "2026-03-14 14:30:00",
        ] {
            assert_eq!(parse_time(s), Some(want), "{s}");
        }
        assert_eq!(parse_time("12"), None);
    }
}
