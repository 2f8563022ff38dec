//! The use-case on the in-memory ports with a simulated clock.

use super::*;
use crate::adapters::memory::*;
use crate::model::incident::AttachedAlarm;
use crate::model::settings::ModeRule;
use crate::model::severity::Severity;
use crate::ports::{Deployment, OpenOutcome, TaskDefinition};
use chrono::TimeZone;
use std::sync::atomic::{AtomicUsize, Ordering};

const RUNBOOK: &str = r#"
id: api-5xx
title: 5xx on the API
trigger: { alarms: ["*-5xx*"] }
impact: users see errors
investigation:
  - { name: errors, query: "fields @message" }
verify_window: 10m
causes:
  - id: bad-deploy
    description: a recent deployment
    signatures: [ { deployment: { within: 1h } } ]
    remediation:
      - { action: ecs-rollback, window: 1h }
      - { action: ecs-scale-out, step: 4, max: 20, max_factor: 2 }
  - id: overload
    description: too much traffic
    signatures: [ { deployment: { within: 1h } } ]
    remediation:
      - { action: ecs-scale-out, step: 4, max: 20, max_factor: 2 }
      - { action: ecs-restart }
  - id: stuck
    description: stuck tasks
    signatures: [ { deployment: { within: 1h } } ]
    remediation:
      - { action: ecs-delete }
      - { action: ecs-restart }
  - id: restart-only
    description: leak
    signatures: [ { deployment: { within: 1h } } ]
    remediation:
      - { action: ecs-restart }
"#;

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).unwrap()
}

fn svc() -> EcsService {
    EcsService::new("prod", "articles-api")
}

fn inc_id() -> IncidentId {
    IncidentId("INC-20260314-143500-0001".into())
}

fn dep(td: &str, status: &str, rollout: &str, created: DateTime<Utc>) -> Deployment {
    Deployment {
        id: format!("ecs-svc/{td}"),
        status: status.into(),
        task_definition: td.into(),
        desired: 4,
        running: 4,
        rollout_state: Some(rollout.into()),
        created_at: Some(created),
        updated_at: None,
    }
}

fn service_state(deployments: Vec<Deployment>) -> ServiceState {
    ServiceState {
        service: svc(),
        status: "ACTIVE".into(),
        task_definition: "articles-api:42".into(),
        desired: 4,
        running: 4,
        pending: 0,
        deployments,
        events: vec![],
        tags: BTreeMap::new(),
    }
}

/// ECS wrapper that counts update attempts and can yield before each call, so two invocations
/// joined on one task interleave.
#[derive(Default)]
struct Probe {
    inner: InMemoryServiceControl,
    updates: AtomicUsize,
    yield_first: bool,
}

impl ServiceControl for Probe {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        if self.yield_first {
            tokio::task::yield_now().await;
        }
        self.inner.describe(service).await
    }
    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        self.inner.task_definitions(family).await
    }
    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        self.inner.task_definition(name).await
    }
    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        if self.yield_first {
            tokio::task::yield_now().await;
        }
        self.inner.update(service, change).await
    }
}

/// Alarm states that change after the first read (the alarm recovers mid-invocation).
struct Recovering {
    calls: AtomicUsize,
}

impl AlarmStatus for Recovering {
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, AlarmState>, PortError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let s = if n == 0 { AlarmState::Alarm } else { AlarmState::Ok };
        Ok(names.iter().map(|a| (a.clone(), s)).collect())
    }
}

struct World {
    store: InMemoryIncidentStore,
    ecs: Probe,
    alarms: InMemoryAlarmStatus,
    notifier: InMemoryNotifier,
    bus: InMemoryEventBus,
    clock: SimClock,
    runbooks: Vec<Runbook>,
    settings: Settings,
}

impl World {
    /// prod/articles-api at articles-api:42 (deployed 14:05), revisions 9, 10, 41, 42; desired
    /// 4; one alarm in ALARM; allowlisted; mode auto.
    async fn new() -> World {
        World::with(
            Severity::Sev2,
            service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5))]),
        )
        .await
    }

    async fn with(severity: Severity, state: ServiceState) -> World {
        let ecs = Probe::default();
        let revs: Vec<String> = ["articles-api:9", "articles-api:10", "articles-api:41"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        ecs.inner.add_service(state, &revs);
        let store = InMemoryIncidentStore::new();
        let incident = {
            let mut i = Incident::open(
                inc_id(),
                "prod/articles-api",
                severity,
                "articles-api 5xx",
                t(14, 35),
                t(14, 35),
            );
            i.ecs = Some(svc());
            i.estimated_start = Some(t(14, 30));
            i.diagnosed_at = Some(t(14, 36));
            i.runbook = Some("api-5xx".into());
            i.alarms.insert(
                "articles-api-5xx".to_string(),
                AttachedAlarm {
                    state: AlarmState::Alarm,
                    changed_at: t(14, 35),
                    reason: "threshold crossed".into(),
                },
            );
            i
        };
        let opened = store
            .open(&incident, &[], std::time::Duration::from_secs(1800))
            .await
            .unwrap();
        assert_eq!(opened, OpenOutcome::Opened);
        let alarms = InMemoryAlarmStatus::new();
        alarms.set("articles-api-5xx", AlarmState::Alarm);
        let mut settings = Settings::default();
        settings.remediation.mode = RemediationMode::Auto;
        settings.remediation.allow = vec![svc()];
        World {
            store,
            ecs,
            alarms,
            notifier: InMemoryNotifier::new(),
            bus: InMemoryEventBus::new(),
            clock: SimClock::new(t(14, 36)),
            runbooks: vec![serde_json::from_value(
                serde_norway::from_str::<serde_json::Value>(RUNBOOK).unwrap(),
            )
            .unwrap()],
            settings,
        }
    }

    fn uc(&self) -> Remediate<'_, impl RemediatePorts + '_> {
        self.uc_reading(&self.alarms)
    }

    /// The use-case over this world, reading alarm states from `alarms`.
    fn uc_reading<'a, A: AlarmStatus>(&'a self, alarms: &'a A) -> Remediate<'a, impl RemediatePorts + 'a> {
        Remediate {
            ports: Wired::new()
                .store(&self.store)
                .ecs(&self.ecs)
                .alarms(alarms)
                .notifier(&self.notifier)
                .bus(&self.bus)
                .clock(&self.clock),
            runbooks: &self.runbooks,
            settings: &self.settings,
        }
    }

    async fn diagnose(&self, cause: &str) -> RemediationReport {
        self.uc().on_diagnosis(&diag(cause)).await.unwrap()
    }

    async fn incident(&self) -> Incident {
        self.store.get(&inc_id()).await.unwrap().unwrap()
    }

    /// (action, outcome) of every record on the incident.
    async fn outcomes(&self) -> Vec<(String, String)> {
        self.incident()
            .await
            .remediations
            .into_iter()
            .map(|r| (r.action.to_string(), r.outcome.to_string()))
            .collect()
    }

    async fn entry(&self, kind: EntryKind) -> Vec<TimelineEntry> {
        self.store
            .timeline(&inc_id())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind() == kind)
            .collect()
    }

    fn attempts(&self) -> usize {
        self.ecs.updates.load(Ordering::SeqCst)
    }
}

fn diag(cause: &str) -> DiagnosisCompleted {
    DiagnosisCompleted {
        incident_id: inc_id(),
        service: "prod/articles-api".into(),
        runbook: Some("api-5xx".into()),
        cause: Some(cause.into()),
        evidence: vec![],
        suggested: vec![],
        estimated_start: Some(t(14, 30)),
    }
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn rollback_uses_the_previous_deployment_when_ecs_lists_one() {
    let state = service_state(vec![
        dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5)),
        dep("articles-api:40", "ACTIVE", "COMPLETED", t(10, 0)),
    ]);
    let w = World::with(Severity::Sev2, state.clone()).await;
    w.ecs.inner.add_service(state, &["articles-api:40".to_string()]);
    let report = w.diagnose("bad-deploy").await;
    assert_eq!(report.decisions.len(), 1, "{report:?}");
    assert_eq!(w.ecs.inner.updates().len(), 1);
    assert_eq!(
        w.ecs.inner.updates()[0].1.task_definition.as_deref(),
        Some("articles-api:40")
    );
    assert_eq!(
        w.ecs.inner.service(&svc()).unwrap().task_definition,
        "articles-api:40"
    );
    let inc = w.incident().await;
    assert_eq!(inc.status, IncidentStatus::Mitigated);
    assert_eq!(inc.mitigated_at, Some(t(14, 36)));
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
    let r = &inc.remediations[0];
    assert_eq!(
        (r.mode.as_str(), r.target.as_deref()),
        ("auto", Some("prod/articles-api"))
    );
    assert!(
        r.detail.contains("articles-api:42 → articles-api:40"),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("previous deployment"), "{}", r.detail);
}

