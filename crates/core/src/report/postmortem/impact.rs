//! The postmortem's impact: how long, and how many requests failed, as the runbook's measuring
//! queries counted them during the diagnosis.

use super::*;

pub(super) fn impact(out: &mut String, i: &Incident, timeline: &[TimelineEntry]) {
    out.push_str("## Impact\n\n");
    match i.resolved_at {
        Some(r) => {
            let from_alarm = (r - i.detected_at).num_seconds();
            match i.estimated_start.filter(|s| *s <= r) {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "- **Duration:** {} from the estimated start ({}) to recovery ({}); {} from the \
                         alarm.",
                        human((r - s).num_seconds()),
                        s.format("%H:%M:%S"),
                        r.format("%H:%M:%S"),
                        human(from_alarm.max(0))
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "- **Duration:** {} from the alarm ({}) to recovery ({}); the start before the \
                         alarm was not estimated.",
                        human(from_alarm.max(0)),
                        i.detected_at.format("%H:%M:%S"),
                        r.format("%H:%M:%S")
                    );
                }
            }
        }
        None => out.push_str("- **Duration:** the incident is not resolved.\n"),
    }
    let m = measure(timeline);
    match &m.failed {
        Some(f) => {
            let _ = writeln!(
                out,
                "- **Failed requests:** {} between {} and {} (query `{}`, over the diagnosis \
                 window {} to {}).",
                number(f.count),
                f.from.format("%H:%M"),
                f.to.format("%H:%M"),
                f.query,
                f.window.0.format("%H:%M"),
                f.window.1.format("%H:%M"),
            );
        }
        None if m.measured_none => {
            out.push_str("- **Failed requests:** none counted in the diagnosis window.\n")
        }
        None => out.push_str(
            "- **Failed requests:** not measured (no investigation step `measures: failed-requests`).\n",
        ),
    }
    match (&m.failed, &m.requests) {
        (Some(f), Some((all, q))) if *all > 0.0 => {
            let _ = writeln!(
                out,
                "- **Error rate:** {}% of the {} requests in that time (query `{q}`).",
                number(f.count / all * 100.0),
                number(*all)
            );
        }
        _ => out.push_str("- **Error rate:** not measured.\n"),
    }
    out.push_str("- **Users affected:** not measured; fill in.\n\n");
}

/// Failed requests as a measuring query counted them.
#[derive(Debug, PartialEq)]
pub(super) struct Failed {
    pub(super) count: f64,
    /// From the first to the end of the last bin that counted any.
    pub(super) from: DateTime<Utc>,
    pub(super) to: DateTime<Utc>,
    pub(super) query: String,
    /// The window the query ran over.
    pub(super) window: (DateTime<Utc>, DateTime<Utc>),
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct Measured {
    pub(super) failed: Option<Failed>,
    /// All requests in the failed requests' span, and the query that counted them.
    pub(super) requests: Option<(f64, String)>,
    /// A failed-requests query ran and counted none.
    pub(super) measured_none: bool,
}

/// Reads the counts of the steps that `measure` something from the diagnosis's query-completed
/// entries (`detail.summary`, a [`QuerySummary`]); the latest diagnosis wins.
pub(super) fn measure(timeline: &[TimelineEntry]) -> Measured {
    let mut m = Measured::default();
    let completed: Vec<(QuerySummary, Option<Window>)> = timeline
        .iter()
        .filter_map(|e| match e.detail() {
            Detail::QueryCompleted(q) => Some((q.summary.clone(), window_of(timeline, e))),
            _ => None,
        })
        .collect();
    let mut requests = None;
    for (s, window) in &completed {
        let Some(c) = &s.count else { continue };
        match c.measures {
            Measure::FailedRequests => match (c.span(), window) {
                (Some((from, to)), Some(w)) => {
                    m.failed = Some(Failed {
                        count: c.total,
                        from,
                        to,
                        query: s.query.clone(),
                        window: *w,
                    });
                    m.measured_none = false;
                }
                (None, _) => {
                    m.failed = None;
                    m.measured_none = true;
                }
                (Some(_), None) => {}
            },
            Measure::Requests => requests = Some((c, s.query.clone())),
        }
    }
    if let (Some(f), Some((c, q))) = (&m.failed, requests) {
        m.requests = Some((c.within(f.from, f.to), q));
    }
    m
}

/// A diagnosis window, start and end.
type Window = (DateTime<Utc>, DateTime<Utc>);

/// The window of the diagnosis an entry belongs to: its `diagnosis-started` entry's detail.
fn window_of(timeline: &[TimelineEntry], e: &TimelineEntry) -> Option<Window> {
    let Some(EntryId::Diagnosis {
        incident,
        cycle,
        severity,
        ..
    }) = EntryId::parse(&e.event_id)
    else {
        return None;
    };
    let started_id = EntryId::Diagnosis {
        incident,
        cycle,
        severity,
        step: "started".into(),
    }
    .text();
    let started = timeline
        .iter()
        .find(|s| s.kind() == EntryKind::DiagnosisStarted && s.event_id == started_id)?;
    match started.detail() {
        Detail::DiagnosisStarted(d) => Some((d.window.start, d.window.end)),
        _ => None,
    }
}

/// `1234` → `1,234`; fractions keep one decimal.
pub(super) fn number(n: f64) -> String {
    let rounded = (n * 10.0).round() / 10.0;
    if rounded.fract() != 0.0 {
        return format!("{rounded:.1}");
    }
    let digits = format!("{rounded:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
