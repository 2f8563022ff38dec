//! The chat buttons: Acknowledge, Approve and Show timeline, pressed under a page in a chat
//! channel of Amazon Q Developer in chat applications. Each button runs one AWS CLI command
//! under the pressing user's own IAM role (the channel requires user roles): `sqs send-message`
//! to Firebreak's chat queue, with a short command as the body (`approve:<incident>:<cycle>:
//! <action>`). SQS records who sent it (`SenderId`, the role's unique id and the session), which
//! no sender can set, so the responder is the verified IAM identity, mapped to the role's ARN
//! through the list of responder roles the stack names.
//!
//! Every answer goes back to the incident's chat thread (a page threaded on the incident id).
//! Approving twice, approving or acknowledging a page of an earlier cycle, or acting on a
//! resolved incident changes nothing and says so.

use crate::model::incident::{IncidentId, IncidentStatus};
use crate::model::page::{Notification, PageEvent, PageFacts};
use crate::model::text::plain_line;
use crate::ports::{CallerIdentity, Clock, EventBus, IncidentStore, Notifier, PortError, Route};
use crate::stages::manage::{acknowledge_and_tell, AckOutcome};
use crate::stages::remediate::{request_approval, ApproveOutcome, Approvers};
use crate::Error;
use std::collections::BTreeMap;

/// The longest command body accepted, in bytes.
pub const MAX_COMMAND_BYTES: usize = 512;
/// How many of the latest timeline entries "Show timeline" answers with.
pub const TIMELINE_ENTRIES: usize = 15;

/// A button's command, as the custom action sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    Ack {
        incident: IncidentId,
        cycle: u32,
    },
    Approve {
        incident: IncidentId,
        cycle: u32,
        action: String,
    },
    Timeline {
        incident: IncidentId,
    },
}

impl ChatCommand {
    /// `ack:<incident>:<cycle>`, `approve:<incident>:<cycle>:<action>`, `timeline:<incident>`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming what is wrong.
    pub fn parse(body: &str) -> Result<ChatCommand, Error> {
        let body = body.trim();
        if body.len() > MAX_COMMAND_BYTES {
            return Err(Error::invalid(
                "chat command",
                format!("longer than {MAX_COMMAND_BYTES} bytes"),
            ));
        }
        let parts: Vec<&str> = body.split(':').collect();
        let id = |s: &str| {
            IncidentId::parse(s).map_err(|e| Error::invalid("chat command incident", e.to_string()))
        };
        let cycle = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::invalid("chat command cycle", format!("{s:?} is not a cycle number")))
        };
        match parts.as_slice() {
            ["ack", i, c] => Ok(ChatCommand::Ack { incident: id(i)?, cycle: cycle(c)? }),
            ["approve", i, c, a] => Ok(ChatCommand::Approve {
                incident: id(i)?,
                cycle: cycle(c)?,
                action: (*a).to_string(),
            }),
            ["timeline", i] => Ok(ChatCommand::Timeline { incident: id(i)? }),
            _ => Err(Error::invalid(
                "chat command",
                format!(
                    "{:?} is not ack:<incident>:<cycle>, approve:<incident>:<cycle>:<action> or timeline:<incident>",
                    plain_line(&body.chars().take(80).collect::<String>())
                ),
            )),
        }
    }

    pub fn incident(&self) -> &IncidentId {
        match self {
            ChatCommand::Ack { incident, .. }
            | ChatCommand::Approve { incident, .. }
            | ChatCommand::Timeline { incident } => incident,
        }
    }
}

/// Who pressed the button, as SQS verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responder {
    /// The responder role's ARN (`arn:aws:iam::<account>:role/<name>`).
    pub role_arn: String,
    /// The session name SQS reported after the role's unique id.
    pub session: String,
}

impl Responder {
    /// The session's STS ARN, the form approvals carry:
    /// `arn:<partition>:sts::<account>:assumed-role/<name>/<session>`.
    pub fn sts_arn(&self) -> String {
        let parts: Vec<&str> = self.role_arn.splitn(6, ':').collect();
        let (partition, account, resource) = match parts.as_slice() {
            [_, p, _, _, a, r] => (*p, *a, *r),
            _ => ("aws", "", self.role_arn.as_str()),
        };
        let name = resource.rsplit('/').next().unwrap_or(resource);
        format!(
            "arn:{partition}:sts::{account}:assumed-role/{name}/{}",
            self.session
        )
    }

    /// How the timeline names them: the role's name and the session.
    pub fn display(&self) -> String {
        let name = self.role_arn.rsplit('/').next().unwrap_or(&self.role_arn);
        format!("{name}/{}", self.session)
    }
}

/// Maps the SQS `SenderId` (`<role unique id>:<session>`) to a responder, by the unique ids of
/// the stack's responder roles (read with IAM GetRole at cold start).
#[derive(Debug, Clone, Default)]
pub struct Responders {
    by_role_id: BTreeMap<String, String>,
}

impl Responders {
    /// `(unique role id, role ARN)` pairs.
    pub fn new(roles: impl IntoIterator<Item = (String, String)>) -> Responders {
        Responders {
            by_role_id: roles.into_iter().collect(),
        }
    }

    /// The responder who sent a message, or why it is not one.
    ///
    /// # Errors
    /// A sentence: the sender is not a session of a responder role.
    pub fn of(&self, sender_id: &str) -> Result<Responder, String> {
        let (role_id, session) = sender_id
            .split_once(':')
            .ok_or_else(|| format!("sender {sender_id:?} is not a role session (<role id>:<session>)"))?;
        let role_arn = self
            .by_role_id
            .get(role_id)
            .ok_or_else(|| format!("sender {role_id} is not one of Firebreak's chat responder roles"))?;
        Ok(Responder {
            role_arn: role_arn.clone(),
            session: session.to_string(),
        })
    }
}

