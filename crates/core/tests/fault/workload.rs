//! Workloads (the shipped drills and a generated storm) and the delivery schedule a seed makes
//! of them: late, reordered and repeated alarm deliveries, as SNS and EventBridge deliver.

use super::driver::Payload;
use chrono::{DateTime, Duration, Utc};
use firebreak_core::adapters::fault::splitmix64;
use firebreak_core::drill::{self, LoadedScenario, Origin};
use firebreak_core::intake;
use firebreak_core::model::incident::EcsService;
use firebreak_core::model::settings::Settings;
use firebreak_core::model::signal::{AlarmSignal, AlarmState, Channel};
use firebreak_core::policy::{ServiceMapping, SeverityPolicy};
use firebreak_core::ports::ServiceState;
use firebreak_core::runbook::RunbookSet;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one step of a workload is.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// An alarm transition; `forged` when CloudWatch did not make it.
    Alarm {
        signal: Box<AlarmSignal>,
        forged: bool,
    },
    /// A pipeline envelope from outside the pipeline.
    Envelope(serde_json::Value),
    Sweep,
    Approve {
        action: String,
        by: String,
        incident: Option<String>,
    },
    /// A change people make to an ECS service (UpdateService).
    People(drill::PeopleStep),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub kind: StepKind,
    /// A drill's `redeliver: true`: not a new transition.
    pub redelivery: bool,
}

/// Everything a run needs besides the faults.
pub struct Workload {
    pub name: String,
    pub settings: Settings,
    pub policy: SeverityPolicy,
    pub runbooks: RunbookSet,
    pub fleet: Vec<(ServiceState, Vec<String>)>,
    pub seed_alarms: Vec<(String, AlarmState)>,
    pub logs: Vec<firebreak_insights::LogEvent>,
    /// The metric datapoints the drill's simulated CloudWatch answers from.
    pub metrics: Vec<firebreak_core::adapters::local_metrics::MetricPoint>,
    pub steps: Vec<Step>,
    pub latency: drill::Latency,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn drill_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("events/scenarios"))
        .expect("events/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("scenario.yaml").exists())
        .collect();
    v.sort();
    v
}

