//! The runbook's shape: the seed's structure (trigger, impact, investigation, common causes,
//! resolution, prevention) as typed data, and how a runbook's trigger matches an alarm.

use crate::model::duration::Span;
pub use crate::model::evidence::Measure;
use crate::model::remedy::RemediationStep;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One runbook. In YAML its `investigation` is one list of steps, Logs Insights queries
/// (`query:`) and CloudWatch metrics (`metric:`) alike; here the two kinds are apart
/// ([`Runbook::investigation`], [`Runbook::metrics`]), in the order written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RunbookRepr", into = "RunbookRepr")]
pub struct Runbook {
    /// Stable id, also the file stem and the value of an alarm's `runbook` tag.
    pub id: String,
    pub title: String,
    pub trigger: RunbookTrigger,
    /// How this affects users (helps whoever reads it judge severity).
    pub impact: String,
    /// Default log groups for the queries, templated (`/ecs/{service_name}`).
    pub log_groups: Vec<String>,
    /// How far before the alarm the queries look.
    pub lookback: Span,
    /// The Logs Insights steps.
    pub investigation: Vec<QueryStep>,
    /// The CloudWatch metric steps.
    pub metrics: Vec<MetricStep>,
    /// Status checks to run besides the queries (`ecs-service`, `ecs-deployments`).
    pub status_checks: Vec<String>,
    pub causes: Vec<Cause>,
    /// Free-text resolution procedure for people (the automated part is in `causes[].remediation`).
    pub resolution: Vec<String>,
    /// Long-term fixes; each becomes a postmortem action item.
    pub prevention: Vec<String>,
    /// An applied action's verification window (`verify:`, default 15 minutes): at its end the
    /// sweeper reads CloudWatch, all OK verifies it, an alarm still firing makes it ineffective.
    pub verify_window: Span,
}

/// A runbook as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbookRepr {
    id: String,
    title: String,
    trigger: RunbookTrigger,
    impact: String,
    #[serde(default)]
    log_groups: Vec<String>,
    #[serde(default = "default_lookback")]
    lookback: Span,
    investigation: Vec<StepRepr>,
    #[serde(default)]
    status_checks: Vec<String>,
    #[serde(default)]
    causes: Vec<Cause>,
    #[serde(default)]
    resolution: Vec<String>,
    #[serde(default)]
    prevention: Vec<String>,
    /// `verify:` (also read as `verify_window:`).
    #[serde(default = "default_verify_window", rename = "verify", alias = "verify_window")]
    verify_window: Span,
}

/// One investigation step as written: a query step or a metric step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRepr {
    name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    measures: Option<Measure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    log_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric: Option<MetricRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    baseline: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    missing: Option<Missing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
}

impl TryFrom<RunbookRepr> for Runbook {
    type Error = String;

    fn try_from(r: RunbookRepr) -> Result<Runbook, String> {
        let mut investigation = Vec::new();
        let mut metrics = Vec::new();
        for (i, s) in r.investigation.into_iter().enumerate() {
            let at = if s.name.is_empty() {
                format!("investigation[{i}]")
            } else {
                format!("investigation[{}]", s.name)
            };
            match (s.query, s.metric) {
                (Some(query), None) => {
                    let metric_only = [
                        ("period", s.period.is_some()),
                        ("window", s.window.is_some()),
                        ("baseline", s.baseline.is_some()),
                        ("missing", s.missing.is_some()),
                        ("unit", s.unit.is_some()),
                    ];
                    if let Some((k, _)) = metric_only.iter().find(|(_, set)| *set) {
                        return Err(format!(
                            "{at}: `{k}` belongs to a metric step, and this one is a query"
                        ));
                    }
                    investigation.push(QueryStep {
                        name: s.name,
                        description: s.description,
                        query,
                        measures: s.measures,
                        log_groups: s.log_groups,
                    });
                }
                (None, Some(metric)) => {
                    if s.measures.is_some() || !s.log_groups.is_empty() {
                        return Err(format!(
                            "{at}: `measures` and `log_groups` belong to a query step, and this one is a metric"
                        ));
                    }
                    metrics.push(MetricStep {
                        name: s.name,
                        description: s.description,
                        metric,
                        period: s.period.unwrap_or(Span::minutes(1)),
                        window: s.window.unwrap_or(Span::minutes(15)),
                        baseline: s.baseline.unwrap_or(Span::minutes(60)),
                        missing: s.missing.unwrap_or_default(),
                        unit: s.unit,
                    });
                }
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{at}: a step has `query` (Logs Insights) or `metric` (CloudWatch), not both"
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "{at}: a step needs `query` (Logs Insights) or `metric` (CloudWatch)"
                    ))
                }
            }
        }
        Ok(Runbook {
            id: r.id,
            title: r.title,
            trigger: r.trigger,
            impact: r.impact,
            log_groups: r.log_groups,
            lookback: r.lookback,
            investigation,
            metrics,
            status_checks: r.status_checks,
            causes: r.causes,
            resolution: r.resolution,
            prevention: r.prevention,
            verify_window: r.verify_window,
        })
    }
}

