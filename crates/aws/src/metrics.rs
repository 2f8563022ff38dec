//! [`CloudWatchMetrics`]: the [`MetricQueries`] port over GetMetricData (one `MetricStat` per
//! query, 500 queries per request, every page followed).
//!
//! It answers as [`RecordedMetrics`](firebreak_core::adapters::local_metrics::RecordedMetrics)
//! does: one [`MetricData`] per query, `(period start, value)` oldest first, a period without
//! data absent (no data is not zero). What CloudWatch says about a query (`PartialData`,
//! `InternalError`, its messages) becomes that query's `note`. A request CloudWatch would refuse
//! (an id it does not accept, a period that is not a positive multiple of 60, a statistic it does
//! not know, an empty time range) is refused here, before any call, with a non-retryable error
//! that names what is wrong.

use crate::error::port_error;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode};
use chrono::{DateTime, Utc};
use firebreak_core::ports::{MetricData, MetricQueries, MetricQuery, MetricRequest, PortError};
use std::collections::{BTreeMap, HashSet};

const OP: &str = "CloudWatch GetMetricData";

/// GetMetricData accepts at most 500 queries per request.
pub const MAX_QUERIES_PER_REQUEST: usize = 500;

/// GetMetricData's limits on a query's id and a metric's dimensions.
const MAX_ID_LEN: usize = 255;
const MAX_DIMENSIONS: usize = 30;

/// Reads metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudWatchMetrics {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> CloudWatchMetrics {
        CloudWatchMetrics { client }
    }
}

fn invalid(message: String) -> PortError {
    PortError::new(OP, message, false).with_code("InvalidParameterValue")
}

/// GetMetricData's rule for an id: a lowercase letter first, then letters, digits, underscores.
fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && id.len() <= MAX_ID_LEN
}

/// The statistics the port names (as `RecordedMetrics` accepts them): `Average`, `Sum`,
/// `Minimum`, `Maximum`, `SampleCount`, `pNN` with NN in 0..=100.
fn valid_stat(stat: &str) -> bool {
    match stat {
        "Average" | "Sum" | "Minimum" | "Maximum" | "SampleCount" => true,
        p => p
            .strip_prefix('p')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(|n| (0.0..=100.0).contains(&n)),
    }
}

/// Everything GetMetricData would refuse, checked before a call.
fn validate(request: &MetricRequest) -> Result<(), PortError> {
    if request.start >= request.end {
        return Err(invalid(format!(
            "the start time {} must be before the end time {}",
            request.start.to_rfc3339(),
            request.end.to_rfc3339()
        )));
    }
    let mut seen = HashSet::new();
    for q in &request.queries {
        if !valid_id(&q.id) {
            return Err(invalid(format!(
                "the query id {:?} must match ^[a-z][a-zA-Z0-9_]*$ (at most {MAX_ID_LEN} characters)",
                q.id
            )));
        }
        if !seen.insert(q.id.as_str()) {
            return Err(invalid(format!("the query id {:?} is used twice", q.id)));
        }
        if q.period_s == 0 || q.period_s % 60 != 0 || i32::try_from(q.period_s).is_err() {
            return Err(invalid(format!(
                "the period of query {} must be a positive multiple of 60 seconds, not {}",
                q.id, q.period_s
            )));
        }
        if !valid_stat(&q.stat) {
            return Err(invalid(format!(
                "the statistic {:?} of query {} is not one CloudWatch knows \
                 (Average, Sum, Minimum, Maximum, SampleCount, pNN)",
                q.stat, q.id
            )));
        }
        if q.namespace.trim().is_empty() || q.name.trim().is_empty() {
            return Err(invalid(format!(
                "query {} needs a namespace and a metric name (got {:?} and {:?})",
                q.id, q.namespace, q.name
            )));
        }
        if q.dimensions.len() > MAX_DIMENSIONS {
            return Err(invalid(format!(
                "query {} has {} dimensions; a metric has at most {MAX_DIMENSIONS}",
                q.id,
                q.dimensions.len()
            )));
        }
    }
    Ok(())
}

