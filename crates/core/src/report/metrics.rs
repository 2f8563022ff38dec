//! Incident metrics: the stage times MTTR is made of, their CloudWatch Embedded Metric Format
//! (EMF) log lines, and the MTTR report (count, median, p90 per month) the CLI prints.
//!
//! Stage times (the drill JSON's `metrics` object, **contract**):
//!
//! | field | from | to |
//! | --- | --- | --- |
//! | `time_to_detect_s` | `estimated_start` | `detected_at` |
//! | `time_to_diagnose_s` | `detected_at` | `diagnosed_at` |
//! | `time_to_mitigate_s` | `detected_at` | `mitigated_at` |
//! | `time_to_resolve_s` (MTTR) | `detected_at` | `resolved_at` |
//!
//! Whole seconds, `null` when a timestamp is missing. A stage that would come out negative (a
//! clock skew, an estimate later than the alarm) is `null` too, and [`StageTimes::anomalies`] says
//! why: a negative duration is never reported, and a zero would claim something that did not happen.

use crate::model::incident::{Incident, IncidentStatus};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

pub use crate::model::timeline::detail::{StageAnomaly, StageTimes};

const STAGES: [(&str, &str, &str); 4] = [
    ("time_to_detect_s", "estimated_start", "detected_at"),
    ("time_to_diagnose_s", "detected_at", "diagnosed_at"),
    ("time_to_mitigate_s", "detected_at", "mitigated_at"),
    ("time_to_resolve_s", "detected_at", "resolved_at"),
];

impl StageTimes {
    /// The stage times of `incident` (see the module documentation for the definitions).
    pub fn of(incident: &Incident) -> StageTimes {
        let [d, g, m, r] = Self::pairs(incident).map(|(from, to)| span(from, to));
        StageTimes {
            time_to_detect_s: d,
            time_to_diagnose_s: g,
            time_to_mitigate_s: m,
            time_to_resolve_s: r,
        }
    }

    /// The stages that have both timestamps but came out negative, and so are `null`.
    pub fn anomalies(incident: &Incident) -> Vec<StageAnomaly> {
        Self::pairs(incident)
            .into_iter()
            .zip(STAGES)
            .filter_map(|((from, to), (stage, from_name, to_name))| match (from, to) {
                (Some(f), Some(t)) if t < f => Some(StageAnomaly {
                    stage: stage.to_string(),
                    reason: format!(
                        "{to_name} ({}) is {}s before {from_name} ({})",
                        t.to_rfc3339(),
                        (f - t).num_seconds(),
                        f.to_rfc3339()
                    ),
                }),
                _ => None,
            })
            .collect()
    }

    /// MTTR, the time to resolve.
    pub fn mttr_s(&self) -> Option<i64> {
        self.time_to_resolve_s
    }

    #[allow(clippy::type_complexity)]
    fn pairs(i: &Incident) -> [(Option<DateTime<Utc>>, Option<DateTime<Utc>>); 4] {
        let detected = Some(i.detected_at);
        [
            (i.estimated_start, detected),
            (detected, i.diagnosed_at),
            (detected, i.mitigated_at),
            (detected, i.resolved_at),
        ]
    }
}

