//! SDK configuration, loaded once per cold start, and the clients built from it.
//!
//! [`load`] reads the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` that point the SDK at an emulator). [`Clients`] builds
//! one client at a time, so a function builds only the adapters it uses. [`Settings`] is the
//! typed Firebreak configuration (table, bus, topics), also read once at init.

use crate::error::ConfigError;
use crate::notify::Topics;
use aws_config::{BehaviorVersion, SdkConfig};

/// Loads the SDK configuration from the environment. Call once per cold start.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// Builds SDK clients from one loaded configuration. Cheap to clone; holds no client.
#[derive(Debug, Clone)]
pub struct Clients {
    sdk: SdkConfig,
}

impl Clients {
    pub fn new(sdk: SdkConfig) -> Clients {
        Clients { sdk }
    }

    /// [`load`] then [`Clients::new`].
    pub async fn from_env() -> Clients {
        Clients::new(load().await)
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// Logs calls time out (5 s an attempt, 15 s in all) so that a hung StartQuery,
    /// GetQueryResults or StopQuery returns within the diagnosis deadline and the adapter can
    /// still stop its query, instead of the whole run being dropped by the outer timeout.
    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(std::time::Duration::from_secs(5))
            .operation_timeout(std::time::Duration::from_secs(15))
            .build();
        aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk)
                .timeout_config(timeouts)
                .build(),
        )
    }

    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk)
    }

    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk)
    }

    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk)
    }
}

/// Environment variable names (set by the SAM template).
pub mod env {
    pub const TABLE: &str = "TABLE_NAME";
    pub const BUS: &str = "EVENT_BUS_NAME";
    pub const TOPIC_SEV1: &str = "TOPIC_SEV1_ARN";
    pub const TOPIC_SEV2: &str = "TOPIC_SEV2_ARN";
    pub const TOPIC_SEV3: &str = "TOPIC_SEV3_ARN";
    pub const TOPIC_SEV4: &str = "TOPIC_SEV4_ARN";
}

/// The AWS resources Firebreak uses, named by the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The DynamoDB table (`TABLE_NAME`).
    pub table: String,
    /// The custom EventBridge bus name or ARN (`EVENT_BUS_NAME`).
    pub bus: String,
    /// One SNS topic ARN per severity (`TOPIC_SEV1_ARN`..`TOPIC_SEV4_ARN`).
    pub topics: Topics,
}

impl Settings {
    /// Reads every setting from the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] naming the first unset or empty variable.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup` (tests pass a map).
    ///
    /// # Errors
    /// [`ConfigError::Missing`] naming the first unset or empty variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |name: &str| -> Result<String, ConfigError> {
            match lookup(name) {
                Some(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
                _ => Err(ConfigError::Missing {
                    name: name.to_string(),
                }),
            }
        };
        Ok(Settings {
            table: get(env::TABLE)?,
            bus: get(env::BUS)?,
            topics: Topics {
                sev1: get(env::TOPIC_SEV1)?,
                sev2: get(env::TOPIC_SEV2)?,
                sev3: get(env::TOPIC_SEV3)?,
                sev4: get(env::TOPIC_SEV4)?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[tokio::test]
    async fn the_logs_client_times_out_its_calls() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        let logs = Clients::new(sdk).logs();
        let t = logs.config().timeout_config().expect("a timeout config");
        assert_eq!(
            t.operation_attempt_timeout(),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(t.operation_timeout(), Some(std::time::Duration::from_secs(15)));
    }

    #[test]
    fn settings_name_the_missing_variable() {
        let vars: HashMap<&str, &str> = [
            (env::TABLE, "t"),
            (env::BUS, "b"),
            (env::TOPIC_SEV1, "arn:1"),
            (env::TOPIC_SEV2, "arn:2"),
            (env::TOPIC_SEV3, " "),
        ]
        .into_iter()
        .collect();
        let err = Settings::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: env::TOPIC_SEV3.into()
            }
        );
    }

    #[test]
    fn settings_read_every_variable() {
        let s = Settings::from_lookup(|n| Some(format!("v-{n}"))).unwrap();
        assert_eq!(s.table, "v-TABLE_NAME");
        assert_eq!(s.topics.sev4, "v-TOPIC_SEV4_ARN");
    }
}
