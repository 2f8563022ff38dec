#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The seed's incident, diagnosed end to end over the in-memory ports and the local Logs
//! Insights engine: a 5xx alarm on prod/articles-api whose logs show the connection pool
//! exhausted after traffic doubled at 14:30. And its counterpart: a bad deployment.

use chrono::{DateTime, TimeZone, Utc};
use firebreak_core::adapters::local_logs::LocalLogQueries;
use firebreak_core::adapters::local_metrics::RecordedMetrics;
use firebreak_core::adapters::memory::{
    InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, InMemoryServiceControl, SimClock,
};
use firebreak_core::model::incident::{EcsService, Incident, IncidentId};
use firebreak_core::model::pipeline::{Event, IncidentRaised};
use firebreak_core::model::settings::Settings;
use firebreak_core::model::severity::Severity;
use firebreak_core::model::timeline::EntryKind;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{Deployment, IncidentStore, ServiceState};
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::diagnose::{Diagnose, DiagnosisReport};
use firebreak_insights::LogEvent;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
}

fn runbooks() -> RunbookSet {
    RunbookSet::load_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")).unwrap()
}

fn seed_events() -> Vec<LogEvent> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-incident.jsonl");
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    firebreak_insights::read_events(file, "seed-incident.jsonl")
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The seed drill's CloudWatch datapoints: request rate doubled at 14:30, CPU and tasks normal.
fn seed_metrics() -> Vec<firebreak_core::adapters::local_metrics::MetricPoint> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/scenarios/seed-connection-pool/metrics.jsonl");
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    firebreak_core::adapters::local_metrics::read_points(file, "metrics.jsonl").unwrap()
}

fn incident(id: &str, alarm_at: DateTime<Utc>) -> Incident {
    let mut i = Incident::open(
        IncidentId(id.to_string()),
        "prod/articles-api",
        Severity::Sev2,
        "articles-api-5xx-rate",
        alarm_at,
        alarm_at,
    );
    i.ecs = Some(EcsService::new("prod", "articles-api"));
    i
}

fn raised(id: &str, alarm_at: DateTime<Utc>) -> IncidentRaised {
    IncidentRaised {
        incident_id: IncidentId(id.to_string()),
        service: "prod/articles-api".into(),
        ecs: Some(EcsService::new("prod", "articles-api")),
        severity: Severity::Sev2,
        alarm_name: "articles-api-5xx-rate".into(),
        alarm_at,
        runbook_hint: None,
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("HTTPCode_Target_5XX_Count".into()),
        dimensions: BTreeMap::from([
            (
                "LoadBalancer".to_string(),
                "app/prod-alb/50dc6c495c0c9188".to_string(),
            ),
            (
                "TargetGroup".to_string(),
                "targetgroup/articles-api/73e2d6bc24d8a067".to_string(),
            ),
        ]),
        composite_rule: None,
        tags: BTreeMap::new(),
        reopened: 0,
    }
}

fn fleet(deployed_at: DateTime<Utc>, td: &str) -> InMemoryServiceControl {
    let ecs = InMemoryServiceControl::new();
    ecs.add_service(
        ServiceState {
            service: EcsService::new("prod", "articles-api"),
            status: "ACTIVE".into(),
            task_definition: td.into(),
            desired: 4,
            running: 4,
            pending: 0,
            deployments: vec![Deployment {
                id: "ecs-svc/2".into(),
                status: "PRIMARY".into(),
                task_definition: td.into(),
                desired: 4,
                running: 4,
                rollout_state: Some("COMPLETED".into()),
                created_at: Some(deployed_at),
                updated_at: Some(deployed_at),
            }],
            events: Vec::new(),
            tags: BTreeMap::new(),
        },
        &["articles-api:41".to_string()],
    );
    ecs
}

struct World {
    store: InMemoryIncidentStore,
    logs: LocalLogQueries,
    metrics: RecordedMetrics,
    notifier: InMemoryNotifier,
    ecs: InMemoryServiceControl,
    bus: InMemoryEventBus,
    clock: SimClock,
    runbooks: RunbookSet,
    settings: Settings,
}

