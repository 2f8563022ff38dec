//! Hostile runbook files are rejected quickly, with the place named, never with a stack
//! overflow: deep nesting in YAML (flow and block style) and in the queries it carries.

use firebreak_core::runbook::lint::lint_sources;
use firebreak_core::runbook::RunbookSource;
use std::time::{Duration, Instant};

fn lint(text: String) -> (Vec<String>, Duration) {
    let began = Instant::now();
    let findings = lint_sources(&[RunbookSource {
        file: "deep.yaml".into(),
        text,
    }]);
    (
        findings.iter().map(ToString::to_string).collect(),
        began.elapsed(),
    )
}

const HEAD: &str = "id: deep\ntitle: t\nimpact: i\ninvestigation:\n  - {name: q, query: \"fields @message\"}\ncauses:\n  - id: c\n    description: d\n    signatures:\n      - pattern: {query: q, matches: x}\n    remediation:\n";

#[test]
fn deeply_nested_yaml_is_rejected_before_parsing_with_its_line_and_column() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let n = 20_000;
        let text = format!(
            "{HEAD}      - {{action: ecs-restart, extra: {}1{}}}\n",
            open.repeat(n),
            close.repeat(n)
        );
        let (findings, took) = lint(text);
        assert!(took < Duration::from_millis(500), "{open}: took {took:?}");
        assert!(
            findings
                .iter()
                .any(|f| f.contains("deep.yaml")
                    && f.contains("nest more than 64 levels deep at line 12 column")),
            "{open}: {findings:?}"
        );
    }
}
#[test]
fn a_deeply_nested_query_in_a_runbook_is_an_error_not_a_crash() {
    let n = 20_000;
    let query = format!("filter {}1{} = 1", "(".repeat(n), ")".repeat(n));
    let text = format!(
        "id: deep\ntitle: t\ntrigger: {{alarms: [\"deep-*\"]}}\nimpact: i\ninvestigation:\n  - name: q\n    query: \"{query}\"\ncauses: []\n"
    );
    let (findings, took) = lint(text);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        findings.iter().any(|f| f.contains("investigation[q].query")),
        "{findings:?}"
    );
}