#[tokio::test]
async fn rollback_via_revision_listing_takes_41_of_9_10_41_42() {
    let w = World::new().await;
    w.diagnose("bad-deploy").await;
    let updates = w.ecs.inner.updates();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].1.task_definition.as_deref(), Some("articles-api:41"));
    // applied entry carries before/after and what the sweeper needs
    let applied = w.entry(EntryKind::RemediationApplied).await;
    assert_eq!(applied.len(), 1);
    let d = &applied[0].detail().to_value();
    assert_eq!(d["before"]["task_definition"], "articles-api:42");
    assert_eq!(d["after"]["task_definition"], "articles-api:41");
    assert_eq!(d["before"]["desired"], 4);
    assert_eq!(d["after"]["desired"], 4);
    assert_eq!(d["verify_window_s"], 600);
    assert_eq!(d["verify_by"], "2026-03-14T14:46:00Z");
    assert!(applied[0]
        .event_id
        .ends_with("/remediate/bad-deploy/ecs-rollback/applied"));
    assert_eq!(w.entry(EntryKind::Mitigated).await.len(), 1);
    // the bus and the incident's topic are told
    let events = w.bus.events();
    assert_eq!(events.len(), 1);
    match Event::from_pipeline(&events[0]).unwrap() {
        Event::Applied(a) => {
            assert_eq!(
                (a.action.as_str(), a.target.as_str()),
                ("ecs-rollback", "prod/articles-api")
            );
        }
        other => panic!("{other:?}"),
    }
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Route::Severity(Severity::Sev2));
    assert_eq!(sent[0].1.attributes["kind"], "remediation-applied");
}

#[tokio::test]
async fn rollback_outside_its_window_is_refused_and_the_next_step_is_tried() {
    let w = World::with(
        Severity::Sev2,
        service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(12, 0))]),
    )
    .await;
    w.diagnose("bad-deploy").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-rollback", "refused"), ("ecs-scale-out", "applied")])
    );
    let refused = w.entry(EntryKind::RemediationRefused).await;
    assert!(
        refused[0].summary.contains("rollback-window"),
        "{}",
        refused[0].summary
    );
    assert_eq!(w.ecs.inner.updates()[0].1.desired, Some(8));
    let inc = w.incident().await;
    assert_eq!(
        inc.remediations[1].detail.split(';').next().unwrap(),
        "desiredCount 4 → 8 (step +4, max 20, ≤2x)"
    );
}

#[tokio::test]
async fn nothing_to_roll_back_to_falls_through_to_scale_out() {
    let w = World::new().await;
    // a fresh family with a single revision
    let mut s = service_state(vec![dep("fresh:1", "PRIMARY", "COMPLETED", t(14, 5))]);
    s.task_definition = "fresh:1".into();
    w.ecs.inner.add_service(s, &[]);
    w.diagnose("bad-deploy").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-rollback", "refused"), ("ecs-scale-out", "applied")])
    );
    assert!(w.incident().await.remediations[0]
        .detail
        .contains("nothing to roll back to"));
}

#[tokio::test]
async fn scale_out_at_its_limit_is_refused_and_restart_is_tried() {
    let w = World::new().await;
    let mut s = service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5))]);
    s.desired = 20;
    w.ecs.inner.add_service(s, &[]);
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "refused"), ("ecs-restart", "applied")])
    );
    assert!(w.ecs.inner.updates()[0].1.force_new_deployment);
}

#[tokio::test]
async fn restart_forces_a_new_deployment() {
    let w = World::new().await;
    w.diagnose("restart-only").await;
    let u = w.ecs.inner.updates();
    assert_eq!(u.len(), 1);
    assert_eq!(
        u[0].1,
        ServiceUpdate {
            task_definition: None,
            desired: None,
            force_new_deployment: true
        }
    );
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "applied")]));
}

#[tokio::test]
async fn an_invalid_step_is_a_refusal_not_a_panic() {
    let w = World::new().await;
    w.diagnose("stuck").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-delete", "refused"), ("ecs-restart", "applied")])
    );
    assert!(w.incident().await.remediations[0].detail.contains("ecs-delete"));
}

#[tokio::test]
async fn dry_run_is_the_default_and_records_exactly_what_would_be_done() {
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::default();
    let report = w.diagnose("bad-deploy").await;
    assert_eq!(w.attempts(), 0);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "dry-run")]));
    assert_eq!(
        report.decisions[0].detail,
        "dry-run: would update prod/articles-api: task definition articles-api:42 → articles-api:41 \
         (the previous ACTIVE revision; articles-api:42 deployed 2026-03-14T14:05:00Z, within 1h before the start at 2026-03-14T14:30:00Z)"
    );
    let inc = w.incident().await;
    assert_eq!((inc.status, inc.mitigated_at), (IncidentStatus::Open, None));
    assert!(w.bus.events().is_empty());
    assert_eq!(w.entry(EntryKind::RemediationDryRun).await.len(), 1);
}

#[tokio::test]
async fn mode_off_refuses_that_action_and_the_next_step_keeps_its_own_mode() {
    let mut w = World::new().await;
    w.settings.remediation.rules = vec![ModeRule {
        action: Some("ecs-rollback".into()),
        severity: None,
        mode: RemediationMode::Off,
    }];
    w.diagnose("bad-deploy").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-rollback", "refused"), ("ecs-scale-out", "applied")])
    );
    let inc = w.incident().await;
    assert_eq!(inc.remediations[0].mode, "off");
    assert!(inc.remediations[0].detail.contains("mode off"));
}

#[tokio::test]
async fn mode_off_everywhere_touches_nothing() {
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Off;
    w.diagnose("bad-deploy").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-rollback", "refused"), ("ecs-scale-out", "refused")])
    );
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn mode_follows_severity_rules() {
    let mut w = World::with(
        Severity::Sev1,
        service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5))]),
    )
    .await;
    w.settings.remediation.mode = RemediationMode::DryRun;
    w.settings.remediation.rules = vec![
        ModeRule {
            action: None,
            severity: Some(Severity::Sev1),
            mode: RemediationMode::Approve,
        },
        ModeRule {
            action: None,
            severity: Some(Severity::Sev2),
            mode: RemediationMode::Auto,
        },
    ];
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "awaiting-approval")]));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn a_service_not_allowlisted_is_refused_and_nothing_else_is_tried() {
    let mut w = World::new().await;
    w.settings.remediation.allow = vec![EcsService::new("prod", "other")];
    w.diagnose("bad-deploy").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "refused")]));
    assert_eq!(
        w.incident().await.remediations[0].detail,
        "refused: prod/articles-api is not allowlisted (not in remediation.allow and its ECS tag firebreak:remediate is not \"true\")"
    );
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn the_ecs_allow_tag_allows_a_service() {
    let mut w = World::new().await;
    w.settings.remediation.allow = vec![];
    let mut s = service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5))]);
    s.tags.insert("firebreak:remediate".into(), "true".into());
    w.ecs.inner.add_service(s, &[]);
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "applied")]));
}

