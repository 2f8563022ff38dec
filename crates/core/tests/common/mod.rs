//! What the triage-level integration tests share: the sample alarms, times, and a world of
//! in-memory ports with the shipped severity policy.

#![allow(dead_code)] // each test file uses the part it needs
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use chrono::{DateTime, Utc};
use firebreak_core::adapters::memory::{InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, SimClock};
use firebreak_core::intake::parse_event_str;
use firebreak_core::model::incident::Incident;
use firebreak_core::model::settings::Settings;
use firebreak_core::model::signal::AlarmSignal;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::ports::bundle::{TriagePorts, Wired};
use firebreak_core::ports::{IncidentStore, ListQuery};
use firebreak_core::stages::triage::Triage;

/// The first signal of `events/NAME`.
/// Runs the shipped drill `name` with the shipped policy and runbooks: its report, and how it
/// differs from its `expect`.
pub async fn run_drill(name: &str) -> (firebreak_core::drill::DrillReport, Vec<String>) {
    use firebreak_core::drill::{self, DrillEnv, LoadedScenario};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/scenarios")
        .join(name);
    let loaded = LoadedScenario::load(&dir).unwrap();
    let policy = SeverityPolicy::shipped().unwrap();
    let runbooks = firebreak_core::runbook::RunbookSet::shipped().unwrap();
    let report = drill::run(
        &loaded,
        &DrillEnv {
            policy: &policy,
            runbooks: &runbooks,
        },
    )
    .await
    .unwrap();
    let diffs = drill::check(&report, loaded.scenario.expect.as_ref().unwrap());
    (report, diffs)
}

pub fn sample(name: &str) -> AlarmSignal {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse_event_str(&text).unwrap().remove(0)
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Triage over in-memory ports, the shipped policy and default settings, at 14:35:02.
pub struct World {
    pub store: InMemoryIncidentStore,
    pub notifier: InMemoryNotifier,
    pub bus: InMemoryEventBus,
    pub clock: SimClock,
    pub policy: SeverityPolicy,
    pub settings: Settings,
}

impl World {
    pub fn new() -> World {
        World {
            store: InMemoryIncidentStore::new(),
            notifier: InMemoryNotifier::new(),
            bus: InMemoryEventBus::new(),
            clock: SimClock::new(at("2026-03-14T14:35:02Z")),
            policy: SeverityPolicy::shipped().unwrap(),
            settings: Settings::default(),
        }
    }

    pub fn triage(&self) -> Triage<'_, impl TriagePorts + '_> {
        Triage {
            ports: Wired::new()
                .store(&self.store)
                .notifier(&self.notifier)
                .bus(&self.bus)
                .clock(&self.clock),
            policy: &self.policy,
            settings: &self.settings,
        }
    }

    pub async fn incidents(&self) -> Vec<Incident> {
        self.store.list(&ListQuery::default()).await.unwrap()
    }

    pub fn detail_types(&self) -> Vec<String> {
        self.bus.events().into_iter().map(|e| e.detail_type).collect()
    }
}
