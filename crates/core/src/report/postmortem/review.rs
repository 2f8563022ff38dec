//! The review part of the postmortem: what went well and what went poorly (stage times against
//! their targets, guardrails, acknowledgements, escalations) and the action items they lead to.

use super::*;
use crate::model::entry_id::{EntryId, SweepKind};
use crate::model::incident::Outcome;

pub(super) fn findings(
    i: &Incident,
    timeline: &[TimelineEntry],
    runbook: Option<&Runbook>,
    t: &StageTimes,
    manual: bool,
) -> (Vec<String>, Vec<Finding>) {
    let mut well = Vec::new();
    let mut poorly = Vec::new();

    // detection
    match t.time_to_detect_s {
        Some(s) if s <= DETECT_TARGET_S => well.push(format!(
            "The alarm fired {} after the estimated start of the problem.",
            human(s)
        )),
        Some(s) => poorly.push(poor(
            format!(
                "The alarm came {} after the problem began (estimated start {}, alarm {}).",
                minutes_words(s),
                i.estimated_start
                    .map_or_else(String::new, |d| d.format("%H:%M:%S").to_string()),
                i.detected_at.format("%H:%M:%S")
            ),
            format!(
                "Make the alarm fire sooner: review its threshold, period and evaluation periods (it fired \
                 {} after the start).",
                human(s)
            ),
        )),
        None if i.runbook.is_some() => poorly.push(poor(
            "The diagnosis could not estimate when the problem began, so the time to detect is unknown.",
            "Add a time-binned query (`stats count() by bin(5m)`) to the runbook so the diagnosis can \
             estimate the start.",
        )),
        None => {}
    }

    // diagnosis
    match (&i.runbook, &i.cause) {
        (None, _) => poorly.push(poor(
            "No runbook matched the alarm, so no automated diagnosis or remediation ran.",
            "Write a runbook for this alarm: trigger, investigation queries, common causes, remediation, \
             prevention.",
        )),
        (Some(rb), None)
            if timeline
                .iter()
                .rev()
                .find_map(|e| match e.detail() {
                    Detail::DiagnosisCompleted(r) => Some(r.abstained.is_some()),
                    _ => None,
                })
                .unwrap_or(false) =>
        {
            poorly.push(poor(
                format!("The diagnosis abstained: the evidence of runbook `{rb}` did not decide between its causes."),
                format!(
                    "Make the runbook `{rb}` tell its causes apart: a signature one cause has and the other's \
                     evidence contradicts (a metric step, a `not`), and the evidence it missed readable."
                ),
            ))
        }
        (Some(rb), None) => poorly.push(poor(
            format!("The runbook `{rb}` ran, but none of its known causes matched."),
            format!("Add the cause the review establishes to the runbook `{rb}`, with a signature that recognises it."),
        )),
        (Some(_), Some(_)) => {}
    }
    match t.time_to_diagnose_s {
        Some(s) if s <= DIAGNOSE_TARGET_S && i.cause.is_some() => well.push(format!(
            "The diagnosis put the root cause on the incident {} after the alarm.",
            human(s)
        )),
        Some(s) if s <= DIAGNOSE_TARGET_S => {
            well.push(format!("The diagnosis finished {} after the alarm.", human(s)));
        }
        Some(s) => poorly.push(poor(
            format!(
                "The diagnosis took {} after the alarm (target {}).",
                human(s),
                human(DIAGNOSE_TARGET_S)
            ),
            "Speed up the diagnosis: narrow the runbook's queries, time range or log groups.",
        )),
        None => {}
    }
    for e in timeline.iter().filter(|e| e.kind() == EntryKind::QueryFailed) {
        poorly.push(poor(
            format!("A diagnostic query failed: {}", one_line(&e.summary)),
            format!("Fix the failing runbook query ({}).", one_line(&e.summary)),
        ));
    }

    // remediation
    let applied = i.remediations.iter().find(|r| r.outcome == Outcome::Applied);
    for r in &i.remediations {
        let detail = if r.detail.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", one_line(&r.detail))
        };
        match r.outcome.as_str() {
            "refused" => poorly.push(poor(
                format!("A guardrail refused the remediation `{}`{detail}.", r.action),
                format!(
                    "Review the guardrail that refused `{}`; allow it for this service if it is safe, or \
                     add a remediation that is.",
                    r.action
                ),
            )),
            "failed" => poorly.push(poor(
                format!("The remediation `{}` failed{detail}.", r.action),
                format!(
                    "Find out why `{}` failed and fix its permissions or parameters.",
                    r.action
                ),
            )),
            "dry-run" if applied.is_none() => poorly.push(poor(
                format!(
                    "The remediation `{}` was only planned (dry-run); nothing was changed automatically.",
                    r.action
                ),
                format!(
                    "Decide whether `{}` may run automatically for this service.",
                    r.action
                ),
            )),
            "awaiting-approval" if applied.is_none() => poorly.push(poor(
                format!(
                    "The remediation `{}` waited for approval and was not applied.",
                    r.action
                ),
                format!("Shorten the approval path for `{}`.", r.action),
            )),
            _ => {}
        }
    }
    if i.remediations.is_empty() && i.cause.is_some() {
        let cause = i.cause.as_deref().unwrap_or_default();
        poorly.push(poor(
            format!("No remediation was planned for the cause `{cause}`."),
            format!("Add a guarded remediation for `{cause}` to the runbook."),
        ));
    }
    match (applied, t.time_to_mitigate_s) {
        (Some(r), Some(s)) if s <= MITIGATE_TARGET_S => well.push(format!(
            "The system applied `{}` {} after the alarm.",
            r.action,
            human(s)
        )),
        (_, Some(s)) if s > MITIGATE_TARGET_S => poorly.push(poor(
            format!(
                "The mitigation came {} after the alarm (target {}).",
                human(s),
                human(MITIGATE_TARGET_S)
            ),
            "Apply the mitigation sooner: let the runbook's remediation run automatically or shorten its \
             approval.",
        )),
        (None, Some(s)) => well.push(format!(
            "The incident was mitigated {} after the alarm.",
            human(s)
        )),
        _ => {}
    }

    // response and escalation
    if matches!(i.severity, Severity::Sev1 | Severity::Sev2) {
        let target = i.severity.response_target_s().unwrap_or(0);
        match i.acknowledged_at {
            Some(a) if (a - i.opened_at).num_seconds() <= target => well.push(format!(
                "The page was acknowledged {} after the incident opened.",
                human((a - i.opened_at).num_seconds().max(0))
            )),
            Some(a) => poorly.push(poor(
                format!(
                    "The page was acknowledged {} after the incident opened (target {}).",
                    human((a - i.opened_at).num_seconds()),
                    human(target)
                ),
                format!(
                    "Check that the {} route reaches the on-call engineer promptly.",
                    i.severity
                ),
            )),
            None => poorly.push(poor(
                "The incident was never acknowledged.",
                format!(
                    "Check that the {} route reaches the on-call engineer.",
                    i.severity
                ),
            )),
        }
    }
    for (e, kind) in timeline.iter().filter_map(|e| match EntryId::parse(&e.event_id) {
        Some(EntryId::Sweeper {
            kind, paged: false, ..
        }) if e.kind() == EntryKind::Escalated => Some((e, kind)),
        _ => None,
    }) {
        if kind == SweepKind::NotRecovered {
            poorly.push(poor(
                format!("Escalated: {}", one_line(&e.summary)),
                "Revisit the remediation: it did not bring recovery within its verification window.",
            ));
        } else {
            poorly.push(Finding {
                text: format!("Escalated: {}", one_line(&e.summary)),
                action: None,
            });
        }
    }
    if i.reopened > 0 {
        poorly.push(poor(
            format!(
                "The incident reopened {} time(s) after it had resolved.",
                i.reopened
            ),
            "Find out why the first recovery did not hold.",
        ));
    }

    // resolution
    if manual {
        let firing: Vec<&str> = i.alarms_firing().collect();
        let text = if firing.is_empty() {
            "The incident was resolved by hand before every alarm had recovered.".to_string()
        } else {
            format!(
                "The incident was resolved by hand while alarms were still in ALARM: {}.",
                firing.iter().map(|a| one_line(a)).collect::<Vec<_>>().join(", ")
            )
        };
        poorly.push(poor(
            text,
            "Confirm the service recovered, and fix or retune the alarms that did not.",
        ));
    } else if i.resolved_at.is_some() {
        well.push("Every alarm recovered and the system resolved the incident on its own.".to_string());
    }
    if runbook.is_some_and(|r| r.prevention.is_empty()) {
        poorly.push(poor(
            "The runbook lists no prevention.",
            "Add the long-term fixes to the runbook's prevention list.",
        ));
    }
    (well, poorly)
}

pub(super) fn action_items(out: &mut String, runbook: Option<&Runbook>, poorly: &[Finding]) {
    out.push_str("## Action items\n\n");
    let mut items: Vec<String> = Vec::new();
    if let Some(r) = runbook {
        for p in &r.prevention {
            items.push(format!("Prevention (runbook `{}`): {}", r.id, one_line(p)));
        }
    }
    for p in poorly {
        if let Some(a) = &p.action {
            if !items.contains(a) {
                items.push(a.clone());
            }
        }
    }
    out.push_str("| Action | Owner | Due |\n| --- | --- | --- |\n");
    if items.is_empty() {
        out.push_str("| Add the improvements the review agrees on. |  |  |\n");
    }
    for a in items {
        // pipes from outside text are escaped already (`one_line`); Firebreak's own have none
        let _ = writeln!(out, "| {a} |  |  |");
    }
}
