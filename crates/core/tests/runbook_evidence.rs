#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Evidence-gated rollbacks (issue #11, item 3): lint rejects a cause that would roll a service
//! back on a deployment's timing alone, accepts one that also reads log evidence, and every
//! shipped runbook's rollback asks for such evidence.

use firebreak_core::runbook::lint::{lint_dir, lint_sources, Finding, Level};
use firebreak_core::runbook::{RunbookSet, RunbookSource, Signature};
use std::path::PathBuf;

fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")
}

/// A runbook whose `bad-deployment` cause has the given signatures and rolls back.
fn runbook(signatures: &str) -> RunbookSource {
    RunbookSource {
        file: "api-cpu.yaml".into(),
        text: format!(
            r#"
id: api-cpu
title: CPU high on the API
trigger: {{ alarms: ["api-cpu-*"] }}
impact: Requests slow down.
log_groups: ["/ecs/{{service_name}}"]
investigation:
  - name: errors-per-5m
    query: |
      filter @message like /ERROR/ or @message like /Exception/
      | stats count() as errors by bin(5m)
  - name: error-details
    query: |
      fields @timestamp, @message
      | filter @message like /ERROR/
      | sort @timestamp desc
      | limit 50
causes:
  - id: bad-deployment
    description: The new revision fails.
    signatures:
{signatures}
    remediation:
      - {{ action: ecs-rollback, window: 30m }}
prevention: ["Canary each release."]
"#
        ),
    }
}

fn errors(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_rollback_on_a_deployment_window_alone_is_rejected_naming_runbook_cause_and_why() {
    let findings = lint_sources(&[runbook("      - deployment: { within: 30m }")]);
    let e = errors(&findings);
    assert_eq!(e.len(), 1, "{e:#?}");
    let f = &findings[0];
    assert_eq!(f.file, "api-cpu.yaml");
    assert_eq!(f.runbook.as_deref(), Some("api-cpu"));
    assert_eq!(f.field, "causes[bad-deployment].signatures");
    assert!(
        f.message.starts_with(
            "cause \"bad-deployment\" rolls back (remediation[0] is ecs-rollback) on deployment timing alone"
        ),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("not evidence") && f.message.contains("pattern, threshold or spike"),
        "{}",
        f.message
    );
}

#[test]
fn two_deployment_windows_are_still_timing_alone() {
    let e = errors(&lint_sources(&[runbook(
        "      - deployment: { within: 30m }\n      - deployment: { within: 2h }",
    )]));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("on deployment timing alone"), "{}", e[0]);
}

#[test]
fn a_rollback_on_a_deployment_and_an_error_pattern_is_accepted() {
    let findings = lint_sources(&[runbook(
        "      - deployment: { within: 30m }\n      - pattern: { query: error-details, matches: \"TypeError|Exception\", min_count: 3 }",
    )]);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_rollback_on_a_deployment_and_an_error_spike_is_accepted() {
    let findings = lint_sources(&[runbook(
        "      - deployment: { within: 30m }\n      - spike: { query: errors-per-5m, factor: 2 }",
    )]);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn evidence_on_a_query_the_runbook_lacks_is_an_error_of_its_own() {
    // the rule counts the signature as evidence; the unknown query is reported as before
    let e = errors(&lint_sources(&[runbook(
        "      - deployment: { within: 30m }\n      - spike: { query: nope, factor: 2 }",
    )]));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("names query \"nope\""), "{}", e[0]);
}

#[test]
fn no_shipped_runbook_rolls_back_on_deployment_timing_alone() {
    let findings = lint_dir(&shipped_dir()).unwrap();
    let timing: Vec<String> = findings
        .iter()
        .filter(|f| f.message.contains("on deployment timing alone"))
        .map(ToString::to_string)
        .collect();
    assert!(timing.is_empty(), "{timing:#?}");
}

#[test]
fn every_shipped_rollback_reads_evidence_from_a_query_the_runbook_runs() {
    let set = RunbookSet::load_dir(shipped_dir()).unwrap();
    let mut rollbacks = 0;
    for rb in set.iter() {
        for c in &rb.causes {
            if !c.remediation.iter().any(|r| r.action == "ecs-rollback") {
                continue;
            }
            rollbacks += 1;
            let evidence: Vec<&str> = c.signatures.iter().filter_map(Signature::query).collect();
            assert!(
                !evidence.is_empty(),
                "{}: cause {} rolls back without log evidence",
                rb.id,
                c.id
            );
            for q in evidence {
                assert!(
                    rb.query(q).is_some(),
                    "{}: cause {} reads unknown query {q}",
                    rb.id,
                    c.id
                );
            }
        }
    }
    // high-cpu, failed-health-checks, high-latency, high-error-rate, db-connection-pool
    assert!(rollbacks >= 5, "{rollbacks}");
}