fn span(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<i64> {
    let s = (to? - from?).num_seconds();
    (s >= 0).then_some(s)
}

pub use crate::model::duration::{human, human_opt};

/// The EMF metric names, in the order they are declared.
pub const EMF_METRICS: [(&str, &str); 4] = [
    ("TimeToDetect", "time_to_detect_s"),
    ("TimeToDiagnose", "time_to_diagnose_s"),
    ("TimeToMitigate", "time_to_mitigate_s"),
    ("TimeToResolve", "time_to_resolve_s"),
];

/// The incident's stage times as CloudWatch Embedded Metric Format log lines, to be written to
/// stdout (the Lambda log) where CloudWatch Logs extracts them; no SDK call.
///
/// One JSON document: `_aws.Timestamp` (epoch milliseconds of the resolution, else of the
/// detection), one metric directive in `namespace` with the dimension sets `[Severity]`,
/// `[Service]` and `[Severity, Service]`, the metrics `TimeToDetect`, `TimeToDiagnose`,
/// `TimeToMitigate`, `TimeToResolve` (unit `Seconds`) and `IncidentsResolved` (unit `Count`, 1
/// when the incident is resolved), and as top-level members the dimension values, the metric
/// values and the `IncidentId` (a property, not a dimension). Metrics whose value is null are left
/// out of both the directive and the members; with no value at all the result is empty.
pub fn emf_lines(incident: &Incident, times: &StageTimes, namespace: &str) -> Vec<String> {
    let values = [
        times.time_to_detect_s,
        times.time_to_diagnose_s,
        times.time_to_mitigate_s,
        times.time_to_resolve_s,
    ];
    let mut root = Map::new();
    let mut metrics = Vec::new();
    for ((name, _), value) in EMF_METRICS.iter().zip(values) {
        if let Some(v) = value {
            metrics.push(json!({"Name": name, "Unit": "Seconds"}));
            root.insert((*name).to_string(), json!(v));
        }
    }
    if incident.status == IncidentStatus::Resolved {
        metrics.push(json!({"Name": "IncidentsResolved", "Unit": "Count"}));
        root.insert("IncidentsResolved".to_string(), json!(1));
    }
    if metrics.is_empty() {
        return Vec::new();
    }
    let at = incident.resolved_at.unwrap_or(incident.detected_at);
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Severity"], ["Service"], ["Severity", "Service"]],
                "Metrics": metrics,
            }],
        }),
    );
    root.insert("Severity".to_string(), json!(incident.severity.as_str()));
    root.insert("Service".to_string(), json!(dimension_value(&incident.service)));
    root.insert("IncidentId".to_string(), json!(incident.id.as_str()));
    vec![Value::Object(root).to_string()]
}

/// One EMF document counting one event: `metric` (unit `Count`, value 1) in `namespace`, under
/// each of the dimension sets `sets` (each a list of names from `dims`), with `dims` as members.
/// The functions write it to stdout, where CloudWatch Logs extracts the metric: `Pages` and
/// `PagesFailed` per published page, `IncidentsOpened` per opened incident, `Remediations` per
/// remediation outcome, `OutboundFailed` per failed on-call call (docs/metrics.md).
pub fn emf_count(
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    sets: &[&[&str]],
    at: DateTime<Utc>,
) -> String {
    let mut root = Map::new();
    for (k, v) in dims {
        root.insert((*k).to_string(), json!(dimension_value(v)));
    }
    root.insert(metric.to_string(), json!(1));
    root.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        }),
    );
    Value::Object(root).to_string()
}

/// CloudWatch dimension values are 1 to 1024 characters; an empty service would make CloudWatch
/// drop the whole document.
fn dimension_value(s: &str) -> String {
    let t: String = s.chars().take(1024).collect();
    if t.trim().is_empty() {
        "unknown".to_string()
    } else {
        t
    }
}

/// How the MTTR report splits each month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupBy {
    #[default]
    None,
    Severity,
    Service,
}

impl FromStr for GroupBy {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "none" => Ok(GroupBy::None),
            "severity" => Ok(GroupBy::Severity),
            "service" => Ok(GroupBy::Service),
            other => Err(crate::Error::invalid(
                "--by",
                format!("{other:?} is not one of severity, service"),
            )),
        }
    }
}

/// One line of the MTTR report: a month, and a severity or service when grouped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MttrRow {
    /// `YYYY-MM` of detection.
    pub month: String,
    /// The severity (`SEV2`) or service, when grouped; `null` otherwise.
    pub group: Option<String>,
    /// Resolved incidents with an MTTR.
    pub count: usize,
    pub median_s: Option<i64>,
    /// Nearest-rank 90th percentile.
    pub p90_s: Option<i64>,
    /// Incidents detected in the month that are not resolved (not in count, median or p90).
    pub unresolved: usize,
}

/// MTTR per month (and group), oldest month first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MttrReport {
    pub since: Option<DateTime<Utc>>,
    pub by: GroupBy,
    pub rows: Vec<MttrRow>,
}

