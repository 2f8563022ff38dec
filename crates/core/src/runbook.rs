//! Runbooks as code: the seed's structure (trigger, impact, investigation, common causes,
//! resolution, prevention) as typed data loaded from `runbooks/*.yaml`.
//!
//! This module owns the shape. Loading, linting, selection and rendering are added next to it.

use crate::duration::Span;
use crate::remedy::RemediationStep;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One runbook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    /// Stable id, also the file stem and the value of an alarm's `runbook` tag.
    pub id: String,
    pub title: String,
    pub trigger: RunbookTrigger,
    /// How this affects users (helps whoever reads it judge severity).
    pub impact: String,
    /// Default log groups for the queries, templated (`/ecs/{service_name}`).
    #[serde(default)]
    pub log_groups: Vec<String>,
    /// How far before the alarm the queries look.
    #[serde(default = "default_lookback")]
    pub lookback: Span,
    pub investigation: Vec<QueryStep>,
    /// Status checks to run besides the queries (`ecs-service`, `ecs-deployments`).
    #[serde(default)]
    pub status_checks: Vec<String>,
    #[serde(default)]
    pub causes: Vec<Cause>,
    /// Free-text resolution procedure for people (the automated part is in `causes[].remediation`).
    #[serde(default)]
    pub resolution: Vec<String>,
    /// Long-term fixes; each becomes a postmortem action item.
    #[serde(default)]
    pub prevention: Vec<String>,
    /// After a remediation is applied, the alarm should recover within this long; the sweeper
    /// escalates otherwise.
    #[serde(default = "default_verify_window")]
    pub verify_window: Span,
}

fn default_lookback() -> Span {
    Span::minutes(60)
}

fn default_verify_window() -> Span {
    Span::minutes(10)
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
        struct Repr {
            #[serde(default)]
            pattern: Option<PatternArgs>,
            #[serde(default)]
            threshold: Option<ThresholdArgs>,
            #[serde(default)]
            spike: Option<SpikeArgs>,
            #[serde(default)]
            deployment: Option<DeploymentArgs>,
        }
        let r = Repr::deserialize(d)?;
        let n = usize::from(r.pattern.is_some())
            + usize::from(r.threshold.is_some())
            + usize::from(r.spike.is_some())
            + usize::from(r.deployment.is_some());
        if n != 1 {
            return Err(serde::de::Error::custom(format!(
                "a signature is exactly one of pattern, threshold, spike, deployment (found {n})"
            )));
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

impl<'a> From<&'a crate::pipeline::IncidentRaised> for AlarmFacts<'a> {
    fn from(r: &'a crate::pipeline::IncidentRaised) -> AlarmFacts<'a> {
        AlarmFacts {
            alarm_name: &r.alarm_name,
            namespace: r.namespace.as_deref(),
            metric_name: r.metric_name.as_deref(),
            tags: &r.tags,
            runbook_hint: r.runbook_hint.as_deref(),
        }
    }
}

impl<'a> From<&'a crate::signal::AlarmSignal> for AlarmFacts<'a> {
    fn from(s: &'a crate::signal::AlarmSignal) -> AlarmFacts<'a> {
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

/// A runbook file's name and text, as read from disk or embedded in a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookSource {
    /// The file name (`high-error-rate.yaml`).
    pub file: String,
    pub text: String,
}

/// The severity policy lives next to the runbooks and is not one.
pub const POLICY_FILE: &str = "policy.yaml";

/// Reads every `*.yaml`/`*.yml` in `dir` except [`POLICY_FILE`], sorted by name.
///
/// # Errors
/// [`crate::Error::Invalid`] naming the directory or file that cannot be read.
pub fn read_dir(dir: &std::path::Path) -> Result<Vec<RunbookSource>, crate::Error> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| crate::Error::invalid(format!("runbook directory {}", dir.display()), e.to_string()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            crate::Error::invalid(format!("runbook directory {}", dir.display()), e.to_string())
        })?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_yaml || name == POLICY_FILE || name == "policy.yml" || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::Error::invalid(format!("runbook file {}", path.display()), e.to_string()))?;
        out.push(RunbookSource { file: name, text });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(out)
}

/// Parses one runbook file. Errors name the file and, where serde can tell, the field.
pub fn parse_source(src: &RunbookSource) -> Result<Runbook, crate::lint::Finding> {
    serde_norway::from_str::<Runbook>(&src.text).map_err(|e| {
        let msg = e.to_string();
        // serde_norway prefixes the path (`trigger.alarms[0]: ...`) when the error is inside a field
        let (field, message) = match msg.split_once(": ") {
            Some((path, rest))
                if !path.contains(' ')
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-')) =>
            {
                (path.to_string(), rest.to_string())
            }
            _ => ("yaml".to_string(), msg.clone()),
        };
        crate::lint::Finding::error(&src.file, None, field, message)
    })
}

