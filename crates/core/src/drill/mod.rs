//! Drills: a recorded incident replayed through the whole pipeline offline, on the in-memory
//! ports, the local Logs Insights engine, a simulated ECS fleet and a simulated clock.
//!
//! `scenario.yaml` (the contract in DESIGN.md) names the fleet, the logs, settings overrides and
//! the steps; each step is carried through every stage it triggers (triage, then diagnosis,
//! remediation or resolution) before the next one is delivered.

pub mod coverage;
pub mod record;

use crate::adapters::local_logs::LocalLogQueries;
use crate::adapters::local_metrics::{read_points, RecordedMetrics};
use crate::adapters::memory::{
    InMemoryAlarmStatus, InMemoryCallerIdentity, InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier,
    InMemoryServiceControl, SimClock,
};
use crate::intake;
use crate::model::incident::{EcsService, Incident, IncidentId, IncidentStatus};
use crate::model::pipeline::Event;
use crate::model::settings::{ModeRule, RemediationMode, Settings};
use crate::model::severity::Severity;
use crate::model::signal::AlarmState;
use crate::policy::SeverityPolicy;
use crate::ports::bundle::Wired;
use crate::ports::{Clock, Deployment, IncidentStore, ListQuery, ServiceState};
use crate::report::metrics::StageTimes;
use crate::runbook::RunbookSet;
use crate::stages::boundary::{admit, Admission};
use crate::stages::diagnose::Diagnose;
use crate::stages::remediate::request_approval;
use crate::stages::remediate::Remediate;
use crate::stages::resolve::{Resolve, ResolveOutcome};
use crate::stages::sweeper::Sweeper;
use crate::stages::triage::Triage;
use crate::Error;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `scenario.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    #[serde(default)]
    pub ecs: Vec<FleetService>,
    /// JSON-lines log file, relative to the scenario directory.
    #[serde(default)]
    pub logs: Option<PathBuf>,
    /// JSON-lines metric datapoints (`{"namespace", "name", "dimensions", "timestamp",
    /// "value"}`), relative to the scenario directory: what the simulated CloudWatch answers
    /// metric steps from.
    #[serde(default)]
    pub metrics: Option<PathBuf>,
    /// Service mappings tried before the policy's own (alarms whose tags and dimensions do not
    /// name their service).
    #[serde(default)]
    pub services: Vec<crate::policy::ServiceMapping>,
    #[serde(default)]
    pub settings: DrillSettings,
    /// Alarms the simulated CloudWatch knows before the first step, with their state. An alarm
    /// neither listed here nor ever delivered (except as `origin: forged`) is unknown to it.
    #[serde(default)]
    pub alarms: Vec<SeedAlarm>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// What it took people (shown beside the drill's own times).
    #[serde(default)]
    pub baseline: Option<Baseline>,
}

/// An alarm CloudWatch has before the drill starts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedAlarm {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: AlarmState,
}

/// Where a step's event comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// CloudWatch: the simulated CloudWatch's alarm state changes with the event.
    #[default]
    Cloudwatch,
    /// Someone else: the event reaches the functions, CloudWatch is not told, so the alarm keeps
    /// the state CloudWatch had (unknown if it never existed).
    Forged,
}

/// One ECS service of the simulated fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetService {
    pub cluster: String,
    pub service: String,
    pub desired: i32,
    pub running: i32,
    pub task_definition: String,
    /// The registered revisions: `family:revision` names, or objects with what each holds.
    #[serde(default)]
    pub task_definitions: Vec<FleetTaskDefinition>,
    /// Newest last.
    #[serde(default)]
    pub deployments: Vec<FleetDeployment>,
    /// Service events (`service x has reached a steady state.`, failed placements), any order.
    #[serde(default)]
    pub events: Vec<FleetEvent>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl FleetService {
    /// The registered revisions' names.
    pub fn revisions(&self) -> Vec<String> {
        self.task_definitions
            .iter()
            .map(|t| t.name().to_string())
            .collect()
    }
}

/// A registered task-definition revision: its name, or what it holds.
#[derive(Debug, Clone)]
pub enum FleetTaskDefinition {
    Name(String),
    Full(Box<FleetTaskDefinitionBody>),
}

impl<'de> Deserialize<'de> for FleetTaskDefinition {
    /// A string is a bare revision; anything else must be a whole definition, and its error
    /// names the field that is wrong (an untagged enum would only say that nothing matched).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_norway::Value::deserialize(d)?;
        match v {
            serde_norway::Value::String(s) => Ok(FleetTaskDefinition::Name(s)),
            other => serde_norway::from_value::<FleetTaskDefinitionBody>(other)
                .map(|b| FleetTaskDefinition::Full(Box::new(b)))
                .map_err(|e| serde::de::Error::custom(format!("a task definition: {e}"))),
        }
    }
}

/// A task definition with one container, as a scenario describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetTaskDefinitionBody {
    /// `family:revision` (or its ARN).
    #[serde(alias = "arn_or_name")]
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub environment: BTreeMap<String, serde_norway::Value>,
    /// Names only; a secret's value is never in a scenario.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub cpu: Option<serde_norway::Value>,
    #[serde(default)]
    pub memory: Option<serde_norway::Value>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub entry_point: Vec<String>,
}

impl FleetTaskDefinition {
    pub fn name(&self) -> &str {
        let n = match self {
            FleetTaskDefinition::Name(n) => n,
            FleetTaskDefinition::Full(b) => &b.name,
        };
        n.rsplit('/').next().unwrap_or(n)
    }

    /// What the simulated ECS holds for it; `None` for a bare name.
    pub fn definition(&self) -> Option<crate::ports::TaskDefinition> {
        let FleetTaskDefinition::Full(b) = self else {
            return None;
        };
        let scalar = |v: &serde_norway::Value| match v {
            serde_norway::Value::String(s) => s.clone(),
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::Bool(b) => b.to_string(),
            other => serde_norway::to_string(other)
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        let name = self.name().to_string();
        let container = name.split_once(':').map_or(name.as_str(), |(f, _)| f).to_string();
        Some(crate::ports::TaskDefinition {
            name,
            cpu: b.cpu.as_ref().map(scalar),
            memory: b.memory.as_ref().map(scalar),
            containers: vec![crate::ports::ContainerDefinition {
                name: container,
                image: b.image.clone(),
                environment: b
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), scalar(v)))
                    .collect(),
                secrets: b.secrets.clone(),
                command: b.command.clone(),
                entry_point: b.entry_point.clone(),
                cpu: None,
                memory: None,
            }],
        })
    }
}

