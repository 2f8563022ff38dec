//! [`EventBridgeBus`]: the [`EventBus`] port over PutEvents on Firebreak's custom bus.

use crate::error::{is_retryable_code, port_error};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use firebreak_core::ports::{detail_types, EventBus, PipelineEvent, PortError};

/// Puts pipeline events (source `firebreak`) on one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    /// `bus` is the bus name or ARN.
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> EventBridgeBus {
        EventBridgeBus {
            client,
            bus: bus.into(),
        }
    }
}

impl EventBus for EventBridgeBus {
    async fn put(&self, event: &PipelineEvent) -> Result<(), PortError> {
        const OP: &str = "EventBridge PutEvents";
        // EventBridge wants a JSON object as the detail.
        let detail = if event.detail.is_null() {
            "{}".to_string()
        } else {
            event.detail.to_string()
        };
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(detail_types::SOURCE)
            .detail_type(&event.detail_type)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| port_error(OP, &e))?;
        if out.failed_entry_count == 0 {
            return Ok(());
        }
        // One entry was sent, so a failure is that entry's.
        let failed = out.entries().iter().find(|e| e.error_code().is_some());
        let code = failed.and_then(|e| e.error_code()).unwrap_or("Unknown");
        let message = failed
            .and_then(|e| e.error_message())
            .unwrap_or("the event was not accepted");
        Err(PortError::new(
            OP,
            format!("{}: {message}", event.detail_type),
            is_retryable_code(code),
        )
        .with_code(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use serde_json::json;

    fn event() -> PipelineEvent {
        PipelineEvent {
            detail_type: "Incident Opened".into(),
            detail: json!({"incident": "INC-1"}),
        }
    }

    #[tokio::test]
    async fn puts_one_entry_from_firebreak_on_the_bus() {
        let rule = mock!(Client::put_events)
            .match_requests(|r| {
                let e = &r.entries()[0];
                r.entries().len() == 1
                    && e.event_bus_name() == Some("fb-bus")
                    && e.source() == Some("firebreak")
                    && e.detail_type() == Some("Incident Opened")
                    && e.detail() == Some(r#"{"incident":"INC-1"}"#)
            })
            .then_output(|| {
                PutEventsOutput::builder()
                    .failed_entry_count(0)
                    .entries(PutEventsResultEntry::builder().event_id("e-1").build())
                    .build()
            });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);
        EventBridgeBus::new(client, "fb-bus").put(&event()).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_failed_entry_is_an_error_with_its_code_retryable_when_throttled() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("ThrottlingException")
                        .error_message("Rate exceeded")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);
        let err = EventBridgeBus::new(client, "fb-bus")
            .put(&event())
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
        assert!(err.retryable);
        assert!(err.message.contains("Rate exceeded"));
    }

    #[tokio::test]
    async fn a_malformed_detail_is_not_retryable() {
        let rule = mock!(Client::put_events).then_output(|| {
            PutEventsOutput::builder()
                .failed_entry_count(1)
                .entries(
                    PutEventsResultEntry::builder()
                        .error_code("MalformedDetail")
                        .error_message("Detail is malformed.")
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&rule]);
        let err = EventBridgeBus::new(client, "fb-bus")
            .put(&event())
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("MalformedDetail"));
        assert!(!err.retryable);
    }
}
