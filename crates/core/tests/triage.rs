//! Triage on the in-memory ports: opening, attaching, escalating, reopening, recovering, and
//! redelivery of every kind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] fns

use chrono::{DateTime, Duration, Utc};
use firebreak_core::model::incident::{IncidentId, IncidentStatus};
use firebreak_core::model::severity::Severity;
use firebreak_core::model::signal::{AlarmSignal, AlarmState};
use firebreak_core::model::timeline::EntryKind;
use firebreak_core::ports::{detail_types, IncidentStore, PointerChange, Route};
use firebreak_core::stages::triage::TriageOutcome;

mod common;
use common::{at, sample, World};

/// An ALARM on prod/articles-api with a given name, severity tag and delivery.
fn alarm(name: &str, severity: Option<&str>, delivery: &str, t: &str) -> AlarmSignal {
    let mut s = sample("eventbridge-metric-alarm.json");
    s.alarm_name = name.to_string();
    s.delivery_id = delivery.to_string();
    s.changed_at = at(t);
    s.tags.insert("ecs-cluster".into(), "prod".into());
    s.tags.insert("ecs-service".into(), "articles-api".into());
    match severity {
        Some(v) => s.tags.insert("severity".into(), v.into()),
        None => s.tags.remove("severity"),
    };
    s
}

fn ok(name: &str, delivery: &str, t: &str) -> AlarmSignal {
    let mut s = alarm(name, None, delivery, t);
    s.state = AlarmState::Ok;
    s.previous_state = Some(AlarmState::Alarm);
    s
}

#[tokio::test]
async fn a_new_alarm_opens_a_classified_incident_pages_and_tells_diagnose() {
    let w = World::new();
    let signal = sample("sns-metric-alarm.json");
    let out = w.triage().handle(&signal).await.unwrap();
    let TriageOutcome::Opened { id } = out else {
        panic!("{out:?}")
    };

    let incidents = w.incidents().await;
    assert_eq!(incidents.len(), 1);
    let inc = &incidents[0];
    assert_eq!(inc.id, id);
    assert_eq!(
        inc.severity,
        Severity::Sev2,
        "a 5xx alarm is SEV2 in the shipped policy"
    );
    assert_eq!(inc.service, "prod/articles-api");
    assert_eq!(inc.status, IncidentStatus::Open);
    assert_eq!(inc.detected_at, signal.changed_at);

    let kinds: Vec<EntryKind> = w
        .store
        .timeline(&id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            EntryKind::AlarmFired,
            EntryKind::Opened,
            EntryKind::Classified,
            EntryKind::Paged
        ]
    );

    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Route::Severity(Severity::Sev2));
    let page = &sent[0].1;
    for needle in [
        "SEV2",
        "prod/articles-api",
        "articles-api-5xx-rate",
        id.as_str(),
        "Threshold Crossed",
        "firebreak ack",
    ] {
        assert!(
            page.body.contains(needle) || page.subject.contains(needle),
            "page lacks {needle}: {page:?}"
        );
    }
    assert!(page.subject.chars().count() <= 100);
    assert_eq!(w.detail_types(), [detail_types::INCIDENT_OPENED]);
}

#[tokio::test]
async fn when_alarm_redelivered_nothing_changes() {
    let w = World::new();
    let signal = sample("sns-metric-alarm.json");
    let first = w.triage().handle(&signal).await.unwrap();
    let id = first.incident().unwrap().clone();
    let before = (
        w.store.timeline(&id).await.unwrap(),
        w.incidents().await,
        w.notifier.sent().len(),
        w.bus.events().len(),
    );

    w.clock.advance(Duration::seconds(40));
    let again = w.triage().handle(&signal).await.unwrap();
    assert_eq!(again, TriageOutcome::Duplicate { id: id.clone() });
    let after = (
        w.store.timeline(&id).await.unwrap(),
        w.incidents().await,
        w.notifier.sent().len(),
        w.bus.events().len(),
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn twenty_different_alarms_on_one_service_make_one_incident_and_one_page() {
    let w = World::new();
    let t = w.triage();
    let signals: Vec<AlarmSignal> = (0..20)
        .map(|i| {
            alarm(
                &format!("articles-api-alarm-{i}"),
                Some("SEV3"),
                &format!("d-{i}"),
                "2026-03-14T14:35:00Z",
            )
        })
        .collect();
    let outcomes = futures::future::join_all(signals.iter().map(|s| t.handle(s))).await;
    let opened = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(TriageOutcome::Opened { .. })))
        .count();
    let attached = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(TriageOutcome::Attached { escalated: false, .. })))
        .count();
    assert_eq!((opened, attached), (1, 19), "{outcomes:?}");
    let incidents = w.incidents().await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].alarms.len(), 20);
    assert_eq!(w.notifier.sent().len(), 1, "a storm pages once");
}

