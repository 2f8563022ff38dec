//! Closing the loop, the parts the stages share: what CloudWatch's states at the end of a
//! verification window mean, what people did to a service as ECS shows it, how a proposal
//! compares with that (its shadow verdict), and counting an outcome on its autonomy record.
//!
//! The judgements are pure; only [`count_outcome`] touches the store.

use crate::model::autonomy::{
    AutonomyKey, AutonomyRecord, ChangeKind, Mark, PeopleChange, PromotionPolicy, Verdict, Verification,
};
use crate::model::remedy::ServiceUpdate;
use crate::model::signal::AlarmState;
use crate::model::timeline::detail::ServiceSnapshot;
use crate::ports::{IncidentStore, PortError, ServiceState};
use crate::stages::guardrails::parse_revision;
use crate::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// A Firebreak change and a deployment ECS shows this close to it are the same change.
const OWN_CHANGE_SLACK_S: i64 = 120;
/// How often an autonomy record is re-read when another writer keeps saving it first.
const COUNT_ATTEMPTS: usize = 8;

/// What CloudWatch's states say at the end of a verification window: an alarm in ALARM makes
/// the action ineffective; every alarm OK verifies it; anything else (INSUFFICIENT_DATA, an
/// alarm CloudWatch does not report) decides nothing yet.
pub fn verification(alarms: &[String], live: &BTreeMap<String, AlarmState>) -> Option<Verification> {
    if alarms.iter().any(|a| live.get(a) == Some(&AlarmState::Alarm)) {
        return Some(Verification::Ineffective);
    }
    (!alarms.is_empty() && alarms.iter().all(|a| live.get(a) == Some(&AlarmState::Ok)))
        .then_some(Verification::Verified)
}

/// A change Firebreak itself made to the service (so it is not taken for people's).
#[derive(Debug, Clone, PartialEq)]
pub struct OwnChange {
    pub at: DateTime<Utc>,
    pub update: ServiceUpdate,
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%H:%M").to_string()
}

/// What people did to the service after `since` up to `until`, as ECS shows it in `now` (the
/// service read at the recovery): each deployment created in the window that Firebreak did not
/// make (an older revision is a rollback, a newer one a roll-forward, the same one a restart),
/// and a desired count other than the one the service had (`before`, or what Firebreak set),
/// timed by the first service event of tasks starting or stopping in the window.
pub fn people_changes(
    now: &ServiceState,
    before: &ServiceSnapshot,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    own: &[OwnChange],
) -> Vec<PeopleChange> {
    let near_own = |t: DateTime<Utc>, deploys: bool| {
        own.iter().any(|o| {
            (!deploys || o.update.task_definition.is_some() || o.update.force_new_deployment)
                && (t - o.at).num_seconds().abs() <= OWN_CHANGE_SLACK_S
        })
    };
    let mut out = Vec::new();
    let mut deps: Vec<_> = now
        .deployments
        .iter()
        .filter_map(|d| d.created_at.map(|at| (at, d)))
        .filter(|(at, _)| *at > since && *at <= until)
        .collect();
    deps.sort_by_key(|(at, _)| *at);
    let mut current = before.task_definition.clone();
    for (at, d) in deps {
        if !near_own(at, true) {
            let (kind, text) = match (parse_revision(&current), parse_revision(&d.task_definition)) {
                _ if d.task_definition == current => (
                    ChangeKind::Restart,
                    format!("forced a new deployment of {} at {}", d.task_definition, hm(at)),
                ),
                (Some(a), Some(b)) if a.family == b.family && b.number < a.number => (
                    ChangeKind::Rollback,
                    format!("rolled back to {} at {}", d.task_definition, hm(at)),
                ),
                _ => (
                    ChangeKind::RollForward,
                    format!("deployed {} at {}", d.task_definition, hm(at)),
                ),
            };
            out.push(PeopleChange {
                kind,
                at: Some(at),
                task_definition: Some(d.task_definition.clone()),
                text,
            });
        }
        current = d.task_definition.clone();
    }
    // the count the service should have if only Firebreak had changed it
    let expected = own
        .iter()
        .filter(|o| o.at >= since && o.at <= until)
        .filter_map(|o| o.update.desired)
        .next_back()
        .unwrap_or(before.desired);
    if now.desired != expected {
        let (kind, verb, needle) = if now.desired > expected {
            (ChangeKind::ScaleOut, "scaled out", "has started")
        } else {
            (ChangeKind::ScaleIn, "scaled in", "has stopped")
        };
        let at = now
            .events
            .iter()
            .filter(|e| e.at > since && e.at <= until && e.message.contains(needle))
            .filter(|e| !near_own(e.at, false))
            .map(|e| e.at)
            .min();
        out.push(PeopleChange {
            kind,
            at,
            task_definition: None,
            text: format!(
                "{verb} to {} tasks (from {expected}){}",
                now.desired,
                at.map_or_else(String::new, |t| format!(" at {}", hm(t)))
            ),
        });
    }
    out.sort_by_key(|c| c.at);
    out
}

