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