#[tokio::test]
async fn a_more_severe_alarm_escalates_pages_again_and_never_de_escalates() {
    let w = World::new();
    let t = w.triage();
    let first = t
        .handle(&alarm(
            "articles-api-latency",
            Some("SEV3"),
            "a",
            "2026-03-14T14:35:00Z",
        ))
        .await
        .unwrap();
    let id = first.incident().unwrap().clone();
    let up = t
        .handle(&alarm(
            "articles-api-all-unhealthy",
            Some("SEV1"),
            "b",
            "2026-03-14T14:36:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(
        up,
        TriageOutcome::Attached {
            id: id.clone(),
            escalated: true
        }
    );
    let down = t
        .handle(&alarm(
            "articles-api-disk",
            Some("SEV4"),
            "c",
            "2026-03-14T14:37:00Z",
        ))
        .await
        .unwrap();
    assert_eq!(
        down,
        TriageOutcome::Attached {
            id: id.clone(),
            escalated: false
        }
    );

    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.severity, Severity::Sev1);
    assert!(inc.last_escalated_at.is_some());
    let routes: Vec<Route> = w.notifier.sent().into_iter().map(|(r, _)| r).collect();
    assert_eq!(
        routes,
        [Route::Severity(Severity::Sev3), Route::Severity(Severity::Sev1)]
    );
    assert_eq!(
        w.detail_types(),
        [detail_types::INCIDENT_OPENED, detail_types::INCIDENT_ESCALATED]
    );
    let timeline = w.store.timeline(&id).await.unwrap();
    let esc = timeline
        .iter()
        .find(|e| e.kind() == EntryKind::Escalated)
        .unwrap();
    assert!(esc.summary.contains("SEV3 → SEV1"), "{}", esc.summary);
}

#[tokio::test]
async fn recovery_is_recorded_and_handed_to_resolve_once() {
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-5xx-rate", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    let recovered = ok("articles-api-5xx-rate", "b", "2026-03-14T15:00:00Z");
    assert_eq!(
        t.handle(&recovered).await.unwrap(),
        TriageOutcome::Recovered { id: id.clone() }
    );
    assert_eq!(
        t.handle(&recovered).await.unwrap(),
        TriageOutcome::Duplicate { id: id.clone() }
    );

    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert!(inc.all_alarms_ok());
    assert_eq!(
        w.detail_types(),
        [detail_types::INCIDENT_OPENED, detail_types::ALARM_RECOVERED]
    );
    let recovered_entries = w
        .store
        .timeline(&id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind() == EntryKind::AlarmRecovered)
        .count();
    assert_eq!(recovered_entries, 1);
    assert_eq!(w.notifier.sent().len(), 1, "recovery does not page");
}

