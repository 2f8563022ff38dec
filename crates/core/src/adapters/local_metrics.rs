//! [`RecordedMetrics`]: the [`MetricQueries`] port over recorded datapoints, as a drill's
//! `metrics:` file holds them (one `{"namespace", "name", "dimensions", "timestamp", "value"}`
//! per line). It answers as GetMetricData does: the points of the metric whose namespace, name
//! and dimensions equal the query's exactly, aggregated per period with the query's statistic;
//! a period without points is absent (no data is not zero).

use crate::ports::{MetricData, MetricQueries, MetricQuery, MetricRequest, PortError};
use crate::Error;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::BufRead;

/// One recorded datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub at: DateTime<Utc>,
    pub value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    namespace: String,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
    timestamp: serde_json::Value,
    value: f64,
}

/// Reads JSON-lines datapoints; an error names the source, the line and what is wrong.
///
/// # Errors
/// [`Error::Invalid`] for a line that is not a datapoint.
pub fn read_points<R: BufRead>(reader: R, source: &str) -> Result<Vec<MetricPoint>, Error> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let what = format!("{source}:{}", i + 1);
        let line = line.map_err(|e| Error::invalid(&what, format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).map_err(|e| Error::invalid(&what, e.to_string()))?;
        let ms = match &l.timestamp {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => firebreak_insights::parse_timestamp(s),
            _ => None,
        }
        .ok_or_else(|| Error::invalid(&what, "timestamp is neither epoch milliseconds nor RFC 3339"))?;
        let at = DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| Error::invalid(&what, "timestamp out of range"))?;
        if !l.value.is_finite() {
            return Err(Error::invalid(&what, "value is not a finite number"));
        }
        out.push(MetricPoint {
            namespace: l.namespace,
            name: l.name,
            dimensions: l.dimensions,
            at,
            value: l.value,
        });
    }
    Ok(out)
}

/// Recorded datapoints answering metric queries.
#[derive(Debug, Clone, Default)]
pub struct RecordedMetrics {
    points: Vec<MetricPoint>,
    calls: std::sync::Arc<std::sync::Mutex<Vec<MetricRequest>>>,
}

impl RecordedMetrics {
    pub fn new(points: Vec<MetricPoint>) -> RecordedMetrics {
        RecordedMetrics {
            points,
            calls: Default::default(),
        }
    }

    /// The requests answered so far.
    pub fn calls(&self) -> Vec<MetricRequest> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn answer(
        &self,
        q: &MetricQuery,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<MetricData, PortError> {
        let stat = Stat::parse(&q.stat).ok_or_else(|| {
            PortError::new(
                "CloudWatch GetMetricData",
                format!(
                    "the statistic {:?} of query {} is not one CloudWatch knows",
                    q.stat, q.id
                ),
                false,
            )
            .with_code("InvalidParameterValue")
        })?;
        if q.period_s == 0 || q.period_s % 60 != 0 {
            return Err(PortError::new(
                "CloudWatch GetMetricData",
                format!(
                    "the period of query {} must be a multiple of 60 seconds, not {}",
                    q.id, q.period_s
                ),
                false,
            )
            .with_code("InvalidParameterValue"));
        }
        let period_ms = i64::from(q.period_s) * 1000;
        let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
        for p in &self.points {
            if p.namespace == q.namespace
                && p.name == q.name
                && p.dimensions == q.dimensions
                && p.at >= start
                && p.at < end
            {
                let ms = p.at.timestamp_millis();
                buckets
                    .entry(ms - ms.rem_euclid(period_ms))
                    .or_default()
                    .push(p.value);
            }
        }
        let points = buckets
            .into_iter()
            .filter_map(|(t, v)| Some((DateTime::from_timestamp_millis(t)?, stat.of(v))))
            .collect();
        Ok(MetricData {
            id: q.id.clone(),
            points,
            note: None,
        })
    }
}

/// A CloudWatch statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Sum,
    Average,
    Minimum,
    Maximum,
    SampleCount,
    Percentile(f64),
}

