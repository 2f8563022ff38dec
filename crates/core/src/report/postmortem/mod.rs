//! The blameless postmortem draft, following the seed's post-incident review template: summary,
//! timeline, root cause, impact, what went well, what went poorly, action items.
//!
//! Everything is derived from the incident, its timeline and its runbook, and nothing else: the
//! same inputs give the same Markdown, byte for byte (drills compare it). The language is
//! blameless: "the system", "the alarm", "the on-call responder"; names recorded with
//! acknowledgements, notes and manual resolutions stay on the timeline's detail and never reach
//! the draft.

use crate::model::entry_id::EntryId;
use crate::model::incident::Incident;
use crate::model::severity::Severity;
use crate::model::timeline::{Detail, EntryKind, TimelineEntry};
use crate::report::metrics::{human, StageTimes};
use crate::runbook::findings::QuerySummary;
use crate::runbook::{Measure, Runbook};
use chrono::{DateTime, Utc};
use std::fmt::Write as _;

mod impact;
mod review;

use impact::impact;
use review::{action_items, findings};

/// The alarm should fire within this long of the problem's start for detection to count as good.
pub const DETECT_TARGET_S: i64 = 60;
/// The root cause should be on the incident within a minute of the alarm (DESIGN.md).
pub const DIAGNOSE_TARGET_S: i64 = 60;
/// The mitigation should be applied within two minutes of the alarm (DESIGN.md).
pub const MITIGATE_TARGET_S: i64 = 120;

/// True when a `resolved` entry says the incident was resolved by hand (`detail.manual`).
pub fn resolved_manually(timeline: &[TimelineEntry]) -> bool {
    timeline
        .iter()
        .rev()
        .find(|e| e.kind() == EntryKind::Resolved)
        .is_some_and(|e| matches!(e.detail(), Detail::Resolved(r) if r.manual))
}

/// A finding for "what went poorly", with the action item it asks for.
struct Finding {
    text: String,
    action: Option<String>,
}

fn poor(text: impl Into<String>, action: impl Into<String>) -> Finding {
    Finding {
        text: text.into(),
        action: Some(action.into()),
    }
}

/// Drafts the postmortem of `incident` from its `timeline` (in order) and the runbook the
/// diagnosis used, if any. Deterministic.
pub fn draft(incident: &Incident, timeline: &[TimelineEntry], runbook: Option<&Runbook>) -> String {
    let times = StageTimes::of(incident);
    let manual = resolved_manually(timeline);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Postmortem: {} ({})",
        one_line(&incident.title),
        incident.id
    );
    out.push('\n');
    out.push_str(
        "_Draft written by Firebreak from the incident's timeline. Blameless: it describes what the \
         system and the alarms did, not who did what. Correct it, fill in the blanks and review it \
         with the team._\n\n",
    );
    summary(&mut out, incident, &times, runbook, manual);
    closed_loop(&mut out, timeline);
    timeline_section(&mut out, incident, timeline);
    root_cause(&mut out, incident, timeline, runbook);
    impact(&mut out, incident, timeline);
    let (well, poorly) = findings(incident, timeline, runbook, &times, manual);
    out.push_str("## What went well\n\n");
    if well.is_empty() {
        out.push_str("- Nothing the automation could measure stood out; add what the review finds.\n");
    }
    for w in &well {
        let _ = writeln!(out, "- {w}");
    }
    out.push('\n');
    out.push_str("## What went poorly\n\n");
    if poorly.is_empty() {
        out.push_str("- Nothing the automation could measure stood out; add what the review finds.\n");
    }
    for p in &poorly {
        let _ = writeln!(out, "- {}", p.text);
    }
    out.push('\n');
    action_items(&mut out, runbook, &poorly);
    out
}