impl From<Runbook> for RunbookRepr {
    fn from(r: Runbook) -> RunbookRepr {
        let queries = r.investigation.into_iter().map(|q| StepRepr {
            name: q.name,
            description: q.description,
            query: Some(q.query),
            measures: q.measures,
            log_groups: q.log_groups,
            ..StepRepr::default()
        });
        let metrics = r.metrics.into_iter().map(|m| StepRepr {
            name: m.name,
            description: m.description,
            metric: Some(m.metric),
            period: Some(m.period),
            window: Some(m.window),
            baseline: Some(m.baseline),
            missing: Some(m.missing),
            unit: m.unit,
            ..StepRepr::default()
        });
        RunbookRepr {
            id: r.id,
            title: r.title,
            trigger: r.trigger,
            impact: r.impact,
            log_groups: r.log_groups,
            lookback: r.lookback,
            investigation: queries.chain(metrics).collect(),
            status_checks: r.status_checks,
            causes: r.causes,
            resolution: r.resolution,
            prevention: r.prevention,
            verify_window: r.verify_window,
        }
    }
}

/// A CloudWatch metric the diagnosis reads, comparing the incident window (the `window` before
/// the alarm) with the `baseline` before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricStep {
    pub name: String,
    /// What a person learns from it.
    pub description: String,
    pub metric: MetricRef,
    /// The period of each datapoint (a multiple of one minute).
    pub period: Span,
    /// How far before the alarm the incident window begins (default 15 minutes).
    pub window: Span,
    /// How long the baseline before the incident window is (default 60 minutes).
    pub baseline: Span,
    /// What a period without data means (default: no data).
    pub missing: Missing,
    /// Shown after the values (`%`, `ms`).
    pub unit: Option<String>,
}

/// The metric of a [`MetricStep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    /// `alarm` (the alarm's own dimensions), `ecs-service` (`ClusterName`, `ServiceName` of the
    /// incident's service) or a map of names to values, which may use the query templates'
    /// variables (`{cluster}`, `{service_name}`, `{tag.x}`).
    #[serde(default)]
    pub dimensions: Dimensions,
    /// `Average` (the default), `Sum`, `Minimum`, `Maximum`, `SampleCount` or `pNN`.
    #[serde(default = "average")]
    pub stat: String,
}

fn average() -> String {
    "Average".to_string()
}

/// Where a metric step's dimensions come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dimensions {
    /// `alarm` or `ecs-service`.
    From(DimensionSource),
    Fixed(BTreeMap<String, String>),
}

impl Default for Dimensions {
    fn default() -> Self {
        Dimensions::Fixed(BTreeMap::new())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DimensionSource {
    Alarm,
    EcsService,
}

/// What a period without datapoints means: no data (CloudWatch's default), or zero (for counts
/// such as 5xx that are only published when there are some, as an alarm's treat-missing-data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    #[default]
    NoData,
    Zero,
}

fn default_lookback() -> Span {
    Span::minutes(60)
}

/// Long enough for ECS to start tasks and for a 5-minute alarm to evaluate again.
fn default_verify_window() -> Span {
    Span::minutes(15)
}

/// Which alarms a runbook is for. An alarm whose `runbook` tag names the runbook always selects
/// it; otherwise any of the criteria below, and the highest `priority` wins among matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunbookTrigger {
    /// Alarm-name globs (`*-5xx*`).
    pub alarms: Vec<String>,
    /// Metrics, by namespace and/or name.
    pub metrics: Vec<MetricMatch>,
    /// Tags that must all be present with these values.
    pub tags: BTreeMap<String, String>,
    pub priority: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricMatch {
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// A named Logs Insights query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryStep {
    pub name: String,
    /// What a person learns from it.
    #[serde(default)]
    pub description: String,
    pub query: String,
    /// What the query counts, when the postmortem's impact should use it: `failed-requests`
    /// (a `stats count() ... by bin(...)` of the requests that failed) or `requests` (the same
    /// of all requests, for the failed share).
    #[serde(default)]
    pub measures: Option<Measure>,
    /// Overrides the runbook's log groups.
    #[serde(default)]
    pub log_groups: Vec<String>,
}

/// A common cause with how to recognise it and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// Stable id (`db-connection-pool-exhausted`), reported as the incident's cause.
    pub id: String,
    pub description: String,
    /// All signatures must match (usually one).
    pub signatures: Vec<Signature>,
    /// Tried in order; the first one the guardrails allow is carried out.
    #[serde(default)]
    pub remediation: Vec<RemediationStep>,
}

