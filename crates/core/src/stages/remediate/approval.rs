//! Approvals: where an approval stands (read from the timeline), asking a person for one,
//! giving one ([`request_approval`], shared by `firebreak approve` and drills), who may give one
//! ([`Approvers`]), and carrying out an approved action ("Remediation Approved").
//!
//! Who approved is never free text: the approval carries the caller's IAM or STS ARN as STS
//! verified it (the [`CallerIdentity`] port), and remediate accepts it only from a session of
//! the approver role. Anything else (another principal, another cycle of the incident, an action
//! not awaiting approval, a resolved incident, a second approval) is refused: recorded on the
//! timeline as `refused`, nothing changed.

use super::*;
use crate::model::pipeline::detail_types;
use crate::model::remedy::KNOWN_ACTIONS;
use crate::ports::{CallerIdentity, PageEvent, PageFacts};
use crate::stages::boundary::refusal_entry;

/// Where an approval stands for one incident and action.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalState {
    /// No approval was requested for this action.
    NotRequested,
    /// Awaiting a person's approval.
    Pending(PendingApproval),
    /// Approved already (carried out, failed or refused since).
    Approved(PendingApproval),
}

/// An approval request as recorded on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    /// The incident's cycle the request was made in.
    pub cycle: u32,
    pub cause: String,
    pub runbook: Option<String>,
    pub step: RemediationStep,
    pub requested_at: DateTime<Utc>,
    /// What the plan was when approval was asked for.
    pub plan: String,
    pub estimated_start: Option<DateTime<Utc>>,
}

/// The exact command that approves `action` on `incident`.
pub fn approve_command(incident: &IncidentId, action: &str) -> String {
    format!("firebreak approve {incident} {action}")
}

/// Finds the approval request for `action` on the timeline and whether it was approved since.
pub fn approval_state(incident: &IncidentId, timeline: &[TimelineEntry], action: &str) -> ApprovalState {
    let found = timeline
        .iter()
        .rev()
        .find_map(|e| match EntryId::parse(&e.event_id)? {
            EntryId::Remediation {
                incident: i,
                cycle,
                cause,
                action: a,
                phase,
            } if i == *incident && a == action && phase == "awaiting-approval" => {
                (e.kind() == EntryKind::ApprovalRequested).then_some((e, cycle, cause))
            }
            _ => None,
        });
    let Some((req, cycle, cause)) = found else {
        return ApprovalState::NotRequested;
    };
    let asked = match req.detail() {
        Detail::ApprovalRequested(d) => Some(&**d),
        _ => None,
    };
    let pending = PendingApproval {
        cycle,
        cause: cause.clone(),
        runbook: asked.and_then(|d| d.runbook.clone()),
        step: asked.map_or_else(
            || RemediationStep {
                action: action.to_string(),
                params: BTreeMap::new(),
            },
            |d| d.step.clone(),
        ),
        requested_at: req.at,
        plan: asked.map(|d| d.plan.clone()).unwrap_or_default(),
        estimated_start: asked.and_then(|d| d.estimated_start),
    };
    let approved = event_id(incident, cycle, &cause, action, "approved");
    if timeline.iter().any(|e| e.event_id == approved) {
        ApprovalState::Approved(pending)
    } else {
        ApprovalState::Pending(pending)
    }
}

/// Who approved `action` on the incident (the `approved` entry's `approved_by`), when it was.
fn approver_of(
    incident: &IncidentId,
    timeline: &[TimelineEntry],
    pending: &PendingApproval,
    action: &str,
) -> Option<String> {
    let approved = event_id(incident, pending.cycle, &pending.cause, action, "approved");
    timeline
        .iter()
        .find(|e| e.event_id == approved)
        .and_then(|e| match e.detail() {
            Detail::RemediationRequested(r) => r.approved_by.clone(),
            _ => None,
        })
}