/// A shipped drill, its steps as `drill::run` would deliver them.
pub fn from_drill(dir: &Path) -> Workload {
    let loaded = LoadedScenario::load(dir).unwrap();
    let sc = &loaded.scenario;
    let mut policy = SeverityPolicy::shipped().unwrap();
    policy.services.splice(0..0, sc.services.iter().cloned());
    let logs = match &sc.logs {
        Some(p) => {
            let path = dir.join(p);
            let file = std::fs::File::open(&path).unwrap();
            firebreak_insights::read_events(std::io::BufReader::new(file), &path.display().to_string())
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        }
        None => Vec::new(),
    };
    let metrics = match &sc.metrics {
        Some(p) => {
            let path = dir.join(p);
            let file = std::fs::File::open(&path).unwrap();
            firebreak_core::adapters::local_metrics::read_points(
                std::io::BufReader::new(file),
                &path.display().to_string(),
            )
            .unwrap()
        }
        None => Vec::new(),
    };
    let mut steps = Vec::new();
    // as drill::run: a redelivery is the same event (delivery id and state-change time)
    let mut last_delivery: BTreeMap<PathBuf, (usize, chrono::DateTime<chrono::Utc>)> = BTreeMap::new();
    for (n, step) in sc.steps.iter().enumerate() {
        if let Some(rel) = &step.event {
            let text = std::fs::read_to_string(dir.join(rel)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let (delivery_step, changed_at) = match last_delivery.get(rel) {
                Some(&(k, at)) if step.redeliver => (k, at),
                _ => (n, step.changed_at.unwrap_or(step.at)),
            };
            last_delivery.insert(rel.clone(), (delivery_step, changed_at));
            let is_envelope = value
                .get("detail-type")
                .and_then(|d| d.as_str())
                .is_some_and(|d| d != intake::ALARM_STATE_CHANGE);
            if is_envelope {
                steps.push(Step {
                    at: step.at,
                    kind: StepKind::Envelope(value),
                    redelivery: false,
                });
                continue;
            }
            for mut signal in intake::parse_event(&value).unwrap() {
                signal.changed_at = changed_at;
                signal.delivery_id = format!("{}#step{delivery_step}", signal.delivery_id);
                steps.push(Step {
                    at: step.at,
                    kind: StepKind::Alarm {
                        signal: Box::new(signal),
                        forged: step.origin == Origin::Forged,
                    },
                    redelivery: step.redeliver,
                });
            }
        } else if step.sweep {
            steps.push(Step {
                at: step.at,
                kind: StepKind::Sweep,
                redelivery: false,
            });
        } else if let Some(a) = &step.approve {
            steps.push(Step {
                at: step.at,
                kind: StepKind::Approve {
                    action: a.action.clone(),
                    by: a.by.clone(),
                    incident: a.incident.clone(),
                },
                redelivery: false,
            });
        } else if let Some(p) = &step.ecs {
            steps.push(Step {
                at: step.at,
                kind: StepKind::People(p.clone()),
                redelivery: false,
            });
        }
    }
    Workload {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        settings: drill::drill_settings(&sc.settings).unwrap(),
        policy,
        runbooks: RunbookSet::shipped().unwrap(),
        fleet: sc
            .ecs
            .iter()
            .map(|f| (drill::fleet_state(f), f.revisions()))
            .collect(),
        seed_alarms: sc.alarms.iter().map(|a| (a.name.clone(), a.state)).collect(),
        logs,
        metrics,
        steps,
        latency: sc.settings.latency.unwrap_or_default(),
    }
}

/// A storm: `steps` alarm transitions over `services` services (three alarms each), generated
/// from `seed`: each step flips one alarm (ALARM, later OK), so OKs interleave with new alarms,
/// incidents resolve and reopen, and services see several episodes.
pub fn storm(seed: u64, services: usize, steps: usize) -> Workload {
    let text = std::fs::read_to_string(repo().join("events/eventbridge-metric-alarm.json")).unwrap();
    let template = intake::parse_event_str(&text).unwrap().remove(0);
    let mut policy = SeverityPolicy::shipped().unwrap();
    let mut fleet = Vec::new();
    let names: Vec<String> = (0..services).map(|i| format!("svc-{i:02}")).collect();
    for n in &names {
        policy.services.insert(
            0,
            ServiceMapping {
                alarm: format!("{n}-*"),
                service: None,
                ecs: Some(format!("prod/{n}")),
            },
        );
        fleet.push((
            ServiceState {
                service: EcsService::new("prod", n),
                status: "ACTIVE".into(),
                task_definition: format!("{n}:7"),
                desired: 2,
                running: 2,
                pending: 0,
                deployments: Vec::new(),
                events: Vec::new(),
                tags: BTreeMap::new(),
            },
            vec![format!("{n}:6"), format!("{n}:7")],
        ));
    }
    let alarm_kinds = ["5xx-rate", "latency-p99", "health"];
    let mut rng = seed ^ 0x5707_3a11;
    let start = DateTime::parse_from_rfc3339("2026-08-20T03:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let mut at = start;
    let mut state: BTreeMap<String, AlarmState> = BTreeMap::new();
    let mut out = Vec::new();
    for i in 0..steps {
        // bursts: most steps close together, now and then a quiet gap
        let gap = match splitmix64(&mut rng) % 20 {
            0 => 600 + splitmix64(&mut rng) % 1800,
            _ => 1 + splitmix64(&mut rng) % 20,
        };
        at += Duration::seconds(gap as i64);
        let svc = &names[(splitmix64(&mut rng) % services as u64) as usize];
        let alarm = format!(
            "{svc}-{}",
            alarm_kinds[(splitmix64(&mut rng) % alarm_kinds.len() as u64) as usize]
        );
        let prev = state.get(&alarm).copied().unwrap_or(AlarmState::Ok);
        let next = if prev == AlarmState::Alarm {
            AlarmState::Ok
        } else {
            AlarmState::Alarm
        };
        state.insert(alarm.clone(), next);
        let mut s = template.clone();
        s.alarm_name = alarm.clone();
        s.alarm_arn = Some(format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm}"));
        s.state = next;
        s.previous_state = Some(prev);
        s.reason = format!("storm step {i}: {alarm} {prev} -> {next}");
        s.changed_at = at;
        s.delivery_id = format!("storm-{seed}-{i}");
        s.tags = BTreeMap::new();
        out.push(Step {
            at,
            kind: StepKind::Alarm {
                signal: Box::new(s),
                forged: false,
            },
            redelivery: false,
        });
    }
    Workload {
        name: format!("storm({services} services, {steps} steps)"),
        settings: Settings::default(),
        policy,
        runbooks: RunbookSet::shipped().unwrap(),
        fleet,
        seed_alarms: Vec::new(),
        logs: Vec::new(),
        metrics: Vec::new(),
        steps: out,
        latency: drill::Latency::default(),
    }
}

/// One thing scheduled: a CloudWatch transition, a delivery, a sweep, an approval.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: DateTime<Utc>,
    pub payload: Payload,
    /// Index of the workload step.
    pub step: usize,
    /// `first`, `late`, `redelivery`, `drill-redelivery`.
    pub how: &'static str,
}

/// A workload's steps as a seed delivers them.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub start: DateTime<Utc>,
    /// The last step (the sweeper runs every 5 minutes until then, and after).
    pub end: DateTime<Utc>,
    pub deliveries: Vec<Delivery>,
    /// Per mille of pipeline events EventBridge delivers twice.
    pub pipeline_dup_permille: u64,
    pub late: usize,
    pub redelivered: usize,
    pub copies: usize,
}

