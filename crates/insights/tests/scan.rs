//! Scanning files: any number of threads gives exactly the results of one (chunks merge in
//! file order), the raw-line prefilter changes nothing but speed (statistics included), and the
//! memory budget stops a query with an error naming it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_insights::*;
use std::io::Write;
use std::path::PathBuf;

/// Mixed lines: plain text, escaped JSON messages with nested fields, some ERROR/timeout, a
/// `\u` escape hiding an `E`, and enough of them to span several 4 MiB chunks.
fn mixed_file(lines: usize) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut w = std::io::BufWriter::new(f.as_file_mut());
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ts = 1_773_446_400_000 + (i as u64) * 37;
        let msg = match x % 10 {
            0 => format!(
                "ERROR DatabaseError: pool exhausted route=/articles/{} latency={}ms",
                x % 1000,
                x % 300
            ),
            1 => format!(
                r#"{{\"level\":\"error\",\"msg\":\"timeout calling users\",\"latency\":{},\"ctx\":{{\"user\":\"u{}\"}}}}"#,
                x % 500,
                x % 50
            ),
            2 => r#"{\"level\":\"warn\",\"msg\":\"\u0045RROR hidden by an escape\"}"#.to_string(),
            3..=5 => format!(
                r#"{{\"level\":\"info\",\"status\":{},\"latency\":{},\"tags\":[\"a\",\"b{}\"]}}"#,
                [200, 404, 500][(x % 3) as usize],
                x % 900,
                x % 7
            ),
            _ => format!("INFO GET /articles/{} status=200 latency={}ms", x % 5000, x % 250),
        };
        writeln!(
            w,
            r#"{{"group":"/ecs/api","stream":"web/{}","timestamp":{ts},"message":"{msg}"}}"#,
            x % 4
        )
        .unwrap();
    }
    drop(w);
    f
}

fn scan(q: &str, path: &PathBuf, threads: usize) -> QueryResults {
    scan_chunked(q, path, threads, 256 << 10)
}

fn scan_chunked(q: &str, path: &PathBuf, threads: usize, chunk_bytes: usize) -> QueryResults {
    let query = parse(q).unwrap();
    scan_files(
        &query,
        std::slice::from_ref(path),
        &EvalOptions::default(),
        &ScanOptions {
            threads,
            memory_budget: 256 << 20,
            chunk_bytes,
        },
    )
    .unwrap_or_else(|e| panic!("{q}: {e}"))
}

const QUERIES: &[&str] = &[
    "filter @message like /ERROR/ | stats count() by bin(5m)",
    "filter @message like \"timeout\" | stats count() as n, avg(latency), stddev(latency), pct(latency, 90) by level",
    "stats count(), sum(latency), min(status), max(status), earliest(@message), latest(@message), count_distinct(ctx.user) by bin(1h)",
    "filter level = \"info\" | sort latency desc | limit 25",
    "fields @timestamp, @message | filter @message like /ERROR/ | limit 40",
    "stats count() by @logStream, status | sort status",
    "filter @message like /ERROR/ and @message like \"pool\" | stats count()",
    "sort @timestamp asc | dedup level | limit 5",
    "dedup @logStream",
    "fields level, latency | sort latency desc | dedup level, ctx.user | limit 50",
    "filter level = \"error\" | stats count() by bin(1h)",
    "filter @message like \"timeout\" and level = \"error\" | fields ctx.user | limit 10000",
];

#[test]
fn n_threads_give_the_results_of_one() {
    let f = mixed_file(20_000); // ~2.2 MB: 9 chunks of 256 KiB
    let path = f.path().to_path_buf();
    for q in QUERIES {
        let one = scan(q, &path, 1);
        assert!(!one.rows.is_empty(), "{q}");
        for n in [2, 3, 8] {
            assert_eq!(scan(q, &path, n), one, "{q} with {n} threads");
        }
    }
}

#[test]
fn the_prefilter_changes_nothing_but_speed() {
    let f = mixed_file(10_000);
    let path = f.path().to_path_buf();
    let events: Vec<LogEvent> =
        read_events(std::io::BufReader::new(std::fs::File::open(&path).unwrap()), "f")
            .map(Result::unwrap)
            .collect();
    for q in QUERIES {
        // One chunk: a single pass sums floats in the same order as evaluate.
        let scanned = scan_chunked(q, &path, 2, 64 << 20);
        let evaluated = parse(q)
            .unwrap()
            .evaluate(&events, &EvalOptions::default())
            .unwrap();
        // Same rows (the @ptr of chunked scans numbers events per chunk, so compare the rest).
        let strip = |r: &QueryResults| -> Vec<Vec<ResultField>> {
            r.rows
                .iter()
                .map(|row| row.iter().filter(|f| f.field != "@ptr").cloned().collect())
                .collect()
        };
        assert_eq!(strip(&scanned), strip(&evaluated), "{q}");
        assert_eq!(scanned.statistics, evaluated.statistics, "{q}");
    }
    // The escaped `\u0045RROR` is found although its raw bytes do not contain ERROR.
    let r = scan(
        "filter @message like /ERROR hidden/ | stats count() as n",
        &path,
        1,
    );
    assert_ne!(r.value(0, "n"), Some("0"));
}

