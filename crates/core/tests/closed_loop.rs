//! The closed loop end to end through the shipped drills: each applied action verified at the
//! end of its window, every proposal scored against what people did, the circuit breaker, and
//! the record the mode `earned` learns from (issue #14).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

mod common;

use common::run_drill;
use firebreak_core::drill::{DrillReport, IncidentReport, RemediationReport};

fn ok(name: &str, diffs: &[String]) {
    assert!(diffs.is_empty(), "{name}: {diffs:?}");
}

fn first(r: &DrillReport) -> &IncidentReport {
    &r.incidents[0]
}

fn proposal(i: &IncidentReport) -> &RemediationReport {
    i.remediations
        .iter()
        .find(|r| r.shadow.is_some())
        .unwrap_or_else(|| panic!("no scored proposal in {:?}", i.remediations))
}

fn kinds(i: &IncidentReport, kind: &str) -> Vec<String> {
    i.timeline
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.summary.clone())
        .collect()
}

#[tokio::test]
async fn the_seed_recovers_inside_its_window_and_is_verified_by_the_schedule() {
    let (r, diffs) = run_drill("seed-connection-pool").await;
    ok("seed", &diffs);
    let i = first(&r);
    let applied = &i.remediations[0];
    assert_eq!(
        (applied.outcome.as_str(), applied.verification.as_deref()),
        ("applied", Some("verified"))
    );
    let sh = applied.shadow.as_ref().unwrap();
    assert_eq!(
        (sh.verdict.as_deref(), sh.lead_s),
        (None, None),
        "applied and not undone"
    );
    let v = kinds(i, "remediation-verified");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("every alarm OK at the end of its 15m verification window"),
        "{}",
        v[0]
    );
    // judged by the 14:55 sweep, the first after 14:50:36, with no sweep step in the scenario
    let at = i
        .timeline
        .iter()
        .find(|e| e.kind == "remediation-verified")
        .unwrap()
        .at;
    assert_eq!(at.to_rfc3339(), "2026-03-14T14:55:00+00:00");
    assert_eq!(i.metrics.time_to_resolve_s, Some(360), "14:35 to 14:41");
    let pm = i.postmortem_markdown.as_deref().unwrap();
    assert!(
        pm.contains("**Verification** of `ecs-scale-out`, window ended 14:50:36")
            && pm.contains("**verified**"),
        "{pm}"
    );
    let text = firebreak_core::drill::render_text(&r);
    assert!(
        text.contains("MTTR:    Firebreak 6m beside people's 25m"),
        "{text}"
    );
}

#[tokio::test]
async fn each_verdict_of_a_dry_run_proposal() {
    for (name, verdict, people, lead) in [
        (
            "people-matched",
            "matched",
            Some("scaled out to 8 tasks (from 4) at 14:47"),
            Some(684),
        ),
        (
            "people-different",
            "different",
            Some("forced a new deployment of articles-api:42 at 14:50"),
            None,
        ),
        ("people-unneeded", "unneeded", None, None),
        (
            "people-contradicted",
            "contradicted",
            Some("scaled in to 2 tasks (from 4) at 14:45"),
            None,
        ),
    ] {
        let (r, diffs) = run_drill(name).await;
        ok(name, &diffs);
        let i = first(&r);
        let p = proposal(i);
        assert_eq!(p.outcome, "dry-run", "{name}");
        let sh = p.shadow.as_ref().unwrap();
        assert_eq!(sh.verdict.as_deref(), Some(verdict), "{name}");
        assert_eq!(sh.people_action.as_deref(), people, "{name}");
        assert_eq!(sh.lead_s, lead, "{name}");
        assert_eq!(p.verification, None, "{name}: not applied, nothing to verify");
        let scored = kinds(i, "shadow-scored");
        assert_eq!(scored.len(), 1, "{name}: {scored:?}");
        let pm = i.postmortem_markdown.as_deref().unwrap();
        assert!(pm.contains(&format!("**{verdict}**")), "{name}: {pm}");
    }
}

#[tokio::test]
async fn an_ineffective_action_escalates_once_pages_and_takes_no_second_automatic_action() {
    let (r, diffs) = run_drill("ineffective-escalated").await;
    ok("ineffective-escalated", &diffs);
    let i = first(&r);
    let applied: Vec<_> = i.remediations.iter().filter(|r| r.outcome == "applied").collect();
    assert_eq!(applied.len(), 1, "{:?}", i.remediations);
    assert_eq!(applied[0].verification.as_deref(), Some("ineffective"));
    let esc = kinds(i, "escalated");
    assert!(
        esc.iter()
            .any(|e| e.contains("did not work") && e.contains("raised to SEV1")),
        "{esc:?}"
    );
    assert!(
        r.notifications.iter().any(|(s, _)| s.contains("ESCALATED")),
        "{:?}",
        r.notifications
    );
    // diagnosed again at SEV1, with the same evidence (the escalation carries the alarm's
    // metric, so the request rate is read again), and the decision already made is not made again
    assert!(kinds(i, "diagnosis-completed").len() >= 2);
    let hyp = kinds(i, "hypotheses");
    assert!(
        hyp.len() >= 2
            && hyp
                .iter()
                .all(|h| h.contains("db-connection-pool-exhausted (1.00)")),
        "{hyp:?}"
    );
    assert_eq!(kinds(i, "remediation-applied").len(), 1);
}

#[tokio::test]
async fn the_fourth_automatic_action_in_six_hours_opens_the_circuit_with_one_page() {
    let (r, diffs) = run_drill("circuit-breaker").await;
    ok("circuit-breaker", &diffs);
    assert_eq!(r.incidents.len(), 4);
    for i in &r.incidents[..3] {
        let a = i.remediations.iter().find(|x| x.outcome == "applied").unwrap();
        assert_eq!(a.verification.as_deref(), Some("verified"), "{}", i.id);
    }
    let last = &r.incidents[3];
    let refused = last
        .remediations
        .iter()
        .find(|x| x.outcome == "refused")
        .unwrap_or_else(|| panic!("{:?}", last.remediations));
    assert!(
        refused
            .detail
            .starts_with("circuit open: 3 actions on prod/articles-api since 09:10"),
        "{}",
        refused.detail
    );
    let pages: Vec<_> = r
        .notifications
        .iter()
        .filter(|(s, _)| s.contains("Circuit open"))
        .collect();
    assert_eq!(pages.len(), 1, "{:?}", r.notifications);
}

#[tokio::test]
async fn matched_proposals_earn_the_approve_level_and_the_fourth_asks_for_approval() {
    let (r, diffs) = run_drill("earned-autonomy").await;
    ok("earned-autonomy", &diffs);
    for i in &r.incidents[..3] {
        let p = proposal(i);
        assert_eq!(
            (p.outcome.as_str(), p.mode.as_str()),
            ("dry-run", "dry-run"),
            "{}",
            i.id
        );
        assert_eq!(p.shadow.as_ref().unwrap().verdict.as_deref(), Some("matched"));
    }
    let last = &r.incidents[3];
    let outcomes: Vec<&str> = last.remediations.iter().map(|x| x.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        vec!["awaiting-approval", "applied"],
        "{:?}",
        last.remediations
    );
    let asked = &last.remediations[0];
    assert_eq!(
        asked.shadow.as_ref().unwrap().verdict.as_deref(),
        Some("matched"),
        "approved: people chose it"
    );
    assert!(kinds(last, "remediation-requested")[0].contains("earned level approve"));
}