/// Why `action` cannot be approved on `incident` now, or the request awaiting approval. Shared by
/// [`request_approval`] (before anything is put on the bus) and remediate (before acting).
fn awaiting(
    incident: &Incident,
    timeline: &[TimelineEntry],
    action: &str,
) -> Result<PendingApproval, Nothing> {
    let id = &incident.id;
    if !KNOWN_ACTIONS.contains(&action) {
        return Err(Nothing::NotAwaiting(format!(
            "{action:?} is not a known action ({})",
            KNOWN_ACTIONS.join(", ")
        )));
    }
    let state = approval_state(id, timeline, action);
    // An accepted approval is known as such whatever happened since (the incident may have
    // resolved while its delivery waited for a retry): its redelivery reconciles what it did.
    if !matches!(&state, ApprovalState::Approved(p) if p.cycle == incident.reopened)
        && incident.status == IncidentStatus::Resolved
    {
        return Err(Nothing::NotAwaiting(format!(
            "incident {id} is resolved: nothing awaits approval"
        )));
    }
    match state {
        ApprovalState::NotRequested => Err(Nothing::NotAwaiting(format!(
            "{action} is not awaiting approval on {id} ({})",
            incident.status
        ))),
        ApprovalState::Approved(p) if p.cycle == incident.reopened => Err(Nothing::Approved {
            by: approver_of(id, timeline, &p, action),
            pending: Box::new(p),
        }),
        ApprovalState::Approved(_) => Err(Nothing::NotAwaiting(format!(
            "{action} is not awaiting approval on {id} in its cycle {} ({})",
            incident.reopened, incident.status
        ))),
        ApprovalState::Pending(p)
            if p.cycle != incident.reopened || incident.reopened_at.is_some_and(|t| p.requested_at < t) =>
        {
            Err(Nothing::NotAwaiting(format!(
                "{action} was requested on {id} before it reopened (cycle {}): not awaiting approval now",
                incident.reopened
            )))
        }
        ApprovalState::Pending(p) => Ok(p),
    }
}

/// Why there is nothing to approve.
enum Nothing {
    NotAwaiting(String),
    Approved {
        pending: Box<PendingApproval>,
        by: Option<String>,
    },
}

impl Nothing {
    fn message(&self, incident: &IncidentId, action: &str) -> String {
        match self {
            Nothing::NotAwaiting(m) => m.clone(),
            Nothing::Approved { by: Some(by), .. } => {
                format!("{action} on {incident} was already approved (by {by})")
            }
            Nothing::Approved { by: None, .. } => format!("{action} on {incident} was already approved"),
        }
    }
}

/// At most this much of a text that arrived in an event goes into a refusal's message.
const QUOTED_MAX: usize = 200;

fn quoted(s: &str) -> String {
    let cut: String = s.chars().take(QUOTED_MAX).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// The parts of an IAM or STS ARN that matter for an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrincipalArn<'a> {
    partition: &'a str,
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

/// IAM names (roles, users, sessions): `[\w+=,.@-]`, 1 to 64 characters.
fn iam_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

/// `/` or `/a/b/`: IAM paths are printable ASCII between slashes.
fn iam_path(segments: &[&str]) -> bool {
    segments
        .iter()
        .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
}

/// Reads `arn:<partition>:<iam|sts>::<account>:<resource>`: a well-formed principal of IAM
/// (`root`, `user/[path/]name`, `role/[path/]name`) or STS (`assumed-role/role/session`,
/// `federated-user/name`).
fn principal_arn(s: &str) -> Result<PrincipalArn<'_>, String> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err("expected arn:<partition>:<iam|sts>::<account>:<resource>".into());
    };
    if arn != "arn" {
        return Err("does not start with \"arn:\"".into());
    }
    let partition_ok = partition.starts_with("aws")
        && partition.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        && !partition.ends_with('-');
    if !partition_ok {
        return Err(format!("{partition:?} is not an AWS partition"));
    }
    if service != "iam" && service != "sts" {
        return Err(format!("{service:?} is neither \"iam\" nor \"sts\""));
    }
    if !region.is_empty() {
        return Err("IAM and STS ARNs name no region".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{account:?} is not a 12-digit account id"));
    }
    let segments: Vec<&str> = resource.split('/').collect();
    let ok = match (service, segments.as_slice()) {
        ("iam", ["root"]) => true,
        ("iam", [kind, path @ .., name]) if *kind == "user" || *kind == "role" => {
            iam_path(path) && iam_name(name)
        }
        ("sts", ["assumed-role", role, session]) => iam_name(role) && iam_name(session),
        ("sts", ["federated-user", name]) => iam_name(name),
        _ => false,
    };
    if !ok {
        return Err(format!("{resource:?} is not an {service} principal"));
    }
    Ok(PrincipalArn {
        partition,
        service,
        account,
        resource,
    })
}

