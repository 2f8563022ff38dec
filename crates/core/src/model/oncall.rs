//! On-call tools beside the SNS pages: PagerDuty (Events API v2) and a generic webhook signed
//! with HMAC-SHA256 (the Standard Webhooks scheme). What is configured, which lifecycle event
//! sends what, the bodies, and the signature. Pure: the `oncall` stage sends, an adapter carries.
//!
//! PagerDuty (<https://developer.pagerduty.com/docs/events-api-v2/overview/>):
//! `POST /v2/enqueue`, `trigger` with `dedup_key` = the incident id (an escalation triggers again
//! with the same key, which PagerDuty folds into the open alert at its new severity),
//! `acknowledge` and `resolve` with the same key.
//!
//! Webhook (<https://www.standardwebhooks.com/>): headers `webhook-id` (the same on every retry
//! of one delivery), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of
//! HMAC-SHA256 over "{id}.{timestamp}.{body}">`. A secret written `whsec_<base64>` is decoded
//! to its bytes; any other secret is used as it is.

use crate::model::severity::Severity;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Which severities one on-call tool is told about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub severities: Vec<Severity>,
}

impl Target {
    pub fn wants(&self, sev: Severity) -> bool {
        self.severities.contains(&sev)
    }
}

/// The on-call tools configured. Both off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallSettings {
    #[serde(default)]
    pub pagerduty: Option<Target>,
    #[serde(default)]
    pub webhook: Option<Target>,
}

/// The variables [`OnCallSettings::from_lookup`] and the function read.
pub mod env {
    /// Comma-separated severities sent to PagerDuty (`SEV1,SEV2`); empty or unset: off.
    pub const PAGERDUTY_SEVERITIES: &str = "PAGERDUTY_SEVERITIES";
    /// The SSM parameter holding the integration's routing key (a SecureString, or
    /// `/aws/reference/secretsmanager/<secret id>` for a Secrets Manager secret).
    pub const PAGERDUTY_ROUTING_KEY_PARAMETER: &str = "PAGERDUTY_ROUTING_KEY_PARAMETER";
    /// The Events API URL (default [`super::PAGERDUTY_EVENTS_URL`]).
    pub const PAGERDUTY_EVENTS_URL: &str = "PAGERDUTY_EVENTS_URL";
    /// Comma-separated severities sent to the webhook; empty or unset: off.
    pub const WEBHOOK_SEVERITIES: &str = "WEBHOOK_SEVERITIES";
    /// Where the webhook is posted (https; http only to a loopback address).
    pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
    /// The SSM parameter holding the signing secret (as for PagerDuty).
    pub const WEBHOOK_SECRET_PARAMETER: &str = "WEBHOOK_SECRET_PARAMETER";
}

impl OnCallSettings {
    /// Reads the severities lists. Errors name the variable and the value.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<OnCallSettings, crate::Error> {
        let list = |name: &str| -> Result<Option<Target>, crate::Error> {
            let Some(v) = lookup(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(None);
            };
            let severities = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<Severity>().map_err(|_| {
                        crate::Error::invalid(
                            name,
                            format!("{s:?} is not a severity (SEV1, SEV2, SEV3, SEV4)"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Target { severities }))
        };
        Ok(OnCallSettings {
            pagerduty: list(env::PAGERDUTY_SEVERITIES)?,
            webhook: list(env::WEBHOOK_SEVERITIES)?,
        })
    }

    pub fn any(&self) -> bool {
        self.pagerduty.is_some() || self.webhook.is_some()
    }
}

/// Checks a URL Firebreak posts to: `https://`, or `http://` only to a loopback host (local
/// tests), and no user info.
pub fn check_url(name: &str, url: &str) -> Result<(), crate::Error> {
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(crate::Error::invalid(
                name,
                format!("{}: only https, or http to a loopback address", shown(url)),
            ));
        }
        r
    } else {
        return Err(crate::Error::invalid(
            name,
            format!("{} is not an https URL", shown(url)),
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(crate::Error::invalid(
            name,
            format!("{} is not a URL Firebreak posts to", shown(url)),
        ));
    }
    Ok(())
}

/// A URL as messages show it: its scheme and host only, quoted (a receiver may put a token in
/// the path or the query).
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host: String = host.chars().take(100).collect();
    if scheme.is_empty() {
        format!("{:?}", host)
    } else {
        format!("{:?}", format!("{scheme}://{host}"))
    }
}