#[tokio::test]
async fn recovery_without_an_incident_and_insufficient_data_page_nobody() {
    let w = World::new();
    let t = w.triage();
    assert_eq!(
        t.handle(&ok("articles-api-5xx-rate", "x", "2026-03-14T15:00:00Z"))
            .await
            .unwrap(),
        TriageOutcome::NoIncident
    );
    let nodata = sample("sns-metric-insufficient-data.json");
    assert_eq!(
        t.handle(&nodata).await.unwrap(),
        TriageOutcome::Recorded { id: None }
    );
    assert!(w.incidents().await.is_empty());

    let id = t
        .handle(&alarm("articles-api-5xx-rate", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    let mut gap = alarm("articles-api-5xx-rate", None, "n", "2026-03-14T14:40:00Z");
    gap.state = AlarmState::InsufficientData;
    assert_eq!(
        t.handle(&gap).await.unwrap(),
        TriageOutcome::Recorded { id: Some(id.clone()) }
    );
    assert_eq!(w.notifier.sent().len(), 1);
    let kinds: Vec<EntryKind> = w
        .store
        .timeline(&id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind())
        .collect();
    assert!(kinds.contains(&EntryKind::AlarmInsufficientData));
    assert_eq!(
        w.store.get(&id).await.unwrap().unwrap().alarms["articles-api-5xx-rate"].state,
        AlarmState::Alarm
    );
}

async fn mark_resolved(w: &World, id: &IncidentId, t: &str) {
    let mut inc = w.store.get(id).await.unwrap().unwrap();
    let v = inc.version;
    inc.version += 1;
    inc.status = IncidentStatus::Resolved;
    inc.resolved_at = Some(at(t));
    w.store.save(&inc, v, PointerChange::Release, &[]).await.unwrap();
}

#[tokio::test]
async fn an_alarm_within_the_reopen_window_reopens_and_after_it_opens_anew() {
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-p99", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    mark_resolved(&w, &id, "2026-03-14T14:40:00Z").await;

    w.clock.set(at("2026-03-14T14:50:00Z"));
    let again = t
        .handle(&alarm("articles-api-p99", None, "b", "2026-03-14T14:50:00Z"))
        .await
        .unwrap();
    assert_eq!(again, TriageOutcome::Reopened { id: id.clone() });
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (inc.status, inc.reopened, inc.resolved_at),
        (IncidentStatus::Open, 1, None)
    );
    assert_eq!(w.notifier.sent().len(), 2, "a reopen pages");
    assert!(w.notifier.sent()[1].1.subject.contains("REOPENED"));

    mark_resolved(&w, &id, "2026-03-14T15:00:00Z").await;
    w.clock.set(at("2026-03-14T16:00:00Z"));
    let later = t
        .handle(&alarm("articles-api-p99", None, "c", "2026-03-14T16:00:00Z"))
        .await
        .unwrap();
    let TriageOutcome::Opened { id: new_id } = later else {
        panic!("{later:?}")
    };
    assert_ne!(new_id, id);
    assert_eq!(w.incidents().await.len(), 2);
}

#[tokio::test]
async fn a_failed_page_is_retryable_and_the_redelivery_finishes_it_once() {
    let w = World::new();
    w.notifier.fail_next(1);
    let t = w.triage();
    let signal = sample("sns-metric-alarm.json");
    let err = t.handle(&signal).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(
        w.incidents().await.len(),
        1,
        "the incident is recorded even though the page failed"
    );

    let again = t.handle(&signal).await.unwrap();
    let id = again.incident().unwrap().clone();
    assert_eq!(w.notifier.sent().len(), 1);
    // The event goes out before the page, so the retry of a failed page puts it again: harmless
    // (diagnose records a cycle's diagnosis once), where putting it after the page would repeat
    // the page when only the event failed.
    assert_eq!(
        w.detail_types(),
        [detail_types::INCIDENT_OPENED, detail_types::INCIDENT_OPENED]
    );
    let third = t.handle(&signal).await.unwrap();
    assert_eq!(third, TriageOutcome::Duplicate { id });
    assert_eq!(
        w.notifier.sent().len(),
        1,
        "once paged, never again for the same delivery"
    );
}

#[tokio::test]
async fn a_late_ok_does_not_recover_an_alarm_that_fired_again_after_it() {
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-5xx-rate", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    // 14:55 ALARM (a fresh state change) arrives before the 14:50 OK, which SNS delivered late.
    assert!(matches!(
        t.handle(&alarm("articles-api-5xx-rate", None, "b", "2026-03-14T14:55:00Z"))
            .await
            .unwrap(),
        TriageOutcome::Attached { .. }
    ));
    let late = ok("articles-api-5xx-rate", "c", "2026-03-14T14:50:00Z");
    assert_eq!(
        t.handle(&late).await.unwrap(),
        TriageOutcome::Stale { id: id.clone() }
    );

    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        inc.alarms["articles-api-5xx-rate"].state,
        AlarmState::Alarm,
        "still firing"
    );
    assert!(
        !w.detail_types()
            .contains(&detail_types::ALARM_RECOVERED.to_string()),
        "resolve was not told"
    );
    let timeline = w.store.timeline(&id).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.summary.contains("arrived after its ALARM from 14:55:00")),
        "the late OK is on the timeline"
    );
}

#[tokio::test]
async fn a_late_alarm_copy_does_not_reopen_a_resolved_incident() {
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-5xx-rate", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    mark_resolved(&w, &id, "2026-03-14T15:00:00Z").await;
    w.clock.set(at("2026-03-14T15:01:00Z"));
    // The same 14:35 state change, delivered again through the other channel (new delivery id).
    let copy = alarm(
        "articles-api-5xx-rate",
        None,
        "a-via-eventbridge",
        "2026-03-14T14:35:00Z",
    );
    assert_eq!(
        t.handle(&copy).await.unwrap(),
        TriageOutcome::Duplicate { id: id.clone() }
    );
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!((inc.status, inc.reopened), (IncidentStatus::Resolved, 0));
    assert_eq!(w.notifier.sent().len(), 1, "no page for a copy");
}

