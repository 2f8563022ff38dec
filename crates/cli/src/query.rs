//! `firebreak query`: runs a Logs Insights query over drill JSON-lines or plain-text log files
//! with the local engine, or only validates it (`--check`).

use anyhow::Context;
use firebreak_insights::{
    parse, parse_timestamp, scan_files, EvalError, EvalOptions, QueryResults, ScanError, ScanOptions,
};
use std::io::Write;
use std::path::PathBuf;

/// Exit code for a bad query or bad input.
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// The Logs Insights query, e.g. 'filter @message like /ERROR/ | stats count() by bin(5m)'.
    pub query: String,
    /// Log files: JSON lines of {"group","stream","timestamp","message"} or plain text, one
    /// event per line.
    #[arg(long = "logs", value_name = "FILE", num_args = 1..)]
    pub logs: Vec<PathBuf>,
    /// Only events at or after this time (RFC 3339 or epoch milliseconds).
    #[arg(long, value_name = "T")]
    pub start: Option<String>,
    /// Only events at or before this time (RFC 3339 or epoch milliseconds).
    #[arg(long, value_name = "T")]
    pub end: Option<String>,
    /// Print {"results": [[{"field","value"}...]...], "statistics": {...}} instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only validate the query; read no logs.
    #[arg(long)]
    pub check: bool,
    /// Worker threads for JSON-lines files (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Memory budget in MB for what the query keeps (groups, sorted rows, dedup values,
    /// read buffers); a query that needs more stops with an error naming the budget.
    #[arg(long = "max-memory", value_name = "MB", default_value_t = 256)]
    pub max_memory: usize,
}

/// Runs the command; returns the process exit code (0 ok, 2 bad query or bad input).
///
/// # Errors
/// Only when stdout or stderr cannot be written.
pub fn run(args: &QueryArgs) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

fn time_arg(name: &str, value: Option<&str>) -> Result<Option<i64>, String> {
    match value {
        None => Ok(None),
        Some(v) => parse_timestamp(v)
            .map(Some)
            .ok_or_else(|| format!("--{name} {v:?} is neither RFC 3339 nor epoch milliseconds")),
    }
}

