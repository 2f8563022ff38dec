//! The chat buttons (stages::chat) on a real incident: the authenticated-approval drill up to
//! the point where the scale-out awaits approval, then Acknowledge, Approve and Show timeline as
//! a responder's verified session, and what each answers in the incident's thread.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use firebreak_core::adapters::memory::{InMemoryEventBus, InMemoryIncidentStore, InMemoryNotifier, SimClock};
use firebreak_core::drill::{self, DrillEnv, LoadedScenario};
use firebreak_core::model::incident::IncidentId;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::ports::{IncidentStore, ListQuery, PointerChange};
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::chat::{Chat, ChatCommand, Responder, Responders};
use firebreak_core::stages::remediate::Approvers;
use std::path::Path;

const ROLE: &str = "arn:aws:iam::123456789012:role/firebreak-chat-alice";

async fn awaiting_approval() -> (InMemoryIncidentStore, IncidentId) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/scenarios/authenticated-approval");
    let mut loaded = LoadedScenario::load(&dir).unwrap();
    // the forged OK and the alarm: the scale-out then waits for a person
    loaded.scenario.steps.truncate(2);
    let policy = SeverityPolicy::shipped().unwrap();
    let runbooks = RunbookSet::shipped().unwrap();
    let store = InMemoryIncidentStore::new();
    let env = DrillEnv {
        policy: &policy,
        runbooks: &runbooks,
    };
    drill::run_with_store(&loaded, &env, &store).await.unwrap();
    let id = store.list(&ListQuery::default()).await.unwrap()[0].id.clone();
    (store, id)
}

fn approvers() -> Approvers {
    Approvers::role("arn:aws:iam::123456789012:role/FirebreakApproverRole")
        .unwrap()
        .with_chat_roles(&[ROLE.to_string()])
        .unwrap()
}

fn alice() -> Responder {
    Responders::new([("AROAALICE".to_string(), ROLE.to_string())])
        .of("AROAALICE:alice@example.com")
        .unwrap()
}

#[tokio::test]
async fn approve_puts_the_approval_as_the_verified_session_and_answers_in_the_thread() {
    let (store, id) = awaiting_approval().await;
    let (bus, notifier) = (InMemoryEventBus::new(), InMemoryNotifier::new());
    let clock = SimClock::new(chrono::Utc::now());
    let approvers = approvers();
    let chat = Chat {
        store: &store,
        bus: &bus,
        notifier: &notifier,
        clock: &clock,
        approvers: &approvers,
    };
    let cmd = ChatCommand::parse(&format!("approve:{id}:0:ecs-scale-out")).unwrap();
    let a = chat.handle(&cmd, &alice()).await.unwrap();
    assert!(a.changed, "{a:?}");
    assert!(
        a.text.contains(
            "ecs-scale-out on prod/articles-api approved by firebreak-chat-alice/alice@example.com"
        ),
        "{}",
        a.text
    );
    let ev = bus.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].detail_type, "Remediation Approved");
    let by = ev[0].detail["approved_by"].as_str().unwrap();
    assert_eq!(
        by,
        "arn:aws:sts::123456789012:assumed-role/firebreak-chat-alice/alice@example.com"
    );
    // remediate accepts it only when the role is one of the chat responders
    assert!(
        Approvers::role("arn:aws:iam::123456789012:role/FirebreakApproverRole")
            .unwrap()
            .check(by)
            .is_err()
    );
    let approvers = Approvers::role("arn:aws:iam::123456789012:role/FirebreakApproverRole")
        .unwrap()
        .with_chat_roles(&[ROLE.to_string()])
        .unwrap();
    assert_eq!(approvers.check(by), Ok(()));
    // the answer threads under the incident's pages
    let sent = notifier.sent();
    assert_eq!(sent[0].1.facts.incident.as_deref(), Some(id.as_str()));
    assert!(
        sent[0]
            .1
            .subject
            .starts_with("[SEV2] ecs-scale-out on prod/articles-api approved"),
        "{}",
        sent[0].1.subject
    );
}

