//! The recursive-descent parser of the Logs Insights query language, over the lexer's tokens.
//! Every error names the line, the column, what was expected and what was found; nesting is
//! limited so that no input can exhaust the stack.

use crate::ast::*;
use crate::catalogue::{contains_aggregate, function, FnKind, MANY, UNSUPPORTED_COMMANDS};
pub use crate::lexer::ParseError;
use crate::lexer::{error_at, is_operator_keyword, line_col, Lexer, Tok, Token};

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
        nest: 0,
        in_subquery: false,
    };
    p.query()
}

/// How deep expressions may nest (parentheses, operators, function calls). Real queries stay
/// far below; the limit keeps a hostile query from exhausting the stack here or in the
/// evaluator, which walks the same tree.
pub const MAX_NESTING: usize = 100;

const COMMANDS: &str =
    "a command (fields, display, filter, stats, sort, limit, parse, dedup, unnest, SOURCE, logcompare)";

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    stats_seen: usize,
    /// The current nesting of the expression being parsed.
    nest: usize,
    /// Parsing the query inside `in (...)`, which ends at its `)`.
    in_subquery: bool,
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
                Tok::RParen if self.in_subquery => break,
                _ if self.in_subquery => return Err(self.err("`|` or the `)` that ends the subquery")),
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
        if name.eq_ignore_ascii_case("SOURCE") {
            let save = self.pos;
            if let Some(source) = self.source_command() {
                return Ok(Command::Source(source));
            }
            self.pos = save;
        }
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
                for (i, a) in aggregates.iter().enumerate() {
                    // `stats max(a) as x, max(b) as y, x - y as z`: arithmetic on earlier aliases.
                    let earlier: Vec<&str> = aggregates[..i]
                        .iter()
                        .filter_map(|p| p.alias.as_deref())
                        .collect();
                    let on_aliases = !earlier.is_empty() && fields_within(&a.expr, &earlier);
                    if !contains_aggregate(&a.expr) && !on_aliases {
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
            "unnest" => {
                self.advance();
                let source = self.field_name()?;
                if !self.eat_keyword("into") {
                    return Err(self.err("`into` and the name of the field each element goes to"));
                }
                let into = match self.field_name()? {
                    Expr::Field(n) => n,
                    _ => return Err(self.err("a field name")),
                };
                Ok(Command::Unnest(Unnest { source, into }))
            }
            "logcompare" => {
                self.advance();
                if !self.eat_keyword("timeshift") {
                    return Err(self.err("`timeshift` and a period, as in `logcompare timeshift 7d`"));
                }
                let t = self.advance();
                match t.tok {
                    Tok::Period(p) => Ok(Command::LogCompare(p)),
                    ref other => Err(self.err_at(&t, "a period such as 7d", other.to_string())),
                }
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

    /// `SOURCE 'group', ... [start=T] [end=T]`, up to the next `|`; `None` when it takes another
    /// form (`logGroups(...)`), which stays an unsupported command.
    fn source_command(&mut self) -> Option<Source> {
        self.advance();
        let mut log_groups = Vec::new();
        loop {
            match self.peek().tok.clone() {
                Tok::Str(g) | Tok::Backtick(g) => log_groups.push(g),
                Tok::Ident(g) if !g.eq_ignore_ascii_case("start") && !g.eq_ignore_ascii_case("end") => {
                    log_groups.push(g)
                }
                _ => break,
            }
            self.advance();
            if self.peek().tok == Tok::Comma {
                self.advance();
            }
        }
        let (mut start, mut end) = (None, None);
        while let Tok::Ident(k) = self.peek().tok.clone() {
            let slot = if k.eq_ignore_ascii_case("start") {
                &mut start
            } else if k.eq_ignore_ascii_case("end") {
                &mut end
            } else {
                return None;
            };
            self.advance();
            if self.peek().tok != Tok::Op("=") {
                return None;
            }
            self.advance();
            let t = self.advance();
            *slot = Some(match t.tok {
                Tok::Ident(n) if n.eq_ignore_ascii_case("now") => TimeSpec::Now,
                Tok::Op("-") => match self.advance().tok {
                    Tok::Period(p) => TimeSpec::Relative(-p.fixed_millis()?),
                    _ => return None,
                },
                Tok::Num(n) if n.fract() == 0.0 && n.abs() < 1e16 => TimeSpec::Absolute(n as i64),
                Tok::Str(s) => TimeSpec::Absolute(crate::reader::parse_timestamp(&s)?),
                _ => return None,
            });
        }
        let at_end = matches!(self.peek().tok, Tok::Pipe | Tok::Eof)
            || (self.in_subquery && self.peek().tok == Tok::RParen);
        (at_end && !log_groups.is_empty()).then_some(Source {
            log_groups,
            start,
            end,
        })
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
        self.enter()?;
        let e = self.or(ctx);
        self.nest -= 1;
        e
    }

    /// One level deeper; an error at the current token past [`MAX_NESTING`].
    fn enter(&mut self) -> Result<(), ParseError> {
        self.nest += 1;
        if self.nest > MAX_NESTING {
            let e = self.err(format!(
                "at most {MAX_NESTING} levels of nesting in an expression"
            ));
            self.nest -= 1;
            return Err(ParseError {
                found: format!("deeper nesting at {}", e.found),
                ..e
            });
        }
        Ok(())
    }

    /// Runs `f` one level deeper (operands that recurse: `not`, unary `-`, `^`).
    fn deeper(&mut self, f: impl FnOnce(&mut Self) -> Result<Expr, ParseError>) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = f(self);
        self.nest -= 1;
        e
    }

    /// Each operator of a left-associative chain makes the tree one level deeper.
    fn chain<F>(&mut self, ctx: Ctx, operand: F, op: fn(&Tok) -> Option<BinaryOp>) -> Result<Expr, ParseError>
    where
        F: Fn(&mut Self, Ctx) -> Result<Expr, ParseError>,
    {
        let mut left = operand(self, ctx)?;
        let mut depth = 0;
        let result = loop {
            let Some(o) = op(&self.peek().tok) else {
                break Ok(left);
            };
            if let Err(e) = self.enter() {
                break Err(e);
            }
            depth += 1;
            self.advance();
            match operand(self, ctx) {
                Ok(right) => left = Expr::Binary(o, Box::new(left), Box::new(right)),
                Err(e) => break Err(e),
            }
        };
        self.nest -= depth;
        result
    }

    fn or(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        self.chain(ctx, Self::and, |t| match t {
            Tok::Ident(k) if k.eq_ignore_ascii_case("or") => Some(BinaryOp::Or),
            _ => None,
        })
    }

    fn and(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        self.chain(ctx, Self::not, |t| match t {
            Tok::Ident(k) if k.eq_ignore_ascii_case("and") => Some(BinaryOp::And),
            _ => None,
        })
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
            let inner = self.deeper(|p| p.not(ctx))?;
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
            if self.peek().tok == Tok::LParen {
                let open = self.advance();
                if self.in_subquery {
                    return Err(self.err_at(&open, "a list of values (subqueries do not nest)", "`(`"));
                }
                self.in_subquery = true;
                let saved_stats = std::mem::take(&mut self.stats_seen);
                let query = self.query();
                self.in_subquery = false;
                self.stats_seen = saved_stats;
                let query = query?;
                self.expect(Tok::RParen, "`)` after the subquery")?;
                return Ok(Expr::InQuery {
                    negated,
                    expr: Box::new(left),
                    query: Box::new(query),
                });
            }
            self.expect(Tok::LBracket, "`[` and a list of values, or `(` and a subquery")?;
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
        self.chain(ctx, Self::multiplicative, |t| match t {
            Tok::Op("+") => Some(BinaryOp::Add),
            Tok::Op("-") => Some(BinaryOp::Sub),
            _ => None,
        })
    }

    fn multiplicative(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        self.chain(ctx, Self::power, |t| match t {
            Tok::Op("*") => Some(BinaryOp::Mul),
            Tok::Op("/") => Some(BinaryOp::Div),
            Tok::Op("%") => Some(BinaryOp::Mod),
            _ => None,
        })
    }

    fn power(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        let base = self.unary(ctx)?;
        if self.eat_op("^") {
            let exp = self.deeper(|p| p.power(ctx))?;
            return Ok(Expr::Binary(BinaryOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn unary(&mut self, ctx: Ctx) -> Result<Expr, ParseError> {
        if self.eat_op("-") {
            let inner = self.deeper(|p| p.unary(ctx))?;
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

/// Whether every field `e` names is one of `names` (and it names at least one).
fn fields_within(e: &Expr, names: &[&str]) -> bool {
    fn walk(e: &Expr, names: &[&str], seen: &mut bool) -> bool {
        match e {
            Expr::Field(f) => {
                *seen = true;
                names.contains(&f.as_str())
            }
            Expr::Unary(_, a) => walk(a, names, seen),
            Expr::Binary(_, a, b) => walk(a, names, seen) && walk(b, names, seen),
            Expr::Call { args, .. } => args.iter().all(|a| walk(a, names, seen)),
            Expr::Num(_) | Expr::Str(_) | Expr::Period(_) => true,
            _ => false,
        }
    }
    let mut seen = false;
    walk(e, names, &mut seen) && seen
}
