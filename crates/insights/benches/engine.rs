//! Throughput of the local engine over a generated drill JSON-lines file of at least 1 GB
//! (`FIREBREAK_BENCH_BYTES` makes it smaller for quick runs; the budget is measured at 1 GB).
//!
//! (a) `filter @message like /ERROR/`
//! (b) the same plus `stats count() by bin(5m)`
//! (c) `parse` plus `stats pct(latency, 99) by status`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench harness

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use firebreak_insights::{parse, scan_files, EvalOptions, QueryResults, ScanOptions};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const GIB: u64 = 1 << 30;

fn data_file() -> PathBuf {
    let bytes: u64 = std::env::var("FIREBREAK_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(GIB);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-data");
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join(format!("insights-{bytes}.jsonl"));
    if std::fs::metadata(&path)
        .map(|m| m.len() >= bytes)
        .unwrap_or(false)
    {
        return path;
    }
    let tmp = path.with_extension("partial");
    generate(&tmp, bytes);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Deterministic (xorshift) log lines: mostly access logs, some slow-query warnings, ERRORs
/// and JSON messages, across 8 streams, timestamps rising by 0-19 ms from 2026-03-14.
fn generate(path: &Path, bytes: u64) {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut ts: u64 = 1_773_446_400_000;
    let mut written = 0u64;
    while written < bytes {
        let r = next();
        ts += r % 20;
        let stream = (r >> 8) % 8 + 1;
        let latency = (r >> 16) % 250 + if (r >> 40) % 100 == 0 { 2000 } else { 3 };
        let id = (r >> 24) % 100_000;
        let status = [200, 200, 200, 200, 200, 201, 304, 404, 500, 503][((r >> 32) % 10) as usize];
        let kind = (r >> 48) % 100;
        let message = if kind < 80 {
            format!(
                "INFO GET /articles/{id} status={status} latency={latency}ms request_id={:016x}",
                next()
            )
        } else if kind < 90 {
            format!("WARN slow query on table articles status={status} latency={latency}ms")
        } else if kind < 95 {
            format!(
                "ERROR DatabaseError: connection pool exhausted, max_connections=10 route=/articles/{id} status=500 latency={latency}ms"
            )
        } else {
            format!(
                r#"{{\"level\":\"info\",\"route\":\"/users/{id}\",\"status\":{status},\"latency\":{latency}}}"#
            )
        };
        let line = format!(
            r#"{{"group":"/ecs/articles-api","stream":"web/{stream}","timestamp":{ts},"message":"{message}"}}"#
        );
        writeln!(out, "{line}").unwrap();
        written += line.len() as u64 + 1;
    }
    out.flush().unwrap();
}

/// One thread, through `scan_files` (what `firebreak query --threads 1` runs).
fn run(path: &Path, query: &str) -> QueryResults {
    let q = parse(query).unwrap();
    let scan = ScanOptions {
        threads: 1,
        ..ScanOptions::default()
    };
    scan_files(&q, &[path.to_path_buf()], &EvalOptions::default(), &scan).unwrap()
}

fn engine(c: &mut Criterion) {
    let path = data_file();
    let len = std::fs::metadata(&path).unwrap().len();
    let mut group = c.benchmark_group("insights");
    group.throughput(Throughput::Bytes(len));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(1));
    let queries = [
        ("a_filter_like_error", "filter @message like /ERROR/"),
        (
            "b_filter_stats_count_by_bin5m",
            "filter @message like /ERROR/ | stats count() by bin(5m)",
        ),
        (
            "c_parse_stats_pct99_by_status",
            r#"parse @message "status=* latency=*ms" as status, latency | stats pct(latency, 99) by status"#,
        ),
    ];
    for (name, query) in queries {
        // A sanity check that the query does what the bench claims.
        let r = run(&path, query);
        assert!(
            r.statistics.records_matched > 0 && !r.rows.is_empty(),
            "{name} matched nothing"
        );
        group.bench_function(name, |b| b.iter(|| run(&path, query)));
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
