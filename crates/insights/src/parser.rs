//! Lexer and recursive-descent parser for the Logs Insights query language. Every error names
//! the line, the column, what was expected and what was found.

use crate::ast::*;
use std::fmt;

/// Why a query does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// Parses a query.
///
/// # Errors
/// [`ParseError`] at the first token that does not fit, with what was expected there.
pub fn parse(src: &str) -> Result<Query, ParseError> {
    let tokens = Lexer::new(src).run()?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        stats_seen: 0,
    };
    p.query()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Backtick(String),
    Str(String),
    Regex(String),
    Num(f64),
    Period(Period),
    Pipe,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Op(&'static str),
    Other(char),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Backtick(s) => write!(f, "field `{s}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Regex(s) => write!(f, "regex /{s}/"),
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Period(p) => write!(f, "period {}{:?}", p.count, p.unit),
            Tok::Pipe => f.write_str("`|`"),
            Tok::Comma => f.write_str("`,`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::LBracket => f.write_str("`[`"),
            Tok::RBracket => f.write_str("`]`"),
            Tok::Op(o) => write!(f, "`{o}`"),
            Tok::Other(c) => write!(f, "`{c}`"),
            Tok::Eof => f.write_str("end of query"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

/// 1-based line and column (in chars) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in src.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn error_at(src: &str, offset: usize, expected: impl Into<String>, found: impl Into<String>) -> ParseError {
    let (line, column) = line_col(src, offset);
    ParseError {
        line,
        column,
        expected: expected.into(),
        found: found.into(),
    }
}

struct Lexer<'s> {
    src: &'s str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: Vec<Token>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '$'
}

fn period_unit(s: &str) -> Option<PeriodUnit> {
    let lower = s.to_ascii_lowercase();
    let unit = match lower.as_str() {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => PeriodUnit::Millisecond,
        "s" | "sec" | "secs" | "second" | "seconds" => PeriodUnit::Second,
        "m" | "min" | "mins" | "minute" | "minutes" => PeriodUnit::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" => PeriodUnit::Hour,
        "d" | "day" | "days" => PeriodUnit::Day,
        "w" | "week" | "weeks" => PeriodUnit::Week,
        "mo" | "mon" | "mons" | "month" | "months" => PeriodUnit::Month,
        "q" | "qtr" | "qtrs" | "quarter" | "quarters" => PeriodUnit::Quarter,
        "y" | "yr" | "yrs" | "year" | "years" => PeriodUnit::Year,
        _ => return None,
    };
    Some(unit)
}

impl<'s> Lexer<'s> {
    fn new(src: &'s str) -> Lexer<'s> {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            i: 0,
            out: Vec::new(),
        }
    }

    fn offset(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.src.len(), |(o, _)| *o)
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).map(|(_, c)| *c)
    }

    fn push(&mut self, tok: Tok, start_i: usize) {
        let start = self.offset(start_i);
        let end = self.offset(self.i);
        self.out.push(Token { tok, start, end });
    }

    /// True when a `/` here divides rather than opens a regex.
    fn slash_divides(&self) -> bool {
        // `parse field /re/`: the regex follows a field name.
        let n = self.out.len();
        if n >= 2 && matches!(&self.out[n - 2].tok, Tok::Ident(k) if k.eq_ignore_ascii_case("parse")) {
            return false;
        }
        matches!(
            self.out.last().map(|t| &t.tok),
            Some(Tok::Ident(_) | Tok::Backtick(_) | Tok::Num(_) | Tok::Str(_) | Tok::RParen | Tok::RBracket)
        ) && !matches!(self.out.last().map(|t| &t.tok), Some(Tok::Ident(k)) if is_operator_keyword(k))
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        while let Some(c) = self.peek(0) {
            let start = self.i;
            match c {
                c if c.is_whitespace() => self.i += 1,
                '#' => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                '"' | '\'' => {
                    let s = self.quoted(c, "string")?;
                    self.push(Tok::Str(s), start);
                }
                '`' => {
                    let s = self.quoted('`', "field name")?;
                    self.push(Tok::Backtick(s), start);
                }
                '/' if !self.slash_divides() => {
                    let s = self.regex()?;
                    self.push(Tok::Regex(s), start);
                }
                '0'..='9' => self.number()?,
                '.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => self.number()?,
                c if is_ident_start(c) => {
                    let mut s = String::new();
                    while let Some(c) = self.peek(0) {
                        if is_ident_char(c) {
                            s.push(c);
                            self.i += 1;
                        } else {
                            break;
                        }
                    }
                    self.push(Tok::Ident(s), start);
                }
                _ => {
                    let two: String = [Some(c), self.peek(1)].into_iter().flatten().collect();
                    let op: Option<&'static str> = match two.as_str() {
                        "!=" => Some("!="),
                        "<=" => Some("<="),
                        ">=" => Some(">="),
                        "=~" => Some("=~"),
                        "==" => Some("=="),
                        _ => None,
                    };
                    if let Some(op) = op {
                        self.i += 2;
                        self.push(Tok::Op(op), start);
                        continue;
                    }
                    self.i += 1;
                    let tok = match c {
                        '|' => Tok::Pipe,
                        ',' => Tok::Comma,
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        '[' => Tok::LBracket,
                        ']' => Tok::RBracket,
                        '=' => Tok::Op("="),
                        '<' => Tok::Op("<"),
                        '>' => Tok::Op(">"),
                        '+' => Tok::Op("+"),
                        '-' => Tok::Op("-"),
                        '*' => Tok::Op("*"),
                        '/' => Tok::Op("/"),
                        '%' => Tok::Op("%"),
                        '^' => Tok::Op("^"),
                        '!' => Tok::Op("!"),
                        other => Tok::Other(other),
                    };
                    self.push(tok, start);
                }
            }
        }
        let end = self.src.len();
        self.out.push(Token {
            tok: Tok::Eof,
            start: end,
            end,
        });
        Ok(self.out)
    }

    fn quoted(&mut self, quote: char, what: &str) -> Result<String, ParseError> {
        let open = self.offset(self.i);
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek(0) {
                None => {
                    return Err(error_at(
                        self.src,
                        open,
                        format!("a closing {quote} for the {what} that starts here"),
                        "end of query",
                    ))
                }
                Some('\\') => {
                    let next = self.peek(1);
                    self.i += 2;
                    match next {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some(c) if c == quote || c == '\\' => s.push(c),
                        Some(c) => {
                            s.push('\\');
                            s.push(c);
                        }
                        None => {
                            return Err(error_at(
                                self.src,
                                open,
                                format!("a closing {quote} for the {what} that starts here"),
                                "end of query",
                            ))
                        }
                    }
                }
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn regex(&mut self) -> Result<String, ParseError> {
        let open = self.offset(self.i);
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek(0) {
                None => {
                    return Err(error_at(
                        self.src,
                        open,
                        "a closing / for the regex that starts here",
                        "end of query",
                    ))
                }
                Some('\\') if self.peek(1) == Some('/') => {
                    s.push('/');
                    self.i += 2;
                }
                Some('\\') => {
                    s.push('\\');
                    self.i += 1;
                    if let Some(c) = self.peek(0) {
                        s.push(c);
                        self.i += 1;
                    }
                }
                Some('/') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let start = self.i;
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            if c.is_ascii_digit() || c == '.' {
                text.push(c);
                self.i += 1;
            } else if (c == 'e' || c == 'E')
                && (self.peek(1).is_some_and(|d| d.is_ascii_digit())
                    || (matches!(self.peek(1), Some('+' | '-'))
                        && self.peek(2).is_some_and(|d| d.is_ascii_digit())))
            {
                text.push(c);
                self.i += 1;
                if let Some(sign @ ('+' | '-')) = self.peek(0) {
                    text.push(sign);
                    self.i += 1;
                }
            } else {
                break;
            }
        }
        // A unit directly after digits makes a period: 5m, 1h, 30sec.
        let mut unit = String::new();
        while let Some(c) = self.peek(0) {
            if c.is_alphabetic() {
                unit.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        let at = self.offset(start);
        if unit.is_empty() {
            let n: f64 = text
                .parse()
                .map_err(|_| error_at(self.src, at, "a number", format!("`{text}`")))?;
            self.push(Tok::Num(n), start);
            return Ok(());
        }
        let count: u64 = text.parse().map_err(|_| {
            error_at(
                self.src,
                at,
                "a whole number of time units (5m, 1h)",
                format!("`{text}{unit}`"),
            )
        })?;
        let unit = period_unit(&unit).ok_or_else(|| {
            error_at(
                self.src,
                at,
                "a number or a period with unit ms, s, m, h, d, w, mo, q or y",
                format!("`{text}{unit}`"),
            )
        })?;
        if count == 0 {
            return Err(error_at(
                self.src,
                at,
                "a period greater than zero",
                format!("`{text}`"),
            ));
        }
        self.push(Tok::Period(Period { count, unit }), start);
        Ok(())
    }
}

fn is_operator_keyword(s: &str) -> bool {
    ["and", "or", "not", "like", "in", "by", "as"]
        .iter()
        .any(|k| s.eq_ignore_ascii_case(k))
}

/// What a function is and how many arguments it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FnKind {
    Scalar,
    Aggregate,
}

pub(crate) struct FnSpec {
    pub name: &'static str,
    pub kind: FnKind,
    pub min: usize,
    pub max: usize,
}

const MANY: usize = usize::MAX;

pub(crate) const FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "count",
        kind: FnKind::Aggregate,
        min: 0,
        max: 1,
    },
    FnSpec {
        name: "count_distinct",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "sum",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "avg",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "min",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "max",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "pct",
        kind: FnKind::Aggregate,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "stddev",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "earliest",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "latest",
        kind: FnKind::Aggregate,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "bin",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "ispresent",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "coalesce",
        kind: FnKind::Scalar,
        min: 1,
        max: MANY,
    },
    FnSpec {
        name: "isempty",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "isblank",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "concat",
        kind: FnKind::Scalar,
        min: 1,
        max: MANY,
    },
    FnSpec {
        name: "strlen",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "toupper",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "tolower",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "trim",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "ltrim",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "rtrim",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "substr",
        kind: FnKind::Scalar,
        min: 2,
        max: 3,
    },
    FnSpec {
        name: "replace",
        kind: FnKind::Scalar,
        min: 3,
        max: 3,
    },
    FnSpec {
        name: "strcontains",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "abs",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "ceil",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "floor",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "greatest",
        kind: FnKind::Scalar,
        min: 1,
        max: MANY,
    },
    FnSpec {
        name: "least",
        kind: FnKind::Scalar,
        min: 1,
        max: MANY,
    },
    FnSpec {
        name: "log",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "sqrt",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "datefloor",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "dateceil",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "fromMillis",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "toMillis",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "isValidIp",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "isValidIpV4",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "isValidIpV6",
        kind: FnKind::Scalar,
        min: 1,
        max: 1,
    },
    FnSpec {
        name: "isIpInSubnet",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "isIpv4InSubnet",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
    FnSpec {
        name: "isIpv6InSubnet",
        kind: FnKind::Scalar,
        min: 2,
        max: 2,
    },
];

pub(crate) fn function(name: &str) -> Option<&'static FnSpec> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// Commands Logs Insights has that the local engine does not evaluate.
pub(crate) const UNSUPPORTED_COMMANDS: &[&str] = &[
    "pattern",
    "diff",
    "anomaly",
    "unmask",
    "SOURCE",
    "filterIndex",
    "unnest",
    "lookup",
    "expand",
    "join",
];

const COMMANDS: &str = "a command (fields, display, filter, stats, sort, limit, parse, dedup)";

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    stats_seen: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Scalar functions only.
    Row,
    /// The aggregate of a `stats` projection: aggregates allowed at top level.
    Stats,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        // The lexer always ends the stream with Eof, and `advance` never passes it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err(&self, expected: impl Into<String>) -> ParseError {
        let t = self.peek();
        error_at(self.src, t.start, expected, t.tok.to_string())
    }

    fn err_at(&self, token: &Token, expected: impl Into<String>, found: impl Into<String>) -> ParseError {
        error_at(self.src, token.start, expected, found)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.is_keyword(kw) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok, expected: &str) -> Result<Token, ParseError> {
        if self.peek().tok == tok {
            Ok(self.advance())
        } else {
            Err(self.err(expected))
        }
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        let mut commands = Vec::new();
        loop {
            commands.push(self.command()?);
            match self.peek().tok {
                Tok::Pipe => {
                    self.advance();
                }
                Tok::Eof => break,
                _ => return Err(self.err("`|` or the end of the query")),
            }
        }
        Ok(Query { commands })
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let t = self.peek().clone();
        let name = match &t.tok {
            Tok::Ident(s) => s.clone(),
            _ => return Err(self.err(COMMANDS)),
        };
        if let Some(unsupported) = UNSUPPORTED_COMMANDS
            .iter()
            .find(|c| c.eq_ignore_ascii_case(&name))
        {
            return self.unsupported(unsupported, &t);
        }
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "fields" => {
                self.advance();
                Ok(Command::Fields(self.projections(Ctx::Row)?))
            }
            "display" => {
                self.advance();
                let list = self.projections(Ctx::Row)?;
                Ok(Command::Display(list))
            }
            "filter" => {
                self.advance();
                Ok(Command::Filter(self.expr(Ctx::Row)?))
            }
            "stats" => {
                self.advance();
                self.stats_seen += 1;
                if self.stats_seen > 2 {
                    return Err(self.err_at(&t, "at most two stats commands in a query", "a third `stats`"));
                }
                let aggregates = self.projections(Ctx::Stats)?;
                for a in &aggregates {
                    if !contains_aggregate(&a.expr) {
                        return Err(error_at(
                            self.src,
                            self.src.find(&a.text).unwrap_or(t.start),
                            "an aggregate function (count, count_distinct, sum, avg, min, max, pct, stddev, earliest, latest)",
                            format!("`{}`", a.text),
                        ));
                    }
                }
                let by = if self.eat_keyword("by") {
                    self.projections(Ctx::Row)?
                } else {
                    Vec::new()
                };
                Ok(Command::Stats(Stats { aggregates, by }))
            }
            "sort" => {
                self.advance();
                let mut keys = Vec::new();
                loop {
                    let start = self.peek().start;
                    let expr = self.expr(Ctx::Row)?;
                    let text = self.text_since(start);
                    let descending = if self.eat_keyword("desc") {
                        true
                    } else {
                        self.eat_keyword("asc");
                        false
                    };
                    keys.push(SortKey {
                        expr,
                        text,
                        descending,
                    });
                    if self.peek().tok == Tok::Comma {
                        self.advance();
                    } else {
                        break;
                    }
                }
                Ok(Command::Sort(keys))
            }
            "limit" => {
                self.advance();
                let t = self.advance();
                match t.tok.clone() {
                    Tok::Num(n) if n >= 1.0 && n.fract() == 0.0 && n <= 1e15 => Ok(Command::Limit(n as u64)),
                    other => {
                        Err(self.err_at(&t, "a whole number of rows greater than zero", other.to_string()))
                    }
                }
            }
            "parse" => {
                self.advance();
                self.parse_command()
            }
            "dedup" => {
                self.advance();
                let mut fields = Vec::new();
                loop {
                    fields.push(self.field_name()?);
                    if self.peek().tok == Tok::Comma {
                        self.advance();
                    } else {
                        break;
                    }
                }
                Ok(Command::Dedup(fields))
            }
            _ => Err(self.err(COMMANDS)),
        }
    }

    fn unsupported(&mut self, name: &str, t: &Token) -> Result<Command, ParseError> {
        // Keep the command verbatim up to the next `|` outside brackets.
        let mut depth = 0usize;
        let mut end = t.end;
        loop {
            let tok = self.peek().clone();
            match tok.tok {
                Tok::Eof => break,
                Tok::Pipe if depth == 0 => break,
                Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
                _ => {}
            }
            end = tok.end;
            self.advance();
        }
        let (line, column) = line_col(self.src, t.start);
        Ok(Command::Unsupported(UnsupportedCommand {
            name: name.to_string(),
            text: self.src.get(t.start..end).unwrap_or_default().trim().to_string(),
            line,
            column,
        }))
    }

    fn parse_command(&mut self) -> Result<Command, ParseError> {
        let source = self.field_name()?;
        let t = self.advance();
        match t.tok.clone() {
            Tok::Str(pattern) => {
                let stars = pattern.matches('*').count();
                if !self.eat_keyword("as") {
                    return Err(self.err("`as` and the names of the fields the `*`s capture"));
                }
                let mut names = Vec::new();
                loop {
                    match self.field_name()? {
                        Expr::Field(n) => names.push(n),
                        _ => return Err(self.err("a field name")),
                    }
                    if self.peek().tok == Tok::Comma {
                        self.advance();
                    } else {
                        break;
                    }
                }
                if names.len() != stars {
                    return Err(self.err_at(
                        &t,
                        format!("as many names after `as` as `*` in the pattern ({stars})"),
                        format!("{} names", names.len()),
                    ));
                }
                Ok(Command::Parse(ParseCommand {
                    source,
                    pattern: ParsePattern::Glob { pattern, names },
                }))
            }
            Tok::Regex(pattern) => {
                let re = regex::Regex::new(&pattern)
                    .map_err(|e| self.err_at(&t, "a valid regular expression", regex_error(&e)))?;
                let names: Vec<String> = re.capture_names().flatten().map(str::to_string).collect();
                if names.is_empty() {
                    return Err(self.err_at(
                        &t,
                        "a regex with named groups, e.g. /(?<status>\\d+)/",
                        format!("regex /{pattern}/ without named groups"),
                    ));
                }
                if self.is_keyword("as") {
                    return Err(self.err("`|` (a parse regex names its fields with (?<name>...) groups)"));
                }
                Ok(Command::Parse(ParseCommand {
                    source,
                    pattern: ParsePattern::Regex { pattern, names },
                }))
            }
            other => Err(self.err_at(
                &t,
                "a glob pattern in quotes or a /regex/ with named groups",
                other.to_string(),
            )),
        }
    }

    fn field_name(&mut self) -> Result<Expr, ParseError> {
        let t = self.advance();
        match t.tok.clone() {
            Tok::Ident(s) if !is_operator_keyword(&s) => Ok(Expr::Field(s)),
            Tok::Backtick(s) => Ok(Expr::Field(s)),
            other => Err(self.err_at(&t, "a field name", other.to_string())),
        }
    }

    fn text_since(&self, start: usize) -> String {
        let end = self.tokens.get(self.pos.wrapping_sub(1)).map_or(start, |t| t.end);
        self.src
            .get(start..end.max(start))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    fn projections(&mut self, ctx: Ctx) -> Result<Vec<Projection>, ParseError> {
        let mut out = Vec::new();
        loop {
            let start = self.peek().start;
            let expr = self.expr(ctx)?;
            let text = self.text_since(start);
            let alias = if self.eat_keyword("as") {
                match self.field_name()? {
                    Expr::Field(n) => Some(n),
                    _ => return Err(self.err("a field name")),
                }
            } else {
                None
            };
            out.push(Projection { expr, alias, text });
            if self.peek().tok == Tok::Comma {
                self.advance();
            } else {
                break;
            }
        }
        Ok(out)
    }

    fn expr(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        self.or(ctx)
    }

    fn or(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let mut left = self.and(ctx)?;
        while self.eat_keyword("or") || self.eat_op("||") {
            let right = self.and(ctx)?;
            left = Expr::Binary(BinaryOp::Or, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let mut left = self.not(ctx)?;
        while self.eat_keyword("and") || self.eat_op("&&") {
            let right = self.not(ctx)?;
            left = Expr::Binary(BinaryOp::And, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.peek().tok, Tok::Op(o) if o == op) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn not(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        if self.eat_keyword("not") || self.eat_op("!") {
            let inner = self.not(ctx)?;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(inner)));
        }
        self.comparison(ctx)
    }

    fn comparison(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let left = self.additive(ctx)?;
        let op = match &self.peek().tok {
            Tok::Op("=") | Tok::Op("==") => Some(BinaryOp::Eq),
            Tok::Op("!=") => Some(BinaryOp::Ne),
            Tok::Op("<") => Some(BinaryOp::Lt),
            Tok::Op("<=") => Some(BinaryOp::Le),
            Tok::Op(">") => Some(BinaryOp::Gt),
            Tok::Op(">=") => Some(BinaryOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let right = self.additive(ctx)?;
            return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
        }
        if self.eat_op("=~") {
            let pattern = self.like_pattern()?;
            return Ok(Expr::Like {
                negated: false,
                expr: Box::new(left),
                pattern: Box::new(pattern),
            });
        }
        let negated = if self.is_keyword("not") {
            let next = self.tokens.get(self.pos + 1).map(|t| &t.tok);
            if matches!(next, Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("like") || k.eq_ignore_ascii_case("in"))
            {
                self.advance();
                true
            } else {
                return Ok(left);
            }
        } else {
            false
        };
        if self.eat_keyword("like") {
            let pattern = self.like_pattern()?;
            return Ok(Expr::Like {
                negated,
                expr: Box::new(left),
                pattern: Box::new(pattern),
            });
        }
        if self.eat_keyword("in") {
            self.expect(Tok::LBracket, "`[` and a list of values")?;
            let mut list = Vec::new();
            if self.peek().tok != Tok::RBracket {
                loop {
                    list.push(self.additive(ctx)?);
                    if self.peek().tok == Tok::Comma {
                        self.advance();
                    } else {
                        break;
                    }
                }
            }
            self.expect(Tok::RBracket, "`,` or `]`")?;
            return Ok(Expr::In {
                negated,
                expr: Box::new(left),
                list,
            });
        }
        Ok(left)
    }

    fn like_pattern(&mut self) -> Result<Expr, ParseError> {
        let t = self.advance();
        match t.tok.clone() {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Regex(r) => {
                regex::Regex::new(&r)
                    .map_err(|e| self.err_at(&t, "a valid regular expression", regex_error(&e)))?;
                Ok(Expr::Regex(r))
            }
            other => Err(self.err_at(&t, "a \"string\" or a /regex/", other.to_string())),
        }
    }

    fn additive(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let mut left = self.multiplicative(ctx)?;
        loop {
            let op = match self.peek().tok {
                Tok::Op("+") => BinaryOp::Add,
                Tok::Op("-") => BinaryOp::Sub,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.multiplicative(ctx)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let mut left = self.power(ctx)?;
        loop {
            let op = match self.peek().tok {
                Tok::Op("*") => BinaryOp::Mul,
                Tok::Op("/") => BinaryOp::Div,
                Tok::Op("%") => BinaryOp::Mod,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.power(ctx)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn power(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let base = self.unary(ctx)?;
        if self.eat_op("^") {
            let exp = self.power(ctx)?;
            return Ok(Expr::Binary(BinaryOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn unary(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        if self.eat_op("-") {
            let inner = self.unary(ctx)?;
            return Ok(match inner {
                Expr::Num(n) => Expr::Num(-n),
                other => Expr::Unary(UnaryOp::Neg, Box::new(other)),
            });
        }
        self.primary(ctx)
    }

    fn primary(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Num(n) => {
                self.advance();
                Ok(Expr::Num(n))
            }
            Tok::Str(s) => {
                self.advance();
                Ok(Expr::Str(s))
            }
            Tok::Backtick(s) => {
                self.advance();
                Ok(Expr::Field(s))
            }
            Tok::LParen => {
                self.advance();
                let e = self.expr(ctx)?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::LBracket => {
                self.advance();
                let mut list = Vec::new();
                if self.peek().tok != Tok::RBracket {
                    loop {
                        list.push(self.expr(ctx)?);
                        if self.peek().tok == Tok::Comma {
                            self.advance();
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RBracket, "`,` or `]`")?;
                Ok(Expr::List(list))
            }
            Tok::Ident(ref name) if !is_operator_keyword(name) => {
                let name = name.clone();
                self.advance();
                if self.peek().tok == Tok::LParen {
                    return self.call(&name, &t, ctx);
                }
                Ok(Expr::Field(name))
            }
            _ => Err(self.err("a field, a value, a function call or `(`")),
        }
    }

    fn call(&mut self, name: &str, t: &Token, ctx: Ctx) -> Result<Expr, ParseError> {
        let Some(spec) = function(name) else {
            return Err(self.err_at(t, "a known function", format!("`{name}(`")));
        };
        if spec.kind == FnKind::Aggregate && ctx != Ctx::Stats && self.stats_seen == 0 {
            return Err(self.err_at(
                t,
                "a scalar function (aggregates such as count() belong in stats)",
                format!("`{name}(`"),
            ));
        }
        self.advance(); // (
                        // Aggregates' arguments are row expressions: no aggregates inside aggregates.
        let arg_ctx = if spec.kind == FnKind::Aggregate {
            Ctx::Row
        } else {
            ctx
        };
        let mut args = Vec::new();
        if spec.name == "count" && self.peek().tok == Tok::Op("*") {
            self.advance();
            args.push(Expr::Star);
        } else if self.peek().tok != Tok::RParen {
            loop {
                let arg = match self.peek().tok.clone() {
                    Tok::Period(p) => {
                        self.advance();
                        Expr::Period(p)
                    }
                    Tok::Regex(r) => {
                        self.advance();
                        Expr::Regex(r)
                    }
                    _ => self.expr(arg_ctx)?,
                };
                args.push(arg);
                if self.peek().tok == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        self.expect(Tok::RParen, "`,` or `)`")?;
        if args.len() < spec.min || args.len() > spec.max {
            let wanted = if spec.min == spec.max {
                format!("{} argument(s) for {}()", spec.min, spec.name)
            } else if spec.max == MANY {
                format!("at least {} argument(s) for {}()", spec.min, spec.name)
            } else {
                format!("{} to {} arguments for {}()", spec.min, spec.max, spec.name)
            };
            return Err(self.err_at(t, wanted, format!("{} argument(s)", args.len())));
        }
        if spec.name == "pct" && !matches!(args.get(1), Some(Expr::Num(p)) if (0.0..=100.0).contains(p)) {
            return Err(self.err_at(
                t,
                "a percentile between 0 and 100 as the second argument of pct()",
                "another value",
            ));
        }
        let period_arg = match spec.name {
            "bin" => Some(0),
            "datefloor" | "dateceil" => Some(1),
            _ => None,
        };
        for (i, a) in args.iter().enumerate() {
            let is_period = matches!(a, Expr::Period(_));
            if Some(i) == period_arg && !is_period {
                return Err(self.err_at(
                    t,
                    format!("a period such as 5m as argument {} of {}()", i + 1, spec.name),
                    "another value",
                ));
            }
            if Some(i) != period_arg && is_period {
                return Err(self.err_at(
                    t,
                    format!("a value as argument {} of {}()", i + 1, spec.name),
                    "a period",
                ));
            }
        }
        Ok(Expr::Call {
            name: spec.name.to_string(),
            args,
        })
    }
}

fn regex_error(e: &regex::Error) -> String {
    let s = e.to_string();
    let last = s
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("invalid regex")
        .trim();
    last.trim_start_matches("error: ").to_string()
}

pub(crate) fn contains_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Call { name, args } => {
            function(name).is_some_and(|f| f.kind == FnKind::Aggregate) || args.iter().any(contains_aggregate)
        }
        Expr::Unary(_, a) => contains_aggregate(a),
        Expr::Binary(_, a, b) => contains_aggregate(a) || contains_aggregate(b),
        _ => false,
    }
}