/// A proposal to score.
#[derive(Debug, Clone, Copy)]
pub struct Proposal<'a> {
    /// `ecs-scale-out`, `ecs-rollback`, `ecs-restart`.
    pub action: &'a str,
    /// When Firebreak asked for it (its remediation request).
    pub at: DateTime<Utc>,
    /// Firebreak carried it out.
    pub applied: bool,
    pub before: &'a ServiceSnapshot,
    /// The change it plans or made.
    pub update: &'a ServiceUpdate,
}

/// A proposal's shadow verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub verdict: Option<Verdict>,
    pub people_action: Option<String>,
    pub lead_s: Option<i64>,
}

/// Scores `p` against what people did (`changes`, from [`people_changes`]) and, for a proposal
/// that waited for approval, the approval that carried it out (`approved`: when, by whom).
///
/// Not applied: approving it is `matched`, with the approval's delay as the lead time; otherwise
/// people's opposite is `contradicted`; the same kind of action (a rollback: to the same
/// revision) `matched` with the lead time from Firebreak's request;
/// anything else `different`; nothing `unneeded`. Applied: `contradicted` when people undid it
/// (scaled back in, redeployed the revision it rolled back from), else no verdict; whether it
/// worked is its verification's business.
pub fn score(p: &Proposal<'_>, changes: &[PeopleChange], approved: Option<(DateTime<Utc>, &str)>) -> Scored {
    let texts = |cs: &[&PeopleChange]| -> Option<String> {
        (!cs.is_empty()).then(|| cs.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("; "))
    };
    let all: Vec<&PeopleChange> = changes.iter().collect();
    if p.applied {
        let undone = changes.iter().find(|c| match (p.action, c.kind) {
            ("ecs-scale-out", kind) => kind.opposes(p.action),
            ("ecs-rollback", _) => {
                c.task_definition.as_deref() == Some(p.before.task_definition.as_str())
                    && c.kind != ChangeKind::Restart
            }
            _ => false,
        });
        return match undone {
            Some(c) => Scored {
                verdict: Some(Verdict::Contradicted),
                people_action: Some(format!("undid it: {}", c.text)),
                lead_s: None,
            },
            None => Scored {
                verdict: None,
                people_action: texts(&all),
                lead_s: None,
            },
        };
    }
    // approving this very proposal is choosing it; if people then undo the action it carried
    // out, that counts once, on the applied action's own verdict
    if let Some((at, by)) = approved {
        return Scored {
            verdict: Some(Verdict::Matched),
            people_action: Some(format!("approved by {by} at {}", hm(at))),
            lead_s: Some((at - p.at).num_seconds().max(0)),
        };
    }
    if let Some(c) = changes.iter().find(|c| c.kind.opposes(p.action)) {
        return Scored {
            verdict: Some(Verdict::Contradicted),
            people_action: Some(c.text.clone()),
            lead_s: None,
        };
    }
    let same = changes.iter().find(|c| {
        c.kind.action() == Some(p.action)
            && (p.action != "ecs-rollback"
                || c.task_definition.as_deref() == p.update.task_definition.as_deref())
    });
    if let Some(c) = same {
        return Scored {
            verdict: Some(Verdict::Matched),
            people_action: Some(c.text.clone()),
            lead_s: c.at.map(|t| (t - p.at).num_seconds()),
        };
    }
    if changes.is_empty() {
        Scored {
            verdict: Some(Verdict::Unneeded),
            people_action: None,
            lead_s: None,
        }
    } else {
        Scored {
            verdict: Some(Verdict::Different),
            people_action: texts(&all),
            lead_s: None,
        }
    }
}

