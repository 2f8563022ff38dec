//! Diagnosis with evidence (issue 13), end to end through the drills that show it: metrics in
//! words, what a deployment changed, a start judged against bins that had data, and an
//! abstention that takes no action and says what would decide it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use firebreak_core::drill::{DrillReport, IncidentReport};

mod common;
use common::run_drill;

async fn run(name: &str) -> DrillReport {
    let (report, diffs) = run_drill(name).await;
    assert!(diffs.is_empty(), "{name}: {diffs:?}");
    report
}

fn summaries<'r>(inc: &'r IncidentReport, kind: &str) -> Vec<&'r str> {
    inc.timeline
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.summary.as_str())
        .collect()
}

#[tokio::test]
async fn the_seed_says_traffic_doubled_with_cpu_and_tasks_normal() {
    let r = run("seed-connection-pool").await;
    let inc = &r.incidents[0];
    let metrics = summaries(inc, "metric-read");
    assert!(
        metrics[0].contains("RequestCount 2.0x baseline since 14:30"),
        "{metrics:?}"
    );
    assert!(metrics[1].contains("CPUUtilization normal ("), "{metrics:?}");
    assert!(
        metrics[2].ends_with("RunningTaskCount unchanged at 4"),
        "{metrics:?}"
    );
    assert_eq!(inc.hypotheses[0].cause, "db-connection-pool-exhausted");
    assert_eq!(inc.hypotheses[0].score, 1.0);
    let page = r
        .notifications
        .iter()
        .find(|(s, _)| s.contains("Diagnosis: db-connection-pool-exhausted"))
        .unwrap();
    assert!(
        page.1.contains("- RequestCount 2.0x baseline since 14:30"),
        "{}",
        page.1
    );
    let pm = inc.postmortem_markdown.as_deref().unwrap();
    assert!(pm.contains("Metrics against the hour before:"), "{pm}");
    assert!(
        pm.contains("- `db-connection-pool-exhausted`, score 1.00"),
        "{pm}"
    );
    // a deployment four days old is dated, not shown as if it were today
    let changes = summaries(inc, "recent-changes");
    assert!(
        changes[0].contains("articles-api:42 deployed 2026-03-10 09:30 UTC, 4d 5h before the alarm"),
        "{changes:?}"
    );
}

#[tokio::test]
async fn a_deployment_that_changed_one_variable_is_named_with_the_change() {
    let r = run("deployment-env-change").await;
    let inc = &r.incidents[0];
    let changes = summaries(inc, "recent-changes");
    assert!(
        changes[0].contains(r#"against articles-api:42: environment DB_POOL_SIZE: "10" -> "2""#),
        "{changes:?}"
    );
    assert!(changes[0].contains("2 targets are unhealthy"), "{changes:?}");
    assert!(
        !changes[0].contains("DB_PASSWORD"),
        "a secret that did not change is not a change"
    );
    let h = &inc.hypotheses[0];
    assert_eq!((h.cause.as_str(), h.score), ("bad-deployment", 1.0));
    assert!(
        h.evidence.iter().any(|e| e.contains("RequestCount normal")),
        "{h:?}"
    );
    assert_eq!(inc.remediations[0].action, "ecs-rollback");
    assert!(inc
        .postmortem_markdown
        .as_deref()
        .unwrap()
        .contains("DB_POOL_SIZE"));
}

#[tokio::test]
async fn evidence_that_does_not_decide_takes_no_action_and_says_what_would() {
    let r = run("deploy-or-traffic").await;
    let inc = &r.incidents[0];
    assert_eq!(inc.cause, None);
    assert!(inc.remediations.is_empty(), "{:?}", inc.remediations);
    let causes: Vec<(&str, f64)> = inc
        .hypotheses
        .iter()
        .map(|h| (h.cause.as_str(), h.score))
        .collect();
    assert_eq!(
        causes,
        vec![("db-connection-pool-exhausted", 0.67), ("bad-deployment", 0.67)]
    );
    assert!(inc
        .hypotheses
        .iter()
        .all(|h| h.missing.iter().any(|m| m.contains("request-rate"))));
    let (subject, body) = r
        .notifications
        .iter()
        .find(|(s, _)| s.contains("Diagnosis inconclusive"))
        .unwrap();
    assert!(subject.ends_with("no automatic action"), "{subject}");
    assert!(body.contains("too close to tell"), "{body}");
    assert!(
        body.contains("would decide it: db-connection-pool-exhausted: metric `request-rate`"),
        "{body}"
    );
    let pm = inc.postmortem_markdown.as_deref().unwrap();
    assert!(pm.contains("The diagnosis abstained"), "{pm}");
    assert!(summaries(inc, "remediation-requested").is_empty());
}

#[tokio::test]
async fn a_window_that_begins_before_the_logs_is_not_a_rise_from_nothing() {
    let r = run("logs-begin-late").await;
    let inc = &r.incidents[0];
    assert_eq!(inc.metrics.time_to_detect_s, Some(300));
    assert_eq!(
        inc.estimated_start.map(|t| t.to_rfc3339()).as_deref(),
        Some("2027-01-12T09:10:00+00:00")
    );
    // the log-volume query says where the logs begin: no bin before 08:30 is a baseline
    let volume = summaries(inc, "query-completed")
        .into_iter()
        .find(|s| s.starts_with("log-volume:"))
        .unwrap();
    assert!(!volume.contains("at 08:30"), "{volume}");
}
