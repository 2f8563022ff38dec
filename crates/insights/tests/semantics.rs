//! Query semantics on examples from AWS's Logs Insights documentation, over small fixtures
//! whose expected results are worked out by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_insights::*;

const T0: i64 = 1_773_498_600_000; // 2026-03-14 14:30:00.000 UTC

fn ev(ms: i64, stream: &str, msg: &str) -> LogEvent {
    LogEvent::new(T0 + ms, "/ecs/app", stream, msg)
}

fn run(q: &str, events: &[LogEvent]) -> QueryResults {
    parse(q)
        .unwrap()
        .evaluate(events, &EvalOptions::default())
        .unwrap()
}

fn col(r: &QueryResults, field: &str) -> Vec<String> {
    (0..r.rows.len())
        .map(|i| r.value(i, field).unwrap_or("<none>").to_string())
        .collect()
}

fn json_events() -> Vec<LogEvent> {
    vec![
        ev(
            0,
            "a",
            r#"{"status":200,"latency":10,"user":{"id":"u1"},"tags":["x","y"],"ip":"10.0.0.5"}"#,
        ),
        ev(
            1000,
            "a",
            r#"{"status":500,"latency":250,"user":{"id":"u2"},"tags":["z"],"ip":"192.168.1.9"}"#,
        ),
        ev(
            2000,
            "b",
            r#"{"status":500,"latency":40.5,"user":{"id":"u1"},"ip":"not-an-ip"}"#,
        ),
        ev(3000, "b", "plain text line with latency=7ms"),
    ]
}

#[test]
fn json_fields_are_discovered_with_dots_and_array_indexes() {
    let r = run(
        "filter user.id = \"u1\" and tags.0 = \"x\" | fields status, tags.1",
        &json_events(),
    );
    assert_eq!(r.rows.len(), 1);
    assert_eq!(r.value(0, "status"), Some("200"));
    assert_eq!(r.value(0, "tags.1"), Some("y"));
}

#[test]
fn filter_on_a_missing_field_is_false_even_negated_comparisons() {
    let r = run("filter status != 200 | fields @message", &json_events());
    // Two 500s; the plain-text line has no status and does not match `!=`.
    assert_eq!(r.rows.len(), 2);
}

#[test]
fn numbers_compare_numerically_and_render_without_trailing_zero() {
    let r = run(
        "filter latency > 39 | stats sum(latency) as s, avg(latency) as a, max(latency) as m",
        &json_events(),
    );
    // 250 and 40.5: sum 290.5, avg 145.25, max 250.
    assert_eq!(col(&r, "s"), ["290.5"]);
    assert_eq!(col(&r, "a"), ["145.25"]);
    assert_eq!(col(&r, "m"), ["250"]);
}

#[test]
fn stats_by_field_with_count_distinct_and_default_column_names() {
    let r = run(
        "stats count(*), count(status), count_distinct(user.id) by @logStream",
        &json_events(),
    );
    assert_eq!(col(&r, "@logStream"), ["a", "b"]);
    assert_eq!(col(&r, "count(*)"), ["2", "2"]);
    assert_eq!(col(&r, "count(status)"), ["2", "1"]);
    assert_eq!(col(&r, "count_distinct(user.id)"), ["2", "1"]);
}

#[test]
fn sort_by_a_stats_column_and_several_keys() {
    let events = vec![
        ev(0, "a", "x"),
        ev(1, "b", "x"),
        ev(2, "b", "x"),
        ev(3, "c", "x"),
        ev(4, "c", "x"),
    ];
    let r = run(
        "stats count(*) by @logStream | sort count(*) desc, @logStream asc",
        &events,
    );
    assert_eq!(col(&r, "@logStream"), ["b", "c", "a"]);
}

