//! CloudWatch Logs: [`InsightsLogQueries`] runs Logs Insights queries (the [`LogQueries`] port)
//! under each request's deadline; [`FilterLogEventsFetcher`] pulls raw events for the local
//! evaluation fallback.

use crate::error::port_error;
use aws_sdk_cloudwatchlogs::operation::start_query::StartQueryError;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use firebreak_core::ports::{
    LogQueries, PortError, QueryError, QueryOutput, QueryRequest, QueryStatistics, ResultField,
};
use std::time::Duration;
use tokio::time::Instant;

/// How [`InsightsLogQueries`] waits: polls of GetQueryResults start at `poll_first` and double up
/// to `poll_max`; a StartQuery refused for the concurrency limit or throttled is retried after
/// `retry_first`, doubling up to `retry_max`. Every wait is cut short by the request's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    pub poll_first: Duration,
    pub poll_max: Duration,
    pub retry_first: Duration,
    pub retry_max: Duration,
}

impl Default for PollSchedule {
    fn default() -> Self {
        PollSchedule {
            poll_first: Duration::from_millis(100),
            poll_max: Duration::from_secs(1),
            retry_first: Duration::from_millis(200),
            retry_max: Duration::from_secs(2),
        }
    }
}

fn log_groups(
    req: aws_sdk_cloudwatchlogs::operation::start_query::builders::StartQueryFluentBuilder,
    groups: &[String],
) -> aws_sdk_cloudwatchlogs::operation::start_query::builders::StartQueryFluentBuilder {
    // ARNs go in logGroupIdentifiers (which takes names too); plain names in logGroupNames.
    if groups.iter().any(|g| g.starts_with("arn:")) {
        req.set_log_group_identifiers(Some(groups.to_vec()))
    } else {
        req.set_log_group_names(Some(groups.to_vec()))
    }
}

/// The exception's own message, else the one in its metadata, else `fallback`.
fn message_of(own: Option<&str>, meta: &impl ProvideErrorMetadata, fallback: &str) -> String {
    own.or(meta.message()).unwrap_or(fallback).to_string()
}

/// Runs queries in CloudWatch Logs Insights.
#[derive(Debug, Clone)]
pub struct InsightsLogQueries {
    client: aws_sdk_cloudwatchlogs::Client,
    schedule: PollSchedule,
}

impl InsightsLogQueries {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client) -> InsightsLogQueries {
        InsightsLogQueries::with_schedule(client, PollSchedule::default())
    }

    pub fn with_schedule(
        client: aws_sdk_cloudwatchlogs::Client,
        schedule: PollSchedule,
    ) -> InsightsLogQueries {
        InsightsLogQueries { client, schedule }
    }

    /// StartQuery, retried on LimitExceeded and throttling while the deadline allows.
    async fn start(&self, request: &QueryRequest, deadline: Instant) -> Result<String, QueryError> {
        const OP: &str = "Logs StartQuery";
        let mut backoff = self.schedule.retry_first;
        loop {
            let req = self
                .client
                .start_query()
                .query_string(&request.query)
                .start_time(request.start.timestamp())
                .end_time(request.end.timestamp());
            let err = match log_groups(req, &request.log_groups).send().await {
                Ok(out) => {
                    return out.query_id.ok_or_else(|| {
                        QueryError::Port(PortError::new(OP, "the response has no queryId", false))
                    })
                }
                Err(e) => e,
            };
            let waitable = match err.as_service_error() {
                Some(StartQueryError::MalformedQueryException(e)) => {
                    return Err(QueryError::Invalid(message_of(e.message(), e, "malformed query")))
                }
                Some(StartQueryError::InvalidParameterException(e)) => {
                    return Err(QueryError::Invalid(message_of(
                        e.message(),
                        e,
                        "invalid parameter",
                    )))
                }
                Some(StartQueryError::ResourceNotFoundException(e)) => {
                    return Err(QueryError::Failed(message_of(
                        e.message(),
                        e,
                        "log group not found",
                    )))
                }
                Some(StartQueryError::LimitExceededException(_)) => true,
                _ => port_error(OP, &err).retryable,
            };
            if !waitable {
                return Err(QueryError::Port(port_error(OP, &err)));
            }
            if Instant::now() + backoff >= deadline {
                tracing::warn!(query = %request.name, code = ?err.code(), "StartQuery kept failing until the deadline");
                return Err(QueryError::Timeout(request.deadline));
            }
            tracing::debug!(query = %request.name, code = ?err.code(), backoff_ms = backoff.as_millis() as u64, "StartQuery retry");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.schedule.retry_max);
        }
    }

    async fn stop(&self, query_id: &str) {
        if let Err(e) = self.client.stop_query().query_id(query_id).send().await {
            // The query may have finished meanwhile; either way the caller gets Timeout.
            tracing::warn!(query_id, code = ?e.code(), "StopQuery failed");
        }
    }
}

