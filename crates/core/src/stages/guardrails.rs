//! Remediation guardrails as pure decisions: each check takes what was read and returns either
//! the go-ahead (often with the plan) or a [`Refusal`] that names the guardrail and says why in
//! words for the timeline. `remediate` reads the ports, calls these in order and records the
//! outcome; nothing here does I/O, so every rule is table-tested.
//!
//! Why the target must be allowlisted by configuration or by a tag read from ECS: the alarm
//! payload (its dimensions and tags) is written by whoever can edit an alarm, and triage derives
//! the incident's service from it. A service named only there could be anything an alarm author
//! typed, so it is never enough to act on. The operator's configuration (`remediation.allow`) or
//! the service's own ECS tag (read from ECS by `describe`, which only the service's owners can
//! set) must also say the service may be touched.

use crate::model::duration::Span;
use crate::model::incident::Outcome;
use crate::model::incident::{EcsService, Incident, IncidentStatus};
use crate::model::remedy::Action;
use crate::model::settings::{RemediationMode, RemediationSettings};
use crate::model::signal::AlarmState;
use crate::ports::ServiceState;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::fmt;

/// How far a refusal reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only this action is refused; the cause's next step may still be tried.
    Action,
    /// Nothing more is done for this incident now (recovered alarm, not allowlisted, ...).
    Incident,
}

/// A guardrail said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Which guardrail (`mode`, `allowlist`, `cooldown`, `rollback-window`, ...).
    pub guardrail: &'static str,
    /// Why, in words a person reads on the timeline.
    pub reason: String,
    pub scope: Scope,
}

impl Refusal {
    pub fn action(guardrail: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            guardrail,
            reason: reason.into(),
            scope: Scope::Action,
        }
    }

    pub fn incident(guardrail: &'static str, reason: impl Into<String>) -> Refusal {
        Refusal {
            guardrail,
            reason: reason.into(),
            scope: Scope::Incident,
        }
    }

    /// True when no further step of the cause should be tried.
    pub fn stops(&self) -> bool {
        self.scope == Scope::Incident
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused ({}): {}", self.guardrail, self.reason)
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `off` refuses this action (the next step may have another mode).
pub fn check_mode(action: &str, mode: RemediationMode) -> Result<(), Refusal> {
    if mode == RemediationMode::Off {
        Err(Refusal::action(
            "mode",
            format!("mode off for {action} at this severity"),
        ))
    } else {
        Ok(())
    }
}

/// The service to act on: the incident's ECS service, as triage derived it. An incident without
/// one has nothing a remediation may touch.
pub fn target(incident: &Incident) -> Result<&EcsService, Refusal> {
    incident.ecs.as_ref().ok_or_else(|| {
        Refusal::incident(
            "target",
            format!(
                "incident {} names no ECS service (correlated on {:?})",
                incident.id, incident.service
            ),
        )
    })
}

/// The mode for `action` on `incident`: the rules at the severity the policy's own rules
/// classified (`policy_severity`), never the paged severity, which an alarm's `severity` tag can
/// raise. An incident stored before the policy severity was recorded may have been classified by
/// a tag, so it gets no more than dry-run (and no more than its paged severity's mode).
pub fn mode_for(settings: &RemediationSettings, action: &str, incident: &Incident) -> RemediationMode {
    match incident.policy_severity {
        Some(sev) => settings.mode_for(action, sev),
        None => settings
            .mode_for(action, incident.severity)
            .min(RemediationMode::DryRun),
    }
}

/// Every alarm of the incident must name the same ECS service (or none). Alarms are written by
/// whoever can edit them: one alarm tagged `service=prod/articles-api` with
/// `ecs-service=payments-api` joins articles-api's incident and would point its remediation at
/// payments-api. When the incident and its alarms name more than one service, nothing is
/// remediated, and the refusal says which alarms name which service.
pub fn check_targets_agree(incident: &Incident) -> Result<(), Refusal> {
    let named = incident.named_targets();
    if named.len() <= 1 {
        return Ok(());
    }
    let parts: Vec<String> = named
        .iter()
        .map(|(svc, alarms)| {
            if alarms.is_empty() {
                format!("the incident names {svc}")
            } else {
                format!(
                    "{} name{} {svc}",
                    alarms.join(", "),
                    if alarms.len() == 1 { "s" } else { "" }
                )
            }
        })
        .collect();
    Err(Refusal::incident(
        "targets-disagree",
        format!(
            "the incident's alarms name different ECS services ({}); never act on a target its alarms disagree about",
            parts.join("; ")
        ),
    ))
}

/// What allowed a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedBy {
    /// `remediation.allow` lists it.
    Config,
    /// The service carries `<tag>=true` in ECS.
    Tag(String),
}

