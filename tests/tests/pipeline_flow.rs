//! Diagnose and remediate against moto: the whole diagnose flow through the local-evaluation
//! fallback (FilterLogEvents + the insights engine, since moto's Logs Insights neither filters
//! nor aggregates), then each ECS action changing the service for real. CloudWatch alarm state
//! comes from the in-memory port: moto does not serve the CBOR protocol of aws-sdk-cloudwatch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use anyhow::Result;
use aws_config::SdkConfig;
use chrono::{DateTime, Duration, Utc};
use firebreak_aws::{
    DynamoIncidentStore, EcsServiceControl, EventBridgeBus, FetchingLogQueries, FilterLogEventsFetcher,
    SnsNotifier, Topics,
};
use firebreak_core::adapters::memory::InMemoryAlarmStatus;
use firebreak_core::model::incident::{AttachedAlarm, EcsService, Incident, IncidentId};
use firebreak_core::model::pipeline::{DiagnosisCompleted, Event, IncidentRaised};
use firebreak_core::model::settings::{RemediationMode, Settings};
use firebreak_core::model::severity::Severity;
use firebreak_core::model::signal::AlarmState;
use firebreak_core::model::timeline::EntryKind;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{
    IncidentStore, OpenOutcome, PortError, ServiceControl, ServiceState, ServiceUpdate, SystemClock,
};
use firebreak_core::runbook::embedded;
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::diagnose::Diagnose;
use firebreak_core::stages::remediate::Remediate;
use firebreak_integration::{
    bus_to_queue, ecs_service, incident, moto, table, topic_to_queue, EcsFixture, Queue,
};
use std::time::Duration as StdDuration;

const ALARM: &str = "articles-api-5xx-rate";

/// moto never completes an ECS rollout (its `deployments[]` never change after CreateService),
/// so a lone PRIMARY deployment stays IN_PROGRESS forever and the "no action during a rollout"
/// guardrail would refuse every scale-out. This wrapper reports a lone PRIMARY as COMPLETED, as
/// ECS does once the service is steady; every call still goes to moto.
struct Settled(EcsServiceControl);

impl ServiceControl for Settled {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        let mut s = self.0.describe(service).await?;
        if let [only] = s.deployments.as_mut_slice() {
            only.rollout_state = Some("COMPLETED".into());
        }
        Ok(s)
    }
    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        self.0.task_definitions(family).await
    }
    async fn task_definition(
        &self,
        name: &str,
    ) -> Result<Option<firebreak_core::ports::TaskDefinition>, PortError> {
        self.0.task_definition(name).await
    }
    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        self.0.update(service, change).await
    }
}

struct Env {
    store: DynamoIncidentStore,
    ecs: Settled,
    bus: EventBridgeBus,
    events: Queue,
    notifier: SnsNotifier,
    runbooks: RunbookSet,
    settings: Settings,
    alarms: InMemoryAlarmStatus,
}

async fn env(cfg: &SdkConfig, test: &str, fleet: &EcsFixture) -> Result<Env> {
    let (ddb, table_name) = table(cfg, test).await?;
    let (bus_name, events) = bus_to_queue(cfg, test).await?;
    let (topic, _pages) = topic_to_queue(cfg, test).await?;
    let mut settings = Settings::default();
    settings.remediation.mode = RemediationMode::Auto;
    settings.remediation.allow = vec![EcsService::new(&fleet.cluster, &fleet.service)];
    let alarms = InMemoryAlarmStatus::new();
    alarms.set(ALARM, AlarmState::Alarm);
    Ok(Env {
        store: DynamoIncidentStore::new(ddb, table_name),
        ecs: Settled(EcsServiceControl::new(aws_sdk_ecs::Client::new(cfg))),
        bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(cfg), bus_name),
        events,
        notifier: SnsNotifier::new(
            aws_sdk_sns::Client::new(cfg),
            Topics {
                sev1: topic.clone(),
                sev2: topic.clone(),
                sev3: topic.clone(),
                sev4: topic,
            },
        ),
        runbooks: RunbookSet::from_embedded(embedded::FILES)?,
        settings,
        alarms,
    })
}

/// An open SEV2 incident on the fixture's service with the 5xx alarm firing.
async fn open_incident(e: &Env, fleet: &EcsFixture, at: DateTime<Utc>) -> Result<Incident> {
    let svc = EcsService::new(&fleet.cluster, &fleet.service);
    let mut inc = incident(
        &format!("INC-{}-0001", at.format("%Y%m%d-%H%M%S")),
        &svc.to_string(),
        at,
    );
    inc.ecs = Some(svc);
    inc.alarms.insert(
        ALARM.into(),
        AttachedAlarm {
            state: AlarmState::Alarm,
            changed_at: at,
            reason: "5xx above 5".into(),
        },
    );
    assert_eq!(
        e.store.open(&inc, &[], StdDuration::from_secs(1800)).await?,
        OpenOutcome::Opened
    );
    Ok(inc)
}

