//! Shared plumbing for the Lambda bins: configuration read once at init (failing the cold start
//! with a message that names the variable), the policy and runbooks, and the mapping of domain
//! errors to the runtime's error response.
//!
//! Each bin is a thin `main`: init tracing, load the SDK config once, build only the adapters it
//! needs, then `run(service_fn(|e| handler(&deps, e)))`.

use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::RunbookSet;
use lambda_runtime::Diagnostic;
use std::fmt;

pub use firebreak_aws::environment::vars as env;
use firebreak_aws::Environment;

/// A configuration problem found at init: the function refuses to start and says why.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Everything the function reads from its environment, read once through the one typed module
/// the CLI uses too ([`Environment`]).
///
/// # Errors
/// Names the variable whose value is wrong.
pub fn environment() -> Result<Environment, ConfigError> {
    Environment::from_env().map_err(|e| ConfigError(e.to_string()))
}

/// The severity policy: `FIREBREAK_POLICY_FILE` or the embedded one.
///
/// # Errors
/// Names the file and the field that is wrong.
pub fn policy(env: &Environment) -> Result<SeverityPolicy, ConfigError> {
    env.policy().map_err(|e| ConfigError(e.to_string()))
}

/// The runbooks: `FIREBREAK_RUNBOOKS_DIR` (loaded and linted at init, so a bad runbook fails the
/// cold start naming the file, runbook and field) or the shipped ones (linted by the tests).
///
/// # Errors
/// Names the file, runbook and field that fail to load or lint.
pub fn runbooks(env: &Environment) -> Result<RunbookSet, ConfigError> {
    env.runbooks().map_err(|e| ConfigError(e.to_string()))
}

/// Admits a pipeline event envelope (EventBridge, or a direct invoke) as one of Firebreak's own
/// events, or refuses it: `Err(answer)` is what the handler returns for a refused envelope (it
/// succeeds, so it is not retried; the refusal is on the timeline of the incident it named).
///
/// # Errors
/// The outer error: store errors while recording a refusal (retried).
pub async fn pipeline_event<S: firebreak_core::ports::IncidentStore>(
    store: &S,
    payload: &serde_json::Value,
) -> Result<Result<firebreak_core::model::pipeline::Event, serde_json::Value>, FunctionError> {
    use firebreak_core::stages::boundary::{admit, Admission};
    match admit(store, &firebreak_core::ports::SystemClock, payload)
        .await
        .map_err(fail)?
    {
        Admission::Admitted(event) => Ok(Ok(event)),
        Admission::Refused { reason, recorded_on } => Ok(Err(serde_json::json!({
            "refused": reason,
            "incident": recorded_on,
        }))),
    }
}

/// An event this function is not subscribed to: a wiring mistake, never retried.
pub fn unexpected(function: &str, event: &firebreak_core::model::pipeline::Event) -> FunctionError {
    fail(FunctionError {
        error_type: "UnexpectedEvent",
        message: format!(
            "{function} does not handle {:?} events; check the EventBridge rule",
            event.detail_type()
        ),
        retryable: false,
    })
}

/// The AWS resources (table, bus, topics).
///
/// # Errors
/// Names the missing variable.
pub fn resources(env: &Environment) -> Result<firebreak_aws::config::Settings, ConfigError> {
    env.resources.clone().map_err(|e| ConfigError(e.to_string()))
}

/// What a handler returns on failure. Async invokes (SNS, EventBridge, alarm actions) retry an
/// error and then send the event to the on-failure destination, so nothing is dropped; the
/// `error_type` tells an operator reading the destination whether a retry could have helped.
#[derive(Debug)]
pub struct FunctionError {
    pub error_type: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl From<firebreak_core::Error> for FunctionError {
    fn from(e: firebreak_core::Error) -> Self {
        FunctionError {
            error_type: e.error_type(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        let kind = if e.retryable { "Retryable" } else { "Permanent" };
        Diagnostic {
            error_type: format!("{kind}.{}", e.error_type),
            error_message: e.message,
        }
    }
}

/// Logs the error with its kind and returns it for the runtime.
/// The invocation's deadline as an instant of the runtime's clock (Lambda gives it in
/// milliseconds since the epoch): the use-cases retry contention until shortly before it.
pub fn deadline(ctx: &lambda_runtime::Context) -> tokio::time::Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    tokio::time::Instant::now() + std::time::Duration::from_millis(ctx.deadline.saturating_sub(now_ms))
}

pub fn fail(e: impl Into<FunctionError>) -> FunctionError {
    let e = e.into();
    tracing::error!(error_type = e.error_type, retryable = e.retryable, error = %e.message, "invocation failed");
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_lambdas_in_the_runtimes_clock() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let mut ctx = lambda_runtime::Context::default();
        ctx.deadline = now_ms + 5_000;
        let left = deadline(&ctx) - tokio::time::Instant::now();
        assert!(
            left > std::time::Duration::from_millis(4_000) && left <= std::time::Duration::from_millis(5_000),
            "{left:?}"
        );
        ctx.deadline = now_ms - 1_000;
        assert!(deadline(&ctx) <= tokio::time::Instant::now() + std::time::Duration::from_millis(1));
    }

    #[test]
    fn domain_errors_keep_their_kind_in_the_diagnostic() {
        let e: FunctionError = firebreak_core::Error::invalid("Records[0].Sns.Message", "not JSON").into();
        assert!(!e.retryable);
        let d: Diagnostic = e.into();
        assert_eq!(d.error_type, "Permanent.InvalidInput");
        assert!(d.error_message.contains("Records[0].Sns.Message"));

        let p = firebreak_core::ports::PortError::new("SNS Publish", "throttled", true);
        let d: Diagnostic = FunctionError::from(firebreak_core::Error::Port(p)).into();
        assert_eq!(d.error_type, "Retryable.DependencyError");
    }
}
