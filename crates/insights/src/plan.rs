//! Planning: compiles a parsed [`Query`] into a [`Plan`], a pipeline of stages over numbered
//! slots, resolving names once (system fields, JSON fields of the message, assigned names and
//! paths into `jsonParse` structures, `stats` columns) so that evaluation does no lookups by
//! name. Also finds what lets a scan skip lines unparsed: the literals every matching
//! `@message` must contain.

use crate::ast::*;
use crate::catalogue::{contains_aggregate, function, FnKind};
use crate::eval::{EvalError, DEFAULT_LIMIT};
use crate::value::Value;
use crate::Unsupported;
use regex::Regex;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sys {
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
pub(crate) enum Base {
    System(Sys),
    /// A field of a JSON message (`status`, `a.b.0`).
    Json(Box<str>),
}

#[derive(Debug, Clone)]
pub(crate) struct FieldRef {
    /// Set when a command assigns this name (`as`, `parse`, `stats`, `unnest`).
    pub slot: Option<usize>,
    /// A path into the structure an assigned name holds: `js.accounts` after
    /// `jsonParse(@message) as js`.
    pub path: Option<(usize, Box<str>)>,
    pub base: Option<Base>,
}

#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Substring(Box<memchr::memmem::Finder<'static>>),
    Regex(Regex),
}

