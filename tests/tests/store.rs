//! DynamoIncidentStore against moto: the in-memory store's guarantees, over real conditional
//! writes.

use anyhow::Result;
use chrono::{DateTime, Duration as Cd, TimeZone, Utc};
use firebreak_aws::DynamoIncidentStore;
use firebreak_core::model::autonomy::{AutonomyKey, AutonomyRecord, Mark, PromotionPolicy};
use firebreak_core::model::incident::{IncidentId, IncidentStatus};
use firebreak_core::model::settings::RemediationMode;
use firebreak_core::model::timeline::{EntryKind, TimelineEntry};
use firebreak_core::ports::{IncidentStore, Lease, ListQuery, OpenOutcome, PointerChange, StoreError};
use firebreak_integration::{incident, moto, table};
use std::sync::Arc;
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(1800);
const SVC: &str = "prod/articles-api";

#[allow(clippy::unwrap_used)] // a fixed, valid date
fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, h, m, 0).single().unwrap()
}

fn entry(id: &str, at: DateTime<Utc>) -> TimelineEntry {
    TimelineEntry::new(id, at, EntryKind::Note, id)
}

async fn store(test: &str) -> Result<(Arc<firebreak_integration::Moto>, DynamoIncidentStore)> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let (client, name) = table(&cfg, test).await?;
    Ok((m, DynamoIncidentStore::new(client, name)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_opens_on_one_service_open_exactly_one() -> Result<()> {
    let (_m, store) = store("concurrent-open").await?;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let inc = incident(&format!("INC-20260314-143500-{i:04x}"), SVC, t(14, 35));
                let e = entry(&format!("d{i}/opened"), t(14, 35));
                store.open(&inc, &[e], WINDOW).await.map(|o| (inc.id, o))
            })
        })
        .collect();
    let mut opened = Vec::new();
    let mut existing = Vec::new();
    for task in tasks {
        match task.await?? {
            (id, OpenOutcome::Opened) => opened.push(id),
            (_, OpenOutcome::Existing(i)) => existing.push(i.id),
            (id, OpenOutcome::IdTaken(i)) => panic!("{id}: distinct ids, yet taken by {}", i.id),
            (id, other) => panic!("{id}: {other:?} without a claim"),
        }
    }
    assert_eq!(opened.len(), 1, "opened: {opened:?}");
    assert_eq!(existing.len(), 19);
    assert!(existing.iter().all(|id| *id == opened[0]));
    let active = store
        .list(&ListQuery {
            active_only: true,
            since: None,
        })
        .await?;
    assert_eq!(active.len(), 1);
    assert_eq!(store.timeline(&opened[0]).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn open_redelivered_is_existing_and_a_second_incident_attaches_to_the_first() -> Result<()> {
    let (_m, store) = store("open-existing").await?;
    let a = incident("INC-A", SVC, t(14, 35));
    assert_eq!(
        store.open(&a, &[entry("a/opened", t(14, 35))], WINDOW).await?,
        OpenOutcome::Opened
    );
    // the same delivery again
    let again = store.open(&a, &[entry("a/opened", t(14, 35))], WINDOW).await?;
    assert_eq!(again, OpenOutcome::IdTaken(Box::new(a.clone())));
    // another alarm on the service
    let b = incident("INC-B", SVC, t(14, 40));
    assert_eq!(
        store.open(&b, &[entry("b/opened", t(14, 40))], WINDOW).await?,
        OpenOutcome::Existing(Box::new(a.clone()))
    );
    assert_eq!(store.get(&b.id).await?, None);
    // another service is independent
    let c = incident("INC-C", "prod/other", t(14, 40));
    assert_eq!(store.open(&c, &[], WINDOW).await?, OpenOutcome::Opened);
    Ok(())
}

#[tokio::test]
async fn save_checks_the_version_and_a_redelivered_entry_is_duplicate() -> Result<()> {
    let (_m, store) = store("save-lock").await?;
    let a = incident("INC-A", SVC, t(14, 35));
    store.open(&a, &[entry("a/opened", t(14, 35))], WINDOW).await?;

    let mut v2 = a.clone();
    v2.version = 2;
    v2.cause = Some("db-connection-pool-exhausted".into());
    store
        .save(&v2, 1, PointerChange::Keep, &[entry("diag", t(14, 36))])
        .await?;
    assert_eq!(store.get(&a.id).await?, Some(v2.clone()));

    // a writer that read version 1 loses
    let mut stale = a.clone();
    stale.version = 2;
    stale.title = "stale".into();
    assert_eq!(
        store.save(&stale, 1, PointerChange::Keep, &[]).await,
        Err(StoreError::Conflict(a.id.clone()))
    );
    // the same step delivered twice: nothing is written
    let mut v3 = v2.clone();
    v3.version = 3;
    v3.title = "changed".into();
    assert_eq!(
        store
            .save(&v3, 2, PointerChange::Keep, &[entry("diag", t(14, 36))])
            .await,
        Err(StoreError::Duplicate("diag".into()))
    );
    assert_eq!(store.get(&a.id).await?, Some(v2));
    // a missing incident
    let ghost = incident("INC-GHOST", SVC, t(14, 35));
    let mut g2 = ghost.clone();
    g2.version = 2;
    assert_eq!(
        store.save(&g2, 1, PointerChange::Keep, &[]).await,
        Err(StoreError::NotFound(ghost.id))
    );
    Ok(())
}

#[tokio::test]
async fn release_frees_the_service_after_the_reopen_window_and_reclaim_takes_it_back() -> Result<()> {
    let (_m, store) = store("release-reclaim").await?;
    let a = incident("INC-A", SVC, t(14, 35));
    store.open(&a, &[], WINDOW).await?;
    let mut resolved = a.clone();
    resolved.version = 2;
    resolved.status = IncidentStatus::Resolved;
    resolved.resolved_at = Some(t(15, 0));
    store.save(&resolved, 1, PointerChange::Release, &[]).await?;

    // within the window the resolved incident still claims the service
    assert_eq!(
        store.find_for_service(SVC, WINDOW, t(15, 30)).await?,
        Some(resolved.clone())
    );
    let b = incident("INC-B", SVC, t(15, 10));
    assert_eq!(
        store.open(&b, &[], WINDOW).await?,
        OpenOutcome::Existing(Box::new(resolved.clone()))
    );
    // the resolved incident left the active index
    assert!(store
        .list(&ListQuery {
            active_only: true,
            since: None
        })
        .await?
        .is_empty());

    // it reopens: the pointer is its again, with no resolved_at
    let mut reopened = resolved.clone();
    reopened.version = 3;
    reopened.status = IncidentStatus::Open;
    reopened.resolved_at = None;
    reopened.reopened = 1;
    store.save(&reopened, 2, PointerChange::Reclaim, &[]).await?;
    assert_eq!(
        store.find_for_service(SVC, WINDOW, t(23, 0)).await?,
        Some(reopened.clone())
    );

    // resolved again; past the window a new alarm opens a new incident
    let mut done = reopened.clone();
    done.version = 4;
    done.status = IncidentStatus::Resolved;
    done.resolved_at = Some(t(16, 0));
    store.save(&done, 3, PointerChange::Release, &[]).await?;
    assert_eq!(store.find_for_service(SVC, WINDOW, t(16, 31)).await?, None);
    let c = incident("INC-C", SVC, t(16, 31));
    assert_eq!(store.open(&c, &[], WINDOW).await?, OpenOutcome::Opened);
    assert_eq!(
        store.find_for_service(SVC, WINDOW, t(16, 31)).await?,
        Some(c.clone())
    );

    // the old incident cannot reclaim a service held by another
    let mut again = done.clone();
    again.version = 5;
    again.status = IncidentStatus::Open;
    assert_eq!(
        store.save(&again, 4, PointerChange::Reclaim, &[]).await,
        Err(StoreError::Conflict(a.id.clone()))
    );
    // releasing an incident that no longer holds the pointer saves it and leaves the pointer
    let mut late = done.clone();
    late.version = 5;
    late.postmortem = Some("# Postmortem".into());
    store.save(&late, 4, PointerChange::Release, &[]).await?;
    assert_eq!(store.get(&a.id).await?, Some(late));
    assert_eq!(store.find_for_service(SVC, WINDOW, t(16, 32)).await?, Some(c));
    Ok(())
}

#[tokio::test]
async fn append_is_idempotent_and_the_timeline_is_in_order() -> Result<()> {
    let (_m, store) = store("append").await?;
    let a = incident("INC-A", SVC, t(14, 35));
    store.open(&a, &[entry("opened", t(14, 35))], WINDOW).await?;
    // same instant: write order; earlier instant: sorted before
    let n = store
        .append(
            &a.id,
            &[
                entry("z-first", t(14, 36)),
                entry("a-second", t(14, 36)),
                entry("early", t(14, 34)),
            ],
        )
        .await?;
    assert_eq!(n, 3);
    assert_eq!(
        store
            .append(&a.id, &[entry("a-second", t(14, 36)), entry("late", t(14, 40))])
            .await?,
        1
    );
    let ids: Vec<String> = store
        .timeline(&a.id)
        .await?
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, ["early", "opened", "z-first", "a-second", "late"]);
    assert_eq!(
        store
            .append(&IncidentId("INC-NONE".into()), &[entry("x", t(14, 36))])
            .await,
        Err(StoreError::NotFound(IncidentId("INC-NONE".into())))
    );
    Ok(())
}

