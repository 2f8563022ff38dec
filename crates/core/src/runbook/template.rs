//! Templating runbook queries and log-group names with values from the incident (`{service}`,
//! `{cluster}`, `{alarm}`, `{tag.team}`), escaping each value for the place it lands in so that
//! nothing an alarm carries can change a query.
//!
//! A placeholder is `{name}` where `name` is a letter followed by letters, digits, `_`, `.`, `:`
//! or `-`; anything else in braces (`/\d{3}/`) is left alone. Where a value lands decides how it
//! is written:
//!
//! | position              | example                          | written as                                  |
//! | --------------------- | -------------------------------- | ------------------------------------------- |
//! | inside `"..."`/`'...'`| `filter svc = "{service_name}"`  | `\` and the quote escaped                   |
//! | inside `/regex/`      | `like /{service_name}/`          | a literal: regex metacharacters and `/` escaped |
//! | bare, in a query      | `filter svc = {service_name}`    | rejected: a bare value could be anything    |
//! | a log-group name      | `/ecs/{service_name}`            | only `A-Z a-z 0-9 . - _ / #` accepted       |
//!
//! Values with control characters (newlines included) are rejected everywhere.

use crate::model::pipeline::IncidentRaised;
use std::collections::BTreeMap;

/// The variables a template may use besides `tag.<key>`, with what each one holds.
pub const VARIABLES: [(&str, &str); 9] = [
    (
        "service",
        "the incident's service: `cluster/service` for ECS services, else the `service` tag or alarm name",
    ),
    (
        "service_name",
        "the ECS service name (`articles-api`); the incident's service when it is not an ECS service",
    ),
    ("cluster", "the ECS cluster name (only for ECS services)"),
    (
        "alarm",
        "the name of the alarm that opened or escalated the incident",
    ),
    ("incident", "the incident id (`INC-20260314-143500-3f9a`)"),
    ("severity", "`SEV1`..`SEV4`"),
    (
        "namespace",
        "the alarm's metric namespace (`AWS/ApplicationELB`), when it has one",
    ),
    ("metric", "the alarm's metric name, when it has one"),
    ("runbook", "the selected runbook's id"),
];

/// Where in a query a placeholder sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Outside any literal: a field name, a keyword, a number would go here.
    Bare,
    /// Inside a string literal with this quote (`"` or `'`).
    Quoted(char),
    /// Inside a backtick-quoted field name.
    Backtick,
    /// Inside a `/regex/` literal.
    Regex,
    /// Inside a `# comment`.
    Comment,
}

/// One `{name}` in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    /// Byte offsets of the braces, `start..end`.
    pub start: usize,
    pub end: usize,
    pub position: Position,
}

/// Values for the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    values: BTreeMap<String, String>,
}

impl TemplateVars {
    pub fn new() -> TemplateVars {
        TemplateVars::default()
    }

