//! diagnose: on "Incident Opened" / "Incident Escalated", runs the runbook's Logs Insights
//! queries, reads recent ECS changes, matches known causes and tells remediate.

use firebreak_aws::{
    Clients, DynamoIncidentStore, EcsServiceControl, EventBridgeBus, FetchingLogQueries,
    FilterLogEventsFetcher, InsightsLogQueries,
};
use firebreak_core::diagnose::Diagnose;
use firebreak_core::pipeline::Event;
use firebreak_core::ports::{LogQueries, QueryError, QueryOutput, QueryRequest, SystemClock};
use firebreak_core::runbook::RunbookSet;
use firebreak_core::settings::Settings;
use firebreak_functions::{env, fail, unexpected, ConfigError, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

/// Where queries run: Logs Insights, or FilterLogEvents plus the local engine.
enum Backend {
    Insights(InsightsLogQueries),
    Local(FetchingLogQueries),
}

impl LogQueries for Backend {
    async fn run(&self, request: &QueryRequest) -> Result<QueryOutput, QueryError> {
        match self {
            Backend::Insights(q) => q.run(request).await,
            Backend::Local(q) => q.run(request).await,
        }
    }
}

struct Deps {
    store: DynamoIncidentStore,
    logs: Backend,
    ecs: EcsServiceControl,
    bus: EventBridgeBus,
    runbooks: RunbookSet,
    settings: Settings,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let raised = match firebreak_functions::pipeline_event(&event.payload)? {
        Event::Opened(r) | Event::Escalated(r) => r,
        other => return Err(unexpected("diagnose", &other)),
    };
    let diagnose = Diagnose {
        store: &deps.store,
        logs: &deps.logs,
        ecs: &deps.ecs,
        bus: &deps.bus,
        clock: &SystemClock,
        runbooks: &deps.runbooks,
        settings: &deps.settings,
    };
    let report = diagnose.handle(&raised).await.map_err(fail)?;
    Ok(
        json!({ "incident": report.incident_id, "runbook": report.runbook, "cause": report.cause, "suggested": report.suggested }),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let resources = firebreak_functions::resources()?;
    let clients = Clients::from_env().await;
    let logs = match std::env::var(env::DIAGNOSIS_BACKEND)
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("") | Some("insights") => Backend::Insights(InsightsLogQueries::new(clients.logs())),
        Some("local") => {
            let max = match std::env::var(env::DIAGNOSIS_LOCAL_MAX_EVENTS)
                .ok()
                .filter(|v| !v.trim().is_empty())
            {
                None => 200_000,
                Some(v) => v.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ConfigError(format!(
                        "{}: {v:?} is not a whole number above 0",
                        env::DIAGNOSIS_LOCAL_MAX_EVENTS
                    ))
                })?,
            };
            Backend::Local(FetchingLogQueries::new(FilterLogEventsFetcher::new(
                clients.logs(),
                max,
            )))
        }
        Some(other) => {
            return Err(ConfigError(format!(
                "{}: {other:?} is not insights or local",
                env::DIAGNOSIS_BACKEND
            ))
            .into())
        }
    };
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        logs,
        ecs: EcsServiceControl::new(clients.ecs()),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        runbooks: firebreak_functions::runbooks()?,
        settings: firebreak_functions::settings()?,
    };
    lambda_runtime::run(service_fn(|e| handler(&deps, e))).await
}
