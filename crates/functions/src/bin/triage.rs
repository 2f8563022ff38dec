//! triage: an alarm (SNS notification, EventBridge state change or direct alarm action) becomes a
//! classified incident, paged, and announced to the pipeline.

use firebreak_aws::bus::EventBridgeBus;
use firebreak_aws::config::Clients;
use firebreak_aws::notify::SnsNotifier;
use firebreak_aws::store::DynamoIncidentStore;
use firebreak_core::intake;
use firebreak_core::model::settings::Settings;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::SystemClock;
use firebreak_core::report::metrics::emf_count;
use firebreak_core::stages::triage::{Triage, TriageOutcome};
use firebreak_functions::{fail, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    notifier: SnsNotifier,
    bus: EventBridgeBus,
    policy: SeverityPolicy,
    settings: Settings,
    namespace: String,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let signals = intake::parse_event(&event.payload).map_err(fail)?;
    let triage = Triage {
        ports: Wired::new()
            .store(&deps.store)
            .notifier(&deps.notifier)
            .bus(&deps.bus)
            .clock(&SystemClock),
        policy: &deps.policy,
        settings: &deps.settings,
    };
    let mut outcomes = Vec::with_capacity(signals.len());
    for signal in &signals {
        let outcome = triage.handle(signal).await.map_err(fail)?;
        if let TriageOutcome::Opened { .. } | TriageOutcome::Reopened { .. } = outcome {
            // the severity as classified (pure, no call): what the incident was opened at
            let sev = deps.policy.classify(signal).severity;
            println!(
                "{}",
                emf_count(
                    &deps.namespace,
                    "IncidentsOpened",
                    &[("Severity", sev.as_str())],
                    &[&["Severity"]],
                    chrono::Utc::now()
                )
            );
        }
        outcomes.push(
            json!({ "alarm": signal.alarm_name, "state": signal.state, "outcome": format!("{outcome:?}") }),
        );
    }
    Ok(json!({ "signals": outcomes }))
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
        policy: firebreak_functions::policy(&environment)?,
        settings: environment.settings.clone(),
        namespace: environment.metrics_namespace.clone(),
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // contention is retried while the invocation's deadline allows
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
