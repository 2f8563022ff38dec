//! The local evaluator: compiles a parsed query into a pipeline of stages and streams events
//! through it. Memory is bounded by the result: rows are kept only in a `sort`'s top-k buffer
//! (k = the following `limit`, or the default 10,000) or as `stats` groups.

use crate::ast::*;
use crate::event::{EventRef, LogEvent};
use crate::functions;
use crate::parser::{contains_aggregate, function, FnKind};
use crate::value::{KeyValue, Value};
use crate::Unsupported;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::borrow::{Borrow, Cow};
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

/// Rows a query returns when it has no `limit` (and the most GetQueryResults returns).
pub const DEFAULT_LIMIT: usize = 10_000;

/// Where and when to look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvalOptions {
    /// Inclusive, epoch milliseconds.
    pub start_ms: Option<i64>,
    /// Inclusive, epoch milliseconds.
    pub end_ms: Option<i64>,
    /// Only events of these log groups; empty means all.
    pub log_groups: Vec<String>,
    /// When set, `@log` is `account:group` as in CloudWatch; otherwise just the group.
    pub account_id: Option<String>,
}

/// One field of a result row, as GetQueryResults returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultField {
    pub field: String,
    pub value: String,
}

/// GetQueryResults' statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    /// Events that passed the filters before the first `stats`/`sort` (all of them without
    /// filters).
    pub records_matched: u64,
    /// Events in the time range and log groups.
    pub records_scanned: u64,
    /// Bytes of the messages of the scanned events.
    pub bytes_scanned: u64,
}

/// The answer to a query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryResults {
    /// Rows of present fields, in result order; a field with no value is left out of its row.
    pub rows: Vec<Vec<ResultField>>,
    pub statistics: Statistics,
}

impl QueryResults {
    /// The value of `field` in row `row`.
    pub fn value(&self, row: usize, field: &str) -> Option<&str> {
        self.rows
            .get(row)?
            .iter()
            .find(|f| f.field == field)
            .map(|f| f.value.as_str())
    }
}

/// Why a query cannot be evaluated locally.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// The query parses but does not make sense (an aggregate outside `stats` that names no
    /// `stats` column, ...).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sys {
    Timestamp,
    Message,
    LogStream,
    Log,
    IngestionTime,
    Ptr,
}