/// The seed incident's logs, relative to `alarm`: steady connection acquisitions over the whole lookback, doubling from
/// 12 minutes before the alarm, with pool-exhausted 500s in the last minutes.
async fn seed_logs(cfg: &SdkConfig, group: &str, alarm: DateTime<Utc>) -> Result<()> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(cfg);
    logs.create_log_group().log_group_name(group).send().await?;
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("ecs/app/1")
        .send()
        .await?;
    let mut req = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name("ecs/app/1");
    for minute in (1..=70).rev() {
        let t0 = alarm - Duration::minutes(minute);
        let doubled = minute <= 12;
        for i in 0..(if doubled { 12 } else { 6 }) {
            let t = t0 + Duration::seconds(i * 4);
            let msg = format!(
                "INFO acquired database connection pool=articles in_use={} max_connections=10",
                if doubled { 10 } else { 5 }
            );
            req = req.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(t.timestamp_millis())
                    .message(msg)
                    .build()?,
            );
            if doubled && minute <= 3 && i % 3 == 0 {
                let err = "ERROR DatabaseError: connection pool exhausted, max_connections=10 path=/articles status=500";
                req = req.log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(t.timestamp_millis() + 1)
                        .message(err)
                        .build()?,
                );
            }
        }
    }
    req.send().await?;
    Ok(())
}

const ALB: [(&str, &str); 2] = [
    ("LoadBalancer", "app/prod-alb/50dc6c495c0c9188"),
    ("TargetGroup", "targetgroup/articles-api/73e2d6bc24d8a067"),
];

/// The load balancer's RequestCount per minute for the 80 minutes before `alarm`: 1200, then
/// 2400 from 12 minutes before it, as the seeded logs tell.
fn request_rate(alarm: DateTime<Utc>) -> Vec<firebreak_core::adapters::local_metrics::MetricPoint> {
    let start = alarm - Duration::minutes(80);
    let start = start - Duration::seconds(start.timestamp() % 60);
    (0..82)
        .map(|m| {
            let at = start + Duration::minutes(m);
            firebreak_core::adapters::local_metrics::MetricPoint {
                namespace: "AWS/ApplicationELB".into(),
                name: "RequestCount".into(),
                dimensions: ALB.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                at,
                value: if at >= alarm - Duration::minutes(12) {
                    2400.0
                } else {
                    1200.0
                },
            }
        })
        .collect()
}

fn raised(inc: &Incident, at: DateTime<Utc>) -> IncidentRaised {
    IncidentRaised {
        incident_id: inc.id.clone(),
        service: inc.service.clone(),
        ecs: inc.ecs.clone(),
        severity: Severity::Sev2,
        alarm_name: ALARM.into(),
        alarm_at: at,
        runbook_hint: None,
        namespace: Some("AWS/ApplicationELB".into()),
        metric_name: Some("HTTPCode_Target_5XX_Count".into()),
        dimensions: ALB.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        composite_rule: None,
        tags: Default::default(),
        reopened: 0,
    }
}

