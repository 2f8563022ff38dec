//! [`StsCallerIdentity`]: the [`CallerIdentity`] port over STS `GetCallerIdentity`, the verified
//! ARN of the credentials in use. `firebreak approve` records it as the approver; the call needs
//! no IAM permission.

use crate::error::port_error;
use aws_config::SdkConfig;
use firebreak_core::ports::{CallerIdentity, PortError};

/// Who the configured credentials are, as STS says.
#[derive(Debug, Clone)]
pub struct StsCallerIdentity {
    client: aws_sdk_sts::Client,
}

impl StsCallerIdentity {
    pub fn new(client: aws_sdk_sts::Client) -> StsCallerIdentity {
        StsCallerIdentity { client }
    }

    /// Builds the STS client from the shared SDK configuration (region, credentials, endpoint).
    pub fn from_config(sdk: &SdkConfig) -> StsCallerIdentity {
        StsCallerIdentity::new(aws_sdk_sts::Client::new(sdk))
    }
}

impl CallerIdentity for StsCallerIdentity {
    async fn caller_arn(&self) -> Result<String, PortError> {
        const OP: &str = "STS GetCallerIdentity";
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| port_error(OP, &e))?;
        out.arn()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .ok_or_else(|| PortError::new(OP, "the response names no caller ARN", false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sts::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn xml(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    const OK: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/alice</Arn>
    <UserId>AROAEXAMPLEID:alice</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;

    #[tokio::test]
    async fn the_caller_arn_is_the_one_sts_returns() {
        let rule = mock!(Client::get_caller_identity).then_http_response(|| xml(200, OK));
        let client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let arn = StsCallerIdentity::new(client).caller_arn().await.unwrap();
        assert_eq!(
            arn,
            "arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/alice"
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn expired_credentials_are_an_error_with_the_sts_code_not_retryable() {
        let rule = mock!(Client::get_caller_identity).then_http_response(|| {
            xml(
                403,
                r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>The security token included in the request is expired</Message></Error>
  <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
</ErrorResponse>"#,
            )
        });
        let client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let e = StsCallerIdentity::new(client).caller_arn().await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("ExpiredToken"));
        assert!(e.message.contains("expired"), "{e}");
        assert!(!e.retryable);
        assert_eq!(e.operation, "STS GetCallerIdentity");
    }

    #[tokio::test]
    async fn a_response_without_an_arn_is_an_error() {
        let rule = mock!(Client::get_caller_identity).then_http_response(|| {
            xml(
                200,
                r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Account>123456789012</Account></GetCallerIdentityResult>
</GetCallerIdentityResponse>"#,
            )
        });
        let client = mock_client!(aws_sdk_sts, RuleMode::MatchAny, [&rule]);
        let e = StsCallerIdentity::new(client).caller_arn().await.unwrap_err();
        assert!(e.message.contains("no caller ARN"), "{e}");
    }
}
