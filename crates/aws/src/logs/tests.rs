//! Logs Insights polling, deadlines and error paths, and FilterLogEvents paging, against mocked
//! responses.

use super::*;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
use aws_sdk_cloudwatchlogs::operation::get_query_results::{GetQueryResultsError, GetQueryResultsOutput};
use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryOutput;
use aws_sdk_cloudwatchlogs::operation::stop_query::StopQueryOutput;
use aws_sdk_cloudwatchlogs::types::error::{LimitExceededException, MalformedQueryException};
use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, QueryStatistics as SdkStats, ResultField as SdkField};
use aws_sdk_cloudwatchlogs::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use chrono::TimeZone;

fn fast() -> PollSchedule {
    PollSchedule {
        poll_first: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
        retry_first: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
    }
}

fn client(rules: &[&Rule]) -> Client {
    mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

fn request(deadline_ms: u64) -> QueryRequest {
    QueryRequest {
        name: "errors".into(),
        log_groups: vec!["/ecs/articles-api".into()],
        query: "fields @timestamp, @message | filter @message like /Error/".into(),
        start: Utc.with_ymd_and_hms(2026, 3, 14, 14, 20, 0).single().unwrap(),
        end: Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).single().unwrap(),
        deadline: Duration::from_millis(deadline_ms),
    }
}

fn started() -> Rule {
    mock!(Client::start_query)
        .match_requests(|r| {
            r.log_group_names() == ["/ecs/articles-api"]
                && r.start_time() == Some(1_773_498_000)
                && r.end_time() == Some(1_773_498_900)
        })
        .then_output(|| StartQueryOutput::builder().query_id("q-1").build())
}