/// Whose approvals remediate accepts: sessions of the approver role (`FIREBREAK_APPROVER_ROLE_ARN`,
/// the template's `FirebreakApproverRole`), or, when no role is configured (local use, drills),
/// any well-formed IAM or STS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvers {
    role: Option<ApproverRole>,
    /// The chat responder roles (`stages::chat`): their sessions approve too, through the chat
    /// function, the only other principal the bus lets put an approval.
    chat: Vec<ApproverRole>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ApproverRole {
    arn: String,
    partition: String,
    account: String,
    name: String,
}

impl Approvers {
    /// Any well-formed IAM or STS ARN approves: for drills and local use only. Deployed,
    /// remediate names the approver role.
    pub fn any() -> Approvers {
        Approvers {
            role: None,
            chat: Vec::new(),
        }
    }

    /// Sessions of these chat responder roles approve too.
    ///
    /// # Errors
    /// [`Error::Invalid`] when one is not an IAM role ARN.
    pub fn with_chat_roles(mut self, role_arns: &[String]) -> Result<Approvers, Error> {
        for arn in role_arns.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            if let Some(r) = Approvers::role(arn)?.role {
                self.chat.push(r);
            }
        }
        Ok(self)
    }

    /// The chat responder roles' ARNs.
    pub fn chat_role_arns(&self) -> Vec<&str> {
        self.chat.iter().map(|r| r.arn.as_str()).collect()
    }

    /// Only sessions of the role `role_arn` (`arn:<partition>:iam::<account>:role/[path/]<name>`)
    /// approve: `arn:<partition>:sts::<account>:assumed-role/<name>/<session>`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `role_arn` is not an IAM role ARN.
    pub fn role(role_arn: &str) -> Result<Approvers, Error> {
        let what = "approver role ARN";
        let role_arn = role_arn.trim();
        let arn = principal_arn(role_arn)
            .map_err(|e| Error::invalid(what, format!("{}: {e}", quoted(role_arn))))?;
        let name = match (
            arn.service,
            arn.resource.split('/').collect::<Vec<_>>().as_slice(),
        ) {
            ("iam", ["role", .., name]) => (*name).to_string(),
            _ => {
                return Err(Error::invalid(
                    what,
                    format!(
                        "{}: not arn:<partition>:iam::<account>:role/[path/]<name>",
                        quoted(role_arn)
                    ),
                ))
            }
        };
        Ok(Approvers {
            chat: Vec::new(),
            role: Some(ApproverRole {
                arn: role_arn.to_string(),
                partition: arn.partition.to_string(),
                account: arn.account.to_string(),
                name,
            }),
        })
    }

    /// The approver role's ARN, when one is configured.
    pub fn role_arn(&self) -> Option<&str> {
        self.role.as_ref().map(|r| r.arn.as_str())
    }

    /// Whether `approved_by` may approve; the error says why not.
    ///
    /// # Errors
    /// A sentence naming the approver and what is wrong with it.
    pub fn check(&self, approved_by: &str) -> Result<(), String> {
        let arn = principal_arn(approved_by)
            .map_err(|e| format!("approver {} is not an IAM or STS ARN: {e}", quoted(approved_by)))?;
        let Some(role) = &self.role else {
            return Ok(());
        };
        let not_role = |why: String| {
            format!(
                "approver {approved_by} is not a session of the approver role {}: {why}",
                role.arn
            )
        };
        let session_of = match (
            arn.service,
            arn.resource.split('/').collect::<Vec<_>>().as_slice(),
        ) {
            ("sts", ["assumed-role", name, _session]) => *name,
            _ => {
                return Err(not_role(
                    "only arn:<partition>:sts::<account>:assumed-role/<role>/<session> approves".into(),
                ))
            }
        };
        let same = |r: &ApproverRole| {
            r.partition == arn.partition && r.account == arn.account && r.name == session_of
        };
        if self.chat.iter().any(same) {
            return Ok(());
        }
        if arn.partition != role.partition {
            return Err(not_role(format!(
                "partition {} is not {}",
                arn.partition, role.partition
            )));
        }
        if arn.account != role.account {
            return Err(not_role(format!(
                "account {} is not {}",
                arn.account, role.account
            )));
        }
        if session_of != role.name {
            return Err(not_role(format!("role {session_of} is not {}", role.name)));
        }
        Ok(())
    }
}

