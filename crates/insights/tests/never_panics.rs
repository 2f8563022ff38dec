//! The parser and evaluator never panic: property tests over arbitrary and query-shaped input,
//! and the fuzz target's body over the corpus in tests/corpus (tricky inputs found by hand).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_insights::{fuzz_body, parse};
use proptest::prelude::*;

#[test]
fn the_fuzz_body_survives_every_corpus_input() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        fuzz_body(&String::from_utf8_lossy(&bytes));
        n += 1;
    }
    assert!(n >= 20, "corpus has only {n} inputs");
}

#[test]
fn corpus_inputs_named_bad_are_rejected_with_a_position() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let parsed = parse(&src);
        if name.starts_with("bad-") {
            let e = parsed.expect_err(&name);
            assert!(e.line >= 1 && e.column >= 1, "{name}: {e}");
        } else if name.starts_with("ok-") {
            assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        }
    }
}

const PIECES: &[&str] = &[
    "fields",
    "filter",
    "stats",
    "sort",
    "limit",
    "parse",
    "dedup",
    "display",
    "pattern",
    "by",
    "as",
    "and",
    "or",
    "not",
    "like",
    "in",
    "asc",
    "desc",
    "@message",
    "@timestamp",
    "status",
    "a.b.0",
    "`x y`",
    "count()",
    "count(*)",
    "pct(",
    "bin(5m)",
    "datefloor(",
    "(",
    ")",
    "[",
    "]",
    ",",
    "|",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=~",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "\"s\"",
    "'t'",
    "/re/",
    "/(?i)x/",
    "/(?<n>\\d+)/",
    "\"* *\"",
    "1",
    "2.5",
    "-3",
    "1e3",
    "5m",
    "0s",
    "#c\n",
    "\n",
    " ",
    "\\",
    "\"",
    "`",
    "é",
    "unnest",
    "into",
    "jsonParse(@message)",
    "SOURCE",
    "'lg'",
    "start=-1d",
    "end=now",
    "logcompare",
    "timeshift",
    "7d",
    "sortsFirst(",
    "sortsLast(",
    "in (",
    "x - y as z",
    "max(a) as x",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,80}") {
        fuzz_body(&src);
    }

    #[test]
    fn query_shaped_token_soup_never_panics(parts in proptest::collection::vec(0..PIECES.len(), 0..24)) {
        let src: Vec<&str> = parts.iter().map(|i| PIECES[*i]).collect();
        fuzz_body(&src.join(" "));
    }

    #[test]
    fn errors_point_inside_the_query(src in "[a-z@|()\\[\\]=<>!\"/#,. \n0-9*]{0,60}") {
        if let Err(e) = parse(&src) {
            let lines: Vec<&str> = src.split('\n').collect();
            prop_assert!(e.line >= 1 && e.line <= lines.len(), "{e} for {src:?}");
            prop_assert!(e.column >= 1 && e.column <= lines[e.line - 1].chars().count() + 1, "{e} for {src:?}");
        }
    }
}

/// `sort`, `stats` and `dedup` by a field mixing numbers and text used to panic ("comparison
/// function does not correctly implement a total order"). The order is Logs Insights': text
/// before numbers, text in natural order.
#[test]
fn sort_stats_and_dedup_by_mixed_numbers_and_text_never_panic() {
    use firebreak_insights::{EvalOptions, LogEvent};
    let values = [
        "10", "9", "a", "b2", "b10", "-1", "1e3", "x", "2.5", "", " ", "NaN", "inf", "0", "-0", "01", "A",
        "é", "9a", "10a",
    ];
    let events: Vec<LogEvent> = (0..400)
        .map(|i| {
            let v = values[(i * 7 + i / 3) % values.len()];
            LogEvent::new(i as i64, "g", "s", format!("{{\"v\":\"{v}\",\"n\":{}}}", i % 13))
        })
        .collect();
    for q in [
        "sort v",
        "sort v desc, n",
        "stats count() by v",
        "stats count() by v, n | sort v",
        "dedup v",
        "sort v | dedup v",
        "stats min(v), max(v) by n",
    ] {
        let r = parse(q).unwrap().evaluate(&events, &EvalOptions::default());
        assert!(r.is_ok(), "{q}: {r:?}");
    }
    let r = parse("stats count() by v | sort v")
        .unwrap()
        .evaluate(&events, &EvalOptions::default())
        .unwrap();
    let order: Vec<&str> = (0..r.rows.len()).filter_map(|i| r.value(i, "v")).collect();
    let text_end = order.iter().position(|v| *v == "-1").unwrap();
    assert_eq!(
        &order[..text_end],
        ["", " ", "9a", "10a", "A", "NaN", "a", "b2", "b10", "inf", "x", "é"]
    );
    assert_eq!(
        &order[text_end..],
        ["-1", "0", "-0", "01", "2.5", "9", "10", "1e3"],
        "{order:?}"
    );
    assert!(
        order.iter().position(|v| *v == "b2") < order.iter().position(|v| *v == "b10"),
        "natural order: {order:?}"
    );
}

