//! Exact requests and error paths of the DynamoDB store, against mocked responses.

use super::*;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, TransactionCanceledException};
use aws_sdk_dynamodb::types::CancellationReason;
use aws_sdk_dynamodb::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use chrono::TimeZone;
use firebreak_core::model::incident::IncidentStatus;
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