/// A service event of the simulated fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetEvent {
    pub at: DateTime<Utc>,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetDeployment {
    pub task_definition: String,
    pub started: DateTime<Utc>,
}

/// Overrides of the defaults for one drill.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    pub remediation_mode: Option<RemediationMode>,
    #[serde(default)]
    pub remediation_rules: Vec<ModeRule>,
    /// Services remediations may touch (`cluster/service`).
    #[serde(default)]
    pub allow: Vec<String>,
    pub reopen_window_s: Option<i64>,
    pub cooldown_s: Option<i64>,
    pub max_actions_per_incident: Option<u32>,
    /// When the incident counts as flapping (`changes`, `window_s`, `stable_s`).
    pub flapping: Option<crate::model::settings::FlappingSettings>,
    /// Simulated seconds each stage takes (the drill's clock advances by these).
    pub latency: Option<Latency>,
    /// Circuit breakers (`per_service`, `service_window_s`, `global`, `global_window_s`).
    pub circuit: Option<crate::model::settings::CircuitSettings>,
    /// The promotion policy of the mode `earned` (`approve_after`, `auto_after`, `window`,
    /// `ceiling`).
    pub earned: Option<crate::model::autonomy::PromotionPolicy>,
    /// PagerDuty Events API v2 for these severities (`{severities: [SEV1, SEV2]}`): `--json`
    /// shows each body under `outbound`.
    pub pagerduty: Option<crate::model::oncall::Target>,
    /// The signed webhook for these severities.
    pub webhook: Option<crate::model::oncall::Target>,
}

/// The keys and URLs drills put in the on-call bodies they show (nothing is sent).
pub fn drill_oncall_keys() -> crate::stages::oncall::OnCallKeys {
    crate::stages::oncall::OnCallKeys {
        pagerduty_url: crate::model::oncall::PAGERDUTY_EVENTS_URL.to_string(),
        routing_key: Some("drill-routing-key".to_string()),
        webhook_url: Some("https://hooks.example.invalid/firebreak".to_string()),
        webhook_secret: Some("whsec_ZHJpbGwtd2ViaG9vay1zZWNyZXQ=".to_string()),
    }
}

/// Simulated stage durations, seconds. The defaults are typical of the functions in AWS: triage
/// answers in about a second, a diagnosis waits on Logs Insights for tens of seconds, an ECS
/// update returns in a few.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    pub triage_s: i64,
    pub diagnose_s: i64,
    pub remediate_s: i64,
    pub resolve_s: i64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            triage_s: 1,
            diagnose_s: 30,
            remediate_s: 5,
            resolve_s: 1,
        }
    }
}

/// One step: an event file delivered at `at`, or a sweeper run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub at: DateTime<Utc>,
    /// An alarm event (any of the three shapes) or a pipeline event envelope, relative to the
    /// scenario directory.
    #[serde(default)]
    pub event: Option<PathBuf>,
    /// Run the sweeper at `at`.
    #[serde(default)]
    pub sweep: bool,
    /// Deliver the event with the same delivery id as its previous delivery (tests idempotency).
    /// Otherwise every step is a new delivery.
    #[serde(default)]
    pub redeliver: bool,
    /// `forged`: the event is not CloudWatch's (see [`Origin`]).
    #[serde(default)]
    pub origin: Origin,
    /// The state-change time the event carries when it is not `at`: a delivery that arrives
    /// late (SNS and EventBridge keep no order). At or before `at`.
    #[serde(default)]
    pub changed_at: Option<DateTime<Utc>>,
    /// A person approves an action awaiting approval, through the authenticated path
    /// `firebreak approve` takes, with `by` as the verified caller identity (an IAM ARN).
    #[serde(default)]
    pub approve: Option<ApproveStep>,
    /// A change people make to an ECS service (UpdateService, as the console or the CLI makes it).
    #[serde(default)]
    pub ecs: Option<PeopleStep>,
    /// A person acknowledges the page (`firebreak ack`, or the chat button): the incident
    /// records who, and the on-call tools are told.
    #[serde(default)]
    pub ack: Option<AckStep>,
}

/// `ack: {by[, incident]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckStep {
    pub by: String,
    /// The incident; default the only incident that is not resolved.
    #[serde(default)]
    pub incident: Option<String>,
}

/// `ecs: {service, desired | task_definition | force_new_deployment}`: what people do to a
/// service, applied by the simulated ECS as UpdateService would (a new deployment entry, the
/// desired count and its service event).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleStep {
    /// `cluster/service`, one of the fleet's.
    pub service: String,
    #[serde(default)]
    pub desired: Option<i32>,
    /// A registered revision (`orders:16`): a new deployment of it.
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub force_new_deployment: bool,
}

/// What a person knew the incident took by hand, set beside the drill's result (`make demo` sets
/// Firebreak's MTTR beside the people's 25 minutes of the seed).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The time to resolve people took, from the alarm to recovery.
    pub time_to_resolve: crate::model::duration::Span,
    /// Where the number comes from.
    pub source: String,
}

/// The deployed sweeper's schedule (`rate(5 minutes)`): a drill runs it on the same grid.
pub const SWEEP_EVERY_S: i64 = 300;
/// After the last step a drill runs the schedule while a deadline is pending, at most this long.
pub const MAX_AFTER_LAST_STEP_S: i64 = 24 * 3600;

/// `approve: {action, by[, incident]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveStep {
    pub action: String,
    /// The caller's verified identity, as STS would give it (an IAM or STS ARN).
    pub by: String,
    /// The incident; default the only incident that is not resolved.
    #[serde(default)]
    pub incident: Option<String>,
}