/// The runbooks, validated: what the diagnose function loads at cold start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunbookSet {
    /// Sorted by id.
    runbooks: Vec<Runbook>,
    /// The file each runbook came from, by id.
    files: BTreeMap<String, String>,
    /// Lint warnings found while loading.
    warnings: Vec<crate::lint::Finding>,
}

impl RunbookSet {
    /// Every runbook, sorted by id.
    pub fn runbooks(&self) -> &[Runbook] {
        &self.runbooks
    }

    /// Loads and lints every runbook in `dir` (all `*.yaml` but `policy.yaml`).
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] when the directory cannot be read or lint finds errors; the
    /// reason lists each finding as `file: runbook: field: message`.
    pub fn load_dir(dir: impl AsRef<std::path::Path>) -> Result<RunbookSet, crate::Error> {
        let dir = dir.as_ref();
        let sources = read_dir(dir)?;
        RunbookSet::from_sources(&sources).map_err(|e| match e {
            crate::Error::Invalid { reason, .. } => {
                crate::Error::invalid(format!("runbooks in {}", dir.display()), reason)
            }
            other => other,
        })
    }

    /// Loads runbooks compiled into a binary: `(file name, yaml)` pairs.
    ///
    /// # Errors
    /// As [`RunbookSet::load_dir`].
    pub fn from_embedded(files: &[(&str, &str)]) -> Result<RunbookSet, crate::Error> {
        let sources: Vec<RunbookSource> = files
            .iter()
            .filter(|(name, _)| *name != POLICY_FILE)
            .map(|(name, text)| RunbookSource {
                file: (*name).to_string(),
                text: (*text).to_string(),
            })
            .collect();
        RunbookSet::from_sources(&sources)
    }

    /// Lints and loads parsed sources.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] listing every lint error.
    pub fn from_sources(sources: &[RunbookSource]) -> Result<RunbookSet, crate::Error> {
        let report = crate::lint::lint_sources(sources);
        let errors: Vec<String> = report
            .iter()
            .filter(|f| f.level == crate::lint::Level::Error)
            .map(ToString::to_string)
            .collect();
        if !errors.is_empty() {
            return Err(crate::Error::invalid("runbooks", errors.join("; ")));
        }
        let mut set = RunbookSet {
            warnings: report,
            ..RunbookSet::default()
        };
        for src in sources {
            // lint has parsed every source without error above
            if let Ok(rb) = parse_source(src) {
                set.files.insert(rb.id.clone(), src.file.clone());
                set.runbooks.push(rb);
            }
        }
        set.runbooks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(set)
    }

    /// Builds a set from runbooks already in memory (tests, drills). Not linted.
    pub fn from_runbooks(runbooks: Vec<Runbook>) -> RunbookSet {
        let mut set = RunbookSet {
            files: runbooks
                .iter()
                .map(|r| (r.id.clone(), format!("{}.yaml", r.id)))
                .collect(),
            runbooks,
            warnings: Vec::new(),
        };
        set.runbooks.sort_by(|a, b| a.id.cmp(&b.id));
        set
    }

    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// The file a runbook was loaded from.
    pub fn file_of(&self, id: &str) -> Option<&str> {
        self.files.get(id).map(String::as_str)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.runbooks.iter().map(|r| r.id.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.runbooks.iter()
    }

    pub fn len(&self) -> usize {
        self.runbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runbooks.is_empty()
    }

    /// Lint warnings found while loading.
    pub fn warnings(&self) -> &[crate::lint::Finding] {
        &self.warnings
    }

    /// The runbook for an alarm: the one its `runbook` tag names when that exists, else the
    /// highest-priority runbook whose trigger matches (ties, which lint reports, go to the
    /// smaller id).
    pub fn select<'f>(&self, facts: impl Into<AlarmFacts<'f>>) -> Option<&Runbook> {
        self.select_explained(facts).map(|(r, _)| r)
    }

    /// As [`RunbookSet::select`], with the reason.
    pub fn select_explained<'f>(&self, facts: impl Into<AlarmFacts<'f>>) -> Option<(&Runbook, TriggerMatch)> {
        let facts = facts.into();
        if let Some(rb) = facts.explicit_runbook().and_then(|id| self.get(id)) {
            return Some((rb, TriggerMatch::Explicit));
        }
        let mut best: Option<(&Runbook, TriggerMatch)> = None;
        for rb in &self.runbooks {
            if let Some(m) = rb.trigger.matches(&facts) {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| rb.trigger.priority > b.trigger.priority)
                {
                    best = Some((rb, m));
                }
            }
        }
        best
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
            Signature::Deployment { .. } => None,
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
        }
    }
}
