//! The chat buttons' adapters: the responder roles' unique ids (IAM GetRole, once per cold
//! start), which SQS names in a message's `SenderId`, and the SQS event a batch of button
//! presses arrives in.

use crate::error::port_error;
use firebreak_core::ports::PortError;
use firebreak_core::stages::chat::Responders;

/// Reads each responder role's unique id (`AROA…`), so a `SenderId` maps to its role.
///
/// # Errors
/// A role that is not an IAM role ARN, or that GetRole cannot read (named).
pub async fn responders(client: &aws_sdk_iam::Client, role_arns: &[&str]) -> Result<Responders, PortError> {
    let mut roles = Vec::new();
    for arn in role_arns {
        let name = arn
            .split_once(":role/")
            .map(|(_, r)| r.rsplit('/').next().unwrap_or(r))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PortError::new("IAM GetRole", format!("{arn:?} is not an IAM role ARN"), false))?;
        let op = format!("IAM GetRole {name}");
        let out = client
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| port_error(&op, &e))?;
        let role = out
            .role
            .ok_or_else(|| PortError::new(&op, "the response has no role", false))?;
        // GetRole finds a role by name in this account: the configured ARN must be that role's
        // (same account, path and case), or approvals made as it would be refused by remediate
        if role.arn != *arn {
            return Err(PortError::new(
                &op,
                format!(
                    "{arn} is configured, but the role named {name} here is {}",
                    role.arn
                ),
                false,
            ));
        }
        roles.push((role.role_id, role.arn));
    }
    Ok(Responders::new(roles))
}

/// One button press as SQS delivers it to Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Press {
    pub message_id: String,
    pub body: String,
    /// `attributes.SenderId`: who sent it, as SQS recorded it.
    pub sender_id: String,
    /// The handle of this delivery: [`in_flight`] checks it with SQS.
    pub receipt_handle: String,
}

/// Whether SQS holds this press in flight on `queue_url` for the caller (the chat function's
/// event source mapping): `ChangeMessageVisibility` with the press's receipt handle succeeds
/// only for a message really received from the queue and not yet deleted. A payload invoked
/// directly (someone with `lambda:InvokeFunction`, writing any `SenderId`) has no such handle
/// and is refused; the queue's policy lets no one else receive its messages, so no one else
/// holds a handle.
///
/// # Errors
/// A call that failed for another reason (retryable).
pub async fn in_flight(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    press: &Press,
) -> Result<bool, PortError> {
    const OP: &str = "SQS ChangeMessageVisibility";
    match client
        .change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(&press.receipt_handle)
        .visibility_timeout(60)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let code = aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e)
                .unwrap_or_default()
                .to_string();
            let refused = [
                "ReceiptHandleIsInvalid",
                "MessageNotInflight",
                "InvalidParameterValue",
            ];
            if refused.iter().any(|c| code.ends_with(c)) {
                Ok(false)
            } else {
                Err(port_error(OP, &e))
            }
        }
    }
}