#[tokio::test]
async fn the_seed_incident_is_diagnosed_from_moto_logs_and_scaled_out_for_real() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let fleet = ecs_service(&cfg, "flow-seed", 2, 2).await?;
    let e = env(&cfg, "flow-seed", &fleet).await?;
    // moto keeps log events of the last 14 days only: the incident happens now.
    let alarm_at = Utc::now();
    seed_logs(&cfg, &format!("/ecs/{}", fleet.service), alarm_at).await?;
    let inc = open_incident(&e, &fleet, alarm_at).await?;

    let logs = FetchingLogQueries::new(FilterLogEventsFetcher::new(
        aws_sdk_cloudwatchlogs::Client::new(&cfg),
        50_000,
    ));
    // moto does not serve GetMetricData in the protocol aws-sdk-cloudwatch speaks (DESIGN.md):
    // the metric steps read recorded points with the logs' story (requests doubled 12 minutes
    // before the alarm). Without them, the service's deployment (moto's CreateService, minutes
    // ago) and the traffic would explain the pool errors equally, and the diagnosis abstains.
    let metrics = firebreak_core::adapters::local_metrics::RecordedMetrics::new(request_rate(alarm_at));
    let diagnose = Diagnose {
        ports: Wired::new()
            .store(&e.store)
            .logs(&logs)
            .metrics(&metrics)
            .notifier(&e.notifier)
            .ecs(&e.ecs)
            .bus(&e.bus)
            .clock(&SystemClock),
        runbooks: &e.runbooks,
        settings: &e.settings,
    };
    let report = diagnose.handle(&raised(&inc, alarm_at)).await?;
    assert_eq!(
        report.cause.as_deref(),
        Some("db-connection-pool-exhausted"),
        "{report:#?}"
    );
    assert_eq!(
        report.suggested.first().map(String::as_str),
        Some("ecs-scale-out")
    );
    let start = report.estimated_start.expect("an estimated start");
    assert!(
        start <= alarm_at - Duration::minutes(5) && start >= alarm_at - Duration::minutes(15),
        "start {start}"
    );

    let stored = e.store.get(&inc.id).await?.unwrap();
    assert_eq!(stored.cause.as_deref(), Some("db-connection-pool-exhausted"));
    let kinds: Vec<EntryKind> = e
        .store
        .timeline(&inc.id)
        .await?
        .iter()
        .map(|x| x.kind())
        .collect();
    for k in [
        EntryKind::DiagnosisStarted,
        EntryKind::QueryCompleted,
        EntryKind::RecentChanges,
        EntryKind::CauseMatched,
        EntryKind::DiagnosisCompleted,
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let published = e.events.receive(1, StdDuration::from_secs(10)).await?;
    assert_eq!(published.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(&published[0])?;
    assert_eq!(envelope["detail-type"], "Diagnosis Completed");
    let Event::Diagnosed(done) = Event::from_envelope(&envelope)? else {
        panic!("not a diagnosis")
    };

    // remediate takes it from the bus and scales the service out in moto.
    let remediate = Remediate {
        ports: Wired::new()
            .store(&e.store)
            .ecs(&e.ecs)
            .alarms(&e.alarms)
            .notifier(&e.notifier)
            .bus(&e.bus)
            .clock(&SystemClock),
        runbooks: e.runbooks.runbooks(),
        settings: &e.settings,
    };
    let out = remediate.on_diagnosis(&done).await?;
    let applied: Vec<_> = out.decisions.iter().filter(|d| d.outcome == "applied").collect();
    assert_eq!(applied.len(), 1, "{:#?}", out.decisions);
    assert_eq!(applied[0].action, "ecs-scale-out");
    let now = e
        .ecs
        .describe(&EcsService::new(&fleet.cluster, &fleet.service))
        .await?;
    assert_eq!(now.desired, 4, "2 tasks + step 2, capped at 2x");

    // Redelivered, it acts no more.
    remediate.on_diagnosis(&done).await?;
    assert_eq!(
        e.ecs
            .describe(&EcsService::new(&fleet.cluster, &fleet.service))
            .await?
            .desired,
        4
    );
    Ok(())
}

#[tokio::test]
async fn a_bad_deployment_is_rolled_back_to_the_previous_revision_for_real() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let fleet = ecs_service(&cfg, "flow-rollback", 2, 3).await?;
    let e = env(&cfg, "flow-rollback", &fleet).await?;
    let svc = EcsService::new(&fleet.cluster, &fleet.service);
    assert_eq!(
        e.ecs.describe(&svc).await?.task_definition,
        format!("{}:2", fleet.family)
    );

    // The service was just deployed; the problem starts right after.
    let start = Utc::now() + Duration::seconds(1);
    let mut inc = open_incident(&e, &fleet, start + Duration::seconds(30)).await?;
    let v = inc.version;
    inc.version += 1;
    inc.estimated_start = Some(start);
    inc.runbook = Some("high-error-rate".into());
    inc.cause = Some("bad-deployment".into());
    e.store
        .save(&inc, v, firebreak_core::ports::PointerChange::Keep, &[])
        .await?;

    let remediate = Remediate {
        ports: Wired::new()
            .store(&e.store)
            .ecs(&e.ecs)
            .alarms(&e.alarms)
            .notifier(&e.notifier)
            .bus(&e.bus)
            .clock(&SystemClock),
        runbooks: e.runbooks.runbooks(),
        settings: &e.settings,
    };
    let done = DiagnosisCompleted {
        incident_id: IncidentId(inc.id.to_string()),
        service: inc.service.clone(),
        runbook: Some("high-error-rate".into()),
        cause: Some("bad-deployment".into()),
        evidence: vec!["errors began right after the deploy".into()],
        suggested: vec!["ecs-rollback".into()],
        estimated_start: Some(start),
    };
    let out = remediate.on_diagnosis(&done).await?;
    assert!(
        out.decisions
            .iter()
            .any(|d| d.action == "ecs-rollback" && d.outcome == "applied"),
        "{:#?}",
        out.decisions
    );
    assert_eq!(
        e.ecs.describe(&svc).await?.task_definition,
        format!("{}:1", fleet.family),
        "rolled back in moto"
    );
    Ok(())
}