    /// Sets `name` (`service`, `tag.team`).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut TemplateVars {
        self.values.insert(name.into(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The incident's values. `tag.<key>` for every alarm tag.
    pub fn from_raised(raised: &IncidentRaised) -> TemplateVars {
        let mut v = TemplateVars::new();
        v.set("service", raised.service.clone());
        v.set("incident", raised.incident_id.as_str());
        v.set("alarm", raised.alarm_name.clone());
        v.set("severity", raised.severity.as_str());
        match &raised.ecs {
            Some(ecs) => {
                v.set("service_name", ecs.service.clone());
                v.set("cluster", ecs.cluster.clone());
            }
            None => {
                // a service named after its alarm ("Orders API 5xx") still names a log group
                v.set("service_name", log_group_safe(&raised.service));
            }
        }
        if let Some(ns) = &raised.namespace {
            v.set("namespace", ns.clone());
        }
        if let Some(m) = &raised.metric_name {
            v.set("metric", m.clone());
        }
        for (k, val) in &raised.tags {
            v.set(format!("tag.{k}"), val.clone());
        }
        for (k, val) in &raised.dimensions {
            v.set(format!("dimension.{k}"), val.clone());
        }
        v
    }

    /// Plausible values for every variable, for linting templates without an incident. Tags
    /// resolve to `sample` whatever their key.
    pub fn sample() -> TemplateVars {
        let mut v = TemplateVars::new();
        for (k, val) in [
            ("service", "prod/sample-api"),
            ("service_name", "sample-api"),
            ("cluster", "prod"),
            ("alarm", "sample-api-alarm"),
            ("incident", "INC-20260101-000000-0000"),
            ("severity", "SEV2"),
            ("namespace", "AWS/ApplicationELB"),
            ("metric", "HTTPCode_Target_5XX_Count"),
            ("runbook", "sample"),
        ] {
            v.set(k, val);
        }
        v.values.insert(SAMPLE_TAG.to_string(), "sample".to_string());
        v
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.values.get(name) {
            return Some(v);
        }
        if name.starts_with("tag.") || name.starts_with("dimension.") {
            return self.values.get(SAMPLE_TAG).map(String::as_str);
        }
        None
    }
}

/// Marks a sample set: any `tag.*` or `dimension.*` resolves.
const SAMPLE_TAG: &str = "\u{0}sample-tag";

fn known_variable(name: &str) -> bool {
    VARIABLES.iter().any(|(k, _)| *k == name)
        || name.strip_prefix("tag.").is_some_and(|k| !k.is_empty())
        || name.strip_prefix("dimension.").is_some_and(|k| !k.is_empty())
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

/// The placeholder starting at byte `i` (which holds `{`), as (name, end offset).
fn placeholder_at(s: &str, i: usize) -> Option<(String, usize)> {
    let rest = s.get(i + 1..)?;
    let mut chars = rest.char_indices();
    let (_, first) = chars.next()?;
    if !is_name_start(first) {
        return None;
    }
    for (j, c) in chars {
        if c == '}' {
            return Some((rest[..j].to_string(), i + 1 + j + 1));
        }
        if !is_name_char(c) {
            return None;
        }
    }
    None
}

/// Words after which a `/` opens a regex rather than dividing.
/// The same rule as the `firebreak-insights` lexer: after a value (a word that is not one of
/// these, a literal, `)` or `]`) a `/` divides; anywhere else it opens a regex.
const REGEX_AFTER_WORDS: [&str; 7] = ["like", "and", "or", "not", "in", "by", "as"];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Punct(char),
}

/// Finds every placeholder and the position it sits in.
pub fn placeholders(template: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut pos = Position::Bare;
    // The last two significant tokens outside literals (most recent last).
    let mut toks: Vec<Tok> = Vec::new();
    let mut word = String::new();
    let mut iter = template.char_indices().peekable();
    let flush = |word: &mut String, toks: &mut Vec<Tok>| {
        if !word.is_empty() {
            toks.push(Tok::Word(std::mem::take(word).to_ascii_lowercase()));
        }
    };
    while let Some((i, c)) = iter.next() {
        if c == '{' {
            if let Some((name, end)) = placeholder_at(template, i) {
                out.push(Placeholder {
                    name,
                    start: i,
                    end,
                    position: pos,
                });
                while iter.peek().is_some_and(|(j, _)| *j < end) {
                    iter.next();
                }
                if pos == Position::Bare {
                    word.push('x');
                }
                continue;
            }
        }
        match pos {
            Position::Bare => {
                if c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '$') {
                    word.push(c);
                    continue;
                }
                flush(&mut word, &mut toks);
                match c {
                    '"' | '\'' => pos = Position::Quoted(c),
                    '`' => pos = Position::Backtick,
                    '#' => pos = Position::Comment,
                    '/' => {
                        if regex_may_start(&toks) {
                            pos = Position::Regex;
                        } else {
                            toks.push(Tok::Punct('/'));
                        }
                    }
                    c if c.is_whitespace() => {}
                    c => toks.push(Tok::Punct(c)),
                }
                if matches!(pos, Position::Quoted(_) | Position::Backtick | Position::Regex) {
                    // a literal is a value token for what follows it
                    toks.push(Tok::Word("\u{0}literal".into()));
                }
                if toks.len() > 2 {
                    toks.remove(0);
                }
            }
            Position::Quoted(q) => {
                if c == '\\' {
                    iter.next();
                } else if c == q {
                    pos = Position::Bare;
                }
            }
            Position::Backtick => {
                if c == '`' {
                    pos = Position::Bare;
                }
            }
            Position::Regex => {
                if c == '\\' {
                    iter.next();
                } else if c == '/' {
                    pos = Position::Bare;
                }
            }
            Position::Comment => {
                if c == '\n' {
                    pos = Position::Bare;
                }
            }
        }
    }
    out
}

fn regex_may_start(toks: &[Tok]) -> bool {
    match toks.last() {
        None => true,
        Some(Tok::Punct(p)) => !matches!(p, ')' | ']'),
        Some(Tok::Word(w)) => REGEX_AFTER_WORDS.contains(&w.as_str()),
    }
}

/// Escapes `value` for the inside of a string literal quoted with `quote`: backslashes and the
/// quote get a backslash.
pub fn escape_string_literal(value: &str, quote: char) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '\\' || c == quote {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Escapes `value` so that, inside `/.../`, it matches itself literally: every ASCII
/// punctuation character (regex metacharacters and the `/` delimiter among them) gets a
/// backslash.
pub fn escape_regex_literal(value: &str) -> String {
    let mut s = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        if c.is_ascii_punctuation() {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

fn check_value(name: &str, value: &str) -> Result<(), crate::Error> {
    if value.chars().any(char::is_control) {
        return Err(crate::Error::invalid(
            format!("template variable {{{name}}}"),
            format!("value {value:?} contains control characters"),
        ));
    }
    Ok(())
}

fn value_for<'v>(vars: &'v TemplateVars, name: &str) -> Result<&'v str, crate::Error> {
    if !known_variable(name) {
        return Err(crate::Error::invalid(
            format!("template variable {{{name}}}"),
            format!(
                "unknown variable (known: {}, tag.<key>)",
                VARIABLES.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let v = vars.lookup(name).ok_or_else(|| {
        crate::Error::invalid(
            format!("template variable {{{name}}}"),
            "has no value for this incident",
        )
    })?;
    check_value(name, v)?;
    Ok(v)
}

/// Fills a Logs Insights query template. Each value is escaped for its position; a placeholder
/// in a bare position, a backtick field name or a comment is an error.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the variable: unknown, without a value, with control
/// characters, or in a position where a value could change the query.
pub fn render_query(template: &str, vars: &TemplateVars) -> Result<String, crate::Error> {
    let mut out = String::with_capacity(template.len() + 32);
    let mut last = 0;
    for p in placeholders(template) {
        let value = value_for(vars, &p.name)?;
        let escaped = match p.position {
            Position::Quoted(q) => escape_string_literal(value, q),
            Position::Regex => escape_regex_literal(value),
            Position::Bare | Position::Backtick | Position::Comment => {
                return Err(crate::Error::invalid(
                    format!("template variable {{{}}}", p.name),
                    format!(
                        "is in a {} position at offset {}; put it inside \"...\" or /.../ so its \
                         value stays a literal",
                        match p.position {
                            Position::Backtick => "backtick field-name",
                            Position::Comment => "comment",
                            _ => "bare",
                        },
                        p.start
                    ),
                ))
            }
        };
        out.push_str(&template[last..p.start]);
        out.push_str(&escaped);
        last = p.end;
    }
    out.push_str(&template[last..]);
    Ok(out)
}

/// Fills a plain-value template (a metric dimension's value): each placeholder becomes its
/// value as it is. The result is a value sent to an API as data, never a query or a name.
///
/// # Errors
/// [`crate::Error::Invalid`] naming a variable the incident has no value for.
pub fn render_value(template: &str, vars: &TemplateVars) -> Result<String, crate::Error> {
    fill(template, vars, |_, _| Ok(()))
}

/// Replaces each placeholder of `template` with its value, after `check(name, value)` accepts it.
fn fill(
    template: &str,
    vars: &TemplateVars,
    check: impl Fn(&str, &str) -> Result<(), crate::Error>,
) -> Result<String, crate::Error> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut last = 0;
    let mut i = 0;
    while let Some(off) = template[i..].find('{') {
        let at = i + off;
        match placeholder_at(template, at) {
            Some((name, end)) => {
                let value = value_for(vars, &name)?;
                check(&name, value)?;
                out.push_str(&template[last..at]);
                out.push_str(value);
                last = end;
                i = end;
            }
            None => i = at + 1,
        }
    }
    out.push_str(&template[last..]);
    Ok(out)
}

/// `value` with every run of characters a log-group name cannot hold replaced by one `-`
/// (`Orders API 5xx` → `Orders-API-5xx`), for a service that is not an ECS service.
pub fn log_group_safe(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Whether `name` is a valid CloudWatch Logs log-group name.
pub fn is_valid_log_group(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#'))
}

/// Whether a log-group template takes any value from the incident (has a placeholder), so the
/// name it gives may have been chosen by whoever wrote the alarm's tags or dimensions.
pub fn log_group_takes_values(template: &str) -> bool {
    template
        .char_indices()
        .any(|(i, c)| c == '{' && placeholder_at(template, i).is_some())
}

/// Fills a log-group name template (`/ecs/{service_name}`). The result must be a valid log-group
/// name, so a value can only ever name a log group.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the variable or the resulting name.
pub fn render_log_group(template: &str, vars: &TemplateVars) -> Result<String, crate::Error> {
    let out = fill(template, vars, |name, value| {
        if is_valid_log_group(value) {
            Ok(())
        } else {
            Err(crate::Error::invalid(
                format!("template variable {{{name}}}"),
                format!(
                    "value {value:?} cannot be part of a log-group name (allowed: A-Z a-z 0-9 . - _ / #)"
                ),
            ))
        }
    })?;
    if !is_valid_log_group(&out) {
        return Err(crate::Error::invalid(
            "log group",
            format!(
                "{out:?} is not a valid log-group name (allowed: A-Z a-z 0-9 . - _ / #, 1-512 characters)"
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(service_name: &str) -> TemplateVars {
        let mut v = TemplateVars::sample();
        v.set("service_name", service_name);
        v
    }

    #[test]
    fn finds_positions() {
        let t = r#"fields @message | filter a = "{service}" and b like /x{cluster}/ | filter c = {alarm} # {severity}
| filter d = '{incident}' | filter `{metric}` > 1"#;
        let got: Vec<(String, Position)> = placeholders(t)
            .into_iter()
            .map(|p| (p.name, p.position))
            .collect();
        assert_eq!(
            got,
            vec![
                ("service".into(), Position::Quoted('"')),
                ("cluster".into(), Position::Regex),
                ("alarm".into(), Position::Bare),
                ("severity".into(), Position::Comment),
                ("incident".into(), Position::Quoted('\'')),
                ("metric".into(), Position::Backtick),
            ]
        );
    }

    #[test]
    fn division_is_not_a_regex() {
        let t =
            "fields a / b as r | filter r > 1 | filter x like /svc={service_name}/ | filter x = \"{alarm}\"";
        let got: Vec<Position> = placeholders(t).into_iter().map(|p| p.position).collect();
        assert_eq!(got, vec![Position::Regex, Position::Quoted('"')]);
        let t = "stats count() / 2 as half | filter m like /{alarm}/";
        let got: Vec<Position> = placeholders(t).into_iter().map(|p| p.position).collect();
        assert_eq!(got, vec![Position::Regex]);
    }

    #[test]
    fn regex_quantifiers_are_not_placeholders() {
        assert!(placeholders(r"filter @message like /\d{3}|a{2,5}/").is_empty());
        assert_eq!(
            render_query(r"filter @message like /\d{3}/", &TemplateVars::new()).unwrap(),
            r"filter @message like /\d{3}/"
        );
    }

    #[test]
    fn hostile_value_stays_a_literal_in_regex_and_string() {
        let v = vars("x/ | stats count() by @message");
        let q = render_query(
            "fields @message | filter @message like /{service_name}/ | filter s = \"{service_name}\"",
            &v,
        )
        .unwrap();
        assert_eq!(
            q,
            r#"fields @message | filter @message like /x\/ \| stats count\(\) by \@message/ | filter s = "x/ | stats count() by @message""#
        );
        // the escaped regex matches exactly the value
        let re_src = escape_regex_literal("x/ | stats count() by @message");
        let re = regex::Regex::new(&format!("^{re_src}$")).unwrap();
        assert!(re.is_match("x/ | stats count() by @message"));
        assert!(!re.is_match("x"));
        // the regex literal ends where the template's did
        let ps = placeholders(&format!("{q} | filter y like /{{alarm}}/"));
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].position, Position::Regex);
    }

    /// Runs `template` filled with `value` over three events, one of which is `value` itself.
    fn matches_only_the_value(template: &str, value: &str) -> Vec<String> {
        use firebreak_insights::{EvalOptions, LogEvent};
        let q = render_query(template, &vars(value)).unwrap();
        let parsed = firebreak_insights::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(parsed.commands.len(), 2, "{q}");
        let events = vec![
            LogEvent::new(1, "g", "s", value),
            LogEvent::new(2, "g", "s", "something else"),
            LogEvent::new(3, "g", "s", "x"),
        ];
        let out = parsed.evaluate(&events, &EvalOptions::default()).unwrap();
        out.rows
            .iter()
            .flat_map(|r| {
                r.iter()
                    .filter(|f| f.field == "@message")
                    .map(|f| f.value.clone())
            })
            .collect()
    }

    #[test]
    fn hostile_values_cannot_change_a_query_the_parser_reads() {
        for value in [
            "x/ | stats count() by @message",
            r#"a" or @message like /./ | stats count() by @message #\"#,
            r"x\/ | fields @log",
            "x' | limit 1",
            "(.*)",
        ] {
            for template in [
                "fields @message | filter @message like /{service_name}/",
                "fields @message | filter @message = \"{service_name}\"",
                "fields @message | filter @message = '{service_name}'",
            ] {
                let got = matches_only_the_value(template, value);
                if template.contains("like") {
                    // a substring match: only lines containing the value
                    assert!(
                        got.iter().all(|m| m.contains(value)),
                        "{template} {value}: {got:?}"
                    );
                    assert!(got.contains(&value.to_string()), "{template} {value}: {got:?}");
                } else {
                    assert_eq!(got, vec![value.to_string()], "{template} {value}");
                }
            }
        }
    }

    #[test]
    fn quotes_and_backslashes_are_escaped_in_strings() {
        let v = vars(r#"a"b\c'"#);
        assert_eq!(
            render_query(r#"filter s = "{service_name}""#, &v).unwrap(),
            r#"filter s = "a\"b\\c'""#
        );
        assert_eq!(
            render_query(r"filter s = '{service_name}'", &v).unwrap(),
            r#"filter s = 'a"b\\c\''"#
        );
    }

    #[test]
    fn bare_backtick_comment_unknown_missing_and_control_values_are_rejected() {
        let v = TemplateVars::sample();
        for (t, needle) in [
            ("filter s = {service}", "bare"),
            ("filter `{service}` = 1", "backtick"),
            ("fields @message # {service}", "comment"),
            ("filter s = \"{servcie}\"", "unknown variable"),
        ] {
            let e = render_query(t, &v).unwrap_err().to_string();
            assert!(e.contains(needle), "{t}: {e}");
        }
        let e = render_query("filter s = \"{cluster}\"", &TemplateVars::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("{cluster}") && e.contains("no value"), "{e}");
        let e = render_query("filter s = \"{service_name}\"", &vars("a\nb"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("control"), "{e}");
    }

    #[test]
    fn a_log_group_takes_values_only_through_a_placeholder() {
        assert!(log_group_takes_values("/ecs/{service_name}"));
        assert!(log_group_takes_values("{tag.log-group}"));
        assert!(!log_group_takes_values("/aws/rds/cluster/prod/error"));
        assert!(!log_group_takes_values("/ecs/{9}"));
    }

    #[test]
    fn log_groups_accept_only_log_group_characters() {
        let mut v = vars("articles-api");
        v.set("service", "prod/articles-api");
        assert_eq!(
            render_log_group("/ecs/{service_name}", &v).unwrap(),
            "/ecs/articles-api"
        );
        assert_eq!(
            render_log_group("/ecs/{service}", &v).unwrap(),
            "/ecs/prod/articles-api"
        );
        let e = render_log_group("/ecs/{service_name}", &vars("x/ | stats count() by @message"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("log-group"), "{e}");
        assert!(render_log_group("/ecs/ bad", &v).is_err());
    }

    #[test]
    fn incident_values_fill_the_variables() {
        let raised = IncidentRaised {
            incident_id: crate::model::incident::IncidentId("INC-20260314-143500-3f9a".into()),
            service: "prod/articles-api".into(),
            ecs: Some(crate::model::incident::EcsService::new("prod", "articles-api")),
            severity: crate::model::severity::Severity::Sev2,
            alarm_name: "articles-api-5xx-rate".into(),
            alarm_at: chrono::Utc::now(),
            runbook_hint: None,
            namespace: Some("AWS/ApplicationELB".into()),
            metric_name: None,
            dimensions: Default::default(),
            composite_rule: None,
            tags: [("team".to_string(), "content".to_string())]
                .into_iter()
                .collect(),
            reopened: 0,
        };
        let v = TemplateVars::from_raised(&raised);
        assert_eq!(
            render_query(
                "filter a = \"{service_name}|{cluster}|{alarm}|{severity}|{tag.team}\"",
                &v
            )
            .unwrap(),
            "filter a = \"articles-api|prod|articles-api-5xx-rate|SEV2|content\""
        );
        assert!(render_query("filter a = \"{metric}\"", &v).is_err());
        assert!(render_query("filter a = \"{tag.owner}\"", &v).is_err());
    }
}
