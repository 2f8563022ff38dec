//! diagnose: on "Incident Opened" / "Incident Escalated", runs the runbook's Logs Insights
//! queries and reads its CloudWatch metrics, reads recent ECS changes (deployments and what
//! their task definitions changed), scores the known causes, pages what it found and tells
//! remediate.

use firebreak_aws::environment::DiagnosisBackend;
use firebreak_aws::notify::SnsNotifier;
use firebreak_aws::{
    Clients, CloudWatchMetrics, DynamoIncidentStore, EcsServiceControl, EventBridgeBus, FetchingLogQueries,
    FilterLogEventsFetcher, InsightsLogQueries,
};
use firebreak_core::model::pipeline::Event;
use firebreak_core::model::settings::Settings;
use firebreak_core::ports::bundle::Wired;
use firebreak_core::ports::{LogQueries, QueryError, QueryOutput, QueryRequest, SystemClock};
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::diagnose::Diagnose;
use firebreak_functions::{fail, unexpected, FunctionError};
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
    metrics: CloudWatchMetrics,
    notifier: SnsNotifier,
    ecs: EcsServiceControl,
    bus: EventBridgeBus,
    runbooks: RunbookSet,
    settings: Settings,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let admitted = match firebreak_functions::pipeline_event(&deps.store, &event.payload).await? {
        Ok(e) => e,
        Err(refused) => return Ok(refused),
    };
    let raised = match admitted {
        Event::Opened(r) | Event::Escalated(r) => r,
        other => return Err(unexpected("diagnose", &other)),
    };
    let diagnose = Diagnose {
        ports: Wired::new()
            .store(&deps.store)
            .logs(&deps.logs)
            .metrics(&deps.metrics)
            .notifier(&deps.notifier)
            .ecs(&deps.ecs)
            .bus(&deps.bus)
            .clock(&SystemClock),
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
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    // The local engine: each query may use an eighth of the function's memory, so the four
    // queries a diagnosis runs at once take at most half of it.
    let memory_mb: usize = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(128);
    firebreak_insights::set_default_memory_budget((memory_mb << 20) / 8);
    let clients = Clients::from_env().await;
    let logs = match environment.diagnosis_backend {
        DiagnosisBackend::Insights => Backend::Insights(InsightsLogQueries::new(clients.logs())),
        DiagnosisBackend::Local { max_events } => Backend::Local(FetchingLogQueries::new(
            FilterLogEventsFetcher::new(clients.logs(), max_events.unwrap_or(200_000)),
        )),
    };
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        logs,
        metrics: CloudWatchMetrics::new(clients.cloudwatch()),
        notifier: SnsNotifier::new(clients.sns(), resources.topics.clone())
            .with_metrics(&environment.metrics_namespace)
            .with_chat_queue(environment.chat_queue_url.clone()),
        ecs: EcsServiceControl::new(clients.ecs()),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        runbooks: firebreak_functions::runbooks(&environment)?,
        settings: environment.settings,
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        // contention is retried while the invocation's deadline allows
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
