//! Exact requests and error paths of the DynamoDB store, against mocked responses.

use super::*;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, TransactionCanceledException};
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use chrono::TimeZone;
use firebreak_core::model::autonomy::Mark;
use firebreak_core::model::incident::IncidentStatus;
use firebreak_core::model::settings::RemediationMode;
use firebreak_core::model::severity::Severity;
use firebreak_core::model::timeline::EntryKind;

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).single().unwrap()
}

fn incident(id: &str, version: u64) -> Incident {
    let mut i = Incident::open(
        IncidentId(id.into()),
        "prod/articles-api",
        Severity::Sev2,
        "5xx on /articles",
        at(14, 35),
        at(14, 35),
    );
    i.version = version;
    i
}

fn entry(id: &str) -> TimelineEntry {
    TimelineEntry::new(id, at(14, 35), EntryKind::Opened, "opened")
}

fn canceled(codes: &[&str]) -> TransactWriteItemsError {
    let mut e = TransactionCanceledException::builder()
        .message("Transaction cancelled")
        .meta(
            ErrorMetadata::builder()
                .code("TransactionCanceledException")
                .build(),
        );
    for c in codes {
        e = e.cancellation_reasons(CancellationReason::builder().code(*c).build());
    }
    TransactWriteItemsError::TransactionCanceledException(e.build())
}

fn is_key(k: Option<&HashMap<String, AttributeValue>>, pk: &str) -> bool {
    k.and_then(|k| k.get("pk")) == Some(&AttributeValue::S(pk.into()))
}

fn client_no_retry(rules: &[&aws_smithy_mocks::Rule]) -> Client {
    mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules, |c| c
        .retry_config(RetryConfig::disabled()))
}

#[tokio::test]
async fn open_of_a_new_incident_is_one_transaction_with_conditional_pointer_meta_and_entries() {
    let rule = mock!(Client::transact_write_items)
        .match_requests(|r| {
            let items = r.transact_items();
            let pointer = items[0].put().unwrap();
            let meta = items[1].put().unwrap();
            let e = items[2].put().unwrap();
            items.len() == 3
                && pointer.item().get("pk") == Some(&av("OPEN#prod/articles-api"))
                && pointer.item().get("incident") == Some(&av("INC-1"))
                && pointer.condition_expression()
                    == Some("attribute_not_exists(pk) OR (attribute_exists(#r) AND #r < :cutoff)")
                // 14:35 opened, 30 min window
                && pointer.expression_attribute_values().and_then(|v| v.get(":cutoff"))
                    == Some(&av("2026-03-14T14:05:00.000000000Z"))
                && meta.item().get("sk") == Some(&av("META"))
                && meta.item().get("version") == Some(&num(1))
                && meta.item().get("gsi1pk") == Some(&av("ACTIVE"))
                && meta.item().get("gsi2pk") == Some(&av("MONTH#2026-03"))
                && meta.condition_expression() == Some("attribute_not_exists(pk)")
                && e.item().get("sk") == Some(&av("T#d1/opened"))
                && e.condition_expression() == Some("attribute_not_exists(pk)")
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&rule]), "t");
    let out = store
        .open(
            &incident("INC-1", 1),
            &[entry("d1/opened")],
            Duration::from_secs(1800),
        )
        .await
        .unwrap();
    assert_eq!(out, OpenOutcome::Opened);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn open_when_the_pointer_condition_fails_returns_the_incident_it_names() {
    let tx = mock!(Client::transact_write_items)
        .then_error(|| canceled(&["ConditionalCheckFailed", "None", "None"]));
    let own = mock!(Client::get_item)
        .match_requests(|r| is_key(r.key(), "INC#INC-2") && r.consistent_read() == Some(true))
        .then_output(|| GetItemOutput::builder().build());
    let pointer = mock!(Client::get_item)
        .match_requests(|r| is_key(r.key(), "OPEN#prod/articles-api") && r.consistent_read() == Some(true))
        .then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(HashMap::from([
                    ("pk".to_string(), av("OPEN#prod/articles-api")),
                    ("sk".to_string(), av("OPEN")),
                    ("incident".to_string(), av("INC-1")),
                ])))
                .build()
        });
    let other = mock!(Client::get_item)
        .match_requests(|r| is_key(r.key(), "INC#INC-1"))
        .then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(meta_item(&incident("INC-1", 3)).unwrap()))
                .build()
        });
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx, &own, &pointer, &other]), "t");
    let out = store
        .open(
            &incident("INC-2", 1),
            &[entry("d2/opened")],
            Duration::from_secs(1800),
        )
        .await
        .unwrap();
    assert_eq!(out, OpenOutcome::Existing(Box::new(incident("INC-1", 3))));
    assert_eq!(
        (
            tx.num_calls(),
            own.num_calls(),
            pointer.num_calls(),
            other.num_calls()
        ),
        (1, 0, 1, 1)
    );
}