/// [`run`] writing to the given streams.
///
/// # Errors
/// Only when `out` or `err` cannot be written.
pub fn run_with(args: &QueryArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let query = match parse(&args.query) {
        Ok(q) => q,
        Err(e) => {
            writeln!(err, "invalid query: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    if args.check {
        return match query.check_local() {
            Ok(()) => {
                writeln!(out, "query is valid")?;
                Ok(0)
            }
            Err(EvalError::Unsupported(u)) => {
                writeln!(out, "query is valid")?;
                writeln!(err, "note: {u}")?;
                Ok(0)
            }
            Err(EvalError::Invalid(m)) => {
                writeln!(err, "invalid query: {m}")?;
                Ok(EXIT_BAD_INPUT)
            }
        };
    }
    if args.logs.is_empty() {
        writeln!(err, "--logs FILE... is required to run a query (or use --check)")?;
        return Ok(EXIT_BAD_INPUT);
    }
    let (start_ms, end_ms) = match (
        time_arg("start", args.start.as_deref()),
        time_arg("end", args.end.as_deref()),
    ) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => {
            writeln!(err, "{m}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let options = EvalOptions {
        start_ms,
        end_ms,
        ..EvalOptions::default()
    };
    if let Err(e) = query.check_local() {
        writeln!(err, "cannot run locally: {e}")?;
        return Ok(EXIT_BAD_INPUT);
    }
    if args.max_memory == 0 {
        writeln!(err, "--max-memory must be at least 1 (MB)")?;
        return Ok(EXIT_BAD_INPUT);
    }
    let scan = ScanOptions {
        threads: args.threads.unwrap_or(0),
        memory_budget: args.max_memory.saturating_mul(1 << 20),
        ..ScanOptions::default()
    };
    let results = match scan_files(&query, &args.logs, &options, &scan) {
        Ok(r) => r,
        Err(ScanError::Read(e)) => {
            writeln!(err, "{e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
        Err(ScanError::Eval(e)) => {
            writeln!(err, "cannot run locally: {e}")?;
            return Ok(EXIT_BAD_INPUT);
        }
    };
    if args.json {
        let doc = serde_json::json!({ "results": results.rows, "statistics": results.statistics });
        serde_json::to_writer(&mut *out, &doc).context("writing JSON")?;
        writeln!(out)?;
    } else {
        write_table(&results, out)?;
    }
    Ok(0)
}

/// A plain table: one column per field seen (in order of first appearance, `@ptr` left out),
/// then the statistics.
fn write_table(results: &QueryResults, out: &mut dyn Write) -> std::io::Result<()> {
    let mut columns: Vec<&str> = Vec::new();
    for row in &results.rows {
        for f in row {
            if f.field != "@ptr" && !columns.contains(&f.field.as_str()) {
                columns.push(&f.field);
            }
        }
    }
    let cell = |row: &[firebreak_insights::ResultField], c: &str| -> String {
        row.iter()
            .find(|f| f.field == c)
            .map(|f| f.value.replace('\n', "\\n"))
            .unwrap_or_default()
    };
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in &results.rows {
        for (i, c) in columns.iter().enumerate() {
            widths[i] = widths[i].max(cell(row, c).chars().count());
        }
    }
    if !columns.is_empty() {
        let header: Vec<String> = columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", header.join(" | ").trim_end())?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(out, "{}", rule.join("-+-"))?;
        for row in &results.rows {
            let cells: Vec<String> = columns
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{:<w$}", cell(row, c)))
                .collect();
            writeln!(out, "{}", cells.join(" | ").trim_end())?;
        }
    }
    let s = &results.statistics;
    writeln!(
        out,
        "{} rows; {} records matched, {} scanned, {} bytes scanned",
        results.rows.len(),
        s.records_matched,
        s.records_scanned,
        s.bytes_scanned
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(query: &str, logs: Vec<PathBuf>) -> QueryArgs {
        QueryArgs {
            query: query.into(),
            logs,
            start: None,
            end: None,
            json: false,
            check: false,
            threads: None,
            max_memory: 256,
        }
    }

    fn run_capture(a: &QueryArgs) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(a, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn logs_file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    const DRILL: &str = concat!(
        r#"{"group":"/ecs/a","stream":"s","timestamp":"2026-03-14T14:30:10Z","message":"ERROR pool exhausted"}"#,
        "\n",
        r#"{"group":"/ecs/a","stream":"s","timestamp":1773498720000,"message":"INFO ok"}"#,
        "\n",
        r#"{"group":"/ecs/a","stream":"s","timestamp":1773498900000,"message":"ERROR pool exhausted"}"#,
        "\n",
    );

    #[test]
    fn counts_errors_per_five_minutes_as_json() {
        let f = logs_file(DRILL);
        let mut a = args(
            "filter @message like /ERROR/ | stats count() by bin(5m)",
            vec![f.path().into()],
        );
        a.json = true;
        let (code, out, _) = run_capture(&a);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["results"],
            serde_json::json!([
                [{"field": "bin(5m)", "value": "2026-03-14 14:30:00.000"}, {"field": "count()", "value": "1"}],
                [{"field": "bin(5m)", "value": "2026-03-14 14:35:00.000"}, {"field": "count()", "value": "1"}]
            ])
        );
        assert_eq!(v["statistics"]["recordsScanned"], 3);
        assert_eq!(v["statistics"]["recordsMatched"], 2);
    }

    #[test]
    fn start_and_end_bound_the_events_inclusively() {
        let f = logs_file(DRILL);
        let mut a = args("stats count() as n", vec![f.path().into()]);
        a.start = Some("2026-03-14T14:32:00Z".into());
        a.end = Some("1773498900000".into());
        a.json = true;
        let (code, out, _) = run_capture(&a);
        assert_eq!(code, 0);
        assert!(out.contains(r#"{"field":"n","value":"2"}"#), "{out}");
    }

    #[test]
    fn prints_a_table_by_default() {
        let f = logs_file("2026-03-14T14:30:00Z ERROR boom\nplain line\n");
        let (code, out, _) = run_capture(&args("filter @message like 'ERROR'", vec![f.path().into()]));
        assert_eq!(code, 0);
        assert!(out.starts_with("@timestamp              | @message"), "{out}");
        assert!(
            out.contains("2026-03-14 14:30:00.000 | 2026-03-14T14:30:00Z ERROR boom"),
            "{out}"
        );
        assert!(out.contains("1 rows; 1 records matched, 2 scanned"), "{out}");
    }

    #[test]
    fn a_bad_query_exits_2_with_the_parser_message() {
        let (code, _, err) = run_capture(&args("fields @message | sort", vec![]));
        assert_eq!(code, 2);
        assert!(err.contains("line 1, column 23: expected a field"), "{err}");
    }

    #[test]
    fn check_validates_without_logs() {
        let mut a = args("fields @message | limit 5", vec![]);
        a.check = true;
        assert_eq!(run_capture(&a).0, 0);
        a.query = "fields @message | limit five".into();
        assert_eq!(run_capture(&a).0, 2);
    }

    #[test]
    fn a_bad_log_line_exits_2_naming_file_and_line() {
        let f = logs_file(&format!(
            "{DRILL}{{\"group\":\"g\",\"message\":\"no timestamp\"}}\n"
        ));
        let (code, _, err) = run_capture(&args("stats count()", vec![f.path().into()]));
        assert_eq!(code, 2);
        assert!(err.contains(&format!("{}:4: ", f.path().display())), "{err}");
        assert!(err.contains("timestamp"), "{err}");
    }

    #[test]
    fn a_missing_file_exits_2_naming_it() {
        let (code, _, err) = run_capture(&args("stats count()", vec!["/nonexistent/x.jsonl".into()]));
        assert_eq!(code, 2);
        assert!(err.contains("/nonexistent/x.jsonl: cannot open"), "{err}");
    }

    #[test]
    fn threads_do_not_change_the_results() {
        let mut content = String::new();
        for i in 0..5000u64 {
            let level = if i % 7 == 0 { "ERROR" } else { "INFO" };
            content.push_str(&format!(
                "{{\"group\":\"/ecs/a\",\"stream\":\"s{}\",\"timestamp\":{},\"message\":\"{level} request {i}\"}}\n",
                i % 3,
                1_773_498_600_000 + i * 997
            ));
        }
        let f = logs_file(&content);
        let mut outputs = Vec::new();
        for threads in [1, 2, 4] {
            let mut a = args(
                "filter @message like /ERROR/ | stats count() by bin(5m), @logStream",
                vec![f.path().into()],
            );
            a.threads = Some(threads);
            a.json = true;
            let (code, out, err) = run_capture(&a);
            assert_eq!(code, 0, "{err}");
            outputs.push(out);
        }
        assert!(outputs[0].contains("\"recordsMatched\":715"), "{}", outputs[0]);
        assert_eq!(outputs[0], outputs[1]);
        assert_eq!(outputs[0], outputs[2]);
    }

    #[test]
    fn max_memory_bounds_the_query_and_names_the_budget() {
        let mut content = String::new();
        for i in 0..40_000u64 {
            content.push_str(&format!(
                "{{\"group\":\"g\",\"stream\":\"s\",\"timestamp\":{i},\"message\":\"unique message number {i:08}\"}}\n"
            ));
        }
        let f = logs_file(&content);
        let mut a = args("stats count() by @message", vec![f.path().into()]);
        a.max_memory = 4;
        let (code, _, err) = run_capture(&a);
        assert_eq!(code, 2);
        assert!(err.contains("memory budget of 4 MB"), "{err}");
        a.max_memory = 256;
        let (code, out, _) = run_capture(&a);
        assert_eq!(code, 0);
        assert!(out.contains("10000 rows; 40000 records matched"), "{out}");
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        let mut a = args(
            &format!("filter {}x{}", "(".repeat(5000), ")".repeat(5000)),
            vec![],
        );
        a.check = true;
        let (code, _, err) = run_capture(&a);
        assert_eq!(code, 2);
        assert!(
            err.contains("line 1, column") && err.contains("levels of nesting"),
            "{err}"
        );
    }

    #[test]
    fn cloudwatch_only_commands_exit_2_when_run() {
        let f = logs_file(DRILL);
        let (code, _, err) = run_capture(&args("pattern @message", vec![f.path().into()]));
        assert_eq!(code, 2);
        assert!(err.contains("`pattern` runs only in CloudWatch"), "{err}");
    }
}
