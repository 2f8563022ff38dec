//! Flapping is held, not amplified: after the threshold one page says so, nothing more is paged
//! or remediated, every state change stays on the timeline, the stored items stay small, and a
//! drill's time grows linearly with the number of flaps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use chrono::{DateTime, Duration, Utc};
use firebreak_core::adapters::memory::InMemoryIncidentStore;
use firebreak_core::drill::{self, DrillEnv, DrillReport, LoadedScenario, Step};
use firebreak_core::model::incident::IncidentStatus;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::RunbookSet;
use std::path::Path;
use std::time::Instant;

fn shipped() -> LoadedScenario {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/scenarios/flapping-held");
    LoadedScenario::load(&dir).unwrap()
}

fn step(at: DateTime<Utc>, event: Option<&str>) -> Step {
    let mut s = shipped().scenario.steps[0].clone();
    s.at = at;
    s.event = event.map(Into::into);
    s.sweep = event.is_none();
    s
}

/// The shipped drill's alarm flapping `flaps` times (ALARM then OK, a minute apart), then quiet
/// past the stable time, swept; ending in ALARM when `end_firing`.
fn flapping(flaps: usize, end_firing: bool) -> LoadedScenario {
    let mut loaded = shipped();
    let t0 = loaded.scenario.steps[0].at;
    let mut steps = Vec::with_capacity(2 * flaps + 3);
    for i in 0..flaps {
        let at = t0 + Duration::minutes(2 * i as i64);
        steps.push(step(at, Some("alarm.eventbridge.json")));
        steps.push(step(at + Duration::minutes(1), Some("ok.eventbridge.json")));
    }
    let mut last = steps.last().unwrap().at;
    if end_firing {
        last += Duration::minutes(1);
        steps.push(step(last, Some("alarm.eventbridge.json")));
    }
    steps.push(step(last + Duration::minutes(16), None));
    loaded.scenario.steps = steps;
    loaded
}

async fn run(loaded: &LoadedScenario) -> (DrillReport, InMemoryIncidentStore) {
    let policy = SeverityPolicy::shipped().unwrap();
    let runbooks = RunbookSet::shipped().unwrap();
    let store = InMemoryIncidentStore::new();
    let env = DrillEnv {
        policy: &policy,
        runbooks: &runbooks,
    };
    let report = drill::run_with_store(loaded, &env, &store).await.unwrap();
    (report, store)
}

fn changes(report: &DrillReport) -> usize {
    report.incidents[0]
        .timeline
        .iter()
        .filter(|e| e.kind == "alarm-fired" || e.kind == "alarm-recovered")
        .count()
}

#[tokio::test]
async fn a_thousand_flaps_page_no_more_than_fifty_keep_every_change_and_stay_small() {
    let mut pages = Vec::new();
    for flaps in [50, 1000] {
        let (report, store) = run(&flapping(flaps, false)).await;
        assert_eq!(report.incidents.len(), 1, "{flaps} flaps");
        let inc = &report.incidents[0];
        assert_eq!(
            inc.status,
            IncidentStatus::Resolved,
            "{flaps} flaps: stable, then resolved"
        );
        assert!(inc.remediations.is_empty(), "{:?}", inc.remediations);
        assert_eq!(changes(&report), 2 * flaps, "every change stays on the timeline");
        let subjects: Vec<&str> = report.notifications.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            subjects.iter().filter(|s| s.contains("FLAPPING")).count(),
            1,
            "{subjects:?}"
        );
        pages.push(subjects.len());
        let largest = store.largest_items();
        println!(
            "{flaps} flaps: {} notifications, largest items {largest:?}",
            subjects.len()
        );
        assert!(
            largest.values().all(|n| *n < 64 * 1024),
            "{flaps} flaps: {largest:?}"
        );
        let pm = inc.postmortem_markdown.as_deref().unwrap();
        assert!(pm.len() < 64 * 1024, "postmortem of {} bytes", pm.len());
        assert!(pm.contains("more alarm state changes and hand-offs"), "{pm}");
    }
    assert_eq!(pages[0], pages[1], "pages do not grow with the flaps");
    assert_eq!(
        pages[0], 10,
        "opened, 2 reopened, 3 resolved, 1 flapping, and the diagnosis of each of the 3 cycles"
    );
}

#[tokio::test]
async fn a_flapping_drill_takes_time_linear_in_its_flaps() {
    let mut secs = Vec::new();
    for flaps in [250, 1000] {
        let loaded = flapping(flaps, false);
        // best of two: the machine is shared
        let mut best = f64::MAX;
        for _ in 0..2 {
            let t = Instant::now();
            run(&loaded).await;
            best = best.min(t.elapsed().as_secs_f64());
        }
        secs.push(best);
    }
    let ratio = secs[1] / secs[0];
    println!(
        "250 flaps {:.3}s, 1000 flaps {:.3}s: ratio {ratio:.2} (linear 4, quadratic 16)",
        secs[0], secs[1]
    );
    assert!(ratio < 8.0, "{secs:?}: ratio {ratio:.2}");
}

#[tokio::test]
async fn an_alarm_that_stops_flapping_in_alarm_is_paged_once_and_diagnosed_again() {
    let (report, _) = run(&flapping(20, true)).await;
    let inc = &report.incidents[0];
    assert_eq!(inc.status, IncidentStatus::Open);
    let subjects: Vec<&str> = report.notifications.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects.iter().filter(|s| s.contains("stable in ALARM")).count(),
        1,
        "{subjects:?}"
    );
    let stable_at = inc
        .timeline
        .iter()
        .find(|e| e.summary.starts_with("stable again"))
        .expect("the hold ended")
        .at;
    assert!(
        inc.timeline
            .iter()
            .any(|e| e.kind == "diagnosis-started" && e.at >= stable_at),
        "diagnosis resumes after the hold"
    );
}