impl World {
    async fn new(
        id: &str,
        alarm_at: DateTime<Utc>,
        events: Vec<LogEvent>,
        ecs: InMemoryServiceControl,
    ) -> World {
        let store = InMemoryIncidentStore::new();
        store
            .open(&incident(id, alarm_at), &[], std::time::Duration::from_secs(1800))
            .await
            .unwrap();
        World {
            store,
            logs: LocalLogQueries::new(events),
            metrics: RecordedMetrics::default(),
            notifier: InMemoryNotifier::new(),
            ecs,
            bus: InMemoryEventBus::new(),
            clock: SimClock::new(alarm_at + chrono::Duration::seconds(20)),
            runbooks: runbooks(),
            settings: Settings::default(),
        }
    }

    async fn diagnose(&self, r: &IncidentRaised) -> DiagnosisReport {
        Diagnose {
            ports: Wired::new()
                .store(&self.store)
                .logs(&self.logs)
                .metrics(&self.metrics)
                .notifier(&self.notifier)
                .ecs(&self.ecs)
                .bus(&self.bus)
                .clock(&self.clock),
            runbooks: &self.runbooks,
            settings: &self.settings,
        }
        .handle(r)
        .await
        .unwrap()
    }
}

const SEED: &str = "INC-20260314-143500-3f9a";

#[tokio::test]
async fn seed_incident_is_diagnosed_as_pool_exhaustion_starting_at_1430() {
    let mut w = World::new(
        SEED,
        at(14, 35),
        seed_events(),
        fleet(at(14, 5), "articles-api:42"),
    )
    .await;
    w.metrics = RecordedMetrics::new(seed_metrics());
    let report = w.diagnose(&raised(SEED, at(14, 35))).await;

    assert_eq!(report.runbook.as_deref(), Some("high-error-rate"));
    assert_eq!(report.cause.as_deref(), Some("db-connection-pool-exhausted"));
    assert_eq!(report.suggested, vec!["ecs-scale-out"]);
    assert_eq!(report.estimated_start, Some(at(14, 30)));
    assert_eq!(report.time_to_detect_s, Some(300));
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.contains("connection pool exhausted, max_connections=10")),
        "{:#?}",
        report.evidence
    );
    // connection acquisitions doubled at 14:30
    let connections = report
        .queries
        .iter()
        .find_map(|q| match q {
            firebreak_core::stages::diagnose::QueryOutcome::Completed(s) if s.query == "connections" => {
                Some(s)
            }
            _ => None,
        })
        .unwrap();
    let spike = connections.spike.as_ref().unwrap();
    assert_eq!(spike.at, at(14, 30));
    assert!(spike.ratio.unwrap() >= 2.0, "{spike:?}");
    // the seed's cross-reference: traffic doubled, CPU and tasks normal
    let lines: Vec<String> = report.metrics.iter().map(|m| m.line()).collect();
    assert!(
        lines[0].starts_with("RequestCount 2.0x baseline since 14:30"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("CPUUtilization normal ("), "{lines:?}");
    assert_eq!(lines[2], "RunningTaskCount unchanged at 4");
    for l in &lines {
        assert!(
            report.evidence.contains(l) || report.evidence.iter().any(|e| e.ends_with(l.as_str())),
            "{l}"
        );
    }
    // the deployment 25 minutes before the start came with doubled traffic: it scores lower
    assert_eq!(report.hypotheses[0].cause, "db-connection-pool-exhausted");
    assert_eq!(report.hypotheses[0].score, 1.0);
    assert!(
        report
            .hypotheses
            .iter()
            .all(|h| h.cause != "bad-deployment" || h.score < 0.5),
        "{:#?}",
        report.hypotheses
    );
    assert_eq!(report.abstained, None);

    // the incident
    let inc = w.store.get(&IncidentId(SEED.into())).await.unwrap().unwrap();
    assert_eq!(inc.cause.as_deref(), Some("db-connection-pool-exhausted"));
    assert_eq!(inc.runbook.as_deref(), Some("high-error-rate"));
    assert_eq!(inc.estimated_start, Some(at(14, 30)));
    assert_eq!(inc.diagnosed_at, Some(at(14, 35) + chrono::Duration::seconds(20)));
    assert_eq!(inc.version, 2);

    // the timeline
    let tl = w.store.timeline(&IncidentId(SEED.into())).await.unwrap();
    let kinds: Vec<EntryKind> = tl.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds.first(), Some(&EntryKind::DiagnosisStarted));
    assert_eq!(
        kinds.iter().filter(|k| **k == EntryKind::QueryCompleted).count(),
        7,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&EntryKind::QueryFailed), "{tl:#?}");
    assert!(kinds.contains(&EntryKind::RecentChanges));
    let cause = tl.iter().find(|e| e.kind() == EntryKind::CauseMatched).unwrap();
    assert!(
        cause.summary.starts_with("Cause db-connection-pool-exhausted:"),
        "{}",
        cause.summary
    );
    let done = tl
        .iter()
        .find(|e| e.kind() == EntryKind::DiagnosisCompleted)
        .unwrap();
    assert!(done.summary.contains("started ~14:30"), "{}", done.summary);
    let recent = tl.iter().find(|e| e.kind() == EntryKind::RecentChanges).unwrap();
    assert!(
        recent
            .summary
            .contains("articles-api:42 deployed 2026-03-14 14:05 UTC, 30m before the alarm"),
        "{}",
        recent.summary
    );

    // the bus
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    match Event::from_pipeline(&events[0]).unwrap() {
        Event::Diagnosed(d) => {
            assert_eq!(d.cause.as_deref(), Some("db-connection-pool-exhausted"));
            assert_eq!(d.suggested, vec!["ecs-scale-out"]);
            assert_eq!(d.estimated_start, Some(at(14, 30)));
        }
        other => panic!("expected Diagnosis Completed, got {other:?}"),
    }
}