fn data_query(q: &MetricQuery) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(&q.namespace)
        .metric_name(&q.name)
        .set_dimensions(Some(
            q.dimensions
                .iter()
                .map(|(k, v)| Dimension::builder().name(k).value(v).build())
                .collect(),
        ))
        .build();
    // validate() checked that the period fits.
    let period = i32::try_from(q.period_s).unwrap_or(i32::MAX);
    MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(period)
                .stat(&q.stat)
                .build(),
        )
        .return_data(true)
        .build()
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// What the pages said about one query so far.
#[derive(Debug, Default)]
struct Answer {
    points: Vec<(DateTime<Utc>, f64)>,
    /// The status of the latest page that answered it (`PartialData` on an earlier page only
    /// means that more pages follow).
    status: Option<StatusCode>,
    /// An `InternalError` on any page: the data of that page may be missing.
    internal_error: bool,
    unpaired: usize,
    messages: Vec<String>,
}

impl Answer {
    fn add_message(&mut self, code: Option<&str>, value: Option<&str>) {
        let m = match (code, value) {
            (Some(c), Some(v)) if !c.is_empty() && !v.is_empty() => format!("{c}: {v}"),
            (Some(c), _) if !c.is_empty() => c.to_string(),
            (_, Some(v)) if !v.is_empty() => v.to_string(),
            _ => return,
        };
        if !self.messages.contains(&m) {
            self.messages.push(m);
        }
    }

    fn finish(mut self, id: &str) -> MetricData {
        self.points.sort_by_key(|(t, _)| *t);
        self.points.dedup_by_key(|(t, _)| *t);
        let mut notes = Vec::new();
        if self.internal_error || self.status == Some(StatusCode::InternalError) {
            notes.push("InternalError: CloudWatch could not return every datapoint".to_string());
        }
        match &self.status {
            Some(StatusCode::PartialData) => {
                notes.push("PartialData: CloudWatch returned only part of the datapoints".to_string());
            }
            Some(StatusCode::Forbidden) => {
                notes.push("Forbidden: CloudWatch refused to read this metric".to_string());
            }
            _ => {}
        }
        if self.unpaired > 0 {
            notes.push(format!(
                "{} timestamps or values without their pair were dropped",
                self.unpaired
            ));
        }
        notes.extend(self.messages);
        MetricData {
            id: id.to_string(),
            points: self.points,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }
}

impl CloudWatchMetrics {
    /// One GetMetricData request of at most [`MAX_QUERIES_PER_REQUEST`] queries, every page.
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        request: &MetricRequest,
        answers: &mut BTreeMap<String, Answer>,
    ) -> Result<(), PortError> {
        let data_queries: Vec<MetricDataQuery> = queries.iter().map(data_query).collect();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(data_queries.clone()))
                .start_time(smithy_time(request.start))
                .end_time(smithy_time(request.end))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| port_error(OP, &e))?;
            for r in page.metric_data_results() {
                // An answer to an id this request did not ask for has nowhere to go.
                let Some(a) = r.id().and_then(|id| answers.get_mut(id)) else {
                    continue;
                };
                let (ts, vs) = (r.timestamps(), r.values());
                a.unpaired += ts.len().abs_diff(vs.len());
                a.points.extend(
                    ts.iter()
                        .zip(vs)
                        .filter(|(_, v)| v.is_finite())
                        .filter_map(|(t, v)| Some((chrono_time(t)?, *v))),
                );
                if let Some(s) = r.status_code() {
                    a.internal_error |= *s == StatusCode::InternalError;
                    a.status = Some(s.clone());
                }
                for m in r.messages() {
                    a.add_message(m.code(), m.value());
                }
            }
            // Messages about the operation concern every query of the request.
            for m in page.messages() {
                for q in queries {
                    if let Some(a) = answers.get_mut(&q.id) {
                        a.add_message(m.code(), m.value());
                    }
                }
            }
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(()),
            }
        }
    }
}