/// Each proposal's shadow verdict and lead time, and each applied action's verification: what a
/// team reads to decide whether the runbook's actions may run on their own.
fn closed_loop(out: &mut String, timeline: &[TimelineEntry]) {
    let mut lines = Vec::new();
    for e in timeline {
        match e.detail() {
            Detail::ShadowScored(d) => {
                let verdict = d.verdict.map_or("not undone by people", |v| v.as_str());
                let lead = d.lead_s.map_or_else(String::new, |l| {
                    format!("; lead time {} (what Firebreak would have saved)", human(l))
                });
                let people = d.people_action.as_deref().map_or_else(
                    || "people made no change".to_string(),
                    |p| format!("people: {}", one_line(p)),
                );
                lines.push(format!(
                    "- **Proposal** {} `{}`: **{verdict}** ({people}{lead})",
                    d.proposal.outcome, d.proposal.action
                ));
            }
            Detail::Verification(v) => lines.push(format!(
                "- **Verification** of `{}`, window ended {}: **{}** ({})",
                v.applied.action,
                v.verify_by.format("%H:%M:%S"),
                v.result,
                v.alarms
                    .iter()
                    .map(|(n, s)| format!("{} {s}", one_line(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => {}
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str(
        "## Did the automation get it right

",
    );
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push('\n');
}

fn summary(out: &mut String, i: &Incident, t: &StageTimes, runbook: Option<&Runbook>, manual: bool) {
    out.push_str("## Summary\n\n");
    let _ = writeln!(out, "- **Incident:** {}", i.id);
    let _ = writeln!(out, "- **Service:** {}", one_line(&i.service));
    let _ = writeln!(out, "- **Severity:** {} ({})", i.severity, i.severity.label());
    let status = if manual {
        format!("{} (by hand, see the timeline)", i.status)
    } else {
        i.status.to_string()
    };
    let _ = writeln!(out, "- **Status:** {status}");
    let _ = writeln!(out, "- **Detected:** {}", full(i.detected_at));
    if let Some(r) = i.resolved_at {
        let _ = writeln!(out, "- **Resolved:** {}", full(r));
    }
    let rb = match (&i.runbook, runbook) {
        (_, Some(r)) => format!("`{}` ({})", r.id, one_line(&r.title)),
        (Some(id), None) => format!("`{id}`"),
        (None, None) => "none matched".to_string(),
    };
    let _ = writeln!(out, "- **Runbook:** {rb}");
    let cause = i
        .cause
        .as_ref()
        .map_or_else(|| "not identified".to_string(), |c| format!("`{c}`"));
    let _ = writeln!(out, "- **Cause:** {cause}");
    let rem = if i.remediations.is_empty() {
        "none".to_string()
    } else {
        i.remediations
            .iter()
            .map(|r| format!("{} ({}, {})", r.action, r.outcome, r.mode))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let _ = writeln!(out, "- **Remediation:** {rem}");
    out.push('\n');
    out.push_str("| Stage | Time |\n| --- | --- |\n");
    for (label, v) in [
        ("Time to detect (start → alarm)", t.time_to_detect_s),
        ("Time to diagnose (alarm → diagnosis)", t.time_to_diagnose_s),
        ("Time to mitigate (alarm → mitigation)", t.time_to_mitigate_s),
        ("Time to resolve, MTTR (alarm → recovery)", t.time_to_resolve_s),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} |",
            v.map_or_else(|| "n/a".to_string(), human)
        );
    }
    out.push('\n');
}

/// A run of more routine entries than this in a row (alarm state changes, attachments,
/// hand-offs: what a flapping alarm writes) is shortened to its ends and a count.
const ROUTINE_RUN_MAX: usize = 40;
/// Routine entries kept at each end of a shortened run.
const ROUTINE_RUN_ENDS: usize = 10;
/// At most this many timeline lines (first and last halves kept): the draft stays small whatever
/// the timeline holds; the incident's timeline keeps everything.
const TIMELINE_LINES_MAX: usize = 300;

/// Entries that only say an alarm changed state and where that was passed on.
fn routine(kind: EntryKind) -> bool {
    matches!(
        kind,
        EntryKind::AlarmFired
            | EntryKind::AlarmRecovered
            | EntryKind::AlarmInsufficientData
            | EntryKind::Attached
            | EntryKind::Handoff
    )
}

/// Shortens runs of routine lines longer than [`ROUTINE_RUN_MAX`], then the whole to
/// [`TIMELINE_LINES_MAX`] lines.
fn shorten(lines: Vec<(DateTime<Utc>, String, bool)>) -> Vec<(DateTime<Utc>, String)> {
    let hm = |t: DateTime<Utc>| t.format("%H:%M:%S").to_string();
    let mut out: Vec<(DateTime<Utc>, String)> = Vec::with_capacity(lines.len().min(TIMELINE_LINES_MAX));
    let mut run: Vec<(DateTime<Utc>, String)> = Vec::new();
    let flush = |run: &mut Vec<(DateTime<Utc>, String)>, out: &mut Vec<(DateTime<Utc>, String)>| {
        if run.len() > ROUTINE_RUN_MAX {
            let n = run.len() - 2 * ROUTINE_RUN_ENDS;
            let (from, to) = (run[ROUTINE_RUN_ENDS].0, run[run.len() - ROUTINE_RUN_ENDS - 1].0);
            out.extend(run.drain(..ROUTINE_RUN_ENDS));
            out.push((
                from,
                format!(
                    "… {n} more alarm state changes and hand-offs, {} to {} (each is on the incident's timeline: `firebreak show`)",
                    hm(from),
                    hm(to)
                ),
            ));
            let keep = run.len() - ROUTINE_RUN_ENDS;
            out.extend(run.drain(keep..));
            run.clear();
        } else {
            out.append(run);
        }
    };
    for (at, text, is_routine) in lines {
        if is_routine {
            run.push((at, text));
        } else {
            flush(&mut run, &mut out);
            out.push((at, text));
        }
    }
    flush(&mut run, &mut out);
    if out.len() > TIMELINE_LINES_MAX {
        let head = TIMELINE_LINES_MAX / 2;
        let tail = TIMELINE_LINES_MAX - head - 1;
        let cut = out.len() - head - tail;
        let at = out[head].0;
        let mut kept: Vec<(DateTime<Utc>, String)> = out.drain(..head).collect();
        kept.push((
            at,
            format!("… {cut} more timeline entries (each is on the incident's timeline: `firebreak show`)"),
        ));
        let rest = out.len() - tail;
        kept.extend(out.drain(rest..));
        return kept;
    }
    out
}

fn timeline_section(out: &mut String, i: &Incident, timeline: &[TimelineEntry]) {
    out.push_str("## Timeline\n\n");
    let mut lines: Vec<(DateTime<Utc>, String, bool)> = Vec::new();
    if let Some(s) = i.estimated_start {
        lines.push((
            s,
            "Estimated start of the problem (from the diagnosis).".to_string(),
            false,
        ));
    }
    for e in timeline {
        if e.kind() == EntryKind::PostmortemDrafted {
            continue;
        }
        lines.push((e.at, blameless_line(e), routine(e.kind())));
    }
    // stable: the estimate comes before entries at the same instant, entries keep their order
    lines.sort_by_key(|(at, _, _)| *at);
    let lines = shorten(lines);
    let day = i.detected_at.date_naive();
    let same_day = lines.iter().all(|(at, _)| at.date_naive() == day);
    if same_day {
        let _ = writeln!(out, "All times UTC, {}.\n", day.format("%Y-%m-%d"));
    } else {
        out.push_str("All times UTC.\n\n");
    }
    if lines.is_empty() {
        out.push_str("- No steps were recorded.\n");
    }
    for (at, text) in lines {
        let stamp = if same_day {
            at.format("%H:%M:%S").to_string()
        } else {
            at.format("%Y-%m-%d %H:%M:%S").to_string()
        };
        let _ = writeln!(out, "- **{stamp}** {text}");
    }
    out.push('\n');
}

/// One timeline line without names. The lines of the entries a person caused are written from
/// their typed detail, naming the role ("a responder"), never by searching the summary for the
/// person's name (a short name would match inside other words).
fn blameless_line(e: &TimelineEntry) -> String {
    match e.detail() {
        Detail::RemediationRequested(r) if r.approved_by.is_some() => {
            let action = match EntryId::parse(&e.event_id) {
                Some(EntryId::Remediation { action, .. }) => action,
                _ => "the remediation".to_string(),
            };
            format!("`{}` {action} approved by a responder", e.kind())
        }
        _ => raw_line(e),
    }
}

fn raw_line(e: &TimelineEntry) -> String {
    match e.kind() {
        EntryKind::Acknowledged => "`acknowledged` The on-call responder acknowledged the incident.".into(),
        EntryKind::Note => format!("`note` {}", one_line(&e.summary)),
        EntryKind::Resolved if matches!(e.detail(), Detail::Resolved(r) if r.manual) => {
            format!("`resolved` {}", one_line(&e.summary))
        }
        _ => format!("`{}` {}", e.kind(), one_line(&e.summary)),
    }
}

fn root_cause(out: &mut String, i: &Incident, timeline: &[TimelineEntry], runbook: Option<&Runbook>) {
    out.push_str("## Root cause\n\n");
    let latest = timeline.iter().rev().find_map(|e| match e.detail() {
        Detail::DiagnosisCompleted(r) => Some(r),
        _ => None,
    });
    let abstained = latest.is_some_and(|r| r.abstained.is_some());
    match (&i.cause, &i.runbook) {
        (Some(cause), _) => {
            let described = runbook
                .and_then(|r| r.causes.iter().find(|c| &c.id == cause))
                .map(|c| one_line(&c.description));
            match described {
                Some(d) => {
                    let _ = writeln!(out, "The diagnosis matched the known cause `{cause}`: {d}\n");
                }
                None => {
                    let _ = writeln!(out, "The diagnosis matched the known cause `{cause}`.\n");
                }
            }
            let evidence = evidence(timeline);
            if evidence.is_empty() {
                out.push_str("No evidence was recorded on the timeline.\n");
            } else {
                out.push_str("Evidence:\n\n");
                for e in evidence {
                    let _ = writeln!(out, "- {e}");
                }
            }
        }
        (None, Some(rb)) if abstained => {
            let _ = writeln!(
                out,
                "The runbook `{rb}` ran, and its evidence did not decide between its known causes. The root \
                 cause is to be established by the review."
            );
        }
        (None, Some(rb)) => {
            let _ = writeln!(
                out,
                "The runbook `{rb}` ran, but none of its known causes matched. The root cause is to be \
                 established by the review."
            );
        }
        (None, None) => {
            out.push_str(
                "No runbook matched the alarm, so no automated diagnosis ran. The root cause is to be \
                 established by the review.\n",
            );
        }
    }
    if let Some(r) = latest {
        if let Some(why) = &r.abstained {
            let _ = writeln!(
                out,
                "\nThe diagnosis abstained: it named no cause and took no automatic action, because {}.",
                one_line(why)
            );
        }
        if !r.hypotheses.is_empty() {
            out.push_str("\nHypotheses the diagnosis weighed, best first:\n\n");
            for h in &r.hypotheses {
                let _ = writeln!(out, "- `{}`, score {:.2}", h.cause, h.score);
                for (what, lines) in [
                    ("for", &h.evidence),
                    ("against", &h.against),
                    ("missing", &h.missing),
                ] {
                    for l in lines {
                        let _ = writeln!(out, "  - {what}: {}", one_line(l));
                    }
                }
            }
        }
        if !r.metrics.is_empty() {
            out.push_str("\nMetrics against the hour before:\n\n");
            for m in &r.metrics {
                let _ = writeln!(out, "- {}", one_line(&m.line()));
            }
        }
        if r.estimated_start.is_none() {
            let _ = writeln!(
                out,
                "\nThe start of the problem could not be estimated{}, so the time to detect is unknown.",
                r.start_note
                    .as_deref()
                    .map(|n| format!(": {}", one_line(n)))
                    .unwrap_or_default()
            );
        }
    }
    let changes: Vec<&TimelineEntry> = timeline
        .iter()
        .filter(|e| e.kind() == EntryKind::RecentChanges)
        .collect();
    if !changes.is_empty() {
        out.push_str("\nRecent changes to the service:\n\n");
        for c in changes {
            let _ = writeln!(out, "- {}", one_line(&c.summary));
        }
    }
    out.push('\n');
}

/// Evidence lines: the cause-matched entries' summaries and the strings of their (and the
/// diagnosis-completed entries') `detail.evidence`, without repeats, in timeline order.
fn evidence(timeline: &[TimelineEntry]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !s.is_empty() && !v.contains(&s) {
            v.push(s);
        }
    };
    for e in timeline {
        if !matches!(e.kind(), EntryKind::CauseMatched | EntryKind::DiagnosisCompleted) {
            continue;
        }
        if e.kind() == EntryKind::CauseMatched {
            add(one_line(&e.summary));
        }
        let evidence = match e.detail() {
            Detail::CauseMatched(m) => m.evidence.as_slice(),
            Detail::DiagnosisCompleted(r) => r.evidence.as_slice(),
            _ => &[],
        };
        for s in evidence {
            add(one_line(s));
        }
    }
    v
}

/// "5 minutes", "90 seconds", "1h 5m": the wording for a person.
fn minutes_words(s: i64) -> String {
    if s > 0 && s % 60 == 0 && s < 3600 {
        let m = s / 60;
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    } else {
        human(s)
    }
}

fn full(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Text on one line (summaries go into list items and table cells), inert: whatever an alarm
/// or a log line put in it (Markdown, HTML, links, mentions, control characters) shows as text
/// (`model::text::markdown_line`).
fn one_line(s: &str) -> String {
    crate::model::text::markdown_line(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::impact::{measure, number, Measured};
    use super::*;
    use crate::model::incident::Outcome;
    use crate::model::incident::{IncidentStatus, RemediationRecord};
    use crate::model::signal::AlarmState;
    use crate::report::metrics::tests::{at, incident};
    use serde_json::json;

    pub(crate) fn runbook() -> Runbook {
        serde_json::from_value(json!({
            "id": "http-5xx",
            "title": "High 5xx rate on an ECS service",
            "trigger": {"alarms": ["*-5xx*"]},
            "impact": "Requests fail",
            "investigation": [{"name": "errors", "query": "fields @message | filter @message like /ERROR/ | stats count() by bin(5m)"}],
            "causes": [{
                "id": "db-connection-pool-exhausted",
                "description": "The database connection pool is too small for the traffic.",
                "signatures": [{"pattern": {"query": "errors", "matches": "connection pool exhausted"}}],
                "remediation": [{"action": "ecs-scale-out", "step": 2, "max": 20}]
            }],
            "prevention": ["Size the connection pool with the task count", "Add pool utilisation to the dashboard"],
            "verify_window": "5m"
        }))
        .unwrap()
    }

    fn e(at: DateTime<Utc>, kind: EntryKind, summary: &str) -> TimelineEntry {
        TimelineEntry::new(format!("t/{kind}/{at}"), at, kind, summary)
    }

    pub(crate) fn seed() -> (Incident, Vec<TimelineEntry>) {
        let mut i = incident();
        i.runbook = Some("http-5xx".into());
        i.cause = Some("db-connection-pool-exhausted".into());
        i.estimated_start = Some(at(14, 30, 0));
        i.diagnosed_at = Some(at(14, 35, 40));
        i.mitigated_at = Some(at(14, 36, 0));
        i.resolved_at = Some(at(15, 0, 0));
        i.acknowledged_at = Some(at(14, 40, 0));
        i.acknowledged_by = Some("alice".into());
        i.status = IncidentStatus::Resolved;
        if let Some(a) = i.alarms.get_mut("articles-api-5xx") {
            a.state = AlarmState::Ok;
            a.changed_at = at(15, 0, 0);
        }
        i.remediations.push(RemediationRecord {
            action: "ecs-scale-out".into(),
            mode: crate::model::settings::RemediationMode::Auto,
            outcome: Outcome::Applied,
            detail: "desired 4 -> 6".into(),
            target: Some("prod/articles-api".into()),
            at: at(14, 36, 0),
        });
        let t = vec![
            e(
                at(14, 35, 0),
                EntryKind::AlarmFired,
                "articles-api-5xx is in ALARM",
            ),
            e(
                at(14, 35, 1),
                EntryKind::Opened,
                "Opened SEV2 incident for prod/articles-api",
            ),
            e(at(14, 35, 20), EntryKind::QueryCompleted, "errors: 3 rows"),
            e(
                at(14, 35, 40),
                EntryKind::CauseMatched,
                "db-connection-pool-exhausted: 42 rows match",
            )
            .with_json_detail(json!({
                "cause": "db-connection-pool-exhausted",
                "description": "The database connection pool is too small for the traffic.",
                "evidence": [
                    "DatabaseError: connection pool exhausted, max_connections=10",
                    "connections spiked at 14:30"
                ],
                "remediation": ["ecs-scale-out"]
            }))
            .unwrap(),
            e(
                at(14, 36, 0),
                EntryKind::RemediationApplied,
                "ecs-scale-out prod/articles-api 4 -> 6",
            ),
            e(at(14, 40, 0), EntryKind::Acknowledged, "acknowledged by alice")
                .with_json_detail(json!({"by": "alice"}))
                .unwrap(),
            e(at(15, 0, 0), EntryKind::AlarmRecovered, "articles-api-5xx is OK"),
            e(at(15, 0, 0), EntryKind::Resolved, "All alarms OK; resolved"),
        ];
        (i, t)
    }

    #[test]
    fn seed_incident_postmortem() {
        let (i, t) = seed();
        let rb = runbook();
        let md = draft(&i, &t, Some(&rb));
        for section in [
            "## Summary",
            "## Timeline",
            "## Root cause",
            "## Impact",
            "## What went well",
            "## What went poorly",
            "## Action items",
        ] {
            assert!(md.contains(section), "{section}\n{md}");
        }
        assert!(md.contains("| Time to detect (start → alarm) | 5m |"), "{md}");
        assert!(
            md.contains("| Time to diagnose (alarm → diagnosis) | 40s |"),
            "{md}"
        );
        assert!(
            md.contains("| Time to mitigate (alarm → mitigation) | 1m |"),
            "{md}"
        );
        assert!(
            md.contains("| Time to resolve, MTTR (alarm → recovery) | 25m |"),
            "{md}"
        );
        // timeline in order with the estimated start first
        let tl = section(&md, "## Timeline");
        let stamps: Vec<&str> = tl
            .lines()
            .filter_map(|l| l.strip_prefix("- **"))
            .map(|l| &l[..8])
            .collect();
        assert_eq!(
            stamps,
            [
                "14:30:00", "14:35:00", "14:35:01", "14:35:20", "14:35:40", "14:36:00", "14:40:00",
                "15:00:00", "15:00:00"
            ]
        );
        assert!(tl.contains("All times UTC, 2026-03-14."));
        // root cause and its evidence
        let rc = section(&md, "## Root cause");
        assert!(rc.contains("`db-connection-pool-exhausted`: The database connection pool is too small"));
        assert!(rc.contains("- DatabaseError: connection pool exhausted, max_connections=10"));
        // impact: this fixture's queries measure nothing (the measured case has its own test,
        // and the seed drill's postmortem is checked against `firebreak query` in the CLI tests)
        let imp = section(&md, "## Impact");
        assert!(imp.contains("**Duration:** 30m from the estimated start (14:30:00) to recovery (15:00:00); 25m from the alarm."), "{imp}");
        assert!(
            imp.contains("**Failed requests:** not measured (no investigation step"),
            "{imp}"
        );
        assert!(imp.contains("**Error rate:** not measured."), "{imp}");
        // went well / poorly from the stage times
        let well = section(&md, "## What went well");
        assert!(
            well.contains("root cause on the incident 40s after the alarm"),
            "{well}"
        );
        assert!(
            well.contains("applied `ecs-scale-out` 1m after the alarm"),
            "{well}"
        );
        assert!(well.contains("acknowledged 4m 59s after"), "{well}");
        let poorly = section(&md, "## What went poorly");
        assert!(
            poorly.contains("The alarm came 5 minutes after the problem began"),
            "{poorly}"
        );
        // action items: runbook prevention, then one per thing that went poorly
        let ai = section(&md, "## Action items");
        assert!(ai.contains("| Action | Owner | Due |"));
        assert!(ai.contains(
            "| Prevention (runbook `http-5xx`): Size the connection pool with the task count |  |  |"
        ));
        assert!(
            ai.contains("| Prevention (runbook `http-5xx`): Add pool utilisation to the dashboard |  |  |")
        );
        assert!(ai.contains("Make the alarm fire sooner"), "{ai}");
        // blameless: the acknowledger's name never appears
        assert!(!md.contains("alice"), "{md}");
        assert!(md.contains("The on-call responder acknowledged the incident."));
        // deterministic
        assert_eq!(md, draft(&i, &t, Some(&rb)));
    }

    fn section<'a>(md: &'a str, heading: &str) -> &'a str {
        let start = md.find(heading).unwrap();
        let rest = &md[start + heading.len()..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    #[test]
    fn refused_remediation_goes_poorly_with_an_action_item() {
        let (mut i, t) = seed();
        i.mitigated_at = None;
        i.remediations[0].outcome = Outcome::Refused;
        i.remediations[0].detail = "prod/articles-api is not in the allow list".into();
        let md = draft(&i, &t, Some(&runbook()));
        let poorly = section(&md, "## What went poorly");
        assert!(
            poorly.contains("A guardrail refused the remediation `ecs-scale-out`: prod/articles-api is not in the allow list."),
            "{poorly}"
        );
        assert!(md.contains("| Time to mitigate (alarm → mitigation) | n/a |"));
        assert!(section(&md, "## Action items").contains("Review the guardrail that refused `ecs-scale-out`"));
        assert!(!section(&md, "## What went well").contains("applied"));
    }

    #[test]
    fn no_runbook_postmortem() {
        let (mut i, _) = seed();
        i.runbook = None;
        i.cause = None;
        i.estimated_start = None;
        i.diagnosed_at = None;
        i.mitigated_at = None;
        i.remediations.clear();
        let t = vec![
            e(
                at(14, 35, 0),
                EntryKind::AlarmFired,
                "articles-api-5xx is in ALARM",
            ),
            e(
                at(14, 35, 1),
                EntryKind::NoRunbook,
                "No runbook matches articles-api-5xx",
            ),
            e(at(15, 0, 0), EntryKind::Resolved, "All alarms OK; resolved"),
        ];
        let md = draft(&i, &t, None);
        assert!(md.contains("- **Runbook:** none matched"));
        assert!(section(&md, "## Root cause").contains("No runbook matched the alarm"));
        assert!(section(&md, "## What went poorly").contains("No runbook matched the alarm"));
        assert!(section(&md, "## Action items").contains("Write a runbook for this alarm"));
        let imp = section(&md, "## Impact");
        assert!(imp.contains("**Failed requests:** not measured ("), "{imp}");
        assert!(imp.contains("**Error rate:** not measured."));
        assert!(
            imp.contains("25m from the alarm (14:35:00) to recovery (15:00:00)"),
            "{imp}"
        );
        assert!(md.contains("| Time to detect (start → alarm) | n/a |"));
    }

    #[test]
    fn manual_resolution_says_so() {
        let (mut i, mut t) = seed();
        if let Some(a) = i.alarms.get_mut("articles-api-5xx") {
            a.state = AlarmState::Alarm;
        }
        t.pop();
        t.push(
            e(
                at(15, 0, 0),
                EntryKind::Resolved,
                "Resolved by hand; still in ALARM: articles-api-5xx",
            )
            .with_json_detail(json!({"manual": true, "by": "bob"}))
            .unwrap(),
        );
        let md = draft(&i, &t, Some(&runbook()));
        assert!(md.contains("- **Status:** resolved (by hand, see the timeline)"));
        assert!(section(&md, "## What went poorly")
            .contains("resolved by hand while alarms were still in ALARM: articles-api-5xx"));
        assert!(!md.contains("bob"));
    }

    #[test]
    fn text_from_alarms_and_logs_is_inert_in_the_postmortem() {
        let (mut i, mut t) = seed();
        let evil = "<img src=x onerror=alert(1)> [click](http://evil.example) ![](http://evil.example/x.png) @channel <!here> \u{1b}[31mred\u{0} \u{202e}txet";
        i.title = format!("articles-api-5xx {evil}");
        i.alarms
            .insert(evil.to_string(), i.alarms.values().next().unwrap().clone());
        t.push(e(
            at(14, 35, 5),
            EntryKind::AlarmFired,
            &format!("{evil} is ALARM: reason {evil}"),
        ));
        let md = draft(&i, &t, None);
        for raw in [
            "<img", "![](", "@channel", "<!here>", "\u{1b}", "\u{0}", "\u{202e}", "http://",
        ] {
            assert!(!md.contains(raw), "{raw:?} is live in the postmortem:\n{md}");
        }
        // a link needs an unescaped `](`
        assert!(!md.replace("\\]", "").contains("]("), "a link renders:\n{md}");
        // still readable
        assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;"), "{md}");
        assert!(md.contains("\\[click\\]"), "{md}");
        assert!(md.contains("articles-api-5xx"), "{md}");
    }

    #[test]
    fn an_approvers_name_never_appears_and_never_rewrites_other_words() {
        let (i, mut t) = seed();
        for name in ["carol", "ed"] {
            t.push(
                TimelineEntry::new(
                    EntryId::Remediation {
                        incident: i.id.clone(),
                        cycle: 0,
                        cause: "db-connection-pool-exhausted".into(),
                        action: "ecs-rollback".into(),
                        phase: "approved".into(),
                    }
                    .text(),
                    at(14, 37, 0),
                    EntryKind::RemediationRequested,
                    format!("ecs-rollback approved by {name}"),
                )
                .with_json_detail(json!({"approved_by": name, "cause": "db-connection-pool-exhausted"}))
                .unwrap(),
            );
        }
        let md = draft(&i, &t, None);
        assert!(!md.contains("carol"), "{md}");
        assert!(!md.contains("by ed"), "{md}");
        // "ed" is inside "remediation-requested" and "Opened": they stay whole
        assert!(
            md.contains("`remediation-requested` ecs-rollback approved by a responder"),
            "{md}"
        );
        assert!(!md.contains("a responderiation"), "{md}");
        assert!(md.contains("Opened SEV2"), "{md}");
    }

    #[test]
    fn impact_counts_failed_requests_and_their_share_from_the_measuring_queries() {
        use crate::runbook::findings::{Count, QuerySummary};
        let bins = |v: &[f64]| -> Vec<(DateTime<Utc>, f64)> {
            v.iter()
                .enumerate()
                .map(|(i, c)| (at(14, 20 + 5 * i as u32, 0), *c))
                .collect()
        };
        let summary = |query: &str, measures, v: &[f64]| {
            let series = bins(v);
            serde_json::to_value(QuerySummary {
                query: query.into(),
                rows: v.len(),
                records_matched: 0.0,
                records_scanned: 0.0,
                top_messages: vec![],
                bins: v.len(),
                spike: None,
                count: Some(Count {
                    measures,
                    field: "n".into(),
                    total: v.iter().sum(),
                    bin_s: 300,
                    series,
                }),
            })
            .unwrap()
        };
        let d = "INC-1/diagnosis/SEV2";
        let t = vec![
            TimelineEntry::new(
                format!("{d}/started"),
                at(14, 35, 1),
                EntryKind::DiagnosisStarted,
                "s",
            )
            .with_json_detail(json!({
                "alarm": "articles-api-5xx",
                "window": {"start": "2026-03-14T13:35:00Z", "end": "2026-03-14T14:35:00Z"}
            }))
            .unwrap(),
            TimelineEntry::new(
                format!("{d}/query/errors"),
                at(14, 35, 2),
                EntryKind::QueryCompleted,
                "errors",
            )
            .with_json_detail(
                json!({"summary": summary("errors", Measure::FailedRequests, &[0.0, 0.0, 12.0, 11.0])}),
            )
            .unwrap(),
            TimelineEntry::new(
                format!("{d}/query/requests"),
                at(14, 35, 2),
                EntryKind::QueryCompleted,
                "requests",
            )
            .with_json_detail(
                json!({"summary": summary("requests", Measure::Requests, &[100.0, 100.0, 80.0, 35.0])}),
            )
            .unwrap(),
        ];
        let md = draft(&seed().0, &t, None);
        assert!(
            md.contains("**Failed requests:** 23 between 14:30 and 14:40 (query `errors`, over the diagnosis window 13:35 to 14:35)."),
            "{md}"
        );
        assert!(
            md.contains("**Error rate:** 20% of the 115 requests in that time (query `requests`)."),
            "{md}"
        );
        // without a measuring step, or with details from before counts were kept: not measured
        let old = vec![TimelineEntry::new(
            format!("{d}/query/x"),
            at(14, 36, 0),
            EntryKind::QueryCompleted,
            "x",
        )
        .with_json_detail(json!({"summary": {
            "query": "x", "rows": 3, "records_matched": 3.0, "records_scanned": 9.0,
            "top_messages": [], "bins": 0, "spike": null
        }}))
        .unwrap()];
        assert_eq!(measure(&old), Measured::default());
        assert!(draft(&seed().0, &old, None).contains("**Failed requests:** not measured"));
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(number(2000.0), "2,000");
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(15.0), "15");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(minutes_words(300), "5 minutes");
        assert_eq!(minutes_words(330), "5m 30s");
    }
}