#[tokio::test]
async fn timeline_reads_every_page() -> Result<()> {
    let (_m, store) = store("timeline-pages").await?;
    let a = incident("INC-A", SVC, t(14, 35));
    store.open(&a, &[], WINDOW).await?;
    // ~1.5 MB of entries: more than one 1 MB Query page
    let big = "x".repeat(30_000);
    let entries: Vec<TimelineEntry> = (0..50)
        .map(|i| {
            entry(&format!("e{i:02}"), t(14, 36) + Cd::seconds(i))
                .with_json_detail(serde_json::json!({ "by": big }))
                .unwrap()
        })
        .collect();
    assert_eq!(store.append(&a.id, &entries).await?, 50);
    let got = store.timeline(&a.id).await?;
    assert_eq!(got.len(), 50);
    assert_eq!(got, entries);
    Ok(())
}

#[tokio::test]
async fn list_finds_active_incidents_and_those_opened_since() -> Result<()> {
    let (_m, store) = store("list").await?;
    let jan = incident(
        "INC-JAN",
        "svc-a",
        Utc.with_ymd_and_hms(2026, 1, 20, 8, 0, 0).single().unwrap(),
    );
    let feb = incident(
        "INC-FEB",
        "svc-b",
        Utc.with_ymd_and_hms(2026, 2, 3, 8, 0, 0).single().unwrap(),
    );
    let mar = incident("INC-MAR", "svc-c", t(14, 35));
    for i in [&jan, &feb, &mar] {
        store.open(i, &[], WINDOW).await?;
    }
    let mut feb_done = feb.clone();
    feb_done.version = 2;
    feb_done.status = IncidentStatus::Resolved;
    feb_done.resolved_at = Some(feb.opened_at + Cd::hours(1));
    store.save(&feb_done, 1, PointerChange::Release, &[]).await?;

    let ids =
        |v: Vec<firebreak_core::model::incident::Incident>| v.into_iter().map(|i| i.id.0).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list(&ListQuery::default()).await?),
        ["INC-JAN", "INC-FEB", "INC-MAR"]
    );
    assert_eq!(
        ids(store
            .list(&ListQuery {
                active_only: true,
                since: None
            })
            .await?),
        ["INC-JAN", "INC-MAR"]
    );
    let since = Some(Utc.with_ymd_and_hms(2026, 1, 25, 0, 0, 0).single().unwrap());
    assert_eq!(
        ids(store
            .list(&ListQuery {
                active_only: false,
                since
            })
            .await?),
        ["INC-FEB", "INC-MAR"]
    );
    assert_eq!(
        ids(store
            .list(&ListQuery {
                active_only: true,
                since
            })
            .await?),
        ["INC-MAR"]
    );
    // since is inclusive
    let exact = Some(feb.opened_at);
    assert_eq!(
        ids(store
            .list(&ListQuery {
                active_only: false,
                since: exact
            })
            .await?),
        ["INC-FEB", "INC-MAR"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_goes_to_exactly_one_claimant_until_it_expires_and_its_owner_takes_it_again() -> Result<()> {
    let (_m, store) = store("lease").await?;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("claimant-{n}");
                let won = store
                    .claim("cooldown/prod/articles-api", &owner, t(15, 0), t(14, 40))
                    .await?;
                Ok::<_, firebreak_core::ports::StoreError>(won.then_some(owner))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await??);
    }
    assert_eq!(winners.len(), 1);
    assert!(
        !store
            .claim("cooldown/prod/articles-api", "someone else", t(15, 10), t(14, 59))
            .await?
    );
    // the owner's own retry (the SDK's after a lost response, or the delivery's) is not refused
    assert!(
        store
            .claim("cooldown/prod/articles-api", &winners[0], t(15, 0), t(14, 41))
            .await?
    );
    // at `until` the lease is free again
    assert!(
        store
            .claim("cooldown/prod/articles-api", "someone else", t(15, 30), t(15, 0))
            .await?
    );
    assert!(store.claim("other", "x", t(15, 30), t(15, 0)).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_many_copies_claims_a_state_change_and_the_others_learn_its_service() -> Result<()> {
    use firebreak_core::ports::{Transition, TransitionClaim};
    let (_m, store) = store("transition").await?;
    let store = Arc::new(store);
    let change = |n: &str| Transition {
        key: "articles-api-5xx-rate/ALARM/1773499200123".into(),
        delivery: format!("copy-{n}"),
        service: format!("service-{n}"),
        until: t(23, 0),
    };
    // half the copies open an incident with the claim in the transaction, half claim it alone
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let c = change(&n.to_string());
            tokio::spawn(async move {
                let claim = if n % 2 == 0 {
                    let inc = incident(&format!("INC-20260314-143500-0000000{n}"), &c.service, t(14, 35));
                    match store.open_claiming(&inc, &[], WINDOW, Some(&c)).await? {
                        OpenOutcome::Opened => TransitionClaim::Mine,
                        OpenOutcome::TransitionTaken { delivery, service } => {
                            TransitionClaim::Theirs { delivery, service }
                        }
                        other => panic!("{other:?}"),
                    }
                } else {
                    store.claim_transition(&c).await?
                };
                Ok::<_, StoreError>((c, claim))
            })
        })
        .collect();
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for task in tasks {
        match task.await?? {
            (c, TransitionClaim::Mine) => mine.push(c),
            (_, TransitionClaim::Theirs { delivery, service }) => theirs.push((delivery, service)),
        }
    }
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(theirs.len(), 7);
    assert!(
        theirs
            .iter()
            .all(|(d, s)| *d == mine[0].delivery && *s == mine[0].service),
        "{theirs:?}"
    );
    // at most the winner opened an incident: the losing opens wrote nothing
    assert!(store.list(&ListQuery::default()).await?.len() <= 1);
    // the claimer's own retry is still its claim
    assert_eq!(store.claim_transition(&mine[0]).await?, TransitionClaim::Mine);
    Ok(())
}

