//! The trust boundary for pipeline events: what a function does with an envelope before any
//! stage acts on it. An envelope that is not one of Firebreak's own events (another `source`, an
//! unknown `detail-type`, a detail that does not read) is refused: nothing acts on it, it is not
//! retried, and when it names an incident that exists the refusal goes on that incident's
//! timeline so the responders see that someone tried.

use crate::model::entry_id::EntryId;
use crate::model::incident::{fnv1a, IncidentId};
use crate::model::pipeline::Event;
use crate::model::timeline::{detail, TimelineEntry};
use crate::ports::{Clock, IncidentStore};
use crate::Error;

/// What became of an envelope.
#[derive(Debug, Clone, PartialEq)]
// One per delivery, matched at once: boxing the event would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Admission {
    /// One of Firebreak's own events: the stage may act on it.
    Admitted(Event),
    /// Not acted on; `recorded_on` is the incident whose timeline says so, when it named one.
    Refused {
        reason: String,
        recorded_on: Option<IncidentId>,
    },
}

/// Reads `envelope` as a pipeline event, or refuses it (recording the refusal on the incident it
/// names, if that incident exists).
///
/// # Errors
/// Store errors while recording a refusal (the delivery may then be retried; the refusal entry
/// is idempotent).
pub async fn admit<S: IncidentStore, K: Clock>(
    store: &S,
    clock: &K,
    envelope: &serde_json::Value,
) -> Result<Admission, Error> {
    let reason = match Event::from_envelope(envelope) {
        Ok(event) => return Ok(Admission::Admitted(event)),
        Err(e) => e.to_string(),
    };
    let what = envelope
        .get("detail-type")
        .and_then(|d| d.as_str())
        .unwrap_or("an event without a detail-type")
        .to_string();
    let from = envelope
        .get("source")
        .and_then(|s| s.as_str())
        .map(str::to_string);
    tracing::warn!(what = %what, source = ?from, reason = %reason, "pipeline event refused");
    let named = envelope
        .pointer("/detail/incident_id")
        .and_then(|v| v.as_str())
        .and_then(|s| IncidentId::parse(s).ok());
    let Some(id) = named else {
        return Ok(Admission::Refused {
            reason,
            recorded_on: None,
        });
    };
    if store.get(&id).await?.is_none() {
        return Ok(Admission::Refused {
            reason,
            recorded_on: None,
        });
    }
    let entry = refusal_entry(&id, clock, &what, from, &reason, &envelope.to_string());
    store.append(&id, &[entry]).await?;
    Ok(Admission::Refused {
        reason,
        recorded_on: Some(id),
    })
}

/// The `refused` entry for something that changed nothing on incident `id`. Its id is a digest
/// of `key` (what arrived), so the same thing refused twice is recorded once.
pub fn refusal_entry<K: Clock>(
    id: &IncidentId,
    clock: &K,
    what: &str,
    from: Option<String>,
    reason: &str,
    key: &str,
) -> TimelineEntry {
    TimelineEntry::of(
        EntryId::Refused {
            incident: id.clone(),
            digest: format!("{:016x}", fnv1a(key.as_bytes())),
        }
        .text(),
        clock.now(),
        detail::Refused {
            what: what.to_string(),
            from,
            reason: reason.to_string(),
        },
        format!("Refused {what}: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{InMemoryIncidentStore, SimClock};
    use crate::model::incident::Incident;
    use crate::model::timeline::{Detail, EntryKind};
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::time::Duration;

    const ID: &str = "INC-20260314-143500-a1b2c3d4";

    async fn store_with_incident() -> InMemoryIncidentStore {
        let s = InMemoryIncidentStore::new();
        let at = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
        let i = Incident::open(
            IncidentId(ID.into()),
            "prod/articles-api",
            crate::model::severity::Severity::Sev2,
            "articles-api-5xx",
            at,
            at,
        );
        s.open(&i, &[], Duration::from_secs(1800)).await.unwrap();
        s
    }

    fn recovered(source: &str) -> serde_json::Value {
        json!({
            "source": source,
            "detail-type": "Alarm Recovered",
            "detail": {
                "incident_id": ID, "service": "prod/articles-api",
                "alarm_name": "articles-api-5xx", "recovered_at": "2099-01-01T00:00:00Z"
            }
        })
    }

    #[tokio::test]
    async fn an_envelope_from_another_source_is_refused_and_recorded_on_the_incident_it_names() {
        let s = store_with_incident().await;
        let clock = SimClock::new(Utc.with_ymd_and_hms(2026, 3, 14, 14, 40, 0).unwrap());
        let a = admit(&s, &clock, &recovered("attacker")).await.unwrap();
        let Admission::Refused { reason, recorded_on } = a else {
            panic!("admitted a forged envelope")
        };
        assert!(reason.contains("\"attacker\" is not \"firebreak\""), "{reason}");
        assert_eq!(recorded_on, Some(IncidentId(ID.into())));
        let t = s.timeline(&IncidentId(ID.into())).await.unwrap();
        let refused: Vec<_> = t.iter().filter(|e| e.kind() == EntryKind::Refused).collect();
        assert_eq!(refused.len(), 1);
        assert!(matches!(refused[0].detail(), Detail::Refused(r) if r.from.as_deref() == Some("attacker")));
        // the same envelope again: one entry
        admit(&s, &clock, &recovered("attacker")).await.unwrap();
        let t = s.timeline(&IncidentId(ID.into())).await.unwrap();
        assert_eq!(t.iter().filter(|e| e.kind() == EntryKind::Refused).count(), 1);
    }

    #[tokio::test]
    async fn firebreaks_own_event_is_admitted_and_unknown_shapes_are_refused() {
        let s = store_with_incident().await;
        let clock = SimClock::new(Utc.with_ymd_and_hms(2026, 3, 14, 14, 40, 0).unwrap());
        assert!(matches!(
            admit(&s, &clock, &recovered("firebreak")).await.unwrap(),
            Admission::Admitted(Event::Recovered(_))
        ));
        for bad in [
            json!({"detail-type": "Alarm Recovered", "detail": {}}),
            json!({"source": "firebreak", "detail-type": "Remediation Forced", "detail": {"incident_id": ID}}),
            json!({"source": "firebreak", "detail-type": "Alarm Recovered", "detail": {"incident_id": ID}}),
            json!({"source": "firebreak", "detail-type": "Alarm Recovered", "detail": {"incident_id": "INC-20990101-000000-00000000"}}),
        ] {
            assert!(
                matches!(admit(&s, &clock, &bad).await.unwrap(), Admission::Refused { .. }),
                "{bad}"
            );
        }
    }
}
