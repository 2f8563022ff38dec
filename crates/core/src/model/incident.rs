//! The incident: its identity, status machine, the alarms attached to it and the stage times that
//! MTTR is computed from.

use crate::model::settings::RemediationMode;
use crate::model::severity::Severity;
use crate::model::signal::AlarmState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// An incident id such as `INC-20260314-143500-3f9a0c21`: sortable by opening time, readable on
/// a phone, and derived from the delivery that opened it (and the service it is for) so a
/// redelivery computes the same id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub String);

impl IncidentId {
    /// Derives the id from the alarm time, the delivery id and the service (FNV-1a, 32 bits
    /// shown). Alarms change state on minute boundaries, so many share the second: with 32 bits
    /// two of a thousand alarms in one second collide with odds of about 1 in 10,000.
    ///
    /// The id is only a name: whether a delivery was seen before is decided by the delivery's
    /// own identity (see `triage`), and a name another incident already holds is replaced by
    /// [`IncidentId::derive_nth`] with the next `n`.
    pub fn derive(at: DateTime<Utc>, delivery_id: &str, service: &str) -> IncidentId {
        IncidentId::derive_nth(at, delivery_id, service, 0)
    }

    /// The `n`th candidate id for one delivery: `n = 0` is [`IncidentId::derive`]; each later
    /// `n` gives another id, the same on every redelivery, for when the earlier ones are taken
    /// by other incidents.
    pub fn derive_nth(at: DateTime<Utc>, delivery_id: &str, service: &str, n: u32) -> IncidentId {
        let mut key = Vec::with_capacity(delivery_id.len() + service.len() + 6);
        key.extend_from_slice(delivery_id.as_bytes());
        key.push(0);
        key.extend_from_slice(service.as_bytes());
        if n > 0 {
            key.push(0);
            key.extend_from_slice(&n.to_be_bytes());
        }
        let h = fnv1a(&key);
        IncidentId(format!(
            "INC-{}-{:08x}",
            at.format("%Y%m%d-%H%M%S"),
            h & 0xffff_ffff
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts what `derive` produces; anything else is rejected by the CLI and the stores.
    pub fn parse(s: &str) -> Result<IncidentId, crate::Error> {
        let ok = s.len() <= 64
            && s.starts_with("INC-")
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(IncidentId(s.to_string()))
        } else {
            Err(crate::Error::invalid(
                "incident id",
                format!("{s:?} is not of the form INC-YYYYMMDD-HHMMSS-xxxx"),
            ))
        }
    }
}

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 64-bit FNV-1a: a stable digest for ids and correlation (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where an incident is in its life. `open → mitigated → resolved`; a resolved incident whose
/// alarm fires again within the reopen window goes back to `open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentStatus {
    Open,
    Mitigated,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn is_active(self) -> bool {
        !matches!(self, IncidentStatus::Resolved)
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ECS service, always written `cluster/service`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EcsService {
    pub cluster: String,
    pub service: String,
}

impl EcsService {
    pub fn new(cluster: impl Into<String>, service: impl Into<String>) -> EcsService {
        EcsService {
            cluster: cluster.into(),
            service: service.into(),
        }
    }

    /// Parses `cluster/service`.
    pub fn parse(s: &str) -> Result<EcsService, crate::Error> {
        match s.split_once('/') {
            Some((c, svc)) if !c.trim().is_empty() && !svc.trim().is_empty() && !svc.contains('/') => {
                Ok(EcsService::new(c.trim(), svc.trim()))
            }
            _ => Err(crate::Error::invalid(
                "ecs service",
                format!("{s:?} is not of the form cluster/service"),
            )),
        }
    }
}

impl fmt::Display for EcsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.service)
    }
}

/// The last known state of one alarm attached to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachedAlarm {
    pub state: AlarmState,
    pub changed_at: DateTime<Utc>,
    pub reason: String,
}

