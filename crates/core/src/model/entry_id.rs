//! Timeline event ids, built and parsed in one place. An id is deterministic for the step that
//! writes it, so a redelivered step writes the same id and the store keeps it once; the id's
//! text is what is stored (`T#<id>`), so its forms below are a stored format: they only grow.
//!
//! | form | written by |
//! | --- | --- |
//! | `<delivery>/<step>` | triage, per alarm delivery (`alarm-fired`, `opened`, `paged`, ...) |
//! | `<incident>/diagnosis[/r<cycle>]/<severity>/<step>` | diagnose (`started`, `query/<name>`, `cause/<id>`, `completed`, ...) |
//! | `<incident>/remediate/<cause>/<action>/<phase>` | remediate (`requested`, `applied`, `awaiting-approval`, `approved`, ...) |
//! | `<incident>/resolve/<cycle>/<step>` | resolve (`resolved`, `mitigated`, `postmortem-drafted`, `notified`, `partial/<alarm>/<ms>`) |
//! | `<incident>/sweeper/<rule>/<key>[/paged]` | the sweeper (`unacked`, `not-recovered`, `open-too-long`) |
//! | `<incident>/ack/<cycle>` | acknowledgement |
//! | `<incident>/note/<digest>` | a note |
//! | `<incident>/refused/<digest>` | an event or state change refused at the trust boundary |

use crate::model::incident::IncidentId;
use std::fmt;

/// What the sweeper escalated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SweepKind {
    Unacknowledged,
    NotRecovered,
    OpenTooLong,
    /// A flapping incident held long enough without a state change: the hold ends.
    Stable,
}

