//! `cargo run --release -p firebreak-insights --example scan -- QUERY FILE [THREADS]`: the
//! engine's file scan alone (what `firebreak query` runs), for profiling without the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // example

use firebreak_insights::{parse, scan_files, EvalOptions, ScanOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let query = parse(&args[1]).unwrap();
    let threads = args.get(3).map_or(1, |t| t.parse().unwrap());
    let t = std::time::Instant::now();
    let r = scan_files(
        &query,
        &[args[2].clone().into()],
        &EvalOptions::default(),
        &ScanOptions {
            threads,
            ..ScanOptions::default()
        },
    );
    let secs = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&args[2]).unwrap().len() as f64;
    match r {
        Ok(r) => println!("{} rows, {:?}", r.rows.len(), r.statistics),
        Err(e) => println!("error: {e}"),
    }
    println!("{secs:.3} s, {:.0} MB/s", bytes / secs / 1e6);
}