#[test]
fn a_query_over_its_budget_stops_with_an_error_naming_it() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    {
        let mut w = std::io::BufWriter::new(f.as_file_mut());
        for i in 0..60_000 {
            writeln!(w, r#"{{"group":"g","stream":"s","timestamp":{i},"message":"request {i:08} finished with a unique id"}}"#).unwrap();
        }
    }
    let query = parse("stats count() by @message").unwrap();
    let r = scan_files(
        &query,
        &[f.path().to_path_buf()],
        &EvalOptions::default(),
        &ScanOptions {
            threads: 2,
            memory_budget: 8 << 20,
            chunk_bytes: 256 << 10,
        },
    );
    let Err(e) = r else {
        panic!("{} groups fit in 8 MB", r.map(|r| r.rows.len()).unwrap_or(0))
    };
    assert!(e.to_string().contains("memory budget of 8 MB"), "{e}");
    // The same through evaluate, with a small budget.
    let events: Vec<LogEvent> = (0..20_000)
        .map(|i| LogEvent::new(i, "g", "s", format!("unique {i}")))
        .collect();
    for q in [
        "stats count() by @message",
        "dedup @message",
        "sort @message | filter @message like /u/",
    ] {
        let Err(e) = parse(q)
            .unwrap()
            .evaluate_with_budget(&events, &EvalOptions::default(), 1 << 20)
        else {
            panic!("{q} fit in 1 MB")
        };
        assert!(
            e.is_over_budget() && e.to_string().contains("budget of 1 MB"),
            "{q}: {e}"
        );
    }
    // `dedup` keeps one row per value, not every row: few values fit a small budget.
    let streams: Vec<LogEvent> = (0..20_000)
        .map(|i| LogEvent::new(i, "g", format!("s{}", i % 7), format!("unique {i}")))
        .collect();
    let r = parse("dedup @logStream")
        .unwrap()
        .evaluate_with_budget(&streams, &EvalOptions::default(), 1 << 20)
        .unwrap();
    assert_eq!(r.rows.len(), 7);
    assert_eq!(
        r.value(0, "@message"),
        Some("unique 19999"),
        "newest first, as CloudWatch"
    );
    // Top-k keeps `sort ... | limit` within a small budget.
    let r = parse("sort @message desc | limit 3")
        .unwrap()
        .evaluate_with_budget(&events, &EvalOptions::default(), 1 << 20)
        .unwrap();
    assert_eq!(r.rows.len(), 3);
}

#[test]
fn text_files_and_bad_lines() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        f,
        "2026-03-14T14:30:00Z ERROR boom\nnext line\n2026-03-14T14:31:00Z ok"
    )
    .unwrap();
    let r = scan(
        "filter @message like /ERROR|next/ | fields @timestamp, @message",
        &f.path().to_path_buf(),
        4,
    );
    assert_eq!(r.rows.len(), 2);
    let mut bad = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        bad,
        r#"{{"group":"g","stream":"s","timestamp":1,"message":"ok"}}"#
    )
    .unwrap();
    writeln!(bad, r#"{{"group":"g","message":"no timestamp"}}"#).unwrap();
    let e = scan_files(
        &parse("stats count()").unwrap(),
        &[bad.path().to_path_buf()],
        &EvalOptions::default(),
        &ScanOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains(":2: "), "{e}");
}

#[test]
fn lines_longer_than_a_chunk_and_a_last_line_without_newline() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let long = "x".repeat(5000);
    for i in 0..50 {
        writeln!(
            f,
            r#"{{"group":"g","stream":"s","timestamp":{i},"message":"ERROR {long} {i}"}}"#
        )
        .unwrap();
        writeln!(
            f,
            r#"{{"group":"g","stream":"s","timestamp":{i},"message":"ok {i}"}}"#
        )
        .unwrap();
    }
    write!(
        f,
        r#"{{"group":"g","stream":"s","timestamp":99,"message":"ERROR last"}}"#
    )
    .unwrap();
    for threads in [1, 3] {
        let r = scan_chunked(
            "filter @message like /ERROR/ | stats count() as n",
            &f.path().to_path_buf(),
            threads,
            1024,
        );
        assert_eq!(r.value(0, "n"), Some("51"));
        assert_eq!(r.statistics.records_scanned, 101);
    }
}