#[tokio::test]
async fn an_incident_without_an_ecs_service_is_refused() {
    let w = World::new().await;
    let mut inc = w.incident().await;
    inc.ecs = None;
    inc.version += 1;
    w.store.save(&inc, 1, PointerChange::Keep, &[]).await.unwrap();
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    assert!(w.incident().await.remediations[0]
        .detail
        .contains("names no ECS service"));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn a_recovered_alarm_is_never_remediated() {
    let w = World::new().await;
    w.alarms.set("articles-api-5xx", AlarmState::Ok);
    w.diagnose("bad-deploy").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "refused")]));
    assert!(w.incident().await.remediations[0]
        .detail
        .contains("articles-api-5xx is OK"));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn an_alarm_cloudwatch_does_not_report_is_not_firing_whatever_the_incident_recorded() {
    // Unknown to CloudWatch but ALARM on the incident (a made-up alarm): refused, and why.
    let w = World::new().await;
    w.alarms.set("articles-api-5xx", AlarmState::Alarm);
    let w2 = World::new().await;
    let fresh = InMemoryAlarmStatus::new();
    let uc = w2.uc_reading(&fresh);
    uc.on_diagnosis(&diag("restart-only")).await.unwrap();
    assert_eq!(w2.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    let inc = w2.incident().await;
    assert!(
        inc.remediations[0]
            .detail
            .contains("CloudWatch does not know articles-api-5xx"),
        "{}",
        inc.remediations[0].detail
    );
    assert!(w2.ecs.inner.updates().is_empty(), "nothing was changed");
    // Unknown to CloudWatch and OK on the incident: refused too.
    let mut inc = w.incident().await;
    inc.alarms.get_mut("articles-api-5xx").unwrap().state = AlarmState::Ok;
    inc.version += 1;
    w.store.save(&inc, 1, PointerChange::Keep, &[]).await.unwrap();
    let uc = w.uc_reading(&fresh);
    uc.on_diagnosis(&diag("restart-only")).await.unwrap();
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
}

#[tokio::test]
async fn the_alarm_is_rechecked_just_before_acting() {
    let w = World::new().await;
    let recovering = Recovering {
        calls: AtomicUsize::new(0),
    };
    let uc = w.uc_reading(&recovering);
    uc.on_diagnosis(&diag("restart-only")).await.unwrap();
    assert_eq!(recovering.calls.load(Ordering::SeqCst), 2);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    assert!(w.incident().await.remediations[0]
        .detail
        .contains("never remediate a recovered alarm"));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn a_resolved_incident_is_refused() {
    let w = World::new().await;
    let mut inc = w.incident().await;
    inc.status = IncidentStatus::Resolved;
    inc.resolved_at = Some(t(14, 36));
    inc.version += 1;
    w.store.save(&inc, 1, PointerChange::Release, &[]).await.unwrap();
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    assert!(w.incident().await.remediations[0].detail.contains("resolved"));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn no_scale_or_restart_while_a_deployment_is_in_progress() {
    let w = World::with(
        Severity::Sev2,
        service_state(vec![
            dep("articles-api:42", "PRIMARY", "IN_PROGRESS", t(14, 5)),
            dep("articles-api:41", "ACTIVE", "COMPLETED", t(10, 0)),
        ]),
    )
    .await;
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "refused"), ("ecs-restart", "refused")])
    );
    for r in w.incident().await.remediations {
        assert!(
            r.detail
                .contains("deployment of prod/articles-api is in progress"),
            "{}",
            r.detail
        );
    }
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn at_most_n_actions_per_incident() {
    let mut w = World::new().await;
    w.settings.remediation.max_actions_per_incident = 1;
    w.diagnose("restart-only").await;
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-restart", "applied"), ("ecs-scale-out", "refused")])
    );
    assert!(w.incident().await.remediations[1]
        .detail
        .contains("1 of at most 1"));
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn cooldown_per_service_and_action_refuses_a_second_run() {
    let w = World::new().await;
    let taken = w
        .store
        .claim(
            "cooldown#prod/articles-api#ecs-restart",
            "another incident",
            t(14, 50),
            t(14, 30),
        )
        .await
        .unwrap();
    assert!(taken);
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    assert!(w.incident().await.remediations[0].detail.contains("cooldown"));
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn an_ecs_error_is_recorded_as_failed_and_never_retried() {
    let w = World::new().await;
    w.ecs.inner.fail_updates(
        &svc(),
        PortError::new("ECS UpdateService", "User is not authorized", false)
            .with_code("AccessDeniedException"),
    );
    let report = w.diagnose("bad-deploy").await;
    assert_eq!(report.decisions.len(), 1);
    assert_eq!(
        w.attempts(),
        1,
        "one attempt, and no fall-through to the next step"
    );
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "failed")]));
    let failed = w.entry(EntryKind::RemediationFailed).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].detail().to_value()["error"]["code"],
        "AccessDeniedException"
    );
    assert!(failed[0].summary.contains("User is not authorized"));
    let inc = w.incident().await;
    assert_eq!((inc.status, inc.mitigated_at), (IncidentStatus::Open, None));
    assert_eq!(w.notifier.sent()[0].1.attributes["kind"], "remediation-failed");
    assert!(w.bus.events().is_empty());
    // redelivery and a later diagnosis of the same cause do not call ECS again
    let again = w.diagnose("bad-deploy").await;
    assert_eq!(again.skipped.as_deref(), Some("already decided"));
    w.clock.advance(chrono::Duration::minutes(2));
    w.diagnose("bad-deploy").await;
    assert_eq!(w.attempts(), 1);
    assert_eq!(w.outcomes().await.len(), 1);
}

#[tokio::test]
async fn a_redelivered_diagnosis_acts_once() {
    let w = World::new().await;
    let first = w.diagnose("bad-deploy").await;
    let timeline = w.store.timeline(&inc_id()).await.unwrap();
    let second = w.diagnose("bad-deploy").await;
    assert_eq!(w.attempts(), 1);
    assert_eq!(second.skipped.as_deref(), Some("already decided"));
    assert_eq!(second.decisions, first.decisions);
    assert_eq!(w.store.timeline(&inc_id()).await.unwrap(), timeline);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
    assert_eq!(w.bus.events().len(), 1);
}

#[tokio::test]
async fn a_redelivery_heals_records_missing_from_the_incident() {
    let w = World::new().await;
    w.diagnose("restart-only").await;
    // as if the incident save had been lost after the timeline was written
    let mut inc = w.incident().await;
    inc.remediations.clear();
    inc.status = IncidentStatus::Open;
    inc.mitigated_at = None;
    let v = inc.version;
    inc.version += 1;
    w.store.save(&inc, v, PointerChange::Keep, &[]).await.unwrap();
    w.diagnose("restart-only").await;
    let inc = w.incident().await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "applied")]));
    assert_eq!(inc.status, IncidentStatus::Mitigated);
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn two_concurrent_invocations_make_exactly_one_ecs_update() {
    let mut w = World::new().await;
    w.ecs.yield_first = true;
    let uc = w.uc();
    let d = diag("bad-deploy");
    let (a, b) = futures::join!(uc.on_diagnosis(&d), uc.on_diagnosis(&d));
    // the loser finds the winner's intent without a result yet: in flight, try again later
    let (won, lost) = match (a, b) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        other => panic!("one invocation acts, the other is told to retry: {other:?}"),
    };
    assert!(won.skipped.is_none(), "{won:?}");
    assert!(
        lost.is_retryable() && lost.to_string().contains("in flight"),
        "{lost}"
    );
    assert_eq!(w.attempts(), 1);
    assert_eq!(w.ecs.inner.updates().len(), 1);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
    // its retry, later: already decided, nothing more
    w.clock.advance(chrono::Duration::seconds(RECONCILE_AFTER_S + 60));
    let again = w.uc().on_diagnosis(&d).await.unwrap();
    assert!(again.skipped.is_some(), "{again:?}");
    assert_eq!(w.ecs.inner.updates().len(), 1);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
}