#[tokio::test]
async fn a_postmortem_draft_is_its_own_item_replaced_by_the_next_and_not_in_the_timeline() -> Result<()> {
    let (_m, store) = store("postmortem").await?;
    let inc = incident("INC-20260314-143500-0000pm01", SVC, t(14, 35));
    store
        .open(&inc, &[entry("d/alarm-fired", t(14, 35))], WINDOW)
        .await?;
    assert_eq!(store.postmortem(&inc.id).await?, None);
    store.put_postmortem(&inc.id, "# first draft").await?;
    store.put_postmortem(&inc.id, "# second draft").await?;
    assert_eq!(
        store.postmortem(&inc.id).await?.as_deref(),
        Some("# second draft")
    );
    // neither the timeline nor the incident carries it
    assert_eq!(store.timeline(&inc.id).await?.len(), 1);
    assert_eq!(store.get(&inc.id).await?.unwrap().postmortem, None);
    assert_eq!(store.list(&ListQuery::default()).await?.len(), 1);
    // a draft too large for an item is refused before DynamoDB, naming the record
    let huge = "x".repeat(firebreak_core::ports::MAX_ITEM_BYTES + 1);
    let err = store.put_postmortem(&inc.id, &huge).await.unwrap_err();
    assert!(err.to_string().contains("POSTMORTEM"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_lease_reads_back_as_claimed_held_or_lapsed() -> Result<()> {
    let (_m, store) = store("lease-read").await?;
    let slot = "circuit#service#prod/articles-api#0";
    assert_eq!(store.lease(slot).await?, None);
    assert!(
        store
            .claim(slot, "INC-A/ecs-scale-out", t(15, 0), t(14, 40))
            .await?
    );
    let held = Lease {
        owner: "INC-A/ecs-scale-out".into(),
        until: t(15, 0),
    };
    assert_eq!(store.lease(slot).await?, Some(held.clone()));
    // lapsed (it is long past 15:00 of 2026-03-14): still there until TTL deletes it
    assert!(
        store
            .claim("cooldown/prod/other", "INC-B", t(14, 0), t(13, 50))
            .await?
    );
    assert_eq!(
        store.lease("cooldown/prod/other").await?,
        Some(Lease {
            owner: "INC-B".into(),
            until: t(14, 0),
        })
    );
    // a refused claim changes nothing; one after `until` replaces owner and until
    assert!(
        !store
            .claim(slot, "INC-C/ecs-restart", t(15, 20), t(14, 50))
            .await?
    );
    assert_eq!(store.lease(slot).await?, Some(held));
    assert!(
        store
            .claim(slot, "INC-C/ecs-restart", t(15, 40), t(15, 0))
            .await?
    );
    assert_eq!(
        store.lease(slot).await?,
        Some(Lease {
            owner: "INC-C/ecs-restart".into(),
            until: t(15, 40),
        })
    );
    Ok(())
}

fn counted(action: &str, outcomes: &[(&str, Mark)], version: u64) -> AutonomyRecord {
    let mut r = AutonomyRecord::new(AutonomyKey::new("db-connection-pool", "pool-exhausted", action));
    for (id, mark) in outcomes {
        r.count(id, *mark, Some(120), t(15, 0), &PromotionPolicy::default());
    }
    r.version = version;
    r
}

#[tokio::test]
async fn save_autonomy_creates_then_updates_by_version_and_a_stale_save_writes_nothing() -> Result<()> {
    let (_m, store) = store("autonomy-lock").await?;
    let key = AutonomyKey::new("db-connection-pool", "pool-exhausted", "ecs-scale-out");
    assert_eq!(store.autonomy(&key).await?, None);

    let v1 = counted("ecs-scale-out", &[("INC-A", Mark::Matched)], 1);
    assert!(store.save_autonomy(&v1, 0).await?);
    assert_eq!(store.autonomy(&key).await?, Some(v1.clone()));
    // a second creator (expected 0) loses to the first
    let other_v1 = counted("ecs-scale-out", &[("INC-B", Mark::Different)], 1);
    assert!(!store.save_autonomy(&other_v1, 0).await?);
    assert_eq!(store.autonomy(&key).await?, Some(v1.clone()));

    let v2 = counted(
        "ecs-scale-out",
        &[
            ("INC-A", Mark::Matched),
            ("INC-C", Mark::Matched),
            ("INC-D", Mark::Matched),
        ],
        2,
    );
    assert_eq!(v2.level, RemediationMode::Approve);
    assert!(store.save_autonomy(&v2, 1).await?);
    assert_eq!(store.autonomy(&key).await?, Some(v2.clone()));

    // a writer that read version 1 loses, and the stored record stays as it was
    let stale = counted(
        "ecs-scale-out",
        &[("INC-A", Mark::Matched), ("INC-E", Mark::Contradicted)],
        2,
    );
    assert!(!store.save_autonomy(&stale, 1).await?);
    assert_eq!(store.autonomy(&key).await?, Some(v2.clone()));

    // a record not one version past the expected one is the caller's bug: refused, not retried
    let err = store
        .save_autonomy(&counted("ecs-scale-out", &[], 2), 2)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a record at the expected version was saved"))?;
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(store.autonomy(&key).await?, Some(v2.clone()));

    let v3 = counted("ecs-scale-out", &[("INC-F", Mark::Ineffective)], 3);
    assert!(store.save_autonomy(&v3, 2).await?);
    assert_eq!(store.autonomy(&key).await?, Some(v3));
    assert_eq!(store.autonomy_records().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn autonomy_records_lists_every_record_in_key_order_across_pages() -> Result<()> {
    let m = moto()?;
    let cfg = m.sdk_config().await;
    let (client, name) = table(&cfg, "autonomy-pages").await?;
    let store = DynamoIncidentStore::new(client.clone(), name.clone());
    // other items of the table are not autonomy records
    store
        .open(&incident("INC-A", SVC, t(14, 35)), &[], WINDOW)
        .await?;
    assert!(
        store
            .claim("cooldown/prod/articles-api", "INC-A", t(15, 0), t(14, 40))
            .await?
    );
    assert_eq!(store.autonomy_records().await?, []);

    // ~300 KB each (100 outcome ids of 3 KB): six make more than one 1 MB Query page
    let long = "x".repeat(3_000);
    let actions = [
        "ecs-scale-out",
        "ecs-restart",
        "ecs-rollback",
        "a",
        "ecs-force",
        "z",
    ];
    let mut saved = Vec::new();
    for action in actions {
        let ids: Vec<String> = (0..100).map(|i| format!("INC-{i:03}-{action}-{long}")).collect();
        let outcomes: Vec<(&str, Mark)> = ids.iter().map(|i| (i.as_str(), Mark::Unneeded)).collect();
        let r = counted(action, &outcomes, 1);
        assert!(store.save_autonomy(&r, 0).await?);
        saved.push(r);
    }
    // and a small one under another runbook
    let mut small = AutonomyRecord::new(AutonomyKey::new("bad-deploy", "deploy", "ecs-rollback"));
    small.version = 1;
    assert!(store.save_autonomy(&small, 0).await?);
    saved.push(small);
    saved.sort_by_key(|r| r.key.text());

    // moto did split the partition into pages
    let first = client
        .query()
        .table_name(&name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("AUTONOMY".into()),
        )
        .send()
        .await?;
    assert!(
        first.last_evaluated_key.is_some(),
        "one page only: {} items",
        first.count
    );

    let got = store.autonomy_records().await?;
    let keys: Vec<String> = got.iter().map(|r| r.key.text()).collect();
    assert_eq!(
        keys,
        [
            "bad-deploy#deploy#ecs-rollback",
            "db-connection-pool#pool-exhausted#a",
            "db-connection-pool#pool-exhausted#ecs-force",
            "db-connection-pool#pool-exhausted#ecs-restart",
            "db-connection-pool#pool-exhausted#ecs-rollback",
            "db-connection-pool#pool-exhausted#ecs-scale-out",
            "db-connection-pool#pool-exhausted#z",
        ]
    );
    assert_eq!(got, saved);
    Ok(())
}