/// What [`request_approval`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ApproveOutcome {
    /// The approval is on the bus; remediate re-checks the guardrails and carries it out.
    Approved {
        approval: RemediationApproved,
        /// The incident's service.
        service: String,
        /// What was planned when approval was asked for.
        plan: String,
    },
    /// Nothing was put on the bus: nothing awaits approval (the sentence says why), or it was
    /// approved already.
    NothingToApprove(String),
}

/// Approves `action` on `incident` as the verified caller: checks that the incident exists, is
/// not resolved and that the action awaits approval in the incident's current cycle and was not
/// approved yet, then puts "Remediation Approved" with the caller's ARN (from `identity`, never
/// from input) and the cycle. What `firebreak approve` and a drill's `approve` step run.
///
/// # Errors
/// [`Error::Invalid`] for an unknown action or incident, or a caller identity that is not an
/// IAM or STS ARN; store errors; [`Error::Port`] when the identity cannot be established or the
/// bus refuses the event (an `AccessDenied...` code when the caller is not the approver role).
#[tracing::instrument(skip(store, bus, identity))]
pub async fn request_approval<S: IncidentStore, B: EventBus, I: CallerIdentity>(
    store: &S,
    bus: &B,
    identity: &I,
    incident: &IncidentId,
    action: &str,
) -> Result<ApproveOutcome, Error> {
    if !KNOWN_ACTIONS.contains(&action) {
        return Err(Error::invalid(
            "action",
            format!("{action:?}: expected one of {}", KNOWN_ACTIONS.join(", ")),
        ));
    }
    let found = store
        .get(incident)
        .await?
        .ok_or_else(|| Error::invalid("incident_id", format!("no incident {incident}")))?;
    let timeline = store.timeline(incident).await?;
    let pending = match awaiting(&found, &timeline, action) {
        Ok(p) => p,
        Err(n) => return Ok(ApproveOutcome::NothingToApprove(n.message(incident, action))),
    };
    let by = identity.caller_arn().await?;
    Approvers::any()
        .check(&by)
        .map_err(|e| Error::invalid("caller identity", e))?;
    let approval = RemediationApproved {
        incident_id: incident.clone(),
        action: action.to_string(),
        approved_by: by,
        cycle: found.reopened,
    };
    bus.put(&Event::Approved(approval.clone()).to_pipeline()).await?;
    tracing::info!(incident = %incident, action, by = %approval.approved_by, cycle = approval.cycle, "approval put on the bus");
    Ok(ApproveOutcome::Approved {
        approval,
        service: found.service,
        plan: pending.plan,
    })
}

