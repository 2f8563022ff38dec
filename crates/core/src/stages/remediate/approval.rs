//! Approvals: where an approval stands (read from the timeline), asking a person for one, and
//! carrying out an approved action ("Remediation Approved" or `firebreak approve`).

use super::*;

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
                cause,
                action: a,
                phase,
            } if i == *incident && a == action && phase == "awaiting-approval" => {
                (e.kind() == EntryKind::ApprovalRequested).then_some((e, cause))
            }
            _ => None,
        });
    let Some((req, cause)) = found else {
        return ApprovalState::NotRequested;
    };
    let asked = match req.detail() {
        Detail::ApprovalRequested(d) => Some(&**d),
        _ => None,
    };
    let pending = PendingApproval {
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
    let approved = event_id(incident, &cause, action, "approved");
    if timeline.iter().any(|e| e.event_id == approved) {
        ApprovalState::Approved(pending)
    } else {
        ApprovalState::Pending(pending)
    }
}

impl<P: RemediatePorts> Remediate<'_, P> {
    /// Carries out an action that is awaiting approval on the incident, re-running every
    /// guardrail except the mode.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the incident does not exist or the action is not awaiting
    /// approval on it; store errors; retryable read errors before anything was recorded.
    #[tracing::instrument(skip(self, a), fields(incident = %a.incident_id, action = %a.action, by = %a.approved_by))]
    pub async fn on_approval(&self, a: &RemediationApproved) -> Result<RemediationReport, Error> {
        let id = &a.incident_id;
        let incident = self.load(id).await?;
        let timeline = self.ports.store().timeline(id).await?;
        let pending = match approval_state(id, &timeline, &a.action) {
            ApprovalState::NotRequested => {
                return Err(Error::invalid(
                    "approval",
                    format!("{} is not awaiting approval on incident {id}", a.action),
                ))
            }
            ApprovalState::Approved(p) => {
                let report = RemediationReport {
                    incident_id: id.clone(),
                    cause: Some(p.cause.clone()),
                    decisions: Vec::new(),
                    skipped: None,
                };
                return self.redelivered(id, &p.cause, report).await;
            }
            ApprovalState::Pending(p) => p,
        };
        let action = Action::parse(&pending.step)?;
        let reads = self.read(&incident).await?;
        let mut report = RemediationReport {
            incident_id: id.clone(),
            cause: Some(pending.cause.clone()),
            decisions: Vec::new(),
            skipped: None,
        };
        let approved = TimelineEntry::new(
            event_id(id, &pending.cause, &a.action, "approved"),
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
        if self.ports.store().append(id, &[approved]).await? == 0 {
            return self.redelivered(id, &pending.cause, report).await;
        }
        let dec = Decision {
            incident: &incident,
            cause: &pending.cause,
            runbook: pending.runbook.as_deref(),
            key: a.action.clone(),
            action: ActionName::from_name(&a.action),
            mode: RemediationMode::Approve,
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
                let (new, _) = self.execute(&dec, &plan, verify, &mut report).await;
                entries.extend(new);
            }
        }
        self.commit(id, &entries).await?;
        self.announce(&incident, &pending.cause, &report).await?;
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
            body: format!(
                "Incident {} ({}), cause {}.\nProposed: {} on {}: {}.\nTo carry it out run:\n  {command}",
                inc.id, inc.title, dec.cause, dec.action, plan.service, plan.detail
            ),
            attributes: BTreeMap::from([
                ("kind".to_string(), "approval-request".to_string()),
                ("severity".to_string(), inc.severity.to_string()),
                ("service".to_string(), inc.service.clone()),
                ("incident".to_string(), inc.id.to_string()),
            ]),
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
            event_id(&inc.id, dec.cause, &dec.key, "awaiting-approval"),
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
