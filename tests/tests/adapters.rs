//! SNS, EventBridge, ECS and CloudWatch Logs adapters against moto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use anyhow::{Context, Result};
use chrono::Utc;
use firebreak_aws::{EcsServiceControl, EventBridgeBus, FilterLogEventsFetcher, SnsNotifier, Topics};
use firebreak_core::model::incident::EcsService;
use firebreak_core::model::severity::Severity;
use firebreak_core::ports::{
    EventBus, Notification, Notifier, PipelineEvent, Route, ServiceControl, ServiceUpdate,
};
use firebreak_integration::{bus_to_queue, ecs_service, log_group, moto, topic_to_queue};
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn sns_notifier_delivers_to_the_severity_topic() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let (sev1, q1) = topic_to_queue(&cfg, "sns-sev1").await?;
    let (sev2, q2) = topic_to_queue(&cfg, "sns-sev2").await?;
    let topics = Topics {
        sev1,
        sev2,
        sev3: "arn:aws:sns:us-east-1:123456789012:unused3".into(),
        sev4: "arn:aws:sns:us-east-1:123456789012:unused4".into(),
    };
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&cfg), topics);
    let msg = Notification {
        subject: format!("[SEV1] prod/articles-api {}", "é".repeat(120)),
        body: "5xx at 15% on /articles".into(),
        attributes: BTreeMap::from([
            ("severity".into(), "SEV1".into()),
            ("service".into(), "prod/articles-api".into()),
        ]),
        facts: firebreak_core::ports::PageFacts {
            incident: Some("INC-20260314-143500-a1b2c3d4".into()),
            ..Default::default()
        },
    };
    let id = notifier.notify(Route::Severity(Severity::Sev1), &msg).await?;

    let bodies = q1.receive(1, Duration::from_secs(10)).await?;
    assert_eq!(bodies.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(&bodies[0])?;
    assert_eq!(envelope["MessageId"], id.as_str());
    // published with MessageStructure=json: a queue (no protocol key of its own) gets
    // `default`, the chat custom notification, threaded on the incident
    let chat: serde_json::Value = serde_json::from_str(envelope["Message"].as_str().context("no Message")?)?;
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["description"], "5xx at 15% on /articles");
    assert_eq!(chat["metadata"]["threadId"], "INC-20260314-143500-a1b2c3d4");
    assert_eq!(
        envelope["Subject"]
            .as_str()
            .context("no Subject")?
            .chars()
            .count(),
        firebreak_aws::notify::MAX_SUBJECT_CHARS
    );
    assert_eq!(envelope["MessageAttributes"]["severity"]["Value"], "SEV1");
    assert_eq!(envelope["MessageAttributes"]["service"]["Type"], "String");
    assert!(
        q2.receive(1, Duration::from_secs(1)).await?.is_empty(),
        "SEV2 topic got a SEV1 page"
    );
    Ok(())
}

#[tokio::test]
async fn eventbridge_bus_events_reach_a_rule_target() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let (bus, queue) = bus_to_queue(&cfg, "bus").await?;
    let eb = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&cfg), &bus);
    eb.put(&PipelineEvent {
        detail_type: "Incident Opened".into(),
        detail: serde_json::json!({"incident": "INC-1", "severity": "SEV2"}),
    })
    .await?;
    let bodies = queue.receive(1, Duration::from_secs(10)).await?;
    assert_eq!(bodies.len(), 1);
    let ev: serde_json::Value = serde_json::from_str(&bodies[0])?;
    assert_eq!(ev["source"], "firebreak");
    assert_eq!(ev["detail-type"], "Incident Opened");
    assert_eq!(ev["detail"]["incident"], "INC-1");
    Ok(())
}

#[tokio::test]
async fn eventbridge_bus_that_does_not_exist_is_an_error() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let eb = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&cfg), "fb-no-such-bus");
    let res = eb
        .put(&PipelineEvent {
            detail_type: "Incident Opened".into(),
            detail: serde_json::json!({}),
        })
        .await;
    let err = res.err().context("putting on a missing bus succeeded")?;
    assert!(!err.retryable, "{err:?}");
    Ok(())
}

#[tokio::test]
async fn ecs_describe_lists_and_updates_a_service() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let fx = ecs_service(&cfg, "ecs", 3, 2).await?;
    let ecs = EcsServiceControl::new(aws_sdk_ecs::Client::new(&cfg));
    let svc = EcsService::new(&fx.cluster, &fx.service);

    let st = ecs.describe(&svc).await?;
    assert_eq!(st.task_definition, format!("{}:3", fx.family));
    assert_eq!(st.desired, 2);
    assert_eq!(st.status, "ACTIVE");
    assert_eq!(st.tags.get("team").map(String::as_str), Some("web"));
    assert_eq!(
        st.deployments.first().map(|d| d.task_definition.clone()),
        Some(format!("{}:3", fx.family))
    );

    let mut tds = ecs.task_definitions(&fx.family).await?;
    tds.sort();
    assert_eq!(
        tds,
        (1..=3).map(|r| format!("{}:{r}", fx.family)).collect::<Vec<_>>()
    );

    let change = ServiceUpdate {
        task_definition: Some(format!("{}:2", fx.family)),
        desired: Some(5),
        force_new_deployment: false,
    };
    let after = ecs.update(&svc, &change).await?;
    assert_eq!(after.task_definition, format!("{}:2", fx.family));
    assert_eq!(after.desired, 5);
    let reread = ecs.describe(&svc).await?;
    assert_eq!(reread.task_definition, format!("{}:2", fx.family));
    assert_eq!(reread.desired, 5);
    Ok(())
}

#[tokio::test]
async fn ecs_describe_of_a_missing_service_is_service_not_found() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let fx = ecs_service(&cfg, "ecs-missing", 1, 1).await?;
    let ecs = EcsServiceControl::new(aws_sdk_ecs::Client::new(&cfg));
    let err = ecs
        .describe(&EcsService::new(&fx.cluster, "nope"))
        .await
        .err()
        .context("describing a missing service succeeded")?;
    assert_eq!(err.code.as_deref(), Some("ServiceNotFoundException"));
    assert!(!err.retryable);
    Ok(())
}

#[tokio::test]
async fn filter_log_events_fetcher_pulls_the_window() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    // PutLogEvents drops events older than 14 days: keep the window recent.
    let base = (Utc::now() - chrono::Duration::hours(1)).timestamp_millis();
    let group = log_group(
        &cfg,
        "logs",
        &[
            (base - 60_000, "before the window"),
            (
                base,
                "DatabaseError: connection pool exhausted, max_connections=10",
            ),
            (base + 1_000, "GET /articles 500"),
            (base + 600_000, "after the window"),
        ],
    )
    .await?;
    let fetcher = FilterLogEventsFetcher::new(aws_sdk_cloudwatchlogs::Client::new(&cfg), 100);
    let start = chrono::DateTime::from_timestamp_millis(base).context("start")?;
    let end = chrono::DateTime::from_timestamp_millis(base + 60_000).context("end")?;
    let events = fetcher.fetch(std::slice::from_ref(&group), start, end).await?;
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "DatabaseError: connection pool exhausted, max_connections=10",
            "GET /articles 500"
        ]
    );
    assert!(events.iter().all(|e| e.group == group && e.stream == "app/1"));
    assert_eq!(events[0].timestamp_ms, base);

    let small = FilterLogEventsFetcher::new(aws_sdk_cloudwatchlogs::Client::new(&cfg), 1);
    assert!(small.fetch(&[group], start, end).await.is_err());
    Ok(())
}
