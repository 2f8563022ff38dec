//! Behaviour settings shared by the use-cases: reopen window, remediation modes and guardrails,
//! diagnosis deadlines, sweeper thresholds. Loaded by the functions from the environment and by
//! drills from `scenario.yaml`; defaults are the safe ones (remediation dry-run everywhere).

use crate::model::incident::EcsService;
use crate::model::severity::Severity;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How a remediation is carried out. Ordered from the least automatic (`Off`) to the most
/// (`Auto`), so `min` gives the more cautious of two modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationMode {
    /// Never act, not even a plan on the timeline beyond the refusal.
    Off,
    /// Record exactly what would be done; change nothing.
    #[default]
    DryRun,
    /// Ask a person; act on `firebreak approve` or a "Remediation Approved" event.
    Approve,
    /// Act.
    Auto,
    /// The level the (runbook, cause, action) earned from its outcomes (see
    /// `model::autonomy`), never above the configured ceiling: resolved to `dry-run`, `approve`
    /// or `auto` when deciding. Ordered last only so that it sorts; it is never compared as
    /// more automatic than `auto` (`min` with another mode is taken after resolving).
    Earned,
}

impl RemediationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RemediationMode::Off => "off",
            RemediationMode::DryRun => "dry-run",
            RemediationMode::Approve => "approve",
            RemediationMode::Auto => "auto",
            RemediationMode::Earned => "earned",
        }
    }
}

/// Compares with the mode's JSON string (`"dry-run"`).
impl PartialEq<&str> for RemediationMode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for RemediationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RemediationMode {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "off" => Ok(RemediationMode::Off),
            "dry-run" | "dryrun" | "dry_run" => Ok(RemediationMode::DryRun),
            "approve" => Ok(RemediationMode::Approve),
            "auto" => Ok(RemediationMode::Auto),
            "earned" => Ok(RemediationMode::Earned),
            other => Err(crate::Error::invalid(
                "remediation mode",
                format!("{other:?} is not one of off, dry-run, approve, auto, earned"),
            )),
        }
    }
}

/// A mode for some actions and/or severities. The most specific matching rule wins; ties go to
/// the later rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeRule {
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
    pub mode: RemediationMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemediationSettings {
    /// The mode where no rule matches.
    pub mode: RemediationMode,
    pub rules: Vec<ModeRule>,
    /// Services remediations may touch, `cluster/service`.
    pub allow: Vec<EcsService>,
    /// An ECS service tag that also allows it (`firebreak:remediate` = `true`); `None` disables.
    pub allow_tag: Option<String>,
    /// Seconds before the same action may run again on the same service.
    pub cooldown_s: i64,
    /// At most this many actions carried out (or attempted) per incident.
    pub max_actions_per_incident: u32,
    /// How many automatic actions may run before the circuit opens.
    pub circuit: CircuitSettings,
    /// When the mode `earned` moves an action up or down, and its ceiling.
    pub earned: crate::model::autonomy::PromotionPolicy,
}

/// Circuit breakers on automatic actions: past either limit, every automatic action is refused
/// ("circuit open") until the oldest action counted leaves its window. Actions a person approved
/// do not count and are not refused by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitSettings {
    /// At most this many automatic actions (carried out or attempted: a failed call keeps its
    /// slot) per ECS service within `service_window_s` (0 disables this limit).
    pub per_service: u32,
    pub service_window_s: i64,
    /// At most this many automatic actions over all services within `global_window_s`
    /// (0 disables this limit).
    pub global: u32,
    pub global_window_s: i64,
}

/// The longest circuit window (30 days) and the most slots a circuit may have (each automatic
/// action reads its circuit's slots).
pub const MAX_CIRCUIT_WINDOW_S: i64 = 30 * 86_400;
pub const MAX_CIRCUIT_SLOTS: u32 = 100;