/// How much the schedule perturbs delivery.
#[derive(Debug, Clone, Copy)]
pub struct Perturb {
    /// Per mille of alarm deliveries that arrive late (1 s to 3 min: after later ones).
    pub late_permille: u64,
    /// Per mille of alarm deliveries delivered again (same delivery id, up to 10 min later).
    pub redeliver_permille: u64,
    pub pipeline_dup_permille: u64,
    /// Per mille of alarm transitions delivered by the other channel too (SNS and
    /// EventBridge both subscribed): another delivery id, the SNS copy without tags.
    pub copy_permille: u64,
}

impl Perturb {
    pub const NONE: Perturb = Perturb {
        late_permille: 0,
        redeliver_permille: 0,
        pipeline_dup_permille: 0,
        copy_permille: 0,
    };
    pub const DEFAULT: Perturb = Perturb {
        late_permille: 80,
        redeliver_permille: 100,
        pipeline_dup_permille: 50,
        copy_permille: 50,
    };
}

pub fn schedule(w: &Workload, seed: u64, p: Perturb) -> Schedule {
    let mut rng = seed ^ 0xde11_7e57;
    let start = w.steps.first().map(|s| s.at).expect("a step");
    let end = w.steps.last().map(|s| s.at).expect("a step") + Duration::minutes(30);
    let mut deliveries = Vec::new();
    let (mut late, mut redelivered, mut copies) = (0, 0, 0);
    for (i, s) in w.steps.iter().enumerate() {
        match &s.kind {
            StepKind::Alarm { signal, forged } => {
                if !forged && !s.redelivery {
                    deliveries.push(Delivery {
                        at: s.at,
                        payload: Payload::Transition(signal.alarm_name.clone(), signal.state),
                        step: i,
                        how: "transition",
                    });
                }
                let mut at = s.at;
                let mut how = if s.redelivery { "drill-redelivery" } else { "first" };
                if splitmix64(&mut rng) % 1000 < p.late_permille {
                    at += Duration::seconds(1 + (splitmix64(&mut rng) % 180) as i64);
                    how = "late";
                    late += 1;
                }
                deliveries.push(Delivery {
                    at,
                    payload: Payload::Alarm(signal.clone()),
                    step: i,
                    how,
                });
                if !s.redelivery && splitmix64(&mut rng) % 1000 < p.copy_permille {
                    let mut copy = signal.clone();
                    copy.delivery_id = format!("{}~copy", signal.delivery_id);
                    copy.channel = match signal.channel {
                        Channel::Sns => Channel::EventBridge,
                        _ => Channel::Sns,
                    };
                    if copy.channel == Channel::Sns {
                        copy.tags.clear();
                    }
                    copies += 1;
                    deliveries.push(Delivery {
                        at: s.at + Duration::seconds((splitmix64(&mut rng) % 60) as i64),
                        payload: Payload::Alarm(copy),
                        step: i,
                        how: "copy",
                    });
                }
                if splitmix64(&mut rng) % 1000 < p.redeliver_permille {
                    redelivered += 1;
                    deliveries.push(Delivery {
                        at: s.at + Duration::seconds(1 + (splitmix64(&mut rng) % 600) as i64),
                        payload: Payload::Alarm(signal.clone()),
                        step: i,
                        how: "redelivery",
                    });
                }
            }
            StepKind::Envelope(v) => deliveries.push(Delivery {
                at: s.at,
                payload: Payload::Envelope(v.clone()),
                step: i,
                how: "first",
            }),
            StepKind::Sweep => deliveries.push(Delivery {
                at: s.at,
                payload: Payload::Sweep,
                step: i,
                how: "first",
            }),
            StepKind::Approve { action, by, incident } => deliveries.push(Delivery {
                at: s.at,
                payload: Payload::Approve(action.clone(), by.clone(), incident.clone()),
                step: i,
                how: "first",
            }),
            StepKind::People(p) => deliveries.push(Delivery {
                at: s.at,
                payload: Payload::People(p.clone()),
                step: i,
                how: "first",
            }),
        }
    }
    Schedule {
        seed,
        start,
        end,
        deliveries,
        pipeline_dup_permille: p.pipeline_dup_permille,
        late,
        redelivered,
        copies,
    }
}