#[test]
fn pct_is_nearest_rank_and_stddev_is_the_sample_deviation() {
    let events: Vec<LogEvent> = (1..=10)
        .map(|i| ev(i, "s", &format!("latency={}ms", i * 10)))
        .collect();
    let r = run(
        "parse @message \"latency=*ms\" as latency | stats pct(latency, 50) as p50, pct(latency, 99) as p99, stddev(latency) as sd, min(latency) as lo",
        &events,
    );
    // 10..100: p50 is the 5th value, p99 the 10th; sample stddev of 10,20..100 = 30.2765...
    assert_eq!(col(&r, "p50"), ["50"]);
    assert_eq!(col(&r, "p99"), ["100"]);
    assert!(r.value(0, "sd").unwrap().starts_with("30.276"));
    assert_eq!(col(&r, "lo"), ["10"]);
}

#[test]
fn parse_glob_and_regex_forms_from_the_docs() {
    let events = vec![
        ev(0, "s", "2026 [ERROR] disk full"),
        ev(1, "s", "eni-0abc 10.0.0.1 ACCEPT"),
    ];
    let r = run("parse @message \"[*] *\" as loggingType, loggingMessage | filter loggingType = \"ERROR\" | display loggingMessage", &events);
    // Rows of queries without stats end with @ptr, as GetQueryResults' do.
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        r.rows[0][0],
        ResultField {
            field: "loggingMessage".into(),
            value: "disk full".into()
        }
    );
    assert_eq!(r.rows[0][1].field, "@ptr");
    let r = run("parse @message /(?<NetworkInterface>eni-.*?) / | filter ispresent(NetworkInterface) | display NetworkInterface", &events);
    assert_eq!(col(&r, "NetworkInterface"), ["eni-0abc"]);
}

#[test]
fn like_with_a_string_is_a_case_sensitive_substring_and_regex_honours_i_flag() {
    let events = vec![ev(0, "s", "Error: a"), ev(1, "s", "ERROR: b"), ev(2, "s", "fine")];
    assert_eq!(run("filter @message like \"Error\"", &events).rows.len(), 1);
    assert_eq!(run("filter @message like /(?i)error/", &events).rows.len(), 2);
    assert_eq!(run("filter @message =~ /^ERROR/", &events).rows.len(), 1);
    // "ERROR: b" has no lower-case "rror".
    assert_eq!(run("filter @message not like /rror/", &events).rows.len(), 2);
}

#[test]
fn in_lists_arithmetic_and_functions() {
    let r = run(
        "filter status in [500, 503] and not @logStream in [\"b\"] | fields latency * 2 + 1 as x, toupper(user.id) as u, concat(user.id, \"-\", status) as c, strlen(@logStream) as n, isValidIpV4(ip) as v4, isIpInSubnet(ip, \"192.168.0.0/16\") as sub",
        &json_events(),
    );
    assert_eq!(r.rows.len(), 1);
    for (f, v) in [
        ("x", "501"),
        ("u", "U2"),
        ("c", "u2-500"),
        ("n", "1"),
        ("v4", "1"),
        ("sub", "1"),
    ] {
        assert_eq!(r.value(0, f), Some(v), "{f}");
    }
}

#[test]
fn default_order_is_newest_first_and_limit_keeps_the_newest() {
    let events: Vec<LogEvent> = (0..5).map(|i| ev(i * 1000, "s", &format!("m{i}"))).collect();
    let r = run("fields @message | limit 2", &events);
    assert_eq!(col(&r, "@message"), ["m4", "m3"]);
}

#[test]
fn the_default_limit_is_ten_thousand_rows() {
    let events: Vec<LogEvent> = (0..10_050).map(|i| ev(i, "s", "x")).collect();
    let r = run("fields @timestamp, @message", &events);
    assert_eq!(r.rows.len(), DEFAULT_LIMIT);
    assert_eq!(r.statistics.records_scanned, 10_050);
    assert_eq!(
        r.rows[0].iter().find(|f| f.field == "@timestamp").unwrap().value,
        "2026-03-14 14:30:10.049"
    );
}