impl CircuitSettings {
    /// Checks the limits and windows.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), crate::Error> {
        for (what, n) in [("per_service", self.per_service), ("global", self.global)] {
            if n > MAX_CIRCUIT_SLOTS {
                return Err(crate::Error::invalid(
                    format!("circuit {what}"),
                    format!("{n} is more than {MAX_CIRCUIT_SLOTS} actions"),
                ));
            }
        }
        for (what, w) in [
            ("service_window_s", self.service_window_s),
            ("global_window_s", self.global_window_s),
        ] {
            if !(60..=MAX_CIRCUIT_WINDOW_S).contains(&w) {
                return Err(crate::Error::invalid(
                    format!("circuit {what}"),
                    format!("{w} is not between 60 and {MAX_CIRCUIT_WINDOW_S} seconds"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            per_service: 3,
            service_window_s: 6 * 3600,
            global: 10,
            global_window_s: 3600,
        }
    }
}

impl Default for RemediationSettings {
    fn default() -> Self {
        RemediationSettings {
            mode: RemediationMode::DryRun,
            rules: Vec::new(),
            allow: Vec::new(),
            allow_tag: Some("firebreak:remediate".to_string()),
            cooldown_s: 900,
            max_actions_per_incident: 3,
            circuit: CircuitSettings::default(),
            earned: crate::model::autonomy::PromotionPolicy::default(),
        }
    }
}

impl RemediationSettings {
    /// The mode for `action` at `severity`.
    pub fn mode_for(&self, action: &str, severity: Severity) -> RemediationMode {
        let mut best: Option<(u8, RemediationMode)> = None;
        for r in &self.rules {
            if r.action.as_deref().is_some_and(|a| a != action) || r.severity.is_some_and(|s| s != severity) {
                continue;
            }
            let specificity = u8::from(r.action.is_some()) * 2 + u8::from(r.severity.is_some());
            if best.is_none_or(|(b, _)| specificity >= b) {
                best = Some((specificity, r.mode));
            }
        }
        best.map_or(self.mode, |(_, m)| m)
    }
}

/// The default [`DiagnosisSettings::log_group_prefix`]: ECS services' log groups.
pub const DEFAULT_LOG_GROUP_PREFIX: &str = "/ecs/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosisSettings {
    /// All queries of one diagnosis finish (or are stopped) within this many seconds.
    pub deadline_s: u64,
    /// Queries run at once (Logs Insights allows a limited number of concurrent queries).
    pub max_parallel: usize,
    /// Lookback when the runbook names none, seconds before the alarm.
    pub default_lookback_s: i64,
    /// A log group whose name takes a value from the alarm (a runbook template such as
    /// `{tag.log-group}` or `/ecs/{service_name}`) is queried only when it starts with this
    /// prefix; otherwise it is dropped with a note on the timeline. Alarm tags and dimensions are
    /// written by whoever can edit the alarm, so they must not point the diagnosis at other
    /// teams' logs. Empty disables the check (the variable left empty keeps the default). A log-group name the runbook gives literally
    /// (no placeholder) is the runbook author's choice and is not checked.
    pub log_group_prefix: String,
    /// The best hypothesis needs at least this score (0..1) to be named the cause; below it the
    /// diagnosis abstains: no cause, no automatic action.
    pub min_score: f64,
    /// The best hypothesis must lead the second by at least this much; closer, the diagnosis
    /// abstains (the two are too close to tell).
    pub min_margin: f64,
}

impl Default for DiagnosisSettings {
    fn default() -> Self {
        DiagnosisSettings {
            deadline_s: 45,
            max_parallel: 4,
            default_lookback_s: 3600,
            log_group_prefix: DEFAULT_LOG_GROUP_PREFIX.to_string(),
            min_score: 0.6,
            min_margin: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SweeperSettings {
    /// Escalate an incident still active after this many seconds.
    pub open_too_long_s: i64,
    /// Seconds after an applied remediation before a non-recovery escalates, when the runbook
    /// names no verification window.
    pub default_verify_window_s: i64,
}

impl Default for SweeperSettings {
    fn default() -> Self {
        SweeperSettings {
            open_too_long_s: 4 * 3600,
            default_verify_window_s: 900,
        }
    }
}

/// When an incident's alarms flap (change state again and again) and how long it is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlappingSettings {
    /// This many alarm state changes of one incident within `window_s` mark it flapping; 0
    /// never does.
    pub changes: u32,
    pub window_s: i64,
    /// A flapping incident is stable again after this many seconds without a state change.
    pub stable_s: i64,
}

impl Default for FlappingSettings {
    fn default() -> Self {
        FlappingSettings {
            changes: 6,
            window_s: 1800,
            stable_s: 900,
        }
    }
}

/// All behaviour settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// An alarm that fires again within this many seconds of resolution reopens the incident.
    pub reopen_window_s: i64,
    pub remediation: RemediationSettings,
    pub diagnosis: DiagnosisSettings,
    pub sweeper: SweeperSettings,
    pub flapping: FlappingSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reopen_window_s: 1800,
            remediation: RemediationSettings::default(),
            diagnosis: DiagnosisSettings::default(),
            sweeper: SweeperSettings::default(),
            flapping: FlappingSettings::default(),
        }
    }
}

/// The environment variables [`Settings::from_lookup`] reads (the functions' contract with the
/// SAM template).
pub mod env {
    pub const REOPEN_WINDOW_S: &str = "REOPEN_WINDOW_S";
    pub const REMEDIATION_MODE: &str = "REMEDIATION_MODE";
    pub const REMEDIATION_RULES: &str = "REMEDIATION_RULES";
    pub const REMEDIATION_ALLOW: &str = "REMEDIATION_ALLOW";
    pub const REMEDIATION_ALLOW_TAG: &str = "REMEDIATION_ALLOW_TAG";
    pub const REMEDIATION_COOLDOWN_S: &str = "REMEDIATION_COOLDOWN_S";
    pub const REMEDIATION_MAX_ACTIONS: &str = "REMEDIATION_MAX_ACTIONS";
    pub const CIRCUIT_PER_SERVICE: &str = "CIRCUIT_PER_SERVICE";
    pub const CIRCUIT_SERVICE_WINDOW_S: &str = "CIRCUIT_SERVICE_WINDOW_S";
    pub const CIRCUIT_GLOBAL: &str = "CIRCUIT_GLOBAL";
    pub const CIRCUIT_GLOBAL_WINDOW_S: &str = "CIRCUIT_GLOBAL_WINDOW_S";
    pub const EARNED_APPROVE_AFTER: &str = "EARNED_APPROVE_AFTER";
    pub const EARNED_AUTO_AFTER: &str = "EARNED_AUTO_AFTER";
    pub const EARNED_WINDOW: &str = "EARNED_WINDOW";
    pub const EARNED_CEILING: &str = "EARNED_CEILING";
    pub const DIAGNOSIS_DEADLINE_S: &str = "DIAGNOSIS_DEADLINE_S";
    pub const DIAGNOSIS_MAX_PARALLEL: &str = "DIAGNOSIS_MAX_PARALLEL";
    pub const DIAGNOSIS_LOG_GROUP_PREFIX: &str = "DIAGNOSIS_LOG_GROUP_PREFIX";
    pub const DIAGNOSIS_MIN_SCORE: &str = "DIAGNOSIS_MIN_SCORE";
    pub const DIAGNOSIS_MIN_MARGIN: &str = "DIAGNOSIS_MIN_MARGIN";
    pub const SWEEPER_OPEN_TOO_LONG_S: &str = "SWEEPER_OPEN_TOO_LONG_S";
    pub const SWEEPER_VERIFY_WINDOW_S: &str = "SWEEPER_VERIFY_WINDOW_S";
    pub const FLAPPING_CHANGES: &str = "FLAPPING_CHANGES";
    pub const FLAPPING_WINDOW_S: &str = "FLAPPING_WINDOW_S";
    pub const FLAPPING_STABLE_S: &str = "FLAPPING_STABLE_S";
}

impl Settings {
    /// Reads the settings from variables (see [`env`]); unset or empty ones keep their defaults.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] naming the variable and why its value is wrong.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, crate::Error> {
        fn num<T>(
            lookup: &impl Fn(&str) -> Option<String>,
            name: &str,
            min: T,
        ) -> Result<Option<T>, crate::Error>
        where
            T: FromStr + PartialOrd + fmt::Display + Copy,
        {
            match lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            {
                None => Ok(None),
                Some(v) => match v.parse::<T>() {
                    Ok(n) if n >= min => Ok(Some(n)),
                    _ => Err(crate::Error::invalid(
                        name,
                        format!("{v:?} is not a whole number >= {min}"),
                    )),
                },
            }
        }
        let mut s = Settings::default();
        if let Some(v) = num(&lookup, env::REOPEN_WINDOW_S, 0i64)? {
            s.reopen_window_s = v;
        }
        if let Some(v) = lookup(env::REMEDIATION_MODE).filter(|v| !v.trim().is_empty()) {
            s.remediation.mode = v
                .parse()
                .map_err(|e: crate::Error| crate::Error::invalid(env::REMEDIATION_MODE, e.to_string()))?;
        }
        if let Some(v) = lookup(env::REMEDIATION_RULES).filter(|v| !v.trim().is_empty()) {
            s.remediation.rules = serde_json::from_str(&v).map_err(|e| {
                crate::Error::invalid(
                    env::REMEDIATION_RULES,
                    format!(
                        "{e}; expected a JSON list like [{{\"action\":\"ecs-scale-out\",\"mode\":\"auto\"}}]"
                    ),
                )
            })?;
        }
        if let Some(v) = lookup(env::REMEDIATION_ALLOW) {
            s.remediation.allow = v
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| {
                    EcsService::parse(x)
                        .map_err(|e| crate::Error::invalid(env::REMEDIATION_ALLOW, e.to_string()))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = lookup(env::REMEDIATION_ALLOW_TAG) {
            let v = v.trim();
            s.remediation.allow_tag = (!v.is_empty()).then(|| v.to_string());
        }
        if let Some(v) = num(&lookup, env::REMEDIATION_COOLDOWN_S, 0i64)? {
            s.remediation.cooldown_s = v;
        }
        if let Some(v) = num(&lookup, env::REMEDIATION_MAX_ACTIONS, 0u32)? {
            s.remediation.max_actions_per_incident = v;
        }
        if let Some(v) = num(&lookup, env::CIRCUIT_PER_SERVICE, 0u32)? {
            s.remediation.circuit.per_service = v;
        }
        if let Some(v) = num(&lookup, env::CIRCUIT_SERVICE_WINDOW_S, 60i64)? {
            s.remediation.circuit.service_window_s = v;
        }
        if let Some(v) = num(&lookup, env::CIRCUIT_GLOBAL, 0u32)? {
            s.remediation.circuit.global = v;
        }
        if let Some(v) = num(&lookup, env::CIRCUIT_GLOBAL_WINDOW_S, 60i64)? {
            s.remediation.circuit.global_window_s = v;
        }
        if let Some(v) = num(&lookup, env::EARNED_APPROVE_AFTER, 1u32)? {
            s.remediation.earned.approve_after = v;
        }
        if let Some(v) = num(&lookup, env::EARNED_AUTO_AFTER, 1u32)? {
            s.remediation.earned.auto_after = v;
        }
        if let Some(v) = num(&lookup, env::EARNED_WINDOW, 1u32)? {
            s.remediation.earned.window = v;
        }
        if let Some(v) = lookup(env::EARNED_CEILING).filter(|v| !v.trim().is_empty()) {
            s.remediation.earned.ceiling = v
                .parse()
                .map_err(|e: crate::Error| crate::Error::invalid(env::EARNED_CEILING, e.to_string()))?;
        }
        s.remediation
            .earned
            .validate()
            .map_err(|e| crate::Error::invalid("EARNED_*", e.to_string()))?;
        s.remediation
            .circuit
            .validate()
            .map_err(|e| crate::Error::invalid("CIRCUIT_*", e.to_string()))?;
        if let Some(v) = num(&lookup, env::DIAGNOSIS_DEADLINE_S, 1u64)? {
            s.diagnosis.deadline_s = v;
        }
        if let Some(v) = num(&lookup, env::DIAGNOSIS_MAX_PARALLEL, 1usize)? {
            s.diagnosis.max_parallel = v;
        }
        if let Some(v) = lookup(env::DIAGNOSIS_LOG_GROUP_PREFIX).filter(|v| !v.trim().is_empty()) {
            let v = v.trim();
            let log_group_char =
                |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#');
            if v.len() > 512 || !v.chars().all(log_group_char) {
                return Err(crate::Error::invalid(
                    env::DIAGNOSIS_LOG_GROUP_PREFIX,
                    format!("{v:?} cannot begin a log-group name (allowed: A-Z a-z 0-9 . - _ / #)"),
                ));
            }
            s.diagnosis.log_group_prefix = v.to_string();
        }
        for (name, slot) in [
            (env::DIAGNOSIS_MIN_SCORE, &mut s.diagnosis.min_score),
            (env::DIAGNOSIS_MIN_MARGIN, &mut s.diagnosis.min_margin),
        ] {
            if let Some(v) = lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            {
                *slot = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| {
                        crate::Error::invalid(name, format!("{v:?} is not a number from 0 to 1"))
                    })?;
            }
        }
        if let Some(v) = num(&lookup, env::SWEEPER_OPEN_TOO_LONG_S, 60i64)? {
            s.sweeper.open_too_long_s = v;
        }
        if let Some(v) = num(&lookup, env::SWEEPER_VERIFY_WINDOW_S, 60i64)? {
            s.sweeper.default_verify_window_s = v;
        }
        if let Some(v) = num(&lookup, env::FLAPPING_CHANGES, 0u32)? {
            s.flapping.changes = v;
        }
        if let Some(v) = num(&lookup, env::FLAPPING_WINDOW_S, 1i64)? {
            s.flapping.window_s = v;
        }
        if let Some(v) = num(&lookup, env::FLAPPING_STABLE_S, 1i64)? {
            s.flapping.stable_s = v;
        }
        Ok(s)
    }

