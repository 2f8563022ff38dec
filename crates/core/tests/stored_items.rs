//! Items already stored by release 0.1 still read: the fixtures are incidents and timelines
//! exactly as that release serialised them (the `doc` attribute of the DynamoDB items), from
//! every shipped drill and from dry-run, approval and refusal variants of the seed drill. Each
//! reads into today's types and writes back to the same JSON, so nothing stored is lost or
//! changed by reading it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use firebreak_core::model::entry_id::EntryId;
use firebreak_core::model::incident::Incident;
use firebreak_core::model::timeline::{EntryKind, TimelineEntry};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;

#[test]
fn incidents_and_timelines_stored_by_release_0_1_read_and_write_back_unchanged() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stored-0.1");
    let mut kinds = HashSet::new();
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.display().to_string();

        let incident: Incident = serde_json::from_value(doc["incident"].clone())
            .unwrap_or_else(|e| panic!("{name}: incident: {e}"));
        assert_eq!(
            serde_json::to_value(&incident).unwrap(),
            doc["incident"],
            "{name}: incident"
        );

        let stored = doc["timeline"].as_array().unwrap();
        assert!(!stored.is_empty(), "{name}");
        for item in stored {
            let entry: TimelineEntry =
                serde_json::from_value(item.clone()).unwrap_or_else(|e| panic!("{name}: {item}: {e}"));
            assert_eq!(&serde_json::to_value(&entry).unwrap(), item, "{name}");
            assert!(
                EntryId::parse(&entry.event_id).is_some(),
                "{name}: event id {} is not one of the stored forms",
                entry.event_id
            );
            // a stored payload reads as its kind's typed detail, not as "nothing"
            if item["detail"].as_object().is_some_and(|o| !o.is_empty()) {
                assert_eq!(
                    entry.detail().kind(),
                    Some(entry.kind()),
                    "{name}: {} did not read as a typed {} detail",
                    entry.event_id,
                    entry.kind()
                );
            }
            kinds.insert(entry.kind());
        }
        files += 1;
    }
    assert!(files >= 10, "{files} fixtures");
    for k in [
        EntryKind::AlarmFired,
        EntryKind::Opened,
        EntryKind::QueryCompleted,
        EntryKind::DiagnosisCompleted,
        EntryKind::RemediationApplied,
        EntryKind::RemediationDryRun,
        EntryKind::RemediationRefused,
        EntryKind::ApprovalRequested,
        EntryKind::Resolved,
        EntryKind::PostmortemDrafted,
    ] {
        assert!(kinds.contains(&k), "no fixture holds a {k} entry");
    }
}