/// What `--check` compares.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub severity: Option<Severity>,
    pub cause: Option<String>,
    /// An action that was applied or planned (dry-run, awaiting approval), or `none`.
    pub remediation: Option<String>,
    pub status: Option<IncidentStatus>,
    /// How many incidents the drill ends with.
    pub incidents: Option<usize>,
    /// How many times the incident was reopened.
    pub reopened: Option<u32>,
    /// How many `refused` timeline entries the drill ends with, over every incident (forged,
    /// stale or unverifiable events refused at the trust boundary).
    pub refused: Option<usize>,
    /// How many notifications (pages, summaries, approval requests) the drill sent in all.
    pub notifications: Option<usize>,
    /// The first incident's estimated start (RFC 3339), or `none` for no estimate.
    pub estimated_start: Option<String>,
    /// The first incident's first applied action's verification (`verified`, `ineffective`,
    /// `pending`).
    pub verification: Option<String>,
    /// The first incident's first scored proposal's shadow verdict (`matched`, `different`,
    /// `unneeded`, `contradicted`).
    pub verdict: Option<String>,
}

/// The drill's output (`--json`), the contract in DESIGN.md.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub scenario: String,
    pub incidents: Vec<IncidentReport>,
    #[serde(skip)]
    pub notifications: Vec<(String, String)>,
    #[serde(skip)]
    pub metric_lines: Vec<String>,
    #[serde(skip)]
    pub baseline: Option<Baseline>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IncidentReport {
    pub id: String,
    pub service: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub cause: Option<String>,
    pub remediations: Vec<RemediationReport>,
    pub timeline: Vec<TimelineReport>,
    pub metrics: MetricsReport,
    pub postmortem_markdown: Option<String>,
    /// The latest diagnosis's estimated start (`null` when there is no baseline to see a rise).
    pub estimated_start: Option<DateTime<Utc>>,
    /// The latest diagnosis's hypotheses, best first.
    pub hypotheses: Vec<HypothesisReport>,
    /// Every page sent about the incident, in each protocol's form, in order.
    pub pages: Vec<PageReport>,
    /// What the on-call integrations the drill's settings configure would have been sent.
    pub outbound: Vec<OutboundReport>,
    #[serde(skip)]
    pub reopened: u32,
    #[serde(skip)]
    pub runbook: Option<String>,
}

/// The region drills render console links for.
pub const DRILL_REGION: &str = "us-east-1";

/// One page in `--json`: what each protocol would have received.
#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    pub at: DateTime<Utc>,
    /// The topic's severity it went to.
    pub severity: Severity,
    pub subject: String,
    pub email: String,
    pub sms: String,
    /// The Amazon Q Developer custom-notification object (`default`, `https`, `lambda`).
    pub chat: serde_json::Value,
}

/// One call to an on-call tool in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct OutboundReport {
    pub at: DateTime<Utc>,
    /// `pagerduty` or `webhook`.
    pub kind: String,
    /// The JSON body that would be sent.
    pub body: serde_json::Value,
}

fn page_report(at: DateTime<Utc>, route: crate::ports::Route, n: &crate::ports::Notification) -> PageReport {
    let crate::ports::Route::Severity(severity) = route;
    let p = crate::report::page::render(n, DRILL_REGION);
    PageReport {
        at,
        severity,
        subject: n.subject.clone(),
        email: p.email,
        sms: p.sms,
        chat: p.chat,
    }
}

/// One hypothesis in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct HypothesisReport {
    pub cause: String,
    pub score: f64,
    pub evidence: Vec<String>,
    pub missing: Vec<String>,
    /// What the data contradicts.
    pub against: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemediationReport {
    pub action: String,
    pub mode: String,
    pub outcome: String,
    pub detail: String,
    /// An applied action's verification (`verified`, `ineffective`, `pending`); `null` for the
    /// others.
    pub verification: Option<String>,
    /// A proposal's shadow verdict (dry-run, awaiting approval, applied); `null` for refusals and
    /// failures.
    pub shadow: Option<ShadowReport>,
}

/// `shadow` in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// `null` while unresolved, and for an applied action people did not undo.
    pub verdict: Option<String>,
    pub people_action: Option<String>,
    pub lead_s: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineReport {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    pub time_to_detect_s: Option<i64>,
    pub time_to_diagnose_s: Option<i64>,
    pub time_to_mitigate_s: Option<i64>,
    pub time_to_resolve_s: Option<i64>,
}

/// A loaded scenario: the parsed file plus the directory its paths are relative to.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub dir: PathBuf,
    pub scenario: Scenario,
}

impl LoadedScenario {
    /// Reads `DIR/scenario.yaml`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the file and the field.
    pub fn load(dir: &Path) -> Result<LoadedScenario, Error> {
        let path = dir.join("scenario.yaml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::invalid(path.display().to_string(), format!("cannot read: {e}")))?;
        let scenario: Scenario = serde_norway::from_str(&text)
            .map_err(|e| Error::invalid(path.display().to_string(), e.to_string()))?;
        if scenario.steps.is_empty() {
            return Err(Error::invalid(
                format!("{}: steps", path.display()),
                "a drill needs at least one step",
            ));
        }
        for (i, s) in scenario.steps.iter().enumerate() {
            let kinds = usize::from(s.event.is_some())
                + usize::from(s.sweep)
                + usize::from(s.approve.is_some())
                + usize::from(s.ecs.is_some())
                + usize::from(s.ack.is_some());
            if kinds != 1 {
                return Err(Error::invalid(
                    format!("{}: steps[{i}]", path.display()),
                    "needs exactly one of `event`, `sweep: true`, `approve`, `ecs` or `ack`",
                ));
            }
            if let Some(p) = &s.ecs {
                let what = format!("{}: steps[{i}].ecs", path.display());
                let svc = EcsService::parse(&p.service)
                    .map_err(|e| Error::invalid(format!("{what}.service"), e.to_string()))?;
                if !scenario
                    .ecs
                    .iter()
                    .any(|f| EcsService::new(&f.cluster, &f.service) == svc)
                {
                    return Err(Error::invalid(
                        format!("{what}.service"),
                        format!("{svc} is not a service of the scenario's `ecs` fleet"),
                    ));
                }
                if p.desired.is_none() && p.task_definition.is_none() && !p.force_new_deployment {
                    return Err(Error::invalid(
                        what,
                        "needs `desired`, `task_definition` or `force_new_deployment: true`",
                    ));
                }
                if p.desired.is_some_and(|d| d < 0) {
                    return Err(Error::invalid(format!("{what}.desired"), "cannot be negative"));
                }
            }
            if s.changed_at.is_some_and(|c| c > s.at) {
                return Err(Error::invalid(
                    format!("{}: steps[{i}].changed_at", path.display()),
                    "a state change cannot arrive before it happened: changed_at must be at or before at",
                ));
            }
            if s.changed_at.is_some() && (s.event.is_none() || s.redeliver) {
                return Err(Error::invalid(
                    format!("{}: steps[{i}].changed_at", path.display()),
                    "changed_at belongs to an event step that is not a redelivery",
                ));
            }
            if i > 0 && s.at < scenario.steps[i - 1].at {
                return Err(Error::invalid(
                    format!("{}: steps[{i}].at", path.display()),
                    "steps must be in time order",
                ));
            }
        }
        for (i, a) in scenario.settings.allow.iter().enumerate() {
            EcsService::parse(a).map_err(|e| {
                Error::invalid(format!("{}: settings.allow[{i}]", path.display()), e.to_string())
            })?;
        }
        Ok(LoadedScenario {
            dir: dir.to_path_buf(),
            scenario,
        })
    }
}

/// What the drill runs with besides the scenario.
pub struct DrillEnv<'a> {
    pub policy: &'a SeverityPolicy,
    pub runbooks: &'a RunbookSet,
}

