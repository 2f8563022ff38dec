//! The on-call tools' transport and secrets: [`HyperSender`], the [`HttpSender`] port over an
//! HTTPS client (hyper with rustls on aws-lc and the system's roots, as the SDK's own client),
//! and [`read_secret`], one SSM `GetParameter` with decryption (a SecureString, or a Secrets
//! Manager secret through `/aws/reference/secretsmanager/<id>`), read once per cold start.

use crate::error::port_error;
use bytes::Bytes;
use firebreak_core::ports::{HttpPost, HttpReply, HttpSender, PortError};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

const OP: &str = "HTTP POST";
/// Of a reply's body, this much is kept (for the timeline).
pub const MAX_REPLY_BYTES: usize = 4096;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Posts JSON to on-call tools over HTTPS (plain HTTP only where `model::oncall::check_url`
/// let a loopback URL through, for tests).
#[derive(Clone)]
pub struct HyperSender {
    client: Client<Connector, Full<Bytes>>,
}

impl std::fmt::Debug for HyperSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HyperSender")
    }
}

impl HyperSender {
    /// # Errors
    /// When the system's root certificates cannot be read.
    pub fn new() -> Result<HyperSender, PortError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| PortError::new(OP, format!("no TLS roots: {e}"), false))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HyperSender {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }
}

impl HttpSender for HyperSender {
    async fn post(&self, request: &HttpPost, timeout: Duration) -> Result<HttpReply, PortError> {
        let mut b = http::Request::post(&request.url);
        for (k, v) in &request.headers {
            b = b.header(k, v);
        }
        let req = b
            .body(Full::new(Bytes::from(request.body.clone())))
            .map_err(|e| PortError::new(OP, format!("{}: {e}", host(&request.url)), false))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| PortError::new(OP, format!("{}: {e}", host(&request.url)), true))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let kept = &body[..body.len().min(MAX_REPLY_BYTES)];
            Ok(HttpReply {
                status,
                body: String::from_utf8_lossy(kept).into_owned(),
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(PortError::new(
                OP,
                format!(
                    "{}: no answer within {} ms",
                    host(&request.url),
                    timeout.as_millis()
                ),
                true,
            )
            .with_code("Timeout")),
        }
    }
}

/// The scheme and host of `url`, for messages (never its path or query, which may hold a token).
fn host(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let h = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{h}")
}

/// Reads the secret parameter `name` with decryption: an SSM SecureString, or a Secrets Manager
/// secret as `/aws/reference/secretsmanager/<secret id>`.
///
/// # Errors
/// The call's error, naming the parameter; a parameter with no value.
pub async fn read_secret(client: &aws_sdk_ssm::Client, name: &str) -> Result<String, PortError> {
    let op = format!("SSM GetParameter {name}");
    let out = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| port_error(&op, &e))?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| PortError::new(&op, "the parameter has no value", false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::types::Parameter;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn a_secret_is_read_with_decryption() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter)
            .match_requests(|r| {
                r.name() == Some("/firebreak/prod/pagerduty") && r.with_decryption() == Some(true)
            })
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(Parameter::builder().value(" R0UT1NG \n").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
        assert_eq!(
            read_secret(&client, "/firebreak/prod/pagerduty").await.unwrap(),
            "R0UT1NG"
        );
    }

    #[tokio::test]
    async fn an_empty_parameter_is_an_error_naming_it() {
        let rule = mock!(aws_sdk_ssm::Client::get_parameter).then_output(|| {
            GetParameterOutput::builder()
                .parameter(Parameter::builder().value("").build())
                .build()
        });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&rule]);
        let e = read_secret(&client, "/firebreak/x").await.unwrap_err();
        assert!(
            e.to_string().contains("/firebreak/x") && e.to_string().contains("no value"),
            "{e}"
        );
    }

    #[test]
    fn messages_name_the_host_only() {
        assert_eq!(
            host("https://hooks.example.com/T0/B1/secret?token=x"),
            "https://hooks.example.com"
        );
        assert_eq!(host("http://127.0.0.1:9/x"), "http://127.0.0.1:9");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_error() {
        // a port nothing listens on
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let s = HyperSender::new().unwrap();
        let e = s
            .post(
                &HttpPost {
                    url: format!("http://127.0.0.1:{port}/x"),
                    headers: vec![],
                    body: "{}".into(),
                },
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(e.retryable, "{e}");
        assert!(!e.to_string().contains("/x"), "{e}");
    }
}