fn system_field(name: &str) -> Option<Sys> {
    Some(match name {
        "@timestamp" => Sys::Timestamp,
        "@message" => Sys::Message,
        "@logStream" => Sys::LogStream,
        "@log" => Sys::Log,
        "@ingestionTime" => Sys::IngestionTime,
        "@ptr" => Sys::Ptr,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
enum Base {
    System(Sys),
    Json(Box<str>),
}

#[derive(Debug, Clone)]
struct FieldRef {
    /// Set when a command assigns this name (`as`, `parse`, `stats`).
    slot: Option<usize>,
    base: Option<Base>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Substring(Box<memchr::memmem::Finder<'static>>),
    Regex(Regex),
}

impl Matcher {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Substring(f) => f.find(s.as_bytes()).is_some(),
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Clone)]
enum CExpr {
    Lit(Value<'static>),
    Field(FieldRef),
    Unary(UnaryOp, Box<CExpr>),
    Binary(BinaryOp, Box<CExpr>, Box<CExpr>),
    Like {
        negated: bool,
        expr: Box<CExpr>,
        matcher: Box<Matcher>,
    },
    In {
        negated: bool,
        expr: Box<CExpr>,
        list: Vec<CExpr>,
    },
    Bin(Period),
    Call {
        name: &'static str,
        args: Vec<CExpr>,
        period: Option<Period>,
    },
    /// The value of the stats accumulator with this index (only in stats outputs).
    Agg(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum AggKind {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Pct(f64),
    Stddev,
    Earliest,
    Latest,
}

#[derive(Debug, Clone)]
struct AggSpec {
    kind: AggKind,
    /// None for `count()` and `count(*)`.
    arg: Option<CExpr>,
}

#[derive(Debug, Clone)]
struct StatsPlan {
    by: Vec<(CExpr, usize)>,
    aggs: Vec<AggSpec>,
    outputs: Vec<(CExpr, usize)>,
}

#[derive(Debug, Clone)]
enum Stage {
    Assign(Vec<(CExpr, usize)>),
    Filter(CExpr),
    Parse {
        source: CExpr,
        regex: Regex,
        outputs: Vec<(usize, usize)>,
    },
    Sort(Vec<(CExpr, bool)>),
    Limit(usize),
    Dedup(Vec<CExpr>),
    Stats(Box<StatsPlan>),
}

impl Stage {
    /// Keeps every row and its order (so a `sort` may look past it to a `limit`).
    fn is_one_to_one(&self) -> bool {
        matches!(self, Stage::Assign(_) | Stage::Parse { .. })
    }
}

/// A compiled query, ready to evaluate.
#[derive(Debug, Clone)]
struct Plan {
    n_slots: usize,
    stages: Vec<Stage>,
    /// Result columns: name and how to read it from a final row.
    columns: Vec<(String, CExpr)>,
    /// Append `@ptr` to each row (queries without stats).
    with_ptr: bool,
    /// Index of the first stage that needs more than one row.
    barrier: usize,
    /// For a barrier `sort`: keep only this many rows.
    top_k: Option<usize>,
}

fn normalize(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

struct Compiler {
    slots: Vec<String>,
    slot_of: HashMap<String, usize>,
    /// After a `stats`: its columns, by normalized text, so that `sort count(*)` reads the
    /// column `count(*)`.
    stats_columns: Option<HashMap<String, usize>>,
}

impl Compiler {
    fn slot(&mut self, name: &str) -> usize {
        if let Some(s) = self.slot_of.get(name) {
            return *s;
        }
        let s = self.slots.len();
        self.slots.push(name.to_string());
        self.slot_of.insert(name.to_string(), s);
        s
    }

    fn field(&self, name: &str) -> FieldRef {
        let slot = self.slot_of.get(name).copied();
        if self.stats_columns.is_some() {
            // After stats only the stats columns (and later assignments) exist.
            return FieldRef { slot, base: None };
        }
        let base = Some(match system_field(name) {
            Some(sys) => Base::System(sys),
            None => Base::Json(name.into()),
        });
        FieldRef { slot, base }
    }

    /// An expression that may name a stats column by its text.
    fn projection(&mut self, expr: &Expr, text: &str) -> Result<CExpr, EvalError> {
        if let Some(cols) = &self.stats_columns {
            if let Some(slot) = cols.get(&normalize(text)) {
                return Ok(CExpr::Field(FieldRef {
                    slot: Some(*slot),
                    base: None,
                }));
            }
        }
        self.expr(expr)
    }

    fn expr(&mut self, e: &Expr) -> Result<CExpr, EvalError> {
        Ok(match e {
            Expr::Field(name) => CExpr::Field(self.field(name)),
            Expr::Str(s) => CExpr::Lit(Value::Str(Cow::Owned(s.clone()))),
            Expr::Num(n) => CExpr::Lit(Value::Num(*n)),
            Expr::Regex(r) => CExpr::Lit(Value::Str(Cow::Owned(r.clone()))),
            Expr::Period(p) => CExpr::Lit(Value::Num(p.fixed_millis().unwrap_or(0) as f64)),
            Expr::Star => CExpr::Lit(Value::Bool(true)),
            Expr::List(items) => {
                return Err(EvalError::Invalid(format!(
                    "a list of {} values can only follow `in`",
                    items.len()
                )))
            }
            Expr::Unary(op, a) => CExpr::Unary(*op, Box::new(self.expr(a)?)),
            Expr::Binary(op, a, b) => CExpr::Binary(*op, Box::new(self.expr(a)?), Box::new(self.expr(b)?)),
            Expr::Like {
                negated,
                expr,
                pattern,
            } => {
                let matcher = match pattern.as_ref() {
                    Expr::Str(s) => {
                        Matcher::Substring(Box::new(memchr::memmem::Finder::new(s.as_bytes()).into_owned()))
                    }
                    Expr::Regex(r) => Matcher::Regex(
                        Regex::new(r).map_err(|e| EvalError::Invalid(format!("invalid regex /{r}/: {e}")))?,
                    ),
                    _ => return Err(EvalError::Invalid("like needs a string or a regex".into())),
                };
                CExpr::Like {
                    negated: *negated,
                    expr: Box::new(self.expr(expr)?),
                    matcher: Box::new(matcher),
                }
            }
            Expr::In { negated, expr, list } => CExpr::In {
                negated: *negated,
                expr: Box::new(self.expr(expr)?),
                list: list.iter().map(|x| self.expr(x)).collect::<Result<_, _>>()?,
            },
            Expr::Call { name, args } => {
                let Some(spec) = function(name) else {
                    return Err(EvalError::Invalid(format!("unknown function {name}()")));
                };
                if spec.kind == FnKind::Aggregate {
                    return Err(EvalError::Invalid(format!(
                        "{name}() is an aggregate: use it in stats, or name a stats column it computed"
                    )));
                }
                let period = args.iter().find_map(|a| match a {
                    Expr::Period(p) => Some(*p),
                    _ => None,
                });
                if spec.name == "bin" {
                    if let Some(p) = period {
                        return Ok(CExpr::Bin(p));
                    }
                }
                let args = args
                    .iter()
                    .filter(|a| !matches!(a, Expr::Period(_)))
                    .map(|a| self.expr(a))
                    .collect::<Result<_, _>>()?;
                CExpr::Call {
                    name: spec.name,
                    args,
                    period,
                }
            }
        })
    }

    /// Compiles a stats output expression, turning each aggregate call into an accumulator.
    fn stats_output(&mut self, e: &Expr, aggs: &mut Vec<AggSpec>) -> Result<CExpr, EvalError> {
        match e {
            Expr::Call { name, args } if function(name).is_some_and(|f| f.kind == FnKind::Aggregate) => {
                let arg = args.first().filter(|a| !matches!(a, Expr::Star));
                let kind = match name.as_str() {
                    "count" if arg.is_none() => AggKind::Count,
                    "count" => AggKind::Count,
                    "count_distinct" => AggKind::CountDistinct,
                    "sum" => AggKind::Sum,
                    "avg" => AggKind::Avg,
                    "min" => AggKind::Min,
                    "max" => AggKind::Max,
                    "stddev" => AggKind::Stddev,
                    "earliest" => AggKind::Earliest,
                    "latest" => AggKind::Latest,
                    "pct" => match args.get(1) {
                        Some(Expr::Num(p)) if (0.0..=100.0).contains(p) => AggKind::Pct(*p),
                        _ => {
                            return Err(EvalError::Invalid(
                                "pct(field, p) needs a percentile p between 0 and 100".into(),
                            ))
                        }
                    },
                    other => return Err(EvalError::Invalid(format!("unknown aggregate {other}()"))),
                };
                let arg = match arg {
                    Some(a) if !contains_aggregate(a) => Some(self.expr(a)?),
                    Some(_) => {
                        return Err(EvalError::Invalid(format!(
                            "aggregates cannot nest inside {name}()"
                        )))
                    }
                    None => None,
                };
                aggs.push(AggSpec { kind, arg });
                Ok(CExpr::Agg(aggs.len() - 1))
            }
            Expr::Unary(op, a) => Ok(CExpr::Unary(*op, Box::new(self.stats_output(a, aggs)?))),
            Expr::Binary(op, a, b) => Ok(CExpr::Binary(
                *op,
                Box::new(self.stats_output(a, aggs)?),
                Box::new(self.stats_output(b, aggs)?),
            )),
            Expr::Call { name, args } => {
                let spec =
                    function(name).ok_or_else(|| EvalError::Invalid(format!("unknown function {name}()")))?;
                let period = args.iter().find_map(|a| match a {
                    Expr::Period(p) => Some(*p),
                    _ => None,
                });
                let args = args
                    .iter()
                    .filter(|a| !matches!(a, Expr::Period(_)))
                    .map(|a| self.stats_output(a, aggs))
                    .collect::<Result<_, _>>()?;
                Ok(CExpr::Call {
                    name: spec.name,
                    args,
                    period,
                })
            }
            // A field outside an aggregate has no single value per group.
            Expr::Field(f) => Err(EvalError::Invalid(format!(
                "`{f}` in stats must be inside an aggregate or after `by`"
            ))),
            other => self.expr(other),
        }
    }
}

fn glob_regex(pattern: &str) -> Result<Regex, EvalError> {
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut re = String::from("(?s)");
    for (i, part) in parts.iter().enumerate() {
        re.push_str(&regex::escape(part));
        if i + 1 < parts.len() {
            // The last `*` of a pattern that ends with it takes the rest of the value.
            if i + 2 == parts.len() && parts.last().is_some_and(|p| p.is_empty()) {
                re.push_str("(.*)");
            } else {
                re.push_str("(.*?)");
            }
        }
    }
    Regex::new(&re).map_err(|e| EvalError::Invalid(format!("glob {pattern:?}: {e}")))
}

impl Query {
    fn compile(&self) -> Result<Plan, EvalError> {
        self.validate_local()?;
        let mut c = Compiler {
            slots: Vec::new(),
            slot_of: HashMap::new(),
            stats_columns: None,
        };
        let has_stats = self.commands.iter().any(|c| matches!(c, Command::Stats(_)));
        let mut stages = Vec::new();
        // Result columns when there is no stats: fields/parse outputs, or the last display.
        let mut columns: Vec<(String, CExpr)> = Vec::new();
        let mut display: Option<Vec<(String, CExpr)>> = None;
        let mut seen_sort = false;
        let mut seen_order_dependent = false;
        let timestamp_desc = || {
            Stage::Sort(vec![(
                CExpr::Field(FieldRef {
                    slot: None,
                    base: Some(Base::System(Sys::Timestamp)),
                }),
                true,
            )])
        };
        fn add_column(columns: &mut Vec<(String, CExpr)>, name: &str, e: CExpr) {
            if let Some(existing) = columns.iter_mut().find(|(n, _)| n == name) {
                existing.1 = e;
            } else {
                columns.push((name.to_string(), e));
            }
        }

        for cmd in &self.commands {
            match cmd {
                Command::Fields(list) => {
                    let mut assigns = Vec::new();
                    for p in list {
                        let e = c.projection(&p.expr, &p.text)?;
                        let name = p.output_name().to_string();
                        let plain = p.alias.is_none() && matches!(p.expr, Expr::Field(_));
                        if plain {
                            add_column(&mut columns, &name, e);
                        } else {
                            let slot = c.slot(&name);
                            assigns.push((e, slot));
                            add_column(
                                &mut columns,
                                &name,
                                CExpr::Field(FieldRef {
                                    slot: Some(slot),
                                    base: None,
                                }),
                            );
                        }
                    }
                    if !assigns.is_empty() {
                        stages.push(Stage::Assign(assigns));
                    }
                }
                Command::Display(list) => {
                    let mut cols = Vec::new();
                    let mut assigns = Vec::new();
                    for p in list {
                        let e = c.projection(&p.expr, &p.text)?;
                        let name = p.output_name().to_string();
                        if p.alias.is_none() && matches!(p.expr, Expr::Field(_)) {
                            cols.push((name, e));
                        } else {
                            let slot = c.slot(&name);
                            assigns.push((e, slot));
                            cols.push((
                                name,
                                CExpr::Field(FieldRef {
                                    slot: Some(slot),
                                    base: None,
                                }),
                            ));
                        }
                    }
                    if !assigns.is_empty() {
                        stages.push(Stage::Assign(assigns));
                    }
                    display = Some(cols);
                }
                Command::Filter(e) => stages.push(Stage::Filter(c.expr(e)?)),
                Command::Parse(p) => {
                    let source = c.expr(&p.source)?;
                    let (regex, names) = match &p.pattern {
                        ParsePattern::Glob { pattern, names } => (glob_regex(pattern)?, names.clone()),
                        ParsePattern::Regex { pattern, names } => (
                            Regex::new(pattern)
                                .map_err(|e| EvalError::Invalid(format!("invalid regex: {e}")))?,
                            names.clone(),
                        ),
                    };
                    let mut outputs = Vec::new();
                    for (i, name) in names.iter().enumerate() {
                        let group = match &p.pattern {
                            ParsePattern::Glob { .. } => i + 1,
                            ParsePattern::Regex { .. } => regex
                                .capture_names()
                                .position(|n| n == Some(name.as_str()))
                                .unwrap_or(0),
                        };
                        let slot = c.slot(name);
                        outputs.push((group, slot));
                        add_column(
                            &mut columns,
                            name,
                            CExpr::Field(FieldRef {
                                slot: Some(slot),
                                base: None,
                            }),
                        );
                    }
                    stages.push(Stage::Parse {
                        source,
                        regex,
                        outputs,
                    });
                }
                Command::Sort(keys) => {
                    let keys = keys
                        .iter()
                        .map(|k| Ok((c.projection(&k.expr, &k.text)?, k.descending)))
                        .collect::<Result<Vec<_>, EvalError>>()?;
                    seen_sort = true;
                    stages.push(Stage::Sort(keys));
                }
                Command::Limit(n) => {
                    if !seen_sort && c.stats_columns.is_none() && !seen_order_dependent {
                        // Without a sort, rows arrive newest first, as in CloudWatch.
                        stages.push(timestamp_desc());
                        seen_sort = true;
                    }
                    seen_order_dependent = true;
                    stages.push(Stage::Limit(usize::try_from(*n).unwrap_or(usize::MAX)));
                }
                Command::Dedup(fields) => {
                    if !seen_sort && c.stats_columns.is_none() && !seen_order_dependent {
                        stages.push(timestamp_desc());
                        seen_sort = true;
                    }
                    seen_order_dependent = true;
                    let keys = fields.iter().map(|f| c.expr(f)).collect::<Result<_, _>>()?;
                    stages.push(Stage::Dedup(keys));
                }
                Command::Stats(s) => {
                    let mut by = Vec::new();
                    let mut new_columns = Vec::new();
                    let mut by_compiled = Vec::new();
                    for p in &s.by {
                        by_compiled.push((c.projection(&p.expr, &p.text)?, p));
                    }
                    let mut aggs = Vec::new();
                    let mut outputs_compiled = Vec::new();
                    for p in &s.aggregates {
                        outputs_compiled.push((c.stats_output(&p.expr, &mut aggs)?, p));
                    }
                    // From here on only the stats columns exist.
                    let mut cols = HashMap::new();
                    let mut out_cols = Vec::new();
                    for (e, p) in by_compiled {
                        let slot = c.slot(p.output_name());
                        by.push((e, slot));
                        cols.insert(normalize(&p.text), slot);
                        cols.insert(normalize(p.output_name()), slot);
                        new_columns.push((p.output_name().to_string(), slot));
                    }
                    let mut outputs = Vec::new();
                    for (e, p) in outputs_compiled {
                        let slot = c.slot(p.output_name());
                        outputs.push((e, slot));
                        cols.insert(normalize(&p.text), slot);
                        cols.insert(normalize(p.output_name()), slot);
                        out_cols.push((p.output_name().to_string(), slot));
                    }
                    new_columns.extend(out_cols);
                    // Names assigned before stats no longer exist afterwards.
                    c.slot_of.retain(|_, s| new_columns.iter().any(|(_, ns)| ns == s));
                    c.stats_columns = Some(cols);
                    columns = new_columns
                        .into_iter()
                        .map(|(n, slot)| {
                            (
                                n,
                                CExpr::Field(FieldRef {
                                    slot: Some(slot),
                                    base: None,
                                }),
                            )
                        })
                        .collect();
                    display = None;
                    seen_order_dependent = true;
                    stages.push(Stage::Stats(Box::new(StatsPlan { by, aggs, outputs })));
                }
                Command::Unsupported(u) => {
                    return Err(EvalError::Unsupported(Unsupported {
                        commands: vec![u.clone()],
                    }))
                }
            }
        }
        if !has_stats && !seen_sort {
            stages.push(timestamp_desc());
        }
        let mut columns = display.unwrap_or(columns);
        if columns.is_empty() && !has_stats {
            for name in ["@timestamp", "@message"] {
                let f = c.field(name);
                columns.push((name.to_string(), CExpr::Field(f)));
            }
        }
        let barrier = stages
            .iter()
            .position(|s| {
                matches!(
                    s,
                    Stage::Sort(_) | Stage::Limit(_) | Stage::Dedup(_) | Stage::Stats(_)
                )
            })
            .unwrap_or(stages.len());
        let top_k = match stages.get(barrier) {
            Some(Stage::Sort(_)) => {
                let after = stages.get(barrier + 1..).unwrap_or_default();
                match after.iter().find(|s| !s.is_one_to_one()) {
                    Some(Stage::Limit(n)) => Some((*n).min(DEFAULT_LIMIT)),
                    None if !has_stats => Some(DEFAULT_LIMIT),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Plan {
            n_slots: c.slots.len(),
            stages,
            columns,
            with_ptr: !has_stats,
            barrier,
            top_k,
        })
    }

    /// Checks that the query can be evaluated locally: no unsupported commands, and every
    /// aggregate referenced after `stats` names one of its columns.
    ///
    /// # Errors
    /// As [`Query::start`].
    pub fn check_local(&self) -> Result<(), EvalError> {
        self.compile().map(|_| ())
    }

    /// Starts a streaming evaluation: push events, then [`Execution::finish`].
    ///
    /// # Errors
    /// [`EvalError::Unsupported`] for commands only CloudWatch runs; [`EvalError::Invalid`]
    /// for a query that parses but cannot mean anything.
    pub fn start(&self, options: &EvalOptions) -> Result<Execution, EvalError> {
        let plan = self.compile()?;
        let barrier = match plan.stages.get(plan.barrier) {
            Some(Stage::Stats(_)) => Barrier::Stats(Groups::default()),
            Some(_) => Barrier::Rows {
                rows: Vec::new(),
                worst: None,
            },
            None => Barrier::Rows {
                rows: Vec::new(),
                worst: None,
            },
        };
        Ok(Execution {
            plan,
            options: options.clone(),
            barrier,
            stats: Statistics::default(),
            ordinal: 0,
        })
    }

    /// Evaluates the query over `events` (owned or borrowed [`LogEvent`]s).
    ///
    /// # Errors
    /// As [`Query::start`].
    pub fn evaluate<I>(&self, events: I, options: &EvalOptions) -> Result<QueryResults, EvalError>
    where
        I: IntoIterator,
        I::Item: Borrow<LogEvent>,
    {
        let mut exec = self.start(options)?;
        for e in events {
            exec.push(e.borrow().as_ref());
        }
        Ok(exec.finish())
    }
}

/// A row that outlives its event: kept for sort, dedup, stats outputs.
#[derive(Debug, Clone)]
struct Row {
    event: Option<LogEvent>,
    ordinal: u64,
    slots: Vec<Value<'static>>,
    /// Sort key, when the barrier is a sort.
    key: Vec<Value<'static>>,
}

struct Rec<'a> {
    event: Option<EventRef<'a>>,
    ordinal: u64,
    slots: Vec<Value<'a>>,
    json: OnceCell<Option<HashMap<String, String>>>,
}

fn borrowed<'r>(v: &'r Value<'_>) -> Value<'r> {
    match v {
        Value::Missing => Value::Missing,
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::Num(n) => Value::Num(*n),
        Value::Time(t) => Value::Time(*t),
        Value::Bool(b) => Value::Bool(*b),
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut HashMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

impl<'a> Rec<'a> {
    fn json_field(&self, name: &str) -> Value<'_> {
        let fields = self.json.get_or_init(|| {
            let msg = self.event?.message.trim_start();
            if !msg.starts_with('{') {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(msg).ok()?;
            let mut out = HashMap::new();
            flatten("", &v, &mut out);
            Some(out)
        });
        match fields.as_ref().and_then(|f| f.get(name)) {
            Some(s) => Value::Str(Cow::Borrowed(s)),
            None => Value::Missing,
        }
    }

    fn to_row(&self, key: Vec<Value<'static>>) -> Row {
        Row {
            event: self.event.map(|e| e.to_owned_event()),
            ordinal: self.ordinal,
            slots: self.slots.iter().map(|v| v.clone().into_owned()).collect(),
            key,
        }
    }
}

impl Row {
    fn rec(&self) -> Rec<'_> {
        Rec {
            event: self.event.as_ref().map(LogEvent::as_ref),
            ordinal: self.ordinal,
            slots: self.slots.iter().map(borrowed).collect(),
            json: OnceCell::new(),
        }
    }
}

#[derive(Default)]
struct Groups {
    map: HashMap<Vec<KeyValue>, Vec<Acc>>,
}

enum Barrier {
    Rows {
        rows: Vec<Row>,
        worst: Option<Vec<Value<'static>>>,
    },
    Stats(Groups),
}

/// A running evaluation. Push events in any order; memory stays bounded by the result.
pub struct Execution {
    plan: Plan,
    options: EvalOptions,
    barrier: Barrier,
    stats: Statistics,
    ordinal: u64,
}

impl Execution {
    /// Offers one event; events outside the time range or log groups are skipped.
    pub fn push(&mut self, event: EventRef<'_>) {
        let o = &self.options;
        if o.start_ms.is_some_and(|s| event.timestamp_ms < s)
            || o.end_ms.is_some_and(|e| event.timestamp_ms > e)
        {
            return;
        }
        if !o.log_groups.is_empty() && !o.log_groups.iter().any(|g| g == event.log_group) {
            return;
        }
        self.stats.records_scanned += 1;
        self.stats.bytes_scanned += event.message.len() as u64;
        self.ordinal += 1;
        let mut rec = Rec {
            event: Some(event),
            ordinal: self.ordinal,
            slots: if self.plan.n_slots == 0 {
                Vec::new()
            } else {
                vec![Value::Missing; self.plan.n_slots]
            },
            json: OnceCell::new(),
        };
        let ev = Evaluator {
            options: &self.options,
        };
        for stage in &self.plan.stages[..self.plan.barrier] {
            if !ev.apply(stage, &mut rec) {
                return;
            }
        }
        self.stats.records_matched += 1;
        match (&mut self.barrier, self.plan.stages.get(self.plan.barrier)) {
            (Barrier::Stats(groups), Some(Stage::Stats(plan))) => ev.accumulate(plan, groups, &rec),
            (Barrier::Rows { rows, worst }, Some(Stage::Sort(keys))) => {
                let key: Vec<Value<'_>> = keys.iter().map(|(k, _)| ev.eval(k, &rec)).collect();
                if let Some(w) = worst {
                    if compare_keys(keys, &key, rec.ordinal, w, u64::MAX) != Ordering::Less {
                        return;
                    }
                }
                let key = key.into_iter().map(Value::into_owned).collect();
                rows.push(rec.to_row(key));
                if let Some(k) = self.plan.top_k {
                    if rows.len() >= k.saturating_mul(2).max(1024) {
                        sort_rows(keys, rows);
                        rows.truncate(k);
                        *worst = rows.last().filter(|_| rows.len() == k).map(|r| r.key.clone());
                    }
                }
            }
            (Barrier::Rows { rows, .. }, _) => rows.push(rec.to_row(Vec::new())),
            (Barrier::Stats(_), _) => {}
        }
    }

    /// The results so far and the statistics.
    pub fn finish(self) -> QueryResults {
        let ev = Evaluator {
            options: &self.options,
        };
        let stages = &self.plan.stages;
        let mut rows = match (self.barrier, stages.get(self.plan.barrier)) {
            (Barrier::Stats(groups), Some(Stage::Stats(plan))) => {
                ev.group_rows(plan, groups, self.plan.n_slots)
            }
            (Barrier::Rows { mut rows, .. }, Some(Stage::Sort(keys))) => {
                sort_rows(keys, &mut rows);
                if let Some(k) = self.plan.top_k {
                    rows.truncate(k);
                }
                rows
            }
            (Barrier::Rows { rows, .. }, _) => rows,
            (Barrier::Stats(_), _) => Vec::new(),
        };
        for stage in stages.iter().skip(self.plan.barrier + 1) {
            rows = ev.apply_rows(stage, rows, self.plan.n_slots);
        }
        rows.truncate(DEFAULT_LIMIT);
        let results = rows
            .iter()
            .map(|row| {
                let rec = row.rec();
                let mut fields: Vec<ResultField> = self
                    .plan
                    .columns
                    .iter()
                    .filter_map(|(name, e)| {
                        let v = ev.eval(e, &rec);
                        (!v.is_missing()).then(|| ResultField {
                            field: name.clone(),
                            value: v.render(),
                        })
                    })
                    .collect();
                if self.plan.with_ptr && row.event.is_some() {
                    fields.push(ResultField {
                        field: "@ptr".into(),
                        value: ptr(row.ordinal),
                    });
                }
                fields
            })
            .collect();
        QueryResults {
            rows: results,
            statistics: self.stats,
        }
    }
}

fn ptr(ordinal: u64) -> String {
    format!("local/{ordinal:012x}")
}

fn compare_keys(
    keys: &[(CExpr, bool)],
    a: &[Value<'_>],
    a_ord: u64,
    b: &[Value<'_>],
    b_ord: u64,
) -> Ordering {
    for (i, (_, desc)) in keys.iter().enumerate() {
        let (x, y) = (
            a.get(i).unwrap_or(&Value::Missing),
            b.get(i).unwrap_or(&Value::Missing),
        );
        let o = match (x.is_missing(), y.is_missing()) {
            (false, false) => {
                let o = x.sort_cmp(y);
                if *desc {
                    o.reverse()
                } else {
                    o
                }
            }
            // Missing values last in either direction.
            _ => x.sort_cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a_ord.cmp(&b_ord)
}

fn sort_rows(keys: &[(CExpr, bool)], rows: &mut [Row]) {
    rows.sort_by(|a, b| compare_keys(keys, &a.key, a.ordinal, &b.key, b.ordinal));
}

struct Evaluator<'o> {
    options: &'o EvalOptions,
}

impl Evaluator<'_> {
    /// Applies a one-row stage; false when the row is filtered out.
    fn apply(&self, stage: &Stage, rec: &mut Rec<'_>) -> bool {
        match stage {
            Stage::Assign(list) => {
                let values: Vec<(usize, Value<'static>)> = list
                    .iter()
                    .map(|(e, slot)| (*slot, self.eval(e, rec).into_owned()))
                    .collect();
                for (slot, v) in values {
                    if let Some(s) = rec.slots.get_mut(slot) {
                        *s = v;
                    }
                }
                true
            }
            Stage::Filter(e) => self.eval(e, rec).truthy(),
            Stage::Parse {
                source,
                regex,
                outputs,
            } => {
                let captured: Vec<(usize, Value<'static>)> = {
                    let v = self.eval(source, rec);
                    match v.as_text() {
                        Some(text) => match regex.captures(&text) {
                            Some(caps) => outputs
                                .iter()
                                .filter_map(|(g, slot)| {
                                    caps.get(*g)
                                        .map(|m| (*slot, Value::Str(Cow::Owned(m.as_str().to_string()))))
                                })
                                .collect(),
                            None => Vec::new(),
                        },
                        None => Vec::new(),
                    }
                };
                for (slot, v) in captured {
                    if let Some(s) = rec.slots.get_mut(slot) {
                        *s = v;
                    }
                }
                true
            }
            Stage::Sort(_) | Stage::Limit(_) | Stage::Dedup(_) | Stage::Stats(_) => true,
        }
    }

    /// Applies any stage to materialized rows.
    fn apply_rows(&self, stage: &Stage, rows: Vec<Row>, n_slots: usize) -> Vec<Row> {
        match stage {
            Stage::Sort(keys) => {
                let mut rows: Vec<Row> = rows
                    .into_iter()
                    .map(|mut r| {
                        let rec = r.rec();
                        let key: Vec<Value<'static>> = keys
                            .iter()
                            .map(|(k, _)| self.eval(k, &rec).into_owned())
                            .collect();
                        drop(rec);
                        r.key = key;
                        r
                    })
                    .collect();
                sort_rows(keys, &mut rows);
                rows
            }
            Stage::Limit(n) => {
                let mut rows = rows;
                rows.truncate(*n);
                rows
            }
            Stage::Dedup(keys) => {
                let mut seen = HashSet::new();
                rows.into_iter()
                    .filter(|r| {
                        let rec = r.rec();
                        let values: Vec<Value<'_>> = keys.iter().map(|k| self.eval(k, &rec)).collect();
                        // Rows missing a dedup field are never duplicates.
                        if values.iter().any(Value::is_missing) {
                            return true;
                        }
                        seen.insert(values.iter().map(KeyValue::from_value).collect::<Vec<_>>())
                    })
                    .collect()
            }
            Stage::Stats(plan) => {
                let mut groups = Groups::default();
                for r in &rows {
                    self.accumulate(plan, &mut groups, &r.rec());
                }
                self.group_rows(plan, groups, n_slots)
            }
            one_row => rows
                .into_iter()
                .filter_map(|r| {
                    let mut rec = r.rec();
                    if !self.apply(one_row, &mut rec) {
                        return None;
                    }
                    let slots = rec.slots.iter().map(|v| v.clone().into_owned()).collect();
                    drop(rec);
                    Some(Row { slots, ..r })
                })
                .collect(),
        }
    }

    fn accumulate(&self, plan: &StatsPlan, groups: &mut Groups, rec: &Rec<'_>) {
        let key: Vec<KeyValue> = plan
            .by
            .iter()
            .map(|(e, _)| KeyValue::from_value(&self.eval(e, rec)))
            .collect();
        let accs = groups
            .map
            .entry(key)
            .or_insert_with(|| plan.aggs.iter().map(|a| Acc::new(a.kind)).collect());
        let time = rec.event.map(|e| e.timestamp_ms);
        for (spec, acc) in plan.aggs.iter().zip(accs.iter_mut()) {
            match &spec.arg {
                None => acc.add(&Value::Bool(true), time),
                Some(e) => acc.add(&self.eval(e, rec), time),
            }
        }
    }

    fn group_rows(&self, plan: &StatsPlan, groups: Groups, n_slots: usize) -> Vec<Row> {
        let mut entries: Vec<(Vec<KeyValue>, Vec<Acc>)> = groups.map.into_iter().collect();
        if entries.is_empty() && plan.by.is_empty() {
            entries.push((Vec::new(), plan.aggs.iter().map(|a| Acc::new(a.kind)).collect()));
        }
        let mut rows: Vec<Row> = entries
            .into_iter()
            .map(|(key, accs)| {
                let mut slots = vec![Value::Missing; n_slots];
                let key_values: Vec<Value<'static>> = key.iter().map(KeyValue::to_value).collect();
                for ((_, slot), v) in plan.by.iter().zip(key_values.iter()) {
                    if let Some(s) = slots.get_mut(*slot) {
                        *s = v.clone();
                    }
                }
                let finals: Vec<Value<'static>> = accs.into_iter().map(Acc::finish).collect();
                let rec = Rec {
                    event: None,
                    ordinal: 0,
                    slots: Vec::new(),
                    json: OnceCell::new(),
                };
                for (e, slot) in &plan.outputs {
                    let v = self.eval_stats(e, &rec, &finals).into_owned();
                    if let Some(s) = slots.get_mut(*slot) {
                        *s = v;
                    }
                }
                Row {
                    event: None,
                    ordinal: 0,
                    slots,
                    key: key_values,
                }
            })
            .collect();
        // Groups in ascending order of their `by` values (CloudWatch does not promise an order;
        // add `sort` for one).
        rows.sort_by(|a, b| {
            a.key
                .iter()
                .zip(b.key.iter())
                .map(|(x, y)| x.sort_cmp(y))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        for (i, r) in rows.iter_mut().enumerate() {
            r.ordinal = i as u64;
        }
        rows
    }

    fn eval_stats<'r>(&self, e: &'r CExpr, rec: &'r Rec<'_>, finals: &'r [Value<'static>]) -> Value<'r> {
        match e {
            CExpr::Agg(i) => finals.get(*i).map_or(Value::Missing, borrowed),
            CExpr::Unary(op, a) => unary(*op, self.eval_stats(a, rec, finals)),
            CExpr::Binary(op, a, b) => binary(
                *op,
                self.eval_stats(a, rec, finals),
                self.eval_stats(b, rec, finals),
            ),
            CExpr::Call { name, args, period } => {
                let args: Vec<Value<'r>> = args.iter().map(|a| self.eval_stats(a, rec, finals)).collect();
                functions::call(name, &args, *period)
            }
            other => self.eval(other, rec),
        }
    }

    fn field<'r>(&self, f: &FieldRef, rec: &'r Rec<'_>) -> Value<'r> {
        if let Some(slot) = f.slot {
            if let Some(v) = rec.slots.get(slot) {
                if !v.is_missing() {
                    return borrowed(v);
                }
            }
        }
        let Some(ev) = rec.event else {
            return Value::Missing;
        };
        match &f.base {
            None => Value::Missing,
            Some(Base::System(sys)) => match sys {
                Sys::Timestamp => Value::Time(ev.timestamp_ms),
                Sys::Message => Value::Str(Cow::Borrowed(ev.message)),
                Sys::LogStream => Value::Str(Cow::Borrowed(ev.log_stream)),
                Sys::Log => match &self.options.account_id {
                    Some(a) => Value::Str(Cow::Owned(format!("{a}:{}", ev.log_group))),
                    None => Value::Str(Cow::Borrowed(ev.log_group)),
                },
                Sys::IngestionTime => Value::Time(ev.ingestion_time_ms.unwrap_or(ev.timestamp_ms)),
                Sys::Ptr => Value::Str(Cow::Owned(ptr(rec.ordinal))),
            },
            Some(Base::Json(name)) => rec.json_field(name),
        }
    }

    fn eval<'r>(&self, e: &'r CExpr, rec: &'r Rec<'_>) -> Value<'r> {
        match e {
            CExpr::Lit(v) => borrowed(v),
            CExpr::Field(f) => self.field(f, rec),
            CExpr::Unary(op, a) => unary(*op, self.eval(a, rec)),
            CExpr::Binary(BinaryOp::And, a, b) => {
                Value::Bool(self.eval(a, rec).truthy() && self.eval(b, rec).truthy())
            }
            CExpr::Binary(BinaryOp::Or, a, b) => {
                Value::Bool(self.eval(a, rec).truthy() || self.eval(b, rec).truthy())
            }
            CExpr::Binary(op, a, b) => binary(*op, self.eval(a, rec), self.eval(b, rec)),
            CExpr::Like {
                negated,
                expr,
                matcher,
            } => {
                let v = self.eval(expr, rec);
                match v.as_text() {
                    Some(t) => Value::Bool(matcher.is_match(&t) != *negated),
                    None => Value::Bool(false),
                }
            }
            CExpr::In { negated, expr, list } => {
                let v = self.eval(expr, rec);
                if v.is_missing() {
                    return Value::Bool(false);
                }
                let found = list
                    .iter()
                    .any(|x| v.compare(&self.eval(x, rec)) == Some(Ordering::Equal));
                Value::Bool(found != *negated)
            }
            CExpr::Bin(p) => match rec.event {
                Some(ev) => functions::floor_time(ev.timestamp_ms, *p).map_or(Value::Missing, Value::Time),
                None => Value::Missing,
            },
            CExpr::Call { name, args, period } => {
                let args: Vec<Value<'r>> = args.iter().map(|a| self.eval(a, rec)).collect();
                functions::call(name, &args, *period)
            }
            CExpr::Agg(_) => Value::Missing,
        }
    }
}

fn unary<'r>(op: UnaryOp, v: Value<'r>) -> Value<'r> {
    match op {
        UnaryOp::Not => Value::Bool(!v.truthy()),
        UnaryOp::Neg => v.as_number().map_or(Value::Missing, |n| Value::Num(-n)),
    }
}

fn binary<'r>(op: BinaryOp, a: Value<'r>, b: Value<'r>) -> Value<'r> {
    let cmp = |want: fn(Ordering) -> bool| Value::Bool(a.compare(&b).is_some_and(want));
    match op {
        BinaryOp::And => Value::Bool(a.truthy() && b.truthy()),
        BinaryOp::Or => Value::Bool(a.truthy() || b.truthy()),
        BinaryOp::Eq => cmp(|o| o == Ordering::Equal),
        BinaryOp::Ne => cmp(|o| o != Ordering::Equal),
        BinaryOp::Lt => cmp(|o| o == Ordering::Less),
        BinaryOp::Le => cmp(|o| o != Ordering::Greater),
        BinaryOp::Gt => cmp(|o| o == Ordering::Greater),
        BinaryOp::Ge => cmp(|o| o != Ordering::Less),
        _ => {
            let (Some(x), Some(y)) = (a.as_number(), b.as_number()) else {
                return Value::Missing;
            };
            let r = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div if y != 0.0 => x / y,
                BinaryOp::Mod if y != 0.0 => x % y,
                BinaryOp::Pow => x.powf(y),
                _ => return Value::Missing,
            };
            if !r.is_finite() {
                return Value::Missing;
            }
            // Time plus or minus a duration stays a time.
            match (op, &a, &b) {
                (BinaryOp::Add | BinaryOp::Sub, Value::Time(_), Value::Num(_)) => Value::Time(r as i64),
                _ => Value::Num(r),
            }
        }
    }
}

/// Exact percentiles up to this many values per group; then a log-bucket sketch with 1%
/// relative accuracy keeps memory bounded.
const EXACT_PCT_VALUES: usize = 10_000;
const SKETCH_GAMMA: f64 = 1.02;

#[derive(Debug, Clone)]
enum Acc {
    Count(u64),
    Distinct(HashSet<KeyValue>),
    Sum {
        sum: f64,
        n: u64,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Min(Option<Value<'static>>),
    Max(Option<Value<'static>>),
    Pct {
        p: f64,
        exact: Vec<f64>,
        sketch: Option<Box<Sketch>>,
    },
    Stddev {
        n: u64,
        mean: f64,
        m2: f64,
    },
    Earliest(Option<(i64, Value<'static>)>),
    Latest(Option<(i64, Value<'static>)>),
}

#[derive(Debug, Clone, Default)]
struct Sketch {
    positive: HashMap<i32, u64>,
    negative: HashMap<i32, u64>,
    zeros: u64,
    n: u64,
}

impl Sketch {
    fn bucket(x: f64) -> i32 {
        (x.ln() / SKETCH_GAMMA.ln()).ceil() as i32
    }

    fn add(&mut self, x: f64) {
        self.n += 1;
        if x > 0.0 {
            *self.positive.entry(Self::bucket(x)).or_default() += 1;
        } else if x < 0.0 {
            *self.negative.entry(Self::bucket(-x)).or_default() += 1;
        } else {
            self.zeros += 1;
        }
    }

    fn value(i: i32) -> f64 {
        2.0 * SKETCH_GAMMA.powi(i) / (SKETCH_GAMMA + 1.0)
    }

    fn quantile(&self, p: f64) -> Option<f64> {
        let rank = nearest_rank(p, self.n)?;
        let mut seen = 0u64;
        let mut neg: Vec<(&i32, &u64)> = self.negative.iter().collect();
        neg.sort_by(|a, b| b.0.cmp(a.0));
        for (i, c) in neg {
            seen += c;
            if seen > rank {
                return Some(-Self::value(*i));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0);
        }
        let mut pos: Vec<(&i32, &u64)> = self.positive.iter().collect();
        pos.sort_by(|a, b| a.0.cmp(b.0));
        for (i, c) in pos {
            seen += c;
            if seen > rank {
                return Some(Self::value(*i));
            }
        }
        None
    }
}

/// 0-based index of the nearest-rank percentile `p` among `n` sorted values.
fn nearest_rank(p: f64, n: u64) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let rank = ((p / 100.0) * n as f64).ceil() as u64;
    Some(rank.clamp(1, n) - 1)
}

impl Acc {
    fn new(kind: AggKind) -> Acc {
        match kind {
            AggKind::Count => Acc::Count(0),
            AggKind::CountDistinct => Acc::Distinct(HashSet::new()),
            AggKind::Sum => Acc::Sum { sum: 0.0, n: 0 },
            AggKind::Avg => Acc::Avg { sum: 0.0, n: 0 },
            AggKind::Min => Acc::Min(None),
            AggKind::Max => Acc::Max(None),
            AggKind::Pct(p) => Acc::Pct {
                p,
                exact: Vec::new(),
                sketch: None,
            },
            AggKind::Stddev => Acc::Stddev {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggKind::Earliest => Acc::Earliest(None),
            AggKind::Latest => Acc::Latest(None),
        }
    }

    fn add(&mut self, v: &Value<'_>, time: Option<i64>) {
        if v.is_missing() {
            return;
        }
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Distinct(set) => {
                set.insert(KeyValue::from_value(v));
            }
            Acc::Sum { sum, n } | Acc::Avg { sum, n } => {
                if let Some(x) = v.as_number() {
                    *sum += x;
                    *n += 1;
                }
            }
            Acc::Min(cur) => {
                if cur.as_ref().is_none_or(|c| v.compare(c) == Some(Ordering::Less)) {
                    *cur = Some(v.clone().into_owned());
                }
            }
            Acc::Max(cur) => {
                if cur
                    .as_ref()
                    .is_none_or(|c| v.compare(c) == Some(Ordering::Greater))
                {
                    *cur = Some(v.clone().into_owned());
                }
            }
            Acc::Pct { exact, sketch, .. } => {
                let Some(x) = v.as_number() else { return };
                match sketch {
                    Some(s) => s.add(x),
                    None => {
                        exact.push(x);
                        if exact.len() > EXACT_PCT_VALUES {
                            let mut s = Box::<Sketch>::default();
                            for y in exact.drain(..) {
                                s.add(y);
                            }
                            exact.shrink_to_fit();
                            *sketch = Some(s);
                        }
                    }
                }
            }
            Acc::Stddev { n, mean, m2 } => {
                if let Some(x) = v.as_number() {
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            Acc::Earliest(cur) => {
                let t = time.unwrap_or(i64::MAX);
                if cur.as_ref().is_none_or(|(ct, _)| t < *ct) {
                    *cur = Some((t, v.clone().into_owned()));
                }
            }
            Acc::Latest(cur) => {
                let t = time.unwrap_or(i64::MIN);
                if cur.as_ref().is_none_or(|(ct, _)| t >= *ct) {
                    *cur = Some((t, v.clone().into_owned()));
                }
            }
        }
    }

    fn finish(self) -> Value<'static> {
        match self {
            Acc::Count(n) => Value::Num(n as f64),
            Acc::Distinct(set) => Value::Num(set.len() as f64),
            Acc::Sum { sum, n } => {
                if n == 0 {
                    Value::Missing
                } else {
                    Value::Num(sum)
                }
            }
            Acc::Avg { sum, n } => {
                if n == 0 {
                    Value::Missing
                } else {
                    Value::Num(sum / n as f64)
                }
            }
            Acc::Min(v) | Acc::Max(v) => v.unwrap_or(Value::Missing),
            Acc::Pct { p, mut exact, sketch } => match sketch {
                Some(s) => s.quantile(p).map_or(Value::Missing, Value::Num),
                None => {
                    exact.sort_by(f64::total_cmp);
                    nearest_rank(p, exact.len() as u64)
                        .and_then(|i| exact.get(usize::try_from(i).ok()?).copied())
                        .map_or(Value::Missing, Value::Num)
                }
            },
            Acc::Stddev { n, m2, .. } => match n {
                0 => Value::Missing,
                1 => Value::Num(0.0),
                n => Value::Num((m2 / (n - 1) as f64).sqrt()),
            },
            Acc::Earliest(v) | Acc::Latest(v) => v.map_or(Value::Missing, |(_, v)| v),
        }
    }
}
