//! Runbook lint: everything that would make a runbook fail at 3am, found at commit time. Every
//! query parses (with the incident's values templated in), every cause names a query that
//! exists, every remediation is a known action with valid parameters, and no two runbooks claim
//! the same alarm at the same priority.

use super::model::{glob_matches, globs_intersect, Measure, Runbook, Signature, STATUS_CHECKS};
pub use super::source::{has_errors, Finding, Level};
use super::source::{parse_source, read_dir, RunbookSource};
use super::template::{self, Position, TemplateVars};
use crate::model::remedy::Action;
use std::collections::{BTreeMap, BTreeSet};

fn serde_measure(m: Measure) -> &'static str {
    match m {
        Measure::FailedRequests => "failed-requests",
        Measure::Requests => "requests",
    }
}

/// Lints every runbook in `dir` (all `*.yaml` but `policy.yaml`).
///
/// # Errors
/// [`crate::Error::Invalid`] when the directory or a file cannot be read.
pub fn lint_dir(dir: &std::path::Path) -> Result<Vec<Finding>, crate::Error> {
    let sources = read_dir(dir)?;
    let mut findings = lint_sources(&sources);
    if sources.is_empty() {
        findings.push(Finding::warning(
            dir.display().to_string(),
            None,
            "-",
            "no runbooks (*.yaml) found",
        ));
    }
    Ok(findings)
}