#[tokio::test]
async fn open_when_an_entry_condition_fails_is_duplicate() {
    let tx = mock!(Client::transact_write_items)
        .then_error(|| canceled(&["None", "None", "None", "ConditionalCheckFailed"]));
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let err = store
        .open(
            &incident("INC-1", 1),
            &[entry("a"), entry("b")],
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Duplicate("b".into()));
}

#[tokio::test]
async fn throttled_transaction_is_a_retryable_port_error_with_its_code() {
    let tx = mock!(Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate of requests exceeds the allowed throughput.")
                .build(),
        )
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let err = store
        .open(&incident("INC-1", 1), &[], Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    match err {
        StoreError::Port(p) => {
            assert_eq!(p.code.as_deref(), Some("ThrottlingException"));
            assert_eq!(p.message, "Rate of requests exceeds the allowed throughput.");
        }
        other => panic!("expected a port error, got {other:?}"),
    }
}

#[tokio::test]
async fn validation_error_is_not_retryable() {
    let tx = mock!(Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::generic(
            ErrorMetadata::builder()
                .code("ValidationException")
                .message("Item size has exceeded the maximum allowed size")
                .build(),
        )
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let err = store
        .open(&incident("INC-1", 1), &[], Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn save_with_a_stale_version_is_conflict() {
    let tx = mock!(Client::transact_write_items)
        .match_requests(|r| {
            let meta = r.transact_items()[0].put().unwrap();
            meta.condition_expression() == Some("#v = :expected")
                && meta
                    .expression_attribute_values()
                    .and_then(|v| v.get(":expected"))
                    == Some(&num(1))
                && meta.item().get("version") == Some(&num(2))
        })
        .then_error(|| canceled(&["ConditionalCheckFailed", "None"]));
    let read = mock!(Client::get_item).then_output(|| {
        GetItemOutput::builder()
            .set_item(Some(meta_item(&incident("INC-1", 5)).unwrap()))
            .build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx, &read]), "t");
    let err = store
        .save(&incident("INC-1", 2), 1, PointerChange::Keep, &[entry("x")])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(IncidentId("INC-1".into())));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn save_of_a_missing_incident_is_not_found() {
    let tx = mock!(Client::transact_write_items).then_error(|| canceled(&["ConditionalCheckFailed"]));
    let read = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx, &read]), "t");
    let err = store
        .save(&incident("INC-9", 2), 1, PointerChange::Keep, &[])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotFound(IncidentId("INC-9".into())));
}

#[tokio::test]
async fn save_with_a_recorded_entry_is_duplicate() {
    let tx = mock!(Client::transact_write_items).then_error(|| canceled(&["None", "ConditionalCheckFailed"]));
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let err = store
        .save(&incident("INC-1", 2), 1, PointerChange::Keep, &[entry("e1")])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Duplicate("e1".into()));
}

#[tokio::test]
async fn release_of_a_pointer_that_names_another_incident_saves_without_touching_it() {
    let with_pointer = mock!(Client::transact_write_items)
        .match_requests(|r| {
            let items = r.transact_items();
            items.len() == 2 && items[1].update().and_then(|u| u.condition_expression()) == Some("#inc = :id")
        })
        .then_error(|| canceled(&["None", "ConditionalCheckFailed"]));
    let without = mock!(Client::transact_write_items)
        .match_requests(|r| r.transact_items().len() == 1)
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&with_pointer, &without]), "t");
    let mut inc = incident("INC-1", 2);
    inc.status = IncidentStatus::Resolved;
    inc.resolved_at = Some(at(15, 0));
    store.save(&inc, 1, PointerChange::Release, &[]).await.unwrap();
    assert_eq!((with_pointer.num_calls(), without.num_calls()), (1, 1));
}

