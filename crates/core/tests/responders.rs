//! Issue #15 end to end in a drill (events/scenarios/responders-oncall): every page in each
//! protocol's form, threaded on the incident, and what PagerDuty and the webhook would be sent,
//! in order, acknowledgement included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firebreak_core::drill::{self, DrillEnv, LoadedScenario};
use firebreak_core::model::oncall::verify_webhook;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::RunbookSet;
use std::path::Path;

async fn report(name: &str) -> drill::DrillReport {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events/scenarios")
        .join(name);
    let loaded = LoadedScenario::load(&dir).unwrap();
    let policy = SeverityPolicy::shipped().unwrap();
    let runbooks = RunbookSet::shipped().unwrap();
    drill::run(
        &loaded,
        &DrillEnv {
            policy: &policy,
            runbooks: &runbooks,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn every_page_has_its_three_forms_threaded_on_the_incident() {
    let r = report("responders-oncall").await;
    let inc = &r.incidents[0];
    let kinds: Vec<&str> = inc
        .pages
        .iter()
        .map(|p| p.chat["metadata"]["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "firebreak.incident.opened",
            "firebreak.incident.diagnosis",
            "firebreak.incident.remediation",
            "firebreak.incident.resolved"
        ]
    );
    for p in &inc.pages {
        assert!(p.sms.chars().count() <= 140 && !p.sms.contains('\n'), "{}", p.sms);
        assert!(p.sms.contains(&inc.id), "{}", p.sms);
        assert_eq!(p.chat["version"], "1.0");
        assert_eq!(p.chat["source"], "custom");
        assert_eq!(p.chat["metadata"]["threadId"], inc.id.as_str());
        assert_eq!(
            p.chat["metadata"]["additionalContext"]["incident"],
            inc.id.as_str()
        );
        assert!(p.email.starts_with("SEV2: major"), "{}", p.email);
        assert!(
            p.email.contains(
                "\nLinks:\n- Alarm articles-api-5xx-rate: https://us-east-1.console.aws.amazon.com/"
            ),
            "{}",
            p.email
        );
    }
    let diagnosis = &inc.pages[1];
    assert!(
        diagnosis.email.contains("Next steps:\n- Runbook: "),
        "{}",
        diagnosis.email
    );
    assert!(
        diagnosis.email.contains("#logsV2:logs-insights$3FqueryDetail$3D"),
        "the first query's console link"
    );
    assert!(!diagnosis.chat["content"]["nextSteps"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn pagerduty_is_triggered_acknowledged_and_resolved_and_the_webhook_hears_each_event() {
    let r = report("responders-oncall").await;
    let inc = &r.incidents[0];
    let seq: Vec<(String, String)> = inc
        .outbound
        .iter()
        .map(|o| {
            let what = o.body.get("event_action").or_else(|| o.body.get("type")).unwrap();
            (o.kind.clone(), what.as_str().unwrap().to_string())
        })
        .collect();
    let want = [
        ("pagerduty", "trigger"),
        ("webhook", "incident.opened"),
        ("webhook", "incident.diagnosed"),
        ("webhook", "incident.remediation_applied"),
        ("pagerduty", "acknowledge"),
        ("webhook", "incident.acknowledged"),
        ("pagerduty", "resolve"),
        ("webhook", "incident.resolved"),
    ];
    assert_eq!(seq, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let trigger = &inc.outbound[0].body;
    assert_eq!(trigger["dedup_key"], inc.id.as_str());
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(inc.outbound[4].at.format("%H:%M").to_string(), "14:37");
    let acked = &inc.outbound[5].body;
    assert_eq!(acked["incident"]["acknowledged_by"], "alice");
    // the contract example has no ack step and thinned logs; the seed without integrations
    // sends nothing outbound
    assert!(report("seed-connection-pool").await.incidents[0]
        .outbound
        .is_empty());
    // the signature helper the tests' receivers use accepts what it signs
    let sig = firebreak_core::model::oncall::webhook_signature("s3cret", "id-1", 10, "{}");
    assert!(verify_webhook("s3cret", "id-1", 10, "{}", &sig, 10, 300));
}
