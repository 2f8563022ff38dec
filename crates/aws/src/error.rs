//! The crate's own error (configuration read at init) and the one place where SDK errors become
//! [`PortError`]s: code and message from the error's metadata, retryable for throttling, 5xx,
//! timeouts and dispatch failures, not for validation and other client errors.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use firebreak_core::ports::PortError;

/// Configuration that a function reads once at init; fails the cold start, never a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is not set")]
    Missing { name: String },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// Error codes that mean "try again later" across the services Firebreak calls.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    // Reason codes of a cancelled DynamoDB transaction (no "Exception" suffix there).
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    // SNS publishing to a topic encrypted with a customer managed key.
    "KMSThrottlingException",
    "LimitExceededException",
    "TransactionInProgressException",
    "TransactionConflict",
    "TransactionConflictException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// True when an AWS error code names a transient condition.
pub fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// Classifies an SDK error of `operation` (`DynamoDB TransactWriteItems`).
pub fn port_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let status = ctx.raw().status().as_u16();
            let code = e.code().map(str::to_string);
            let retryable = code.as_deref().is_some_and(is_retryable_code) || status >= 500 || status == 429;
            let message = match (e.message(), code.as_deref()) {
                (Some(m), _) if !m.is_empty() => m.to_string(),
                (_, Some(c)) => format!("{c} (HTTP {status})"),
                _ => format!("HTTP {status}: {}", DisplayErrorContext(e)),
            };
            PortError {
                operation: operation.to_string(),
                message,
                retryable,
                code,
            }
        }
        SdkError::TimeoutError(_) => PortError::new(operation, "timed out", true).with_code("Timeout"),
        SdkError::DispatchFailure(d) => {
            // A connection that failed or timed out may succeed later; a user error (bad
            // endpoint URL, TLS setup) will not.
            let retryable = d.is_io() || d.is_timeout() || d.is_other();
            PortError::new(operation, DisplayErrorContext(err).to_string(), retryable)
        }
        // The response arrived but could not be read (truncated body, garbled JSON): transient.
        SdkError::ResponseError(_) => PortError::new(operation, DisplayErrorContext(err).to_string(), true),
        _ => PortError::new(operation, DisplayErrorContext(err).to_string(), false),
    }
}

/// A request the SDK refused to build (a required field missing): a bug, never retryable.
pub fn build_error(operation: &str, err: &aws_smithy_types::error::operation::BuildError) -> PortError {
    PortError::new(operation, DisplayErrorContext(err).to_string(), false).with_code("BuildError")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_codes_are_retryable_validation_is_not() {
        assert!(is_retryable_code("ThrottlingException"));
        assert!(is_retryable_code("ProvisionedThroughputExceededException"));
        assert!(is_retryable_code("InternalServerError"));
        assert!(!is_retryable_code("ValidationException"));
        assert!(!is_retryable_code("ConditionalCheckFailedException"));
        assert!(!is_retryable_code("ServiceNotFoundException"));
    }
}
