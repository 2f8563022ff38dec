//! Log events, as CloudWatch Logs stores them.

use serde::{Deserialize, Serialize};

/// One log event: what `FilterLogEvents`/`GetLogEvents` return, plus where it came from.
///
/// The query engine exposes it as the system fields `@timestamp`, `@message`, `@log`,
/// `@logStream` and `@ingestionTime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    pub message: String,
    pub log_group: String,
    pub log_stream: String,
    /// When CloudWatch received it; `None` makes `@ingestionTime` equal `@timestamp`.
    pub ingestion_time_ms: Option<i64>,
}

impl LogEvent {
    pub fn new(
        timestamp_ms: i64,
        log_group: impl Into<String>,
        log_stream: impl Into<String>,
        message: impl Into<String>,
    ) -> LogEvent {
        LogEvent {
            timestamp_ms,
            message: message.into(),
            log_group: log_group.into(),
            log_stream: log_stream.into(),
            ingestion_time_ms: None,
        }
    }

    /// A borrowed view, what the evaluator consumes.
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            timestamp_ms: self.timestamp_ms,
            message: &self.message,
            log_group: &self.log_group,
            log_stream: &self.log_stream,
            ingestion_time_ms: self.ingestion_time_ms,
        }
    }
}

/// A borrowed log event. Readers hand these out without copying the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub timestamp_ms: i64,
    pub message: &'a str,
    pub log_group: &'a str,
    pub log_stream: &'a str,
    pub ingestion_time_ms: Option<i64>,
}

impl EventRef<'_> {
    pub fn to_owned_event(&self) -> LogEvent {
        LogEvent {
            timestamp_ms: self.timestamp_ms,
            message: self.message.to_string(),
            log_group: self.log_group.to_string(),
            log_stream: self.log_stream.to_string(),
            ingestion_time_ms: self.ingestion_time_ms,
        }
    }
}