#[tokio::test]
async fn approve_flow_from_request_to_applied() {
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Approve;
    let report = w.diagnose("overload").await;
    assert_eq!(report.decisions[0].outcome, "awaiting-approval");
    assert_eq!(w.attempts(), 0);
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Route::Severity(Severity::Sev2));
    assert!(
        sent[0]
            .1
            .body
            .contains("firebreak approve INC-20260314-143500-0001 ecs-scale-out"),
        "{}",
        sent[0].1.body
    );
    assert!(report.decisions[0].detail.contains("desiredCount 4 → 8"));
    let timeline = w.store.timeline(&inc_id()).await.unwrap();
    let ApprovalState::Pending(p) = approval_state(&inc_id(), &timeline, "ecs-scale-out") else {
        panic!("not pending");
    };
    assert_eq!(p.cause, "overload");
    assert_eq!(
        approval_state(&inc_id(), &timeline, "ecs-restart"),
        ApprovalState::NotRequested
    );

    w.clock.advance(chrono::Duration::minutes(3));
    let approval = RemediationApproved {
        incident_id: inc_id(),
        action: "ecs-scale-out".into(),
        approved_by: approver("alice"),
        cycle: 0,
    };
    let done = w.uc().on_approval(&approval, &approvers()).await.unwrap();
    assert_eq!(done.decisions.len(), 1);
    assert_eq!(done.decisions[0].outcome, "applied");
    assert_eq!(done.decisions[0].mode, "approve");
    assert_eq!(w.ecs.inner.updates()[0].1.desired, Some(8));
    assert_eq!(
        w.outcomes().await,
        pairs(&[
            ("ecs-scale-out", "awaiting-approval"),
            ("ecs-scale-out", "applied")
        ])
    );
    let inc = w.incident().await;
    assert_eq!(
        (inc.status, inc.mitigated_at),
        (IncidentStatus::Mitigated, Some(t(14, 39)))
    );
    assert_eq!(w.bus.events().len(), 1);
    let timeline = w.store.timeline(&inc_id()).await.unwrap();
    assert!(matches!(
        approval_state(&inc_id(), &timeline, "ecs-scale-out"),
        ApprovalState::Approved(_)
    ));
    // the approval redelivered does nothing
    let again = w.uc().on_approval(&approval, &approvers()).await.unwrap();
    assert_eq!(again.skipped.as_deref(), Some("already decided"));
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn an_approval_reruns_the_guardrails() {
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Approve;
    w.diagnose("restart-only").await;
    w.alarms.set("articles-api-5xx", AlarmState::Ok);
    let done = w
        .uc()
        .on_approval(
            &RemediationApproved {
                incident_id: inc_id(),
                action: "ecs-restart".into(),
                approved_by: approver("bob"),
                cycle: 0,
            },
            &approvers(),
        )
        .await
        .unwrap();
    assert_eq!(done.decisions[0].outcome, "refused");
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn an_approval_for_an_unknown_incident_is_invalid() {
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Approve;
    w.diagnose("restart-only").await;
    let incident = "INC-20260101-000000-ffff";
    let e = w
        .uc()
        .on_approval(
            &RemediationApproved {
                incident_id: IncidentId(incident.into()),
                action: "ecs-restart".into(),
                approved_by: approver("eve"),
                cycle: 0,
            },
            &approvers(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e}");
    assert!(e.to_string().contains(incident), "{e}");
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn an_unknown_incident_is_invalid_and_an_unknown_runbook_is_recorded() {
    let w = World::new().await;
    let mut d = diag("bad-deploy");
    d.incident_id = IncidentId("INC-20260101-000000-ffff".into());
    assert!(matches!(
        w.uc().on_diagnosis(&d).await,
        Err(Error::Invalid { .. })
    ));
    let mut d = diag("bad-deploy");
    d.runbook = Some("nope".into());
    let r = w.uc().on_diagnosis(&d).await.unwrap();
    assert!(r.skipped.unwrap().contains("runbook nope is not loaded"));
    assert_eq!(w.entry(EntryKind::RemediationRefused).await.len(), 1);
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn a_severity_tag_cannot_make_an_action_automatic() {
    // paged SEV1 by the alarm's severity tag; the policy's own rules classified SEV2
    let mut w = World::with(
        Severity::Sev1,
        service_state(vec![dep("articles-api:42", "PRIMARY", "COMPLETED", t(14, 5))]),
    )
    .await;
    let mut inc = w.incident().await;
    inc.policy_severity = Some(Severity::Sev2);
    inc.version += 1;
    w.store.save(&inc, 1, PointerChange::Keep, &[]).await.unwrap();
    w.settings.remediation.mode = RemediationMode::DryRun;
    w.settings.remediation.rules = vec![ModeRule {
        action: None,
        severity: Some(Severity::Sev1),
        mode: RemediationMode::Auto,
    }];
    w.diagnose("restart-only").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "dry-run")]));
    assert_eq!(w.attempts(), 0);
    let requested = w.entry(EntryKind::RemediationRequested).await;
    assert!(
        requested[0].summary.contains("(mode dry-run)"),
        "{}",
        requested[0].summary
    );
}

/// Two alarms on the incident, naming articles-api and payments-api, both in ALARM and both
/// services allowlisted.
async fn disagreeing(w: &World) {
    let mut inc = w.incident().await;
    inc.alarm_targets.insert("articles-api-5xx".into(), svc());
    inc.alarms.insert(
        "checkout-queue-depth".into(),
        AttachedAlarm {
            state: AlarmState::Alarm,
            changed_at: t(14, 33),
            reason: "threshold crossed".into(),
        },
    );
    inc.alarm_targets.insert(
        "checkout-queue-depth".into(),
        EcsService::new("prod", "payments-api"),
    );
    inc.version += 1;
    w.store.save(&inc, 1, PointerChange::Keep, &[]).await.unwrap();
    w.alarms.set("checkout-queue-depth", AlarmState::Alarm);
}

#[tokio::test]
async fn alarms_that_disagree_about_the_target_get_no_remediation() {
    let mut w = World::new().await;
    w.settings
        .remediation
        .allow
        .push(EcsService::new("prod", "payments-api"));
    disagreeing(&w).await;
    let report = w.diagnose("overload").await;
    // refused once, and no later step is tried: the reason applies to the whole incident
    assert_eq!(report.decisions.len(), 1, "{report:?}");
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "refused")]));
    assert_eq!(w.attempts(), 0);
    let refused = w.entry(EntryKind::RemediationRefused).await;
    assert_eq!(refused.len(), 1);
    let s = &refused[0].summary;
    assert!(s.contains("targets-disagree"), "{s}");
    assert!(s.contains("articles-api-5xx names prod/articles-api"), "{s}");
    assert!(s.contains("checkout-queue-depth names prod/payments-api"), "{s}");
}

/// CloudWatch as seen by the first read, while triage attaches an alarm naming another service
/// (the incident is saved underneath the decision).
struct AttachingMeanwhile<'a> {
    store: &'a InMemoryIncidentStore,
    alarms: &'a InMemoryAlarmStatus,
    calls: AtomicUsize,
}

impl AlarmStatus for AttachingMeanwhile<'_> {
    async fn states(&self, names: &[String]) -> Result<BTreeMap<String, AlarmState>, PortError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut inc = self.store.get(&inc_id()).await.unwrap().unwrap();
            let read = inc.version;
            inc.alarm_targets.insert(
                "checkout-queue-depth".into(),
                EcsService::new("prod", "payments-api"),
            );
            inc.version += 1;
            self.store
                .save(&inc, read, PointerChange::Keep, &[])
                .await
                .unwrap();
        }
        self.alarms.states(names).await
    }
}

#[tokio::test]
async fn an_alarm_naming_another_target_meanwhile_is_caught_by_the_last_recheck() {
    let w = World::new().await;
    let alarms = AttachingMeanwhile {
        store: &w.store,
        alarms: &w.alarms,
        calls: AtomicUsize::new(0),
    };
    let uc = w.uc_reading(&alarms);
    uc.on_diagnosis(&diag("restart-only")).await.unwrap();
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "refused")]));
    assert!(w.incident().await.remediations[0]
        .detail
        .contains("checkout-queue-depth names prod/payments-api"));
    assert_eq!(w.attempts(), 0);
}

// Authenticated approvals (issue #11): who approved comes from the verified caller identity and
// only the approver role's sessions approve; everything else is refused, recorded, and changes
// nothing.

const APPROVER_ROLE: &str = "arn:aws:iam::123456789012:role/FirebreakApproverRole";

/// A session of the approver role, as STS names it.
fn approver(session: &str) -> String {
    format!("arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/{session}")
}

fn approvers() -> Approvers {
    Approvers::role(APPROVER_ROLE).unwrap()
}

fn approval(action: &str, by: &str, cycle: u32) -> RemediationApproved {
    RemediationApproved {
        incident_id: inc_id(),
        action: action.into(),
        approved_by: by.into(),
        cycle,
    }
}

impl World {
    /// A world in approve mode with ecs-scale-out awaiting approval.
    async fn awaiting_scale_out() -> World {
        let mut w = World::new().await;
        w.settings.remediation.mode = RemediationMode::Approve;
        let r = w.diagnose("overload").await;
        assert_eq!(r.decisions[0].outcome, "awaiting-approval");
        w.clock.advance(chrono::Duration::minutes(3));
        w
    }

    async fn change(&self, f: impl FnOnce(&mut Incident)) {
        let mut i = self.incident().await;
        let v = i.version;
        f(&mut i);
        i.version = v + 1;
        self.store.save(&i, v, PointerChange::Keep, &[]).await.unwrap();
    }

    /// The reasons of the `refused` entries, in order.
    async fn refusals(&self) -> Vec<String> {
        self.entry(EntryKind::Refused)
            .await
            .iter()
            .map(|e| match e.detail() {
                Detail::Refused(r) => {
                    assert_eq!(r.what, "Remediation Approved");
                    r.reason.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Asserts the refusal changed nothing: no ECS call, the request still pending, the
    /// incident's remediations only the request.
    async fn assert_unchanged(&self) {
        assert_eq!(self.attempts(), 0);
        assert_eq!(
            self.outcomes().await,
            pairs(&[("ecs-scale-out", "awaiting-approval")])
        );
        assert!(self.bus.events().is_empty());
        let timeline = self.store.timeline(&inc_id()).await.unwrap();
        assert!(matches!(
            approval_state(&inc_id(), &timeline, "ecs-scale-out"),
            ApprovalState::Pending(_)
        ));
    }
}

fn refused(report: &RemediationReport) -> &str {
    report
        .skipped
        .as_deref()
        .and_then(|s| s.strip_prefix("refused: "))
        .unwrap_or_else(|| panic!("not refused: {report:?}"))
}

#[tokio::test]
async fn an_approval_by_the_approver_role_is_carried_out_and_recorded_with_its_arn() {
    let w = World::awaiting_scale_out().await;
    let by = approver("alice");
    let done = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &by, 0), &approvers())
        .await
        .unwrap();
    assert_eq!(done.decisions[0].outcome, "applied");
    assert_eq!(w.attempts(), 1);
    let approved: Vec<_> = w
        .entry(EntryKind::RemediationRequested)
        .await
        .into_iter()
        .filter(|e| e.event_id.ends_with("/approved"))
        .collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].summary, format!("ecs-scale-out approved by {by}"));
    assert!(
        matches!(approved[0].detail(), Detail::RemediationRequested(r) if r.approved_by.as_deref() == Some(by.as_str()))
    );
    assert!(w.refusals().await.is_empty());
}