#[tokio::test]
async fn a_reopened_incident_needs_a_new_acknowledgement() {
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-p99", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    let mut inc = w.store.get(&id).await.unwrap().unwrap();
    let v = inc.version;
    inc.version += 1;
    inc.acknowledged_at = Some(at("2026-03-14T14:36:00Z"));
    inc.acknowledged_by = Some("oncall".into());
    w.store.save(&inc, v, PointerChange::Keep, &[]).await.unwrap();
    mark_resolved(&w, &id, "2026-03-14T14:40:00Z").await;
    w.clock.set(at("2026-03-14T14:50:00Z"));
    assert!(matches!(
        t.handle(&alarm("articles-api-p99", None, "b", "2026-03-14T14:50:00Z"))
            .await
            .unwrap(),
        TriageOutcome::Reopened { .. }
    ));
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (inc.acknowledged_at, inc.acknowledged_by.as_deref()),
        (None, None)
    );
    assert_eq!(inc.reopened_at, Some(at("2026-03-14T14:50:00Z")));
}

/// Two deliveries, one per service, whose first candidate ids are the same (the id shows 32 bits
/// of a hash, so such pairs exist and are found by search in milliseconds).
fn colliding_deliveries(at: DateTime<Utc>, a: &str, b: &str) -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    for i in 0..1_000_000u32 {
        let da = format!("a-{i}");
        seen.insert(IncidentId::derive(at, &da, a), da);
        let db = format!("b-{i}");
        if let Some(da) = seen.get(&IncidentId::derive(at, &db, b)) {
            return (da.clone(), db);
        }
    }
    panic!("no colliding pair found")
}

/// An ALARM for the ECS service `prod/<service>`.
fn alarm_on(service: &str, delivery: &str, t: &str) -> AlarmSignal {
    let mut s = alarm(&format!("{service}-health"), Some("SEV2"), delivery, t);
    s.tags.insert("ecs-service".into(), service.into());
    s
}

#[tokio::test]
async fn two_services_whose_alarms_share_an_incident_id_get_two_incidents() {
    let w = World::new();
    let t = "2026-03-14T14:35:00Z";
    let (da, db) = colliding_deliveries(at(t), "prod/svc-a", "prod/svc-b");
    let a = alarm_on("svc-a", &da, t);
    let b = alarm_on("svc-b", &db, t);

    let TriageOutcome::Opened { id: ia } = w.triage().handle(&a).await.unwrap() else {
        panic!("svc-a not opened")
    };
    let out = w.triage().handle(&b).await.unwrap();
    let TriageOutcome::Opened { id: ib } = out else {
        panic!("svc-b's alarm was taken for a redelivery of svc-a's: {out:?}")
    };
    assert_ne!(ia, ib);
    let incidents = w.incidents().await;
    let services: Vec<&str> = incidents.iter().map(|i| i.service.as_str()).collect();
    assert_eq!(services.len(), 2);
    assert!(services.contains(&"prod/svc-a") && services.contains(&"prod/svc-b"));
    let subjects: Vec<String> = w.notifier.sent().into_iter().map(|(_, n)| n.subject).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[1].contains("prod/svc-b opened: svc-b-health"),
        "{subjects:?}"
    );

    // Redeliveries of either are still known as such: nothing new, no page.
    for s in [&a, &b] {
        assert!(matches!(
            w.triage().handle(s).await.unwrap(),
            TriageOutcome::Duplicate { .. }
        ));
    }
    assert_eq!(w.incidents().await.len(), 2);
    assert_eq!(w.notifier.sent().len(), 2);
}

