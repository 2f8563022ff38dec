//! `firebreak approve INCIDENT ACTION`: approves a remediation that is awaiting approval by
//! putting a "Remediation Approved" event on the bus; the remediate function then re-runs every
//! guardrail but the mode and carries it out.
//!
//! Who approves is the verified identity of the AWS credentials in use (STS
//! `GetCallerIdentity`), never a name given on the command line: run it under the approver role
//! (`FirebreakApproverRole`, the stack output `ApproverRoleArn`), the only principal the bus lets
//! put an approval and the only one remediate accepts.

use anyhow::anyhow;
use firebreak_core::model::incident::IncidentId;
use firebreak_core::ports::{CallerIdentity, EventBus, IncidentStore, PortError, StoreError};
use firebreak_core::stages::remediate::{request_approval, ApproveOutcome};
use firebreak_core::Error;
use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, clap::Args)]
pub struct ApproveArgs {
    /// The incident, `INC-YYYYMMDD-HHMMSS-xxxx`.
    pub incident: String,
    /// The action awaiting approval: ecs-rollback, ecs-scale-out or ecs-restart.
    pub action: String,
    /// No longer accepted: the approver is the verified identity of your AWS credentials.
    #[arg(long, hide = true)]
    pub by: Option<String>,
}

/// How to become an approver, for the error messages.
const ASSUME: &str = "assume FirebreakApproverRole (`aws sts assume-role --role-arn <ApproverRoleArn> \
     --role-session-name \"$USER\"`, or a profile with role_arn = the stack output ApproverRoleArn)";

/// Validates that `args.action` is awaiting approval on the incident and puts the approval on
/// the bus as the caller `identity` verified. Returns the exit code: 0 approved, 1 nothing to
/// approve (not requested, approved already, resolved). Bad input, an unverified caller and
/// store or bus failures are errors.
pub async fn run<S: IncidentStore, B: EventBus, I: CallerIdentity>(
    args: &ApproveArgs,
    store: &S,
    bus: &B,
    identity: &I,
) -> anyhow::Result<i32> {
    run_to(args, store, bus, identity, &mut std::io::stdout()).await
}

async fn run_to<S: IncidentStore, B: EventBus, I: CallerIdentity>(
    args: &ApproveArgs,
    store: &S,
    bus: &B,
    identity: &I,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    if args.by.is_some() {
        return Err(anyhow!(
            "--by is no longer accepted: the approver is the identity of your AWS credentials, as STS \
             GetCallerIdentity verifies it; {ASSUME}"
        ));
    }
    let id = IncidentId::parse(args.incident.trim())?;
    let action = args.action.trim();
    let caller = Remembered {
        inner: identity,
        arn: OnceLock::new(),
    };
    match request_approval(store, bus, &caller, &id, action).await {
        Ok(ApproveOutcome::Approved {
            approval,
            service,
            plan,
        }) => {
            writeln!(
                out,
                "approved {action} on {id} ({service}) as {}; planned: {plan}. The remediate function re-checks the guardrails and carries it out.",
                approval.approved_by
            )?;
            Ok(0)
        }
        Ok(ApproveOutcome::NothingToApprove(why)) => {
            writeln!(out, "{why}")?;
            Ok(1)
        }
        Err(e) => Err(explain(e, caller.arn.get().map(String::as_str))),
    }
}

/// True for the codes AWS gives a principal that its policies do not allow.
fn denied(p: &PortError) -> bool {
    p.code.as_deref().is_some_and(|c| {
        c.starts_with("AccessDenied") || c.starts_with("NotAuthorized") || c == "UnauthorizedOperation"
    })
}

/// Says what to do about the failures a person can fix.
fn explain(e: Error, caller: Option<&str>) -> anyhow::Error {
    match &e {
        Error::Port(p) if p.operation.contains("PutEvents") && denied(p) => anyhow!(
            "your identity {} may not approve: {ASSUME} ({p})",
            caller.unwrap_or("(unknown)")
        ),
        Error::Port(p) if p.operation.contains("GetCallerIdentity") => {
            anyhow!("who you are could not be verified ({p}): approving needs AWS credentials; {ASSUME}")
        }
        Error::Store(StoreError::Port(p)) if denied(p) => {
            anyhow!("your identity may not read the incident: {ASSUME} ({p})")
        }
        _ => anyhow::Error::new(e),
    }
}

/// The identity port, remembering the ARN it answered (named when the bus refuses it).
struct Remembered<'a, I> {
    inner: &'a I,
    arn: OnceLock<String>,
}

