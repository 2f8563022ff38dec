//! oncall: tells PagerDuty (Events API v2) and a signed webhook about each incident's
//! lifecycle, from the pipeline's events, beside the SNS pages the other stages send.
//!
//! Keys are read once per cold start from SSM (`PAGERDUTY_ROUTING_KEY_PARAMETER`,
//! `WEBHOOK_SECRET_PARAMETER`: a SecureString, or `/aws/reference/secretsmanager/<id>`). A call
//! that fails after its retries is on the incident's timeline; the invocation then fails so
//! Lambda retries it, and the failure queue keeps it after that (nothing already sent is sent
//! again).

use firebreak_aws::config::Clients;
use firebreak_aws::oncall::{read_secret, HyperSender};
use firebreak_aws::store::DynamoIncidentStore;
use firebreak_core::model::oncall::{env, OnCallSettings};
use firebreak_core::ports::SystemClock;
use firebreak_core::report::metrics::emf_count;
use firebreak_core::stages::oncall::{OnCall, OnCallKeys};
use firebreak_functions::{fail, ConfigError, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    http: HyperSender,
    settings: OnCallSettings,
    keys: OnCallKeys,
    region: String,
    namespace: String,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let admitted = match firebreak_functions::pipeline_event(&deps.store, &event.payload).await? {
        Ok(e) => e,
        Err(refused) => return Ok(refused),
    };
    let oncall = OnCall {
        store: &deps.store,
        clock: &SystemClock,
        http: &deps.http,
        settings: &deps.settings,
        keys: &deps.keys,
        region: &deps.region,
    };
    let report = oncall.handle(&admitted).await.map_err(fail)?;
    let failed: Vec<&str> = report
        .sent
        .iter()
        .filter_map(|s| s.error.as_ref().map(|_| s.kind))
        .collect();
    for kind in &failed {
        println!(
            "{}",
            emf_count(
                &deps.namespace,
                "OutboundFailed",
                &[("Kind", kind)],
                &[&["Kind"]],
                chrono::Utc::now()
            )
        );
    }
    if !failed.is_empty() {
        // on the timeline already; failing the invocation makes Lambda try again later
        return Err(fail(FunctionError {
            error_type: "OnCallFailed",
            message: format!(
                "{} on-call call(s) failed after their retries: {}",
                failed.len(),
                failed.join(", ")
            ),
            retryable: true,
        }));
    }
    Ok(json!({
        "incident": admitted.incident_id(),
        "sent": report.sent.iter().map(|s| s.kind).collect::<Vec<_>>(),
        "skipped": report.skipped,
    }))
}

/// The keys, read once: a cold start that cannot read a configured key fails naming the
/// parameter (the URLs and severities were checked when the environment was read).
async fn keys(oc: &firebreak_aws::environment::OnCall, clients: &Clients) -> Result<OnCallKeys, ConfigError> {
    let ssm = clients.ssm();
    let secret = |name: &'static str, param: &Option<String>| {
        let ssm = ssm.clone();
        let param = param.clone();
        async move {
            let Some(param) = param else {
                return Err(ConfigError(format!("{name} is not set")));
            };
            read_secret(&ssm, &param)
                .await
                .map_err(|e| ConfigError(format!("{name}: {e}")))
        }
    };
    let mut keys = OnCallKeys {
        pagerduty_url: oc.pagerduty_url.clone(),
        ..OnCallKeys::default()
    };
    if oc.settings.pagerduty.is_some() {
        keys.routing_key =
            Some(secret(env::PAGERDUTY_ROUTING_KEY_PARAMETER, &oc.pagerduty_key_parameter).await?);
    }
    if oc.settings.webhook.is_some() {
        let url = oc
            .webhook_url
            .clone()
            .ok_or_else(|| ConfigError(format!("{} is not set", env::WEBHOOK_URL)))?;
        keys.webhook_url = Some(url);
        keys.webhook_secret =
            Some(secret(env::WEBHOOK_SECRET_PARAMETER, &oc.webhook_secret_parameter).await?);
    }
    Ok(keys)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    let settings = environment.oncall.settings.clone();
    let clients = Clients::from_env().await;
    let region = clients
        .sdk_config()
        .region()
        .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        http: HyperSender::new().map_err(|e| ConfigError(e.to_string()))?,
        keys: keys(&environment.oncall, &clients).await?,
        settings,
        region,
        namespace: environment.metrics_namespace.clone(),
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
