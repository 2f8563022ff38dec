//! `firebreak approve INCIDENT ACTION`: approves a remediation that is awaiting approval by
//! putting a "Remediation Approved" event on the bus; the remediate function then re-runs every
//! guardrail but the mode and carries it out.

use anyhow::{bail, Context};
use firebreak_core::model::incident::IncidentId;
use firebreak_core::model::pipeline::{Event, RemediationApproved};
use firebreak_core::model::remedy::KNOWN_ACTIONS;
use firebreak_core::ports::{EventBus, IncidentStore};
use firebreak_core::stages::remediate::{approval_state, ApprovalState};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct ApproveArgs {
    /// The incident, `INC-YYYYMMDD-HHMMSS-xxxx`.
    pub incident: String,
    /// The action awaiting approval: ecs-rollback, ecs-scale-out or ecs-restart.
    pub action: String,
    /// Who approves (recorded on the timeline); defaults to $USER.
    #[arg(long)]
    pub by: Option<String>,
}

/// Validates that `args.action` is awaiting approval on the incident and puts the approval on
/// the bus. Returns the exit code: 0 approved, 1 nothing to approve (not requested, or approved
/// already). Bad input and store or bus failures are errors.
pub async fn run<S: IncidentStore, B: EventBus>(
    args: &ApproveArgs,
    store: &S,
    bus: &B,
) -> anyhow::Result<i32> {
    run_to(
        args,
        store,
        bus,
        std::env::var("USER").ok(),
        &mut std::io::stdout(),
    )
    .await
}