/// Evidence that a cause is present. Written as a one-key map in YAML
/// (`pattern: { query: errors, matches: "pool exhausted" }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signature {
    /// At least `min_count` rows of `query` whose `field` (default `@message`) matches `matches`
    /// (a regex).
    Pattern {
        query: String,
        matches: String,
        #[serde(default)]
        field: Option<String>,
        #[serde(default = "one")]
        min_count: u64,
    },
    /// Some row of `query` has a numeric `field` that compares to `value` with `op`
    /// (`>`, `>=`, `<`, `<=`, `=`).
    Threshold {
        query: String,
        field: String,
        op: String,
        value: f64,
    },
    /// A time-binned `query` (`stats count() by bin(5m)`) has a bin at least `factor` times the
    /// baseline (the median of the earlier bins).
    Spike {
        query: String,
        #[serde(default = "two")]
        factor: f64,
        /// The count column; defaults to the first numeric column that is not the bin.
        #[serde(default)]
        field: Option<String>,
    },
    /// The ECS service had a deployment within `within` before the incident's start.
    Deployment { within: Span },
    /// A metric step's level in the incident window against its baseline: at least `factor`
    /// times the baseline (at most, for a factor below 1), or `above` / `below` a value.
    Metric {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
    },
    /// The signature inside does not hold: it is evidence against when it matches, and for when
    /// its data shows it does not (`not: { metric: { step: cpu, factor: 1.5 } }`: CPU did not
    /// rise).
    Not(Box<Signature>),
}

