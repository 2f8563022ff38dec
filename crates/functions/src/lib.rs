//! Shared plumbing for the Lambda bins: typed configuration and error mapping.