/// The service must be in `remediation.allow` or carry the allow tag with value `true` as ECS
/// reports it (`tags` comes from `describe`, never from the alarm).
pub fn check_allowlist(
    service: &EcsService,
    settings: &RemediationSettings,
    ecs_tags: &BTreeMap<String, String>,
) -> Result<AllowedBy, Refusal> {
    if settings.allow.contains(service) {
        return Ok(AllowedBy::Config);
    }
    if let Some(tag) = settings.allow_tag.as_deref().filter(|t| !t.is_empty()) {
        if ecs_tags
            .get(tag)
            // Exactly `true`: the remediate role's IAM condition (StringEquals) is exact too, so
            // a looser match here would pass the guardrail and fail at UpdateService.
            .is_some_and(|v| v == "true")
        {
            return Ok(AllowedBy::Tag(tag.to_string()));
        }
        return Err(Refusal::incident(
            "allowlist",
            format!(
                "{service} is not allowlisted (not in remediation.allow and its ECS tag {tag} is not \"true\")"
            ),
        ));
    }
    Err(Refusal::incident(
        "allowlist",
        format!("{service} is not allowlisted (not in remediation.allow)"),
    ))
}

/// A resolved incident is not remediated.
pub fn check_incident_active(incident: &Incident) -> Result<(), Refusal> {
    if incident.status == IncidentStatus::Resolved {
        Err(Refusal::incident(
            "incident-closed",
            format!("incident {} is resolved", incident.id),
        ))
    } else {
        Ok(())
    }
}

/// A flapping incident is held: nothing is changed automatically until it is stable again.
pub fn check_not_flapping(incident: &Incident) -> Result<(), Refusal> {
    match incident.flapping_since {
        Some(since) => Err(Refusal::incident(
            "flapping",
            format!(
                "incident {} is flapping (held since {}): no automatic remediation until it is stable",
                incident.id,
                since.format("%H:%M:%S")
            ),
        )),
        None => Ok(()),
    }
}

/// Some alarm of the incident must still be in ALARM. `live` is what CloudWatch says now; an
/// alarm CloudWatch does not report (deleted, or the port cannot see it) keeps the state the
/// incident recorded for it, so it counts as firing only when the incident says so. Returns the
/// alarms still firing.
pub fn check_alarms_firing(
    incident: &Incident,
    live: &BTreeMap<String, AlarmState>,
) -> Result<Vec<String>, Refusal> {
    let mut firing = Vec::new();
    let mut quiet = Vec::new();
    let mut unknown = Vec::new();
    for name in incident.alarms.keys() {
        // CloudWatch's word, never what the incident recorded: an alarm CloudWatch does not
        // report (made up, deleted, renamed) is not firing
        match live.get(name) {
            Some(AlarmState::Alarm) => firing.push(name.clone()),
            Some(state) => quiet.push(format!("{name} is {state}")),
            None => unknown.push(name.clone()),
        }
    }
    if !firing.is_empty() {
        return Ok(firing);
    }
    if !unknown.is_empty() {
        let mut why = format!("CloudWatch does not know {}", unknown.join(", "));
        if !quiet.is_empty() {
            why.push_str(&format!("; {}", quiet.join(", ")));
        }
        return Err(Refusal::incident(
            "alarm-unknown",
            format!("no alarm CloudWatch reports is in ALARM ({why}); never act on an alarm CloudWatch does not report"),
        ));
    }
    let why = if quiet.is_empty() {
        "the incident has no alarms".to_string()
    } else {
        quiet.join(", ")
    };
    Err(Refusal::incident(
        "alarm-recovered",
        format!("no alarm is in ALARM any more ({why}); never remediate a recovered alarm"),
    ))
}

/// No scale-out or restart while a deployment rolls out (it would fight the rollout). A rollback
/// is allowed: undoing the rollout in progress is what it is for.
pub fn check_no_deployment(action: &Action, state: &ServiceState) -> Result<(), Refusal> {
    if matches!(action, Action::EcsRollback { .. }) || !state.deployment_in_progress() {
        return Ok(());
    }
    let deps: Vec<String> = state
        .deployments
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d.status,
                d.task_definition,
                d.rollout_state.as_deref().unwrap_or("-")
            )
        })
        .collect();
    Err(Refusal::action(
        "deployment-in-progress",
        format!(
            "an ECS deployment of {} is in progress ({})",
            state.service,
            deps.join("; ")
        ),
    ))
}