#[tokio::test]
async fn an_approval_by_anyone_but_the_approver_role_is_refused_recorded_and_changes_nothing() {
    let w = World::awaiting_scale_out().await;
    for by in [
        "alice",
        "",
        "arn:aws:sts::123456789012:assumed-role/AdminRole/alice",
        "arn:aws:sts::210987654321:assumed-role/FirebreakApproverRole/alice",
        "arn:aws-cn:sts::123456789012:assumed-role/FirebreakApproverRole/alice",
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:role/FirebreakApproverRole",
        "arn:aws:iam::123456789012:root",
    ] {
        let r = w
            .uc()
            .on_approval(&approval("ecs-scale-out", by, 0), &approvers())
            .await
            .unwrap();
        let why = refused(&r);
        assert!(why.contains("approver"), "{by}: {why}");
        assert!(r.decisions.is_empty(), "{by}");
    }
    let reasons = w.refusals().await;
    assert_eq!(reasons.len(), 8, "{reasons:#?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("role AdminRole is not FirebreakApproverRole")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("account 210987654321 is not 123456789012")),
        "{reasons:#?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("partition aws-cn is not aws")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("\"alice\" is not an IAM or STS ARN")),
        "{reasons:#?}"
    );
    w.assert_unchanged().await;
    // the approver role can still approve afterwards
    let done = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 0), &approvers())
        .await
        .unwrap();
    assert_eq!(done.decisions[0].outcome, "applied");
}

#[tokio::test]
async fn a_refused_approval_delivered_again_is_recorded_once() {
    let w = World::awaiting_scale_out().await;
    let forged = approval("ecs-scale-out", "arn:aws:iam::123456789012:user/mallory", 0);
    for _ in 0..2 {
        w.uc().on_approval(&forged, &approvers()).await.unwrap();
    }
    assert_eq!(w.refusals().await.len(), 1);
    w.assert_unchanged().await;
}

#[tokio::test]
async fn without_an_approver_role_any_well_formed_arn_approves_but_free_text_does_not() {
    let w = World::awaiting_scale_out().await;
    let r = w
        .uc()
        .on_approval(
            &approval("ecs-scale-out", "oncall@example.com", 0),
            &Approvers::any(),
        )
        .await
        .unwrap();
    assert!(refused(&r).contains("is not an IAM or STS ARN"), "{r:?}");
    w.assert_unchanged().await;
    let done = w
        .uc()
        .on_approval(
            &approval("ecs-scale-out", "arn:aws:iam::123456789012:user/alice", 0),
            &Approvers::any(),
        )
        .await
        .unwrap();
    assert_eq!(done.decisions[0].outcome, "applied");
}

#[tokio::test]
async fn an_approval_for_another_cycle_of_the_incident_is_refused() {
    let w = World::awaiting_scale_out().await;
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 1), &approvers())
        .await
        .unwrap();
    assert!(
        refused(&r).contains("cycle 1 of incident INC-20260314-143500-0001, which is in cycle 0"),
        "{r:?}"
    );
    w.assert_unchanged().await;
}

#[tokio::test]
async fn after_the_incident_reopens_an_approval_of_the_earlier_cycle_is_refused() {
    let w = World::awaiting_scale_out().await;
    let at = w.clock.now();
    w.change(|i| {
        i.resolve(at);
        i.reopen(at + chrono::Duration::minutes(1));
    })
    .await;
    w.clock.advance(chrono::Duration::minutes(2));
    // given for cycle 0 (before the reopen): a stale approval
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 0), &approvers())
        .await
        .unwrap();
    assert!(refused(&r).contains("which is in cycle 1"), "{r:?}");
    // given for cycle 1: the request it approves was made in cycle 0
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 1), &approvers())
        .await
        .unwrap();
    assert!(refused(&r).contains("before it reopened"), "{r:?}");
    assert_eq!(w.refusals().await.len(), 2);
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn an_approval_for_an_action_not_awaiting_approval_or_unknown_is_refused_and_recorded() {
    let w = World::awaiting_scale_out().await;
    for (action, needle) in [
        (
            "ecs-rollback",
            "ecs-rollback is not awaiting approval on INC-20260314-143500-0001",
        ),
        ("ecs-restart", "ecs-restart is not awaiting approval"),
        ("ecs-delete", "\"ecs-delete\" is not a known action"),
    ] {
        let r = w
            .uc()
            .on_approval(&approval(action, &approver("alice"), 0), &approvers())
            .await
            .unwrap();
        assert!(refused(&r).contains(needle), "{action}: {r:?}");
    }
    assert_eq!(w.refusals().await.len(), 3);
    w.assert_unchanged().await;
}

#[tokio::test]
async fn an_approval_for_a_resolved_incident_is_refused() {
    let w = World::awaiting_scale_out().await;
    let at = w.clock.now();
    w.change(|i| i.resolve(at)).await;
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 0), &approvers())
        .await
        .unwrap();
    assert!(refused(&r).contains("is resolved"), "{r:?}");
    assert_eq!(w.attempts(), 0);
    assert_eq!(w.refusals().await.len(), 1);
    assert_eq!(w.incident().await.status, IncidentStatus::Resolved);
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "awaiting-approval")])
    );
}

#[tokio::test]
async fn a_second_approval_of_the_same_request_is_refused_as_already_approved() {
    let w = World::awaiting_scale_out().await;
    let first = approval("ecs-scale-out", &approver("alice"), 0);
    w.uc().on_approval(&first, &approvers()).await.unwrap();
    assert_eq!(w.attempts(), 1);
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("bob"), 0), &approvers())
        .await
        .unwrap();
    assert!(
        refused(&r).contains(&format!("already approved (by {})", approver("alice"))),
        "{r:?}"
    );
    // the first approval delivered again is a redelivery, not a refusal
    let again = w.uc().on_approval(&first, &approvers()).await.unwrap();
    assert_eq!(again.skipped.as_deref(), Some("already decided"));
    assert_eq!(w.attempts(), 1);
    assert_eq!(w.refusals().await.len(), 1);
    assert_eq!(w.bus.events().len(), 1, "one Remediation Applied");
}

#[tokio::test]
async fn request_approval_puts_the_verified_arn_and_the_cycle_and_remediate_carries_it_out() {
    let w = World::awaiting_scale_out().await;
    let identity = InMemoryCallerIdentity::new(approver("alice"));
    let out = request_approval(&w.store, &w.bus, &identity, &inc_id(), "ecs-scale-out")
        .await
        .unwrap();
    let ApproveOutcome::Approved {
        approval,
        service,
        plan,
    } = out
    else {
        panic!("{out:?}");
    };
    assert_eq!(approval.approved_by, approver("alice"));
    assert_eq!(approval.cycle, 0);
    assert_eq!(service, "prod/articles-api");
    assert!(plan.contains("desiredCount 4 → 8"), "{plan}");
    let put = w.bus.drain();
    assert_eq!(put.len(), 1);
    let Event::Approved(a) = Event::from_pipeline(&put[0]).unwrap() else {
        panic!("{put:?}");
    };
    assert_eq!(a, approval);
    let done = w.uc().on_approval(&a, &approvers()).await.unwrap();
    assert_eq!(done.decisions[0].outcome, "applied");
    // approved now: nothing more to approve
    let again = request_approval(&w.store, &w.bus, &identity, &inc_id(), "ecs-scale-out")
        .await
        .unwrap();
    assert!(
        matches!(&again, ApproveOutcome::NothingToApprove(m) if m.contains("already approved")),
        "{again:?}"
    );
    assert_eq!(w.bus.events().len(), 1, "only Remediation Applied");
}

#[tokio::test]
async fn request_approval_gives_the_cycle_of_a_reopened_incident() {
    let w = World::new().await;
    let at = w.clock.now();
    w.change(|i| {
        i.resolve(at);
        i.reopen(at);
    })
    .await;
    let mut w = w;
    w.settings.remediation.mode = RemediationMode::Approve;
    w.clock.advance(chrono::Duration::minutes(1));
    w.diagnose("overload").await;
    let identity = InMemoryCallerIdentity::new(approver("alice"));
    let out = request_approval(&w.store, &w.bus, &identity, &inc_id(), "ecs-scale-out")
        .await
        .unwrap();
    assert!(
        matches!(&out, ApproveOutcome::Approved { approval, .. } if approval.cycle == 1),
        "{out:?}"
    );
}