fn complete() -> GetQueryResultsOutput {
    GetQueryResultsOutput::builder()
        .status(QueryStatus::Complete)
        .results(vec![
            SdkField::builder()
                .field("@timestamp")
                .value("2026-03-14 14:30:01.000")
                .build(),
            SdkField::builder()
                .field("@message")
                .value("DatabaseError: connection pool exhausted")
                .build(),
            SdkField::builder().field("@ptr").value("CmAKJgo...").build(),
        ])
        .statistics(
            SdkStats::builder()
                .records_matched(1.0)
                .records_scanned(10.0)
                .bytes_scanned(2048.0)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn polls_until_complete_and_drops_ptr() {
    let start = started();
    let results = mock!(Client::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-1"))
        .sequence()
        .output(|| {
            GetQueryResultsOutput::builder()
                .status(QueryStatus::Scheduled)
                .build()
        })
        .output(|| {
            GetQueryResultsOutput::builder()
                .status(QueryStatus::Running)
                .build()
        })
        .output(complete)
        .build();
    let out = InsightsLogQueries::with_schedule(client(&[&start, &results]), fast())
        .run(&request(5_000))
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 1);
    let fields: Vec<&str> = out.rows[0].iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["@timestamp", "@message"]);
    assert_eq!(out.statistics.records_scanned, 10.0);
    assert_eq!(results.num_calls(), 3);
}

#[tokio::test]
async fn a_failed_query_is_failed() {
    let start = started();
    let results = mock!(Client::get_query_results).then_output(|| {
        GetQueryResultsOutput::builder()
            .status(QueryStatus::Failed)
            .build()
    });
    let err = InsightsLogQueries::with_schedule(client(&[&start, &results]), fast())
        .run(&request(5_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::Failed(ref m) if m.contains("Failed")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_query_running_past_the_deadline_is_stopped_and_times_out() {
    let start = started();
    let running = mock!(Client::get_query_results).then_output(|| {
        GetQueryResultsOutput::builder()
            .status(QueryStatus::Running)
            .build()
    });
    let stop = mock!(Client::stop_query)
        .match_requests(|r| r.query_id() == Some("q-1"))
        .then_output(|| StopQueryOutput::builder().success(true).build());
    let began = std::time::Instant::now();
    let err = InsightsLogQueries::with_schedule(client(&[&start, &running, &stop]), fast())
        .run(&request(120))
        .await
        .unwrap_err();
    assert_eq!(err, QueryError::Timeout(Duration::from_millis(120)));
    assert_eq!(stop.num_calls(), 1);
    assert!(running.num_calls() >= 3, "polled {} times", running.num_calls());
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn limit_exceeded_on_start_waits_and_retries_within_the_deadline() {
    let start = mock!(Client::start_query)
        .sequence()
        .error(|| {
            StartQueryError::LimitExceededException(
                LimitExceededException::builder()
                    .message("Account maximum query concurrency limit of [30] reached.")
                    .meta(ErrorMetadata::builder().code("LimitExceededException").build())
                    .build(),
            )
        })
        .times(2)
        .output(|| StartQueryOutput::builder().query_id("q-1").build())
        .build();
    let results = mock!(Client::get_query_results).then_output(complete);
    let out = InsightsLogQueries::with_schedule(client(&[&start, &results]), fast())
        .run(&request(5_000))
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 1);
    assert_eq!(start.num_calls(), 3);
}

#[tokio::test]
async fn limit_exceeded_until_the_deadline_times_out() {
    let start = mock!(Client::start_query).then_error(|| {
        StartQueryError::LimitExceededException(
            LimitExceededException::builder()
                .meta(ErrorMetadata::builder().code("LimitExceededException").build())
                .build(),
        )
    });
    let err = InsightsLogQueries::with_schedule(client(&[&start]), fast())
        .run(&request(60))
        .await
        .unwrap_err();
    assert_eq!(err, QueryError::Timeout(Duration::from_millis(60)));
}

#[tokio::test]
async fn throttled_polls_are_retried() {
    let start = started();
    let results = mock!(Client::get_query_results)
        .sequence()
        .error(|| {
            GetQueryResultsError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .times(2)
        .output(complete)
        .build();
    let out = InsightsLogQueries::with_schedule(client(&[&start, &results]), fast())
        .run(&request(5_000))
        .await
        .unwrap();
    assert_eq!(out.rows.len(), 1);
    assert_eq!(results.num_calls(), 3);
}

#[tokio::test]
async fn a_malformed_query_is_invalid() {
    let start = mock!(Client::start_query).then_error(|| {
        StartQueryError::MalformedQueryException(
            MalformedQueryException::builder()
                .message("unexpected symbol at line 1")
                .meta(ErrorMetadata::builder().code("MalformedQueryException").build())
                .build(),
        )
    });
    let err = InsightsLogQueries::with_schedule(client(&[&start]), fast())
        .run(&request(5_000))
        .await
        .unwrap_err();
    assert_eq!(err, QueryError::Invalid("unexpected symbol at line 1".into()));
}

fn event(stream: &str, ts: i64, msg: &str) -> FilteredLogEvent {
    FilteredLogEvent::builder()
        .log_stream_name(stream)
        .timestamp(ts)
        .ingestion_time(ts + 5)
        .message(msg)
        .build()
}

#[tokio::test]
async fn fetcher_follows_pages_including_empty_ones_and_orders_by_time() {
    let p1 = mock!(Client::filter_log_events)
        .match_requests(|r| {
            r.log_group_name() == Some("/ecs/api")
                && r.next_token().is_none()
                && r.start_time() == Some(1_000)
                && r.end_time() == Some(9_000)
        })
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("s1", 3_000, "b"))
                .next_token("t1")
                .build()
        });
    let p2 = mock!(Client::filter_log_events)
        .match_requests(|r| r.next_token() == Some("t1"))
        .then_output(|| FilterLogEventsOutput::builder().next_token("t2").build());
    let p3 = mock!(Client::filter_log_events)
        .match_requests(|r| r.next_token() == Some("t2"))
        .then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event("s2", 2_000, "a"))
                .build()
        });
    let start = DateTime::from_timestamp_millis(1_000).unwrap();
    let end = DateTime::from_timestamp_millis(9_000).unwrap();
    let events = FilterLogEventsFetcher::new(client(&[&p1, &p2, &p3]), 100)
        .fetch(&["/ecs/api".to_string()], start, end)
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![
            FetchedEvent {
                group: "/ecs/api".into(),
                stream: "s2".into(),
                timestamp_ms: 2_000,
                ingestion_ms: Some(2_005),
                message: "a".into()
            },
            FetchedEvent {
                group: "/ecs/api".into(),
                stream: "s1".into(),
                timestamp_ms: 3_000,
                ingestion_ms: Some(3_005),
                message: "b".into()
            },
        ]
    );
}

#[tokio::test]
async fn fetcher_refuses_more_events_than_its_limit() {
    let page = mock!(Client::filter_log_events).then_output(|| {
        FilterLogEventsOutput::builder()
            .events(event("s", 1, "a"))
            .events(event("s", 2, "b"))
            .events(event("s", 3, "c"))
            .build()
    });
    let t = DateTime::from_timestamp_millis(0).unwrap();
    let err = FilterLogEventsFetcher::new(client(&[&page]), 2)
        .fetch(&["/g".to_string()], t, t)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FetchError::TooManyEvents {
            group: "/g".into(),
            limit: 2
        }
    );
    assert!(matches!(QueryError::from(err), QueryError::Failed(_)));
}
