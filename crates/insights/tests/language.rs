//! The parts of the language added for issue #16, each on the example query of AWS's own
//! documentation page for it: arithmetic on earlier `stats` aliases, `jsonParse` + `unnest`,
//! subqueries (`filter f in (SOURCE ... | ...)`), `SOURCE ... start= end=` with `logcompare`,
//! and `sortsFirst` / `sortsLast` in sort keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_insights::*;

const T0: i64 = 1_773_498_600_000; // 2026-03-14 14:30:00.000 UTC
const DAY: i64 = 86_400_000;

fn run(q: &str, events: &[LogEvent]) -> QueryResults {
    parse(q)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .evaluate(events, &EvalOptions::default())
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn col(r: &QueryResults, field: &str) -> Vec<String> {
    (0..r.rows.len())
        .map(|i| r.value(i, field).unwrap_or("<none>").to_string())
        .collect()
}

#[test]
fn stats_arithmetic_on_earlier_aliases_the_user_guides_overprovisioned_memory_query() {
    // From the Lambda section of the sample queries: how much memory is overprovisioned.
    let q = "filter @type = \"REPORT\" | stats max(@memorySize / 1000 / 1000) as provisonedMemoryMB, \
             min(@maxMemoryUsed / 1000 / 1000) as smallestMemoryRequestMB, \
             avg(@maxMemoryUsed / 1000 / 1000) as avgMemoryUsedMB, \
             max(@maxMemoryUsed / 1000 / 1000) as maxMemoryUsedMB, \
             provisonedMemoryMB - maxMemoryUsedMB as overProvisionedMB";
    let events: Vec<LogEvent> = [(128_000_000, 60_000_000), (128_000_000, 90_000_000)]
        .iter()
        .enumerate()
        .map(|(i, (size, used))| {
            LogEvent::new(
                T0 + i as i64,
                "/aws/lambda/f",
                "s",
                format!(r#"{{"@type":"REPORT","@memorySize":{size},"@maxMemoryUsed":{used}}}"#),
            )
        })
        .collect();
    let r = run(q, &events);
    assert_eq!(r.value(0, "provisonedMemoryMB"), Some("128"));
    assert_eq!(r.value(0, "maxMemoryUsedMB"), Some("90"));
    assert_eq!(r.value(0, "overProvisionedMB"), Some("38"));
    // A name that is no earlier alias is still an error, with its position.
    let e = parse("stats max(a) as x, y - x as z").unwrap_err();
    assert!(e.expected.contains("aggregate"), "{e}");
}

#[test]
fn json_parse_and_unnest_the_unnest_pages_examples() {
    let events = vec![LogEvent::new(
        T0,
        "g",
        "s",
        r#"{"events":[{"name":"exception"},{"name":"user action"}]}"#,
    )];
    let r = run(
        "fields jsonParse(@message) as json_message | unnest json_message.events into event | display event.name",
        &events,
    );
    assert_eq!(col(&r, "event.name"), ["exception", "user action"]);

    let accounts = vec![LogEvent::new(
        T0,
        "g",
        "s",
        r#"{"accounts":[{"id":"a","type":"internal"},{"id":"b","type":"external"},{"id":"c","type":"internal"}]}"#,
    )];
    let r = run(
        r#"fields jsonParse(@message) as js | unnest js.accounts into account | filter account.type = "internal" | display account.id"#,
        &accounts,
    );
    let mut ids = col(&r, "account.id");
    ids.sort();
    assert_eq!(ids, ["a", "c"]);

    // The aggregation example: unnest, then stats by a field of the element.
    let spans = vec![
        LogEvent::new(
            T0,
            "g",
            "s",
            r#"{"trimmedData":"[{\"accountId\":\"1\",\"droppedSpans\":3},{\"accountId\":\"2\",\"droppedSpans\":1}]"}"#,
        ),
        LogEvent::new(
            T0 + 1,
            "g",
            "s",
            r#"{"trimmedData":"[{\"accountId\":\"1\",\"droppedSpans\":4}]"}"#,
        ),
    ];
    let r = run(
        "fields jsonParse(trimmedData) as accounts | unnest accounts into account | stats sum(account.droppedSpans) as n by account.accountId | sort n desc | limit 10",
        &spans,
    );
    assert_eq!(col(&r, "account.accountId"), ["1", "2"]);
    assert_eq!(col(&r, "n"), ["7", "1"]);
}

#[test]
fn a_subquery_the_subqueries_pages_first_example() {
    let ev = |ms: i64, group: &str, msg: &str| LogEvent::new(T0 + ms, group, "s", msg);
    let events = vec![
        ev(
            0,
            "/aws/lambda/database-service",
            r#"{"requestId":"r1","errorType":"DatabaseConnectionTimeout"}"#,
        ),
        ev(
            1,
            "/aws/lambda/database-service",
            r#"{"requestId":"r2","errorType":"Throttled"}"#,
        ),
        ev(
            2,
            "/aws/lambda/api",
            r#"{"requestId":"r1","endpoint":"/orders","userId":"u1","responseTime":900}"#,
        ),
        ev(
            3,
            "/aws/lambda/api",
            r#"{"requestId":"r2","endpoint":"/orders","userId":"u2","responseTime":40}"#,
        ),
        ev(
            4,
            "/aws/lambda/api",
            r#"{"requestId":"r3","endpoint":"/cart","userId":"u3","responseTime":30}"#,
        ),
    ];
    let q = r#"filter requestId in (
    SOURCE '/aws/lambda/database-service'
    | filter errorType = "DatabaseConnectionTimeout"
    | fields requestId
)
| fields @timestamp, requestId, endpoint, userId, responseTime
| sort @timestamp desc"#;
    // The outer query reads the service's own group, as the console's log group selection does.
    let options = EvalOptions {
        log_groups: vec!["/aws/lambda/api".into()],
        ..EvalOptions::default()
    };
    let r = parse(q).unwrap().evaluate(&events, &options).unwrap();
    assert_eq!(col(&r, "userId"), ["u1"]);
    assert_eq!(col(&r, "endpoint"), ["/orders"]);
    // `not in` keeps the others (the database service's own lines have no endpoint).
    let r = run(
        r#"filter requestId not in (SOURCE '/aws/lambda/database-service' | filter errorType = "DatabaseConnectionTimeout" | fields requestId) | filter ispresent(endpoint) | sort userId | display userId"#,
        &events,
    );
    assert_eq!(r.statistics.records_scanned, 5);
    assert_eq!(col(&r, "userId"), ["u2", "u3"]);
    // Subqueries do not nest, as in CloudWatch.
    let e = parse("filter a in (filter b in (fields c) | fields a)").unwrap_err();
    assert!(e.expected.contains("do not nest"), "{e}");
}

#[test]
fn source_with_logcompare_the_logcompare_pages_example() {
    let now = T0;
    let mut events = Vec::new();
    // The last day: 3 errors and 1 info; the same day a week earlier: 1 error.
    for (ms, msg) in [
        (-3_600_000, "ERROR timeout 1"),
        (-7_200_000, "ERROR timeout 22"),
        (-60_000, "ERROR timeout 333"),
        (-1000, "INFO ok"),
    ] {
        events.push(LogEvent::new(now + ms, "lg", "s", msg));
    }
    events.push(LogEvent::new(now - 7 * DAY - 5000, "lg", "s", "ERROR timeout 4"));
    events.push(LogEvent::new(
        now - 3 * DAY,
        "lg",
        "s",
        "ERROR outside both windows",
    ));
    events.push(LogEvent::new(now - 60, "other", "s", "ERROR another group"));
    let q = parse("SOURCE lg start=-1d end=now | logcompare timeshift 7d").unwrap();
    let options = EvalOptions {
        end_ms: Some(now),
        ..EvalOptions::default()
    };
    let r = q.evaluate(&events, &options).unwrap();
    let row = |pattern: &str| {
        (0..r.rows.len())
            .find(|i| r.value(*i, "@pattern") == Some(pattern))
            .unwrap_or_else(|| panic!("no row {pattern}: {:?}", r.rows))
    };
    let errors = row("ERROR timeout <*>");
    assert_eq!(r.value(errors, "count"), Some("3"));
    assert_eq!(r.value(errors, "count_baseline"), Some("1"));
    assert_eq!(r.value(errors, "count_change"), Some("2"));
    let info = row("INFO ok");
    assert_eq!(r.value(info, "count_baseline"), None);
    assert_eq!(r.value(info, "count_change"), Some("1"));
    assert_eq!(r.rows.len(), 2);

    // With stats, rows pair up by their `by` keys.
    let q = parse("SOURCE lg start=-1d end=now | stats count() as n by substr(@message, 0, 5) as level | logcompare timeshift 7d").unwrap();
    let r = q.evaluate(&events, &options).unwrap();
    assert_eq!(col(&r, "level"), ["ERROR", "INFO "]);
    assert_eq!(col(&r, "n_baseline"), ["1", "<none>"]);
    // logcompare must be last.
    let e = parse("SOURCE lg | logcompare timeshift 7d | limit 1")
        .unwrap()
        .check_local()
        .unwrap_err();
    assert!(e.to_string().contains("last command"), "{e}");
}

#[test]
fn sorts_first_and_sorts_last_place_missing_values() {
    let events: Vec<LogEvent> = ["{\"p\":2}", "{}", "{\"p\":1}"]
        .iter()
        .enumerate()
        .map(|(i, m)| LogEvent::new(T0 + i as i64, "g", "s", *m))
        .collect();
    let r = run("fields p | sort sortsFirst(p) asc", &events);
    assert_eq!(col(&r, "p"), ["<none>", "1", "2"]);
    let r = run("fields p | sort sortsLast(p) desc", &events);
    assert_eq!(col(&r, "p"), ["2", "1", "<none>"]);
}