/// Reads a drill's JSON-lines (or plain text) log file. Errors name the file and the line.
fn read_logs(path: &Path) -> Result<Vec<firebreak_insights::LogEvent>, Error> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::invalid(&what, format!("cannot read: {e}")))?;
    firebreak_insights::read_events(std::io::BufReader::new(file), &what)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("drill logs", e.to_string()))
}

/// The behaviour settings a scenario's `settings:` give (defaults for the rest), as
/// [`run`] uses them.
///
/// # Errors
/// [`Error::Invalid`] for an `allow` entry that is not `cluster/service`.
pub fn drill_settings(s: &DrillSettings) -> Result<Settings, Error> {
    let mut out = Settings::default();
    if let Some(m) = s.remediation_mode {
        out.remediation.mode = m;
    }
    out.remediation.rules = s.remediation_rules.clone();
    out.remediation.allow = s
        .allow
        .iter()
        .map(|a| EcsService::parse(a))
        .collect::<Result<_, _>>()?;
    if let Some(v) = s.reopen_window_s {
        out.reopen_window_s = v;
    }
    if let Some(v) = s.cooldown_s {
        out.remediation.cooldown_s = v;
    }
    if let Some(v) = s.max_actions_per_incident {
        out.remediation.max_actions_per_incident = v;
    }
    if let Some(f) = s.flapping {
        out.flapping = f;
    }
    if let Some(c) = s.circuit {
        c.validate()?;
        out.remediation.circuit = c;
    }
    if let Some(e) = s.earned {
        e.validate()?;
        out.remediation.earned = e;
    }
    Ok(out)
}

/// The ECS state a scenario's fleet entry describes, as [`run`] seeds the simulated ECS with.
pub fn fleet_state(f: &FleetService) -> ServiceState {
    let mut deployments: Vec<Deployment> = f
        .deployments
        .iter()
        .enumerate()
        .map(|(i, d)| Deployment {
            id: format!("ecs-svc/{}", i + 1),
            status: "INACTIVE".into(),
            task_definition: d.task_definition.clone(),
            desired: 0,
            running: 0,
            rollout_state: Some("COMPLETED".into()),
            created_at: Some(d.started),
            updated_at: Some(d.started),
        })
        .collect();
    deployments.reverse();
    if let Some(primary) = deployments.first_mut() {
        primary.status = "PRIMARY".into();
        primary.desired = f.desired;
        primary.running = f.running;
    }
    ServiceState {
        service: EcsService::new(&f.cluster, &f.service),
        status: "ACTIVE".into(),
        task_definition: f.task_definition.clone(),
        desired: f.desired,
        running: f.running,
        pending: 0,
        deployments,
        events: {
            let mut events: Vec<crate::ports::ServiceEvent> = f
                .events
                .iter()
                .map(|e| crate::ports::ServiceEvent {
                    at: e.at,
                    message: e.message.clone(),
                })
                .collect();
            events.sort_by_key(|e| std::cmp::Reverse(e.at));
            events
        },
        tags: f.tags.clone(),
    }
}

/// Carries out an `approve:` step: what `firebreak approve` does, with `by` as the verified
/// caller. Nothing to approve is not an error (the step shows the refusal path); a bad action,
/// an unknown incident or a `by` that is not an ARN is.
async fn approve_step(
    store: &InMemoryIncidentStore,
    bus: &InMemoryEventBus,
    a: &ApproveStep,
    n: usize,
) -> Result<(), Error> {
    let what = format!("steps[{n}].approve");
    let id = approval_target(store, a.incident.as_deref(), &what).await?;
    let identity = InMemoryCallerIdentity::new(a.by.clone());
    request_approval(store, bus, &identity, &id, &a.action)
        .await
        .map_err(|e| Error::invalid(&what, e.to_string()))?;
    Ok(())
}

/// Carries out an `ack:` step as `firebreak ack` does: the acknowledgement, then "Incident
/// Acknowledged" for the on-call tools.
async fn ack_step(
    store: &InMemoryIncidentStore,
    bus: &InMemoryEventBus,
    clock: &SimClock,
    a: &AckStep,
    n: usize,
) -> Result<(), Error> {
    let what = format!("steps[{n}].ack");
    let id = approval_target(store, a.incident.as_deref(), &what).await?;
    let (_, told) =
        crate::stages::manage::acknowledge_and_tell(store, bus, &id, &a.by, crate::ports::Clock::now(clock))
            .await
            .map_err(|e| Error::invalid(&what, e.to_string()))?;
    told?;
    Ok(())
}

/// Carries out an `ecs:` step: the UpdateService people make, on the simulated ECS.
fn people_step(ecs: &InMemoryServiceControl, p: &PeopleStep, n: usize) -> Result<(), Error> {
    let what = format!("steps[{n}].ecs");
    let svc = EcsService::parse(&p.service)
        .map_err(|e| Error::invalid(format!("{what}.service"), e.to_string()))?;
    let change = crate::model::remedy::ServiceUpdate {
        task_definition: p.task_definition.clone(),
        desired: p.desired,
        force_new_deployment: p.force_new_deployment,
    };
    ecs.update_by_people(&svc, &change)
        .map_err(|e| Error::invalid(what, e.to_string()))?;
    Ok(())
}