impl Stat {
    fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "Sum" => Stat::Sum,
            "Average" => Stat::Average,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            "SampleCount" => Stat::SampleCount,
            p => {
                let n: f64 = p.strip_prefix('p')?.parse().ok()?;
                if !(0.0..=100.0).contains(&n) {
                    return None;
                }
                Stat::Percentile(n)
            }
        })
    }

    fn of(self, mut v: Vec<f64>) -> f64 {
        let n = v.len() as f64;
        match self {
            Stat::Sum => v.iter().sum(),
            Stat::Average => v.iter().sum::<f64>() / n,
            Stat::Minimum => v.iter().copied().fold(f64::INFINITY, f64::min),
            Stat::Maximum => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Stat::SampleCount => n,
            Stat::Percentile(p) => {
                // nearest rank
                v.sort_by(f64::total_cmp);
                let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
                v[rank.min(v.len()) - 1]
            }
        }
    }
}

impl MetricQueries for RecordedMetrics {
    async fn get(&self, request: &MetricRequest) -> Result<Vec<MetricData>, PortError> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request.clone());
        request
            .queries
            .iter()
            .map(|q| self.answer(q, request.start, request.end))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, s).unwrap()
    }

    const LINES: &str = r#"
{"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": {"ClusterName": "prod", "ServiceName": "api"}, "timestamp": "2026-03-14T14:00:00Z", "value": 40}
{"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": {"ClusterName": "prod", "ServiceName": "api"}, "timestamp": 1773496860000, "value": 50}
{"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": {"ClusterName": "prod", "ServiceName": "api"}, "timestamp": "2026-03-14T14:02:00Z", "value": 90}
{"namespace": "AWS/ECS", "name": "CPUUtilization", "dimensions": {"ClusterName": "prod"}, "timestamp": "2026-03-14T14:00:00Z", "value": 99}
"#;

    fn query(stat: &str, period_s: u32, dims: &[(&str, &str)]) -> MetricQuery {
        MetricQuery {
            id: "q".into(),
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            stat: stat.into(),
            period_s,
        }
    }

    async fn get(stat: &str, period_s: u32, dims: &[(&str, &str)]) -> Result<MetricData, PortError> {
        let m = RecordedMetrics::new(read_points(LINES.as_bytes(), "m.jsonl").unwrap());
        let req = MetricRequest {
            queries: vec![query(stat, period_s, dims)],
            start: at(13, 0, 0),
            end: at(15, 0, 0),
        };
        Ok(m.get(&req).await?.remove(0))
    }

    const SVC: &[(&str, &str)] = &[("ClusterName", "prod"), ("ServiceName", "api")];

    #[tokio::test]
    async fn aggregates_per_period_with_the_statistic_and_exact_dimensions() {
        let one = get("Average", 60, SVC).await.unwrap();
        assert_eq!(one.points.len(), 3);
        assert_eq!(one.points[1], (at(14, 1, 0), 50.0));
        let three = get("Average", 180, SVC).await.unwrap();
        assert_eq!(three.points, vec![(at(14, 0, 0), 60.0)]);
        assert_eq!(get("Sum", 180, SVC).await.unwrap().points[0].1, 180.0);
        assert_eq!(get("Maximum", 180, SVC).await.unwrap().points[0].1, 90.0);
        assert_eq!(get("Minimum", 180, SVC).await.unwrap().points[0].1, 40.0);
        assert_eq!(get("SampleCount", 180, SVC).await.unwrap().points[0].1, 3.0);
        assert_eq!(get("p50", 180, SVC).await.unwrap().points[0].1, 50.0);
        // fewer dimensions is another metric
        let cluster = get("Average", 180, &[("ClusterName", "prod")]).await.unwrap();
        assert_eq!(cluster.points, vec![(at(14, 0, 0), 99.0)]);
        // no such metric: no data, not zero
        assert!(get("Average", 60, &[("ClusterName", "dev")])
            .await
            .unwrap()
            .points
            .is_empty());
    }

    #[tokio::test]
    async fn a_bad_statistic_or_period_is_a_clear_error() {
        let e = get("Median", 60, SVC).await.unwrap_err();
        assert!(e.message.contains("\"Median\""), "{e}");
        let e = get("Average", 90, SVC).await.unwrap_err();
        assert!(e.message.contains("multiple of 60"), "{e}");
    }

    #[test]
    fn a_bad_line_names_its_line() {
        let e = read_points("\n{\"namespace\": \"a\"}\n".as_bytes(), "m.jsonl").unwrap_err();
        assert!(e.to_string().contains("m.jsonl:2"), "{e}");
        let e = read_points(
            r#"{"namespace":"a","name":"b","timestamp":"yesterday","value":1}"#.as_bytes(),
            "m.jsonl",
        )
        .unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }
}