/// Aggregates MTTR (detect → resolve) by month of detection, and by severity or service when
/// `by` says so. Incidents detected before `since` are left out. For each row: how many resolved
/// incidents have an MTTR, their median (the middle value; for an even count the mean of the two
/// middle values, rounded down to the second) and their 90th percentile by nearest rank (the
/// value at rank ⌈0.9·n⌉ of the n values sorted ascending: with 10 values the 9th, with 5 values
/// the 5th, with 1 value that value; never interpolated, so it is always an observed MTTR).
pub fn mttr_report(incidents: &[Incident], since: Option<DateTime<Utc>>, by: GroupBy) -> MttrReport {
    type Key = (i32, u32, Option<String>);
    let mut groups: BTreeMap<Key, (Vec<i64>, usize)> = BTreeMap::new();
    for i in incidents {
        if since.is_some_and(|s| i.detected_at < s) {
            continue;
        }
        let group = match by {
            GroupBy::None => None,
            GroupBy::Severity => Some(i.severity.as_str().to_string()),
            GroupBy::Service => Some(i.service.clone()),
        };
        let key = (i.detected_at.year(), i.detected_at.month(), group);
        let slot = groups.entry(key).or_default();
        match (i.status, StageTimes::of(i).time_to_resolve_s) {
            (IncidentStatus::Resolved, Some(s)) => slot.0.push(s),
            _ => slot.1 += 1,
        }
    }
    let rows = groups
        .into_iter()
        .map(|((y, m, group), (mut v, unresolved))| {
            v.sort_unstable();
            MttrRow {
                month: format!("{y:04}-{m:02}"),
                group,
                count: v.len(),
                median_s: median(&v),
                p90_s: nearest_rank(&v, 90),
                unresolved,
            }
        })
        .collect();
    MttrReport { since, by, rows }
}

/// The median of sorted values (mean of the middle two, rounded down, for an even count).
pub fn median(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => {
            let (a, b) = (sorted.get(n / 2 - 1)?, sorted.get(n / 2)?);
            Some((a + b).div_euclid(2))
        }
    }
}

/// The nearest-rank `p`th percentile of sorted values: the value at rank ⌈p·n/100⌉ (1-based).
pub fn nearest_rank(sorted: &[i64], p: usize) -> Option<i64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).clamp(1, n);
    sorted.get(rank - 1).copied()
}

