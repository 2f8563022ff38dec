//! sweeper: on a schedule, escalates unacknowledged SEV1/SEV2 incidents, remediations whose
//! verification window passed without recovery, and incidents open too long. Idempotent.

use firebreak_aws::{Clients, CloudWatchAlarmStatus, DynamoIncidentStore, EventBridgeBus, SnsNotifier};
use firebreak_core::model::settings::Settings;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::SystemClock;
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::sweeper::Sweeper;
use firebreak_functions::{fail, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    alarms: CloudWatchAlarmStatus,
    notifier: SnsNotifier,
    bus: EventBridgeBus,
    runbooks: RunbookSet,
    settings: Settings,
}

/// The scheduled event's content does not matter: every run looks at every active incident.
async fn handler(deps: &Deps, _event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let sweeper = Sweeper {
        ports: Wired::new()
            .store(&deps.store)
            .alarms(&deps.alarms)
            .notifier(&deps.notifier)
            .bus(&deps.bus)
            .clock(&SystemClock),
        runbooks: deps.runbooks.runbooks(),
        settings: &deps.settings,
    };
    let report = sweeper.sweep().await.map_err(fail)?;
    Ok(
        json!({ "examined": report.examined, "escalations": report.escalations.len(), "repaged": report.repaged, "failures": report.failures.len() }),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    let clients = Clients::from_env().await;
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        alarms: CloudWatchAlarmStatus::new(clients.cloudwatch()),
        notifier: SnsNotifier::new(clients.sns(), resources.topics.clone())
            .with_metrics(&environment.metrics_namespace)
            .with_chat_queue(environment.chat_queue_url.clone()),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        runbooks: firebreak_functions::runbooks(&environment)?,
        settings: environment.settings.clone(),
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // contention is retried while the invocation's deadline allows
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