#[tokio::test]
async fn request_approval_puts_nothing_when_nothing_awaits_or_the_caller_is_unverified() {
    let w = World::awaiting_scale_out().await;
    let alice = InMemoryCallerIdentity::new(approver("alice"));
    for action in ["ecs-rollback", "ecs-restart"] {
        let out = request_approval(&w.store, &w.bus, &alice, &inc_id(), action)
            .await
            .unwrap();
        assert!(
            matches!(&out, ApproveOutcome::NothingToApprove(m) if m.contains("is not awaiting approval")),
            "{out:?}"
        );
    }
    for (action, incident, needle) in [
        ("ecs-delete", inc_id(), "ecs-delete"),
        (
            "ecs-scale-out",
            IncidentId("INC-20260101-000000-ffff".into()),
            "no incident",
        ),
    ] {
        let e = request_approval(&w.store, &w.bus, &alice, &incident, action)
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Invalid { .. }) && e.to_string().contains(needle),
            "{e}"
        );
    }
    let nobody = InMemoryCallerIdentity::unknown();
    let e = request_approval(&w.store, &w.bus, &nobody, &inc_id(), "ecs-scale-out")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Port(_)), "{e}");
    let typed = InMemoryCallerIdentity::new("alice");
    let e = request_approval(&w.store, &w.bus, &typed, &inc_id(), "ecs-scale-out")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("caller identity"), "{e}");
    // resolved: nothing to approve
    let at = w.clock.now();
    w.change(|i| i.resolve(at)).await;
    let out = request_approval(&w.store, &w.bus, &alice, &inc_id(), "ecs-scale-out")
        .await
        .unwrap();
    assert!(
        matches!(&out, ApproveOutcome::NothingToApprove(m) if m.contains("is resolved")),
        "{out:?}"
    );
    assert!(w.bus.events().is_empty());
    assert!(w.refusals().await.is_empty(), "the CLI's checks record nothing");
}

// Write-ahead actions (issue #12): the intent is on the timeline before ECS is asked; a delivery
// that finds an intent without a result records what ECS shows, and never asks ECS again.

#[tokio::test]
async fn an_action_whose_result_was_not_recorded_is_reconciled_from_ecs_not_repeated() {
    let w = World::new().await;
    // recording the result fails (or its response is lost)
    let store = FaultyStore::new(&w.store).lose_next_append_of("/applied");
    let uc = Remediate {
        ports: Wired::new()
            .store(&store)
            .ecs(&w.ecs)
            .alarms(&w.alarms)
            .notifier(&w.notifier)
            .bus(&w.bus)
            .clock(&w.clock),
        runbooks: &w.runbooks,
        settings: &w.settings,
    };
    // ECS rolls back, then recording the result fails: the delivery fails (and is retried)
    let e = uc.on_diagnosis(&diag("bad-deploy")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(w.ecs.inner.updates().len(), 1);
    assert_eq!(
        w.entry(EntryKind::RemediationStarted).await.len(),
        1,
        "the intent was written first"
    );
    assert!(w.entry(EntryKind::RemediationApplied).await.is_empty());
    // Lambda's retry, past the in-flight window: the rollback is recorded from what ECS shows
    w.clock.advance(chrono::Duration::seconds(RECONCILE_AFTER_S + 60));
    let r = w.uc().on_diagnosis(&diag("bad-deploy")).await.unwrap();
    assert!(r.skipped.is_some(), "{r:?}");
    assert_eq!(w.ecs.inner.updates().len(), 1, "never asked twice");
    let applied = w.entry(EntryKind::RemediationApplied).await;
    assert_eq!(applied.len(), 1);
    assert!(
        applied[0].summary.contains("reconciled from ECS"),
        "{}",
        applied[0].summary
    );
    let inc = w.incident().await;
    assert_eq!(inc.status, IncidentStatus::Mitigated);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
    // and what the interrupted delivery never told is told once
    assert!(w
        .bus
        .events()
        .iter()
        .any(|e| e.detail_type == "Remediation Applied"));
    // a further redelivery changes nothing
    w.uc().on_diagnosis(&diag("bad-deploy")).await.unwrap();
    assert_eq!(w.entry(EntryKind::RemediationApplied).await.len(), 1);
    assert_eq!(w.ecs.inner.updates().len(), 1);
}

#[tokio::test]
async fn an_intent_ecs_never_carried_out_is_asked_again_once_and_recorded() {
    let w = World::new().await;
    // the invocation stopped right after writing its intent: put one there by hand
    let d = diag("bad-deploy");
    let id = inc_id();
    let first = w.uc().on_diagnosis(&d).await.unwrap();
    assert_eq!(w.ecs.inner.updates().len(), 1);
    // a second intent for the same decision with no result, as a crash would leave it, on a fresh world
    let w2 = World::new().await;
    let intent = w
        .store
        .timeline(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind() == EntryKind::RemediationRequested || e.kind() == EntryKind::RemediationStarted)
        .collect::<Vec<_>>();
    assert_eq!(intent.len(), 2, "{first:?}");
    w2.store.append(&id, &intent).await.unwrap();
    w2.clock
        .advance(chrono::Duration::seconds(RECONCILE_AFTER_S + 60));
    // ECS does not show the change: the call never reached it, so the decision is made again
    let r = w2.uc().on_diagnosis(&d).await.unwrap();
    assert_eq!(r.skipped, None, "{r:?}");
    assert_eq!(w2.ecs.inner.updates().len(), 1, "asked once more");
    assert_eq!(w2.outcomes().await, pairs(&[("ecs-rollback", "applied")]));
    let ids = w2.remediation_ids().await;
    for phase in [
        "/ecs-rollback/interrupted",
        "/ecs-rollback/started-2",
        "/ecs-rollback/applied",
    ] {
        assert!(ids.iter().any(|i| i.ends_with(phase)), "{phase}: {ids:?}");
    }
    // and a redelivery now is a redelivery
    let again = w2.uc().on_diagnosis(&d).await.unwrap();
    assert_eq!(again.skipped.as_deref(), Some("already decided"));
    assert_eq!(w2.ecs.inner.updates().len(), 1);
}

#[tokio::test]
async fn an_ecs_call_that_times_out_every_try_is_reconciled_and_ends_failed_after_its_tries() {
    let w = World::new().await;
    w.ecs.inner.fail_updates(
        &svc(),
        PortError::new("ECS UpdateService", "timed out", true).with_code("RequestTimeout"),
    );
    let d = diag("restart-only");
    for attempt in 1..=ECS_ATTEMPTS {
        let e = w.uc().on_diagnosis(&d).await.unwrap_err();
        assert!(e.is_retryable(), "try {attempt}: {e}");
        assert!(w.entry(EntryKind::RemediationFailed).await.is_empty());
        // Lambda's retry after the in-flight window: ECS shows nothing, so try again
        w.clock.advance(chrono::Duration::seconds(RECONCILE_AFTER_S + 60));
    }
    let r = w.uc().on_diagnosis(&d).await.unwrap();
    assert_eq!(r.skipped.as_deref(), Some("already decided"), "{r:?}");
    assert_eq!(
        w.attempts(),
        ECS_ATTEMPTS as usize,
        "one call per try, never more"
    );
    let failed = w.entry(EntryKind::RemediationFailed).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(w.outcomes().await, pairs(&[("ecs-restart", "failed")]));
    assert!(
        w.incident().await.remediations[0]
            .detail
            .contains("after 3 tries"),
        "{:?}",
        w.incident().await.remediations
    );
}

impl World {
    /// The use-case over this world with `store` in front of its store.
    fn uc_over<'a, S: IncidentStore>(&'a self, store: &'a S) -> Remediate<'a, impl RemediatePorts + 'a> {
        Remediate {
            ports: Wired::new()
                .store(store)
                .ecs(&self.ecs)
                .alarms(&self.alarms)
                .notifier(&self.notifier)
                .bus(&self.bus)
                .clock(&self.clock),
            runbooks: &self.runbooks,
            settings: &self.settings,
        }
    }

    /// The use-case over this world with `ecs` for ECS.
    fn uc_on<'a, E: ServiceControl>(&'a self, ecs: &'a E) -> Remediate<'a, impl RemediatePorts + 'a> {
        Remediate {
            ports: Wired::new()
                .store(&self.store)
                .ecs(ecs)
                .alarms(&self.alarms)
                .notifier(&self.notifier)
                .bus(&self.bus)
                .clock(&self.clock),
            runbooks: &self.runbooks,
            settings: &self.settings,
        }
    }

    /// The event ids of the remediation entries.
    async fn remediation_ids(&self) -> Vec<String> {
        self.store
            .timeline(&inc_id())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_id)
            .filter(|id| id.contains("/remediate/"))
            .collect()
    }
}

