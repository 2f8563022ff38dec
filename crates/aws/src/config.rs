//! SDK configuration, loaded once per cold start, and the clients built from it.
//!
//! [`load`] reads the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_<SERVICE>` that point the SDK at an emulator). [`Clients`] builds
//! one client at a time, so a function builds only the adapters it uses. [`Settings`] is the
//! typed Firebreak configuration (table, bus, topics), also read once at init.

use crate::error::ConfigError;
use crate::notify::Topics;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{RuntimeComponents, RuntimeComponentsBuilder};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::Once;

/// Loads the SDK configuration from the environment. Call once per cold start.
///
/// Every client built from it shares one HTTPS client ([`https_client`]): one connector (the
/// rustls config with the system trust store) is built at init, when the first client is built,
/// instead of one per SDK client (and another per client on its first request). When the environment holds static
/// credentials (always so in Lambda), they are the credentials, exactly as the default chain
/// would resolve them first; the rest of the chain (which builds an STS client for web
/// identity, an IMDS and an ECS provider) is only built when they are absent.
pub async fn load() -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    let loader = if env_has_static_credentials(|name| std::env::var(name).ok()) {
        loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new())
    } else {
        loader
    };
    loader.load().await
}

/// Whether the environment credentials provider, the first of the default chain, resolves: an
/// access key id and a secret key, neither blank (the names it reads).
fn env_has_static_credentials(lookup: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID") && (set("AWS_SECRET_ACCESS_KEY") || set("SECRET_ACCESS_KEY"))
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, the system trust store, proxy
/// settings from the environment), built the way `aws-smithy-runtime` builds it for the current
/// behavior version, to be shared by every client of one [`SdkConfig`].
///
/// The SDK validates the HTTP client of each client it builds, and the default client answers
/// that by building (and dropping) a whole connector, which parses every root certificate; a
/// separate default client per SDK client also means a separate connector per client on the
/// first request. Shared, a connector is built at the first validation only (so the trust store
/// still loads at init, when the first client is built, not in the first invocation) and then
/// once per distinct connector settings on first use, cached for every client.
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    });
    ValidatedOnce {
        inner,
        validated: Once::new(),
    }
    .into_shared()
}

/// An HTTP client whose base-config validation (the eager connector build) runs once, however
/// many SDK clients are built on it. (The default client's validation cannot fail; were it to,
/// the first client would still get the error.)
#[derive(Debug)]
struct ValidatedOnce {
    inner: SharedHttpClient,
    validated: Once,
}

impl HttpClient for ValidatedOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        let mut result = Ok(());
        self.validated
            .call_once(|| result = self.inner.validate_base_client_config(components, cfg));
        result
    }

    fn validate_final_config(&self, components: &RuntimeComponents, cfg: &ConfigBag) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
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

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk)
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
    fn static_credentials_need_a_key_id_and_a_secret() {
        fn has(vars: &[(&str, &str)]) -> bool {
            env_has_static_credentials(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
        }
        assert!(has(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]));
        assert!(has(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", " "),
            ("SECRET_ACCESS_KEY", "s")
        ]));
        assert!(!has(&[("AWS_ACCESS_KEY_ID", "a")]));
        assert!(!has(&[
            ("AWS_ACCESS_KEY_ID", " "),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ]));
        assert!(!has(&[]));
    }

    /// Counts the validations that reach the wrapped client.
    #[derive(Debug, Default)]
    struct CountingClient(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl HttpClient for CountingClient {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            unreachable!("no request is sent")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn clients_of_one_config_validate_the_shared_http_client_once() {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let http = ValidatedOnce {
            inner: CountingClient(count.clone()).into_shared(),
            validated: Once::new(),
        };
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(http)
            .build();
        let clients = Clients::new(sdk);
        let _ = (
            clients.dynamodb(),
            clients.sns(),
            clients.logs(),
            clients.eventbridge(),
        );
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
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