fn output(out: &aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput) -> QueryOutput {
    let rows = out
        .results()
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|f| {
                    let field = f.field()?;
                    (field != "@ptr").then(|| ResultField {
                        field: field.to_string(),
                        value: f.value().unwrap_or_default().to_string(),
                    })
                })
                .collect()
        })
        .collect();
    let statistics = out
        .statistics()
        .map(|s| QueryStatistics {
            records_matched: s.records_matched(),
            records_scanned: s.records_scanned(),
            bytes_scanned: s.bytes_scanned(),
        })
        .unwrap_or_default();
    QueryOutput { rows, statistics }
}

impl LogQueries for InsightsLogQueries {
    #[tracing::instrument(skip(self, request), fields(query = %request.name))]
    async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        const OP: &str = "Logs GetQueryResults";
        let deadline = Instant::now() + request.deadline;
        let query_id = self.start(request, deadline).await?;
        let mut interval = self.schedule.poll_first;
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.stop(&query_id).await;
                return Err(QueryError::Timeout(request.deadline));
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(self.schedule.poll_max);
            let out = match self.client.get_query_results().query_id(&query_id).send().await {
                Ok(out) => out,
                Err(e) => {
                    let p = port_error(OP, &e);
                    if p.retryable {
                        // Throttled or a blip: the growing interval is the backoff.
                        tracing::debug!(code = ?p.code, "GetQueryResults retry");
                        continue;
                    }
                    // Do not leave the query holding one of the account's concurrent slots.
                    self.stop(&query_id).await;
                    return Err(QueryError::Port(p));
                }
            };
            match out.status() {
                Some(QueryStatus::Complete) => return Ok(output(&out)),
                Some(s @ (QueryStatus::Failed | QueryStatus::Cancelled | QueryStatus::Timeout)) => {
                    return Err(QueryError::Failed(format!(
                        "query {query_id} ended with status {}",
                        s.as_str()
                    )))
                }
                _ => {}
            }
        }
    }
}

/// One raw log event, as FilterLogEvents returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedEvent {
    pub group: String,
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: Option<i64>,
    pub message: String,
}

/// Why events could not be fetched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// More events than the fetcher may hold: the local evaluation would be partial.
    #[error("log group {group} has more than {limit} events in the window; narrow the window or the groups")]
    TooManyEvents { group: String, limit: usize },
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<FetchError> for QueryError {
    fn from(e: FetchError) -> QueryError {
        match e {
            FetchError::TooManyEvents { .. } => QueryError::Failed(e.to_string()),
            FetchError::Port(p) => QueryError::Port(p),
        }
    }
}

/// One FilterLogEvents page of `group` (a name, or an ARN as `logGroupIdentifier`) in
/// `[start, end]`, at most `limit` events, after `token`: the one request both the diagnosis's
/// fetcher and `drill record`'s recorder page with.
pub(crate) async fn filter_page(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    limit: usize,
    token: Option<String>,
) -> Result<aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput, PortError> {
    const OP: &str = "Logs FilterLogEvents";
    let req = client
        .filter_log_events()
        .start_time(start.timestamp_millis())
        .end_time(end.timestamp_millis())
        .limit(i32::try_from(limit.min(10_000)).unwrap_or(10_000))
        .set_next_token(token);
    let req = if group.starts_with("arn:") {
        req.log_group_identifier(group)
    } else {
        req.log_group_name(group)
    };
    req.send().await.map_err(|e| port_error(OP, &e))
}