#[tokio::test]
async fn a_throttled_re_read_just_before_acting_is_retried_not_refused() {
    let w = World::new().await;
    // the first read passes; the re-read just before the ECS call is throttled
    w.alarms.throttle_after(1, 1);
    let e = w.uc().on_diagnosis(&diag("overload")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(w.attempts(), 0);
    assert!(
        w.entry(EntryKind::RemediationRefused).await.is_empty(),
        "a throttled read is not a refusal ('alarm-recovered')"
    );
    // Lambda's retry resumes the decision: the lease taken is its own, so no false cooldown
    let r = w.diagnose("overload").await;
    assert_eq!(r.skipped, None, "{r:?}");
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "applied")]));
    assert_eq!(w.attempts(), 1);
    // and a later redelivery is a redelivery
    let again = w.diagnose("overload").await;
    assert_eq!(again.skipped.as_deref(), Some("already decided"));
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn a_lost_lease_response_is_not_a_false_cooldown() {
    let w = World::new().await;
    let store = FaultyStore::new(&w.store).lose_next_claim_responses(1);
    let e = w
        .uc_over(&store)
        .on_diagnosis(&diag("overload"))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(w.attempts(), 0);
    // the retry finds the lease it took itself, not someone else's cooldown
    let r = w.uc_over(&store).on_diagnosis(&diag("overload")).await.unwrap();
    assert_eq!(r.skipped, None, "{r:?}");
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "applied")]));
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn a_reopened_incident_gets_its_own_decision_in_its_new_cycle() {
    let w = World::new().await;
    let first = w.diagnose("overload").await;
    assert_eq!(first.decisions[0].outcome, "applied");
    let at = w.clock.now();
    w.change(|i| {
        i.resolve(at + chrono::Duration::minutes(5));
        i.reopen(at + chrono::Duration::minutes(20));
    })
    .await;
    // past the cooldown: cycle 1 decides, and acts, again
    w.clock
        .advance(chrono::Duration::seconds(w.settings.remediation.cooldown_s + 60));
    let second = w.diagnose("overload").await;
    assert_eq!(second.skipped, None, "{second:?}");
    assert_eq!(second.decisions[0].outcome, "applied", "{second:?}");
    assert_eq!(w.attempts(), 2);
    let ids = w.remediation_ids().await;
    assert!(
        ids.iter()
            .any(|i| i.ends_with("/remediate/overload/ecs-scale-out/applied")),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i.ends_with("/remediate/r1/overload/ecs-scale-out/applied")),
        "{ids:?}"
    );
}

#[tokio::test]
async fn a_reopened_incident_within_the_cooldown_records_the_refusal_instead_of_skipping() {
    let w = World::new().await;
    w.diagnose("restart-only").await;
    let at = w.clock.now();
    w.change(|i| {
        i.resolve(at + chrono::Duration::minutes(1));
        i.reopen(at + chrono::Duration::minutes(2));
    })
    .await;
    w.clock.advance(chrono::Duration::minutes(3));
    let second = w.diagnose("restart-only").await;
    assert_eq!(second.skipped, None, "{second:?}");
    assert_eq!(second.decisions[0].outcome, "refused", "{second:?}");
    assert!(second.decisions[0].detail.contains("cooldown"), "{second:?}");
    assert_eq!(w.attempts(), 1);
}

#[tokio::test]
async fn an_approval_request_of_cycle_0_cannot_be_approved_in_cycle_1_even_for_cycle_1() {
    let w = World::awaiting_scale_out().await;
    let at = w.clock.now();
    w.change(|i| {
        i.resolve(at);
        i.reopen(at);
    })
    .await;
    // the request is from cycle 0 (same second as the reopen): its id says so
    let r = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 1), &approvers())
        .await
        .unwrap();
    assert!(refused(&r).contains("before it reopened"), "{r:?}");
    assert_eq!(w.attempts(), 0);
}

#[tokio::test]
async fn a_flapping_incident_is_not_remediated_until_it_is_stable() {
    let w = World::new().await;
    let at = w.clock.now();
    w.change(|i| i.flapping_since = Some(at)).await;
    let r = w.diagnose("overload").await;
    assert_eq!(r.decisions[0].outcome, "refused", "{r:?}");
    assert!(r.decisions[0].detail.contains("flapping"), "{r:?}");
    assert_eq!(w.attempts(), 0);
}

/// ECS that carries out updates and loses the answer to the first `n`.
struct LosesUpdateAnswers<'a> {
    inner: &'a Probe,
    lose: AtomicUsize,
}

impl ServiceControl for LosesUpdateAnswers<'_> {
    async fn describe(&self, service: &EcsService) -> Result<ServiceState, PortError> {
        self.inner.describe(service).await
    }
    async fn task_definitions(&self, family: &str) -> Result<Vec<String>, PortError> {
        self.inner.task_definitions(family).await
    }
    async fn task_definition(&self, name: &str) -> Result<Option<TaskDefinition>, PortError> {
        self.inner.task_definition(name).await
    }
    async fn update(&self, service: &EcsService, change: &ServiceUpdate) -> Result<ServiceState, PortError> {
        let r = self.inner.update(service, change).await;
        if self.lose.load(Ordering::SeqCst) > 0 {
            self.lose.fetch_sub(1, Ordering::SeqCst);
            return Err(PortError::new(
                "ECS UpdateService",
                "connection reset while reading the response",
                true,
            ));
        }
        r
    }
}

#[tokio::test]
async fn an_approved_action_whose_answer_was_lost_is_reconciled_not_repeated() {
    let w = World::awaiting_scale_out().await;
    let ecs = LosesUpdateAnswers {
        inner: &w.ecs,
        lose: AtomicUsize::new(1),
    };
    let uc = w.uc_on(&ecs);
    let a = approval("ecs-scale-out", &approver("alice"), 0);
    let e = uc.on_approval(&a, &approvers()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(w.attempts(), 1);
    // Lambda's first retry, inside the in-flight window
    w.clock.advance(chrono::Duration::seconds(60));
    assert!(uc.on_approval(&a, &approvers()).await.unwrap_err().is_retryable());
    // the second, after it: ECS shows the change, so it is recorded, not asked again
    w.clock.advance(chrono::Duration::seconds(120));
    let r = uc.on_approval(&a, &approvers()).await.unwrap();
    assert_eq!(w.attempts(), 1, "{r:?}");
    assert_eq!(
        w.entry(EntryKind::RemediationApplied).await.len(),
        1,
        "{:#?}",
        w.remediation_ids().await
    );
    assert!(w
        .incident()
        .await
        .remediations
        .iter()
        .any(|r| r.outcome == Outcome::Applied));
}

#[tokio::test]
async fn an_approved_action_redriven_after_the_incident_resolved_is_still_reconciled() {
    let w = World::awaiting_scale_out().await;
    let ecs = LosesUpdateAnswers {
        inner: &w.ecs,
        lose: AtomicUsize::new(1),
    };
    let uc = w.uc_on(&ecs);
    let a = approval("ecs-scale-out", &approver("alice"), 0);
    assert!(uc.on_approval(&a, &approvers()).await.unwrap_err().is_retryable());
    // the delivery waits in the failure queue; meanwhile the alarm recovers and it resolves
    let at = w.clock.now();
    w.change(|i| i.resolve(at + chrono::Duration::minutes(5))).await;
    w.clock.advance(chrono::Duration::minutes(30));
    let r = uc.on_approval(&a, &approvers()).await.unwrap();
    assert_eq!(r.skipped.as_deref(), Some("already decided"), "{r:?}");
    assert_eq!(w.attempts(), 1);
    assert_eq!(w.entry(EntryKind::RemediationApplied).await.len(), 1);
}

// --- closed loop: the mode `earned`, the hold after an ineffective action, circuit breakers ---

fn record_at(level: RemediationMode, action: &str) -> crate::model::autonomy::AutonomyRecord {
    let mut r = crate::model::autonomy::AutonomyRecord::new(AutonomyKey::new("api-5xx", "overload", action));
    r.level = level;
    r.matched = 9;
    r.version = 1;
    r
}

fn requested_summaries(entries: &[TimelineEntry]) -> String {
    entries
        .iter()
        .map(|e| e.summary.clone())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn earned_takes_each_actions_level_from_its_record_never_above_the_ceiling() {
    // no record yet: dry-run
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Earned;
    w.diagnose("overload").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "dry-run")]));
    let said = requested_summaries(&w.entry(EntryKind::RemediationRequested).await);
    assert!(
        said.contains("mode dry-run; earned level dry-run (no outcome counted yet)"),
        "{said}"
    );

    // earned approve: asks for approval
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Earned;
    w.store
        .load_autonomy([record_at(RemediationMode::Approve, "ecs-scale-out")]);
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "awaiting-approval")])
    );
    assert!(w.ecs.inner.updates().is_empty());

    // earned auto, default ceiling approve: still asks
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Earned;
    w.store
        .load_autonomy([record_at(RemediationMode::Auto, "ecs-scale-out")]);
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "awaiting-approval")])
    );
    let said = requested_summaries(&w.entry(EntryKind::RemediationRequested).await);
    assert!(said.contains("held at the ceiling approve"), "{said}");

    // earned auto under the ceiling auto: acts, and every other guardrail still applies
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Earned;
    w.settings.remediation.earned.ceiling = RemediationMode::Auto;
    w.store
        .load_autonomy([record_at(RemediationMode::Auto, "ecs-scale-out")]);
    w.diagnose("overload").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "applied")]));
    let mut w = World::new().await;
    w.settings.remediation.mode = RemediationMode::Earned;
    w.settings.remediation.earned.ceiling = RemediationMode::Auto;
    w.settings.remediation.allow.clear();
    w.settings.remediation.allow_tag = None;
    w.store
        .load_autonomy([record_at(RemediationMode::Auto, "ecs-scale-out")]);
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "refused")]),
        "the allowlist"
    );
}

