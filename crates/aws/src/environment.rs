//! The one place Firebreak's configuration is read from the environment, for the functions and
//! the CLI alike: the AWS resources, the behaviour settings (`firebreak_core` `Settings`), the
//! policy file and runbook directory (else the embedded copies), the metrics namespace, the
//! diagnosis backend and the approver role. Read once at start; every value is checked there, and an error names the
//! variable.

use crate::config::Settings as Resources;
use crate::error::ConfigError;
use firebreak_core::model::settings::Settings;
use firebreak_core::policy::SeverityPolicy;
use firebreak_core::runbook::RunbookSet;
use firebreak_core::stages::remediate::Approvers;

/// The variables read here, beside those of [`crate::config::env`] (resources) and
/// `firebreak_core::model::settings::env` (behaviour).
pub mod vars {
    /// A severity policy file to use instead of the embedded `runbooks/policy.yaml`.
    pub const POLICY_FILE: &str = "FIREBREAK_POLICY_FILE";
    /// A runbook directory to use instead of the embedded `runbooks/`.
    pub const RUNBOOKS_DIR: &str = "FIREBREAK_RUNBOOKS_DIR";
    /// EMF namespace for the stage-time metrics (default `Firebreak`).
    pub const METRICS_NAMESPACE: &str = "METRICS_NAMESPACE";
    /// `insights` (Logs Insights, the default) or `local` (FilterLogEvents + the local engine).
    pub const DIAGNOSIS_BACKEND: &str = "DIAGNOSIS_BACKEND";
    /// Upper bound of events the local backend pulls per query.
    pub const DIAGNOSIS_LOCAL_MAX_EVENTS: &str = "DIAGNOSIS_LOCAL_MAX_EVENTS";
    /// The approver role (`arn:<partition>:iam::<account>:role/[path/]<name>`): remediate
    /// accepts approvals only from its sessions. Unset (local use): any IAM or STS ARN.
    pub const APPROVER_ROLE_ARN: &str = "FIREBREAK_APPROVER_ROLE_ARN";
    /// The chat responder roles, comma-separated: their sessions approve through the chat
    /// buttons (docs/chat.md).
    pub const CHAT_RESPONDER_ROLE_ARNS: &str = "FIREBREAK_CHAT_RESPONDER_ROLE_ARNS";
    /// The chat buttons' queue, named in every page's chat form.
    pub const CHAT_ACTIONS_QUEUE_URL: &str = "CHAT_ACTIONS_QUEUE_URL";
}

/// The default EMF namespace.
pub const DEFAULT_METRICS_NAMESPACE: &str = "Firebreak";

/// Where diagnose runs its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisBackend {
    /// CloudWatch Logs Insights.
    Insights,
    /// FilterLogEvents and the local engine, pulling at most this many events per query.
    Local { max_events: Option<usize> },
}

/// Everything Firebreak reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    /// The table, bus and topics, or the first variable that is missing (commands that need no
    /// resources still run).
    pub resources: Result<Resources, ConfigError>,
    pub settings: Settings,
    pub policy_file: Option<String>,
    pub runbooks_dir: Option<String>,
    pub metrics_namespace: String,
    pub diagnosis_backend: DiagnosisBackend,
    /// Whose approvals remediate accepts (`FIREBREAK_APPROVER_ROLE_ARN`; unset: any IAM or STS
    /// ARN, for local use only).
    pub approvers: Approvers,
    /// The on-call tools configured (`PAGERDUTY_SEVERITIES`, `WEBHOOK_SEVERITIES`) and where
    /// their keys are (docs/integrations.md).
    pub oncall: OnCall,
    /// The chat buttons' queue (`CHAT_ACTIONS_QUEUE_URL`), named in every page's chat form.
    pub chat_queue_url: Option<String>,
}

/// The oncall function's variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnCall {
    pub settings: firebreak_core::model::oncall::OnCallSettings,
    /// `PAGERDUTY_EVENTS_URL`, default PagerDuty's.
    pub pagerduty_url: String,
    /// `PAGERDUTY_ROUTING_KEY_PARAMETER`.
    pub pagerduty_key_parameter: Option<String>,
    /// `WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// `WEBHOOK_SECRET_PARAMETER`.
    pub webhook_secret_parameter: Option<String>,
}

impl Environment {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable whose value is wrong.
    pub fn from_env() -> Result<Environment, ConfigError> {
        Environment::from_lookup(|n| std::env::var(n).ok())
    }

