//! Shared plumbing for the Lambda bins: configuration read once at init (failing the cold start
//! with a message that names the variable), the policy and runbooks, and the mapping of domain
//! errors to the runtime's error response.
//!
//! Each bin is a thin `main`: init tracing, load the SDK config once, build only the adapters it
//! needs, then `run(service_fn(|e| handler(&deps, e)))`.

use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::{parse_source, RunbookSet, RunbookSource};
use firebreak_core::settings::Settings;
use lambda_runtime::Diagnostic;
use std::fmt;

pub mod env {
    /// A severity policy file to use instead of the embedded `runbooks/policy.yaml`.
    pub const POLICY_FILE: &str = "FIREBREAK_POLICY_FILE";
    /// A runbook directory to use instead of the embedded `runbooks/`.
    pub const RUNBOOKS_DIR: &str = "FIREBREAK_RUNBOOKS_DIR";
    /// EMF namespace for the stage-time metrics.
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    /// `insights` (Logs Insights, the default) or `local` (FilterLogEvents + the local engine).
    pub const DIAGNOSIS_BACKEND: &str = "DIAGNOSIS_BACKEND";
    /// Upper bound of events the local backend pulls per query.
    pub const DIAGNOSIS_LOCAL_MAX_EVENTS: &str = "DIAGNOSIS_LOCAL_MAX_EVENTS";
}

/// A configuration problem found at init: the function refuses to start and says why.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Behaviour settings from the environment (`firebreak_core::settings::env`).
///
/// # Errors
/// Names the variable whose value is wrong.
pub fn settings() -> Result<Settings, ConfigError> {
    Settings::from_lookup(var).map_err(|e| ConfigError(e.to_string()))
}

/// The severity policy: `FIREBREAK_POLICY_FILE` or the embedded one.
///
/// # Errors
/// Names the file and the field that is wrong.
pub fn policy() -> Result<SeverityPolicy, ConfigError> {
    match var(env::POLICY_FILE) {
        Some(path) => SeverityPolicy::load(&path),
        None => SeverityPolicy::shipped(),
    }
    .map_err(|e| ConfigError(e.to_string()))
}

/// The runbooks: `FIREBREAK_RUNBOOKS_DIR` (loaded and linted at init, so a bad runbook fails the
/// cold start naming the file, runbook and field) or the embedded ones.
///
/// # Errors
/// Names the file, runbook and field that fail to load or lint.
pub fn runbooks() -> Result<RunbookSet, ConfigError> {
    match var(env::RUNBOOKS_DIR) {
        Some(dir) => RunbookSet::load_dir(&dir),
        None => embedded_runbooks(),
    }
    .map_err(|e| ConfigError(e.to_string()))
}

/// The embedded runbooks, parsed but not linted. They are constants of the binary, so the lint
/// (which renders every query template, parses each query twice and compiles every regex: 2.6 of
/// the 3.0 ms `RunbookSet::from_embedded` takes, a quarter of the init budget) would give the
/// same answer at every cold start; the test `embedded_runbooks_are_the_linted_set` runs it
/// instead, and fails when a shipped runbook has a lint error or loads differently unlinted.
fn embedded_runbooks() -> Result<RunbookSet, firebreak_core::Error> {
    firebreak_core::embedded::runbook_files()
        .map(|(file, text)| {
            let src = RunbookSource {
                file: file.to_string(),
                text: text.to_string(),
            };
            parse_source(&src).map_err(|f| firebreak_core::Error::invalid("embedded runbooks", f.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(RunbookSet::from_runbooks)
}

/// Parses a pipeline event envelope (EventBridge) into the typed event.
///
/// # Errors
/// [`firebreak_core::Error::Invalid`] naming the field.
pub fn pipeline_event(payload: &serde_json::Value) -> Result<firebreak_core::pipeline::Event, FunctionError> {
    firebreak_core::pipeline::Event::from_envelope(payload).map_err(fail)
}

/// An event this function is not subscribed to: a wiring mistake, never retried.
pub fn unexpected(function: &str, event: &firebreak_core::pipeline::Event) -> FunctionError {
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
pub fn resources() -> Result<firebreak_aws::config::Settings, ConfigError> {
    firebreak_aws::config::Settings::from_env().map_err(|e| ConfigError(e.to_string()))
}

/// `METRICS_NAMESPACE`, default `Firebreak`.
pub fn metrics_namespace() -> String {
    var(env::METRICS_NAMESPACE).unwrap_or_else(|| "Firebreak".to_string())
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
pub fn fail(e: impl Into<FunctionError>) -> FunctionError {
    let e = e.into();
    tracing::error!(error_type = e.error_type, retryable = e.retryable, error = %e.message, "invocation failed");
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_runbooks_are_the_linted_set() {
        let linted =
            RunbookSet::from_embedded(firebreak_core::embedded::FILES).expect("shipped runbooks lint clean");
        let loaded = embedded_runbooks().expect("shipped runbooks parse");
        assert!(!loaded.is_empty());
        assert_eq!(loaded.runbooks(), linted.runbooks());
        for id in linted.ids() {
            assert_eq!(loaded.file_of(id), linted.file_of(id), "{id}");
        }
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