/// Whether any incident still has a deadline the schedule must act on.
async fn pending_deadline<P: crate::ports::bundle::SweeperPorts>(
    sweeper: &Sweeper<'_, P>,
    store: &InMemoryIncidentStore,
) -> Result<bool, Error> {
    for inc in store.list(&ListQuery::default()).await? {
        if sweeper.next_deadline(&inc).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The incident an `approve:` step names (`incident`), else the only one not resolved.
///
/// # Errors
/// [`Error::Invalid`] (named `what`) for a malformed id, or no or several open incidents.
pub async fn approval_target<S: IncidentStore>(
    store: &S,
    incident: Option<&str>,
    what: &str,
) -> Result<IncidentId, Error> {
    if let Some(s) = incident {
        return IncidentId::parse(s).map_err(|e| Error::invalid(format!("{what}.incident"), e.to_string()));
    }
    let open: Vec<_> = store
        .list(&ListQuery::default())
        .await?
        .into_iter()
        .filter(|i| i.status != IncidentStatus::Resolved)
        .collect();
    match open.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Error::invalid(what, "no open incident to approve on")),
        many => Err(Error::invalid(
            what,
            format!("{} open incidents: say which with `incident:`", many.len()),
        )),
    }
}

/// A pipeline event envelope (any `detail-type` but CloudWatch's own alarm state change), as
/// opposed to one of the three alarm shapes.
fn is_pipeline_envelope(v: &serde_json::Value) -> bool {
    match v.get("detail-type").and_then(|d| d.as_str()) {
        Some(dt) => dt != intake::ALARM_STATE_CHANGE,
        None => false,
    }
}

/// Runs a scenario end to end.
///
/// # Errors
/// [`Error::Invalid`] for a bad scenario, event or log file (naming it); use-case errors as they
/// come (the in-memory ports do not fail on their own).
pub async fn run(loaded: &LoadedScenario, env: &DrillEnv<'_>) -> Result<DrillReport, Error> {
    run_with_store(loaded, env, &InMemoryIncidentStore::new()).await
}

/// Runs the drills in order, each on its own store that starts with the autonomy records the
/// drills before it left (a team's history, one incident after another), and returns the
/// records at the end: what `firebreak autonomy report --drills` reports.
///
/// # Errors
/// As [`run`], naming the drill.
pub async fn autonomy_from_drills(
    dirs: &[PathBuf],
    env: &DrillEnv<'_>,
) -> Result<Vec<crate::model::autonomy::AutonomyRecord>, Error> {
    let mut records = Vec::new();
    for dir in dirs {
        let loaded = LoadedScenario::load(dir)?;
        let store = InMemoryIncidentStore::new();
        store.load_autonomy(records);
        run_with_store(&loaded, env, &store)
            .await
            .map_err(|e| Error::invalid(dir.display().to_string(), e.to_string()))?;
        records = store.autonomy_records().await?;
        // Each drill is a finished history: the outcome ids guard against redelivery within a
        // run, and drills that replay the same events have the same incident ids.
        for r in &mut records {
            r.seen.clear();
        }
    }
    Ok(records)
}