/// Counts outcome `id` on the record of `key` (once, whatever the retries), re-reading when
/// another writer saved first.
///
/// # Errors
/// Store errors; a retryable one when the record kept changing for every attempt.
pub async fn count_outcome<S: IncidentStore>(
    store: &S,
    key: &AutonomyKey,
    id: &str,
    mark: Mark,
    lead_s: Option<i64>,
    at: DateTime<Utc>,
    policy: &PromotionPolicy,
) -> Result<(), Error> {
    for _ in 0..COUNT_ATTEMPTS {
        let mut rec = store
            .autonomy(key)
            .await?
            .unwrap_or_else(|| AutonomyRecord::new(key.clone()));
        let expected = rec.version;
        if !rec.count(id, mark, lead_s, at, policy) {
            return Ok(());
        }
        rec.version = expected + 1;
        if store.save_autonomy(&rec, expected).await? {
            tracing::info!(record = %key, outcome = mark.as_str(), level = %rec.level, "autonomy outcome counted");
            return Ok(());
        }
    }
    Err(Error::Port(PortError::new(
        "autonomy",
        format!("the record {key} kept changing; the retry counts {id}"),
        true,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::InMemoryIncidentStore;
    use crate::model::incident::EcsService;
    use crate::ports::{Deployment, ServiceEvent};

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-03-14T{s}:00Z").parse().unwrap()
    }

    fn snap(td: &str, desired: i32) -> ServiceSnapshot {
        ServiceSnapshot {
            task_definition: td.into(),
            desired,
            running: desired,
            deployments: 1,
        }
    }

    fn dep(td: &str, at: &str) -> Deployment {
        Deployment {
            id: format!("ecs-svc/{at}"),
            status: "PRIMARY".into(),
            task_definition: td.into(),
            desired: 4,
            running: 4,
            rollout_state: Some("COMPLETED".into()),
            created_at: Some(t(at)),
            updated_at: Some(t(at)),
        }
    }

    fn service(td: &str, desired: i32, deps: Vec<Deployment>, events: &[(&str, &str)]) -> ServiceState {
        ServiceState {
            service: EcsService::new("prod", "orders"),
            status: "ACTIVE".into(),
            task_definition: td.into(),
            desired,
            running: desired,
            pending: 0,
            deployments: deps,
            events: events
                .iter()
                .map(|(at, m)| ServiceEvent {
                    at: t(at),
                    message: (*m).to_string(),
                })
                .collect(),
            tags: BTreeMap::new(),
        }
    }

    fn scale_out() -> ServiceUpdate {
        ServiceUpdate {
            desired: Some(8),
            ..ServiceUpdate::default()
        }
    }

    fn rollback_to(td: &str) -> ServiceUpdate {
        ServiceUpdate {
            task_definition: Some(td.into()),
            ..ServiceUpdate::default()
        }
    }

    #[test]
    fn alarms_decide_the_verification_and_unknown_states_decide_nothing() {
        let names = vec!["a".to_string(), "b".to_string()];
        let live = |a: AlarmState, b: Option<AlarmState>| {
            let mut m = BTreeMap::from([("a".to_string(), a)]);
            if let Some(b) = b {
                m.insert("b".into(), b);
            }
            m
        };
        assert_eq!(
            verification(&names, &live(AlarmState::Ok, Some(AlarmState::Ok))),
            Some(Verification::Verified)
        );
        assert_eq!(
            verification(&names, &live(AlarmState::Ok, Some(AlarmState::Alarm))),
            Some(Verification::Ineffective)
        );
        assert_eq!(verification(&names, &live(AlarmState::Ok, None)), None);
        assert_eq!(
            verification(&names, &live(AlarmState::InsufficientData, Some(AlarmState::Ok))),
            None
        );
        assert_eq!(verification(&[], &BTreeMap::new()), None);
    }

    #[test]
    fn people_changes_are_read_from_deployments_and_the_desired_count() {
        let before = snap("orders:16", 4);
        let now = service(
            "orders:15",
            6,
            vec![dep("orders:15", "14:52"), dep("orders:16", "14:47")],
            &[
                (
                    "14:47",
                    "(service orders) has started 2 tasks: (task a) (task b).",
                ),
                ("14:52", "(service orders) has started 6 tasks"),
            ],
        );
        let got = people_changes(&now, &before, t("14:35"), t("15:00"), &[]);
        let kinds: Vec<ChangeKind> = got.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            vec![ChangeKind::Restart, ChangeKind::ScaleOut, ChangeKind::Rollback],
            "{got:?}"
        );
        assert_eq!(got[1].text, "scaled out to 6 tasks (from 4) at 14:47");
        assert_eq!(got[2].text, "rolled back to orders:15 at 14:52");
        // outside the window, or Firebreak's own: not people's
        let own = [OwnChange {
            at: t("14:52"),
            update: rollback_to("orders:15"),
        }];
        let got = people_changes(&now, &before, t("14:50"), t("15:00"), &own);
        assert_eq!(
            got.iter().map(|c| c.kind).collect::<Vec<_>>(),
            vec![ChangeKind::ScaleOut]
        );
        assert_eq!(
            got[0].at, None,
            "no tasks-started event of people's in the window"
        );
    }

    #[test]
    fn each_verdict_and_its_lead_time() {
        let before = snap("orders:16", 4);
        let up = scale_out();
        let p = Proposal {
            action: "ecs-scale-out",
            at: t("14:36"),
            applied: false,
            before: &before,
            update: &up,
        };
        let change = |kind, at: &str, text: &str| PeopleChange {
            kind,
            at: Some(t(at)),
            task_definition: None,
            text: text.into(),
        };
        let m = score(
            &p,
            &[change(ChangeKind::ScaleOut, "14:47", "scaled out to 6")],
            None,
        );
        assert_eq!((m.verdict, m.lead_s), (Some(Verdict::Matched), Some(660)));
        let d = score(
            &p,
            &[change(ChangeKind::Restart, "14:52", "forced a new deployment")],
            None,
        );
        assert_eq!(d.verdict, Some(Verdict::Different));
        assert_eq!(d.people_action.as_deref(), Some("forced a new deployment"));
        let u = score(&p, &[], None);
        assert_eq!((u.verdict, u.people_action), (Some(Verdict::Unneeded), None));
        let c = score(
            &p,
            &[
                change(ChangeKind::ScaleOut, "14:40", "scaled out"),
                change(ChangeKind::ScaleIn, "14:41", "scaled in to 2"),
            ],
            None,
        );
        assert_eq!(c.verdict, Some(Verdict::Contradicted));
        let a = score(&p, &[], Some((t("14:39"), "arn:aws:iam::1:user/alice")));
        assert_eq!((a.verdict, a.lead_s), (Some(Verdict::Matched), Some(180)));
        // approved, then people scaled back in: the approval still chose it; the undo counts
        // once, on the applied action's own verdict
        let undone = score(
            &p,
            &[change(ChangeKind::ScaleIn, "14:45", "scaled in to 4")],
            Some((t("14:39"), "arn:aws:iam::1:user/alice")),
        );
        assert_eq!(undone.verdict, Some(Verdict::Matched));
        // a rollback matches only a rollback to the same revision
        let rb = rollback_to("orders:15");
        let r = Proposal {
            action: "ecs-rollback",
            update: &rb,
            ..p
        };
        let to = |td: &str| PeopleChange {
            kind: ChangeKind::Rollback,
            at: Some(t("14:50")),
            task_definition: Some(td.into()),
            text: format!("rolled back to {td}"),
        };
        assert_eq!(
            score(&r, &[to("orders:15")], None).verdict,
            Some(Verdict::Matched)
        );
        assert_eq!(
            score(&r, &[to("orders:14")], None).verdict,
            Some(Verdict::Different)
        );
    }

    #[test]
    fn an_applied_action_is_contradicted_only_when_people_undo_it() {
        let before = snap("orders:16", 4);
        let up = scale_out();
        let p = Proposal {
            action: "ecs-scale-out",
            at: t("14:36"),
            applied: true,
            before: &before,
            update: &up,
        };
        let scaled_in = PeopleChange {
            kind: ChangeKind::ScaleIn,
            at: Some(t("14:45")),
            task_definition: None,
            text: "scaled in to 4 tasks (from 8)".into(),
        };
        let c = score(&p, std::slice::from_ref(&scaled_in), None);
        assert_eq!(c.verdict, Some(Verdict::Contradicted));
        assert_eq!(
            c.people_action.as_deref(),
            Some("undid it: scaled in to 4 tasks (from 8)")
        );
        assert_eq!(score(&p, &[], None).verdict, None);
        let rb = rollback_to("orders:15");
        let r = Proposal {
            action: "ecs-rollback",
            update: &rb,
            ..p
        };
        let redeployed = PeopleChange {
            kind: ChangeKind::RollForward,
            at: Some(t("14:45")),
            task_definition: Some("orders:16".into()),
            text: "deployed orders:16".into(),
        };
        assert_eq!(
            score(&r, &[redeployed], None).verdict,
            Some(Verdict::Contradicted)
        );
        // Firebreak's scale-out to 8 then people at 8: nothing undone
        let now = service("orders:16", 8, vec![], &[]);
        let own = [OwnChange {
            at: t("14:36"),
            update: up.clone(),
        }];
        assert!(people_changes(&now, &before, t("14:35"), t("15:00"), &own).is_empty());
    }

    #[tokio::test]
    async fn an_outcome_is_counted_once_on_its_record() {
        let store = InMemoryIncidentStore::new();
        let key = AutonomyKey::new("rb", "cause", "ecs-scale-out");
        let p = PromotionPolicy::default();
        for id in ["a", "b", "a", "c"] {
            count_outcome(&store, &key, id, Mark::Matched, Some(60), t("15:00"), &p)
                .await
                .unwrap();
        }
        let rec = store.autonomy(&key).await.unwrap().unwrap();
        assert_eq!((rec.matched, rec.version), (3, 3));
        assert_eq!(rec.level, crate::model::settings::RemediationMode::Approve);
    }
}