#[tokio::test]
async fn a_delivery_is_a_redelivery_only_when_its_own_identity_was_recorded() {
    // The same delivery id and service in the same second give the same candidate id; a
    // different state-change time makes it another alarm transition, not a redelivery.
    let mut w = World::new();
    w.settings.reopen_window_s = 0;
    let first = alarm(
        "articles-api-5xx",
        Some("SEV2"),
        "same-id",
        "2026-03-14T14:35:00.000Z",
    );
    let TriageOutcome::Opened { id } = w.triage().handle(&first).await.unwrap() else {
        panic!("not opened")
    };
    let mut inc = w.store.get(&id).await.unwrap().unwrap();
    let v = inc.version;
    inc.status = IncidentStatus::Resolved;
    inc.resolved_at = Some(at("2026-03-14T14:35:00.200Z"));
    inc.version = v + 1;
    w.store.save(&inc, v, PointerChange::Release, &[]).await.unwrap();

    let later = alarm(
        "articles-api-5xx",
        Some("SEV2"),
        "same-id",
        "2026-03-14T14:35:00.500Z",
    );
    let out = w.triage().handle(&later).await.unwrap();
    let TriageOutcome::Opened { id: second } = out else {
        panic!("another transition was taken for a redelivery: {out:?}")
    };
    assert_ne!(second, id);
    assert_eq!(w.incidents().await.len(), 2);
    // ... while the first transition delivered again is still a redelivery.
    assert_eq!(
        w.triage().handle(&first).await.unwrap(),
        TriageOutcome::Duplicate { id }
    );
}

#[tokio::test]
async fn the_page_shows_the_alarms_words_inert() {
    let w = World::new();
    let mut s = alarm("articles-api-5xx", None, "evil-1", "2026-03-14T14:35:00Z");
    s.alarm_name = "articles-api-5xx @channel <!here>\u{1b}[31m".into();
    s.reason = "Threshold Crossed @here <@U123>\u{0}\u{202e} [click](http://evil.example)".into();
    w.triage().handle(&s).await.unwrap();
    let sent = w.notifier.sent();
    assert_eq!(sent.len(), 1);
    let (_, page) = &sent[0];
    for text in [&page.subject, &page.body] {
        for raw in [
            "@channel", "@here", "<!here>", "<@U123>", "\u{1b}", "\u{0}", "\u{202e}",
        ] {
            assert!(!text.contains(raw), "{raw:?} is live in the page: {text:?}");
        }
    }
    // readable: the alarm's name and reason are still there
    assert!(page.subject.contains("articles-api-5xx"), "{}", page.subject);
    assert!(page.body.contains("Threshold Crossed"), "{}", page.body);
}

#[tokio::test]
async fn a_late_alarm_from_before_the_resolution_reopens_and_is_paged() {
    // B fires at 14:40 but is delivered after A's OK at 15:00 resolved the incident.
    let w = World::new();
    let t = w.triage();
    let id = t
        .handle(&alarm("articles-api-5xx-rate", None, "a", "2026-03-14T14:35:00Z"))
        .await
        .unwrap()
        .incident()
        .unwrap()
        .clone();
    mark_resolved(&w, &id, "2026-03-14T15:00:00Z").await;
    w.clock.set(at("2026-03-14T15:02:00Z"));
    let late = alarm("articles-api-p99-latency", None, "b", "2026-03-14T14:40:00Z");
    let out = t.handle(&late).await.unwrap();
    assert_ne!(
        out,
        TriageOutcome::Stale { id: id.clone() },
        "a late alarm was dropped"
    );
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!((inc.status, inc.reopened), (IncidentStatus::Open, 1));
    assert!(inc.alarms.contains_key("articles-api-p99-latency"));
    assert_eq!(w.notifier.sent().len(), 2, "the late alarm is paged");
    // and its own later OK is not ignored: it is news for the incident
    let ok = ok("articles-api-p99-latency", "b-ok", "2026-03-14T15:05:00Z");
    assert!(!matches!(
        t.handle(&ok).await.unwrap(),
        TriageOutcome::Stale { .. }
    ));
}

#[tokio::test]
async fn the_other_channels_copy_of_a_state_change_adds_its_tags_not_a_page() {
    let w = World::new();
    let t = w.triage();
    let first = alarm("articles-api-5xx-rate", None, "sns-1", "2026-03-14T14:35:00Z");
    let id = t.handle(&first).await.unwrap().incident().unwrap().clone();
    let mut copy = alarm("articles-api-5xx-rate", None, "eb-1", "2026-03-14T14:35:00Z");
    copy.tags.insert("team".into(), "articles".into());
    assert_eq!(
        t.handle(&copy).await.unwrap(),
        TriageOutcome::Duplicate { id: id.clone() }
    );
    assert_eq!(w.incidents().await.len(), 1);
    assert_eq!(w.notifier.sent().len(), 1, "one page for one state change");
    let t = w.store.timeline(&id).await.unwrap();
    assert!(
        t.iter()
            .any(|e| e.summary.contains("a copy of a recorded state change")
                && e.summary.contains("team=articles")),
        "{t:?}"
    );
}

