//! Alarm authors cannot widen Firebreak's power (issue 11, item 4): an alarm's `severity` tag
//! changes who is paged, never how automatic a remediation is; alarms that name different ECS
//! targets get no remediation; and the two drills that show it end the right way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use firebreak_core::intake::parse_event_str;
use firebreak_core::model::incident::{EcsService, Incident};
use firebreak_core::model::settings::{ModeRule, RemediationMode, RemediationSettings};
use firebreak_core::model::severity::Severity;
use firebreak_core::model::signal::AlarmSignal;
use firebreak_core::ports::{IncidentStore, Route};
use firebreak_core::stages::guardrails;
use std::path::Path;

mod common;
use common::{at, run_drill, World};

/// The sample 5xx alarm (AWS/ApplicationELB HTTPCode_Target_5XX_Count) under another name,
/// delivery and set of tags.
fn alarm(name: &str, delivery: &str, t: &str, tags: &[(&str, &str)]) -> AlarmSignal {
    let path = format!(
        "{}/../../events/eventbridge-metric-alarm.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut s = parse_event_str(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0);
    s.alarm_name = name.to_string();
    s.delivery_id = delivery.to_string();
    s.changed_at = at(t);
    s.tags = tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    s
}

async fn only_incident(w: &World) -> Incident {
    let mut all = w.incidents().await;
    assert_eq!(all.len(), 1);
    all.remove(0)
}

const ECS: [(&str, &str); 2] = [("ecs-cluster", "prod"), ("ecs-service", "articles-api")];

fn sev1_auto() -> RemediationSettings {
    RemediationSettings {
        mode: RemediationMode::DryRun,
        rules: vec![ModeRule {
            action: None,
            severity: Some(Severity::Sev1),
            mode: RemediationMode::Auto,
        }],
        ..RemediationSettings::default()
    }
}

#[tokio::test]
async fn a_severity_tag_pages_at_its_severity_but_the_mode_follows_the_policys() {
    let w = World::new();
    let tagged = alarm(
        "articles-api-5xx-rate",
        "d-1",
        "2026-03-14T14:35:00Z",
        &[ECS[0], ECS[1], ("severity", "SEV1")],
    );
    w.triage().handle(&tagged).await.unwrap();
    let inc = only_incident(&w).await;
    assert_eq!(inc.severity, Severity::Sev1, "paged at the tag's severity");
    assert_eq!(w.notifier.sent()[0].0, Route::Severity(Severity::Sev1));
    assert_eq!(
        inc.policy_severity,
        Some(Severity::Sev2),
        "the policy's rule http-5xx"
    );
    assert_eq!(
        guardrails::mode_for(&sev1_auto(), "ecs-rollback", &inc),
        RemediationMode::DryRun
    );
    let classified = w.store.timeline(&inc.id).await.unwrap();
    assert!(classified.iter().any(|e| e
        .summary
        .contains("the severity tag changes paging only: remediation modes follow SEV2")));
}

#[tokio::test]
async fn escalation_by_a_tag_pages_again_but_only_the_policys_own_classifications_raise_the_mode() {
    let w = World::new();
    let t = w.triage();
    t.handle(&alarm(
        "articles-api-5xx-rate",
        "d-1",
        "2026-03-14T14:35:00Z",
        &ECS,
    ))
    .await
    .unwrap();
    // a second alarm the policy classifies SEV2, tagged SEV1: escalates the page, not the mode
    t.handle(&alarm(
        "articles-api-5xx-canary",
        "d-2",
        "2026-03-14T14:36:00Z",
        &[ECS[0], ECS[1], ("severity", "SEV1")],
    ))
    .await
    .unwrap();
    let inc = only_incident(&w).await;
    assert_eq!(inc.severity, Severity::Sev1);
    assert_eq!(inc.policy_severity, Some(Severity::Sev2));
    assert_eq!(
        guardrails::mode_for(&sev1_auto(), "ecs-scale-out", &inc),
        RemediationMode::DryRun
    );
    // an alarm the policy's own rules classify SEV1 does raise it
    let outage = alarm("articles-api-all-unhealthy", "d-3", "2026-03-14T14:37:00Z", &ECS);
    assert_eq!(w.policy.classify(&outage).policy_severity, Severity::Sev1);
    t.handle(&outage).await.unwrap();
    let inc = only_incident(&w).await;
    assert_eq!(inc.policy_severity, Some(Severity::Sev1));
    assert_eq!(
        guardrails::mode_for(&sev1_auto(), "ecs-scale-out", &inc),
        RemediationMode::Auto
    );
}

#[tokio::test]
async fn alarms_naming_different_targets_are_recorded_and_refused() {
    let w = World::new();
    let t = w.triage();
    // tagged into articles-api's incident, naming payments-api as the target
    t.handle(&alarm(
        "checkout-queue-depth",
        "d-1",
        "2026-03-14T14:33:00Z",
        &[
            ("service", "prod/articles-api"),
            ("ecs-cluster", "prod"),
            ("ecs-service", "payments-api"),
        ],
    ))
    .await
    .unwrap();
    t.handle(&alarm(
        "articles-api-5xx-rate",
        "d-2",
        "2026-03-14T14:35:00Z",
        &ECS,
    ))
    .await
    .unwrap();
    let inc = only_incident(&w).await;
    assert_eq!(inc.service, "prod/articles-api");
    assert_eq!(inc.alarms.len(), 2);
    assert_eq!(
        inc.alarm_targets.get("checkout-queue-depth"),
        Some(&EcsService::new("prod", "payments-api"))
    );
    assert_eq!(
        inc.alarm_targets.get("articles-api-5xx-rate"),
        Some(&EcsService::new("prod", "articles-api"))
    );
    let r = guardrails::check_targets_agree(&inc).unwrap_err();
    assert_eq!(r.guardrail, "targets-disagree");
    assert!(
        r.reason.contains("articles-api-5xx-rate names prod/articles-api"),
        "{r}"
    );
    assert!(
        r.reason.contains("checkout-queue-depth names prod/payments-api"),
        "{r}"
    );
}

#[test]
fn an_incident_stored_by_0_1_has_no_policy_severity_and_is_at_most_dry_run() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stored-0.1/seed-connection-pool.json");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let inc: Incident = serde_json::from_value(doc["incident"].clone()).unwrap();
    assert_eq!(inc.policy_severity, None);
    assert!(inc.alarm_targets.is_empty());
    let auto = RemediationSettings {
        mode: RemediationMode::Auto,
        ..RemediationSettings::default()
    };
    assert_eq!(
        guardrails::mode_for(&auto, "ecs-scale-out", &inc),
        RemediationMode::DryRun
    );
    // and it still writes back without the new fields
    let back = serde_json::to_value(&inc).unwrap();
    assert!(back.get("policy_severity").is_none() && back.get("alarm_targets").is_none());
}