/// The answer posted to the incident's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Whether anything changed.
    pub changed: bool,
    pub text: String,
}

struct Verified(String);

impl CallerIdentity for Verified {
    async fn caller_arn(&self) -> Result<String, PortError> {
        Ok(self.0.clone())
    }
}

pub struct Chat<'a, S, B, N, K> {
    pub store: &'a S,
    pub bus: &'a B,
    pub notifier: &'a N,
    pub clock: &'a K,
    /// Whose approvals remediate accepts: checked here too, so the channel never hears
    /// "approved" for an approval remediate would refuse.
    pub approvers: &'a Approvers,
}

impl<S: IncidentStore, B: EventBus, N: Notifier, K: Clock> Chat<'_, S, B, N, K> {
    /// Carries out `cmd` for `responder` and answers in the incident's thread.
    ///
    /// # Errors
    /// Store and bus errors (the message is retried: every command is idempotent).
    pub async fn handle(&self, cmd: &ChatCommand, responder: &Responder) -> Result<Answer, Error> {
        let id = cmd.incident();
        let Some(inc) = self.store.get(id).await? else {
            return Ok(Answer {
                changed: false,
                text: format!("No incident {id}: nothing changed"),
            });
        };
        let who = responder.display();
        // the rule remediate applies to the approval, checked once before anything is put
        let accepted = self.approvers.check(&responder.sts_arn());
        let answer = match cmd {
            ChatCommand::Ack { .. } | ChatCommand::Approve { .. } if inc.status == IncidentStatus::Resolved => Answer {
                changed: false,
                text: format!("{id} is resolved: nothing to acknowledge or approve, nothing changed"),
            },
            ChatCommand::Ack { cycle, .. } | ChatCommand::Approve { cycle, .. } if *cycle != inc.reopened => Answer {
                changed: false,
                text: format!(
                    "That page was for cycle {cycle} of {id}; it was reopened since (cycle {}): nothing changed. Use the buttons of the latest page",
                    inc.reopened
                ),
            },
            ChatCommand::Ack { .. } => {
                let (outcome, told) = acknowledge_and_tell(self.store, self.bus, id, &who, self.clock.now()).await?;
                // the on-call tools must hear of it: SQS delivers the press again
                told?;
                match outcome {
                    AckOutcome::Acknowledged => Answer {
                        changed: true,
                        text: format!("{id} acknowledged by {who}"),
                    },
                    AckOutcome::AlreadyAcknowledged { by, at } => Answer {
                        changed: false,
                        text: format!(
                            "{id} was already acknowledged by {} at {} UTC: nothing changed",
                            by.as_deref().unwrap_or("someone"),
                            at.format("%H:%M")
                        ),
                    },
                }
            }
            ChatCommand::Approve { .. } if accepted.is_err() => Answer {
                changed: false,
                text: format!(
                    "Not approved: {who} is not a session remediate accepts approvals from ({}): nothing changed",
                    accepted.as_ref().err().map_or("", String::as_str)
                ),
            },
            ChatCommand::Approve { action, .. } => {
                match request_approval(self.store, self.bus, &Verified(responder.sts_arn()), id, action).await {
                    Ok(ApproveOutcome::Approved { service, plan, .. }) => Answer {
                        changed: true,
                        text: format!(
                            "{action} on {service} approved by {who} ({plan}); remediate checks every guardrail again before it acts"
                        ),
                    },
                    Ok(ApproveOutcome::NothingToApprove(why)) => Answer {
                        changed: false,
                        text: format!("{why}: nothing changed"),
                    },
                    Err(Error::Invalid { what, reason }) => Answer {
                        changed: false,
                        text: format!("Not approved ({what}: {reason}): nothing changed"),
                    },
                    Err(e) => return Err(e),
                }
            }
            ChatCommand::Timeline { .. } => {
                let timeline = self.store.timeline(id).await?;
                let skip = timeline.len().saturating_sub(TIMELINE_ENTRIES);
                let lines: Vec<String> = timeline[skip..]
                    .iter()
                    .map(|e| format!("{} {} {}", e.at.format("%H:%M:%S"), e.kind(), plain_line(&e.summary)))
                    .collect();
                Answer {
                    changed: false,
                    text: format!(
                        "{id} ({}, {}), the latest {} of {} entries:\n{}",
                        inc.severity,
                        inc.status,
                        lines.len(),
                        timeline.len(),
                        lines.join("\n")
                    ),
                }
            }
        };
        let first = answer.text.lines().next().unwrap_or_default();
        let message = Notification {
            subject: plain_line(&format!("[{}] {}", inc.severity, first)),
            body: crate::model::text::plain(&answer.text),
            attributes: BTreeMap::from([
                ("kind".to_string(), "chat-answer".to_string()),
                ("severity".to_string(), inc.severity.to_string()),
                ("service".to_string(), inc.service.clone()),
                ("incident".to_string(), inc.id.to_string()),
            ]),
            facts: PageFacts {
                alarms: Vec::new(),
                ..PageFacts::of(&inc, PageEvent::Notice)
            },
        };
        self.notifier
            .notify(Route::Severity(inc.severity), &message)
            .await?;
        tracing::info!(incident = %id, by = %who, changed = answer.changed, "chat command answered");
        Ok(answer)
    }
}