#[test]
fn dedup_keeps_the_first_row_per_value_in_sort_order() {
    // The plain-text line has no status: rows missing a dedup field are kept, so leave it out.
    let r = run(
        "fields status, @timestamp | sort @timestamp desc | dedup status",
        &json_events()[..3],
    );
    assert_eq!(col(&r, "status"), ["500", "200"]);
    assert_eq!(
        col(&r, "@timestamp"),
        ["2026-03-14 14:30:02.000", "2026-03-14 14:30:00.000"]
    );
}

#[test]
fn two_stats_commands_aggregate_the_first_ones_rows() {
    let events = vec![
        ev(0, "a", "x"),
        ev(1, "a", "x"),
        ev(2, "b", "x"),
        ev(301_000, "a", "x"),
    ];
    let r = run(
        "stats count(*) as n by @logStream, bin(5m) as t | stats avg(n) as mean, max(n) as most",
        &events,
    );
    // Groups: (a,14:30)=2, (b,14:30)=1, (a,14:35)=1 -> mean 1.333..., max 2.
    assert_eq!(col(&r, "most"), ["2"]);
    assert!(r.value(0, "mean").unwrap().starts_with("1.333"));
}

#[test]
fn earliest_latest_and_time_functions() {
    let r = run(
        "stats earliest(status) as first, latest(status) as last, max(@timestamp) as newest, count() as n",
        &json_events()[..3],
    );
    assert_eq!(col(&r, "first"), ["200"]);
    assert_eq!(col(&r, "last"), ["500"]);
    assert_eq!(col(&r, "newest"), ["2026-03-14 14:30:02.000"]);
    let r = run(
        "fields datefloor(@timestamp, 1h) as h, dateceil(@timestamp, 1h) as c, toMillis(@timestamp) as ms, fromMillis(0) as epoch | limit 1",
        &[ev(61_000, "s", "x")],
    );
    assert_eq!(r.value(0, "h"), Some("2026-03-14 14:00:00.000"));
    assert_eq!(r.value(0, "c"), Some("2026-03-14 15:00:00.000"));
    assert_eq!(r.value(0, "ms"), Some("1773498661000"));
    assert_eq!(r.value(0, "epoch"), Some("1970-01-01 00:00:00.000"));
}

#[test]
fn stats_without_by_over_nothing_gives_a_zero_count() {
    let r = run(
        "filter @message like /nothing/ | stats count() as n",
        &json_events(),
    );
    assert_eq!(col(&r, "n"), ["0"]);
    assert_eq!(r.statistics.records_matched, 0);
}

#[test]
fn options_bound_time_inclusively_and_select_log_groups() {
    let mut events = json_events();
    events.push(LogEvent::new(T0, "/other", "s", "x"));
    let q = parse("stats count() as n").unwrap();
    let opts = EvalOptions {
        start_ms: Some(T0 + 1000),
        end_ms: Some(T0 + 2000),
        log_groups: vec!["/ecs/app".into()],
        account_id: None,
    };
    let r = q.evaluate(&events, &opts).unwrap();
    assert_eq!(col(&r, "n"), ["2"]);
    assert_eq!(r.statistics.records_scanned, 2);
}

