//! The reads `firebreak drill record` makes beyond the pipeline's ports: the raw log events of
//! the diagnosis window with FilterLogEvents, bounded, reporting progress page by page, and
//! keeping what was read when the bound is reached (the diagnosis's
//! [`crate::FilterLogEventsFetcher`] refuses a window past its bound instead, and reports no
//! progress).

use crate::error::port_error;
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
        const OP: &str = "Logs FilterLogEvents";
        let mut out = LogRead::default();
        'groups: for group in groups {
            let mut token: Option<String> = None;
            let mut prev: Option<String> = None;
            loop {
                let room = self.max_events.saturating_sub(out.events.len()).clamp(1, 10_000);
                let req = self
                    .client
                    .filter_log_events()
                    .start_time(start.timestamp_millis())
                    .end_time(end.timestamp_millis())
                    .limit(i32::try_from(room).unwrap_or(10_000))
                    .set_next_token(token.take());
                let req = if group.starts_with("arn:") {
                    req.log_group_identifier(group)
                } else {
                    req.log_group_name(group)
                };
                let page = req.send().await.map_err(|e| port_error(OP, &e))?;
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
                match page.next_token {
                    Some(t) if !t.is_empty() && prev.as_deref() != Some(t.as_str()) => {
                        if out.events.len() >= self.max_events {
                            // more follow: the bound is reached
                            out.stopped_in = Some(group.clone());
                            break 'groups;
                        }
                        prev = Some(t.clone());
                        token = Some(t);
                    }
                    _ => break,
                }
            }
        }
        // stable: events of one timestamp keep their group, stream and arrival order
        out.events.sort_by_key(|e| e.timestamp_ms);
        Ok(out)
    }
}