/// Steady traffic; a deployment at 14:20 starts 500s at 14:21 (no pool errors).
fn bad_deployment_events() -> Vec<LogEvent> {
    let mut v = Vec::new();
    let start = at(13, 30).timestamp_millis();
    for i in 0..(70 * 2) {
        // one request every 30 s
        let t = start + i * 30_000;
        let broken = t >= at(14, 21).timestamp_millis();
        v.push(LogEvent::new(
            t,
            "/ecs/articles-api",
            "ecs/articles-api/task-1",
            "INFO acquired database connection pool=articles in_use=4",
        ));
        let msg = if broken && i % 2 == 0 {
            "ERROR NullPointerException in ArticleRenderer.render path=/articles status=500"
        } else {
            "INFO GET /articles status=200 duration_ms=41"
        };
        v.push(LogEvent::new(
            t + 40,
            "/ecs/articles-api",
            "ecs/articles-api/task-1",
            msg,
        ));
    }
    v
}

#[tokio::test]
async fn errors_right_after_a_deployment_are_a_bad_deployment_to_roll_back() {
    let id = "INC-20260314-143000-0001";
    let w = World::new(
        id,
        at(14, 30),
        bad_deployment_events(),
        fleet(at(14, 20), "articles-api:43"),
    )
    .await;
    let report = w.diagnose(&raised(id, at(14, 30))).await;
    assert_eq!(report.runbook.as_deref(), Some("high-error-rate"));
    assert_eq!(report.cause.as_deref(), Some("bad-deployment"), "{report:#?}");
    assert_eq!(report.suggested, vec!["ecs-rollback"]);
    assert_eq!(report.estimated_start, Some(at(14, 20)));
    assert!(
        report.evidence.iter().any(|e| e.contains("articles-api:43")),
        "{:#?}",
        report.evidence
    );
}

#[tokio::test]
async fn the_same_errors_without_a_recent_deployment_are_not_blamed_on_one() {
    let id = "INC-20260314-143000-0002";
    let w = World::new(
        id,
        at(14, 30),
        bad_deployment_events(),
        fleet(at(9, 0), "articles-api:43"),
    )
    .await;
    let report = w.diagnose(&raised(id, at(14, 30))).await;
    assert_eq!(report.cause, None, "{report:#?}");
    assert!(report.suggested.is_empty());
    assert_eq!(report.estimated_start, Some(at(14, 20)));
}