impl<P: RemediatePorts> Remediate<'_, P> {
    /// Carries out an action that is awaiting approval on the incident, re-running every
    /// guardrail except the mode, when the approval is from one of `approvers`, for the
    /// incident's current cycle, for an action awaiting approval on an incident not resolved,
    /// and the first. Otherwise the approval is refused: a `refused` entry says why, nothing else
    /// changes, and the report's `skipped` starts with `refused:`. The accepted approval
    /// delivered again does nothing (`already decided`).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the incident does not exist (nothing to record it on); store
    /// errors; retryable read errors before anything was recorded.
    #[tracing::instrument(skip(self, a, approvers), fields(incident = %a.incident_id, action = %a.action, by = %a.approved_by, cycle = a.cycle))]
    pub async fn on_approval(
        &self,
        a: &RemediationApproved,
        approvers: &Approvers,
    ) -> Result<RemediationReport, Error> {
        let id = &a.incident_id;
        let incident = self.load(id).await?;
        let timeline = self.ports.store().timeline(id).await?;
        let mut report = RemediationReport {
            incident_id: id.clone(),
            cause: None,
            decisions: Vec::new(),
            skipped: None,
        };
        let checked = approvers.check(&a.approved_by).and_then(|()| {
            if a.cycle == incident.reopened {
                Ok(())
            } else {
                Err(format!(
                    "the approval is for cycle {} of incident {id}, which is in cycle {}",
                    a.cycle, incident.reopened
                ))
            }
        });
        let cycle = incident.reopened;
        let mut attempt = 1;
        let (pending, resumed) = match checked.map(|()| awaiting(&incident, &timeline, &a.action)) {
            Err(why) => return self.refuse_approval(a, &why, report).await,
            Ok(Ok(p)) => (p, false),
            Ok(Err(Nothing::Approved { pending, by })) if by.as_deref() == Some(a.approved_by.as_str()) => {
                // The accepted approval, delivered again: finished, or interrupted by an error
                // a retry fixes before anything reached ECS (then it resumes).
                report.cause = Some(pending.cause.clone());
                let attempts = match unfinished(id, cycle, &pending.cause, Some(&a.action), &timeline) {
                    Some(n) => n,
                    None => match self
                        .redelivered(id, cycle, &pending.cause, report.clone(), Some(&a.action))
                        .await?
                    {
                        Redelivery::Done(r) => return Ok(r),
                        Redelivery::Resume(n) => n,
                    },
                };
                tracing::info!(incident = %id, action = %a.action, ?attempts, "resuming an approved action that an error interrupted");
                attempt = attempts.get(a.action.as_str()).copied().unwrap_or(1);
                (*pending, true)
            }
            Ok(Err(n)) => return self.refuse_approval(a, &n.message(id, &a.action), report).await,
        };
        let action = Action::parse(&pending.step)?;
        let reads = self.read(&incident).await?;
        report.cause = Some(pending.cause.clone());
        let approved = TimelineEntry::new(
            event_id(id, cycle, &pending.cause, &a.action, "approved"),
            self.ports.clock().now(),
            EntryKind::RemediationRequested,
            format!("{} approved by {}", a.action, a.approved_by),
        )
        .with_detail(detail::RemediationRequested {
            cause: pending.cause.clone(),
            runbook: None,
            step: None,
            mode: None,
            approved_by: Some(a.approved_by.clone()),
        });
        if !resumed && self.ports.store().append(id, &[approved]).await? == 0 {
            return match self
                .redelivered(id, cycle, &pending.cause, report.clone(), Some(&a.action))
                .await?
            {
                Redelivery::Done(r) => Ok(r),
                // a concurrent delivery of the same approval resumes it: nothing here
                Redelivery::Resume(_) => Ok(RemediationReport {
                    skipped: Some("already decided".into()),
                    ..report
                }),
            };
        }
        let dec = Decision {
            incident: &incident,
            cycle,
            cause: &pending.cause,
            runbook: pending.runbook.as_deref(),
            key: a.action.clone(),
            action: ActionName::from_name(&a.action),
            mode: RemediationMode::Approve,
            attempt,
        };
        let start = pending
            .estimated_start
            .or(incident.estimated_start)
            .unwrap_or(incident.detected_at);
        let mut entries = Vec::new();
        match self.guard_and_plan(&incident, &action, &reads, start).await {
            Err(r) => entries.push(self.refused(&dec, incident.ecs.as_ref(), &r, &mut report)),
            Ok(plan) => {
                let verify = pending
                    .runbook
                    .as_deref()
                    .and_then(|r| self.runbooks.iter().find(|b| b.id == r))
                    .map_or_else(
                        || chrono::Duration::seconds(self.settings.sweeper.default_verify_window_s),
                        |b| b.verify_window.to_chrono(),
                    );
                let (new, _) = self.execute(&dec, &plan, verify, &mut report).await?;
                entries.extend(new);
            }
        }
        self.commit(id, &entries).await?;
        self.announce(&incident, &pending.cause, &report).await?;
        Ok(report)
    }

    /// Records that approval `a` was refused (once per distinct approval) and changes nothing
    /// else.
    async fn refuse_approval(
        &self,
        a: &RemediationApproved,
        why: &str,
        mut report: RemediationReport,
    ) -> Result<RemediationReport, Error> {
        tracing::warn!(incident = %a.incident_id, action = %a.action, by = %a.approved_by, reason = why, "approval refused");
        let key = serde_json::to_string(a).unwrap_or_else(|_| format!("{a:?}"));
        let entry = refusal_entry(
            &a.incident_id,
            self.ports.clock(),
            detail_types::REMEDIATION_APPROVED,
            Some(a.approved_by.chars().take(QUOTED_MAX).collect()),
            why,
            &key,
        );
        self.ports.store().append(&a.incident_id, &[entry]).await?;
        report.skipped = Some(format!("refused: {why}"));
        Ok(report)
    }

    /// Publishes the approval request and records it; a notification failure is recorded too.
    pub(super) async fn ask_approval(
        &self,
        dec: &Decision<'_>,
        step: &RemediationStep,
        plan: &Plan,
        estimated_start: Option<DateTime<Utc>>,
        report: &mut RemediationReport,
    ) -> (TimelineEntry, Option<TimelineEntry>) {
        let inc = dec.incident;
        let command = approve_command(&inc.id, dec.action.as_str());
        let rec = self.record(
            dec,
            Outcome::AwaitingApproval,
            format!(
                "awaiting approval: {} on {}; approve with `{command}`",
                plan.detail, plan.service
            ),
            Some(&plan.service),
        );
        report.decisions.push(rec.clone());
        let message = Notification {
            subject: format!("[{}] Approve {} on {}?", inc.severity, dec.action, plan.service),
            // the title comes from the alarm: inert (no mentions, no control characters)
            body: crate::model::text::plain(&format!(
                "Incident {} ({}), cause {}.\nProposed: {} on {}: {}.\nTo carry it out run:\n  {command}",
                inc.id, inc.title, dec.cause, dec.action, plan.service, plan.detail
            )),
            attributes: BTreeMap::from([
                ("kind".to_string(), "approval-request".to_string()),
                ("severity".to_string(), inc.severity.to_string()),
                ("service".to_string(), inc.service.clone()),
                ("incident".to_string(), inc.id.to_string()),
            ]),
            facts: PageFacts {
                action: Some(dec.action.to_string()),
                cycle: dec.cycle,
                ..PageFacts::of(inc, PageEvent::ApprovalNeeded)
            }
            .next(format!("Approve {} on {}: {command}", dec.action, plan.service))
            .next("In a chat channel set up with Firebreak's actions, the Approve button does the same under your own identity")
            .next(format!("To decline, do nothing: no action runs without approval; acknowledge with firebreak ack {}", inc.id)),
        };
        let note = match self
            .ports
            .notifier()
            .notify(Route::Severity(inc.severity), &message)
            .await
        {
            Ok(_) => None,
            Err(e) => Some(self.notify_failed(dec, "approval request", &e)),
        };
        let entry = TimelineEntry::new(
            event_id(&inc.id, dec.cycle, dec.cause, &dec.key, "awaiting-approval"),
            rec.at,
            EntryKind::ApprovalRequested,
            format!(
                "approval requested for {} on {}: {}; run `{command}`",
                dec.action, plan.service, plan.detail
            ),
        )
        .with_detail(detail::ApprovalRequested {
            record: rec,
            cause: dec.cause.to_string(),
            runbook: dec.runbook.map(str::to_string),
            step: step.clone(),
            plan: plan.detail.clone(),
            update: plan.update.clone(),
            before: snapshot(&plan.before),
            command: command.clone(),
            estimated_start,
        });
        (entry, note)
    }
}

