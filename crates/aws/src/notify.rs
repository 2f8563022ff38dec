//! [`SnsNotifier`]: the [`Notifier`] port over SNS Publish, one topic per severity.

use crate::error::{build_error, port_error};
use aws_sdk_sns::types::MessageAttributeValue;
use firebreak_core::model::severity::Severity;
use firebreak_core::ports::{Notification, Notifier, PortError, Route};
use firebreak_core::report::metrics::emf_count;
use firebreak_core::report::page;

/// SNS's limit on a subject, in characters.
/// SNS wants a subject of fewer than 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// The topic ARN for each severity (SEV1 pages, SEV4 files a ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub sev1: String,
    pub sev2: String,
    pub sev3: String,
    pub sev4: String,
}

impl Topics {
    pub fn for_severity(&self, severity: Severity) -> &str {
        match severity {
            Severity::Sev1 => &self.sev1,
            Severity::Sev2 => &self.sev2,
            Severity::Sev3 => &self.sev3,
            Severity::Sev4 => &self.sev4,
        }
    }
}

/// A subject SNS accepts: no line breaks or control characters, fewer than 100 characters, cut on
/// a character boundary. `None` when nothing printable is left (SNS rejects an empty subject).
pub fn subject(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SUBJECT_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Publishes notifications to the severity's topic, one form per protocol
/// (`MessageStructure=json`, `report::page`): `email` text, `sms` one line, and for `default`,
/// `https` and `lambda` the custom-notification JSON that Amazon Q Developer in chat applications
/// renders, threaded on the incident id.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topics: Topics,
    region: String,
    metrics: Option<String>,
    chat_queue: Option<String>,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topics: Topics) -> SnsNotifier {
        let region = client
            .config()
            .region()
            .map_or_else(|| "us-east-1".to_string(), ToString::to_string);
        SnsNotifier {
            client,
            topics,
            region,
            metrics: None,
            chat_queue: None,
        }
    }

    /// The chat buttons' queue (`CHAT_ACTIONS_QUEUE_URL`): the chat form names it in
    /// `metadata.additionalContext.queue`, which the custom actions send their command to.
    pub fn with_chat_queue(mut self, url: Option<String>) -> SnsNotifier {
        self.chat_queue = url.filter(|u| !u.trim().is_empty());
        self
    }

    /// Also writes one EMF line per page to stdout: `Pages` (dimensions `[Severity]`, `[Kind]`)
    /// when SNS accepted it, `PagesFailed` (`[Severity]`) when it did not.
    pub fn with_metrics(mut self, namespace: &str) -> SnsNotifier {
        self.metrics = Some(namespace.to_string());
        self
    }

    /// The `Message` this notifier publishes for `message`.
    pub fn message(&self, message: &Notification) -> String {
        page::sns_message_of(message, &self.region, self.chat_queue.as_deref()).1
    }

    fn count(&self, sev: Severity, message: &Notification, ok: bool) {
        let Some(ns) = &self.metrics else { return };
        let kind = message.attributes.get("kind").map_or("page", String::as_str);
        let now = chrono::Utc::now();
        let line = if ok {
            emf_count(
                ns,
                "Pages",
                &[("Severity", sev.as_str()), ("Kind", kind)],
                &[&["Severity"], &["Kind"]],
                now,
            )
        } else {
            emf_count(
                ns,
                "PagesFailed",
                &[("Severity", sev.as_str())],
                &[&["Severity"]],
                now,
            )
        };
        println!("{line}");
    }
}