impl<'de> Deserialize<'de> for Signature {
    /// Accepts `{kind: {...}}` with exactly one kind: the shape JSON gives an externally tagged
    /// enum, which YAML loaders otherwise want as a `!kind` tag.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct PatternArgs {
            query: String,
            matches: String,
            #[serde(default)]
            field: Option<String>,
            #[serde(default = "one")]
            min_count: u64,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ThresholdArgs {
            query: String,
            field: String,
            op: String,
            value: f64,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct SpikeArgs {
            query: String,
            #[serde(default = "two")]
            factor: f64,
            #[serde(default)]
            field: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DeploymentArgs {
            within: Span,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct MetricArgs {
            step: String,
            #[serde(default)]
            factor: Option<f64>,
            #[serde(default)]
            above: Option<f64>,
            #[serde(default)]
            below: Option<f64>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Repr {
            #[serde(default)]
            pattern: Option<PatternArgs>,
            #[serde(default)]
            threshold: Option<ThresholdArgs>,
            #[serde(default)]
            spike: Option<SpikeArgs>,
            #[serde(default)]
            deployment: Option<DeploymentArgs>,
            #[serde(default)]
            metric: Option<MetricArgs>,
            #[serde(default)]
            not: Option<Box<Signature>>,
        }
        let r = Repr::deserialize(d)?;
        let n = usize::from(r.pattern.is_some())
            + usize::from(r.threshold.is_some())
            + usize::from(r.spike.is_some())
            + usize::from(r.deployment.is_some())
            + usize::from(r.metric.is_some())
            + usize::from(r.not.is_some());
        if n != 1 {
            return Err(serde::de::Error::custom(format!(
                "a signature is exactly one of pattern, threshold, spike, deployment, metric, not (found {n})"
            )));
        }
        if let Some(m) = r.metric {
            let given = usize::from(m.factor.is_some())
                + usize::from(m.above.is_some())
                + usize::from(m.below.is_some());
            if given != 1 {
                return Err(serde::de::Error::custom(format!(
                    "a metric signature on step {:?} takes exactly one of factor, above, below (found {given})",
                    m.step
                )));
            }
            return Ok(Signature::Metric {
                step: m.step,
                factor: m.factor,
                above: m.above,
                below: m.below,
            });
        }
        if let Some(inner) = r.not {
            return Ok(Signature::Not(inner));
        }
        Ok(if let Some(p) = r.pattern {
            Signature::Pattern {
                query: p.query,
                matches: p.matches,
                field: p.field,
                min_count: p.min_count,
            }
        } else if let Some(t) = r.threshold {
            Signature::Threshold {
                query: t.query,
                field: t.field,
                op: t.op,
                value: t.value,
            }
        } else if let Some(s) = r.spike {
            Signature::Spike {
                query: s.query,
                factor: s.factor,
                field: s.field,
            }
        } else if let Some(dp) = r.deployment {
            Signature::Deployment { within: dp.within }
        } else {
            return Err(serde::de::Error::custom("a signature needs a kind"));
        })
    }
}

fn one() -> u64 {
    1
}

fn two() -> f64 {
    2.0
}

/// What runbook selection looks at: the alarm's name, metric, tags and `runbook` tag.
#[derive(Debug, Clone, Copy)]
pub struct AlarmFacts<'a> {
    pub alarm_name: &'a str,
    pub namespace: Option<&'a str>,
    pub metric_name: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
    /// The alarm's `runbook` tag when the event carries it separately.
    pub runbook_hint: Option<&'a str>,
}

impl<'a> From<&'a crate::model::pipeline::IncidentRaised> for AlarmFacts<'a> {
    fn from(r: &'a crate::model::pipeline::IncidentRaised) -> AlarmFacts<'a> {
        AlarmFacts {
            alarm_name: &r.alarm_name,
            namespace: r.namespace.as_deref(),
            metric_name: r.metric_name.as_deref(),
            tags: &r.tags,
            runbook_hint: r.runbook_hint.as_deref(),
        }
    }
}

impl<'a> From<&'a crate::model::signal::AlarmSignal> for AlarmFacts<'a> {
    fn from(s: &'a crate::model::signal::AlarmSignal) -> AlarmFacts<'a> {
        let m = s.trigger.primary_metric();
        AlarmFacts {
            alarm_name: &s.alarm_name,
            namespace: m.and_then(|m| m.namespace.as_deref()),
            metric_name: m.and_then(|m| m.metric_name.as_deref()),
            tags: &s.tags,
            runbook_hint: None,
        }
    }
}

impl AlarmFacts<'_> {
    /// The explicit runbook id: the hint, else the `runbook` tag (blank values ignored).
    pub fn explicit_runbook(&self) -> Option<&str> {
        self.runbook_hint
            .or_else(|| self.tags.get("runbook").map(String::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Matches `name` against a glob: `*` any run of characters, `?` one; case-insensitive.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let p: Vec<char> = glob.to_lowercase().chars().collect();
    let s: Vec<char> = name.to_lowercase().chars().collect();
    // classic two-pointer with backtracking to the last star
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Whether some alarm name matches both globs (case-insensitive).
pub fn globs_intersect(a: &str, b: &str) -> bool {
    let p: Vec<char> = a.to_lowercase().chars().collect();
    let q: Vec<char> = b.to_lowercase().chars().collect();
    // reach[i][j]: some string takes p[..i] and q[..j] to the same point
    let mut reach = vec![vec![false; q.len() + 1]; p.len() + 1];
    reach[0][0] = true;
    for i in 0..=p.len() {
        for j in 0..=q.len() {
            if !reach[i][j] {
                continue;
            }
            if i < p.len() && p[i] == '*' {
                reach[i + 1][j] = true;
            }
            if j < q.len() && q[j] == '*' {
                reach[i][j + 1] = true;
            }
            if i < p.len() && j < q.len() {
                let (x, y) = (p[i], q[j]);
                match (x == '*', y == '*') {
                    (false, false) => {
                        if x == '?' || y == '?' || x == y {
                            reach[i + 1][j + 1] = true;
                        }
                    }
                    // a star consumes one character the other side produces, and stays
                    (true, false) => reach[i][j + 1] = true,
                    (false, true) => reach[i + 1][j] = true,
                    (true, true) => {}
                }
            }
        }
    }
    reach[p.len()][q.len()]
}

impl MetricMatch {
    /// True when the alarm's metric has the given namespace and/or name.
    pub fn matches(&self, namespace: Option<&str>, name: Option<&str>) -> bool {
        (self.namespace.is_some() || self.name.is_some())
            && self.namespace.as_deref().is_none_or(|n| Some(n) == namespace)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }

    /// Whether some metric matches both.
    pub fn overlaps(&self, other: &MetricMatch) -> bool {
        let compat = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        };
        compat(&self.namespace, &other.namespace) && compat(&self.name, &other.name)
    }
}

/// Which criterion of a trigger matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerMatch {
    /// The alarm's `runbook` tag names it.
    Explicit,
    Alarm(String),
    Metric(String),
    Tags,
}

impl std::fmt::Display for TriggerMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TriggerMatch::Explicit => write!(f, "the alarm's runbook tag names it"),
            TriggerMatch::Alarm(g) => write!(f, "the alarm name matches {g:?}"),
            TriggerMatch::Metric(m) => write!(f, "the alarm's metric is {m}"),
            TriggerMatch::Tags => write!(f, "the alarm has the trigger's tags"),
        }
    }
}