/// Actions carried out or attempted on the incident (outcome `applied` or `failed`).
pub fn actions_taken(incident: &Incident) -> u32 {
    let n = incident
        .remediations
        .iter()
        .filter(|r| r.outcome == Outcome::Applied || r.outcome == Outcome::Failed)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// At most `max` actions carried out or attempted per incident.
pub fn check_max_actions(incident: &Incident, max: u32) -> Result<(), Refusal> {
    let taken = actions_taken(incident);
    if taken >= max {
        Err(Refusal::incident(
            "max-actions",
            format!("{taken} of at most {max} actions per incident already taken"),
        ))
    } else {
        Ok(())
    }
}

/// The lease key that makes the cooldown a conditional write.
pub fn cooldown_key(service: &EcsService, action: &str) -> String {
    format!("cooldown#{service}#{action}")
}

/// When the cooldown taken now ends (a negative setting counts as none).
pub fn cooldown_until(now: DateTime<Utc>, cooldown_s: i64) -> DateTime<Utc> {
    now + chrono::Duration::seconds(cooldown_s.clamp(0, 366 * 86_400))
}

/// The refusal for a lost cooldown lease.
pub fn cooldown_refusal(service: &EcsService, action: &str, cooldown_s: i64) -> Refusal {
    Refusal::action(
        "cooldown",
        format!("cooldown: {action} already ran on {service} within the last {cooldown_s}s"),
    )
}

/// A task definition `family:revision` (also accepted inside an ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub family: String,
    pub number: u32,
}

/// Parses `family:revision` or `arn:...:task-definition/family:revision`.
pub fn parse_revision(td: &str) -> Option<Revision> {
    let name = td.rsplit('/').next().unwrap_or(td);
    let (family, rev) = name.rsplit_once(':')?;
    if family.is_empty() || rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Revision {
        family: family.to_string(),
        number: rev.parse().ok()?,
    })
}

/// When the service's current task definition was deployed: the creation time of the newest
/// deployment running it.
pub fn current_deployed_at(state: &ServiceState) -> Option<DateTime<Utc>> {
    state
        .deployments
        .iter()
        .filter(|d| d.task_definition == state.task_definition)
        .filter_map(|d| d.created_at)
        .max()
}

/// Roll back only a task definition deployed within `window` before the incident started, up to
/// its detection (the estimated start is binned, so a deployment between the estimate and the
/// detection still counts). Without a deployment time there is no evidence: refuse.
pub fn check_rollback_window(
    state: &ServiceState,
    start: DateTime<Utc>,
    detected: DateTime<Utc>,
    window: Span,
) -> Result<DateTime<Utc>, Refusal> {
    let Some(deployed) = current_deployed_at(state) else {
        return Err(Refusal::action(
            "rollback-window",
            format!(
                "cannot tell when {} was deployed (no deployment with a start time)",
                state.task_definition
            ),
        ));
    };
    let earliest = start - window.to_chrono();
    let latest = detected.max(start);
    if deployed < earliest || deployed > latest {
        return Err(Refusal::action(
            "rollback-window",
            format!(
                "{} was deployed at {}, not within {window} before the start at {}",
                state.task_definition,
                ts(deployed),
                ts(start)
            ),
        ));
    }
    Ok(deployed)
}

/// Where a rollback target came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSource {
    Deployments,
    Revisions,
}

impl fmt::Display for TargetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetSource::Deployments => "the service's previous deployment",
            TargetSource::Revisions => "the previous ACTIVE revision",
        })
    }
}

/// The task definition of the newest deployment that is not the current one (same family),
/// when ECS still lists one.
pub fn previous_from_deployments(state: &ServiceState) -> Option<String> {
    let current = parse_revision(&state.task_definition)?;
    let mut candidates: Vec<(usize, &crate::ports::Deployment)> = state
        .deployments
        .iter()
        .enumerate()
        .filter(|(_, d)| d.task_definition != state.task_definition)
        .filter(|(_, d)| parse_revision(&d.task_definition).is_some_and(|r| r.family == current.family))
        .collect();
    // Newest first: by creation time when known, else by position (ECS lists newest first).
    candidates.sort_by(|(ia, a), (ib, b)| b.created_at.cmp(&a.created_at).then(ia.cmp(ib)));
    candidates.first().map(|(_, d)| d.task_definition.clone())
}

