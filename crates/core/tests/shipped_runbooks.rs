#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The runbooks in `runbooks/` lint clean and select as documented.

use firebreak_core::runbook::lint::{lint_dir, Level};
use firebreak_core::runbook::{AlarmFacts, RunbookSet};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../runbooks")
}

#[test]
fn shipped_runbooks_lint_clean() {
    let findings = lint_dir(&dir()).unwrap();
    let shown: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(
        findings.iter().all(|f| f.level != Level::Error),
        "lint errors:\n{}",
        shown.join("\n")
    );
    assert!(findings.is_empty(), "lint warnings:\n{}", shown.join("\n"));
}

#[test]
fn the_five_common_alarms_have_runbooks() {
    let set = RunbookSet::load_dir(dir()).unwrap();
    let ids: Vec<&str> = set.ids().collect();
    for id in [
        "db-connection-pool",
        "failed-health-checks",
        "high-cpu",
        "high-error-rate",
        "high-latency",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let tags = BTreeMap::new();
    let select = |alarm: &str, ns: Option<&str>, metric: Option<&str>| {
        set.select(AlarmFacts {
            alarm_name: alarm,
            namespace: ns,
            metric_name: metric,
            tags: &tags,
            runbook_hint: None,
        })
        .map(|r| r.id.clone())
    };
    assert_eq!(
        select("articles-api-5xx-rate", None, None).as_deref(),
        Some("high-error-rate")
    );
    assert_eq!(
        select("articles-api-p99-latency", None, None).as_deref(),
        Some("high-latency")
    );
    assert_eq!(
        select("articles-api-cpu-high", None, None).as_deref(),
        Some("high-cpu")
    );
    assert_eq!(
        select("articles-api-unhealthy-hosts", None, None).as_deref(),
        Some("failed-health-checks")
    );
    assert_eq!(
        select("articles-db-connections", None, None).as_deref(),
        Some("db-connection-pool")
    );
    assert_eq!(
        select("whatever", Some("AWS/ECS"), Some("CPUUtilization")).as_deref(),
        Some("high-cpu")
    );
    assert_eq!(select("disk-70-percent", Some("Custom"), Some("Disk")), None);
    // both a latency and a 5xx glob: the higher priority wins
    assert_eq!(
        select("api-5xx-latency", None, None).as_deref(),
        Some("high-error-rate")
    );
}

#[test]
fn an_explicit_runbook_tag_wins_over_triggers() {
    let set = RunbookSet::load_dir(dir()).unwrap();
    let tags: BTreeMap<String, String> = [("runbook".to_string(), "high-cpu".to_string())].into();
    let facts = AlarmFacts {
        alarm_name: "articles-api-5xx-rate",
        namespace: None,
        metric_name: None,
        tags: &tags,
        runbook_hint: None,
    };
    assert_eq!(set.select(facts).map(|r| r.id.as_str()), Some("high-cpu"));
    // an unknown tag falls back to the triggers
    let tags: BTreeMap<String, String> = [("runbook".to_string(), "nope".to_string())].into();
    let facts = AlarmFacts { tags: &tags, ..facts };
    assert_eq!(set.select(facts).map(|r| r.id.as_str()), Some("high-error-rate"));
}

#[test]
fn the_shipped_runbooks_load_unlinted_as_the_linted_set() {
    let linted = RunbookSet::from_embedded(firebreak_core::runbook::embedded::FILES).unwrap();
    let loaded = RunbookSet::shipped().unwrap();
    assert!(loaded.runbooks().len() >= 5);
    assert_eq!(loaded.runbooks(), linted.runbooks());
    for id in linted.ids() {
        assert_eq!(loaded.file_of(id), linted.file_of(id), "{id}");
    }
}