/// The SNS and the EventBridge copy of one state change, as delivered: the SNS copy carries no
/// tags, so it classifies by its dimensions and the policy; the EventBridge copy's tags name
/// another service and a severity. One incident, one page, whichever copy comes first.
fn two_channel_copies() -> (AlarmSignal, AlarmSignal) {
    let mut sns = sample("sns-metric-alarm.json");
    sns.delivery_id = "sns-msg-1".into();
    sns.changed_at = at("2026-03-14T14:35:00.123Z");
    sns.tags.clear();
    let mut eb = sns.clone();
    eb.delivery_id = "eb-event-1".into();
    eb.channel = sample("eventbridge-metric-alarm.json").channel;
    eb.tags.insert("ecs-cluster".into(), "prod".into());
    eb.tags.insert("ecs-service".into(), "checkout-api".into());
    eb.tags.insert("severity".into(), "SEV1".into());
    (sns, eb)
}

#[tokio::test]
async fn two_channels_copies_of_one_state_change_give_one_incident_and_one_page_in_either_order() {
    for sns_first in [true, false] {
        let w = World::new();
        let t = w.triage();
        let (sns, eb) = two_channel_copies();
        assert_ne!(
            w.policy.classify(&sns).service,
            w.policy.classify(&eb).service,
            "the copies classify apart on their own"
        );
        let (first, second) = if sns_first { (&sns, &eb) } else { (&eb, &sns) };
        let opened = t.handle(first).await.unwrap();
        let TriageOutcome::Opened { id } = opened else {
            panic!("{opened:?}")
        };
        assert_eq!(
            t.handle(second).await.unwrap(),
            TriageOutcome::Duplicate { id: id.clone() }
        );
        // and each copy redelivered changes nothing
        t.handle(first).await.unwrap();
        t.handle(second).await.unwrap();
        assert_eq!(w.incidents().await.len(), 1, "sns first: {sns_first}");
        assert_eq!(w.notifier.sent().len(), 1, "sns first: {sns_first}");
        let timeline = w.store.timeline(&id).await.unwrap();
        let copies: Vec<_> = timeline
            .iter()
            .filter(|e| e.summary.contains("a copy of a recorded state change"))
            .collect();
        assert_eq!(copies.len(), 1, "{timeline:#?}");
        if sns_first {
            assert!(
                copies[0].summary.contains("severity=SEV1"),
                "{}",
                copies[0].summary
            );
        }
    }
}

#[tokio::test]
async fn a_copy_arriving_while_the_other_is_being_recorded_waits_then_asks_for_a_retry() {
    let w = World::new();
    let (sns, eb) = two_channel_copies();
    // the SNS copy claimed the change and stopped before recording it (a crash, a timeout)
    w.store
        .claim_transition(&firebreak_core::ports::Transition {
            key: firebreak_core::stages::triage::transition_key(&sns),
            delivery: sns.delivery_id.clone(),
            service: w.policy.classify(&sns).service,
            until: at("2026-03-17T00:00:00Z"),
        })
        .await
        .unwrap();
    let e = w.triage().handle(&eb).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("sns-msg-1"), "{e}");
    assert!(w.incidents().await.is_empty());
    // the SNS copy's retry records it; then the EventBridge copy's retry attaches
    let id = w.triage().handle(&sns).await.unwrap().incident().unwrap().clone();
    assert_eq!(
        w.triage().handle(&eb).await.unwrap(),
        TriageOutcome::Duplicate { id }
    );
    assert_eq!(w.notifier.sent().len(), 1);
}

#[tokio::test]
async fn a_delivery_retried_after_its_alarm_recovered_is_not_recorded_again() {
    let w = World::new();
    let t = w.triage();
    let first = alarm("articles-api-5xx-rate", None, "d-1", "2026-03-14T14:35:00Z");
    let id = t.handle(&first).await.unwrap().incident().unwrap().clone();
    let second = alarm("articles-api-p99-latency", None, "d-2", "2026-03-14T14:36:00Z");
    t.handle(&second).await.unwrap();
    t.handle(&ok("articles-api-p99-latency", "d-3", "2026-03-14T14:50:00Z"))
        .await
        .unwrap();
    // d-2 again (a redelivery, or a retry whose first attempt was recorded)
    assert_eq!(
        t.handle(&second).await.unwrap(),
        TriageOutcome::Duplicate { id: id.clone() }
    );
    let timeline = w.store.timeline(&id).await.unwrap();
    assert!(
        !timeline
            .iter()
            .any(|e| e.event_id.starts_with("d-2/") && e.event_id.ends_with("/stale")),
        "{timeline:#?}"
    );
}