impl<I: CallerIdentity> CallerIdentity for Remembered<'_, I> {
    async fn caller_arn(&self) -> Result<String, PortError> {
        let arn = self.inner.caller_arn().await?;
        let _ = self.arn.set(arn.clone());
        Ok(arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use firebreak_core::adapters::memory::{InMemoryCallerIdentity, InMemoryEventBus, InMemoryIncidentStore};
    use firebreak_core::model::incident::Incident;
    use firebreak_core::model::pipeline::Event;
    use firebreak_core::model::severity::Severity;
    use firebreak_core::model::timeline::{EntryKind, TimelineEntry};
    use firebreak_core::ports::PipelineEvent;
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

    const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/alice";

    fn alice() -> InMemoryCallerIdentity {
        InMemoryCallerIdentity::new(ALICE)
    }

    /// A bus whose policy denies the caller, as EventBridge answers it.
    struct DenyingBus;

    impl EventBus for DenyingBus {
        async fn put(&self, _: &PipelineEvent) -> Result<(), PortError> {
            Err(PortError::new(
                "EventBridge PutEvents",
                "User is not authorized to perform: events:PutEvents with an explicit deny in a resource-based policy",
                false,
            )
            .with_code("AccessDeniedException"))
        }
    }

    #[tokio::test]
    async fn approving_a_pending_action_puts_the_verified_caller_arn_on_the_bus() {
        let store = store_with(&[awaiting("ecs-scale-out")]).await;
        let bus = InMemoryEventBus::new();
        let mut out = Vec::new();
        let code = run_to(&args(ID, "ecs-scale-out", None), &store, &bus, &alice(), &mut out)
            .await
            .unwrap();
        assert_eq!(code, 0);
        let events = bus.events();
        assert_eq!(events.len(), 1);
        match Event::from_pipeline(&events[0]).unwrap() {
            Event::Approved(a) => {
                assert_eq!(a.incident_id.as_str(), ID);
                assert_eq!(a.action, "ecs-scale-out");
                assert_eq!(a.approved_by, ALICE);
                assert_eq!(a.cycle, 0);
            }
            other => panic!("{other:?}"),
        }
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("desiredCount 4 → 8"), "{out}");
        assert!(out.contains(ALICE), "{out}");
    }

    #[tokio::test]
    async fn by_is_refused_the_approver_comes_from_aws_credentials() {
        let store = store_with(&[awaiting("ecs-restart")]).await;
        let bus = InMemoryEventBus::new();
        let e = run_to(
            &args(ID, "ecs-restart", Some("bob")),
            &store,
            &bus,
            &alice(),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("--by is no longer accepted") && e.contains("AWS credentials"),
            "{e}"
        );
        assert!(e.contains("FirebreakApproverRole"), "{e}");
        assert!(bus.events().is_empty());
    }

    #[tokio::test]
    async fn a_caller_sts_cannot_verify_approves_nothing() {
        let store = store_with(&[awaiting("ecs-restart")]).await;
        let bus = InMemoryEventBus::new();
        let e = run_to(
            &args(ID, "ecs-restart", None),
            &store,
            &bus,
            &InMemoryCallerIdentity::unknown(),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("could not be verified") && e.contains("GetCallerIdentity"),
            "{e}"
        );
        assert!(bus.events().is_empty());
    }

    #[tokio::test]
    async fn a_bus_that_refuses_the_caller_names_the_identity_and_the_role_to_assume() {
        let store = store_with(&[awaiting("ecs-restart")]).await;
        let me = "arn:aws:sts::123456789012:assumed-role/AdminRole/alice";
        let e = run_to(
            &args(ID, "ecs-restart", None),
            &store,
            &DenyingBus,
            &InMemoryCallerIdentity::new(me),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains(&format!(
                "your identity {me} may not approve: assume FirebreakApproverRole"
            )),
            "{e}"
        );
        assert!(e.contains("ApproverRoleArn"), "{e}");
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
            let code = run_to(&args(ID, action, None), &store, &bus, &alice(), &mut out)
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
            (args("inc-1", "ecs-scale-out", None), "inc-1"),
            (args(ID, "ecs-delete", None), "ecs-delete"),
            (
                args("INC-20260101-000000-ffff", "ecs-scale-out", None),
                "no incident",
            ),
        ];
        for (a, needle) in cases {
            let e = run_to(&a, &store, &bus, &alice(), &mut Vec::new())
                .await
                .unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{a:?}: {e:#}");
        }
        assert!(bus.events().is_empty());
    }
}
