//! resolve: on "Alarm Recovered", resolves the incident when every alarm is OK (mitigated when a
//! remediation applied but not all recovered), emits stage times as EMF and drafts the
//! postmortem.

use firebreak_aws::{
    Clients, CloudWatchAlarmStatus, DynamoIncidentStore, EcsServiceControl, EventBridgeBus, SnsNotifier,
};
use firebreak_core::model::pipeline::Event;
use firebreak_core::model::settings::Settings;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::SystemClock;
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::resolve::{Resolve, ResolveOutcome};
use firebreak_functions::{fail, unexpected, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    notifier: SnsNotifier,
    bus: EventBridgeBus,
    alarms: CloudWatchAlarmStatus,
    /// Shadow scoring reads what people changed on the service before it recovered.
    ecs: EcsServiceControl,
    runbooks: RunbookSet,
    settings: Settings,
    namespace: String,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let admitted = match firebreak_functions::pipeline_event(&deps.store, &event.payload).await? {
        Ok(e) => e,
        Err(refused) => return Ok(refused),
    };
    let recovered = match admitted {
        Event::Recovered(r) => r,
        other => return Err(unexpected("resolve", &other)),
    };
    let resolve = Resolve {
        ports: Wired::new()
            .store(&deps.store)
            .notifier(&deps.notifier)
            .bus(&deps.bus)
            .clock(&SystemClock)
            .alarms(&deps.alarms)
            .ecs(&deps.ecs),
        runbooks: deps.runbooks.runbooks(),
        settings: &deps.settings,
        metrics_namespace: &deps.namespace,
        emf_to_stdout: true,
    };
    let outcome = resolve.on_recovered(&recovered).await.map_err(fail)?;
    Ok(match outcome {
        ResolveOutcome::Resolved(r) => {
            json!({ "incident": r.incident.id, "status": "resolved", "times": r.times })
        }
        ResolveOutcome::AlreadyResolved { notified } => {
            json!({ "incident": recovered.incident_id, "status": "resolved", "already": true, "notified": notified })
        }
        ResolveOutcome::Mitigated { still_firing } => {
            json!({ "incident": recovered.incident_id, "status": "mitigated", "still_firing": still_firing })
        }
        ResolveOutcome::StillOpen { still_firing } => {
            json!({ "incident": recovered.incident_id, "status": "open", "still_firing": still_firing })
        }
        ResolveOutcome::Refused { reason } => {
            json!({ "incident": recovered.incident_id, "refused": reason })
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    let clients = Clients::from_env().await;
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        notifier: SnsNotifier::new(clients.sns(), resources.topics.clone())
            .with_metrics(&environment.metrics_namespace)
            .with_chat_queue(environment.chat_queue_url.clone()),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        alarms: CloudWatchAlarmStatus::new(clients.cloudwatch()),
        ecs: EcsServiceControl::new(clients.ecs()),
        runbooks: firebreak_functions::runbooks(&environment)?,
        settings: environment.settings.clone(),
        namespace: environment.metrics_namespace.clone(),
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // contention is retried while the invocation's deadline allows
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