/// The lifecycle events on-call tools hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    Opened,
    Escalated,
    Diagnosed,
    RemediationApplied,
    Acknowledged,
    Resolved,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Opened => "opened",
            Lifecycle::Escalated => "escalated",
            Lifecycle::Diagnosed => "diagnosed",
            Lifecycle::RemediationApplied => "remediation-applied",
            Lifecycle::Acknowledged => "acknowledged",
            Lifecycle::Resolved => "resolved",
        }
    }

    /// The webhook's `type`.
    pub fn webhook_type(self) -> String {
        format!("incident.{}", self.as_str().replace('-', "_"))
    }

    /// What PagerDuty is told: opening and escalation trigger, acknowledgement acknowledges,
    /// resolution resolves; the diagnosis and the remediation are not PagerDuty events.
    pub fn pagerduty_action(self) -> Option<&'static str> {
        match self {
            Lifecycle::Opened | Lifecycle::Escalated => Some("trigger"),
            Lifecycle::Acknowledged => Some("acknowledge"),
            Lifecycle::Resolved => Some("resolve"),
            Lifecycle::Diagnosed | Lifecycle::RemediationApplied => None,
        }
    }
}

/// PagerDuty's severity for a Firebreak severity.
pub fn pagerduty_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Sev1 => "critical",
        Severity::Sev2 => "error",
        Severity::Sev3 => "warning",
        Severity::Sev4 => "info",
    }
}

/// The key a secret stands for: the bytes of a `whsec_<base64>` secret, else its own bytes.
fn key_bytes(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`: the `webhook-signature` value.
pub fn webhook_signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = key_bytes(secret);
    // HMAC takes a key of any length: this cannot fail
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(sig))
}

/// Checks a `webhook-signature` header (any of its space-separated signatures) in constant time
/// per signature, and the timestamp within `tolerance_s` of `now`. What a receiver does; the
/// tests' server uses it.
pub fn verify_webhook(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
    header: &str,
    now: i64,
    tolerance_s: i64,
) -> bool {
    if (now - timestamp).abs() > tolerance_s {
        return false;
    }
    let want = webhook_signature(secret, id, timestamp, body);
    header.split_whitespace().any(|s| {
        s.len() == want.len() && s.bytes().zip(want.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_read_from_the_environment_and_bad_ones_named() {
        let s = OnCallSettings::from_lookup(|k| {
            (k == env::PAGERDUTY_SEVERITIES).then(|| " SEV1, SEV2 ".to_string())
        })
        .unwrap();
        assert_eq!(
            s.pagerduty,
            Some(Target {
                severities: vec![Severity::Sev1, Severity::Sev2]
            })
        );
        assert_eq!(s.webhook, None);
        let e =
            OnCallSettings::from_lookup(|k| (k == env::WEBHOOK_SEVERITIES).then(|| "SEV1,P1".to_string()))
                .unwrap_err();
        assert!(
            e.to_string().contains("WEBHOOK_SEVERITIES") && e.to_string().contains("\"P1\""),
            "{e}"
        );
        assert!(!OnCallSettings::from_lookup(|_| None).unwrap().any());
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_posted_to() {
        assert!(check_url("WEBHOOK_URL", "https://hooks.example.com/firebreak").is_ok());
        assert!(check_url("WEBHOOK_URL", "http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("WEBHOOK_URL", "http://localhost/hook").is_ok());
        let e = check_url("WEBHOOK_URL", "http://hooks.example.com/T0/secret-token").unwrap_err();
        assert!(!e.to_string().contains("secret-token"), "{e}");
        for bad in [
            "http://example.com/x",
            "ftp://x",
            "https://user:pw@example.com/",
            "https://",
            "https://a b",
        ] {
            let e = check_url("WEBHOOK_URL", bad).unwrap_err();
            assert!(e.to_string().contains("WEBHOOK_URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn severities_map_to_pagerdutys() {
        let m: Vec<_> = Severity::ALL.iter().map(|s| pagerduty_severity(*s)).collect();
        assert_eq!(m, ["critical", "error", "warning", "info"]);
    }

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // the Standard Webhooks specification's example
        let sig = webhook_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify_webhook(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            &format!("v1,bm90IHRoaXM= {sig}"),
            1614265330 + 10,
            300
        ));
        assert!(
            !verify_webhook(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 1}"#,
                &sig,
                1614265330,
                300
            ),
            "another body"
        );
        assert!(
            !verify_webhook(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#,
                &sig,
                1614265330 + 301,
                300
            ),
            "too old"
        );
    }
}