    /// Reads through `lookup`; unset and blank variables count as unset.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable whose value is wrong.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
        let get = |n: &str| lookup(n).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let settings = Settings::from_lookup(get).map_err(|e| ConfigError::Invalid {
            name: "behaviour settings".into(),
            reason: e.to_string(),
        })?;
        let diagnosis_backend = match get(vars::DIAGNOSIS_BACKEND).as_deref() {
            None | Some("insights") => DiagnosisBackend::Insights,
            Some("local") => DiagnosisBackend::Local {
                max_events: match get(vars::DIAGNOSIS_LOCAL_MAX_EVENTS) {
                    None => None,
                    Some(v) => Some(v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        ConfigError::Invalid {
                            name: vars::DIAGNOSIS_LOCAL_MAX_EVENTS.into(),
                            reason: format!("{v:?} is not a positive whole number"),
                        }
                    })?),
                },
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: vars::DIAGNOSIS_BACKEND.into(),
                    reason: format!("{other:?} is neither \"insights\" nor \"local\""),
                })
            }
        };
        let approvers = match get(vars::APPROVER_ROLE_ARN) {
            None => Approvers::any(),
            Some(arn) => Approvers::role(&arn).map_err(|e| ConfigError::Invalid {
                name: vars::APPROVER_ROLE_ARN.into(),
                reason: e.to_string(),
            })?,
        };
        let chat: Vec<String> = get(vars::CHAT_RESPONDER_ROLE_ARNS)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !chat.is_empty() && approvers.role_arn().is_none() {
            // without an approver role any ARN approves: never beside real responder roles
            return Err(ConfigError::Invalid {
                name: vars::CHAT_RESPONDER_ROLE_ARNS.into(),
                reason: format!(
                    "set only with {} (else any ARN would approve)",
                    vars::APPROVER_ROLE_ARN
                ),
            });
        }
        let approvers = approvers
            .with_chat_roles(&chat)
            .map_err(|e| ConfigError::Invalid {
                name: vars::CHAT_RESPONDER_ROLE_ARNS.into(),
                reason: e.to_string(),
            })?;
        use firebreak_core::model::oncall::{check_url, env as oc, OnCallSettings, PAGERDUTY_EVENTS_URL};
        let invalid = |name: &str, e: firebreak_core::Error| ConfigError::Invalid {
            name: name.into(),
            reason: e.to_string(),
        };
        let settings_oc = OnCallSettings::from_lookup(get).map_err(|e| ConfigError::Invalid {
            name: "PAGERDUTY_SEVERITIES / WEBHOOK_SEVERITIES".into(),
            reason: e.to_string(),
        })?;
        let oncall = OnCall {
            pagerduty_url: get(oc::PAGERDUTY_EVENTS_URL).unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_string()),
            pagerduty_key_parameter: get(oc::PAGERDUTY_ROUTING_KEY_PARAMETER),
            webhook_url: get(oc::WEBHOOK_URL),
            webhook_secret_parameter: get(oc::WEBHOOK_SECRET_PARAMETER),
            settings: settings_oc,
        };
        check_url(oc::PAGERDUTY_EVENTS_URL, &oncall.pagerduty_url)
            .map_err(|e| invalid(oc::PAGERDUTY_EVENTS_URL, e))?;
        if let Some(u) = &oncall.webhook_url {
            check_url(oc::WEBHOOK_URL, u).map_err(|e| invalid(oc::WEBHOOK_URL, e))?;
        }
        Ok(Environment {
            oncall,
            chat_queue_url: get(vars::CHAT_ACTIONS_QUEUE_URL),
            resources: Resources::from_lookup(get),
            settings,
            policy_file: get(vars::POLICY_FILE),
            runbooks_dir: get(vars::RUNBOOKS_DIR),
            metrics_namespace: get(vars::METRICS_NAMESPACE)
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_string()),
            diagnosis_backend,
            approvers,
        })
    }

    /// The severity policy: `FIREBREAK_POLICY_FILE`, else the embedded one.
    ///
    /// # Errors
    /// Names the file, rule and field that are wrong.
    pub fn policy(&self) -> Result<SeverityPolicy, firebreak_core::Error> {
        match &self.policy_file {
            Some(path) => SeverityPolicy::load(path),
            None => SeverityPolicy::shipped(),
        }
    }

    /// The runbooks: `FIREBREAK_RUNBOOKS_DIR`, loaded and linted, else the shipped ones
    /// ([`RunbookSet::shipped`]: linted by the test suite, parsed here).
    ///
    /// # Errors
    /// Names the directory, file, runbook and field that fail to load or lint.
    pub fn runbooks(&self) -> Result<RunbookSet, firebreak_core::Error> {
        match &self.runbooks_dir {
            Some(dir) => RunbookSet::load_dir(dir),
            None => RunbookSet::shipped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Environment, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_lookup(|n| m.get(n).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let e = env(&[]).unwrap();
        assert_eq!(e.metrics_namespace, "Firebreak");
        assert_eq!(e.diagnosis_backend, DiagnosisBackend::Insights);
        assert_eq!(e.runbooks_dir, None);
        assert!(matches!(e.resources, Err(ConfigError::Missing { ref name }) if name == "TABLE_NAME"));
        assert_eq!(e.settings, Settings::default());
        assert_eq!(e.approvers, Approvers::any());
        assert!(e.runbooks().unwrap().runbooks().len() >= 5);
    }

    #[test]
    fn every_variable_is_read_and_bad_values_name_their_variable() {
        let e = env(&[
            (vars::METRICS_NAMESPACE, "Ops"),
            (vars::RUNBOOKS_DIR, "/nowhere"),
            (vars::DIAGNOSIS_BACKEND, "local"),
            (vars::DIAGNOSIS_LOCAL_MAX_EVENTS, "500"),
            ("REOPEN_WINDOW_S", "60"),
            (
                vars::APPROVER_ROLE_ARN,
                "arn:aws:iam::123456789012:role/FirebreakApproverRole",
            ),
            (
                vars::CHAT_RESPONDER_ROLE_ARNS,
                "arn:aws:iam::123456789012:role/chat-alice, arn:aws:iam::123456789012:role/chat-bob",
            ),
        ])
        .unwrap();
        assert_eq!(
            e.approvers.role_arn(),
            Some("arn:aws:iam::123456789012:role/FirebreakApproverRole")
        );
        assert_eq!(
            e.approvers.chat_role_arns(),
            [
                "arn:aws:iam::123456789012:role/chat-alice",
                "arn:aws:iam::123456789012:role/chat-bob"
            ]
        );
        let approver = (
            vars::APPROVER_ROLE_ARN,
            "arn:aws:iam::123456789012:role/FirebreakApproverRole",
        );
        let bad = env(&[approver, (vars::CHAT_RESPONDER_ROLE_ARNS, "alice")]).unwrap_err();
        assert!(bad.to_string().contains(vars::CHAT_RESPONDER_ROLE_ARNS), "{bad}");
        let alone = env(&[(
            vars::CHAT_RESPONDER_ROLE_ARNS,
            "arn:aws:iam::123456789012:role/chat-alice",
        )])
        .unwrap_err();
        assert!(alone.to_string().contains(vars::APPROVER_ROLE_ARN), "{alone}");
        let oc = env(&[
            ("PAGERDUTY_SEVERITIES", "SEV1"),
            ("PAGERDUTY_ROUTING_KEY_PARAMETER", "/firebreak/prod/pd"),
            ("WEBHOOK_URL", "https://hooks.example.com/x"),
            (
                vars::CHAT_ACTIONS_QUEUE_URL,
                "https://sqs.us-east-1.amazonaws.com/1/q",
            ),
        ])
        .unwrap();
        assert!(oc.oncall.settings.pagerduty.is_some() && oc.oncall.settings.webhook.is_none());
        assert_eq!(
            oc.oncall.pagerduty_key_parameter.as_deref(),
            Some("/firebreak/prod/pd")
        );
        assert_eq!(oc.oncall.pagerduty_url, "https://events.pagerduty.com/v2/enqueue");
        assert_eq!(
            oc.chat_queue_url.as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/1/q")
        );
        for (k, v) in [
            ("WEBHOOK_URL", "http://example.com/x"),
            ("WEBHOOK_SEVERITIES", "P1"),
            ("PAGERDUTY_EVENTS_URL", "ftp://x"),
        ] {
            let e = env(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k.split('_').next().unwrap()), "{k}: {e}");
        }
        assert_eq!(e.metrics_namespace, "Ops");
        assert_eq!(
            e.diagnosis_backend,
            DiagnosisBackend::Local {
                max_events: Some(500)
            }
        );
        assert_eq!(e.settings.reopen_window_s, 60);
        assert!(e.runbooks().unwrap_err().to_string().contains("/nowhere"));
        for (k, v) in [
            (vars::DIAGNOSIS_BACKEND, "athena"),
            (vars::DIAGNOSIS_LOCAL_MAX_EVENTS, "0"),
            ("REOPEN_WINDOW_S", "soon"),
            (vars::APPROVER_ROLE_ARN, "FirebreakApproverRole"),
        ] {
            let mut pairs = vec![(k, v), (vars::DIAGNOSIS_BACKEND, "local")];
            pairs.dedup_by_key(|p| p.0);
            let err = env(&pairs).unwrap_err().to_string();
            assert!(err.contains(k), "{k}={v}: {err}");
        }
    }
}