/// The highest ACTIVE revision of the current family below the current one, sorted by revision
/// number here (listings come in any order, and `10` sorts before `9` as text).
pub fn previous_revision(current: &str, listed: &[String]) -> Result<String, Refusal> {
    let cur = parse_revision(current).ok_or_else(|| {
        Refusal::action(
            "rollback-target",
            format!("task definition {current:?} is not family:revision"),
        )
    })?;
    let mut older: Vec<(u32, &String)> = listed
        .iter()
        .filter_map(|td| parse_revision(td).map(|r| (r, td)))
        .filter(|(r, _)| r.family == cur.family && r.number < cur.number)
        .map(|(r, td)| (r.number, td))
        .collect();
    older.sort_by_key(|(n, _)| *n);
    older.last().map(|(_, td)| (*td).clone()).ok_or_else(|| {
        Refusal::action(
            "rollback-target",
            format!(
                "nothing to roll back to: no ACTIVE revision of {} older than {}",
                cur.family, cur.number
            ),
        )
    })
}

/// A planned scale-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePlan {
    pub from: i32,
    pub to: i32,
    /// `desiredCount 4 → 8 (step +4, max 20, ≤2x)`.
    pub detail: String,
}

/// The new desired count: `current + step` or `ceil(current × factor)` (the larger when both),
/// at most `max` and at most `floor(current × max_factor)`. Refused when that does not raise the
/// count (already at a limit) or the service is stopped (desired 0: starting a stopped service
/// is not a remediation, and no factor of 0 is more than 0).
pub fn plan_scale_out(
    current: i32,
    step: Option<i32>,
    factor: Option<f64>,
    max: i32,
    max_factor: f64,
) -> Result<ScalePlan, Refusal> {
    let mut how = Vec::new();
    if let Some(s) = step {
        how.push(format!("step +{s}"));
    }
    if let Some(f) = factor {
        how.push(format!("×{f}"));
    }
    let limits = format!("max {max}, ≤{max_factor}x");
    let params = if how.is_empty() {
        limits.clone()
    } else {
        format!("{}, {limits}", how.join(" or "))
    };
    if current <= 0 {
        return Err(Refusal::action(
            "scale-out",
            format!("desiredCount is {current}: the service is stopped, scale-out only raises a running service ({params})"),
        ));
    }
    let cur = i64::from(current);
    let by_step = step.map(|s| cur + i64::from(s));
    let by_factor = factor
        .filter(|f| f.is_finite())
        .map(|f| (cur as f64 * f).ceil().min(i64::MAX as f64) as i64);
    let Some(want) = by_step.into_iter().chain(by_factor).max() else {
        return Err(Refusal::action(
            "scale-out",
            "the runbook step gives neither step nor factor",
        ));
    };
    let by_max_factor = if max_factor.is_finite() {
        (cur as f64 * max_factor).floor().min(i64::MAX as f64) as i64
    } else {
        cur
    };
    let to = want.min(i64::from(max)).min(by_max_factor);
    if to <= cur {
        return Err(Refusal::action(
            "scale-out",
            format!("desiredCount {current} would not increase ({params})"),
        ));
    }
    let to = i32::try_from(to).unwrap_or(max);
    let capped = if i64::from(to) < want {
        format!("; capped from {want}")
    } else {
        String::new()
    };
    Ok(ScalePlan {
        from: current,
        to,
        detail: format!("desiredCount {current} → {to} ({params}{capped})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::incident::{AttachedAlarm, IncidentId, RemediationRecord};
    use crate::model::severity::Severity;
    use crate::ports::Deployment;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
    }

    fn incident() -> Incident {
        let mut i = Incident::open(
            IncidentId("INC-20260314-143500-0001".into()),
            "prod/articles-api",
            Severity::Sev2,
            "5xx",
            t(14, 35),
            t(14, 35),
        );
        i.ecs = Some(EcsService::new("prod", "articles-api"));
        i
    }

    fn dep(td: &str, status: &str, rollout: &str, created: Option<DateTime<Utc>>) -> Deployment {
        Deployment {
            id: format!("ecs-svc/{td}"),
            status: status.into(),
            task_definition: td.into(),
            desired: 4,
            running: 4,
            rollout_state: Some(rollout.into()),
            created_at: created,
            updated_at: None,
        }
    }

    fn state(td: &str, deployments: Vec<Deployment>) -> ServiceState {
        ServiceState {
            service: EcsService::new("prod", "articles-api"),
            status: "ACTIVE".into(),
            task_definition: td.into(),
            desired: 4,
            running: 4,
            pending: 0,
            deployments,
            events: vec![],
            tags: BTreeMap::new(),
        }
    }

    fn alarm(state: AlarmState) -> AttachedAlarm {
        AttachedAlarm {
            state,
            changed_at: t(14, 35),
            reason: String::new(),
        }
    }

    #[test]
    fn the_mode_follows_the_policy_severity_not_the_paged_one() {
        let settings = RemediationSettings {
            mode: RemediationMode::DryRun,
            rules: vec![crate::model::settings::ModeRule {
                action: None,
                severity: Some(Severity::Sev1),
                mode: RemediationMode::Auto,
            }],
            ..RemediationSettings::default()
        };
        // paged SEV1 because the alarm's tag said so; the policy's rules said SEV2
        let mut i = incident();
        i.severity = Severity::Sev1;
        i.policy_severity = Some(Severity::Sev2);
        assert_eq!(mode_for(&settings, "ecs-rollback", &i), RemediationMode::DryRun);
        // the policy itself classified SEV1: the rule applies
        i.policy_severity = Some(Severity::Sev1);
        assert_eq!(mode_for(&settings, "ecs-rollback", &i), RemediationMode::Auto);
    }

    #[test]
    fn an_incident_stored_without_a_policy_severity_is_at_most_dry_run() {
        let mut settings = RemediationSettings {
            mode: RemediationMode::Auto,
            ..RemediationSettings::default()
        };
        let mut i = incident();
        i.policy_severity = None;
        assert_eq!(mode_for(&settings, "ecs-scale-out", &i), RemediationMode::DryRun);
        // and never more than its severity's mode
        settings.mode = RemediationMode::Off;
        assert_eq!(mode_for(&settings, "ecs-scale-out", &i), RemediationMode::Off);
    }

    #[test]
    fn alarms_that_name_different_targets_are_refused_naming_each() {
        let mut i = incident();
        assert!(check_targets_agree(&i).is_ok(), "no alarm names a target");
        i.alarm_targets.insert(
            "checkout-queue-depth".into(),
            EcsService::new("prod", "payments-api"),
        );
        let r = check_targets_agree(&i).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("targets-disagree", Scope::Incident));
        // the incident's own target (from an item that did not record who named it) is listed
        assert!(r.reason.contains("the incident names prod/articles-api"), "{r}");
        assert!(
            r.reason.contains("checkout-queue-depth names prod/payments-api"),
            "{r}"
        );

        i.alarm_targets
            .insert("articles-api-5xx".into(), EcsService::new("prod", "articles-api"));
        i.alarm_targets.insert(
            "articles-api-latency".into(),
            EcsService::new("prod", "articles-api"),
        );
        let r = check_targets_agree(&i).unwrap_err();
        assert!(
            r.reason
                .contains("articles-api-5xx, articles-api-latency name prod/articles-api; checkout-queue-depth names prod/payments-api"),
            "{r}"
        );

        // every alarm naming the incident's own target (or none) agrees
        i.alarm_targets.remove("checkout-queue-depth");
        assert!(check_targets_agree(&i).is_ok());
    }

    #[test]
    fn mode_off_refuses_only_that_action() {
        let r = check_mode("ecs-rollback", RemediationMode::Off).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("mode", Scope::Action));
        assert!(r.reason.contains("mode off"), "{r}");
        for m in [
            RemediationMode::DryRun,
            RemediationMode::Approve,
            RemediationMode::Auto,
        ] {
            assert!(check_mode("ecs-rollback", m).is_ok(), "{m}");
        }
    }

    #[test]
    fn incident_without_ecs_service_has_no_target() {
        let mut i = incident();
        assert_eq!(target(&i).unwrap().to_string(), "prod/articles-api");
        i.ecs = None;
        let r = target(&i).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("target", Scope::Incident));
    }

    #[test]
    fn allowlist_by_config_or_ecs_tag_only() {
        let svc = EcsService::new("prod", "articles-api");
        let mut s = RemediationSettings::default();
        let mut tags = BTreeMap::new();
        // (allow list, allow tag, the service's tag value, allowed by)
        type Case<'a> = (
            Vec<EcsService>,
            Option<&'a str>,
            Option<&'a str>,
            Result<AllowedBy, ()>,
        );
        let cases: Vec<Case> = vec![
            (vec![], Some("firebreak:remediate"), None, Err(())),
            (
                vec![svc.clone()],
                Some("firebreak:remediate"),
                None,
                Ok(AllowedBy::Config),
            ),
            (
                vec![],
                Some("firebreak:remediate"),
                Some("true"),
                Ok(AllowedBy::Tag("firebreak:remediate".into())),
            ),
            // IAM's StringEquals on the tag is exact, so the guardrail is too.
            (vec![], Some("firebreak:remediate"), Some("TRUE"), Err(())),
            (vec![], Some("firebreak:remediate"), Some("true "), Err(())),
            (vec![], Some("firebreak:remediate"), Some("false"), Err(())),
            (vec![], Some("firebreak:remediate"), Some("yes"), Err(())),
            (vec![], None, Some("true"), Err(())),
            (vec![EcsService::new("prod", "other")], None, None, Err(())),
            (
                vec![EcsService::new("staging", "articles-api")],
                None,
                None,
                Err(()),
            ),
        ];
        for (allow, tag, value, want) in cases {
            s.allow = allow.clone();
            s.allow_tag = tag.map(str::to_string);
            tags.clear();
            if let Some(v) = value {
                tags.insert("firebreak:remediate".to_string(), v.to_string());
            }
            let got = check_allowlist(&svc, &s, &tags);
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g),
                (Err(()), Err(r)) => {
                    assert_eq!((r.guardrail, r.scope), ("allowlist", Scope::Incident));
                    assert!(r.reason.contains("prod/articles-api is not allowlisted"), "{r}");
                }
                (w, g) => panic!("allow {allow:?} tag {tag:?}={value:?}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn resolved_incident_is_refused() {
        let mut i = incident();
        assert!(check_incident_active(&i).is_ok());
        i.status = IncidentStatus::Mitigated;
        assert!(check_incident_active(&i).is_ok());
        i.status = IncidentStatus::Resolved;
        let r = check_incident_active(&i).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("incident-closed", Scope::Incident));
    }

    #[test]
    fn alarm_state_recheck_takes_cloudwatchs_word_and_an_unknown_alarm_is_not_firing() {
        let mut i = incident();
        i.alarms.insert("a".into(), alarm(AlarmState::Alarm));
        i.alarms.insert("b".into(), alarm(AlarmState::Ok));
        let live = |v: &[(&str, AlarmState)]| -> BTreeMap<String, AlarmState> {
            v.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        // (live states, firing, or the guardrail that refuses)
        type Case<'a> = (BTreeMap<String, AlarmState>, Result<Vec<&'a str>, &'a str>);
        let cases: Vec<Case> = vec![
            // recorded ALARM is not enough: CloudWatch does not know either alarm
            (live(&[]), Err("alarm-unknown")),
            (live(&[("a", AlarmState::Alarm)]), Ok(vec!["a"])),
            (live(&[("a", AlarmState::Ok)]), Err("alarm-unknown")),
            (
                live(&[("a", AlarmState::Ok), ("b", AlarmState::Ok)]),
                Err("alarm-recovered"),
            ),
            (
                live(&[("a", AlarmState::InsufficientData), ("b", AlarmState::Ok)]),
                Err("alarm-recovered"),
            ),
            (
                live(&[("a", AlarmState::Ok), ("b", AlarmState::Alarm)]),
                Ok(vec!["b"]),
            ),
        ];
        for (l, want) in cases {
            match (want, check_alarms_firing(&i, &l)) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{l:?}"),
                (Err(guardrail), Err(r)) => {
                    assert_eq!((r.guardrail, r.scope), (guardrail, Scope::Incident), "{l:?}");
                    if guardrail == "alarm-unknown" {
                        assert!(r.reason.contains("CloudWatch does not know"), "{r}");
                    } else {
                        assert!(r.reason.contains("a is"), "{r}");
                    }
                }
                (w, g) => panic!("{l:?}: wanted {w:?}, got {g:?}"),
            }
        }
        i.alarms.clear();
        assert!(check_alarms_firing(&i, &BTreeMap::new())
            .unwrap_err()
            .reason
            .contains("no alarms"));
    }

    #[test]
    fn deployment_in_progress_blocks_scale_and_restart_not_rollback() {
        let scale = Action::EcsScaleOut {
            step: Some(1),
            factor: None,
            max: 9,
            max_factor: 2.0,
        };
        let rollback = Action::EcsRollback {
            window: Span::minutes(60),
        };
        let steady = state("a:2", vec![dep("a:2", "PRIMARY", "COMPLETED", None)]);
        let rolling = state(
            "a:2",
            vec![
                dep("a:2", "PRIMARY", "IN_PROGRESS", None),
                dep("a:1", "ACTIVE", "COMPLETED", None),
            ],
        );
        for a in [&scale, &Action::EcsRestart, &rollback] {
            assert!(check_no_deployment(a, &steady).is_ok(), "{a}");
        }
        for a in [&scale, &Action::EcsRestart] {
            let r = check_no_deployment(a, &rolling).unwrap_err();
            assert_eq!((r.guardrail, r.scope), ("deployment-in-progress", Scope::Action));
            assert!(r.reason.contains("IN_PROGRESS"), "{r}");
        }
        assert!(check_no_deployment(&rollback, &rolling).is_ok());
    }

    #[test]
    fn max_actions_counts_applied_and_failed_only() {
        let mut i = incident();
        let rec = |outcome: &str| RemediationRecord {
            action: "ecs-restart".into(),
            mode: crate::model::settings::RemediationMode::Auto,
            outcome: outcome.parse().unwrap(),
            detail: String::new(),
            target: None,
            at: t(14, 40),
        };
        i.remediations = vec![
            rec("dry-run"),
            rec("refused"),
            rec("awaiting-approval"),
            rec("applied"),
        ];
        assert_eq!(actions_taken(&i), 1);
        assert!(check_max_actions(&i, 2).is_ok());
        i.remediations.push(rec("failed"));
        let r = check_max_actions(&i, 2).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("max-actions", Scope::Incident));
        assert!(r.reason.contains("2 of at most 2"), "{r}");
        assert!(check_max_actions(&incident(), 0).is_err());
    }

    #[test]
    fn cooldown_key_names_service_and_action() {
        let svc = EcsService::new("prod", "articles-api");
        assert_eq!(
            cooldown_key(&svc, "ecs-restart"),
            "cooldown#prod/articles-api#ecs-restart"
        );
        assert_eq!(cooldown_until(t(14, 0), 900), t(14, 15));
        assert_eq!(cooldown_until(t(14, 0), -5), t(14, 0));
        let r = cooldown_refusal(&svc, "ecs-restart", 900);
        assert_eq!((r.guardrail, r.scope), ("cooldown", Scope::Action));
    }

    #[test]
    fn parses_revisions_plain_and_arn() {
        let cases = [
            ("articles-api:42", Some(("articles-api", 42))),
            (
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/articles-api:7",
                Some(("articles-api", 7)),
            ),
            ("my:family:3", Some(("my:family", 3))),
            ("articles-api", None),
            ("articles-api:", None),
            (":4", None),
            ("articles-api:x1", None),
            ("articles-api:-1", None),
            ("articles-api:99999999999", None),
        ];
        for (s, want) in cases {
            let got = parse_revision(s).map(|r| (r.family, r.number));
            assert_eq!(got, want.map(|(f, n)| (f.to_string(), n)), "{s}");
        }
    }

    #[test]
    fn previous_revision_sorts_numerically_not_lexically() {
        let listed: Vec<String> = [
            "articles-api:9",
            "articles-api:42",
            "articles-api:10",
            "articles-api:41",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            previous_revision("articles-api:42", &listed).unwrap(),
            "articles-api:41"
        );
        assert_eq!(
            previous_revision("articles-api:41", &listed).unwrap(),
            "articles-api:10"
        );
        assert_eq!(
            previous_revision("articles-api:10", &listed).unwrap(),
            "articles-api:9"
        );
        let r = previous_revision("articles-api:9", &listed).unwrap_err();
        assert_eq!((r.guardrail, r.scope), ("rollback-target", Scope::Action));
        assert!(r.reason.contains("nothing to roll back to"), "{r}");
        // other families and junk are ignored; gaps are fine
        let mixed: Vec<String> = ["other:41", "articles-api", "articles-api:3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            previous_revision("articles-api:42", &mixed).unwrap(),
            "articles-api:3"
        );
        assert!(previous_revision("articles-api", &mixed).is_err());
    }

    #[test]
    fn previous_from_deployments_takes_newest_other_revision_of_the_family() {
        let s = state(
            "a:3",
            vec![
                dep("a:3", "PRIMARY", "IN_PROGRESS", Some(t(14, 20))),
                dep("a:2", "ACTIVE", "COMPLETED", Some(t(13, 0))),
                dep("a:1", "INACTIVE", "COMPLETED", Some(t(12, 0))),
                dep("b:9", "ACTIVE", "COMPLETED", Some(t(13, 30))),
            ],
        );
        assert_eq!(previous_from_deployments(&s).as_deref(), Some("a:2"));
        let only_current = state("a:3", vec![dep("a:3", "PRIMARY", "COMPLETED", Some(t(14, 20)))]);
        assert_eq!(previous_from_deployments(&only_current), None);
    }

    #[test]
    fn rollback_window_requires_a_recent_known_deployment() {
        let w = Span::minutes(60);
        let at = |created| state("a:3", vec![dep("a:3", "PRIMARY", "COMPLETED", created)]);
        let start = t(14, 30);
        let detected = t(14, 35);
        // (deployed at, ok)
        let cases = [
            (Some(t(14, 5)), true),
            (Some(t(13, 30)), true),
            (Some(t(13, 29)), false),
            (Some(t(14, 33)), true),
            (Some(t(14, 36)), false),
            (None, false),
        ];
        for (created, ok) in cases {
            let got = check_rollback_window(&at(created), start, detected, w);
            assert_eq!(got.is_ok(), ok, "{created:?}: {got:?}");
            if let Err(r) = got {
                assert_eq!((r.guardrail, r.scope), ("rollback-window", Scope::Action));
            }
        }
    }

    #[test]
    fn scale_out_arithmetic() {
        // (current, step, factor, max, max_factor, Some(to) or None for refused)
        type Case = (i32, Option<i32>, Option<f64>, i32, f64, Option<i32>);
        let cases: [Case; 14] = [
            (4, Some(4), None, 20, 2.0, Some(8)),
            (4, Some(10), None, 20, 2.0, Some(8)),
            (4, Some(2), None, 20, 2.0, Some(6)),
            (4, Some(2), None, 5, 2.0, Some(5)),
            (4, None, Some(1.5), 20, 2.0, Some(6)),
            (3, None, Some(1.5), 20, 2.0, Some(5)),
            (4, Some(1), Some(1.5), 20, 2.0, Some(6)),
            (4, Some(3), Some(1.5), 20, 2.0, Some(7)),
            (1, Some(4), None, 20, 1.5, None),
            (1, Some(4), None, 20, 2.0, Some(2)),
            (20, Some(4), None, 20, 2.0, None),
            (25, Some(4), None, 20, 2.0, None),
            (0, Some(4), None, 20, 2.0, None),
            (i32::MAX, Some(i32::MAX), None, i32::MAX, 2.0, None),
        ];
        for (cur, step, factor, max, mf, want) in cases {
            let got = plan_scale_out(cur, step, factor, max, mf);
            match (want, got) {
                (Some(w), Ok(p)) => {
                    assert_eq!((p.from, p.to), (cur, w), "{cur} {step:?} {factor:?} {max} {mf}");
                    assert!(p.to <= max && f64::from(p.to) <= f64::from(cur) * mf);
                }
                (None, Err(r)) => assert_eq!((r.guardrail, r.scope), ("scale-out", Scope::Action)),
                (w, g) => panic!("{cur} {step:?} {factor:?} {max} {mf}: want {w:?}, got {g:?}"),
            }
        }
        assert_eq!(
            plan_scale_out(4, Some(4), None, 20, 2.0).unwrap().detail,
            "desiredCount 4 → 8 (step +4, max 20, ≤2x)"
        );
        assert_eq!(
            plan_scale_out(4, Some(10), None, 20, 2.0).unwrap().detail,
            "desiredCount 4 → 8 (step +10, max 20, ≤2x; capped from 14)"
        );
        assert!(plan_scale_out(0, Some(4), None, 20, 2.0)
            .unwrap_err()
            .reason
            .contains("stopped"));
        assert!(plan_scale_out(20, Some(4), None, 20, 2.0)
            .unwrap_err()
            .reason
            .contains("would not increase"));
    }
}