#[tokio::test]
async fn after_an_ineffective_action_automatic_actions_are_asked_for_approval() {
    let w = World::new().await;
    let read = w.incident().await;
    let mut held = read.clone();
    held.auto_held = Some("ecs-rollback applied at 14:37 was ineffective".into());
    held.version += 1;
    w.store
        .save(&held, read.version, PointerChange::Keep, &[])
        .await
        .unwrap();
    w.diagnose("overload").await;
    assert_eq!(
        w.outcomes().await,
        pairs(&[("ecs-scale-out", "awaiting-approval")])
    );
    assert!(w.ecs.inner.updates().is_empty(), "no automatic action");
    let said = requested_summaries(&w.entry(EntryKind::RemediationRequested).await);
    assert!(
        said.contains("held to approve: ecs-rollback applied at 14:37 was ineffective"),
        "{said}"
    );
}

#[tokio::test]
async fn a_full_circuit_refuses_automatic_actions_with_since_when_pages_once_and_frees_the_cooldown() {
    let mut w = World::new().await;
    w.settings.remediation.circuit.per_service = 1;
    w.settings.remediation.cooldown_s = 900;
    w.diagnose("overload").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "applied")]));
    // another cause, later, by a fresh invocation (a cold start): the circuit's state is in the table
    w.clock.set(t(14, 50));
    w.diagnose("restart-only").await;
    let outcomes = w.incident().await.remediations;
    let refused = outcomes.last().unwrap();
    assert_eq!(refused.outcome, Outcome::Refused);
    assert!(
        refused
            .detail
            .starts_with("circuit open: 1 actions on prod/articles-api since 14:36"),
        "{}",
        refused.detail
    );
    let pages: Vec<_> = w
        .notifier
        .sent()
        .into_iter()
        .filter(|(_, n)| n.subject.contains("Circuit open"))
        .collect();
    assert_eq!(pages.len(), 1);
    // the restart's cooldown was given back: it was never carried out
    let key = g::cooldown_key(&svc(), "ecs-restart");
    let lease = w.store.lease(&key).await.unwrap().unwrap();
    assert!(lease.until <= t(14, 50), "{lease:?}");
    // a later refusal in the same opening pages no more
    w.clock.set(t(15, 0));
    let d = DiagnosisCompleted {
        cause: Some("bad-deploy".into()),
        ..diag("bad-deploy")
    };
    w.uc().on_diagnosis(&d).await.unwrap();
    let pages = w
        .notifier
        .sent()
        .into_iter()
        .filter(|(_, n)| n.subject.contains("Circuit open"))
        .count();
    assert_eq!(pages, 1);
}

#[tokio::test]
async fn concurrent_decisions_on_two_services_take_the_one_global_slot_once() {
    let mut w = World::new().await;
    w.settings.remediation.circuit.global = 1;
    let other = EcsService::new("prod", "search-api");
    let mut st = service_state(vec![dep("search-api:7", "PRIMARY", "COMPLETED", t(14, 5))]);
    st.service = other.clone();
    st.task_definition = "search-api:7".into();
    w.ecs.inner.add_service(st, &["search-api:6".to_string()]);
    w.settings.remediation.allow.push(other.clone());
    let id2 = IncidentId("INC-20260314-143500-0002".into());
    let mut i2 = w.incident().await;
    i2.id = id2.clone();
    i2.service = other.to_string();
    i2.ecs = Some(other.clone());
    i2.version = 1;
    i2.remediations.clear();
    w.store
        .open(&i2, &[], std::time::Duration::from_secs(1800))
        .await
        .unwrap();
    w.ecs.yield_first = true;
    let uc = w.uc();
    let d2 = DiagnosisCompleted {
        incident_id: id2.clone(),
        service: other.to_string(),
        ..diag("overload")
    };
    let d1 = diag("overload");
    let (a, b) = futures::join!(uc.on_diagnosis(&d1), uc.on_diagnosis(&d2));
    a.unwrap();
    b.unwrap();
    let mut all = w.incident().await.remediations;
    all.extend(w.store.get(&id2).await.unwrap().unwrap().remediations);
    let applied = all.iter().filter(|r| r.outcome == Outcome::Applied).count();
    let refused: Vec<_> = all.iter().filter(|r| r.outcome == Outcome::Refused).collect();
    assert_eq!(applied, 1, "{all:?}");
    assert_eq!(refused.len(), 1, "{all:?}");
    assert!(
        refused[0]
            .detail
            .starts_with("circuit open: 1 actions across all services"),
        "{}",
        refused[0].detail
    );
    assert_eq!(w.ecs.inner.updates().len(), 1);
}

#[tokio::test]
async fn an_approved_action_is_not_automatic_so_an_open_circuit_does_not_refuse_it() {
    let mut w = World::awaiting_scale_out().await;
    w.settings.remediation.circuit.per_service = 1;
    w.settings.remediation.circuit.global = 1;
    // the circuit is full already
    let now = w.clock.now();
    for key in ["circuit#svc#prod/articles-api#0", "circuit#all#0"] {
        assert!(w
            .store
            .claim(key, "another incident", now + chrono::Duration::hours(6), now)
            .await
            .unwrap());
    }
    let done = w
        .uc()
        .on_approval(&approval("ecs-scale-out", &approver("alice"), 0), &approvers())
        .await
        .unwrap();
    assert_eq!(done.decisions[0].outcome, Outcome::Applied, "{done:?}");
}

#[tokio::test]
async fn a_retry_keeps_the_circuit_slot_it_holds_and_takes_no_other() {
    let w = World::new().await;
    let now = w.clock.now();
    // an earlier try of this decision took slot 1 (slot 0 has lapsed since)
    let owner = event_id(&inc_id(), 0, "overload", "ecs-scale-out", "circuit");
    let until = now + chrono::Duration::hours(6);
    assert!(w
        .store
        .claim("circuit#svc#prod/articles-api#1", &owner, until, now)
        .await
        .unwrap());
    w.diagnose("overload").await;
    assert_eq!(w.outcomes().await, pairs(&[("ecs-scale-out", "applied")]));
    assert_eq!(
        w.store.lease("circuit#svc#prod/articles-api#0").await.unwrap(),
        None
    );
    let held = w
        .store
        .lease("circuit#svc#prod/articles-api#1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.owner.as_str(), held.until),
        (owner.as_str(), until),
        "not extended either"
    );
}

#[tokio::test]
async fn an_action_found_ineffective_while_this_one_was_decided_is_not_followed_by_an_automatic_one() {
    // the decision reads the incident without a hold; the hold lands before the call
    let w = World::new().await;
    let read = w.incident().await;
    let mut held = read.clone();
    held.auto_held = Some("ecs-rollback applied at 14:37 was ineffective".into());
    held.version += 1;
    let uc = w.uc();
    let dec = Decision {
        incident: &read,
        cycle: 0,
        cause: "overload",
        runbook: Some("api-5xx"),
        key: "ecs-scale-out".into(),
        action: ActionName::EcsScaleOut,
        mode: RemediationMode::Auto,
        attempt: 1,
    };
    w.store
        .save(&held, read.version, PointerChange::Keep, &[])
        .await
        .unwrap();
    let state = w.ecs.inner.describe(&svc()).await.unwrap();
    let plan = Plan {
        service: svc(),
        update: ServiceUpdate {
            desired: Some(8),
            ..ServiceUpdate::default()
        },
        detail: "desiredCount 4 → 8".into(),
        before: state,
    };
    match uc.act(&dec, &plan).await.unwrap() {
        Executed::Refused(r) => assert_eq!(r.guardrail, "held", "{r:?}"),
        _ => panic!("acted although held"),
    }
    assert!(w.ecs.inner.updates().is_empty());
}