impl Notifier for SnsNotifier {
    async fn notify(&self, route: Route, message: &Notification) -> Result<String, PortError> {
        const OP: &str = "SNS Publish";
        let Route::Severity(sev) = route;
        let mut req = self
            .client
            .publish()
            .topic_arn(self.topics.for_severity(sev))
            .message_structure("json")
            .message(self.message(message))
            .set_subject(subject(&message.subject));
        for (name, value) in &message.attributes {
            // SNS rejects empty attribute values; an empty attribute filters nothing anyway.
            if value.is_empty() {
                continue;
            }
            let v = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| build_error(OP, &e))?;
            req = req.message_attributes(name, v);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                self.count(sev, message, false);
                return Err(port_error(OP, &e));
            }
        };
        self.count(sev, message, true);
        out.message_id
            .ok_or_else(|| PortError::new(OP, "the response has no MessageId", false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_sdk_sns::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::collections::BTreeMap;

    fn topics() -> Topics {
        Topics {
            sev1: "arn:aws:sns:us-east-1:1:sev1".into(),
            sev2: "arn:aws:sns:us-east-1:1:sev2".into(),
            sev3: "arn:aws:sns:us-east-1:1:sev3".into(),
            sev4: "arn:aws:sns:us-east-1:1:sev4".into(),
        }
    }

    #[test]
    fn the_chat_form_names_the_buttons_queue_when_there_is_one() {
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, []);
        let n = Notification {
            subject: "s".into(),
            body: "b".into(),
            attributes: BTreeMap::new(),
            facts: firebreak_core::ports::PageFacts {
                incident: Some("INC-20260314-143500-a1b2c3d4".into()),
                ..Default::default()
            },
        };
        let chat = |s: &SnsNotifier| -> serde_json::Value {
            let m: serde_json::Value = serde_json::from_str(&s.message(&n)).unwrap();
            serde_json::from_str(m["default"].as_str().unwrap()).unwrap()
        };
        let plain = SnsNotifier::new(client.clone(), topics());
        assert!(chat(&plain)["metadata"]["additionalContext"]
            .get("queue")
            .is_none());
        let q = "https://sqs.us-east-1.amazonaws.com/1/fb-chat";
        let with = SnsNotifier::new(client, topics()).with_chat_queue(Some(q.into()));
        assert_eq!(chat(&with)["metadata"]["additionalContext"]["queue"], q);
    }

    #[test]
    fn subject_is_cut_below_100_chars_on_a_char_boundary() {
        let long = "é".repeat(150);
        let s = subject(&long).unwrap();
        assert_eq!(s.chars().count(), 99);
        assert!(s.len() > 99, "multi-byte characters are kept whole");
        assert_eq!(subject("SEV2\nline two").as_deref(), Some("SEV2 line two"));
        assert_eq!(subject(" \n "), None);
    }

    #[tokio::test]
    async fn publishes_to_the_severity_topic_with_a_truncated_subject_and_string_attributes() {
        let rule = mock!(Client::publish)
            .match_requests(|r| {
                let attrs = r.message_attributes().cloned().unwrap_or_default();
                r.topic_arn() == Some("arn:aws:sns:us-east-1:1:sev2")
                    && r.subject().map(|s| s.chars().count()) == Some(MAX_SUBJECT_CHARS)
                    && r.message_structure() == Some("json")
                    && r.message().is_some_and(|m| {
                        let v: serde_json::Value = serde_json::from_str(m).unwrap_or_default();
                        v["email"] == "body\n"
                            && v["sms"].as_str().is_some_and(|s| s.chars().count() <= 140)
                            && v["default"]
                                .as_str()
                                .is_some_and(|c| c.contains("\"source\":\"custom\""))
                            && v.as_object().is_some_and(|o| o.len() == 3)
                    })
                    && attrs.len() == 2
                    && attrs.get("severity").and_then(|a| a.string_value()) == Some("SEV2")
                    && attrs.values().all(|a| a.data_type() == "String")
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build());
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let notifier = SnsNotifier::new(client, topics());
        let msg = Notification {
            subject: format!("[SEV2] {}", "x".repeat(200)),
            body: "body".into(),
            attributes: BTreeMap::from([
                ("severity".to_string(), "SEV2".to_string()),
                ("service".to_string(), "prod/articles-api".to_string()),
                ("empty".to_string(), String::new()),
            ]),
            facts: Default::default(),
        };
        let id = notifier
            .notify(Route::Severity(Severity::Sev2), &msg)
            .await
            .unwrap();
        assert_eq!(id, "m-1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_topic_is_a_non_retryable_error_with_its_code() {
        use aws_sdk_sns::operation::publish::PublishError;
        use aws_sdk_sns::types::error::NotFoundException;
        let rule = mock!(Client::publish).then_error(|| {
            PublishError::NotFoundException(
                NotFoundException::builder()
                    .message("Topic does not exist")
                    .meta(
                        aws_sdk_sns::error::ErrorMetadata::builder()
                            .code("NotFound")
                            .message("Topic does not exist")
                            .build(),
                    )
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&rule]);
        let msg = Notification {
            subject: "s".into(),
            body: "b".into(),
            attributes: BTreeMap::new(),
            facts: Default::default(),
        };
        let err = SnsNotifier::new(client, topics())
            .notify(Route::Severity(Severity::Sev1), &msg)
            .await
            .unwrap_err();
        assert!(!err.retryable);
        assert_eq!(err.code.as_deref(), Some("NotFound"));
        assert_eq!(err.message, "Topic does not exist");
    }
}