/// Deep nesting is an error at a line and column, not a stack overflow (exit 134).
#[test]
fn deep_nesting_is_an_error_with_a_position() {
    for src in [
        format!("filter {}x{}", "(".repeat(5000), ")".repeat(5000)),
        format!("filter {}x", "not ".repeat(5000)),
        format!("filter {}x", "- ".repeat(5000)),
        format!("fields {}", vec!["a"; 5000].join(" + ")),
        format!("fields {}", vec!["a"; 5000].join(" ^ ")),
        format!("filter {}", vec!["a = 1"; 5000].join(" or ")),
        format!("fields {}1{}", "abs(".repeat(5000), ")".repeat(5000)),
    ] {
        let e = parse(&src).unwrap_err();
        assert!(e.expected.contains("levels of nesting"), "{e}");
        assert_eq!(e.line, 1);
        assert!(e.column > 1);
    }
    // Just under the limit still parses and evaluates.
    let ok = format!("fields {}1{} as x", "(".repeat(90), ")".repeat(90));
    parse(&ok).unwrap();
}

/// A JSON-lines file with a line of invalid UTF-8 is read (lossily), not rejected.
#[test]
fn invalid_utf8_lines_are_read_lossily() {
    let mut data = br#"{"group":"g","stream":"s","timestamp":1,"message":"ok"}"#.to_vec();
    data.extend_from_slice(
        b"\n{\"group\":\"g\",\"stream\":\"s\",\"timestamp\":2,\"message\":\"bad \xff\xfe ERROR\"}\n",
    );
    data.extend_from_slice(b"plain \xc3 text\n");
    let events: Vec<_> = firebreak_insights::read_events(&data[..], "f").collect();
    assert!(events[0].is_ok());
    let bad = events[1].as_ref().unwrap();
    assert!(
        bad.message.contains("ERROR") && bad.message.contains('\u{fffd}'),
        "{bad:?}"
    );
    assert!(
        events[2].is_err(),
        "a text line in a JSON-lines file is still an error"
    );
}

/// The stable stand-in for `cargo fuzz` (nightly only): many cases of query-shaped input
/// through the fuzz body. `FIREBREAK_FUZZ_CASES=200000 cargo test -p firebreak-insights
/// --release --test never_panics -- --ignored long_fuzz` runs it for real; a failing input is
/// written to tests/corpus/found-<hash>.txt, which every `cargo test` then replays.
#[test]
#[ignore]
fn long_fuzz() {
    use proptest::test_runner::{Config, TestRunner};
    let cases: u32 = std::env::var("FIREBREAK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    // Pipelines of commands with query-shaped arguments, so that many inputs parse and reach
    // the evaluator, not only the parser's first error.
    const COMMANDS: &[&str] = &[
        "fields",
        "filter",
        "stats",
        "sort",
        "limit",
        "parse @message",
        "dedup",
        "display",
        "unnest",
        "SOURCE",
        "logcompare",
        "fields jsonParse(@message) as j |",
        "filter x in (",
        "stats count() by",
    ];
    let commands = proptest::collection::vec(
        (
            0..COMMANDS.len(),
            proptest::collection::vec(0..PIECES.len(), 0..8),
        ),
        1..6,
    );
    let parsed = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&commands, |cmds| {
        let src = cmds
            .iter()
            .map(|(c, parts)| {
                let args: Vec<&str> = parts.iter().map(|i| PIECES[*i]).collect();
                format!("{} {}", COMMANDS[*c], args.join(" "))
            })
            .collect::<Vec<_>>()
            .join(" | ");
        if parse(&src).is_ok() {
            parsed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if std::panic::catch_unwind(|| fuzz_body(&src)).is_err() {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            src.hash(&mut h);
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
            let _ = std::fs::write(dir.join(format!("found-{:016x}.txt", h.finish())), &src);
            return Err(proptest::test_runner::TestCaseError::fail(format!(
                "panicked on {src:?}"
            )));
        }
        Ok(())
    });
    eprintln!(
        "long_fuzz: {cases} cases, {} parsed and were evaluated",
        parsed.load(std::sync::atomic::Ordering::Relaxed)
    );
    result.unwrap();
}
