//! The crate's error type.

use crate::ports::{PortError, QueryError, StoreError};

/// Everything that can go wrong in the domain and its use-cases.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input (an event, a file, a flag) was wrong. `what` names the field or file, `reason` says why.
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Port(#[from] PortError),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl Error {
    pub fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// True when retrying the same delivery may succeed; async invokes return `Err` only then.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Invalid { .. } => false,
            Error::Store(e) => e.is_retryable(),
            Error::Port(e) => e.retryable,
            Error::Query(QueryError::Port(e)) => e.retryable,
            Error::Query(_) => false,
        }
    }

    /// A stable name for the Lambda runtime's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "InvalidInput",
            Error::Store(StoreError::Conflict(_)) => "ConcurrentUpdate",
            Error::Store(_) => "StoreError",
            Error::Port(_) => "DependencyError",
            Error::Query(_) => "QueryError",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