/// The records of an SQS event (`Records[]`: `messageId`, `body`, `attributes.SenderId`).
///
/// # Errors
/// A sentence naming what is missing.
pub fn presses(event: &serde_json::Value) -> Result<Vec<Press>, String> {
    let records = event
        .get("Records")
        .and_then(|r| r.as_array())
        .ok_or("not an SQS event: no Records")?;
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let s = |p: &str| r.pointer(p).and_then(|v| v.as_str()).map(str::to_string);
            if s("/eventSource").as_deref() != Some("aws:sqs") {
                return Err(format!("Records[{i}] is not from aws:sqs"));
            }
            Ok(Press {
                message_id: s("/messageId").ok_or(format!("Records[{i}] has no messageId"))?,
                body: s("/body").ok_or(format!("Records[{i}] has no body"))?,
                sender_id: s("/attributes/SenderId")
                    .ok_or(format!("Records[{i}] has no attributes.SenderId"))?,
                receipt_handle: s("/receiptHandle").ok_or(format!("Records[{i}] has no receiptHandle"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::types::Role;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    #[tokio::test]
    async fn a_sender_maps_to_the_role_getrole_names() {
        let rule = mock!(aws_sdk_iam::Client::get_role)
            .match_requests(|r| r.role_name() == Some("chat-alice"))
            .then_output(|| {
                GetRoleOutput::builder()
                    .role(
                        Role::builder()
                            .role_name("chat-alice")
                            .role_id("AROAALICE")
                            .arn("arn:aws:iam::123456789012:role/team/chat-alice")
                            .path("/team/")
                            .create_date(aws_smithy_types::DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&rule]);
        let r = responders(&client, &["arn:aws:iam::123456789012:role/team/chat-alice"])
            .await
            .unwrap();
        let who = r.of("AROAALICE:U024BE7LH").unwrap();
        assert_eq!(who.role_arn, "arn:aws:iam::123456789012:role/team/chat-alice");
        assert_eq!(who.session, "U024BE7LH");
        assert!(r.of("AROAOTHER:x").is_err());
        // an ARN that is not the role GetRole finds (another path, case or account)
        let e = responders(&client, &["arn:aws:iam::123456789012:role/chat-alice"])
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("but the role named chat-alice here is"),
            "{e}"
        );
        let e = responders(&client, &["alice"]).await.unwrap_err();
        assert!(e.to_string().contains("not an IAM role ARN"), "{e}");
    }

    #[test]
    fn an_sqs_event_reads_as_presses_and_anything_else_is_refused() {
        let ev = serde_json::json!({"Records": [{
            "messageId": "m-1", "body": "ack:INC-20260314-143500-a1b2c3d4:0", "eventSource": "aws:sqs",
            "receiptHandle": "rh-1", "attributes": {"SenderId": "AROAALICE:alice"}
        }]});
        assert_eq!(
            presses(&ev).unwrap(),
            [Press {
                message_id: "m-1".into(),
                body: "ack:INC-20260314-143500-a1b2c3d4:0".into(),
                sender_id: "AROAALICE:alice".into(),
                receipt_handle: "rh-1".into()
            }]
        );
        assert!(presses(&serde_json::json!({"detail": {}}))
            .unwrap_err()
            .contains("no Records"));
        let forged = serde_json::json!({"Records": [{"messageId": "m", "body": "b", "eventSource": "aws:sns", "attributes": {"SenderId": "x"}}]});
        assert!(presses(&forged).unwrap_err().contains("not from aws:sqs"));
        let anonymous = serde_json::json!({"Records": [{"messageId": "m", "body": "b", "eventSource": "aws:sqs", "receiptHandle": "r", "attributes": {}}]});
        assert!(presses(&anonymous).unwrap_err().contains("SenderId"));
    }

    fn press(handle: &str) -> Press {
        Press {
            message_id: "m".into(),
            body: "b".into(),
            sender_id: "AROAALICE:alice".into(),
            receipt_handle: handle.into(),
        }
    }

    #[tokio::test]
    async fn only_a_press_sqs_holds_in_flight_is_acted_on() {
        use aws_sdk_sqs::operation::change_message_visibility::{
            ChangeMessageVisibilityError, ChangeMessageVisibilityOutput,
        };
        let ok = mock!(aws_sdk_sqs::Client::change_message_visibility)
            .match_requests(|r| r.receipt_handle() == Some("real") && r.queue_url() == Some("https://q"))
            .then_output(|| ChangeMessageVisibilityOutput::builder().build());
        let forged = mock!(aws_sdk_sqs::Client::change_message_visibility)
            .match_requests(|r| r.receipt_handle() == Some("forged"))
            .then_error(|| {
                ChangeMessageVisibilityError::ReceiptHandleIsInvalid(
                    aws_sdk_sqs::types::error::ReceiptHandleIsInvalid::builder()
                        .message("The input receipt handle is invalid.")
                        .meta(
                            aws_sdk_sqs::error::ErrorMetadata::builder()
                                .code("ReceiptHandleIsInvalid")
                                .build(),
                        )
                        .build(),
                )
            });
        let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&ok, &forged]);
        assert!(in_flight(&client, "https://q", &press("real")).await.unwrap());
        assert!(!in_flight(&client, "https://q", &press("forged")).await.unwrap());
    }
}