/// [`run`] over a given (empty) store, so a test can look at what was written.
///
/// # Errors
/// As [`run`].
pub async fn run_with_store(
    loaded: &LoadedScenario,
    env: &DrillEnv<'_>,
    store: &InMemoryIncidentStore,
) -> Result<DrillReport, Error> {
    let sc = &loaded.scenario;
    let settings = drill_settings(&sc.settings)?;
    let latency = sc.settings.latency.unwrap_or_default();
    let start = sc.steps.first().map(|s| s.at).unwrap_or_else(Utc::now);
    let clock = SimClock::new(start);
    let notifier = InMemoryNotifier::stamped(clock.clone());
    let bus = InMemoryEventBus::new();
    let alarms = InMemoryAlarmStatus::new();
    for a in &sc.alarms {
        alarms.set(&a.name, a.state);
    }
    let ecs = InMemoryServiceControl::with_clock(&clock);
    for f in &sc.ecs {
        ecs.add_service(fleet_state(f), &f.revisions());
        for td in f
            .task_definitions
            .iter()
            .filter_map(FleetTaskDefinition::definition)
        {
            ecs.add_task_definition(td);
        }
    }
    let logs = match &sc.logs {
        Some(p) => {
            let path = loaded.dir.join(p);
            LocalLogQueries::new(read_logs(&path)?)
        }
        None => LocalLogQueries::new(Vec::new()),
    };
    let metrics = match &sc.metrics {
        Some(p) => {
            let path = loaded.dir.join(p);
            let what = path.display().to_string();
            let file =
                std::fs::File::open(&path).map_err(|e| Error::invalid(&what, format!("cannot read: {e}")))?;
            RecordedMetrics::new(read_points(std::io::BufReader::new(file), &what)?)
        }
        None => RecordedMetrics::default(),
    };
    let runbooks = env.runbooks.runbooks();
    let mut policy = env.policy.clone();
    policy.services.splice(0..0, sc.services.iter().cloned());
    // every port this composition root has, in one bundle each stage takes what it needs from
    let ports = Wired::new()
        .store(store)
        .notifier(&notifier)
        .bus(&bus)
        .clock(&clock)
        .ecs(&ecs)
        .alarms(&alarms)
        .logs(&logs)
        .metrics(&metrics);
    let triage = Triage {
        ports,
        policy: &policy,
        settings: &settings,
    };
    let diagnose = Diagnose {
        ports,
        runbooks: env.runbooks,
        settings: &settings,
    };
    let remediate = Remediate {
        ports,
        runbooks,
        settings: &settings,
    };
    let resolve = Resolve {
        ports,
        runbooks,
        settings: &settings,
        metrics_namespace: "Firebreak",
        emf_to_stdout: false,
    };
    let oncall_settings = crate::model::oncall::OnCallSettings {
        pagerduty: sc.settings.pagerduty.clone(),
        webhook: sc.settings.webhook.clone(),
    };
    let oncall_keys = drill_oncall_keys();
    let oncall_http = crate::adapters::memory::InMemoryHttp::new();
    let oncall = crate::stages::oncall::OnCall {
        store,
        clock: &clock,
        http: &oncall_http,
        settings: &oncall_settings,
        keys: &oncall_keys,
        region: DRILL_REGION,
    };
    let mut outbound: Vec<(String, crate::stages::oncall::Sent)> = Vec::new();
    let sweeper = Sweeper {
        ports,
        runbooks,
        settings: &settings,
    };

    let mut metric_lines = Vec::new();
    // each event file's latest delivery: its step and the state-change time it carried
    let mut last_delivery: BTreeMap<PathBuf, (usize, DateTime<Utc>)> = BTreeMap::new();
    // The deployed sweeper runs every five minutes: so does the drill's, on the same grid,
    // between the steps, and after the last one while a deadline (a verification window, the
    // end of a flapping hold) is pending, for at most a day.
    let grid = |t: DateTime<Utc>| {
        let s = t.timestamp();
        DateTime::<Utc>::from_timestamp(s - s.rem_euclid(SWEEP_EVERY_S) + SWEEP_EVERY_S, 0).unwrap_or(t)
    };
    let mut next_tick = grid(start);
    let last_at = sc.steps.last().map_or(start, |s| s.at);
    let horizon = last_at + chrono::Duration::seconds(MAX_AFTER_LAST_STEP_S);
    let mut n = 0;
    loop {
        let tick = match sc.steps.get(n) {
            Some(step) => next_tick <= step.at,
            None => next_tick <= horizon && pending_deadline(&sweeper, store).await?,
        };
        if tick {
            if next_tick > clock.now() {
                clock.set(next_tick);
            }
            sweeper.sweep().await?;
            next_tick += chrono::Duration::seconds(SWEEP_EVERY_S);
        } else {
            let Some(step) = sc.steps.get(n) else {
                break;
            };
            // Stages take simulated time; a step never moves the clock backwards.
            if step.at > clock.now() {
                clock.set(step.at);
            }
            if let Some(rel) = &step.event {
                let path = loaded.dir.join(rel);
                let what = path.display().to_string();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Error::invalid(&what, format!("cannot read: {e}")))?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::invalid(&what, format!("not JSON: {e}")))?;
                // a redelivery is the same event again: its delivery id and its state-change time
                let (delivery_step, changed_at) = match last_delivery.get(rel) {
                    Some(&(k, at)) if step.redeliver => (k, at),
                    _ => (n, step.changed_at.unwrap_or(step.at)),
                };
                last_delivery.insert(rel.clone(), (delivery_step, changed_at));
                if is_pipeline_envelope(&value) {
                    // From outside the pipeline, whatever it claims: checked like any envelope a
                    // function receives; a refusal is on the timeline, and nothing acts on it.
                    if let Admission::Admitted(event) = admit(store, &clock, &value).await? {
                        crate::ports::EventBus::put(&bus, &event.to_pipeline()).await?;
                    }
                } else {
                    let signals =
                        intake::parse_event(&value).map_err(|e| Error::invalid(&what, e.to_string()))?;
                    for mut signal in signals {
                        // The scenario's clock is authoritative: the event file is a template whose
                        // state-change time becomes the step's, and each step is its own delivery.
                        signal.changed_at = changed_at;
                        signal.delivery_id = format!("{}#step{delivery_step}", signal.delivery_id);
                        if step.origin == Origin::Cloudwatch {
                            alarms.set(&signal.alarm_name, signal.state);
                        }
                        triage.handle(&signal).await?;
                        clock.advance(chrono::Duration::seconds(latency.triage_s));
                    }
                }
            }
            if step.sweep {
                sweeper.sweep().await?;
            }
            if let Some(a) = &step.approve {
                approve_step(store, &bus, a, n).await?;
            }
            if let Some(p) = &step.ecs {
                people_step(&ecs, p, n)?;
            }
            if let Some(a) = &step.ack {
                ack_step(store, &bus, &clock, a, n).await?;
            }
            n += 1;
        }
        // Carry every event the step caused through the stages it triggers.
        let mut rounds = 0;
        loop {
            let pending = bus.drain();
            if pending.is_empty() {
                break;
            }
            rounds += 1;
            if rounds > 100 {
                return Err(Error::invalid(
                    "drill",
                    "the pipeline did not settle after 100 rounds of events",
                ));
            }
            for pe in pending {
                let event = Event::from_pipeline(&pe)?;
                // the oncall function hears every event beside the stage it triggers
                if oncall_settings.any() {
                    let r = oncall.handle(&event).await?;
                    let id = event.incident_id().to_string();
                    outbound.extend(r.sent.into_iter().map(|s| (id.clone(), s)));
                }
                match event {
                    Event::Opened(r) | Event::Escalated(r) => {
                        clock.advance(chrono::Duration::seconds(latency.diagnose_s));
                        diagnose.handle(&r).await?;
                    }
                    Event::Diagnosed(d) => {
                        clock.advance(chrono::Duration::seconds(latency.remediate_s));
                        remediate.on_diagnosis(&d).await?;
                    }
                    Event::Approved(a) => {
                        clock.advance(chrono::Duration::seconds(latency.remediate_s));
                        remediate
                            .on_approval(&a, &crate::stages::remediate::Approvers::any())
                            .await?;
                    }
                    Event::Recovered(r) => {
                        clock.advance(chrono::Duration::seconds(latency.resolve_s));
                        if let ResolveOutcome::Resolved(done) = resolve.on_recovered(&r).await? {
                            metric_lines.extend(done.emf.iter().cloned());
                        }
                    }
                    Event::Applied(_) | Event::Resolved(_) | Event::Acknowledged(_) => {}
                }
            }
        }
    }

    let sent = notifier.sent_at();
    let mut incidents = Vec::new();
    for inc in store.list(&ListQuery::default()).await? {
        let timeline = store.timeline(&inc.id).await?;
        let postmortem = crate::ports::postmortem_of(store, &inc).await?;
        let mut report = report_of(&inc, &timeline, postmortem);
        report.pages = sent
            .iter()
            .filter(|(_, _, n)| n.facts.incident.as_deref() == Some(inc.id.as_str()))
            .map(|(at, route, n)| page_report(*at, *route, n))
            .collect();
        report.outbound = outbound
            .iter()
            .filter(|(id, _)| id == inc.id.as_str())
            .map(|(_, s)| OutboundReport {
                at: s.at,
                kind: s.kind.to_string(),
                body: s.body.clone(),
            })
            .collect();
        incidents.push(report);
    }
    let notifications = notifier
        .sent()
        .into_iter()
        .map(|(_, n)| (n.subject, n.body))
        .collect();
    Ok(DrillReport {
        scenario: sc.description.clone(),
        incidents,
        notifications,
        metric_lines,
        baseline: sc.baseline.clone(),
    })
}