impl MttrReport {
    /// A plain-text table, one line per row.
    pub fn to_table(&self) -> String {
        let group_header = match self.by {
            GroupBy::None => None,
            GroupBy::Severity => Some("SEVERITY"),
            GroupBy::Service => Some("SERVICE"),
        };
        let mut lines: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["MONTH".to_string()];
        header.extend(group_header.map(str::to_string));
        header.extend(["COUNT", "MEDIAN", "P90", "UNRESOLVED"].map(str::to_string));
        lines.push(header);
        for r in &self.rows {
            let mut l = vec![r.month.clone()];
            if group_header.is_some() {
                l.push(r.group.clone().unwrap_or_default());
            }
            l.push(r.count.to_string());
            l.push(human_opt(r.median_s));
            l.push(human_opt(r.p90_s));
            l.push(r.unresolved.to_string());
            lines.push(l);
        }
        let cols = lines.first().map_or(0, Vec::len);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        if let Some(s) = self.since {
            let _ = writeln!(out, "MTTR (detect -> resolve) since {}", s.format("%Y-%m-%d"));
        } else {
            let _ = writeln!(out, "MTTR (detect -> resolve)");
        }
        if self.rows.is_empty() {
            out.push_str("no incidents\n");
            return out;
        }
        for l in &lines {
            let cells: Vec<String> = l.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        out
    }

    /// The report as JSON (`{"since", "by", "rows": [{"month", "group", "count", "median_s",
    /// "p90_s", "unresolved"}]}`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::incident::{AttachedAlarm, IncidentId};
    use crate::model::severity::Severity;
    use crate::model::signal::AlarmState;
    use chrono::TimeZone;

    pub(crate) fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, s).unwrap()
    }

    pub(crate) fn incident() -> Incident {
        let mut alarms = BTreeMap::new();
        alarms.insert(
            "articles-api-5xx".to_string(),
            AttachedAlarm {
                state: AlarmState::Alarm,
                changed_at: at(14, 35, 0),
                reason: "Threshold Crossed".into(),
            },
        );
        let mut i = Incident::open(
            IncidentId("INC-20260314-143500-3f9a".into()),
            "prod/articles-api",
            Severity::Sev2,
            "5xx rate on articles-api",
            at(14, 35, 0),
            at(14, 35, 1),
        );
        i.ecs = Some(crate::model::incident::EcsService::new("prod", "articles-api"));
        i.alarms = alarms;
        i
    }

    fn seed_resolved() -> Incident {
        let mut i = incident();
        i.estimated_start = Some(at(14, 30, 0));
        i.diagnosed_at = Some(at(14, 35, 40));
        i.mitigated_at = Some(at(14, 36, 0));
        i.resolved_at = Some(at(15, 0, 0));
        i.status = IncidentStatus::Resolved;
        i
    }

    #[test]
    fn seed_incident_stage_times() {
        let t = StageTimes::of(&seed_resolved());
        assert_eq!(
            t,
            StageTimes {
                time_to_detect_s: Some(300),
                time_to_diagnose_s: Some(40),
                time_to_mitigate_s: Some(60),
                time_to_resolve_s: Some(1500),
            }
        );
        assert_eq!(t.mttr_s(), Some(1500));
    }

    #[test]
    fn missing_timestamps_give_nulls_and_serialise_as_null() {
        let t = StageTimes::of(&incident());
        assert_eq!(t, StageTimes::default());
        let v = serde_json::to_value(t).unwrap();
        for k in [
            "time_to_detect_s",
            "time_to_diagnose_s",
            "time_to_mitigate_s",
            "time_to_resolve_s",
        ] {
            assert_eq!(v.get(k), Some(&Value::Null), "{k}");
        }
    }

    #[test]
    fn negative_stage_is_null_with_a_reason() {
        let mut i = seed_resolved();
        i.estimated_start = Some(at(14, 36, 0));
        i.diagnosed_at = Some(at(14, 34, 0));
        let t = StageTimes::of(&i);
        assert_eq!(t.time_to_detect_s, None);
        assert_eq!(t.time_to_diagnose_s, None);
        assert_eq!(t.time_to_resolve_s, Some(1500));
        let a = StageTimes::anomalies(&i);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].stage, "time_to_detect_s");
        assert!(a[0].reason.contains("60s before"), "{}", a[0].reason);
        assert_eq!(a[1].stage, "time_to_diagnose_s");
        assert!(StageTimes::anomalies(&seed_resolved()).is_empty());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(40), "40s");
        assert_eq!(human(300), "5m");
        assert_eq!(human(330), "5m 30s");
        assert_eq!(human(3900), "1h 5m");
        assert_eq!(human(90_061), "1d 1h");
        assert_eq!(human(-60), "-1m");
        assert_eq!(human_opt(None), "-");
    }

    #[test]
    fn emf_document_has_the_specified_shape() {
        let i = seed_resolved();
        let lines = emf_lines(&i, &StageTimes::of(&i), "Firebreak");
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let aws = &v["_aws"];
        assert_eq!(aws["Timestamp"], json!(at(15, 0, 0).timestamp_millis()));
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert_eq!(d["Namespace"], "Firebreak");
        assert_eq!(
            d["Dimensions"],
            json!([["Severity"], ["Service"], ["Severity", "Service"]])
        );
        // every dimension named in a set is a top-level string member
        for set in d["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                assert!(v[name.as_str().unwrap()].is_string(), "{name}");
            }
        }
        let names: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "TimeToDetect",
                "TimeToDiagnose",
                "TimeToMitigate",
                "TimeToResolve",
                "IncidentsResolved"
            ]
        );
        // every metric named in the directive is a top-level number member
        for m in d["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{m}");
            assert!(["Seconds", "Count"].contains(&m["Unit"].as_str().unwrap()));
        }
        assert_eq!(v["TimeToResolve"], 1500);
        assert_eq!(v["TimeToDetect"], 300);
        assert_eq!(v["Severity"], "SEV2");
        assert_eq!(v["Service"], "prod/articles-api");
        assert_eq!(v["IncidentId"], "INC-20260314-143500-3f9a");
    }

    #[test]
    fn an_emf_count_names_its_dimension_sets_and_members() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-14T14:35:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let line = emf_count(
            "Firebreak",
            "Pages",
            &[("Severity", "SEV2"), ("Kind", "")],
            &[&["Severity"], &["Kind"]],
            at,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Pages"], 1);
        assert_eq!(v["Severity"], "SEV2");
        assert_eq!(
            v["Kind"], "unknown",
            "an empty dimension value would drop the document"
        );
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Firebreak");
        assert_eq!(d["Dimensions"], json!([["Severity"], ["Kind"]]));
        assert_eq!(d["Metrics"], json!([{"Name": "Pages", "Unit": "Count"}]));
        assert_eq!(v["_aws"]["Timestamp"], at.timestamp_millis());
    }

    #[test]
    fn emf_leaves_out_null_metrics() {
        let mut i = seed_resolved();
        i.estimated_start = None;
        i.mitigated_at = None;
        let lines = emf_lines(&i, &StageTimes::of(&i), "Firebreak");
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let names: Vec<&str> = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["TimeToDiagnose", "TimeToResolve", "IncidentsResolved"]);
        assert!(v.get("TimeToDetect").is_none());
        assert!(v.get("TimeToMitigate").is_none());
        // nothing measured at all: no document
        assert!(emf_lines(&incident(), &StageTimes::default(), "Firebreak").is_empty());
    }

    #[test]
    fn percentiles_by_nearest_rank_and_median() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(median(&v), Some(5));
        assert_eq!(nearest_rank(&[1, 2, 3, 4, 5], 90), Some(5));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[1, 2, 3]), Some(2));
        assert_eq!(nearest_rank(&[], 90), None);
        assert_eq!(median(&[]), None);
    }

    fn resolved(month: u32, day: u32, sev: Severity, service: &str, mttr_s: i64) -> Incident {
        let mut i = incident();
        i.detected_at = Utc.with_ymd_and_hms(2026, month, day, 10, 0, 0).unwrap();
        i.resolved_at = Some(i.detected_at + chrono::Duration::seconds(mttr_s));
        i.status = IncidentStatus::Resolved;
        i.severity = sev;
        i.service = service.into();
        i
    }

    #[test]
    fn mttr_report_per_month_and_group() {
        let mut v = vec![
            resolved(2, 10, Severity::Sev2, "a", 100),
            resolved(3, 1, Severity::Sev2, "a", 600),
            resolved(3, 2, Severity::Sev1, "b", 1200),
            resolved(3, 3, Severity::Sev2, "b", 300),
            resolved(3, 4, Severity::Sev2, "a", 900),
        ];
        let mut open = incident();
        open.detected_at = Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap();
        v.push(open);

        let r = mttr_report(&v, None, GroupBy::None);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].month, "2026-02");
        assert_eq!((r.rows[0].count, r.rows[0].median_s), (1, Some(100)));
        let mar = &r.rows[1];
        assert_eq!(mar.month, "2026-03");
        assert_eq!(mar.count, 4);
        assert_eq!(mar.unresolved, 1);
        assert_eq!(mar.median_s, Some(750)); // 300 600 | 900 1200
        assert_eq!(mar.p90_s, Some(1200));

        let since = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let r = mttr_report(&v, Some(since), GroupBy::Severity);
        let rows: Vec<(&str, Option<&str>, usize, Option<i64>)> = r
            .rows
            .iter()
            .map(|r| (r.month.as_str(), r.group.as_deref(), r.count, r.median_s))
            .collect();
        assert_eq!(
            rows,
            [
                ("2026-03", Some("SEV1"), 1, Some(1200)),
                ("2026-03", Some("SEV2"), 3, Some(600)),
            ]
        );

        let r = mttr_report(&v, Some(since), GroupBy::Service);
        let groups: Vec<Option<&str>> = r.rows.iter().map(|r| r.group.as_deref()).collect();
        assert_eq!(groups, [Some("a"), Some("b"), Some("prod/articles-api")]);
        assert_eq!(r.rows[0].p90_s, Some(900));
        assert_eq!(r.rows[2].count, 0);
        assert_eq!(r.rows[2].median_s, None);
    }

    #[test]
    fn mttr_table_and_json() {
        let v = vec![
            resolved(3, 1, Severity::Sev2, "a", 600),
            resolved(3, 2, Severity::Sev1, "b", 1500),
        ];
        let r = mttr_report(&v, None, GroupBy::Severity);
        let t = r.to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "MTTR (detect -> resolve)");
        assert_eq!(lines[1], "MONTH    SEVERITY  COUNT  MEDIAN  P90  UNRESOLVED");
        assert_eq!(lines[2], "2026-03  SEV1      1      25m     25m  0");
        assert_eq!(lines[3], "2026-03  SEV2      1      10m     10m  0");
        let j = r.to_json();
        assert_eq!(j["by"], "severity");
        assert_eq!(j["rows"][0]["p90_s"], 1500);
        assert_eq!(j["rows"][0]["group"], "SEV1");
        assert!(mttr_report(&[], None, GroupBy::None)
            .to_table()
            .contains("no incidents"));
    }

    #[test]
    fn group_by_parses_and_names_bad_values() {
        assert_eq!("service".parse::<GroupBy>().unwrap(), GroupBy::Service);
        let e = "team".parse::<GroupBy>().unwrap_err().to_string();
        assert!(e.contains("team") && e.contains("--by"), "{e}");
    }
}