    pub fn reopen_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::try_from(self.reopen_window_s.max(0)).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mode_is_dry_run_and_specific_rules_win() {
        let mut r = RemediationSettings::default();
        assert_eq!(
            r.mode_for("ecs-rollback", Severity::Sev1),
            RemediationMode::DryRun
        );
        r.rules = vec![
            ModeRule {
                action: None,
                severity: Some(Severity::Sev1),
                mode: RemediationMode::Approve,
            },
            ModeRule {
                action: Some("ecs-scale-out".into()),
                severity: None,
                mode: RemediationMode::Auto,
            },
            ModeRule {
                action: Some("ecs-scale-out".into()),
                severity: Some(Severity::Sev1),
                mode: RemediationMode::Off,
            },
        ];
        assert_eq!(
            r.mode_for("ecs-rollback", Severity::Sev1),
            RemediationMode::Approve
        );
        assert_eq!(r.mode_for("ecs-scale-out", Severity::Sev2), RemediationMode::Auto);
        assert_eq!(r.mode_for("ecs-scale-out", Severity::Sev1), RemediationMode::Off);
        assert_eq!(r.mode_for("ecs-restart", Severity::Sev3), RemediationMode::DryRun);
    }

    #[test]
    fn reads_settings_from_variables_and_names_the_bad_one() {
        let vars = std::collections::HashMap::from([
            (env::REMEDIATION_MODE, "auto"),
            (env::REMEDIATION_ALLOW, "prod/articles-api, prod/search"),
            (
                env::REMEDIATION_RULES,
                r#"[{"severity":"SEV1","mode":"approve"}]"#,
            ),
            (env::REOPEN_WINDOW_S, "600"),
            (env::REMEDIATION_ALLOW_TAG, ""),
        ]);
        let s = Settings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap();
        assert_eq!(s.remediation.mode, RemediationMode::Auto);
        assert_eq!(
            s.remediation.allow,
            vec![
                EcsService::new("prod", "articles-api"),
                EcsService::new("prod", "search")
            ]
        );
        assert_eq!(
            s.remediation.mode_for("ecs-restart", Severity::Sev1),
            RemediationMode::Approve
        );
        assert_eq!(s.reopen_window_s, 600);
        assert_eq!(s.remediation.allow_tag, None);

        for (name, value) in [
            (env::REOPEN_WINDOW_S, "-5"),
            (env::REMEDIATION_MODE, "yes"),
            (env::REMEDIATION_ALLOW, "articles-api"),
            (env::REMEDIATION_RULES, "[{"),
            (env::DIAGNOSIS_MAX_PARALLEL, "0"),
        ] {
            let e = Settings::from_lookup(|n| (n == name).then(|| value.to_string()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
    }

    #[test]
    fn the_abstention_thresholds_are_read_and_checked() {
        let d = Settings::default().diagnosis;
        assert_eq!((d.min_score, d.min_margin), (0.6, 0.2));
        let s = Settings::from_lookup(|n| match n {
            env::DIAGNOSIS_MIN_SCORE => Some("0.75".into()),
            env::DIAGNOSIS_MIN_MARGIN => Some(" 0.1 ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((s.diagnosis.min_score, s.diagnosis.min_margin), (0.75, 0.1));
        for (name, value) in [
            (env::DIAGNOSIS_MIN_SCORE, "1.5"),
            (env::DIAGNOSIS_MIN_MARGIN, "much"),
        ] {
            let e = Settings::from_lookup(|n| (n == name).then(|| value.to_string()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name) && e.contains("0 to 1"), "{e}");
        }
    }

    #[test]
    fn the_log_group_prefix_defaults_to_ecs_and_is_read_from_its_variable() {
        assert_eq!(Settings::default().diagnosis.log_group_prefix, "/ecs/");
        let s = Settings::from_lookup(|n| {
            (n == env::DIAGNOSIS_LOG_GROUP_PREFIX).then(|| " /aws/ecs/ ".to_string())
        })
        .unwrap();
        assert_eq!(s.diagnosis.log_group_prefix, "/aws/ecs/");
        let s = Settings::from_lookup(|n| (n == env::DIAGNOSIS_LOG_GROUP_PREFIX).then(String::new)).unwrap();
        assert_eq!(s.diagnosis.log_group_prefix, "/ecs/");
        let e =
            Settings::from_lookup(|n| (n == env::DIAGNOSIS_LOG_GROUP_PREFIX).then(|| "/ecs/*".to_string()))
                .unwrap_err()
                .to_string();
        assert!(e.contains(env::DIAGNOSIS_LOG_GROUP_PREFIX), "{e}");
    }

    #[test]
    fn circuit_and_earned_settings_are_read_and_checked() {
        let d = Settings::default().remediation;
        assert_eq!((d.circuit.per_service, d.circuit.service_window_s), (3, 21_600));
        assert_eq!((d.circuit.global, d.circuit.global_window_s), (10, 3600));
        assert_eq!(d.earned.ceiling, RemediationMode::Approve);
        let s = Settings::from_lookup(|n| match n {
            env::CIRCUIT_PER_SERVICE => Some("2".into()),
            env::CIRCUIT_GLOBAL_WINDOW_S => Some("600".into()),
            env::EARNED_CEILING => Some("auto".into()),
            env::EARNED_AUTO_AFTER => Some("5".into()),
            env::REMEDIATION_MODE => Some("earned".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.remediation.circuit.per_service, 2);
        assert_eq!(s.remediation.circuit.global_window_s, 600);
        assert_eq!(s.remediation.earned.ceiling, RemediationMode::Auto);
        assert_eq!(s.remediation.earned.auto_after, 5);
        assert_eq!(s.remediation.mode, RemediationMode::Earned);
        for (name, value, says) in [
            (env::EARNED_CEILING, "always", env::EARNED_CEILING),
            (env::EARNED_CEILING, "off", "ceiling"),
            (env::EARNED_APPROVE_AFTER, "20", "approve_after"),
            (env::CIRCUIT_SERVICE_WINDOW_S, "5", env::CIRCUIT_SERVICE_WINDOW_S),
            (env::CIRCUIT_SERVICE_WINDOW_S, "9000000000000", "service_window_s"),
            (env::CIRCUIT_GLOBAL, "5000", "global"),
        ] {
            let e = Settings::from_lookup(|n| (n == name).then(|| value.to_string()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{name}={value}: {e}");
        }
    }

    #[test]
    fn modes_are_ordered_from_least_to_most_automatic() {
        use RemediationMode::*;
        assert!(Off < DryRun && DryRun < Approve && Approve < Auto);
        assert_eq!(Auto.min(DryRun), DryRun);
    }

    #[test]
    fn unknown_mode_names_the_value() {
        let e = "yolo".parse::<RemediationMode>().unwrap_err().to_string();
        assert!(e.contains("yolo") && e.contains("dry-run"), "{e}");
    }
}