fn report_of(
    inc: &Incident,
    timeline: &[crate::model::timeline::TimelineEntry],
    postmortem: Option<String>,
) -> IncidentReport {
    let t = StageTimes::of(inc);
    let diagnosis = timeline.iter().rev().find_map(|e| match e.detail() {
        crate::model::timeline::Detail::DiagnosisCompleted(r) => Some(r),
        _ => None,
    });
    IncidentReport {
        id: inc.id.to_string(),
        service: inc.service.clone(),
        severity: inc.severity,
        status: inc.status,
        cause: inc.cause.clone(),
        remediations: inc
            .remediations
            .iter()
            .map(|r| RemediationReport {
                action: r.action.to_string(),
                mode: r.mode.to_string(),
                outcome: r.outcome.to_string(),
                detail: r.detail.clone(),
                verification: verification_of(r, timeline),
                shadow: shadow_of(r, timeline),
            })
            .collect(),
        timeline: timeline
            .iter()
            .map(|e| TimelineReport {
                at: e.at,
                kind: e.kind().to_string(),
                summary: e.summary.clone(),
            })
            .collect(),
        metrics: MetricsReport {
            time_to_detect_s: t.time_to_detect_s,
            time_to_diagnose_s: t.time_to_diagnose_s,
            time_to_mitigate_s: t.time_to_mitigate_s,
            time_to_resolve_s: t.time_to_resolve_s,
        },
        postmortem_markdown: postmortem,
        estimated_start: inc.estimated_start,
        hypotheses: diagnosis
            .map(|r| {
                r.hypotheses
                    .iter()
                    .map(|h| HypothesisReport {
                        cause: h.cause.clone(),
                        score: h.score,
                        evidence: h.evidence.clone(),
                        missing: h.missing.clone(),
                        against: h.against.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        pages: Vec::new(),
        outbound: Vec::new(),
        reopened: inc.reopened,
        runbook: inc.runbook.clone(),
    }
}

/// An applied action's verification as the timeline has it (`pending` until it is judged).
fn verification_of(
    r: &crate::model::incident::RemediationRecord,
    timeline: &[crate::model::timeline::TimelineEntry],
) -> Option<String> {
    use crate::model::incident::Outcome;
    if r.outcome != Outcome::Applied {
        return None;
    }
    let judged = timeline.iter().find_map(|e| match e.detail() {
        crate::model::timeline::Detail::Verification(v) if v.applied == *r => Some(v.result.as_str()),
        _ => None,
    });
    Some(judged.unwrap_or("pending").to_string())
}

/// A proposal's shadow verdict as the timeline has it (all `null` while unresolved).
fn shadow_of(
    r: &crate::model::incident::RemediationRecord,
    timeline: &[crate::model::timeline::TimelineEntry],
) -> Option<ShadowReport> {
    use crate::model::incident::Outcome;
    if !matches!(
        r.outcome,
        Outcome::Applied | Outcome::DryRun | Outcome::AwaitingApproval
    ) {
        return None;
    }
    let scored = timeline.iter().find_map(|e| match e.detail() {
        crate::model::timeline::Detail::ShadowScored(d) if d.proposal == *r => Some(d),
        _ => None,
    });
    Some(match scored {
        Some(d) => ShadowReport {
            verdict: d.verdict.map(|v| v.as_str().to_string()),
            people_action: d.people_action.clone(),
            lead_s: d.lead_s,
        },
        None => ShadowReport {
            verdict: None,
            people_action: None,
            lead_s: None,
        },
    })
}

/// Compares a report with the scenario's `expect`; returns one line per difference.
pub fn check(report: &DrillReport, expect: &Expect) -> Vec<String> {
    let mut diffs = Vec::new();
    if let Some(n) = expect.incidents {
        if report.incidents.len() != n {
            diffs.push(format!("incidents: expected {n}, got {}", report.incidents.len()));
        }
    }
    if let Some(n) = expect.refused {
        let got = report
            .incidents
            .iter()
            .flat_map(|i| &i.timeline)
            .filter(|e| e.kind == "refused")
            .count();
        if got != n {
            diffs.push(format!("refused: expected {n} refused entries, got {got}"));
        }
    }
    if let Some(n) = expect.notifications {
        if report.notifications.len() != n {
            let subjects: Vec<&str> = report.notifications.iter().map(|(s, _)| s.as_str()).collect();
            diffs.push(format!(
                "notifications: expected {n}, got {} ({})",
                report.notifications.len(),
                subjects.join("; ")
            ));
        }
    }
    let Some(inc) = report.incidents.first() else {
        if expect.severity.is_some() || expect.cause.is_some() || expect.status.is_some() {
            diffs.push("expected an incident, but none was opened".to_string());
        }
        return diffs;
    };
    if let Some(s) = expect.severity {
        if inc.severity != s {
            diffs.push(format!("severity: expected {s}, got {}", inc.severity));
        }
    }
    if let Some(c) = &expect.cause {
        let got = inc.cause.as_deref().unwrap_or("none");
        if got != c {
            diffs.push(format!("cause: expected {c}, got {got}"));
        }
    }
    if let Some(want) = &expect.estimated_start {
        let want_t = (want != "none").then(|| crate::runbook::findings::parse_time(want));
        match (want_t, inc.estimated_start) {
            (None, None) => {}
            (Some(Some(w)), Some(g)) if w == g => {}
            (Some(None), _) => diffs.push(format!("estimated_start: {want:?} is neither a time nor none")),
            (_, got) => diffs.push(format!(
                "estimated_start: expected {want}, got {}",
                got.map_or_else(|| "none".to_string(), |g| g.to_rfc3339())
            )),
        }
    }
    if let Some(r) = &expect.remediation {
        let acted: Vec<&RemediationReport> = inc
            .remediations
            .iter()
            .filter(|x| matches!(x.outcome.as_str(), "applied" | "dry-run" | "awaiting-approval"))
            .collect();
        if r == "none" {
            if let Some(x) = acted.first() {
                diffs.push(format!(
                    "remediation: expected none, got {} ({})",
                    x.action, x.outcome
                ));
            }
        } else if !acted.iter().any(|x| &x.action == r) {
            let got: Vec<String> = inc
                .remediations
                .iter()
                .map(|x| format!("{} ({})", x.action, x.outcome))
                .collect();
            diffs.push(format!(
                "remediation: expected {r}, got {}",
                if got.is_empty() {
                    "none".into()
                } else {
                    got.join(", ")
                }
            ));
        }
    }
    if let Some(want) = &expect.verification {
        let got = inc.remediations.iter().find_map(|r| r.verification.clone());
        if got.as_deref() != Some(want.as_str()) {
            diffs.push(format!(
                "verification: expected {want}, got {}",
                got.as_deref().unwrap_or("none")
            ));
        }
    }
    if let Some(want) = &expect.verdict {
        let got = inc
            .remediations
            .iter()
            .find_map(|r| r.shadow.as_ref().and_then(|s| s.verdict.clone()));
        if got.as_deref() != Some(want.as_str()) {
            diffs.push(format!(
                "verdict: expected {want}, got {}",
                got.as_deref().unwrap_or("none")
            ));
        }
    }
    if let Some(s) = expect.status {
        if inc.status != s {
            diffs.push(format!("status: expected {s}, got {}", inc.status));
        }
    }
    if let Some(n) = expect.reopened {
        if inc.reopened != n {
            diffs.push(format!("reopened: expected {n}, got {}", inc.reopened));
        }
    }
    diffs
}

fn fmt_secs(s: Option<i64>) -> String {
    s.map_or_else(|| "—".to_string(), crate::model::duration::human)
}

/// The account a person reads: severity, findings, remediation, timeline, MTTR, postmortem.
pub fn render_text(report: &DrillReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "Drill: {}", report.scenario);
    if report.incidents.is_empty() {
        let _ = writeln!(o, "\nNo incident was opened.");
    }
    for inc in &report.incidents {
        let _ = writeln!(
            o,
            "\n== {} · {} · {} · {}",
            inc.id, inc.service, inc.severity, inc.status
        );
        if inc.reopened > 0 {
            let _ = writeln!(o, "Reopened {} time(s) (flapping alarm).", inc.reopened);
        }
        let _ = writeln!(o, "Runbook: {}", inc.runbook.as_deref().unwrap_or("none matched"));
        let _ = writeln!(o, "Cause:   {}", inc.cause.as_deref().unwrap_or("not identified"));
        if !inc.hypotheses.is_empty() {
            let ranked: Vec<String> = inc
                .hypotheses
                .iter()
                .map(|h| format!("{} ({:.2})", h.cause, h.score))
                .collect();
            let _ = writeln!(o, "Hypotheses: {}", ranked.join(", "));
        }
        if inc.remediations.is_empty() {
            let _ = writeln!(o, "Remediation: none");
        }
        for r in &inc.remediations {
            let _ = writeln!(
                o,
                "Remediation: {} [{}] {} — {}",
                r.action, r.mode, r.outcome, r.detail
            );
            if let Some(v) = &r.verification {
                let _ = writeln!(o, "  verification: {v}");
            }
            if let Some(sh) = r
                .shadow
                .as_ref()
                .filter(|s| s.verdict.is_some() || s.people_action.is_some())
            {
                let _ = writeln!(
                    o,
                    "  shadow: {}{}{}",
                    sh.verdict.as_deref().unwrap_or("none (applied, not undone)"),
                    sh.people_action
                        .as_deref()
                        .map_or_else(String::new, |p| format!(" — people: {p}")),
                    sh.lead_s.map_or_else(String::new, |l| format!(
                        " — lead {}",
                        crate::model::duration::human(l)
                    ))
                );
            }
        }
        let m = &inc.metrics;
        let _ = writeln!(
            o,
            "Times:   detect {} · diagnose {} · mitigate {} · resolve (MTTR) {}",
            fmt_secs(m.time_to_detect_s),
            fmt_secs(m.time_to_diagnose_s),
            fmt_secs(m.time_to_mitigate_s),
            fmt_secs(m.time_to_resolve_s)
        );
        if let (Some(b), Some(mttr)) = (&report.baseline, m.time_to_resolve_s) {
            let people = b.time_to_resolve.as_secs();
            let _ = writeln!(
                o,
                "MTTR:    Firebreak {} beside people's {} ({}){}",
                fmt_secs(Some(mttr)),
                fmt_secs(Some(people)),
                b.source,
                if mttr > 0 {
                    format!(", {:.1}x faster", people as f64 / mttr as f64)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(o, "\nTimeline:");
        for e in &inc.timeline {
            let _ = writeln!(o, "  {}  {:<22} {}", e.at.format("%H:%M:%S"), e.kind, e.summary);
        }
        if let Some(pm) = &inc.postmortem_markdown {
            let _ = writeln!(o, "\nPostmortem draft:\n\n{pm}");
        }
    }
    if !report.notifications.is_empty() {
        let _ = writeln!(
            o,
            "\nPages and notifications sent: {}",
            report.notifications.len()
        );
        for (subject, _) in &report.notifications {
            let _ = writeln!(o, "  - {subject}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str = "description: x\nsteps: []\necs:\n  - { cluster: prod, service: api, desired: 1, running: 1, task_definition: api:2, task_definitions: [";

    fn fleet(defs: &str) -> Result<Scenario, String> {
        serde_norway::from_str::<Scenario>(&format!("{FLEET}{defs}] }}\n")).map_err(|e| e.to_string())
    }

    #[test]
    fn task_definitions_are_names_or_whole_definitions_and_a_bad_one_says_what_is_wrong() {
        let sc = fleet(r#"api:1, { arn_or_name: "arn:aws:ecs:us-east-1:1:task-definition/api:2", image: "repo/api:2", environment: { POOL: 10 }, cpu: 256 }"#)
            .unwrap();
        let defs = &sc.ecs[0].task_definitions;
        assert_eq!(sc.ecs[0].revisions(), vec!["api:1", "api:2"]);
        assert!(defs[0].definition().is_none());
        let td = defs[1].definition().unwrap();
        assert_eq!(td.name, "api:2");
        assert_eq!(td.cpu.as_deref(), Some("256"));
        assert_eq!(td.containers[0].environment["POOL"], "10");
        let e = fleet("{ name: api:2, imag: x }").unwrap_err();
        assert!(e.contains("a task definition") && e.contains("imag"), "{e}");
    }
}