impl Matcher {
    pub(crate) fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Substring(f) => f.find(s.as_bytes()).is_some(),
            Matcher::Regex(r) => r.is_match(s),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum CExpr {
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
    /// `e in (subquery)`: membership in the values of subquery `set`.
    InSet {
        negated: bool,
        expr: Box<CExpr>,
        set: usize,
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
pub(crate) enum AggKind {
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
pub(crate) struct AggSpec {
    pub kind: AggKind,
    /// None for `count()` and `count(*)`.
    pub arg: Option<CExpr>,
}

#[derive(Debug, Clone)]
pub(crate) struct StatsPlan {
    pub by: Vec<(CExpr, usize)>,
    pub aggs: Vec<AggSpec>,
    /// In order; a later output may read an earlier one's slot (`x - y as z`).
    pub outputs: Vec<(CExpr, usize)>,
}

/// One key of a sort: `expr`, descending or not, and where missing values go
/// (`sortsFirst(expr)` puts them first; by default they come last in either direction).
#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    pub expr: CExpr,
    pub descending: bool,
    pub missing_first: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Stage {
    Assign(Vec<(CExpr, usize)>),
    Filter(CExpr),
    Parse {
        source: CExpr,
        regex: Regex,
        outputs: Vec<(usize, usize)>,
    },
    /// One row per element of the list `source` evaluates to, the element in `slot`.
    Unnest {
        source: CExpr,
        slot: usize,
    },
    Sort(Vec<SortKey>),
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
pub(crate) struct Plan {
    pub n_slots: usize,
    pub stages: Vec<Stage>,
    /// Result columns: name and how to read it from a final row.
    pub columns: Vec<(String, CExpr)>,
    /// Append `@ptr` to each row (queries without stats).
    pub with_ptr: bool,
    /// Index of the first stage that needs more than one row.
    pub barrier: usize,
    /// For a barrier `sort`: keep only this many rows.
    pub top_k: Option<usize>,
    /// The subqueries of `in (...)`, by the index `CExpr::InSet` names.
    pub subqueries: Vec<Arc<Plan>>,
    /// `SOURCE`: the log groups and window this query reads.
    pub source: Option<Source>,
    /// `logcompare timeshift P`.
    pub logcompare: Option<Period>,
    /// Literals the `@message` of every event that passes the first filter contains (all of
    /// them: the filter's conjuncts), so that a scan may drop lines lacking one unparsed.
    /// Empty when nothing is known.
    pub needles: Vec<Vec<u8>>,
    /// Whether any expression reads `@message` or a field of a JSON message (when not, a scan
    /// need not decode messages).
    pub reads_message: bool,
    /// Slots a record needs before the barrier: none when no stage there assigns any.
    pub row_slots: usize,
    /// The keys of a `dedup` right after the barrier's sort (see `compile_inner`).
    pub dedup_keys: Option<Vec<CExpr>>,
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
    subqueries: Vec<Arc<Plan>>,
    reads_message: std::cell::Cell<bool>,
}

fn slot_ref(slot: usize) -> CExpr {
    CExpr::Field(FieldRef {
        slot: Some(slot),
        path: None,
        base: None,
    })
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
        // `js.accounts.0.id`: the longest assigned prefix holds the structure.
        let path = if slot.is_none() {
            name.char_indices()
                .filter(|(_, c)| *c == '.')
                .map(|(i, _)| i)
                .rev()
                .find_map(|i| {
                    let s = self.slot_of.get(&name[..i])?;
                    Some((*s, Box::from(&name[i + 1..])))
                })
        } else {
            None
        };
        if self.stats_columns.is_some() {
            // After stats only the stats columns (and later assignments) exist.
            return FieldRef {
                slot,
                path,
                base: None,
            };
        }
        let base = Some(match system_field(name) {
            Some(sys) => {
                if sys == Sys::Message {
                    self.reads_message.set(true);
                }
                Base::System(sys)
            }
            None => {
                self.reads_message.set(true);
                Base::Json(name.into())
            }
        });
        FieldRef { slot, path, base }
    }

    /// An expression that may name a stats column by its text.
    fn projection(&mut self, expr: &Expr, text: &str) -> Result<CExpr, EvalError> {
        if let Some(cols) = &self.stats_columns {
            if let Some(slot) = cols.get(&normalize(text)) {
                return Ok(slot_ref(*slot));
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
            Expr::InQuery { negated, expr, query } => {
                let plan = query.compile_inner(true)?;
                self.subqueries.push(Arc::new(plan));
                CExpr::InSet {
                    negated: *negated,
                    expr: Box::new(self.expr(expr)?),
                    set: self.subqueries.len() - 1,
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
    fn stats_output(
        &mut self,
        e: &Expr,
        aggs: &mut Vec<AggSpec>,
        aliases: &HashMap<String, usize>,
    ) -> Result<CExpr, EvalError> {
        match e {
            // An earlier output of the same stats, by its alias.
            Expr::Field(f) if aliases.contains_key(f) => Ok(aliases.get(f).map_or(CExpr::Lit(Value::Missing), |s| slot_ref(*s))),
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
            Expr::Unary(op, a) => Ok(CExpr::Unary(*op, Box::new(self.stats_output(a, aggs, aliases)?))),
            Expr::Binary(op, a, b) => Ok(CExpr::Binary(
                *op,
                Box::new(self.stats_output(a, aggs, aliases)?),
                Box::new(self.stats_output(b, aggs, aliases)?),
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
                    .map(|a| self.stats_output(a, aggs, aliases))
                    .collect::<Result<_, _>>()?;
                Ok(CExpr::Call {
                    name: spec.name,
                    args,
                    period,
                })
            }
            // A field outside an aggregate has no single value per group.
            Expr::Field(f) => Err(EvalError::Invalid(format!(
                "`{f}` in stats must be inside an aggregate, after `by`, or an alias of an earlier aggregate of this stats"
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
    /// Compiles the query (`sub`: as the subquery of an `in (...)`).
    pub(crate) fn compile_inner(&self, sub: bool) -> Result<Plan, EvalError> {
        self.validate_local()?;
        let mut c = Compiler {
            slots: Vec::new(),
            slot_of: HashMap::new(),
            stats_columns: None,
            subqueries: Vec::new(),
            reads_message: std::cell::Cell::new(false),
        };
        let mut source = None;
        let mut logcompare = None;
        let has_stats = self.commands.iter().any(|c| matches!(c, Command::Stats(_)));
        let mut stages = Vec::new();
        // Result columns when there is no stats: fields/parse outputs, or the last display.
        let mut columns: Vec<(String, CExpr)> = Vec::new();
        let mut display: Option<Vec<(String, CExpr)>> = None;
        let mut seen_sort = false;
        let mut seen_order_dependent = false;
        let timestamp_desc = || {
            Stage::Sort(vec![SortKey {
                expr: CExpr::Field(FieldRef {
                    slot: None,
                    path: None,
                    base: Some(Base::System(Sys::Timestamp)),
                }),
                descending: true,
                missing_first: false,
            }])
        };
        let last = self.commands.len().saturating_sub(1);
        fn add_column(columns: &mut Vec<(String, CExpr)>, name: &str, e: CExpr) {
            if let Some(existing) = columns.iter_mut().find(|(n, _)| n == name) {
                existing.1 = e;
            } else {
                columns.push((name.to_string(), e));
            }
        }

        for (i, cmd) in self.commands.iter().enumerate() {
            match cmd {
                Command::Source(s) => {
                    if i != 0 {
                        return Err(EvalError::Invalid(
                            "SOURCE must be the first command of a query".into(),
                        ));
                    }
                    source = Some(s.clone());
                }
                Command::LogCompare(p) => {
                    if i != last || sub {
                        return Err(EvalError::Invalid(
                            "logcompare must be the last command of the query (and not in a subquery)".into(),
                        ));
                    }
                    if p.fixed_millis().is_none() {
                        return Err(EvalError::Invalid(
                            "logcompare timeshift takes a fixed period (ms, s, m, h, d, w)".into(),
                        ));
                    }
                    logcompare = Some(*p);
                }
                Command::Unnest(u) => {
                    let source = c.expr(&u.source)?;
                    let slot = c.slot(&u.into);
                    add_column(&mut columns, &u.into, slot_ref(slot));
                    stages.push(Stage::Unnest { source, slot });
                }
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
                            add_column(&mut columns, &name, slot_ref(slot));
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
                            cols.push((name, slot_ref(slot)));
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
                        add_column(&mut columns, name, slot_ref(slot));
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
                        .map(|k| {
                            // `sort sortsFirst(f)`: rows missing `f` first; `sortsLast(f)`: last.
                            let (expr, text, missing_first) = match &k.expr {
                                Expr::Call { name, args }
                                    if args.len() == 1 && (name == "sortsFirst" || name == "sortsLast") =>
                                {
                                    let inner = &args[0];
                                    let t = k.text.find('(').and_then(|a| {
                                        k.text.rfind(')').map(|b| k.text[a + 1..b].to_string())
                                    });
                                    (inner, t.unwrap_or_default(), name == "sortsFirst")
                                }
                                e => (e, k.text.clone(), false),
                            };
                            Ok(SortKey {
                                expr: c.projection(expr, &text)?,
                                descending: k.descending,
                                missing_first,
                            })
                        })
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
                    let mut aliases: HashMap<String, usize> = HashMap::new();
                    let mut pending: Vec<(String, usize)> = Vec::new();
                    for p in &s.aggregates {
                        let e = c.stats_output(&p.expr, &mut aggs, &aliases)?;
                        outputs_compiled.push((e, p));
                        if let Some(a) = &p.alias {
                            // Slots for aliases are taken now so that later outputs can read them.
                            let slot = c.slot(a);
                            aliases.insert(a.clone(), slot);
                            pending.push((a.clone(), slot));
                        }
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
                        .map(|(n, slot)| (n, slot_ref(slot)))
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
        if logcompare.is_some() && !has_stats {
            // `logcompare` over events: counts of message patterns (digits masked) per window.
            let message = CExpr::Field(c.field("@message"));
            let (pattern, count) = (c.slot("@pattern"), c.slot("count"));
            stages.push(Stage::Stats(Box::new(StatsPlan {
                by: vec![(
                    CExpr::Call {
                        name: "mask_digits",
                        args: vec![message],
                        period: None,
                    },
                    pattern,
                )],
                aggs: vec![AggSpec {
                    kind: AggKind::Count,
                    arg: None,
                }],
                outputs: vec![(CExpr::Agg(0), count)],
            })));
            columns = vec![
                ("@pattern".into(), slot_ref(pattern)),
                ("count".into(), slot_ref(count)),
            ];
            display = None;
        }
        let has_stats = has_stats || logcompare.is_some();
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
        // `sort | dedup f [| limit n]`: the first row of each key in sort order is the least one,
        // so the barrier keeps one row per key (and a top-k of the rows missing `f`).
        let dedup_keys = match (stages.get(barrier), stages.get(barrier + 1)) {
            (Some(Stage::Sort(_)), Some(Stage::Dedup(keys)))
                if stages
                    .get(barrier + 2..)
                    .unwrap_or_default()
                    .iter()
                    .all(|s| matches!(s, Stage::Limit(_))) =>
            {
                Some(keys.clone())
            }
            _ => None,
        };
        let top_k = match stages.get(barrier) {
            Some(Stage::Sort(_)) if dedup_keys.is_some() => Some(
                stages
                    .get(barrier + 2..)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|s| match s {
                        Stage::Limit(n) => Some(*n),
                        _ => None,
                    })
                    .min()
                    .unwrap_or(DEFAULT_LIMIT)
                    .min(DEFAULT_LIMIT),
            ),
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
        let needles = match stages.first() {
            Some(Stage::Filter(e)) => {
                let mut out = Vec::new();
                message_needles(e, &mut out);
                out
            }
            _ => Vec::new(),
        };
        let row_slots = if stages[..barrier.min(stages.len())]
            .iter()
            .any(|s| matches!(s, Stage::Assign(_) | Stage::Parse { .. } | Stage::Unnest { .. }))
        {
            c.slots.len()
        } else {
            0
        };
        Ok(Plan {
            n_slots: c.slots.len(),
            stages,
            columns,
            with_ptr: !has_stats,
            barrier,
            top_k,
            subqueries: c.subqueries,
            source,
            logcompare,
            needles,
            reads_message: c.reads_message.get(),
            row_slots,
            dedup_keys,
        })
    }

    /// Compiles the query to run.
    pub(crate) fn compile(&self) -> Result<Plan, EvalError> {
        self.compile_inner(false)
    }
}

/// Whether a literal can be looked for in the JSON-escaped text of a message: no quote,
/// backslash, slash or control character (which an encoder could escape).
fn plain_literal(l: &[u8]) -> bool {
    !l.is_empty() && l.iter().all(|b| *b >= 0x20 && !matches!(b, b'"' | b'\\' | b'/'))
}

/// The literals an event's `@message` must contain to pass `e` (a conjunction), when they can
/// be checked on the JSON-escaped text.
fn message_needles(e: &CExpr, out: &mut Vec<Vec<u8>>) {
    match e {
        CExpr::Binary(BinaryOp::And, a, b) => {
            message_needles(a, out);
            message_needles(b, out);
        }
        // `level = "error"` on a field of a JSON message (or on `@message`): the text is in the
        // message. Not for numbers, which compare by value (`500` = `5e2`).
        CExpr::Binary(BinaryOp::Eq, a, b) => {
            let (field, lit) = match (a.as_ref(), b.as_ref()) {
                (CExpr::Field(f), CExpr::Lit(Value::Str(s)))
                | (CExpr::Lit(Value::Str(s)), CExpr::Field(f)) => (f, s),
                _ => return,
            };
            let on_message = field.slot.is_none()
                && field.path.is_none()
                && matches!(field.base, Some(Base::Json(_)) | Some(Base::System(Sys::Message)));
            if on_message && crate::value::parse_number(lit).is_none() && plain_literal(lit.as_bytes()) {
                out.push(lit.as_bytes().to_vec());
            }
        }
        CExpr::Like {
            negated: false,
            expr,
            matcher,
        } => {
            let CExpr::Field(FieldRef {
                slot: None,
                path: None,
                base: Some(Base::System(Sys::Message)),
            }) = expr.as_ref()
            else {
                return;
            };
            let literal: Option<Vec<u8>> = match matcher.as_ref() {
                Matcher::Substring(f) => Some(f.needle().to_vec()),
                Matcher::Regex(r) => {
                    let p = r.as_str();
                    p.bytes()
                        .all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(
                                    b,
                                    b' ' | b'_'
                                        | b'-'
                                        | b':'
                                        | b'='
                                        | b','
                                        | b'@'
                                        | b'#'
                                        | b'%'
                                        | b'&'
                                        | b'<'
                                        | b'>'
                                        | b'!'
                                        | b'\''
                                        | b'~'
                                        | b';'
                                )
                        })
                        .then(|| p.as_bytes().to_vec())
                }
            };
            if let Some(l) = literal.filter(|l| plain_literal(l)) {
                out.push(l);
            }
        }
        _ => {}
    }
}