/// Lints runbook files: each on its own, then across files. Errors first, then warnings, each
/// in file order.
pub fn lint_sources(sources: &[RunbookSource]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut parsed: Vec<(&str, Runbook)> = Vec::new();
    for src in sources {
        match parse_source(src) {
            Ok(rb) => {
                findings.extend(lint_runbook(&src.file, &rb));
                parsed.push((&src.file, rb));
            }
            Err(f) => findings.push(f),
        }
    }
    findings.extend(lint_across(&parsed));
    findings.sort_by_key(|f| f.level);
    findings
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// The position of a syntax error in a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a Logs Insights query with `firebreak-insights`.
///
/// # Errors
/// The parser's message with its line and column.
pub fn check_query_syntax(query: &str) -> Result<(), QuerySyntaxError> {
    firebreak_insights::parse(query)
        .map(|_| ())
        .map_err(|e| QuerySyntaxError {
            line: e.line,
            column: e.column,
            message: format!("expected {}, found {}", e.expected, e.found),
        })
}

/// The template with each quoted or regex placeholder replaced by letters of the same length, so
/// a parse error's line and column point into the template as written.
fn same_length_fill(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut last = 0;
    for p in template::placeholders(query) {
        if matches!(p.position, Position::Quoted(_) | Position::Regex) {
            out.push_str(&query[last..p.start]);
            out.push_str(&"x".repeat(p.end - p.start));
            last = p.end;
        }
    }
    out.push_str(&query[last..]);
    out
}

/// Lints one runbook on its own.
pub fn lint_runbook(file: &str, rb: &Runbook) -> Vec<Finding> {
    let mut out = Vec::new();
    let id = Some(rb.id.as_str());
    let err =
        |out: &mut Vec<Finding>, field: String, msg: String| out.push(Finding::error(file, id, field, msg));
    let warn =
        |out: &mut Vec<Finding>, field: String, msg: String| out.push(Finding::warning(file, id, field, msg));
    let sample = {
        let mut v = TemplateVars::sample();
        v.set("runbook", rb.id.clone());
        v
    };

    if !is_id(&rb.id) {
        err(
            &mut out,
            "id".into(),
            format!("{:?} must be lowercase letters, digits and dashes", rb.id),
        );
    }
    let stem = file.trim_end_matches(".yaml").trim_end_matches(".yml");
    if stem != rb.id {
        err(
            &mut out,
            "id".into(),
            format!(
                "{:?} differs from the file name; name the file {}.yaml",
                rb.id, rb.id
            ),
        );
    }
    if rb.title.trim().is_empty() {
        err(&mut out, "title".into(), "is empty".into());
    }
    if rb.impact.trim().is_empty() {
        warn(
            &mut out,
            "impact".into(),
            "is empty: say how users are affected".into(),
        );
    }

    // trigger
    if rb.trigger.is_empty() {
        warn(
            &mut out,
            "trigger".into(),
            "has no alarms, metrics or tags: only an alarm's `runbook` tag selects it".into(),
        );
    }
    for (i, g) in rb.trigger.alarms.iter().enumerate() {
        if g.trim().is_empty() {
            err(&mut out, format!("trigger.alarms[{i}]"), "is empty".into());
        } else if g.chars().all(|c| c == '*') {
            warn(
                &mut out,
                format!("trigger.alarms[{i}]"),
                format!("{g:?} matches every alarm"),
            );
        }
    }
    for (i, m) in rb.trigger.metrics.iter().enumerate() {
        if m.namespace.is_none() && m.name.is_none() {
            err(
                &mut out,
                format!("trigger.metrics[{i}]"),
                "needs a namespace, a name or both".into(),
            );
        }
    }

    // timing
    if rb.lookback.ms <= 0 {
        err(&mut out, "lookback".into(), "must be longer than zero".into());
    } else if rb.lookback.ms > crate::model::duration::Span::minutes(24 * 60).ms {
        warn(
            &mut out,
            "lookback".into(),
            format!("{} scans more than a day of logs per query", rb.lookback),
        );
    }
    if rb.verify_window.ms <= 0 {
        err(&mut out, "verify".into(), "must be longer than zero".into());
    }

    // log groups
    for (i, g) in rb.log_groups.iter().enumerate() {
        if let Err(e) = template::render_log_group(g, &sample) {
            err(&mut out, format!("log_groups[{i}]"), e.to_string());
        }
    }
    if rb.log_groups.is_empty() && rb.investigation.iter().any(|q| q.log_groups.is_empty()) {
        warn(
            &mut out,
            "log_groups".into(),
            format!(
                "none given: queries without their own run over {}",
                super::model::DEFAULT_LOG_GROUP
            ),
        );
    }

    // investigation
    if rb.investigation.is_empty() {
        err(&mut out, "investigation".into(), "has no queries".into());
    }
    let mut names = BTreeSet::new();
    let mut measured = BTreeMap::new();
    for (i, q) in rb.investigation.iter().enumerate() {
        let at = if q.name.is_empty() {
            format!("investigation[{i}]")
        } else {
            format!("investigation[{}]", q.name)
        };
        if let Some(m) = q.measures {
            if let Some(other) = measured.insert(m, q.name.as_str()) {
                err(
                    &mut out,
                    format!("{at}.measures"),
                    format!(
                        "{other:?} already measures {}: one step per measure",
                        serde_measure(m)
                    ),
                );
            }
            let lower = q.query.to_ascii_lowercase();
            if !(lower.contains("stats") && lower.contains("bin(")) {
                err(
                    &mut out,
                    format!("{at}.measures"),
                    "a measuring query counts per time bin: `... | stats count() as n by bin(5m)`".into(),
                );
            }
        }
        if !is_id(&q.name) {
            err(
                &mut out,
                format!("{at}.name"),
                format!("{:?} must be lowercase letters, digits and dashes", q.name),
            );
        }
        if q.name == super::findings::LOG_VOLUME {
            err(
                &mut out,
                format!("{at}.name"),
                format!("{:?} is the query every diagnosis adds (log lines per 5 minutes); name this one otherwise", q.name),
            );
        }
        if !names.insert(q.name.clone()) {
            err(
                &mut out,
                format!("{at}.name"),
                format!("{:?} is used twice", q.name),
            );
        }
        for (j, g) in q.log_groups.iter().enumerate() {
            if let Err(e) = template::render_log_group(g, &sample) {
                err(&mut out, format!("{at}.log_groups[{j}]"), e.to_string());
            }
        }
        if q.query.trim().is_empty() {
            err(&mut out, format!("{at}.query"), "is empty".into());
            continue;
        }
        match template::render_query(&q.query, &sample) {
            Err(e) => err(&mut out, format!("{at}.query"), e.to_string()),
            Ok(rendered) => {
                if let Err(e) = check_query_syntax(&same_length_fill(&q.query)) {
                    err(
                        &mut out,
                        format!("{at}.query"),
                        format!("line {}, column {}: {}", e.line, e.column, e.message),
                    );
                } else if let Err(e) = check_query_syntax(&rendered) {
                    err(
                        &mut out,
                        format!("{at}.query"),
                        format!(
                            "with sample values: line {}, column {}: {}",
                            e.line, e.column, e.message
                        ),
                    );
                }
            }
        }
    }
    lint_metric_steps(file, rb, &mut names, &mut out);
    for (i, c) in rb.status_checks.iter().enumerate() {
        if !STATUS_CHECKS.iter().any(|(k, _)| k == c) {
            err(
                &mut out,
                format!("status_checks[{i}]"),
                format!(
                    "{c:?} is not one of {}",
                    STATUS_CHECKS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }

    // causes
    let known: Vec<&str> = rb.investigation.iter().map(|q| q.name.as_str()).collect();
    let mut cause_ids = BTreeSet::new();
    for (i, c) in rb.causes.iter().enumerate() {
        let at = if c.id.is_empty() {
            format!("causes[{i}]")
        } else {
            format!("causes[{}]", c.id)
        };
        if !is_id(&c.id) {
            err(
                &mut out,
                format!("{at}.id"),
                format!("{:?} must be lowercase letters, digits and dashes", c.id),
            );
        }
        if !cause_ids.insert(c.id.as_str()) {
            err(&mut out, format!("{at}.id"), format!("{:?} is used twice", c.id));
        }
        if c.signatures.is_empty() {
            err(
                &mut out,
                format!("{at}.signatures"),
                "is empty: a cause without a signature never matches".into(),
            );
        }
        for (j, s) in c.signatures.iter().enumerate() {
            lint_signature(file, rb, s, &format!("{at}.signatures[{j}]"), &known, &mut out);
        }
        for (j, step) in c.remediation.iter().enumerate() {
            if let Err(e) = Action::parse(step) {
                err(&mut out, format!("{at}.remediation[{j}]"), e.to_string());
            }
        }
        if let Some(j) = rollback_on_timing_alone(c) {
            err(
                &mut out,
                format!("{at}.signatures"),
                format!(
                    "cause {:?} rolls back (remediation[{j}] is {ROLLBACK}) on deployment timing alone: a \
                     deployment shortly before an alarm is not evidence that it is bad; add a pattern, \
                     threshold or spike signature on an investigation query that shows the new revision \
                     failing (errors, crashes, failed health checks)",
                    c.id
                ),
            );
        }
    }
    if rb.causes.is_empty() {
        warn(
            &mut out,
            "causes".into(),
            "none: the diagnosis can report findings but never a cause".into(),
        );
    }
    if rb.prevention.is_empty() {
        warn(
            &mut out,
            "prevention".into(),
            "is empty: postmortems get no action items from this runbook".into(),
        );
    }
    out
}

/// Checks one signature (and the one a `not` wraps) at `sat`.
fn lint_signature(
    file: &str,
    rb: &Runbook,
    s: &Signature,
    sat: &str,
    known: &[&str],
    out: &mut Vec<Finding>,
) {
    let id = Some(rb.id.as_str());
    let err =
        |out: &mut Vec<Finding>, field: String, msg: String| out.push(Finding::error(file, id, field, msg));
    let warn =
        |out: &mut Vec<Finding>, field: String, msg: String| out.push(Finding::warning(file, id, field, msg));
    if let Some(qn) = s.query().filter(|_| !matches!(s, Signature::Not(_))) {
        match rb.query(qn) {
            None => err(
                out,
                format!("{sat}.query"),
                format!(
                    "names query {qn:?}, which the runbook does not have (known: {})",
                    known.join(", ")
                ),
            ),
            Some(step) => {
                if matches!(s, Signature::Spike { .. }) && !step.query.to_ascii_lowercase().contains("bin(") {
                    warn(
                        out,
                        format!("{sat}.query"),
                        format!("spike needs a time-binned query; {qn:?} has no bin(...)"),
                    );
                }
            }
        }
    }
    match s {
        Signature::Pattern {
            matches, min_count, ..
        } => {
            if let Err(e) = regex::Regex::new(matches) {
                err(
                    out,
                    format!("{sat}.matches"),
                    format!("is not a valid regex: {e}"),
                );
            }
            if *min_count == 0 {
                err(out, format!("{sat}.min_count"), "must be at least 1".into());
            }
        }
        Signature::Threshold { op, value, .. } => {
            if !super::findings::THRESHOLD_OPS.contains(&op.trim()) {
                err(
                    out,
                    format!("{sat}.op"),
                    format!(
                        "{op:?} is not one of {}",
                        super::findings::THRESHOLD_OPS.join(" ")
                    ),
                );
            }
            if !value.is_finite() {
                err(out, format!("{sat}.value"), "must be a finite number".into());
            }
        }
        Signature::Spike { factor, .. } => {
            if !(factor.is_finite() && *factor > 1.0) {
                err(
                    out,
                    format!("{sat}.factor"),
                    format!("{factor} must be greater than 1"),
                );
            }
        }
        Signature::Deployment { within } => {
            if within.ms <= 0 {
                err(out, format!("{sat}.within"), "must be longer than zero".into());
            }
        }
        Signature::Metric {
            step,
            factor,
            above,
            below,
        } => {
            if !rb.metrics.iter().any(|m| m.name == *step) {
                let steps: Vec<&str> = rb.metrics.iter().map(|m| m.name.as_str()).collect();
                err(
                    out,
                    format!("{sat}.step"),
                    format!(
                        "names metric step {step:?}, which the runbook does not have (known: {})",
                        if steps.is_empty() {
                            "none".to_string()
                        } else {
                            steps.join(", ")
                        }
                    ),
                );
            }
            if let Some(f) = factor {
                if !(f.is_finite() && *f > 0.0 && (*f - 1.0).abs() > f64::EPSILON) {
                    err(
                        out,
                        format!("{sat}.factor"),
                        format!(
                            "{f} must be a positive number other than 1 (above 1 a rise, below 1 a fall)"
                        ),
                    );
                }
            }
            for (k, v) in [("above", above), ("below", below)] {
                if v.is_some_and(|x| !x.is_finite()) {
                    err(out, format!("{sat}.{k}"), "must be a finite number".into());
                }
            }
        }
        Signature::Not(inner) => {
            if matches!(**inner, Signature::Not(_)) {
                warn(
                    out,
                    format!("{sat}.not"),
                    "a `not` of a `not` is the signature itself".into(),
                );
            }
            lint_signature(file, rb, inner, &format!("{sat}.not"), known, out);
        }
    }
}

/// Checks the metric steps: names unique across all steps, a statistic CloudWatch knows, a
/// period of whole minutes, windows longer than zero, dimension templates that name variables.
fn lint_metric_steps(file: &str, rb: &Runbook, names: &mut BTreeSet<String>, out: &mut Vec<Finding>) {
    let id = Some(rb.id.as_str());
    let err =
        |out: &mut Vec<Finding>, field: String, msg: String| out.push(Finding::error(file, id, field, msg));
    let sample = TemplateVars::sample();
    for (i, m) in rb.metrics.iter().enumerate() {
        let at = if m.name.is_empty() {
            format!("investigation[{i}]")
        } else {
            format!("investigation[{}]", m.name)
        };
        if !is_id(&m.name) {
            err(
                out,
                format!("{at}.name"),
                format!("{:?} must be lowercase letters, digits and dashes", m.name),
            );
        }
        if !names.insert(m.name.clone()) {
            err(out, format!("{at}.name"), format!("{:?} is used twice", m.name));
        }
        let stat = m.metric.stat.as_str();
        let known_stat = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"].contains(&stat)
            || stat
                .strip_prefix('p')
                .and_then(|p| p.parse::<f64>().ok())
                .is_some_and(|p| (0.0..=100.0).contains(&p));
        if !known_stat {
            err(
                out,
                format!("{at}.metric.stat"),
                format!("{stat:?} is not Average, Sum, Minimum, Maximum, SampleCount or a percentile (p99)"),
            );
        }
        if m.period.ms <= 0 || m.period.ms % 60_000 != 0 {
            err(
                out,
                format!("{at}.period"),
                format!(
                    "{} must be whole minutes (CloudWatch periods are multiples of 60 s)",
                    m.period
                ),
            );
        }
        for (k, span) in [("window", m.window), ("baseline", m.baseline)] {
            if span.ms < m.period.ms.max(1) {
                err(
                    out,
                    format!("{at}.{k}"),
                    format!("{span} must be at least one period ({})", m.period),
                );
            }
        }
        if m.metric.namespace.trim().is_empty() || m.metric.name.trim().is_empty() {
            err(out, format!("{at}.metric"), "needs a namespace and a name".into());
        }
        if let super::model::Dimensions::Fixed(d) = &m.metric.dimensions {
            for (k, v) in d {
                if let Err(e) = template::render_value(v, &sample) {
                    err(out, format!("{at}.metric.dimensions.{k}"), e.to_string());
                }
            }
        }
    }
}

/// The action that replaces the running revision with the previous one.
const ROLLBACK: &str = "ecs-rollback";

/// The index of the cause's first rollback step when every signature of the cause is a
/// `deployment` one: a deploy within a window happens before most alarms, so it cannot by itself
/// justify undoing the deploy; some signature must read a query's evidence (issue #11, item 3).
/// A cause without signatures never matches and is reported on its own.
fn rollback_on_timing_alone(c: &super::model::Cause) -> Option<usize> {
    let timing_only = !c.signatures.is_empty()
        && c.signatures
            .iter()
            .all(|s| matches!(s, Signature::Deployment { .. }));
    if !timing_only {
        return None;
    }
    c.remediation.iter().position(|r| r.action == ROLLBACK)
}

/// Checks across runbooks: unique ids, and no two runbooks with the same priority claiming the
/// same alarms.
fn lint_across(parsed: &[(&str, Runbook)]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut by_id: BTreeMap<&str, &str> = BTreeMap::new();
    for (file, rb) in parsed {
        if let Some(first) = by_id.insert(&rb.id, file) {
            out.push(Finding::error(
                *file,
                Some(&rb.id),
                "id",
                format!("is also the id of {first}"),
            ));
        }
    }
    for (i, (fa, a)) in parsed.iter().enumerate() {
        for (_, b) in parsed.iter().skip(i + 1) {
            if a.id == b.id || a.trigger.priority != b.trigger.priority {
                continue;
            }
            if let Some(why) = overlap(a, b) {
                out.push(Finding::error(
                    *fa,
                    Some(&a.id),
                    "trigger",
                    format!(
                        "ambiguous with runbook {:?} at the same priority {}: {why}; give one a higher priority",
                        b.id, a.trigger.priority
                    ),
                ));
            } else if !a.trigger.is_empty() && !b.trigger.is_empty() && cross_overlap(a, b) {
                out.push(Finding::warning(
                    *fa,
                    Some(&a.id),
                    "trigger",
                    format!(
                        "an alarm could meet this trigger and runbook {:?}'s by different criteria at the same \
                         priority {}; consider different priorities",
                        b.id, a.trigger.priority
                    ),
                ));
            }
        }
    }
    out
}

/// Why two triggers claim some alarm by the same kind of criterion.
fn overlap(a: &Runbook, b: &Runbook) -> Option<String> {
    for ga in &a.trigger.alarms {
        for gb in &b.trigger.alarms {
            if globs_intersect(ga, gb) {
                let example = if glob_matches(ga, gb) || glob_matches(gb, ga) || ga == gb {
                    String::new()
                } else {
                    " (some alarm names match both)".to_string()
                };
                return Some(format!("alarm globs {ga:?} and {gb:?} overlap{example}"));
            }
        }
    }
    for ma in &a.trigger.metrics {
        for mb in &b.trigger.metrics {
            if ma.overlaps(mb) && (ma.namespace.is_some() || ma.name.is_some()) {
                return Some(format!(
                    "both match the metric {}",
                    [
                        ma.namespace.as_deref().or(mb.namespace.as_deref()),
                        ma.name.as_deref().or(mb.name.as_deref())
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ")
                ));
            }
        }
    }
    let (ta, tb) = (&a.trigger.tags, &b.trigger.tags);
    if !ta.is_empty() && !tb.is_empty() && ta.iter().all(|(k, v)| tb.get(k).is_none_or(|w| w == v)) {
        return Some("an alarm can carry both triggers' tags".to_string());
    }
    None
}

/// Whether an alarm could meet one trigger by one kind of criterion and the other by another.
fn cross_overlap(a: &Runbook, b: &Runbook) -> bool {
    let kinds = |r: &Runbook| {
        [
            !r.trigger.alarms.is_empty(),
            !r.trigger.metrics.is_empty(),
            !r.trigger.tags.is_empty(),
        ]
    };
    let (ka, kb) = (kinds(a), kinds(b));
    (0..3).any(|i| (0..3).any(|j| i != j && ka[i] && kb[j]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(file: &str, text: &str) -> RunbookSource {
        RunbookSource {
            file: file.into(),
            text: text.into(),
        }
    }

    const GOOD: &str = r#"
id: good
title: Good
trigger: { alarms: ["*-good"], priority: 1 }
impact: Users see errors.
log_groups: ["/ecs/{service_name}"]
investigation:
  - name: errors
    query: |
      fields @timestamp, @message
      | filter @message like /ERROR/
      | filter @message like /{service_name}/
      | sort @timestamp desc
      | limit 50
causes:
  - id: boom
    description: It went boom.
    signatures:
      - pattern: { query: errors, matches: "boom" }
    remediation:
      - { action: ecs-restart }
prevention: ["Stop it going boom."]
"#;

    fn errors(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .filter(|f| f.level == Level::Error)
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_good_runbook_is_clean() {
        let f = lint_sources(&[src("good.yaml", GOOD)]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn a_query_that_does_not_parse_is_reported_with_line_and_column() {
        let bad = GOOD.replace("| sort @timestamp desc", "| sort @timestamp sideways(");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].starts_with("good.yaml: good: investigation[errors].query: line 4, column"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn an_unknown_query_reference_names_the_known_ones() {
        let bad = GOOD.replace("query: errors, matches", "query: erors, matches");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert_eq!(
            e,
            vec![
                "good.yaml: good: causes[boom].signatures[0].query: names query \"erors\", which the runbook \
                 does not have (known: errors)"
            ]
        );
    }

    const METRIC: &str = r#"
  - name: request-rate
    metric: { namespace: AWS/ApplicationELB, name: RequestCount, dimensions: alarm, stat: Sum }
  - name: cpu
    metric: { namespace: AWS/ECS, name: CPUUtilization, dimensions: ecs-service }
    unit: "%"
  - name: fixed
    metric: { namespace: Orders, name: Pool, dimensions: { Cluster: "{cluster}", Env: prod } }
    period: 5m
causes:"#;

    fn with_metrics(text: &str) -> String {
        GOOD.replacen("\ncauses:", METRIC, 1).replace(
            r#"      - pattern: { query: errors, matches: "boom" }"#,
            &format!("      - pattern: {{ query: errors, matches: \"boom\" }}\n{text}"),
        )
    }

    #[test]
    fn metric_steps_and_signatures_are_checked() {
        let ok = with_metrics(
            "      - metric: { step: request-rate, factor: 1.5 }\n      - not: { metric: { step: cpu, above: 80 } }",
        );
        let f = lint_sources(&[src("good.yaml", &ok)]);
        assert!(errors(&f).is_empty(), "{f:#?}");
        let rb: Runbook = serde_norway::from_str(&ok).unwrap();
        assert_eq!(rb.metrics.len(), 3);
        assert_eq!(rb.investigation.len(), 1);

        let e = errors(&lint_sources(&[src(
            "good.yaml",
            &with_metrics("      - metric: { step: rps, factor: 1.5 }"),
        )]));
        assert!(
            e[0].contains("names metric step \"rps\"") && e[0].contains("request-rate, cpu, fixed"),
            "{e:?}"
        );
        let e = errors(&lint_sources(&[src(
            "good.yaml",
            &with_metrics("      - not: { metric: { step: cpu, factor: 1 } }"),
        )]));
        assert!(e[0].contains("signatures[1].not.factor"), "{e:?}");
        let bad = with_metrics("")
            .replace("stat: Sum", "stat: Median")
            .replace("period: 5m", "period: 90s");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert!(e.iter().any(|m| m.contains("\"Median\" is not Average")), "{e:?}");
        assert!(
            e.iter().any(|m| m.contains("investigation[fixed].period")),
            "{e:?}"
        );
        let bad = with_metrics("").replace("{cluster}", "{clustre}");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert!(
            e.iter()
                .any(|m| m.contains("investigation[fixed].metric.dimensions.Cluster")),
            "{e:?}"
        );
    }

    #[test]
    fn a_step_is_a_query_or_a_metric_and_says_so() {
        let both = GOOD.replace(
            "  - name: errors\n",
            "  - name: errors\n    metric: { namespace: A, name: B }\n",
        );
        let e = lint_sources(&[src("good.yaml", &both)]);
        assert!(
            e[0].to_string()
                .contains("`query` (Logs Insights) or `metric` (CloudWatch), not both"),
            "{e:?}"
        );
        let neither = GOOD.replace(
            "  - name: errors\n    query: |",
            "  - name: errors\n    description: |",
        );
        let e = lint_sources(&[src("good.yaml", &neither)]);
        assert!(e[0].to_string().contains("needs `query`"), "{e:?}");
        let stray = with_metrics("").replace("    period: 5m\n", "    period: 5m\n    measures: requests\n");
        let e = lint_sources(&[src("good.yaml", &stray)]);
        assert!(e[0].to_string().contains("belong to a query step"), "{e:?}");
        let reserved = GOOD
            .replace("  - name: errors", "  - name: log-volume")
            .replace("query: errors,", "query: log-volume,");
        let e = errors(&lint_sources(&[src("good.yaml", &reserved)]));
        assert!(
            e.iter().any(|m| m.contains("the query every diagnosis adds")),
            "{e:?}"
        );
    }

    #[test]
    fn an_unknown_action_or_bad_parameter_is_an_error() {
        let bad = GOOD.replace("{ action: ecs-restart }", "{ action: ecs-reboot }");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].contains("causes[boom].remediation[0]") && e[0].contains("ecs-reboot"),
            "{}",
            e[0]
        );
        let bad = GOOD.replace("{ action: ecs-restart }", "{ action: ecs-scale-out, step: 2 }");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert!(e[0].contains("max"), "{}", e[0]);
    }

    #[test]
    fn bare_placeholders_and_unknown_variables_are_errors() {
        let bad = GOOD.replace("like /{service_name}/", "like {service_name}");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert!(e.iter().any(|m| m.contains("bare")), "{e:#?}");
        let bad = GOOD.replace("like /{service_name}/", "like /{servce}/");
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert!(e.iter().any(|m| m.contains("unknown variable")), "{e:#?}");
    }

    #[test]
    fn yaml_errors_name_the_file_and_field() {
        let bad = GOOD.replace("trigger: { alarms", "trigger: { alarm");
        let f = lint_sources(&[src("good.yaml", &bad)]);
        let e = errors(&f);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].starts_with("good.yaml: -: trigger: "), "{}", e[0]);
        assert!(e[0].contains("alarm"), "{}", e[0]);
    }

    #[test]
    fn ambiguous_triggers_at_equal_priority_are_errors() {
        let other = GOOD
            .replace("id: good", "id: other")
            .replace("[\"*-good\"]", "[\"api-*\"]");
        let f = lint_sources(&[src("good.yaml", GOOD), src("other.yaml", &other)]);
        let e = errors(&f);
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(e[0].contains("ambiguous with runbook \"other\""), "{}", e[0]);
        // a different priority settles it
        let other = other.replace("priority: 1", "priority: 2");
        assert!(errors(&lint_sources(&[
            src("good.yaml", GOOD),
            src("other.yaml", &other)
        ]))
        .is_empty());
        // globs that cannot meet are fine
        let other = GOOD
            .replace("id: good", "id: other")
            .replace("[\"*-good\"]", "[\"*-bad\"]");
        assert!(errors(&lint_sources(&[
            src("good.yaml", GOOD),
            src("other.yaml", &other)
        ]))
        .is_empty());
    }

    #[test]
    fn file_name_and_id_must_agree_and_ids_be_unique() {
        let e = errors(&lint_sources(&[src("good.yaml", GOOD), src("copy.yaml", GOOD)]));
        assert!(
            e.iter()
                .any(|m| m.contains("copy.yaml: good: id: \"good\" differs")),
            "{e:#?}"
        );
        assert!(
            e.iter().any(|m| m.contains("is also the id of good.yaml")),
            "{e:#?}"
        );
    }

    #[test]
    fn a_rollback_on_deployment_timing_alone_is_an_error_naming_the_cause() {
        let bad = GOOD
            .replace(
                "- pattern: { query: errors, matches: \"boom\" }",
                "- deployment: { within: 30m }",
            )
            .replace(
                "- { action: ecs-restart }",
                "- { action: ecs-scale-out, step: 2, max: 8 }\n      - { action: ecs-rollback, window: 30m }",
            );
        let e = errors(&lint_sources(&[src("good.yaml", &bad)]));
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].starts_with(
                "good.yaml: good: causes[boom].signatures: cause \"boom\" rolls back (remediation[1] is \
                 ecs-rollback) on deployment timing alone"
            ),
            "{}",
            e[0]
        );
        assert!(
            e[0].contains("add a pattern, threshold or spike signature"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn a_rollback_with_log_evidence_besides_the_deployment_is_clean() {
        let ok = GOOD
            .replace(
                "- pattern: { query: errors, matches: \"boom\" }",
                "- deployment: { within: 30m }\n      - pattern: { query: errors, matches: \"boom\" }",
            )
            .replace("{ action: ecs-restart }", "{ action: ecs-rollback, window: 30m }");
        let f = lint_sources(&[src("good.yaml", &ok)]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn deployment_timing_alone_may_still_suggest_what_is_not_a_rollback() {
        let restart = GOOD.replace(
            "- pattern: { query: errors, matches: \"boom\" }",
            "- deployment: { within: 30m }",
        );
        let f = lint_sources(&[src("good.yaml", &restart)]);
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn signature_parameters_are_checked() {
        let bad = GOOD.replace(
            "- pattern: { query: errors, matches: \"boom\" }",
            "- pattern: { query: errors, matches: \"(\" }\n      - threshold: { query: errors, field: n, op: \"!\", value: 1 }\n      - spike: { query: errors, factor: 0.5 }",
        );
        let f = lint_sources(&[src("good.yaml", &bad)]);
        let e = errors(&f);
        assert!(e.iter().any(|m| m.contains("signatures[0].matches")), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("signatures[1].op")), "{e:#?}");
        assert!(e.iter().any(|m| m.contains("signatures[2].factor")), "{e:#?}");
        assert!(
            f.iter()
                .any(|w| w.level == Level::Warning && w.message.contains("bin(")),
            "{f:#?}"
        );
    }
}
