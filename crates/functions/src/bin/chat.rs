//! chat: the buttons under Firebreak's pages in a chat channel (Acknowledge, Approve, Show
//! timeline). Each press arrives as an SQS message the pressing user's own IAM role sent; SQS's
//! `SenderId` says which role, and only the stack's chat responder roles
//! (`FIREBREAK_CHAT_RESPONDER_ROLE_ARNS`, their unique ids read once with IAM GetRole) count.
//! The answer goes back to the incident's thread.

use firebreak_aws::chat::{in_flight, presses, responders};
use firebreak_aws::config::Clients;
use firebreak_aws::{DynamoIncidentStore, EventBridgeBus, SnsNotifier};
use firebreak_core::ports::SystemClock;
use firebreak_core::stages::chat::{Chat, ChatCommand, Responders};
use firebreak_functions::{fail, ConfigError, FunctionError};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

struct Deps {
    store: DynamoIncidentStore,
    bus: EventBridgeBus,
    notifier: SnsNotifier,
    responders: Responders,
    approvers: firebreak_core::stages::remediate::Approvers,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

async fn handler(deps: &Deps, event: LambdaEvent<Value>) -> Result<Value, FunctionError> {
    let presses = presses(&event.payload).map_err(|m| {
        fail(FunctionError {
            error_type: "NotAnSqsEvent",
            message: m,
            retryable: false,
        })
    })?;
    let chat = Chat {
        store: &deps.store,
        bus: &deps.bus,
        notifier: &deps.notifier,
        clock: &SystemClock,
        approvers: &deps.approvers,
    };
    let mut answers = Vec::new();
    for p in &presses {
        // not a responder, or not a command: nothing is done and nothing is said in the channel
        // (the queue policy lets only the responder roles send, so this is a misconfiguration)
        let who = match deps.responders.of(&p.sender_id) {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(message_id = %p.message_id, %why, "chat press refused");
                answers.push(json!({"message": p.message_id, "refused": why}));
                continue;
            }
        };
        // only a press SQS really delivered to this function: a direct invoke has no live
        // receipt handle, whatever SenderId it writes
        match in_flight(&deps.sqs, &deps.queue_url, p)
            .await
            .map_err(|e| fail(firebreak_core::Error::from(e)))?
        {
            true => {}
            false => {
                tracing::warn!(message_id = %p.message_id, "chat press refused: not a message SQS holds in flight");
                answers.push(json!({"message": p.message_id, "refused": "not delivered by the chat queue"}));
                continue;
            }
        }
        let cmd = match ChatCommand::parse(&p.body) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(message_id = %p.message_id, error = %e, "chat press refused");
                answers.push(json!({"message": p.message_id, "refused": e.to_string()}));
                continue;
            }
        };
        // a store or bus failure fails the batch: SQS delivers it again, and every command is
        // idempotent
        let a = chat.handle(&cmd, &who).await.map_err(fail)?;
        answers.push(json!({"message": p.message_id, "changed": a.changed, "answer": a.text}));
    }
    Ok(json!({ "answers": answers }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let environment = firebreak_functions::environment()?;
    let resources = firebreak_functions::resources(&environment)?;
    let clients = Clients::from_env().await;
    let roles = environment.approvers.chat_role_arns();
    let responders = responders(&clients.iam(), &roles).await.map_err(|e| {
        ConfigError(format!(
            "{}: {e}",
            firebreak_aws::environment::vars::CHAT_RESPONDER_ROLE_ARNS
        ))
    })?;
    let deps = Deps {
        store: DynamoIncidentStore::new(clients.dynamodb(), &resources.table),
        bus: EventBridgeBus::new(clients.eventbridge(), &resources.bus),
        approvers: environment.approvers.clone(),
        sqs: clients.sqs(),
        queue_url: environment.chat_queue_url.clone().ok_or_else(|| {
            ConfigError(
                "CHAT_ACTIONS_QUEUE_URL is not set: the chat function verifies each press with its queue"
                    .into(),
            )
        })?,
        notifier: SnsNotifier::new(clients.sns(), resources.topics.clone())
            .with_metrics(&environment.metrics_namespace)
            .with_chat_queue(environment.chat_queue_url.clone()),
        responders,
    };
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| {
        firebreak_core::ports::retry::until(firebreak_functions::deadline(&e.context), handler(&deps, e))
    }))
    .await
}
