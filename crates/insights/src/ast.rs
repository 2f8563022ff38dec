//! The syntax tree of a Logs Insights query, as the parser produces it.

use std::fmt;

/// A parsed query: its commands in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub commands: Vec<Command>,
}

/// One command of the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `fields a, b, f(x) as y`
    Fields(Vec<Projection>),
    /// `display a, b`: the columns of the result (the last `display` wins).
    Display(Vec<Projection>),
    /// `filter expr`
    Filter(Expr),
    /// `stats agg(...) [as name], ... [by expr [as name], ...]`
    Stats(Stats),
    /// `sort expr [asc|desc], ...`
    Sort(Vec<SortKey>),
    /// `limit n`
    Limit(u64),
    /// `parse field "glob" as a, b` or `parse field /(?<name>re)/`
    Parse(ParseCommand),
    /// `dedup a, b`
    Dedup(Vec<Expr>),
    /// `unnest field into name`: one row per element of the list in `field` (from
    /// `jsonParse`); any other value is a list of one.
    Unnest(Unnest),
    /// `SOURCE 'group' [, 'group'...] [start=-1d] [end=now]`: the log groups and window.
    Source(Source),
    /// `logcompare timeshift 7d`: the results over the window next to those over the window
    /// shifted back by the period.
    LogCompare(Period),
    /// A command Logs Insights knows but the local engine cannot evaluate (`pattern`, `diff`,
    /// `anomaly`, `unmask`, `SOURCE`, `filterIndex`, ...). Kept verbatim.
    Unsupported(UnsupportedCommand),
}

impl Command {
    /// The command's keyword, lower case (`fields`, `stats`, ...; for unsupported commands the
    /// name as written).
    pub fn name(&self) -> &str {
        match self {
            Command::Fields(_) => "fields",
            Command::Display(_) => "display",
            Command::Filter(_) => "filter",
            Command::Stats(_) => "stats",
            Command::Sort(_) => "sort",
            Command::Limit(_) => "limit",
            Command::Parse(_) => "parse",
            Command::Dedup(_) => "dedup",
            Command::Unnest(_) => "unnest",
            Command::Source(_) => "SOURCE",
            Command::LogCompare(_) => "logcompare",
            Command::Unsupported(u) => &u.name,
        }
    }
}

/// An expression with an optional `as` name. `text` is the expression as written (whitespace
/// trimmed), which names the result column when there is no alias (`count(*)`, `bin(5m)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub expr: Expr,
    pub alias: Option<String>,
    pub text: String,
}

impl Projection {
    /// The column this projection produces.
    pub fn output_name(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unnest {
    pub source: Expr,
    pub into: String,
}

/// A time of `SOURCE ... start=... end=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// `now`: the end of the query's window (the current time when it has none).
    Now,
    /// `-1d`, `-30m`: milliseconds before `now` (negative offsets).
    Relative(i64),
    /// Epoch milliseconds (a number or an RFC 3339 string).
    Absolute(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub log_groups: Vec<String>,
    pub start: Option<TimeSpec>,
    pub end: Option<TimeSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub aggregates: Vec<Projection>,
    pub by: Vec<Projection>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub text: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParseCommand {
    pub source: Expr,
    pub pattern: ParsePattern,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParsePattern {
    /// `"* [*] *" as a, b, c`: each `*` captures into the next name.
    Glob { pattern: String, names: Vec<String> },
    /// `/(?<name>...)/`: each named group becomes a field.
    Regex { pattern: String, names: Vec<String> },
}

/// A command the local engine does not evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedCommand {
    pub name: String,
    /// The whole command as written.
    pub text: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for UnsupportedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: `{}` runs only in CloudWatch Logs Insights, not in the local engine",
            self.line, self.column, self.name
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

/// A time unit of `bin()`, `datefloor()` and `dateceil()` periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// `5m`, `1h`, `30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u64,
    pub unit: PeriodUnit,
}

impl Period {
    /// The period in milliseconds, for the fixed-length units (not month, quarter, year).
    pub fn fixed_millis(&self) -> Option<i64> {
        let unit: i64 = match self.unit {
            PeriodUnit::Millisecond => 1,
            PeriodUnit::Second => 1_000,
            PeriodUnit::Minute => 60_000,
            PeriodUnit::Hour => 3_600_000,
            PeriodUnit::Day => 86_400_000,
            PeriodUnit::Week => 7 * 86_400_000,
            PeriodUnit::Month | PeriodUnit::Quarter | PeriodUnit::Year => return None,
        };
        i64::try_from(self.count).ok()?.checked_mul(unit)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field: `@message`, `status`, `a.b.0`, `` `my field` ``.
    Field(String),
    Str(String),
    Num(f64),
    /// `/pattern/`
    Regex(String),
    Period(Period),
    /// `*` inside `count(*)`.
    Star,
    List(Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `e like "text"` (substring), `e like /re/`, `e =~ /re/`, and their negations.
    Like {
        negated: bool,
        expr: Box<Expr>,
        pattern: Box<Expr>,
    },
    /// `e in [..]`, `e not in [..]`
    In {
        negated: bool,
        expr: Box<Expr>,
        list: Vec<Expr>,
    },
    /// `e in (subquery)`, `e not in (subquery)`: the values of the subquery's first column.
    InQuery {
        negated: bool,
        expr: Box<Expr>,
        query: Box<Query>,
    },
    /// A function call; `name` is the canonical spelling (`fromMillis`, `count_distinct`).
    Call {
        name: String,
        args: Vec<Expr>,
    },
}
