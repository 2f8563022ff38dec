//! The severity policy: ordered rules (first match wins) that classify an alarm SEV1..SEV4, the
//! mapping from alarms to the services they belong to, and the correlation key derived from them.
//! Loaded from YAML (`runbooks/policy.yaml` ships with Firebreak); see `docs/severity.md`.

use crate::error::Error;
use crate::model::incident::EcsService;
use crate::model::severity::Severity;
use crate::model::signal::{AlarmSignal, MetricRef};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

type Result<T> = std::result::Result<T, Error>;

/// The policy shipped in `runbooks/policy.yaml`, embedded so the CLI and the functions have a
/// policy even without the file.
pub const SHIPPED_POLICY_YAML: &str = include_str!("../../../../runbooks/policy.yaml");

/// The `rule` of a classification decided by the `severity` alarm tag.
pub const TAG_RULE: &str = "tag:severity";
/// The `rule` of a classification no rule matched.
pub const DEFAULT_RULE: &str = "default";

/// The severity policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityPolicy {
    /// The severity when neither the `severity` tag nor any rule decides.
    pub default: Severity,
    /// Tried in order; the first rule whose criteria all hold decides.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Which service an alarm belongs to when its tags and dimensions do not say; first match wins.
    #[serde(default)]
    pub services: Vec<ServiceMapping>,
}

/// One classification rule. Every criterion given must hold; a list criterion holds when any of
/// its patterns matches. A rule without criteria matches every alarm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub severity: Severity,
    #[serde(default, rename = "match")]
    pub criteria: Criteria,
}

/// What a rule matches on. Patterns are globs (`*`, `?`), compared ASCII case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criteria {
    /// Alarm-name globs; any may match.
    #[serde(default, deserialize_with = "one_or_many")]
    pub alarm_name: Vec<String>,
    /// Metric namespace globs; any may match. With `metric`, both must match the same metric entry.
    #[serde(default, deserialize_with = "one_or_many")]
    pub namespace: Vec<String>,
    /// Metric name globs; any may match.
    #[serde(default, deserialize_with = "one_or_many")]
    pub metric: Vec<String>,
    /// Dimension name → value glob; every one must match (a missing dimension does not match).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Tag key → exact value; every one must be present and equal.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Maps alarms (by name glob) to a service name, an ECS service, or both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMapping {
    pub alarm: String,
    #[serde(default)]
    pub service: Option<String>,
    /// `cluster/service`.
    #[serde(default)]
    pub ecs: Option<String>,
}

/// What the policy decided for one alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The severity the incident is paged at: the `severity` tag when it is valid, else the
    /// policy's own classification.
    pub severity: Severity,
    /// The matching rule's name, [`TAG_RULE`] or [`DEFAULT_RULE`].
    pub rule: Option<String>,
    /// The severity the policy's own rules give (the first matching rule, else the default),
    /// whatever the alarm's tags say. Remediation modes are chosen from this, never from
    /// `severity`: the `severity` tag is written by the alarm's author, who may change who is
    /// paged but must not make an action more automatic than the operator's policy allows.
    pub policy_severity: Severity,
    /// The rule that gave `policy_severity` (a rule's name or [`DEFAULT_RULE`], never [`TAG_RULE`]).
    pub policy_rule: String,
    /// The correlation key: one open incident per service.
    pub service: String,
    /// The ECS service remediations act on, when known.
    pub ecs: Option<EcsService>,
    /// The alarm's `runbook` tag.
    pub runbook_hint: Option<String>,
    /// Things the operator should know about this decision (ignored tags, half-given ECS tags).
    pub notes: Vec<String>,
}

/// The severity to move to when an incident at `current` gets an alarm classified `new`: `Some`
/// only when `new` is more severe. Incidents never de-escalate.
pub fn escalate(current: Severity, new: Severity) -> Option<Severity> {
    new.is_more_severe_than(current).then_some(new)
}