#[test]
fn comments_backticks_and_case_insensitive_keywords() {
    let events = vec![LogEvent::new(T0, "g", "s", r#"{"my field":"v"}"#)];
    let r = run(
        "# find it\nFIELDS `my field` AS f # trailing\n| FILTER f LIKE 'v' | SORT f DESC | LIMIT 1",
        &events,
    );
    assert_eq!(col(&r, "f"), ["v"]);
}

#[test]
fn parse_errors_name_line_column_and_what_was_expected() {
    let e = parse("fields @message\n| filter status = ").unwrap_err();
    assert_eq!((e.line, e.column), (2, 19));
    assert_eq!(
        e.to_string(),
        "line 2, column 19: expected a field, a value, a function call or `(`, found end of query"
    );
    let e = parse("fields @message | stat count()").unwrap_err();
    assert_eq!((e.line, e.column), (1, 19));
    assert!(e.expected.starts_with("a command"), "{e}");
    let e = parse("filter x like /(/").unwrap_err();
    assert!(e.expected.contains("valid regular expression"), "{e}");
    let e = parse("filter nosuch(x)").unwrap_err();
    assert_eq!(e.found, "`nosuch(`");
    let e = parse("fields count()").unwrap_err();
    assert!(e.expected.contains("scalar function"), "{e}");
    let e = parse("stats count() by bin(5x)").unwrap_err();
    assert!(e.expected.contains("unit"), "{e}");
    let e = parse("stats count() | stats count() | stats count()").unwrap_err();
    assert!(e.expected.contains("at most two stats"), "{e}");
}

#[test]
fn cloudwatch_only_commands_are_parsed_and_reported_never_misread() {
    let q = parse("SOURCE logGroups(namePrefix: [\"/ecs\"]) | filter x = 1 | pattern @message | anomaly | diff | unmask(@message) | filterIndex region = 'us'").unwrap();
    let names: Vec<&str> = q.unsupported_commands().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        ["SOURCE", "pattern", "anomaly", "diff", "unmask", "filterIndex"]
    );
    let err = q.validate_local().unwrap_err();
    assert!(
        err.to_string().contains("`pattern` runs only in CloudWatch"),
        "{err}"
    );
    assert!(matches!(
        q.evaluate(Vec::<LogEvent>::new(), &EvalOptions::default()),
        Err(EvalError::Unsupported(_))
    ));
}

#[test]
fn escaped_literals_stay_literals() {
    let evil = "x/ | stats count() by @message \" \\ (?i) .*";
    let q = parse(&format!(
        "filter @message like {} | stats count() as n",
        escape_regex_literal(evil)
    ))
    .unwrap();
    assert_eq!(q.commands.len(), 2);
    let events = vec![
        ev(0, "s", &format!("pre {evil} post")),
        ev(1, "s", "x/ anything else"),
    ];
    let r = q.evaluate(&events, &EvalOptions::default()).unwrap();
    assert_eq!(col(&r, "n"), ["1"]);
    let q = parse(&format!(
        "filter @logStream = {} | stats count() as n",
        escape_string_literal(evil)
    ))
    .unwrap();
    assert_eq!(q.commands.len(), 2);
    let r = q
        .evaluate(&[ev(0, evil, "m"), ev(1, "other", "m")], &EvalOptions::default())
        .unwrap();
    assert_eq!(col(&r, "n"), ["1"]);
    let r = parse(&format!(
        "filter @message like {}",
        escape_string_literal("a\"b\nc")
    ))
    .unwrap();
    assert_eq!(r.commands.len(), 1);
}

#[test]
fn reader_handles_drill_json_and_text_and_names_bad_lines() {
    let drill = concat!(
        r#"{"group":"g","stream":"s","timestamp":"2026-03-14T14:30:00Z","message":"a \"quoted\" one"}"#,
        "\n\n",
        r#"{"timestamp":1773498600001,"message":"no group"}"#,
        "\n",
        r#"{"group":"g","timestamp":"yesterday","message":"m"}"#,
        "\n"
    );
    let items: Vec<Result<LogEvent, ReadError>> = read_events(drill.as_bytes(), "drill.jsonl").collect();
    let first = items[0].as_ref().unwrap();
    assert_eq!(
        (first.timestamp_ms, first.message.as_str()),
        (T0, "a \"quoted\" one")
    );
    let second = items[1].as_ref().unwrap();
    assert_eq!(
        (second.log_group.as_str(), second.timestamp_ms),
        ("drill.jsonl", T0 + 1)
    );
    let err = items[2].as_ref().unwrap_err();
    assert_eq!((err.source_name.as_str(), err.line), ("drill.jsonl", 4));
    assert!(err.to_string().starts_with("drill.jsonl:4: "), "{err}");

    let text = "2026-03-14 14:30:00,250 ERROR boom\n  continuation\n";
    let events: Vec<LogEvent> = read_events(text.as_bytes(), "app.log")
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].timestamp_ms, T0 + 250);
    assert_eq!(events[1].timestamp_ms, T0 + 250);
    assert_eq!(events[1].log_group, "app.log");
}
