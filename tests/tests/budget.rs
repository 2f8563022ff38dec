//! AWS calls on triage's new-incident path: open, claiming the alarm state change for this copy
//! of it in the same transaction (DynamoDB), page (SNS), tell the bus (EventBridge). Budget: at most 4. Counted per HTTP request, retries included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use anyhow::Result;
use chrono::{TimeZone, Utc};
use firebreak_aws::{DynamoIncidentStore, EventBridgeBus, SnsNotifier, Topics};
use firebreak_core::model::severity::Severity;
use firebreak_core::model::timeline::{EntryKind, TimelineEntry};
use firebreak_core::ports::{
    EventBus, IncidentStore, Notification, Notifier, OpenOutcome, PipelineEvent, Route,
};
use firebreak_integration::{bus_to_queue, incident, moto, table, topic_to_queue, CallCounter};
use std::time::Duration;

#[tokio::test]
async fn a_new_incident_costs_one_dynamodb_call_and_three_in_all() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let (_, table_name) = table(&cfg, "budget").await?;
    let (topic, _q) = topic_to_queue(&cfg, "budget").await?;
    let (bus, _q2) = bus_to_queue(&cfg, "budget").await?;
    let counter = CallCounter::default();

    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&cfg)
            .interceptor(counter.clone())
            .build(),
    );
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&cfg)
            .interceptor(counter.clone())
            .build(),
    );
    let eb = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&cfg)
            .interceptor(counter.clone())
            .build(),
    );
    let store = DynamoIncidentStore::new(ddb, table_name);
    let notifier = SnsNotifier::new(
        sns,
        Topics {
            sev1: topic.clone(),
            sev2: topic.clone(),
            sev3: topic.clone(),
            sev4: topic,
        },
    );
    let events = EventBridgeBus::new(eb, bus);

    let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).single().unwrap();
    let inc = incident("INC-20260314-143500-0001", "prod/articles-api", at);
    let entries = [
        TimelineEntry::new("d1/alarm-fired", at, EntryKind::AlarmFired, "alarm"),
        TimelineEntry::new("d1/opened", at, EntryKind::Opened, "opened"),
        TimelineEntry::new("d1/classified", at, EntryKind::Classified, "SEV2"),
    ];
    let change = firebreak_core::ports::Transition {
        key: "articles-api-5xx-rate/ALARM/1773499200000".into(),
        delivery: "d1".into(),
        service: "prod/articles-api".into(),
        until: at + chrono::Duration::days(3),
    };
    assert_eq!(
        store
            .open_claiming(&inc, &entries, Duration::from_secs(1800), Some(&change))
            .await?,
        OpenOutcome::Opened
    );
    assert_eq!(counter.calls(), ["DynamoDB.TransactWriteItems"]);

    let msg = Notification {
        subject: "[SEV2] prod/articles-api".into(),
        body: "b".into(),
        attributes: Default::default(),
        facts: Default::default(),
    };
    notifier.notify(Route::Severity(Severity::Sev2), &msg).await?;
    events
        .put(&PipelineEvent {
            detail_type: "Incident Opened".into(),
            detail: serde_json::json!({"incident": inc.id.0}),
        })
        .await?;
    let calls = counter.calls();
    println!("new-incident path calls: {calls:?}");
    assert_eq!(
        calls,
        [
            "DynamoDB.TransactWriteItems",
            "SNS.Publish",
            "EventBridge.PutEvents"
        ]
    );
    assert!(calls.len() <= 4);

    // a redelivery: the transaction, then the read that names the incident holding the id
    counter.reset();
    assert!(matches!(
        store.open(&inc, &entries, Duration::from_secs(1800)).await?,
        OpenOutcome::IdTaken(_)
    ));
    println!("redelivered open calls: {:?}", counter.calls());
    assert_eq!(
        counter.calls(),
        ["DynamoDB.TransactWriteItems", "DynamoDB.GetItem"]
    );
    Ok(())
}