#[cfg(test)]
mod approver_tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/FirebreakApproverRole";
    const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/alice";

    #[test]
    fn a_session_of_the_approver_role_approves() {
        let a = Approvers::role(ROLE).unwrap();
        assert_eq!(a.role_arn(), Some(ROLE));
        assert_eq!(a.check(ALICE), Ok(()));
        assert_eq!(
            a.check("arn:aws:sts::123456789012:assumed-role/FirebreakApproverRole/alice.smith@example.com"),
            Ok(())
        );
    }

    #[test]
    fn another_role_account_or_partition_does_not() {
        let a = Approvers::role(ROLE).unwrap();
        for (by, needle) in [
            (
                "arn:aws:sts::123456789012:assumed-role/FirebreakApproverRoleX/alice",
                "role FirebreakApproverRoleX is not",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/firebreakapproverrole/alice",
                "role firebreakapproverrole is not",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/Admin/FirebreakApproverRole",
                "role Admin is not",
            ),
            (
                "arn:aws:sts::999999999999:assumed-role/FirebreakApproverRole/alice",
                "account 999999999999 is not",
            ),
            (
                "arn:aws-us-gov:sts::123456789012:assumed-role/FirebreakApproverRole/alice",
                "partition aws-us-gov is not aws",
            ),
            // the role itself, a user, the root and a federated user are not sessions of it
            (ROLE, "assumed-role/<role>/<session>"),
            (
                "arn:aws:iam::123456789012:user/FirebreakApproverRole",
                "assumed-role/<role>/<session>",
            ),
            ("arn:aws:iam::123456789012:root", "assumed-role/<role>/<session>"),
            (
                "arn:aws:sts::123456789012:federated-user/alice",
                "assumed-role/<role>/<session>",
            ),
        ] {
            let e = a.check(by).unwrap_err();
            assert!(e.contains(needle) && e.contains(ROLE), "{by}: {e}");
        }
    }

    #[test]
    fn a_role_with_a_path_is_matched_by_name_account_and_partition() {
        let a =
            Approvers::role("arn:aws-cn:iam::123456789012:role/ops/oncall/FirebreakApproverRole").unwrap();
        // STS session ARNs carry no path
        assert_eq!(
            a.check("arn:aws-cn:sts::123456789012:assumed-role/FirebreakApproverRole/bob"),
            Ok(())
        );
        assert!(a
            .check(ALICE)
            .unwrap_err()
            .contains("partition aws is not aws-cn"));
        assert!(a
            .check("arn:aws-cn:sts::123456789012:assumed-role/oncall/bob")
            .unwrap_err()
            .contains("role oncall is not"));
    }

    #[test]
    fn a_malformed_approver_is_refused_naming_what_is_wrong() {
        for a in [Approvers::any(), Approvers::role(ROLE).unwrap()] {
            for (by, needle) in [
                ("alice", "expected arn:"),
                ("", "expected arn:"),
                ("oncall@example.com", "expected arn:"),
                (
                    "urn:aws:sts::123456789012:assumed-role/R/s",
                    "does not start with",
                ),
                (
                    "arn:gcp:sts::123456789012:assumed-role/R/s",
                    "not an AWS partition",
                ),
                ("arn:aws:sts:us-east-1:123456789012:assumed-role/R/s", "no region"),
                ("arn:aws:sts::12345:assumed-role/R/s", "12-digit"),
                ("arn:aws:sts::123456789012:assumed-role/R", "not an sts principal"),
                (
                    "arn:aws:sts::123456789012:assumed-role/R/s/x",
                    "not an sts principal",
                ),
                (
                    "arn:aws:sts::123456789012:assumed-role/R/ali ce",
                    "not an sts principal",
                ),
                ("arn:aws:iam::123456789012:group/admins", "not an iam principal"),
                ("arn:aws:iam::123456789012:user/", "not an iam principal"),
                ("arn:aws:s3:::bucket", "neither \"iam\" nor \"sts\""),
            ] {
                let e = a.check(by).unwrap_err();
                assert!(
                    e.contains("is not an IAM or STS ARN") && e.contains(needle),
                    "{by}: {e}"
                );
            }
        }
    }

    #[test]
    fn without_a_role_any_well_formed_iam_or_sts_arn_approves() {
        let a = Approvers::any();
        assert_eq!(a.role_arn(), None);
        for by in [
            ALICE,
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/people/alice",
            "arn:aws:iam::123456789012:root",
            "arn:aws-cn:sts::123456789012:federated-user/bob",
        ] {
            assert_eq!(a.check(by), Ok(()), "{by}");
        }
    }

    #[test]
    fn the_approver_role_arn_must_be_an_iam_role() {
        for bad in [
            "FirebreakApproverRole",
            ALICE,
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123:role/FirebreakApproverRole",
        ] {
            let e = Approvers::role(bad).unwrap_err();
            assert!(e.to_string().contains("approver role ARN"), "{bad}: {e}");
        }
        assert!(Approvers::role(" arn:aws:iam::123456789012:role/R ").is_ok());
    }
}