impl MetricQueries for CloudWatchMetrics {
    /// One answer per query, in the order of the request.
    async fn get(&self, request: &MetricRequest) -> Result<Vec<MetricData>, PortError> {
        validate(request)?;
        let mut answers: BTreeMap<String, Answer> = request
            .queries
            .iter()
            .map(|q| (q.id.clone(), Answer::default()))
            .collect();
        for chunk in request.queries.chunks(MAX_QUERIES_PER_REQUEST) {
            self.fetch(chunk, request, &mut answers).await?;
        }
        Ok(request
            .queries
            .iter()
            .map(|q| answers.remove(&q.id).unwrap_or_default().finish(&q.id))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::config::retry::RetryConfig;
    use aws_sdk_cloudwatch::error::ErrorMetadata;
    use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
    use aws_sdk_cloudwatch::types::{MessageData, MetricDataResult};
    use aws_sdk_cloudwatch::Client;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
    }

    fn ts(h: u32, m: u32) -> aws_smithy_types::DateTime {
        smithy_time(at(h, m))
    }

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn query(id: &str, stat: &str, period_s: u32) -> MetricQuery {
        MetricQuery {
            id: id.into(),
            namespace: "AWS/ECS".into(),
            name: "CPUUtilization".into(),
            dimensions: [("ClusterName", "prod"), ("ServiceName", "api")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stat: stat.into(),
            period_s,
        }
    }

    fn request(queries: Vec<MetricQuery>) -> MetricRequest {
        MetricRequest {
            queries,
            start: at(13, 0),
            end: at(15, 0),
        }
    }

    fn result(
        id: &str,
        points: &[(aws_smithy_types::DateTime, f64)],
        status: StatusCode,
    ) -> MetricDataResult {
        let mut b = MetricDataResult::builder().id(id).status_code(status);
        for (t, v) in points {
            b = b.timestamps(*t).values(*v);
        }
        b.build()
    }

    /// A rule that answers any GetMetricData with nothing (for requests that must not be sent).
    fn answers_anything() -> Rule {
        mock!(Client::get_metric_data).then_output(|| GetMetricDataOutput::builder().build())
    }

    #[tokio::test]
    async fn sends_one_metric_stat_per_query_over_the_range_ascending() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|r| {
                let [q] = r.metric_data_queries() else {
                    return false;
                };
                let Some(stat) = q.metric_stat() else {
                    return false;
                };
                let Some(metric) = stat.metric() else {
                    return false;
                };
                let dims: Vec<(Option<&str>, Option<&str>)> = metric
                    .dimensions()
                    .iter()
                    .map(|d| (d.name(), d.value()))
                    .collect();
                q.id() == Some("cpu")
                    && q.return_data() == Some(true)
                    && q.expression().is_none()
                    && metric.namespace() == Some("AWS/ECS")
                    && metric.metric_name() == Some("CPUUtilization")
                    && dims
                        == [
                            (Some("ClusterName"), Some("prod")),
                            (Some("ServiceName"), Some("api")),
                        ]
                    && stat.period() == Some(300)
                    && stat.stat() == Some("p99")
                    && r.start_time() == Some(&ts(13, 0))
                    && r.end_time() == Some(&ts(15, 0))
                    && r.scan_by() == Some(&ScanBy::TimestampAscending)
                    && r.next_token().is_none()
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("cpu", &[(ts(14, 0), 87.5)], StatusCode::Complete))
                    .build()
            });
        let data = CloudWatchMetrics::new(client(&[&rule]))
            .get(&request(vec![query("cpu", "p99", 300)]))
            .await
            .unwrap();
        assert_eq!(
            data,
            vec![MetricData {
                id: "cpu".into(),
                points: vec![(at(14, 0), 87.5)],
                note: None,
            }]
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn pages_are_merged_per_id_oldest_first() {
        // The first page answers out of order, and says PartialData as CloudWatch does when
        // more pages follow; the second completes both queries.
        let first = mock!(Client::get_metric_data)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result(
                        "cpu",
                        &[(ts(14, 2), 3.0), (ts(14, 0), 1.0), (ts(14, 1), 2.0)],
                        StatusCode::PartialData,
                    ))
                    .metric_data_results(result("mem", &[(ts(14, 0), 50.0)], StatusCode::PartialData))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::get_metric_data)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result(
                        "cpu",
                        &[(ts(14, 4), 5.0), (ts(14, 3), f64::NAN)],
                        StatusCode::Complete,
                    ))
                    .metric_data_results(result("mem", &[(ts(14, 1), 51.0)], StatusCode::Complete))
                    .build()
            });
        let data = CloudWatchMetrics::new(client(&[&first, &second]))
            .get(&request(vec![
                query("cpu", "Average", 60),
                query("mem", "Maximum", 60),
            ]))
            .await
            .unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].id, "cpu");
        // the NaN is dropped, the rest sorted oldest first
        assert_eq!(
            data[0].points,
            vec![
                (at(14, 0), 1.0),
                (at(14, 1), 2.0),
                (at(14, 2), 3.0),
                (at(14, 4), 5.0)
            ]
        );
        assert_eq!(data[0].note, None);
        assert_eq!(data[1].id, "mem");
        assert_eq!(data[1].points, vec![(at(14, 0), 50.0), (at(14, 1), 51.0)]);
        assert_eq!(data[1].note, None);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn status_and_messages_become_the_note_and_a_query_without_answer_has_no_points() {
        let rule = mock!(Client::get_metric_data).then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(
                    MetricDataResult::builder()
                        .id("cpu")
                        .status_code(StatusCode::InternalError)
                        .messages(
                            MessageData::builder()
                                .code("InternalError")
                                .value("Could not read some datapoints")
                                .build(),
                        )
                        .build(),
                )
                .metric_data_results(result("mem", &[(ts(14, 0), 1.0)], StatusCode::PartialData))
                .messages(
                    MessageData::builder()
                        .code("MaxQueryTimeRangeExceed")
                        .value("too long")
                        .build(),
                )
                .build()
        });
        let data = CloudWatchMetrics::new(client(&[&rule]))
            .get(&request(vec![
                query("cpu", "Average", 60),
                query("mem", "Average", 60),
                query("disk", "Average", 60),
            ]))
            .await
            .unwrap();
        let cpu = data[0].note.as_deref().unwrap_or_default();
        assert!(cpu.contains("InternalError"), "{cpu}");
        assert!(cpu.contains("Could not read some datapoints"), "{cpu}");
        assert!(cpu.contains("MaxQueryTimeRangeExceed: too long"), "{cpu}");
        assert!(data[0].points.is_empty());
        let mem = data[1].note.as_deref().unwrap_or_default();
        assert!(mem.starts_with("PartialData"), "{mem}");
        assert_eq!(data[1].points, vec![(at(14, 0), 1.0)]);
        // no answer at all: no data, not zero
        assert_eq!(data[2].id, "disk");
        assert!(data[2].points.is_empty());
    }

    #[tokio::test]
    async fn more_than_500_queries_are_sent_in_requests_of_500() {
        let full = mock!(Client::get_metric_data)
            .match_requests(|r| r.metric_data_queries().len() == MAX_QUERIES_PER_REQUEST)
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("q0", &[(ts(14, 0), 1.0)], StatusCode::Complete))
                    .build()
            });
        let rest = mock!(Client::get_metric_data)
            .match_requests(|r| {
                r.metric_data_queries().len() == 1 && r.metric_data_queries()[0].id() == Some("q500")
            })
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(result("q500", &[(ts(14, 0), 2.0)], StatusCode::Complete))
                    .build()
            });
        let queries = (0..=500).map(|i| query(&format!("q{i}"), "Sum", 60)).collect();
        let data = CloudWatchMetrics::new(client(&[&full, &rest]))
            .get(&request(queries))
            .await
            .unwrap();
        assert_eq!(data.len(), 501);
        assert_eq!(data[0].points, vec![(at(14, 0), 1.0)]);
        assert_eq!(data[500].points, vec![(at(14, 0), 2.0)]);
        assert_eq!((full.num_calls(), rest.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn throttling_is_a_retryable_error_with_its_code() {
        let rule = mock!(Client::get_metric_data).then_error(|| {
            GetMetricDataError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            )
        });
        let err = CloudWatchMetrics::new(client(&[&rule]))
            .get(&request(vec![query("cpu", "Average", 60)]))
            .await
            .unwrap_err();
        assert_eq!(err.operation, OP);
        assert_eq!(err.code.as_deref(), Some("Throttling"));
        assert_eq!(err.message, "Rate exceeded");
        assert!(err.retryable);
    }

    async fn refused(req: MetricRequest) -> PortError {
        let rule = answers_anything();
        let err = CloudWatchMetrics::new(client(&[&rule]))
            .get(&req)
            .await
            .expect_err("an invalid request is refused");
        assert_eq!(rule.num_calls(), 0, "an invalid request reached CloudWatch");
        assert!(!err.retryable, "{err:?}");
        assert_eq!(err.code.as_deref(), Some("InvalidParameterValue"));
        err
    }

    #[tokio::test]
    async fn an_invalid_id_is_refused_without_a_call() {
        for id in ["CPU", "1cpu", "cpu-5xx", "", "cpu rate"] {
            let err = refused(request(vec![query(id, "Average", 60)])).await;
            assert!(err.message.contains(&format!("{id:?}")), "{err:?}");
            assert!(err.message.contains("^[a-z][a-zA-Z0-9_]*$"), "{err:?}");
        }
        let err = refused(request(vec![
            query("cpu", "Average", 60),
            query("cpu", "Sum", 60),
        ]))
        .await;
        assert!(err.message.contains("twice"), "{err:?}");
    }

    #[tokio::test]
    async fn a_period_that_is_not_a_positive_multiple_of_60_is_refused_without_a_call() {
        for period in [0, 30, 90, 61] {
            let err = refused(request(vec![query("cpu", "Average", period)])).await;
            assert!(err.message.contains("multiple of 60"), "{err:?}");
            assert!(err.message.contains(&period.to_string()), "{err:?}");
        }
    }

    #[tokio::test]
    async fn a_bad_statistic_or_time_range_is_refused_without_a_call() {
        for stat in ["Median", "p101", "p", "average"] {
            let err = refused(request(vec![query("cpu", stat, 60)])).await;
            assert!(err.message.contains(&format!("{stat:?}")), "{err:?}");
        }
        let mut req = request(vec![query("cpu", "Average", 60)]);
        req.end = req.start;
        let err = refused(req).await;
        assert!(err.message.contains("before the end"), "{err:?}");
    }

    #[tokio::test]
    async fn no_queries_is_no_answers_and_no_call() {
        let rule = answers_anything();
        let data = CloudWatchMetrics::new(client(&[&rule]))
            .get(&request(vec![]))
            .await
            .unwrap();
        assert!(data.is_empty());
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn ids_and_statistics_follow_get_metric_datas_rules() {
        assert!(valid_id("cpu"));
        assert!(valid_id("cpu_5xx_Rate2"));
        assert!(!valid_id("Cpu"));
        assert!(!valid_id("_cpu"));
        assert!(!valid_id(&"a".repeat(256)));
        assert!(valid_stat("p99.9"));
        assert!(valid_stat("SampleCount"));
        assert!(!valid_stat("pNaN"));
        assert!(!valid_stat("p-1"));
    }
}
