//! The reads `firebreak drill record` makes beyond the pipeline's ports: the raw log events of
//! the diagnosis window with FilterLogEvents, bounded, reporting progress page by page, and
//! keeping what was read when the bound is reached (the diagnosis's
//! [`crate::FilterLogEventsFetcher`] refuses a window past its bound instead, and reports no
//! progress).

use crate::logs::{filter_page, next_page};
use chrono::{DateTime, Utc};
use firebreak_core::drill::record::RecordedLog;
use firebreak_core::ports::PortError;

/// What a bounded read returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    /// Ordered by timestamp (then group, stream, arrival).
    pub events: Vec<RecordedLog>,
    /// The log group being read when the bound was reached; `None` when every event was read.
    pub stopped_in: Option<String>,
}

/// Reads log events with FilterLogEvents, at most `max_events` in all.
#[derive(Debug, Clone)]
pub struct LogRecorder {
    client: aws_sdk_cloudwatchlogs::Client,
    max_events: usize,
}

impl LogRecorder {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, max_events: usize) -> LogRecorder {
        LogRecorder { client, max_events }
    }

    /// Every event of `groups` with a timestamp in `[start, end]`, up to the bound; `progress`
    /// is called after each page with the events read so far and the group.
    ///
    /// # Errors
    /// [`PortError`] when a call fails (a missing log group among them).
    pub async fn read(
        &self,
        groups: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        progress: &mut (dyn FnMut(usize, &str) + Send),
    ) -> Result<LogRead, PortError> {
        let mut out = LogRead::default();
        'groups: for group in groups {
            let mut token: Option<String> = None;
            let mut prev: Option<String> = None;
            loop {
                let room = self.max_events.saturating_sub(out.events.len()).max(1);
                let page = filter_page(&self.client, group, (start, end), room, token.take()).await?;
                for e in page.events() {
                    if out.events.len() >= self.max_events {
                        out.stopped_in = Some(group.clone());
                        progress(out.events.len(), group);
                        break 'groups;
                    }
                    out.events.push(RecordedLog {
                        group: group.clone(),
                        stream: e.log_stream_name().unwrap_or_default().to_string(),
                        timestamp_ms: e.timestamp().unwrap_or_default(),
                        message: e.message().unwrap_or_default().to_string(),
                    });
                }
                progress(out.events.len(), group);
                token = next_page(page.next_token, &mut prev);
                if token.is_none() {
                    break;
                }
                if out.events.len() >= self.max_events {
                    // more follow: the bound is reached
                    out.stopped_in = Some(group.clone());
                    break 'groups;
                }
            }
        }
        // stable: events of one timestamp keep their group, stream and arrival order
        out.events.sort_by_key(|e| e.timestamp_ms);
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
    use aws_sdk_cloudwatchlogs::error::ErrorMetadata;
    use aws_sdk_cloudwatchlogs::operation::filter_log_events::{FilterLogEventsError, FilterLogEventsOutput};
    use aws_sdk_cloudwatchlogs::types::FilteredLogEvent;
    use aws_sdk_cloudwatchlogs::Client;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};

    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn event(ts: i64, msg: &str) -> FilteredLogEvent {
        FilteredLogEvent::builder()
            .log_stream_name("s")
            .timestamp(ts)
            .message(msg)
            .build()
    }

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[tokio::test]
    async fn every_page_of_every_group_is_read_in_the_window_with_progress() {
        let a1 = mock!(Client::filter_log_events)
            .match_requests(|r| {
                r.log_group_name() == Some("/ecs/a")
                    && r.next_token().is_none()
                    && r.start_time() == Some(1_000)
                    && r.end_time() == Some(9_000)
            })
            .then_output(|| {
                FilterLogEventsOutput::builder()
                    .events(event(3_000, "a1"))
                    .next_token("t1")
                    .build()
            });
        let a2 = mock!(Client::filter_log_events)
            .match_requests(|r| r.next_token() == Some("t1"))
            .then_output(|| {
                FilterLogEventsOutput::builder()
                    .events(event(4_000, "a2"))
                    .build()
            });
        let b = mock!(Client::filter_log_events)
            .match_requests(|r| r.log_group_name() == Some("/ecs/b"))
            .then_output(|| FilterLogEventsOutput::builder().events(event(2_000, "b")).build());
        let mut seen = Vec::new();
        let read = LogRecorder::new(client(&[&a1, &a2, &b]), 100)
            .read(
                &["/ecs/a".to_string(), "/ecs/b".to_string()],
                t(1_000),
                t(9_000),
                &mut |n, g| seen.push((n, g.to_string())),
            )
            .await
            .unwrap();
        let messages: Vec<&str> = read.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, vec!["b", "a1", "a2"]);
        assert_eq!(read.stopped_in, None);
        assert_eq!(
            seen,
            vec![
                (1, "/ecs/a".to_string()),
                (2, "/ecs/a".to_string()),
                (3, "/ecs/b".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn reaching_the_bound_keeps_what_was_read_and_names_the_group() {
        let page = mock!(Client::filter_log_events).then_output(|| {
            FilterLogEventsOutput::builder()
                .events(event(1, "a"))
                .events(event(2, "b"))
                .next_token("more")
                .build()
        });
        let read = LogRecorder::new(client(&[&page]), 2)
            .read(&["/g".to_string(), "/h".to_string()], t(0), t(10), &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(read.events.len(), 2);
        assert_eq!(read.stopped_in.as_deref(), Some("/g"));
    }

    #[tokio::test]
    async fn a_failed_call_is_a_port_error_naming_the_operation() {
        let fail = mock!(Client::filter_log_events).then_error(|| {
            FilterLogEventsError::generic(
                ErrorMetadata::builder()
                    .code("ResourceNotFoundException")
                    .message("The specified log group does not exist.")
                    .build(),
            )
        });
        let err = LogRecorder::new(client(&[&fail]), 10)
            .read(&["/nope".to_string()], t(0), t(10), &mut |_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("FilterLogEvents"), "{err}");
    }
}