#[tokio::test]
async fn a_stale_cycle_a_resolved_incident_and_an_unknown_action_change_nothing() {
    let (store, id) = awaiting_approval().await;
    let (bus, notifier) = (InMemoryEventBus::new(), InMemoryNotifier::new());
    let clock = SimClock::new(chrono::Utc::now());
    let approvers = approvers();
    let chat = Chat {
        store: &store,
        bus: &bus,
        notifier: &notifier,
        clock: &clock,
        approvers: &approvers,
    };
    let stale = chat
        .handle(
            &ChatCommand::parse(&format!("approve:{id}:3:ecs-scale-out")).unwrap(),
            &alice(),
        )
        .await
        .unwrap();
    assert!(
        !stale.changed && stale.text.contains("cycle 3") && stale.text.contains("nothing changed"),
        "{stale:?}"
    );
    let unknown = chat
        .handle(
            &ChatCommand::parse(&format!("approve:{id}:0:rm-rf")).unwrap(),
            &alice(),
        )
        .await
        .unwrap();
    assert!(
        !unknown.changed && unknown.text.starts_with("Not approved (action"),
        "{unknown:?}"
    );
    let not_awaiting = chat
        .handle(
            &ChatCommand::parse(&format!("approve:{id}:0:ecs-rollback")).unwrap(),
            &alice(),
        )
        .await
        .unwrap();
    assert!(
        !not_awaiting.changed && not_awaiting.text.ends_with("nothing changed"),
        "{not_awaiting:?}"
    );
    // resolved by hand
    let mut inc = store.get(&id).await.unwrap().unwrap();
    let v = inc.version;
    inc.resolve(chrono::Utc::now());
    inc.version = v + 1;
    store.save(&inc, v, PointerChange::Keep, &[]).await.unwrap();
    for cmd in [format!("approve:{id}:0:ecs-scale-out"), format!("ack:{id}:0")] {
        let a = chat
            .handle(&ChatCommand::parse(&cmd).unwrap(), &alice())
            .await
            .unwrap();
        assert!(!a.changed && a.text.contains("is resolved"), "{a:?}");
    }
    assert!(bus.events().is_empty(), "nothing was put on the bus");
    // a responder whose role remediate would not accept is told so, before anything is put
    let stranger = Responders::new([(
        "AROAEVE".to_string(),
        "arn:aws:iam::123456789012:role/eve".to_string(),
    )])
    .of("AROAEVE:eve")
    .unwrap();
    let (store2, id2) = awaiting_approval().await;
    let chat2 = Chat {
        store: &store2,
        bus: &bus,
        notifier: &notifier,
        clock: &clock,
        approvers: &approvers,
    };
    let a = chat2
        .handle(
            &ChatCommand::parse(&format!("approve:{id2}:0:ecs-scale-out")).unwrap(),
            &stranger,
        )
        .await
        .unwrap();
    assert!(
        !a.changed
            && a.text
                .starts_with("Not approved: eve/eve is not a session remediate accepts"),
        "{a:?}"
    );
    assert!(bus.events().is_empty());
    assert_eq!(notifier.sent().len(), 6, "every press is answered");
}

#[tokio::test]
async fn acknowledge_once_then_already_and_the_timeline_is_shown() {
    let (store, id) = awaiting_approval().await;
    let (bus, notifier) = (InMemoryEventBus::new(), InMemoryNotifier::new());
    let clock = SimClock::new(chrono::Utc::now());
    let approvers = approvers();
    let chat = Chat {
        store: &store,
        bus: &bus,
        notifier: &notifier,
        clock: &clock,
        approvers: &approvers,
    };
    let ack = ChatCommand::parse(&format!("ack:{id}:0")).unwrap();
    let a = chat.handle(&ack, &alice()).await.unwrap();
    assert!(a.changed, "{a:?}");
    let inc = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        inc.acknowledged_by.as_deref(),
        Some("firebreak-chat-alice/alice@example.com")
    );
    assert_eq!(bus.events()[0].detail_type, "Incident Acknowledged");
    let again = chat.handle(&ack, &alice()).await.unwrap();
    assert!(
        !again.changed
            && again
                .text
                .contains("already acknowledged by firebreak-chat-alice"),
        "{again:?}"
    );
    let t = chat
        .handle(&ChatCommand::parse(&format!("timeline:{id}")).unwrap(), &alice())
        .await
        .unwrap();
    assert!(!t.changed);
    assert!(t.text.contains("approval-requested"), "{}", t.text);
    assert!(t.text.lines().count() <= 16, "{}", t.text);
}

#[test]
fn commands_and_senders_that_do_not_read_are_refused_naming_why() {
    for bad in [
        "",
        "approve",
        "approve:INC-1:0",
        "ack:not-an-id:0",
        "ack:INC-20260314-143500-a1b2c3d4:x",
        "delete:x",
    ] {
        assert!(ChatCommand::parse(bad).is_err(), "{bad:?}");
    }
    let long = format!("timeline:{}", "x".repeat(600));
    assert!(ChatCommand::parse(&long).unwrap_err().to_string().contains("512"));
    let r = Responders::new([("AROAALICE".to_string(), ROLE.to_string())]);
    assert!(r
        .of("AROAMALLORY:mallory")
        .unwrap_err()
        .contains("not one of Firebreak's chat responder roles"));
    assert!(r.of("AIDAUSER").unwrap_err().contains("not a role session"));
}
