//! remediate: on "Diagnosis Completed", the runbook's action for the cause through every
//! guardrail, in the configured mode; on "Remediation Approved", the approved action.

use firebreak_aws::{
    Clients, CloudWatchAlarmStatus, DynamoIncidentStore, EcsServiceControl, EventBridgeBus, SnsNotifier,
};
use firebreak_core::model::pipeline::Event;
use firebreak_core::model::settings::Settings;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::SystemClock;
use firebreak_core::report::metrics::emf_count;
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::remediate::{Approvers, Remediate};
use firebreak_functions::{fail, unexpected, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    ecs: EcsServiceControl,
    alarms: CloudWatchAlarmStatus,
    notifier: SnsNotifier,
    bus: EventBridgeBus,
    runbooks: RunbookSet,
    settings: Settings,
    /// Whose approvals count (`FIREBREAK_APPROVER_ROLE_ARN`), read once at init.
    approvers: Approvers,
    namespace: String,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let remediate = Remediate {
        ports: Wired::new()
            .store(&deps.store)
            .ecs(&deps.ecs)
            .alarms(&deps.alarms)
            .notifier(&deps.notifier)
            .bus(&deps.bus)
            .clock(&SystemClock),
        runbooks: deps.runbooks.runbooks(),
        settings: &deps.settings,
    };
    let admitted = match firebreak_functions::pipeline_event(&deps.store, &event.payload).await? {
        Ok(e) => e,
        Err(refused) => return Ok(refused),
    };
    let report = match admitted {
        Event::Diagnosed(d) => remediate.on_diagnosis(&d).await,
        Event::Approved(a) => remediate.on_approval(&a, &deps.approvers).await,
        other => return Err(unexpected("remediate", &other)),
    }
    .map_err(fail)?;
    for r in &report.decisions {
        let (action, outcome) = (r.action.to_string(), r.outcome.to_string());
        println!(
            "{}",
            emf_count(
                &deps.namespace,
                "Remediations",
                &[("Action", &action), ("Outcome", &outcome)],
                &[&["Outcome"], &["Action", "Outcome"]],
                r.at
            )
        );
    }
    let decisions: Vec<Value> = report
        .decisions
        .iter()
        .map(|r| json!({ "action": r.action, "mode": r.mode, "outcome": r.outcome, "detail": r.detail }))
        .collect();
    Ok(
        json!({ "incident": report.incident_id, "cause": report.cause, "decisions": decisions, "skipped": report.skipped }),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    if environment.approvers.role_arn().is_none() {
        tracing::warn!("FIREBREAK_APPROVER_ROLE_ARN is not set: any IAM or STS ARN may approve");
    }
    let clients = Clients::from_env().await;
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        ecs: EcsServiceControl::new(clients.ecs()),
        alarms: CloudWatchAlarmStatus::new(clients.cloudwatch()),
        notifier: SnsNotifier::new(clients.sns(), resources.topics.clone())
            .with_metrics(&environment.metrics_namespace)
            .with_chat_queue(environment.chat_queue_url.clone()),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        runbooks: firebreak_functions::runbooks(&environment)?,
        settings: environment.settings.clone(),
        approvers: environment.approvers.clone(),
        namespace: environment.metrics_namespace.clone(),
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // contention is retried while the invocation's deadline allows
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
