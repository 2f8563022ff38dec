//! The CloudWatch Logs Insights query language: a parser with precise errors, a validator that
//! says what cannot run locally, and a streaming local evaluator that gives the answers
//! CloudWatch would (for drills, tests, and the local emulator, whose Logs Insights neither
//! filters nor aggregates). See `docs/insights.md`.
//!
//! ```
//! use firebreak_insights::{parse, LogEvent, EvalOptions};
//! let q = parse("filter @message like /ERROR/ | stats count() as errors").unwrap();
//! let events = vec![LogEvent::new(0, "app", "s", "ERROR boom"), LogEvent::new(1, "app", "s", "ok")];
//! let out = q.evaluate(&events, &EvalOptions::default()).unwrap();
//! assert_eq!(out.rows[0][0].value, "1");
//! ```
//!
//! The pieces, in the order a query meets them: `lexer` (tokens, [`ParseError`]), `parser`
//! (the syntax tree of [`ast`], nesting limited), `catalogue` (functions and their arity, shared
//! by parser and planner), `plan` (names resolved to slots, stages, the scan's needles), `expr`
//! (expressions over one record), `row` (records and JSON fields), `stages` and `aggregate` (one
//! row at a time, then the barrier's rows and groups), `budget` (memory), `eval` (executions,
//! mergeable), `compare` (`logcompare`), `reader` and `scan` (files, chunked and parallel).

mod aggregate;
pub mod ast;
mod budget;
mod catalogue;
mod compare;
mod eval;
mod event;
mod expr;
mod functions;
mod lexer;
mod parser;
mod plan;
mod quote;
mod reader;
mod row;
mod scan;
mod stages;
mod value;

pub use ast::{Command, Query, UnsupportedCommand};
pub use budget::{default_memory_budget, set_default_memory_budget, DEFAULT_MEMORY_BUDGET};
pub use eval::{EvalError, EvalOptions, Execution, QueryResults, ResultField, Statistics, DEFAULT_LIMIT};
pub use event::{EventRef, LogEvent};
pub use parser::{parse, ParseError, MAX_NESTING};
pub use quote::{escape_regex_literal, escape_regex_pattern, escape_string_literal};
pub use reader::{
    for_each_event, parse_timestamp, read_events, DecodedEvent, Events, LineDecoder, LogFormat, ReadError,
};
pub use scan::{scan_files, ScanError, ScanOptions};
pub use value::format_timestamp;

/// The commands of a query that the local engine cannot evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .commands.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Unsupported {
    pub commands: Vec<UnsupportedCommand>,
}

impl Query {
    /// The commands that only CloudWatch can run (`pattern`, `diff`, `anomaly`, `unmask`,
    /// `SOURCE`, `filterIndex`, ...), in query order.
    pub fn unsupported_commands(&self) -> Vec<&UnsupportedCommand> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::Unsupported(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// Whether the local engine can evaluate this query.
    ///
    /// # Errors
    /// [`Unsupported`] listing every command it cannot.
    pub fn validate_local(&self) -> Result<(), Unsupported> {
        let commands: Vec<UnsupportedCommand> = self.unsupported_commands().into_iter().cloned().collect();
        if commands.is_empty() {
            Ok(())
        } else {
            Err(Unsupported { commands })
        }
    }
}

/// The fuzz target's body (`fuzz/fuzz_targets/parse_query.rs`), public so the plain tests run
/// it over a corpus on stable: parse `src`, and when it parses, evaluate it over a few events
/// (JSON and text) and render the results. Never panics, whatever `src` is.
#[doc(hidden)]
pub fn fuzz_body(src: &str) {
    let Ok(query) = parse(src) else { return };
    let _ = query.validate_local();
    let events = [
        LogEvent::new(0, "g", "s", "ERROR 500 GET /articles latency=12ms"),
        LogEvent::new(
            60_000,
            "g",
            "s",
            r#"{"status":500,"a":{"b":[1,"x",null]},"latency":"7"}"#,
        ),
        LogEvent::new(-1, "", "", ""),
    ];
    if let Ok(results) = query.evaluate_with_budget(&events, &EvalOptions::default(), 8 << 20) {
        let _ = results.rows.len();
    }
}