impl SweepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SweepKind::Unacknowledged => "unacked",
            SweepKind::NotRecovered => "not-recovered",
            SweepKind::OpenTooLong => "open-too-long",
            SweepKind::Stable => "stable",
        }
    }

    fn parse(s: &str) -> Option<SweepKind> {
        [
            SweepKind::Unacknowledged,
            SweepKind::NotRecovered,
            SweepKind::OpenTooLong,
            SweepKind::Stable,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A timeline event id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryId {
    /// Triage's step for one alarm delivery.
    Delivery { delivery: String, step: String },
    /// A diagnosis step; one diagnosis per severity and reopen cycle.
    Diagnosis {
        incident: IncidentId,
        cycle: u32,
        severity: String,
        step: String,
    },
    /// A remediation phase of one action for one cause, in one cycle of the incident (cycle 0
    /// is written without its number, as releases before cycles wrote it).
    Remediation {
        incident: IncidentId,
        cycle: u32,
        cause: String,
        action: String,
        phase: String,
    },
    /// A resolution step of one cycle.
    Resolution {
        incident: IncidentId,
        cycle: u32,
        step: String,
    },
    /// A sweeper escalation (`paged` once its page went out).
    Sweeper {
        incident: IncidentId,
        kind: SweepKind,
        key: String,
        paged: bool,
    },
    /// The acknowledgement of one cycle.
    Ack { incident: IncidentId, cycle: u32 },
    /// A note, by digest of author, text and time.
    Note { incident: IncidentId, digest: String },
    /// A refused event, by digest of what was refused (the same event refused twice is one entry).
    Refused { incident: IncidentId, digest: String },
}

impl EntryId {
    /// The id as stored.
    pub fn text(&self) -> String {
        self.to_string()
    }

    /// The incident the id names, for every form but triage's.
    pub fn incident(&self) -> Option<&IncidentId> {
        match self {
            EntryId::Delivery { .. } => None,
            EntryId::Diagnosis { incident, .. }
            | EntryId::Remediation { incident, .. }
            | EntryId::Resolution { incident, .. }
            | EntryId::Sweeper { incident, .. }
            | EntryId::Ack { incident, .. }
            | EntryId::Note { incident, .. }
            | EntryId::Refused { incident, .. } => Some(incident),
        }
    }

    /// The id of another phase of the same remediation (`…/applied` → `…/verification`);
    /// `None` for an id that is not a remediation's.
    pub fn with_phase(self, phase: &str) -> Option<String> {
        match self {
            EntryId::Remediation {
                incident,
                cycle,
                cause,
                action,
                ..
            } => Some(
                EntryId::Remediation {
                    incident,
                    cycle,
                    cause,
                    action,
                    phase: phase.to_string(),
                }
                .text(),
            ),
            _ => None,
        }
    }

    /// Reads a stored id back. Ids that name an incident are recognised by their second segment;
    /// anything else is a delivery step (the delivery id may itself contain `/`). `None` for
    /// text with no `/` at all, which no writer produces.
    pub fn parse(s: &str) -> Option<EntryId> {
        if let Some((head, rest)) = s.split_once('/') {
            if head.starts_with("INC-") {
                if let Some(id) = parse_incident_form(IncidentId(head.to_string()), rest) {
                    return Some(id);
                }
            }
        }
        let (delivery, step) = s.rsplit_once('/')?;
        (!delivery.is_empty() && !step.is_empty()).then(|| EntryId::Delivery {
            delivery: delivery.to_string(),
            step: step.to_string(),
        })
    }
}

fn parse_incident_form(incident: IncidentId, rest: &str) -> Option<EntryId> {
    let (kind, rest) = rest.split_once('/')?;
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    match kind {
        "diagnosis" => {
            let (cycle, rest) = match rest.strip_prefix('r').and_then(|r| r.split_once('/')) {
                Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                    (n.parse().ok()?, rest)
                }
                _ => (0, rest),
            };
            let (severity, step) = rest.split_once('/')?;
            Some(EntryId::Diagnosis {
                incident,
                cycle,
                severity: nonempty(severity)?,
                step: nonempty(step)?,
            })
        }
        "remediate" => {
            // `r{cycle}/cause/action/phase`, or `cause/action/phase` for cycle 0 (no segment
            // of the old form has a `/`, so four segments are always the cycle form)
            let parts: Vec<&str> = rest.split('/').collect();
            let (cycle, cause, action, phase) = match parts.as_slice() {
                [c, cause, action, phase] => {
                    let n = c
                        .strip_prefix('r')
                        .filter(|n| !n.is_empty() && n.chars().all(|d| d.is_ascii_digit()))?;
                    (n.parse().ok()?, *cause, *action, *phase)
                }
                [cause, action, phase] => (0, *cause, *action, *phase),
                _ => return None,
            };
            Some(EntryId::Remediation {
                incident,
                cycle,
                cause: nonempty(cause)?,
                action: nonempty(action)?,
                phase: nonempty(phase)?,
            })
        }
        "resolve" => {
            let (cycle, step) = rest.split_once('/')?;
            Some(EntryId::Resolution {
                incident,
                cycle: cycle.parse().ok()?,
                step: nonempty(step)?,
            })
        }
        "sweeper" => {
            let (kind, key) = rest.split_once('/')?;
            let (key, paged) = match key.strip_suffix("/paged") {
                Some(k) => (k, true),
                None => (key, false),
            };
            Some(EntryId::Sweeper {
                incident,
                kind: SweepKind::parse(kind)?,
                key: nonempty(key)?,
                paged,
            })
        }
        "ack" => Some(EntryId::Ack {
            incident,
            cycle: rest.parse().ok()?,
        }),
        "note" => Some(EntryId::Note {
            incident,
            digest: nonempty(rest)?,
        }),
        "refused" => Some(EntryId::Refused {
            incident,
            digest: nonempty(rest)?,
        }),
        _ => None,
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryId::Delivery { delivery, step } => write!(f, "{delivery}/{step}"),
            EntryId::Diagnosis {
                incident,
                cycle: 0,
                severity,
                step,
            } => write!(f, "{incident}/diagnosis/{severity}/{step}"),
            EntryId::Diagnosis {
                incident,
                cycle,
                severity,
                step,
            } => write!(f, "{incident}/diagnosis/r{cycle}/{severity}/{step}"),
            EntryId::Remediation {
                incident,
                cycle: 0,
                cause,
                action,
                phase,
            } => write!(f, "{incident}/remediate/{cause}/{action}/{phase}"),
            EntryId::Remediation {
                incident,
                cycle,
                cause,
                action,
                phase,
            } => write!(f, "{incident}/remediate/r{cycle}/{cause}/{action}/{phase}"),
            EntryId::Resolution {
                incident,
                cycle,
                step,
            } => write!(f, "{incident}/resolve/{cycle}/{step}"),
            EntryId::Sweeper {
                incident,
                kind,
                key,
                paged,
            } => {
                write!(f, "{incident}/sweeper/{}/{key}", kind.as_str())?;
                if *paged {
                    f.write_str("/paged")?;
                }
                Ok(())
            }
            EntryId::Ack { incident, cycle } => write!(f, "{incident}/ack/{cycle}"),
            EntryId::Note { incident, digest } => write!(f, "{incident}/note/{digest}"),
            EntryId::Refused { incident, digest } => write!(f, "{incident}/refused/{digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inc() -> IncidentId {
        IncidentId("INC-20260314-143500-3f9a0c21".into())
    }

    #[test]
    fn every_form_reads_back_as_written_and_as_the_current_release_wrote_it() {
        let i = inc();
        let cases = [
            (
                EntryId::Delivery {
                    delivery: "b9b4574f-8c0e".into(),
                    step: "alarm-fired".into(),
                },
                "b9b4574f-8c0e/alarm-fired",
            ),
            (
                EntryId::Diagnosis {
                    incident: i.clone(),
                    cycle: 0,
                    severity: "SEV2".into(),
                    step: "query/errors".into(),
                },
                "INC-20260314-143500-3f9a0c21/diagnosis/SEV2/query/errors",
            ),
            (
                EntryId::Diagnosis {
                    incident: i.clone(),
                    cycle: 2,
                    severity: "SEV1".into(),
                    step: "completed".into(),
                },
                "INC-20260314-143500-3f9a0c21/diagnosis/r2/SEV1/completed",
            ),
            (
                EntryId::Remediation {
                    incident: i.clone(),
                    cycle: 0,
                    cause: "bad-deployment".into(),
                    action: "ecs-rollback".into(),
                    phase: "awaiting-approval".into(),
                },
                "INC-20260314-143500-3f9a0c21/remediate/bad-deployment/ecs-rollback/awaiting-approval",
            ),
            (
                EntryId::Remediation {
                    incident: i.clone(),
                    cycle: 3,
                    cause: "bad-deployment".into(),
                    action: "ecs-rollback".into(),
                    phase: "requested".into(),
                },
                "INC-20260314-143500-3f9a0c21/remediate/r3/bad-deployment/ecs-rollback/requested",
            ),
            (
                EntryId::Resolution {
                    incident: i.clone(),
                    cycle: 1,
                    step: "partial/api-5xx/1773500100000".into(),
                },
                "INC-20260314-143500-3f9a0c21/resolve/1/partial/api-5xx/1773500100000",
            ),
            (
                EntryId::Sweeper {
                    incident: i.clone(),
                    kind: SweepKind::NotRecovered,
                    key: "1773500100000".into(),
                    paged: true,
                },
                "INC-20260314-143500-3f9a0c21/sweeper/not-recovered/1773500100000/paged",
            ),
            (
                EntryId::Ack {
                    incident: i.clone(),
                    cycle: 0,
                },
                "INC-20260314-143500-3f9a0c21/ack/0",
            ),
            (
                EntryId::Note {
                    incident: i.clone(),
                    digest: "00ff00ff00ff00ff".into(),
                },
                "INC-20260314-143500-3f9a0c21/note/00ff00ff00ff00ff",
            ),
        ];
        for (id, text) in cases {
            assert_eq!(id.to_string(), text);
            assert_eq!(EntryId::parse(text), Some(id), "{text}");
        }
        // a drill's delivery id carries `#step`; an SNS one may be anything without a newline
        assert_eq!(
            EntryId::parse("msg-1#step2/paged"),
            Some(EntryId::Delivery {
                delivery: "msg-1#step2".into(),
                step: "paged".into()
            })
        );
        assert_eq!(EntryId::parse("no-slash"), None);
    }

    proptest! {
        #[test]
        fn remediation_ids_round_trip(cycle in 0u32..40, cause in "[a-z][a-z0-9-]{0,20}", action in "ecs-[a-z]{1,10}", phase in "[a-z][a-z-]{0,20}") {
            let id = EntryId::Remediation { incident: inc(), cycle, cause, action, phase };
            prop_assert_eq!(EntryId::parse(&id.to_string()), Some(id));
        }

        #[test]
        fn parsing_never_panics(s in ".{0,80}") {
            let _ = EntryId::parse(&s);
        }
    }
}