#[tokio::test]
async fn reclaim_of_a_pointer_held_by_another_incident_is_conflict() {
    let tx = mock!(Client::transact_write_items)
        .match_requests(|r| {
            r.transact_items()[1].put().and_then(|p| p.condition_expression())
                == Some("attribute_not_exists(pk) OR #inc = :id")
        })
        .then_error(|| canceled(&["None", "ConditionalCheckFailed"]));
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let err = store
        .save(&incident("INC-1", 2), 1, PointerChange::Reclaim, &[])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(IncidentId("INC-1".into())));
}

#[tokio::test]
async fn claim_held_by_someone_else_is_false() {
    let put = mock!(Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(pk) OR #until <= :now OR #owner = :owner")
                && r.item().and_then(|i| i.get("expires_at")).is_some()
                && r.item()
                    .and_then(|i| i.get("owner"))
                    .and_then(|o| o.as_s().ok())
                    .map(String::as_str)
                    == Some("me")
        })
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .message("The conditional request failed")
                    .build(),
            )
        });
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    assert!(!store
        .claim("cooldown/prod/api", "me", at(15, 0), at(14, 40))
        .await
        .unwrap());
}

#[tokio::test]
async fn append_of_new_entries_is_one_transaction_checking_the_incident() {
    let tx = mock!(Client::transact_write_items)
        .match_requests(|r| {
            let items = r.transact_items();
            items.len() == 3
                && items[0]
                    .condition_check()
                    .is_some_and(|c| c.condition_expression() == "attribute_exists(pk)")
                && items[1..].iter().all(|i| {
                    i.put()
                        .is_some_and(|p| p.condition_expression() == Some("attribute_not_exists(pk)"))
                })
        })
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx]), "t");
    let n = store
        .append(&IncidentId("INC-1".into()), &[entry("a"), entry("b"), entry("a")])
        .await
        .unwrap();
    assert_eq!(n, 2, "the repeated id within the call counts once");
    assert_eq!(tx.num_calls(), 1);
}

