//! `LocalLogQueries`: the `LogQueries` port over in-memory events, evaluated by the local Logs
//! Insights engine (`firebreak-insights`). Used by drills and as diagnose's fallback where
//! Logs Insights cannot filter or aggregate (the local emulator).

use crate::ports::{LogQueries, QueryError, QueryOutput, QueryRequest, QueryStatistics, ResultField};
use firebreak_insights::{EvalError, EvalOptions, LogEvent};
use std::sync::RwLock;

/// Log events held in memory, queried as CloudWatch Logs Insights would.
#[derive(Debug, Default)]
pub struct LocalLogQueries {
    events: RwLock<Vec<LogEvent>>,
}

impl LocalLogQueries {
    pub fn new(events: Vec<LogEvent>) -> LocalLogQueries {
        LocalLogQueries {
            events: RwLock::new(events),
        }
    }

    pub fn add(&self, event: LogEvent) {
        self.write().push(event);
    }

    pub fn extend(&self, events: impl IntoIterator<Item = LogEvent>) {
        self.write().extend(events);
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<LogEvent>> {
        // A writer that panicked left a fully pushed or untouched Vec: still consistent.
        self.events
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<LogEvent>> {
        self.events
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `request` now (the port's `run` without the future).
    ///
    /// # Errors
    /// [`QueryError::Invalid`] when the query does not parse or cannot mean anything;
    /// [`QueryError::Failed`] when it uses commands only CloudWatch runs.
    pub fn run_now(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        let query = firebreak_insights::parse(&request.query)
            .map_err(|e| QueryError::Invalid(format!("{}: {e}", request.name)))?;
        let options = EvalOptions {
            start_ms: Some(request.start.timestamp_millis()),
            end_ms: Some(request.end.timestamp_millis()),
            log_groups: request.log_groups.clone(),
            account_id: None,
        };
        let events = self.read();
        let results = query.evaluate(events.iter(), &options).map_err(|e| match e {
            EvalError::Unsupported(u) => QueryError::Failed(format!(
                "{}: the local Logs Insights engine cannot run this query: {u}",
                request.name
            )),
            EvalError::Invalid(m) => QueryError::Invalid(format!("{}: {m}", request.name)),
        })?;
        Ok(QueryOutput {
            rows: results
                .rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|f| ResultField {
                            field: f.field,
                            value: f.value,
                        })
                        .collect()
                })
                .collect(),
            statistics: QueryStatistics {
                records_matched: results.statistics.records_matched as f64,
                records_scanned: results.statistics.records_scanned as f64,
                bytes_scanned: results.statistics.bytes_scanned as f64,
            },
        })
    }
}

impl LogQueries for LocalLogQueries {
    async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        self.run_now(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn event(t: &str, group: &str, msg: &str) -> LogEvent {
        LogEvent::new(at(t).timestamp_millis(), group, "s", msg)
    }

    fn request(query: &str, groups: &[&str], start: &str, end: &str) -> QueryRequest {
        QueryRequest {
            name: "errors".into(),
            log_groups: groups.iter().map(|g| g.to_string()).collect(),
            query: query.into(),
            start: at(start),
            end: at(end),
            deadline: Duration::from_secs(30),
        }
    }

    fn store() -> LocalLogQueries {
        let logs = LocalLogQueries::new(vec![
            event("2026-03-14T14:29:59Z", "/ecs/articles", "ERROR before the window"),
            event("2026-03-14T14:30:00Z", "/ecs/articles", "ERROR pool exhausted"),
        ]);
        logs.add(event(
            "2026-03-14T14:35:00Z",
            "/ecs/articles",
            "ERROR pool exhausted",
        ));
        logs.extend([
            event("2026-03-14T14:31:00Z", "/ecs/users", "ERROR other service"),
            event("2026-03-14T14:35:00Z", "/ecs/articles", "INFO fine"),
        ]);
        logs
    }

    #[tokio::test]
    async fn counts_only_the_requested_groups_within_the_inclusive_window() {
        let out = store()
            .run(&request(
                "filter @message like /ERROR/ | stats count() as n",
                &["/ecs/articles"],
                "2026-03-14T14:30:00Z",
                "2026-03-14T14:35:00Z",
            ))
            .await
            .unwrap();
        assert_eq!(
            out.rows,
            vec![vec![ResultField {
                field: "n".into(),
                value: "2".into()
            }]]
        );
        assert_eq!(out.statistics.records_scanned, 3.0);
        assert_eq!(out.statistics.records_matched, 2.0);
    }

    #[tokio::test]
    async fn an_empty_group_list_queries_every_group() {
        let out = store()
            .run(&request(
                "filter @message like /ERROR/ | stats count() as n",
                &[],
                "2026-03-14T14:00:00Z",
                "2026-03-14T15:00:00Z",
            ))
            .await
            .unwrap();
        assert_eq!(out.rows[0][0].value, "4");
    }

    #[tokio::test]
    async fn a_typo_is_an_invalid_query_naming_line_and_column() {
        let err = store()
            .run(&request(
                "filter @message lik /x/",
                &[],
                "2026-03-14T14:00:00Z",
                "2026-03-14T15:00:00Z",
            ))
            .await
            .unwrap_err();
        match err {
            QueryError::Invalid(m) => assert!(m.contains("errors: line 1, column 17"), "{m}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn commands_only_cloudwatch_runs_fail_with_the_command_named() {
        let err = store()
            .run(&request(
                "pattern @message",
                &[],
                "2026-03-14T14:00:00Z",
                "2026-03-14T15:00:00Z",
            ))
            .await
            .unwrap_err();
        match err {
            QueryError::Failed(m) => assert!(m.contains("`pattern`"), "{m}"),
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
