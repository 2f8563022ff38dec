//! The lexer of the Logs Insights query language: tokens with their byte spans, and the
//! error type every stage of parsing reports (line, column, expected, found).

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

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
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
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// 1-based line and column (in chars) of a byte offset.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
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

pub(crate) fn error_at(
    src: &str,
    offset: usize,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> ParseError {
    let (line, column) = line_col(src, offset);
    ParseError {
        line,
        column,
        expected: expected.into(),
        found: found.into(),
    }
}

pub(crate) struct Lexer<'s> {
    src: &'s str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: Vec<Token>,
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '@' || c == '$'
}

pub(crate) fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '@' || c == '.' || c == '$'
}

pub(crate) fn period_unit(s: &str) -> Option<PeriodUnit> {
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
    pub(crate) fn new(src: &'s str) -> Lexer<'s> {
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

    pub(crate) fn run(mut self) -> Result<Vec<Token>, ParseError> {
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

pub(crate) fn is_operator_keyword(s: &str) -> bool {
    ["and", "or", "not", "like", "in", "by", "as"]
        .iter()
        .any(|k| s.eq_ignore_ascii_case(k))
}