impl SeverityPolicy {
    /// Reads and validates a policy file.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the file (and the rule and field) when it cannot be read, is not
    /// valid YAML for a policy, or fails validation.
    pub fn load(path: impl AsRef<Path>) -> Result<SeverityPolicy> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(path.display().to_string(), format!("cannot read: {e}")))?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// Parses and validates a policy from YAML text.
    ///
    /// # Errors
    /// As [`SeverityPolicy::load`], naming the source `policy`.
    pub fn from_yaml_str(text: &str) -> Result<SeverityPolicy> {
        Self::parse_named(text, "policy")
    }

    /// The policy shipped with Firebreak ([`SHIPPED_POLICY_YAML`]).
    ///
    /// # Errors
    /// Only if the shipped file is broken, which the tests rule out.
    pub fn shipped() -> Result<SeverityPolicy> {
        Self::parse_named(SHIPPED_POLICY_YAML, "runbooks/policy.yaml (embedded)")
    }

    fn parse_named(text: &str, source: &str) -> Result<SeverityPolicy> {
        let policy: SeverityPolicy =
            serde_norway::from_str(text).map_err(|e| Error::invalid(source.to_string(), e.to_string()))?;
        policy.validate(source)?;
        Ok(policy)
    }

    fn validate(&self, source: &str) -> Result<()> {
        let mut names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("{source}: rules[{i}] ({:?}).{field}", rule.name);
            if rule.name.trim().is_empty() {
                return Err(Error::invalid(format!("{source}: rules[{i}].name"), "empty"));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(Error::invalid(at("name"), "another rule has the same name"));
            }
            if rule.name == TAG_RULE || rule.name == DEFAULT_RULE {
                return Err(Error::invalid(at("name"), format!("{:?} is reserved", rule.name)));
            }
            let c = &rule.criteria;
            for (field, patterns) in [
                ("match.alarm_name", &c.alarm_name),
                ("match.namespace", &c.namespace),
                ("match.metric", &c.metric),
            ] {
                for (j, p) in patterns.iter().enumerate() {
                    validate_glob(p)
                        .map_err(|reason| Error::invalid(at(&format!("{field}[{j}]")), reason))?;
                }
            }
            for (dim, p) in &c.dimensions {
                validate_glob(p)
                    .map_err(|reason| Error::invalid(at(&format!("match.dimensions.{dim}")), reason))?;
            }
        }
        for (i, m) in self.services.iter().enumerate() {
            let at = |field: &str| format!("{source}: services[{i}] ({:?}).{field}", m.alarm);
            validate_glob(&m.alarm).map_err(|reason| Error::invalid(at("alarm"), reason))?;
            if m.service.as_deref().is_none_or(|s| s.trim().is_empty()) && m.ecs.is_none() {
                return Err(Error::invalid(
                    at("service"),
                    "give a service, an ecs cluster/service, or both",
                ));
            }
            if let Some(ecs) = &m.ecs {
                EcsService::parse(ecs).map_err(|e| Error::invalid(at("ecs"), e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Classifies one alarm: severity (the `severity` tag, else the first matching rule, else
    /// the default), the service it belongs to and its ECS target. Never fails: a bad tag is
    /// ignored and reported in `notes`.
    pub fn classify(&self, signal: &AlarmSignal) -> Classification {
        let mut notes = Vec::new();

        let tagged = match signal.tag("severity") {
            Some(text) => match text.parse::<Severity>() {
                Ok(sev) => Some(sev),
                Err(e) => {
                    notes.push(format!(
                        "ignored tag severity={text:?}: {e}; classified by the rules"
                    ));
                    None
                }
            },
            None => None,
        };
        let (policy_severity, policy_rule) = match self.rules.iter().find(|r| r.criteria.matches(signal)) {
            Some(r) => (r.severity, r.name.clone()),
            None => (self.default, DEFAULT_RULE.to_string()),
        };
        let (severity, rule) = match tagged {
            Some(sev) => (sev, TAG_RULE.to_string()),
            None => (policy_severity, policy_rule.clone()),
        };

        let mapping = self
            .services
            .iter()
            .find(|m| glob_match(&m.alarm, &signal.alarm_name));
        let tag_ecs = match (signal.tag("ecs-cluster"), signal.tag("ecs-service")) {
            (Some(c), Some(s)) => Some(EcsService::new(c.trim(), s.trim())),
            (Some(_), None) | (None, Some(_)) => {
                notes.push("ignored ecs-cluster/ecs-service tags: both are needed".to_string());
                None
            }
            (None, None) => None,
        };
        let ecs = tag_ecs
            .or_else(|| signal.ecs_dimensions().map(|(c, s)| EcsService::new(c, s)))
            .or_else(|| {
                mapping
                    .and_then(|m| m.ecs.as_deref())
                    .and_then(|e| EcsService::parse(e).ok())
            });
        let service = signal
            .tag("service")
            .map(|s| s.trim().to_string())
            .or_else(|| ecs.as_ref().map(EcsService::to_string))
            .or_else(|| {
                mapping
                    .and_then(|m| m.service.as_deref())
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| signal.alarm_name.clone());

        Classification {
            severity,
            rule: Some(rule),
            policy_severity,
            policy_rule,
            service,
            ecs,
            runbook_hint: signal.tag("runbook").map(|s| s.trim().to_string()),
            notes,
        }
    }
}

impl Criteria {
    /// True when every criterion given holds for the alarm.
    pub fn matches(&self, signal: &AlarmSignal) -> bool {
        let any = |patterns: &[String], text: &str| patterns.iter().any(|p| glob_match(p, text));
        if !self.alarm_name.is_empty() && !any(&self.alarm_name, &signal.alarm_name) {
            return false;
        }
        if !self.namespace.is_empty() || !self.metric.is_empty() {
            let entry_matches = |m: &MetricRef| {
                (self.namespace.is_empty() || m.namespace.as_deref().is_some_and(|n| any(&self.namespace, n)))
                    && (self.metric.is_empty()
                        || m.metric_name.as_deref().is_some_and(|n| any(&self.metric, n)))
            };
            if !signal.trigger.metrics().iter().any(entry_matches) {
                return false;
            }
        }
        if !self.dimensions.is_empty() {
            let dims = signal.trigger.dimensions();
            let all = self
                .dimensions
                .iter()
                .all(|(k, p)| dims.get(k).is_some_and(|v| glob_match(p, v)));
            if !all {
                return false;
            }
        }
        self.tags.iter().all(|(k, v)| signal.tag(k) == Some(v.as_str()))
    }
}

/// Why `pattern` is not a glob this module accepts: empty, over 256 characters, or using syntax
/// it does not implement (`[`, `]`, `{`, `}`, `\`), which would otherwise be matched literally
/// and silently never match what the author meant.
pub fn validate_glob(pattern: &str) -> std::result::Result<(), String> {
    if pattern.is_empty() {
        return Err("empty pattern".to_string());
    }
    if pattern.chars().count() > 256 {
        return Err("pattern longer than 256 characters".to_string());
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\'))
    {
        return Err(format!(
            "{pattern:?} uses {c:?}: only `*` (any run of characters) and `?` (one character) are supported"
        ));
    }
    Ok(())
}

/// Matches `text` against a glob: `*` matches any run of characters (also none), `?` exactly
/// one; everything else matches itself, ASCII case-insensitively. Linear backtracking on the
/// last `*`, so no pattern is exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c.eq_ignore_ascii_case(&t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => Ok(vec![s]),
        Ok(OneOrMany::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a pattern or a list of patterns",
        )),
    }
}

#[cfg(test)]
mod tests;