impl RunbookTrigger {
    /// The first criterion the alarm meets: an alarm-name glob, a metric, or all the tags.
    pub fn matches(&self, facts: &AlarmFacts<'_>) -> Option<TriggerMatch> {
        if let Some(g) = self.alarms.iter().find(|g| glob_matches(g, facts.alarm_name)) {
            return Some(TriggerMatch::Alarm(g.clone()));
        }
        if let Some(m) = self
            .metrics
            .iter()
            .find(|m| m.matches(facts.namespace, facts.metric_name))
        {
            let show = [m.namespace.as_deref(), m.name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            return Some(TriggerMatch::Metric(show));
        }
        if !self.tags.is_empty() && self.tags.iter().all(|(k, v)| facts.tags.get(k) == Some(v)) {
            return Some(TriggerMatch::Tags);
        }
        None
    }

    /// True when the trigger has no criterion (only an explicit `runbook` tag selects it).
    pub fn is_empty(&self) -> bool {
        self.alarms.is_empty() && self.metrics.is_empty() && self.tags.is_empty()
    }
}

impl Runbook {
    pub fn query(&self, name: &str) -> Option<&QueryStep> {
        self.investigation.iter().find(|q| q.name == name)
    }

    pub fn cause(&self, id: &str) -> Option<&Cause> {
        self.causes.iter().find(|c| c.id == id)
    }

    /// The log-group templates a step queries: its own, else the runbook's, else
    /// [`DEFAULT_LOG_GROUP`].
    pub fn log_groups_for<'s>(&'s self, step: &'s QueryStep) -> Vec<&'s str> {
        if !step.log_groups.is_empty() {
            step.log_groups.iter().map(String::as_str).collect()
        } else if !self.log_groups.is_empty() {
            self.log_groups.iter().map(String::as_str).collect()
        } else {
            vec![DEFAULT_LOG_GROUP]
        }
    }
}

/// The log group queried when neither the step nor the runbook names one.
pub const DEFAULT_LOG_GROUP: &str = "/ecs/{service_name}";

/// The status checks a runbook may list.
pub const STATUS_CHECKS: [(&str, &str); 3] = [
    (
        "ecs-service",
        "desired, running and pending task counts of the ECS service",
    ),
    (
        "ecs-deployments",
        "the service's deployments in the lookback window",
    ),
    ("ecs-events", "the service's events in the lookback window"),
];

impl Signature {
    /// The query the signature reads, if any.
    pub fn query(&self) -> Option<&str> {
        match self {
            Signature::Pattern { query, .. }
            | Signature::Threshold { query, .. }
            | Signature::Spike { query, .. } => Some(query),
            Signature::Not(inner) => inner.query(),
            Signature::Deployment { .. } | Signature::Metric { .. } => None,
        }
    }

    /// The metric step the signature reads, if any.
    pub fn metric_step(&self) -> Option<&str> {
        match self {
            Signature::Metric { step, .. } => Some(step),
            Signature::Not(inner) => inner.metric_step(),
            _ => None,
        }
    }

    /// How a person would say it.
    pub fn describe(&self) -> String {
        match self {
            Signature::Pattern {
                query,
                matches,
                field,
                min_count,
            } => format!(
                "at least {min_count} row(s) of `{query}` whose `{}` matches `/{matches}/`",
                field.as_deref().unwrap_or("@message")
            ),
            Signature::Threshold {
                query,
                field,
                op,
                value,
            } => {
                format!("a row of `{query}` with `{field} {op} {value}`")
            }
            Signature::Spike { query, factor, field } => format!(
                "a bin of `{query}`{} at least {factor}x the median of the bins before it",
                field.as_deref().map(|f| format!(" (`{f}`)")).unwrap_or_default()
            ),
            Signature::Deployment { within } => {
                format!("an ECS deployment within {within} before the incident started")
            }
            Signature::Metric {
                step,
                factor,
                above,
                below,
            } => match (factor, above, below) {
                (Some(f), _, _) if *f < 1.0 => format!("metric `{step}` at most {f}x its baseline"),
                (Some(f), _, _) => format!("metric `{step}` at least {f}x its baseline"),
                (_, Some(a), _) => format!("metric `{step}` above {a}"),
                (_, _, Some(b)) => format!("metric `{step}` below {b}"),
                _ => format!("metric `{step}`"),
            },
            Signature::Not(inner) => format!("not: {}", inner.describe()),
        }
    }
}