async fn run_to<S: IncidentStore, B: EventBus>(
    args: &ApproveArgs,
    store: &S,
    bus: &B,
    user: Option<String>,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let id = IncidentId::parse(args.incident.trim())?;
    let action = args.action.trim();
    if !KNOWN_ACTIONS.contains(&action) {
        bail!(
            "invalid action {action:?}: expected one of {}",
            KNOWN_ACTIONS.join(", ")
        );
    }
    let by = args
        .by
        .clone()
        .or(user)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .context("who approves is unknown: pass --by NAME (or set $USER)")?;
    let incident = store
        .get(&id)
        .await
        .with_context(|| format!("reading incident {id}"))?
        .with_context(|| format!("no incident {id}"))?;
    let timeline = store
        .timeline(&id)
        .await
        .with_context(|| format!("reading the timeline of {id}"))?;
    let pending = match approval_state(&id, &timeline, action) {
        ApprovalState::NotRequested => {
            writeln!(
                out,
                "{action} is not awaiting approval on {id} ({})",
                incident.status
            )?;
            return Ok(1);
        }
        ApprovalState::Approved(_) => {
            writeln!(out, "{action} on {id} was approved already")?;
            return Ok(1);
        }
        ApprovalState::Pending(p) => p,
    };
    let event = Event::Approved(RemediationApproved {
        incident_id: id.clone(),
        action: action.to_string(),
        approved_by: by.clone(),
    });
    bus.put(&event.to_pipeline())
        .await
        .context("putting \"Remediation Approved\" on the bus")?;
    writeln!(
        out,
        "approved {action} on {id} ({}) as {by}; planned: {}. The remediate function re-checks the guardrails and carries it out.",
        incident.service, pending.plan
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use firebreak_core::adapters::memory::{InMemoryEventBus, InMemoryIncidentStore};
    use firebreak_core::model::incident::Incident;
    use firebreak_core::model::pipeline::Event;
    use firebreak_core::model::severity::Severity;
    use firebreak_core::model::timeline::{EntryKind, TimelineEntry};
    use serde_json::json;

    const ID: &str = "INC-20260314-143500-0001";

    async fn store_with(entries: &[TimelineEntry]) -> InMemoryIncidentStore {
        let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
        let incident = Incident::open(
            IncidentId(ID.into()),
            "prod/articles-api",
            Severity::Sev2,
            "5xx",
            at,
            at,
        );
        let store = InMemoryIncidentStore::new();
        store
            .open(&incident, entries, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        store
    }

    fn awaiting(action: &str) -> TimelineEntry {
        TimelineEntry::new(
            format!("{ID}/remediate/overload/{action}/awaiting-approval"),
            Utc.with_ymd_and_hms(2026, 3, 14, 14, 36, 0).unwrap(),
            EntryKind::ApprovalRequested,
            "approval requested",
        )
        .with_json_detail(json!({
            "record": {
                "action": action, "mode": "approve", "outcome": "awaiting-approval",
                "detail": "desiredCount 4 → 8", "target": "prod/articles-api",
                "at": "2026-03-14T14:36:00Z"
            },
            "cause": "overload", "runbook": "api-5xx",
            "step": {"action": action}, "plan": "desiredCount 4 → 8",
            "update": {"task_definition": null, "desired": 8, "force_new_deployment": false},
            "before": {"task_definition": "articles-api:42", "desired": 4, "running": 4, "deployments": 1},
            "command": format!("firebreak approve {ID} {action}"),
        }))
        .unwrap()
    }

    fn args(incident: &str, action: &str, by: Option<&str>) -> ApproveArgs {
        ApproveArgs {
            incident: incident.into(),
            action: action.into(),
            by: by.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn approving_a_pending_action_puts_remediation_approved_on_the_bus() {
        let store = store_with(&[awaiting("ecs-scale-out")]).await;
        let bus = InMemoryEventBus::new();
        let mut out = Vec::new();
        let code = run_to(
            &args(ID, "ecs-scale-out", None),
            &store,
            &bus,
            Some("alice".into()),
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        let events = bus.events();
        assert_eq!(events.len(), 1);
        match Event::from_pipeline(&events[0]).unwrap() {
            Event::Approved(a) => {
                assert_eq!(a.incident_id.as_str(), ID);
                assert_eq!(a.action, "ecs-scale-out");
                assert_eq!(a.approved_by, "alice");
            }
            other => panic!("{other:?}"),
        }
        assert!(String::from_utf8(out).unwrap().contains("desiredCount 4 → 8"));
    }

    #[tokio::test]
    async fn by_overrides_user() {
        let store = store_with(&[awaiting("ecs-restart")]).await;
        let bus = InMemoryEventBus::new();
        let code = run_to(
            &args(ID, "ecs-restart", Some("bob")),
            &store,
            &bus,
            Some("alice".into()),
            &mut Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(code, 0);
        let Event::Approved(a) = Event::from_pipeline(&bus.events()[0]).unwrap() else {
            panic!("not an approval");
        };
        assert_eq!(a.approved_by, "bob");
    }

    #[tokio::test]
    async fn an_action_not_awaiting_approval_puts_nothing() {
        let approved = TimelineEntry::new(
            format!("{ID}/remediate/overload/ecs-restart/approved"),
            Utc.with_ymd_and_hms(2026, 3, 14, 14, 37, 0).unwrap(),
            EntryKind::RemediationRequested,
            "approved",
        );
        let store = store_with(&[awaiting("ecs-scale-out"), awaiting("ecs-restart"), approved]).await;
        let bus = InMemoryEventBus::new();
        for action in ["ecs-rollback", "ecs-restart"] {
            let mut out = Vec::new();
            let code = run_to(
                &args(ID, action, None),
                &store,
                &bus,
                Some("alice".into()),
                &mut out,
            )
            .await
            .unwrap();
            assert_eq!(code, 1, "{action}");
            assert!(String::from_utf8(out).unwrap().contains(action));
        }
        assert!(bus.events().is_empty());
    }

    #[tokio::test]
    async fn bad_input_is_an_error_naming_it() {
        let store = store_with(&[awaiting("ecs-scale-out")]).await;
        let bus = InMemoryEventBus::new();
        let cases = [
            (args("inc-1", "ecs-scale-out", None), Some("alice"), "inc-1"),
            (args(ID, "ecs-delete", None), Some("alice"), "ecs-delete"),
            (
                args("INC-20260101-000000-ffff", "ecs-scale-out", None),
                Some("alice"),
                "no incident",
            ),
            (args(ID, "ecs-scale-out", None), None, "--by"),
            (args(ID, "ecs-scale-out", Some(" ")), None, "--by"),
        ];
        for (a, user, needle) in cases {
            let e = run_to(&a, &store, &bus, user.map(str::to_string), &mut Vec::new())
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{a:?}: {e:#}");
        }
        assert!(bus.events().is_empty());
    }
}
