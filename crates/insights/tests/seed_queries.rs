//! The seed incident's runbook queries (seed/incident-response.txt) over a hand-made fixture:
//! the expected rows are worked out by hand in the comments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_insights::{parse, EvalOptions, LogEvent, QueryResults};

const T0: i64 = 1_773_498_600_000; // 2026-03-14 14:30:00.000 UTC

fn ev(offset_s: i64, msg: &str) -> LogEvent {
    LogEvent::new(T0 + offset_s * 1000, "/ecs/articles-api", "web/1", msg)
}

fn fixture() -> Vec<LogEvent> {
    vec![
        ev(-300, "GET /articles/1 200 12ms"),           // 14:25:00
        ev(-60, "acquired database connection in 3ms"), // 14:29:00
        ev(10, "acquired database connection in 40ms"), // 14:30:10
        ev(20, "acquired database connection in 90ms"), // 14:30:20
        ev(
            120,
            "GET /articles/7 500 ERROR DatabaseError: connection pool exhausted, max_connections=10",
        ), // 14:32:00
        ev(130, "GET /users/3 500 ERROR timeout"),      // 14:32:10
        ev(200, "waiting for database connection"),     // 14:33:20
        ev(310, "GET /articles/9 500 Exception in thread main"), // 14:35:10
        ev(320, "GET /articles/9 200 8ms"),             // 14:35:20
    ]
}

fn run(q: &str) -> QueryResults {
    parse(q)
        .unwrap()
        .evaluate(fixture(), &EvalOptions::default())
        .unwrap()
}

fn col(r: &QueryResults, field: &str) -> Vec<String> {
    (0..r.rows.len())
        .map(|i| r.value(i, field).unwrap_or("<none>").to_string())
        .collect()
}

#[test]
fn step1_confirm_500s_on_articles_newest_first() {
    let r = run("fields @timestamp, @message\n| filter @message like /500/\n| filter @message like /articles/\n| sort @timestamp desc\n| limit 50");
    assert_eq!(
        col(&r, "@timestamp"),
        ["2026-03-14 14:35:10.000", "2026-03-14 14:32:00.000"]
    );
    assert_eq!(r.statistics.records_scanned, 9);
    assert_eq!(r.statistics.records_matched, 2);
    let fields: Vec<&str> = r.rows[0].iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["@timestamp", "@message", "@ptr"]);
}

#[test]
fn step2_errors_or_exceptions_on_articles() {
    let r = run("fields @timestamp, @message\n| filter @message like /ERROR/ or @message like /Exception/\n| filter @message like /articles/\n| sort @timestamp desc");
    assert_eq!(
        col(&r, "@message"),
        [
            "GET /articles/9 500 Exception in thread main",
            "GET /articles/7 500 ERROR DatabaseError: connection pool exhausted, max_connections=10"
        ]
    );
}

#[test]
fn step3_connection_messages_per_five_minutes() {
    // "database connection" at 14:29:00 (bin 14:25), 14:30:10 and 14:30:20 (bin 14:30),
    // 14:33:20 (bin 14:30).
    let r = run("fields @timestamp, @message\n| filter @message like /database connection/\n| stats count() by bin(5m)");
    assert_eq!(
        col(&r, "bin(5m)"),
        ["2026-03-14 14:25:00.000", "2026-03-14 14:30:00.000"]
    );
    assert_eq!(col(&r, "count()"), ["1", "3"]);
    let fields: Vec<&str> = r.rows[0].iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["bin(5m)", "count()"]);
}