#[tokio::test]
async fn the_severity_tag_drill_pages_sev1_and_only_plans_the_rollback() {
    let (report, diffs) = run_drill("severity-tag-no-auto").await;
    assert!(diffs.is_empty(), "{diffs:?}");
    let inc = &report.incidents[0];
    assert_eq!(inc.severity, Severity::Sev1);
    let modes: Vec<(&str, &str, &str)> = inc
        .remediations
        .iter()
        .map(|r| (r.action.as_str(), r.mode.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(modes, [("ecs-rollback", "dry-run", "dry-run")]);
}

#[tokio::test]
async fn the_confused_deputy_drill_remediates_nothing_and_names_both_alarms_and_targets() {
    let (report, diffs) = run_drill("confused-deputy").await;
    assert!(diffs.is_empty(), "{diffs:?}");
    let inc = &report.incidents[0];
    assert!(
        inc.remediations.iter().all(|r| r.outcome == "refused"),
        "{:?}",
        inc.remediations
    );
    let refused = inc
        .timeline
        .iter()
        .find(|e| e.kind == "remediation-refused")
        .expect("a refusal on the timeline");
    for needle in [
        "targets-disagree",
        "articles-api-5xx-rate names prod/articles-api",
        "checkout-queue-depth names prod/payments-api",
    ] {
        assert!(refused.summary.contains(needle), "{needle}: {}", refused.summary);
    }
}