#[tokio::test]
async fn append_puts_each_new_entry_and_counts_those_not_yet_recorded() {
    // The one-call transaction is cancelled because `old` is already recorded: fall back to
    // one conditional Put per entry, skipping the recorded one.
    let tx = mock!(Client::transact_write_items)
        .then_error(|| canceled(&["None", "None", "ConditionalCheckFailed"]));
    let fresh = mock!(Client::put_item)
        .match_requests(|r| r.item().and_then(|i| i.get("sk")) == Some(&av("T#new")))
        .then_output(|| PutItemOutput::builder().build());
    let recorded = mock!(Client::put_item)
        .match_requests(|r| r.item().and_then(|i| i.get("sk")) == Some(&av("T#old")))
        .then_error(|| {
            PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
    let store = DynamoIncidentStore::new(client_no_retry(&[&tx, &fresh, &recorded]), "t");
    let n = store
        .append(
            &IncidentId("INC-1".into()),
            &[entry("new"), entry("old"), entry("new")],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        (tx.num_calls(), fresh.num_calls(), recorded.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn append_to_a_missing_incident_is_not_found() {
    let missing =
        mock!(Client::transact_write_items).then_error(|| canceled(&["ConditionalCheckFailed", "None"]));
    let store = DynamoIncidentStore::new(client_no_retry(&[&missing]), "t");
    let err = store
        .append(&IncidentId("INC-7".into()), &[entry("a")])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NotFound(IncidentId("INC-7".into())));
}

#[tokio::test]
async fn a_corrupt_incident_names_the_record_and_field() {
    let bad = mock!(Client::get_item).then_output(|| {
        let mut item = meta_item(&incident("INC-1", 1)).unwrap();
        item.insert("doc".into(), av("{not json"));
        GetItemOutput::builder().set_item(Some(item)).build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&bad]), "t");
    match store.get(&IncidentId("INC-1".into())).await.unwrap_err() {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, "INC#INC-1/META");
            assert!(reason.starts_with("doc:"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_version_attribute_that_disagrees_with_the_doc_is_corrupt() {
    let bad = mock!(Client::get_item).then_output(|| {
        let mut item = meta_item(&incident("INC-1", 1)).unwrap();
        item.insert("version".into(), num(2));
        GetItemOutput::builder().set_item(Some(item)).build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&bad]), "t");
    let err = store.get(&IncidentId("INC-1".into())).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { ref reason, .. } if reason.starts_with("version:")),
        "{err:?}"
    );
}

fn conditional_check_failed() -> PutItemError {
    PutItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .message("The conditional request failed")
            .build(),
    )
}

fn autonomy_record(action: &str, version: u64) -> AutonomyRecord {
    let mut r = AutonomyRecord::new(AutonomyKey::new("db-connection-pool", "pool", action));
    r.matched = 3;
    r.recent = vec![Mark::Matched; 3];
    r.leads_s = vec![60, 120, 90];
    r.level = RemediationMode::Approve;
    r.seen = vec!["INC-1/shadow".into()];
    r.updated_at = Some(at(15, 0));
    r.version = version;
    r
}

fn s_of<'a>(item: Option<&'a HashMap<String, AttributeValue>>, field: &str) -> Option<&'a str> {
    item.and_then(|i| i.get(field))
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test]
async fn lease_reads_owner_and_until_of_the_lease_item_even_lapsed() {
    let get = mock!(Client::get_item)
        .match_requests(|r| {
            is_key(r.key(), "LEASE#circuit#prod/api")
                && s_of(r.key(), "sk") == Some("LEASE")
                && r.consistent_read() == Some(true)
        })
        .then_output(|| {
            let mut item = key(lease_pk("circuit#prod/api"), LEASE_SK);
            item.insert("kind".into(), av("lease"));
            item.insert("owner".into(), av("INC-1/ecs-scale-out"));
            item.insert("until".into(), av(ts(at(14, 0))));
            item.insert("expires_at".into(), num(at(14, 0).timestamp() + LEASE_GRACE_S));
            GetItemOutput::builder().set_item(Some(item)).build()
        });
    let none = mock!(Client::get_item)
        .match_requests(|r| is_key(r.key(), "LEASE#free"))
        .then_output(|| GetItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&get, &none]), "t");
    // 14:00 is long past (2026-03-14): still returned, the caller compares `until`
    assert_eq!(
        store.lease("circuit#prod/api").await.unwrap(),
        Some(Lease {
            owner: "INC-1/ecs-scale-out".into(),
            until: at(14, 0),
        })
    );
    assert_eq!(store.lease("free").await.unwrap(), None);
    assert_eq!((get.num_calls(), none.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_lease_with_a_bad_until_is_corrupt_naming_the_record() {
    let get = mock!(Client::get_item).then_output(|| {
        let mut item = key(lease_pk("cooldown/prod/api"), LEASE_SK);
        item.insert("owner".into(), av("me"));
        item.insert("until".into(), av("tomorrow"));
        GetItemOutput::builder().set_item(Some(item)).build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&get]), "t");
    match store.lease("cooldown/prod/api").await.unwrap_err() {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, "LEASE#cooldown/prod/api/LEASE");
            assert!(reason.starts_with("until:"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_save_of_an_autonomy_record_puts_it_only_if_absent() {
    let put = mock!(Client::put_item)
        .match_requests(|r| {
            let item = r.item();
            let doc: Option<AutonomyRecord> = s_of(item, "doc").and_then(|d| serde_json::from_str(d).ok());
            r.condition_expression() == Some("attribute_not_exists(pk)")
                && r.expression_attribute_values().is_none()
                && r.expression_attribute_names().is_none()
                && s_of(item, "pk") == Some("AUTONOMY")
                && s_of(item, "sk") == Some("db-connection-pool#pool#ecs-scale-out")
                && s_of(item, "kind") == Some("autonomy")
                && item.and_then(|i| i.get("version")) == Some(&num(1))
                && doc == Some(autonomy_record("ecs-scale-out", 1))
        })
        .then_output(|| PutItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    assert!(store
        .save_autonomy(&autonomy_record("ecs-scale-out", 1), 0)
        .await
        .unwrap());
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn a_later_save_of_an_autonomy_record_is_conditioned_on_the_expected_version() {
    let put = mock!(Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("#version = :expected")
                && r.expression_attribute_names()
                    .and_then(|n| n.get("#version"))
                    .map(String::as_str)
                    == Some("version")
                && r.expression_attribute_values().and_then(|v| v.get(":expected")) == Some(&num(3))
                && r.item().and_then(|i| i.get("version")) == Some(&num(4))
        })
        .then_output(|| PutItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    assert!(store
        .save_autonomy(&autonomy_record("ecs-scale-out", 4), 3)
        .await
        .unwrap());
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn an_autonomy_save_whose_condition_fails_is_false() {
    let put = mock!(Client::put_item).then_error(conditional_check_failed);
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    assert!(!store
        .save_autonomy(&autonomy_record("ecs-scale-out", 1), 0)
        .await
        .unwrap());
    assert!(!store
        .save_autonomy(&autonomy_record("ecs-scale-out", 6), 5)
        .await
        .unwrap());
    assert_eq!(put.num_calls(), 2);
}

#[tokio::test]
async fn an_autonomy_record_not_one_version_past_the_expected_is_refused_unwritten() {
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    for (version, expected) in [(3, 3), (1, 2), (0, u64::MAX)] {
        let err = store
            .save_autonomy(&autonomy_record("ecs-scale-out", version), expected)
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
        match err {
            StoreError::Port(p) => {
                assert_eq!(p.code.as_deref(), Some("VersionMismatch"));
                assert!(
                    p.message
                        .contains("AUTONOMY/db-connection-pool#pool#ecs-scale-out carries version"),
                    "{}",
                    p.message
                );
            }
            other => panic!("expected a port error, got {other:?}"),
        }
    }
    assert_eq!(put.num_calls(), 0);
}

#[tokio::test]
async fn an_autonomy_record_too_large_for_an_item_is_refused_unwritten() {
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&put]), "t");
    let mut big = autonomy_record("ecs-scale-out", 1);
    big.seen = vec!["x".repeat(400 * 1024)];
    let err = store.save_autonomy(&big, 0).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Port(p) if p.code.as_deref() == Some("ItemTooLarge")),
        "{err:?}"
    );
    assert_eq!(put.num_calls(), 0);
}

#[tokio::test]
async fn autonomy_reads_the_record_consistently_and_none_when_absent() {
    let found = mock!(Client::get_item)
        .match_requests(|r| {
            is_key(r.key(), "AUTONOMY")
                && s_of(r.key(), "sk") == Some("db-connection-pool#pool#ecs-scale-out")
                && r.consistent_read() == Some(true)
        })
        .then_output(|| {
            GetItemOutput::builder()
                .set_item(Some(autonomy_item(&autonomy_record("ecs-scale-out", 2)).unwrap()))
                .build()
        });
    let absent = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
    let store = DynamoIncidentStore::new(client_no_retry(&[&found, &absent]), "t");
    assert_eq!(
        store
            .autonomy(&AutonomyKey::new("db-connection-pool", "pool", "ecs-scale-out"))
            .await
            .unwrap(),
        Some(autonomy_record("ecs-scale-out", 2))
    );
    assert_eq!(
        store
            .autonomy(&AutonomyKey::new("db-connection-pool", "pool", "ecs-restart"))
            .await
            .unwrap(),
        None
    );
    assert_eq!((found.num_calls(), absent.num_calls()), (1, 1));
}

#[tokio::test]
async fn autonomy_records_follows_every_page_and_orders_by_key() {
    let page_key = || key(AUTONOMY_PK.to_string(), "db-connection-pool#pool#ecs-scale-out");
    let first = mock!(Client::query)
        .match_requests(|r| {
            r.exclusive_start_key().is_none()
                && r.key_condition_expression() == Some("#pk = :pk")
                && r.expression_attribute_values().and_then(|v| v.get(":pk")) == Some(&av("AUTONOMY"))
                && r.consistent_read() == Some(true)
        })
        .then_output(move || {
            QueryOutput::builder()
                .items(autonomy_item(&autonomy_record("ecs-rollback", 1)).unwrap())
                .items(autonomy_item(&autonomy_record("ecs-scale-out", 7)).unwrap())
                .set_last_evaluated_key(Some(page_key()))
                .build()
        });
    let second = mock!(Client::query)
        .match_requests(move |r| r.exclusive_start_key() == Some(&page_key()))
        .then_output(|| {
            QueryOutput::builder()
                // out of order on purpose: the store sorts
                .items(autonomy_item(&autonomy_record("ecs-restart", 3)).unwrap())
                .items(autonomy_item(&autonomy_record("ecs-force-new", 2)).unwrap())
                .build()
        });
    let store = DynamoIncidentStore::new(client_no_retry(&[&first, &second]), "t");
    let got = store.autonomy_records().await.unwrap();
    let actions: Vec<&str> = got.iter().map(|r| r.key.action.as_str()).collect();
    assert_eq!(
        actions,
        ["ecs-force-new", "ecs-restart", "ecs-rollback", "ecs-scale-out"]
    );
    assert_eq!(got[3], autonomy_record("ecs-scale-out", 7));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_corrupt_autonomy_doc_names_the_record_and_field() {
    let q = mock!(Client::query).then_output(|| {
        let mut bad = autonomy_item(&autonomy_record("ecs-restart", 1)).unwrap();
        bad.insert("doc".into(), av("{\"matched\": \"many\"}"));
        QueryOutput::builder()
            .items(autonomy_item(&autonomy_record("ecs-rollback", 1)).unwrap())
            .items(bad)
            .build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&q]), "t");
    match store.autonomy_records().await.unwrap_err() {
        StoreError::Corrupt { record, reason } => {
            assert_eq!(record, "AUTONOMY/db-connection-pool#pool#ecs-restart");
            assert!(reason.starts_with("doc: not an autonomy record"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn an_autonomy_item_whose_version_or_key_disagrees_with_its_doc_is_corrupt() {
    let moved = mock!(Client::get_item)
        .match_requests(|r| s_of(r.key(), "sk") == Some("db-connection-pool#pool#ecs-restart"))
        .then_output(|| {
            let mut item = autonomy_item(&autonomy_record("ecs-restart", 2)).unwrap();
            item.insert("version".into(), num(3));
            GetItemOutput::builder().set_item(Some(item)).build()
        });
    let elsewhere = mock!(Client::get_item).then_output(|| {
        let mut item = autonomy_item(&autonomy_record("ecs-rollback", 2)).unwrap();
        item.insert("sk".into(), av("db-connection-pool#pool#ecs-scale-out"));
        GetItemOutput::builder().set_item(Some(item)).build()
    });
    let store = DynamoIncidentStore::new(client_no_retry(&[&moved, &elsewhere]), "t");
    let err = store
        .autonomy(&AutonomyKey::new("db-connection-pool", "pool", "ecs-restart"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { reason, .. } if reason.starts_with("version:")),
        "{err:?}"
    );
    let err = store
        .autonomy(&AutonomyKey::new("db-connection-pool", "pool", "ecs-scale-out"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { record, reason }
            if record == "AUTONOMY/db-connection-pool#pool#ecs-scale-out" && reason.starts_with("doc:")),
        "{err:?}"
    );
}

#[test]
fn cutoff_matches_the_in_memory_window_rule() {
    let p = Pointer {
        incident: IncidentId("INC-1".into()),
        resolved_at: Some(at(14, 0)),
    };
    let w = Duration::from_secs(1800);
    // resolved 14:00, window 30 min: claims at 14:30, not at 14:31.
    assert!(p.claims(w, at(14, 30)));
    assert!(ts(at(14, 0)) >= cutoff(at(14, 30), w));
    assert!(!p.claims(w, at(14, 31)));
    assert!(ts(at(14, 0)) < cutoff(at(14, 31), w));
}

#[test]
fn timestamps_sort_as_text_in_time_order() {
    let a = ts(at(9, 0));
    let b = ts(at(10, 0) + chrono::Duration::nanoseconds(1));
    assert_eq!(a.len(), b.len());
    assert!(a < b);
    assert_eq!(
        months(at(0, 0), at(0, 0) + chrono::Duration::days(62)),
        ["MONTH#2026-03", "MONTH#2026-04", "MONTH#2026-05"]
    );
}

#[test]
fn written_at_is_strictly_increasing() {
    let a = next_written_at();
    let b = next_written_at();
    assert!(b > a);
}