/// How a remediation decision ended. Serialised as the drill contract's kebab-case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Applied,
    DryRun,
    AwaitingApproval,
    Refused,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::DryRun => "dry-run",
            Outcome::AwaitingApproval => "awaiting-approval",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// The action reached ECS (applied, or failed while being applied).
    pub fn acted(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Failed)
    }
}

impl std::str::FromStr for Outcome {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Outcome, crate::Error> {
        [
            Outcome::Applied,
            Outcome::DryRun,
            Outcome::AwaitingApproval,
            Outcome::Refused,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| {
            crate::Error::invalid(
                "remediation outcome",
                format!("{s:?} is not one of applied, dry-run, awaiting-approval, refused, failed"),
            )
        })
    }
}

/// Compares with the outcome's JSON string (`"applied"`).
impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remediation as recorded on the incident (the timeline has the full story).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemediationRecord {
    /// `ecs-rollback`, `ecs-scale-out`, `ecs-restart` (or the unknown name a runbook gave).
    pub action: crate::model::remedy::ActionName,
    pub mode: RemediationMode,
    pub outcome: Outcome,
    pub detail: String,
    pub target: Option<String>,
    pub at: DateTime<Utc>,
}

/// The incident record. `version` is the optimistic-locking counter: a store accepts a save only
/// when the stored version is the one the caller read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    /// The correlation key: `cluster/service` for ECS services, else the `service` tag, a policy
    /// mapping, or the alarm name.
    pub service: String,
    pub ecs: Option<EcsService>,
    /// The severity paged at: the policy's classification or an alarm's `severity` tag, raised
    /// by escalation.
    pub severity: Severity,
    /// The most severe of the policy's own classifications of the attached alarms (the rules and
    /// the default, never the `severity` tag): what remediation modes are chosen from, so an
    /// alarm's author cannot make an action more automatic than the policy allows. `None` on
    /// incidents stored before it was recorded (release 0.1): their severity may have come from
    /// a tag, so remediation treats them as no more automatic than dry-run
    /// (`guardrails::mode_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_severity: Option<Severity>,
    pub status: IncidentStatus,
    pub title: String,
    /// The policy rule that classified it.
    pub rule: Option<String>,
    /// When the first alarm changed to ALARM (detection).
    pub detected_at: DateTime<Utc>,
    /// When Firebreak opened it.
    pub opened_at: DateTime<Utc>,
    /// The diagnosis's estimate of when the problem began (first anomalous bin).
    pub estimated_start: Option<DateTime<Utc>>,
    pub diagnosed_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub last_escalated_at: Option<DateTime<Utc>>,
    /// When it was last reopened; what happened before belongs to the earlier cycle.
    #[serde(default)]
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopened: u32,
    pub alarms: BTreeMap<String, AttachedAlarm>,
    /// The ECS service each attached alarm names (its `ecs-cluster`/`ecs-service` tags, its
    /// `ClusterName`/`ServiceName` dimensions or a policy mapping, as triage classified it);
    /// alarms that name none are absent. Kept beside `alarms` rather than in [`AttachedAlarm`] so
    /// a recovery, which replaces an alarm's state, keeps what the alarm named. Empty on
    /// incidents stored before it was recorded. Remediation refuses when these disagree.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarm_targets: BTreeMap<String, EcsService>,
    pub runbook: Option<String>,
    pub cause: Option<String>,
    pub remediations: Vec<RemediationRecord>,
    pub postmortem: Option<String>,
    /// When each attached alarm's latest state changes happened (at most as many as mark an
    /// alarm flapping), oldest first: bounded, whatever the number of changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Vec<DateTime<Utc>>>,
    /// Since when the incident is held as flapping: no pages, no automatic remediation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flapping_since: Option<DateTime<Utc>>,
    /// State changes recorded while held (this hold).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_changes: u64,
    /// Why no further automatic action is taken on this incident (an applied action proved
    /// ineffective); actions are asked for approval instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_held: Option<String>,
    pub version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What one alarm state change means for flapping ([`Incident::record_change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flap {
    /// Not flapping: handled as always.
    Steady,
    /// This change makes it flapping: say so once, then hold.
    Started,
    /// Flapping: recorded, nothing else.
    Held,
    /// It was flapping, and this change comes after a stable spell: handled as always again.
    Ended,
}

impl Incident {
    /// A new open incident at version 1: detected at `detected_at` (the alarm's state change),
    /// opened at `opened_at`, with no alarms attached yet and nothing diagnosed.
    pub fn open(
        id: IncidentId,
        service: impl Into<String>,
        severity: Severity,
        title: impl Into<String>,
        detected_at: DateTime<Utc>,
        opened_at: DateTime<Utc>,
    ) -> Incident {
        Incident {
            id,
            service: service.into(),
            ecs: None,
            severity,
            policy_severity: Some(severity),
            status: IncidentStatus::Open,
            title: title.into(),
            rule: None,
            detected_at,
            opened_at,
            estimated_start: None,
            diagnosed_at: None,
            mitigated_at: None,
            resolved_at: None,
            acknowledged_at: None,
            acknowledged_by: None,
            last_escalated_at: None,
            reopened_at: None,
            reopened: 0,
            alarms: BTreeMap::new(),
            alarm_targets: BTreeMap::new(),
            runbook: None,
            cause: None,
            remediations: Vec::new(),
            postmortem: None,
            changes: BTreeMap::new(),
            flapping_since: None,
            held_changes: 0,
            auto_held: None,
            version: 1,
        }
    }

    /// Records the alarm's state as of `changed_at` (attaching it when it is new).
    pub fn set_alarm(&mut self, name: &str, state: AlarmState, changed_at: DateTime<Utc>, reason: &str) {
        self.alarms.insert(
            name.to_string(),
            AttachedAlarm {
                state,
                changed_at,
                reason: reason.to_string(),
            },
        );
    }

    /// A resolved incident comes back: open again as a new cycle (`reopened` counts them);
    /// what was resolved, mitigated and acknowledged belongs to the earlier cycle.
    pub fn reopen(&mut self, now: DateTime<Utc>) {
        self.status = IncidentStatus::Open;
        self.resolved_at = None;
        self.mitigated_at = None;
        self.acknowledged_at = None;
        self.acknowledged_by = None;
        self.reopened_at = Some(now);
        self.reopened += 1;
    }

    /// Raises the severity to `to` (never lowers it).
    pub fn escalate(&mut self, to: Severity, now: DateTime<Utc>) {
        if to.is_more_severe_than(self.severity) {
            self.severity = to;
            self.last_escalated_at = Some(now);
        }
    }

    /// The policy classified an attached alarm `policy` (its rules, not the alarm's tags): the
    /// policy severity becomes the most severe of its classifications. An incident stored
    /// without one keeps none: what its earlier alarms were classified is not known.
    pub fn classified_by_policy(&mut self, policy: Severity) {
        if let Some(current) = &mut self.policy_severity {
            if policy.is_more_severe_than(*current) {
                *current = policy;
            }
        }
    }

    /// The distinct ECS services the incident and its alarms name, each with the alarms that
    /// name it (the incident's own target, which its first alarm named, is listed even when no
    /// alarm's target was recorded). More than one entry means the alarms disagree about what
    /// a remediation would act on.
    pub fn named_targets(&self) -> BTreeMap<EcsService, Vec<String>> {
        let mut out: BTreeMap<EcsService, Vec<String>> = BTreeMap::new();
        if let Some(ecs) = &self.ecs {
            out.entry(ecs.clone()).or_default();
        }
        for (alarm, target) in &self.alarm_targets {
            out.entry(target.clone()).or_default().push(alarm.clone());
        }
        out
    }

    /// An action took effect at `at`: an open incident becomes mitigated (the first time counts).
    pub fn mitigate(&mut self, at: DateTime<Utc>) {
        self.mitigated_at.get_or_insert(at);
        if self.status == IncidentStatus::Open {
            self.status = IncidentStatus::Mitigated;
        }
    }

    /// Closes the incident at `at`.
    pub fn resolve(&mut self, at: DateTime<Utc>) {
        self.status = IncidentStatus::Resolved;
        self.resolved_at = Some(at);
    }

    /// Someone took the page; the first acknowledgement of a cycle stands.
    pub fn acknowledge(&mut self, by: &str, at: DateTime<Utc>) {
        if self.acknowledged_at.is_none() {
            self.acknowledged_at = Some(at);
            self.acknowledged_by = Some(by.to_string());
        }
    }

    /// What a diagnosis found: the runbook and cause when it names them (a later diagnosis
    /// without one keeps the earlier), the first diagnosis time, and the earliest estimated start.
    pub fn record_diagnosis(
        &mut self,
        runbook: Option<&str>,
        cause: Option<&str>,
        estimated_start: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) {
        if let Some(r) = runbook {
            self.runbook = Some(r.to_string());
        }
        if let Some(c) = cause {
            self.cause = Some(c.to_string());
        }
        self.diagnosed_at = self.diagnosed_at.or(Some(at));
        self.estimated_start = match (self.estimated_start, estimated_start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Records a state change of `alarm` at `at` (the alarm's time), noticed at `now`, against
    /// the flapping thresholds: an alarm that changes state `f.changes` times within
    /// `f.window_s` makes the incident flapping (many alarms changing once each, a storm, do
    /// not).
    pub fn record_change(
        &mut self,
        alarm: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        f: &crate::model::settings::FlappingSettings,
    ) -> Flap {
        let keep = usize::try_from(f.changes.max(1)).unwrap_or(usize::MAX);
        if self.flapping_since.is_some() {
            let quiet = self
                .last_change()
                .is_none_or(|last| (at - last).num_seconds() >= f.stable_s);
            if !quiet {
                self.held_changes += 1;
                self.push_change(alarm, at, keep);
                return Flap::Held;
            }
            self.end_flapping();
            self.push_change(alarm, at, keep);
            return Flap::Ended;
        }
        let v = self.push_change(alarm, at, keep);
        let (Some(first), Some(last)) = (v.first(), v.last()) else {
            return Flap::Steady;
        };
        if f.changes > 0 && v.len() >= keep && (*last - *first).num_seconds() <= f.window_s {
            self.flapping_since = Some(now);
            self.held_changes = 0;
            return Flap::Started;
        }
        Flap::Steady
    }

    /// How many recent state changes of `alarm` are recorded (up to the flapping threshold).
    pub fn recent_changes(&self, alarm: &str) -> usize {
        self.changes.get(alarm).map_or(0, Vec::len)
    }

    /// The latest recorded alarm state change.
    pub fn last_change(&self) -> Option<DateTime<Utc>> {
        self.changes.values().filter_map(|v| v.last().copied()).max()
    }

    /// The hold ends: the change history starts again.
    pub fn end_flapping(&mut self) {
        self.flapping_since = None;
        self.held_changes = 0;
        self.changes.clear();
    }

    fn push_change(&mut self, alarm: &str, at: DateTime<Utc>, keep: usize) -> &[DateTime<Utc>] {
        let v = self.changes.entry(alarm.to_string()).or_default();
        v.push(at);
        v.sort();
        if v.len() > keep {
            let extra = v.len() - keep;
            v.drain(..extra);
        }
        v
    }

    /// True when every attached alarm is OK.
    pub fn all_alarms_ok(&self) -> bool {
        !self.alarms.is_empty() && self.alarms.values().all(|a| a.state == AlarmState::Ok)
    }

    /// Alarms currently in ALARM.
    pub fn alarms_firing(&self) -> impl Iterator<Item = &str> {
        self.alarms
            .iter()
            .filter(|(_, a)| a.state == AlarmState::Alarm)
            .map(|(n, _)| n.as_str())
    }

    /// Whether an action with outcome `applied` has been recorded in the current cycle (since the
    /// last reopen, when there was one).
    pub fn remediation_applied(&self) -> bool {
        self.remediations
            .iter()
            .any(|r| r.outcome == Outcome::Applied && self.reopened_at.is_none_or(|t| r.at >= t))
    }
}