/// The token to send for the group's next page, `None` at its end. Pages may be empty while
/// more events follow; the end is a missing token or the token just sent coming back (`prev`).
pub(crate) fn next_page(next_token: Option<String>, prev: &mut Option<String>) -> Option<String> {
    match next_token {
        Some(t) if !t.is_empty() && prev.as_deref() != Some(t.as_str()) => {
            *prev = Some(t.clone());
            Some(t)
        }
        _ => None,
    }
}

/// Pulls the raw events of log groups with FilterLogEvents, up to `max_events` in all.
#[derive(Debug, Clone)]
pub struct FilterLogEventsFetcher {
    client: aws_sdk_cloudwatchlogs::Client,
    max_events: usize,
}

impl FilterLogEventsFetcher {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client, max_events: usize) -> FilterLogEventsFetcher {
        FilterLogEventsFetcher { client, max_events }
    }

    /// Every event of `groups` with a timestamp in `[start, end]`, ordered by timestamp (then
    /// group, stream, arrival).
    ///
    /// # Errors
    /// [`FetchError::TooManyEvents`] past `max_events`; [`FetchError::Port`] when a call fails.
    pub async fn fetch(
        &self,
        groups: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<FetchedEvent>, FetchError> {
        let mut out: Vec<FetchedEvent> = Vec::new();
        for group in groups {
            let mut token: Option<String> = None;
            let mut prev: Option<String> = None;
            loop {
                // Ask for one more than room remains, to tell "exactly full" from "too many".
                let room = self.max_events.saturating_sub(out.len()).saturating_add(1);
                let page = filter_page(&self.client, group, (start, end), room, token.take()).await?;
                for e in page.events() {
                    if out.len() >= self.max_events {
                        return Err(FetchError::TooManyEvents {
                            group: group.clone(),
                            limit: self.max_events,
                        });
                    }
                    out.push(FetchedEvent {
                        group: group.clone(),
                        stream: e.log_stream_name().unwrap_or_default().to_string(),
                        timestamp_ms: e.timestamp().unwrap_or_default(),
                        ingestion_ms: e.ingestion_time(),
                        message: e.message().unwrap_or_default().to_string(),
                    });
                }
                token = next_page(page.next_token, &mut prev);
                if token.is_none() {
                    break;
                }
            }
        }
        out.sort_by_key(|e| e.timestamp_ms);
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

/// The local-evaluation fallback: pulls the raw events of the request's log groups and window
/// with FilterLogEvents and evaluates the query with the firebreak-insights engine. Used against
/// the emulator (whose Logs Insights neither filters nor aggregates) and, configured with
/// `DIAGNOSIS_BACKEND=local`, for small windows in AWS.
#[derive(Debug, Clone)]
pub struct FetchingLogQueries {
    fetcher: FilterLogEventsFetcher,
}

impl FetchingLogQueries {
    pub fn new(fetcher: FilterLogEventsFetcher) -> FetchingLogQueries {
        FetchingLogQueries { fetcher }
    }
}

impl LogQueries for FetchingLogQueries {
    async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        // Refuse a query the engine cannot evaluate before paying for the fetch.
        let query = firebreak_insights::parse(&request.query)
            .map_err(|e| QueryError::Invalid(format!("{}: {e}", request.name)))?;
        query
            .check_local()
            .map_err(|e| QueryError::Failed(format!("{}: {e}", request.name)))?;
        let fetched = tokio::time::timeout(
            request.deadline,
            self.fetcher
                .fetch(&request.log_groups, request.start, request.end),
        )
        .await
        .map_err(|_| QueryError::Timeout(request.deadline))??;
        let events = fetched
            .into_iter()
            .map(|e| firebreak_insights::LogEvent {
                timestamp_ms: e.timestamp_ms,
                message: e.message,
                log_group: e.group,
                log_stream: e.stream,
                ingestion_time_ms: e.ingestion_ms,
            })
            .collect();
        firebreak_core::adapters::local_logs::LocalLogQueries::new(events).run_now(request)
    }
}
