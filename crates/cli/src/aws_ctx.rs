//! The store-backed commands' connection to AWS (or the emulator through `AWS_ENDPOINT_URL`):
//! the same variables the functions read. Only the table is needed by every command; a command
//! that pages or tells the pipeline says which variable it is missing.

use firebreak_aws::{Clients, DynamoIncidentStore, EventBridgeBus, SnsNotifier, StsCallerIdentity, Topics};
use firebreak_core::ports::{EventBus, Notification, Notifier, PipelineEvent, PortError, Route};

/// Either the real adapter or a stand-in that explains what to configure.
pub enum Maybe<T> {
    Ready(T),
    Missing(&'static str),
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Notifier for Maybe<SnsNotifier> {
    async fn notify(&self, route: Route, message: &Notification) -> Result<String, PortError> {
        match self {
            Maybe::Ready(n) => n.notify(route, message).await,
            Maybe::Missing(v) => Err(PortError::new("SNS Publish", format!("set {v} to notify"), false)),
        }
    }
}

impl EventBus for Maybe<EventBridgeBus> {
    async fn put(&self, event: &PipelineEvent) -> Result<(), PortError> {
        match self {
            Maybe::Ready(b) => b.put(event).await,
            Maybe::Missing(v) => Err(PortError::new(
                "EventBridge PutEvents",
                format!("set {v} to tell the pipeline"),
                false,
            )),
        }
    }
}

pub struct AwsCtx {
    pub store: DynamoIncidentStore,
    pub notifier: Maybe<SnsNotifier>,
    pub bus: Maybe<EventBridgeBus>,
    /// Who the credentials are (STS GetCallerIdentity): the approver `firebreak approve` records.
    pub identity: StsCallerIdentity,
}

/// Builds the adapters from the environment.
///
/// # Errors
/// When `TABLE_NAME` is not set.
pub async fn from_env() -> anyhow::Result<AwsCtx> {
    let table = var("TABLE_NAME").ok_or_else(|| {
        anyhow::anyhow!("set TABLE_NAME to the Firebreak table (the stack output TableName); AWS_ENDPOINT_URL points at an emulator")
    })?;
    let clients = Clients::from_env().await;
    let topic = |n: &'static str| var(n).ok_or(n);
    let notifier = match (
        topic("TOPIC_SEV1_ARN"),
        topic("TOPIC_SEV2_ARN"),
        topic("TOPIC_SEV3_ARN"),
        topic("TOPIC_SEV4_ARN"),
    ) {
        (Ok(sev1), Ok(sev2), Ok(sev3), Ok(sev4)) => Maybe::Ready(SnsNotifier::new(
            clients.sns(),
            Topics {
                sev1,
                sev2,
                sev3,
                sev4,
            },
        )),
        (Err(v), _, _, _) | (_, Err(v), _, _) | (_, _, Err(v), _) | (_, _, _, Err(v)) => Maybe::Missing(v),
    };
    let bus = match var("EVENT_BUS_NAME") {
        Some(b) => Maybe::Ready(EventBridgeBus::new(clients.eventbridge(), b)),
        None => Maybe::Missing("EVENT_BUS_NAME"),
    };
    Ok(AwsCtx {
        store: DynamoIncidentStore::new(clients.dynamodb(), table),
        notifier,
        bus,
        identity: StsCallerIdentity::from_config(clients.sdk_config()),
    })
}
