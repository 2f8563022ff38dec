//! What a diagnosis learns from query results: a compact summary per query (top messages with
//! counts, the first bin whose count spiked against the baseline), whether a cause's signatures
//! match (with the evidence a person reads), and the estimated start of the incident.

use super::model::{Cause, Measure, Signature};
use crate::model::duration::Span;
use crate::model::evidence::{cut, fmt_num};
pub use crate::model::evidence::{CauseMatch, Count, MessageCount, QuerySummary, Series, SpikeBin};
use crate::ports::{Deployment, QueryOutput, ResultField};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use std::collections::BTreeMap;

/// How many distinct messages a summary keeps.
pub const TOP_MESSAGES: usize = 5;
/// Messages are cut to this many characters in summaries and evidence.
pub const MESSAGE_CHARS: usize = 240;
/// The factor a bin must reach against the baseline to count as a spike when nothing says
/// otherwise.
pub const DEFAULT_SPIKE_FACTOR: f64 = 2.0;
/// A spike must also exceed the baseline by at least this much, so 1 → 3 errors is not one.
pub const MIN_SPIKE_EXCESS: f64 = 3.0;
/// Bins needed before a bin to judge it against them.
pub const MIN_BASELINE_BINS: usize = 2;

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

/// The first bin at least `factor` times the median of the bins before it (and at least
/// [`MIN_SPIKE_EXCESS`] above it), judged once [`MIN_BASELINE_BINS`] bins precede it.
pub fn first_spike(series: &[(DateTime<Utc>, f64)], factor: f64, field: &str) -> Option<SpikeBin> {
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
    summarize_step(name, None, output, window)
}

/// [`summarize`] for a step that may `measure` something: its counts are kept as well.
pub fn summarize_step(
    name: &str,
    measures: Option<Measure>,
    output: &QueryOutput,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
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
        spike: series.and_then(|(s, f)| first_spike(&s, DEFAULT_SPIKE_FACTOR, &f)),
        count,
    }
}

/// The estimated start of the incident: the earliest bin that spiked in any query.
pub fn estimated_start(summaries: &[QuerySummary]) -> Option<DateTime<Utc>> {
    summaries
        .iter()
        .filter_map(|s| s.spike.as_ref().map(|b| b.at))
        .min()
}

/// What cause matching looks at.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Each query's output by name (queries that failed are absent).
    pub outputs: &'a BTreeMap<String, QueryOutput>,
    /// Each query's time window.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The ECS service's deployments (empty when unknown).
    pub deployments: &'a [Deployment],
    /// The estimated start, or the alarm time when there is none.
    pub start: DateTime<Utc>,
    pub alarm_at: DateTime<Utc>,
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

/// Whether `sig` matches; `Some(evidence line)` when it does.
pub fn match_signature(sig: &Signature, ev: &Evidence<'_>) -> Option<String> {
    match sig {
        Signature::Pattern {
            query,
            matches,
            field: f,
            min_count,
        } => {
            let out = ev.outputs.get(query)?;
            let re = regex::Regex::new(matches).ok()?;
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
            (n >= *min_count && n > 0).then(|| {
                format!(
                    "{query}: {n} rows whose {fname} matches /{matches}/, e.g. \"{}\"",
                    cut(example.unwrap_or_default().trim_end(), MESSAGE_CHARS)
                )
            })
        }
        Signature::Threshold {
            query,
            field: f,
            op,
            value,
        } => {
            let out = ev.outputs.get(query)?;
            out.rows.iter().find_map(|r| {
                let x: f64 = field(r, f)?.trim().parse().ok()?;
                compare(op, x, *value)?.then(|| {
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
                    format!("{query}: {f} = {} {op} {}{ctx}", fmt_num(x), fmt_num(*value))
                })
            })
        }
        Signature::Spike {
            query,
            factor,
            field: f,
        } => {
            let out = ev.outputs.get(query)?;
            let (series, name) = binned_counts(&out.rows, f.as_deref(), ev.window)?;
            first_spike(&series, *factor, &name)
                .map(|s| format!("{query}: {} spiked: {}", s.field, s.describe()))
        }
        Signature::Deployment { within } => {
            let from = ev.start - within.to_chrono();
            ev.deployments
                .iter()
                .filter_map(|d| d.created_at.map(|at| (d, at)))
                .filter(|(_, at)| *at >= from && *at <= ev.alarm_at.max(ev.start))
                .max_by_key(|(_, at)| *at)
                .map(|(d, at)| {
                    let rel = ev.start - at;
                    let when = if rel >= chrono::Duration::zero() {
                        format!("{}m before the estimated start", rel.num_minutes())
                    } else {
                        format!("{}m after the estimated start", (-rel).num_minutes())
                    };
                    format!(
                        "deployment {} of {} ({}) created at {}, {when}",
                        d.id,
                        d.task_definition,
                        d.status,
                        at.format("%H:%M:%S")
                    )
                })
        }
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
        let ev = Evidence {
            outputs: &outputs,
            window: None,
            deployments: &deployments,
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
    fn estimated_start_is_the_earliest_spike() {
        let a = summarize(
            "a",
            &bins(&[("14:00", 5), ("14:05", 5), ("14:10", 5), ("14:15", 20)]),
            None,
        );
        let b = summarize(
            "b",
            &bins(&[("14:00", 5), ("14:05", 5), ("14:10", 30), ("14:15", 20)]),
            None,
        );
        assert_eq!(estimated_start(&[a.clone(), b]), Some(t("14:10")));
        assert_eq!(estimated_start(&[a][..0]), None);
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
