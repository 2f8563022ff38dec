//! What people do to an incident from the CLI besides resolving it: acknowledge the page, add a
//! note. Both are idempotent steps on the timeline; the name of the person goes into the entry's
//! detail (and the incident's `acknowledged_by`), never into the postmortem.

use crate::model::entry_id::EntryId;
use crate::model::incident::{fnv1a, IncidentId};
use crate::model::timeline::{detail, EntryKind, TimelineEntry};
use crate::ports::update::{Saved, Update};
use crate::ports::{IncidentStore, PointerChange, StoreError};
use crate::Error;
use chrono::{DateTime, Utc};

/// The longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// What `acknowledge` did.
#[derive(Debug, Clone, PartialEq)]
pub enum AckOutcome {
    Acknowledged,
    /// Someone acknowledged it before; nothing changed.
    AlreadyAcknowledged {
        by: Option<String>,
        at: DateTime<Utc>,
    },
}

/// Checks a person's name as given with `--by`.
pub fn validate_person(by: &str) -> Result<&str, Error> {
    let t = by.trim();
    if t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control) {
        return Err(Error::invalid(
            "--by",
            format!("{by:?} is not a name (1 to 128 printable characters)"),
        ));
    }
    Ok(t)
}

/// Reads an incident, [`StoreError::NotFound`] when there is none.
pub async fn load<S: IncidentStore>(
    store: &S,
    id: &IncidentId,
) -> Result<crate::model::incident::Incident, Error> {
    store
        .get(id)
        .await?
        .ok_or_else(|| Error::Store(StoreError::NotFound(id.clone())))
}

/// Acknowledges the incident's page as `by` at `now`: sets `acknowledged_at`/`acknowledged_by`
/// once and records `acknowledged` (event id `<incident>/ack/<reopened>`).
///
/// # Errors
/// [`Error::Invalid`] for a bad name, [`StoreError::NotFound`] for an unknown incident, store
/// failures, and [`StoreError::Conflict`] when the incident kept changing.
pub async fn acknowledge<S: IncidentStore>(
    store: &S,
    id: &IncidentId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<AckOutcome, Error> {
    let by = validate_person(by)?;
    let mut up = Update::new(store, id);
    loop {
        let read = up.read().await?;
        if let Some(at) = read.acknowledged_at {
            return Ok(AckOutcome::AlreadyAcknowledged {
                by: read.acknowledged_by.clone(),
                at,
            });
        }
        let mut next = read.clone();
        next.acknowledge(by, now);
        let entry = TimelineEntry::new(
            EntryId::Ack {
                incident: id.clone(),
                cycle: read.reopened,
            }
            .text(),
            now,
            EntryKind::Acknowledged,
            "Acknowledged",
        )
        .with_detail(detail::By { by: by.to_string() });
        match up.save(&read, &mut next, PointerChange::Keep, &[entry]).await? {
            Saved::Saved => return Ok(AckOutcome::Acknowledged),
            // the next read shows who acknowledged it
            Saved::Conflict | Saved::AlreadyRecorded(_) => continue,
        }
    }
}

/// [`acknowledge`], then "Incident Acknowledged" on the bus so the on-call tools hear of it
/// (PagerDuty `acknowledge`, the webhook). The event is put again when it was acknowledged
/// before (a retry after the bus failed); the oncall stage sends nothing twice. The bus's
/// answer comes back beside the outcome: the acknowledgement stands either way, and the caller
/// decides (the CLI warns, the chat function fails the press so SQS delivers it again).
///
/// # Errors
/// As [`acknowledge`].
pub async fn acknowledge_and_tell<S: IncidentStore, B: crate::ports::EventBus>(
    store: &S,
    bus: &B,
    id: &IncidentId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(AckOutcome, Result<(), crate::ports::PortError>), Error> {
    let outcome = acknowledge(store, id, by, now).await?;
    let inc = load(store, id).await?;
    let event = crate::model::pipeline::Event::Acknowledged(crate::model::pipeline::IncidentAcknowledged {
        incident_id: id.clone(),
        by: inc.acknowledged_by.clone().unwrap_or_else(|| by.to_string()),
        cycle: inc.reopened,
    });
    let told = bus.put(&event.to_pipeline()).await;
    Ok((outcome, told))
}

/// Adds a note by `by` at `now`. The summary is the text; the author goes into the detail. The
/// event id digests author, text and time, so repeating the same command at the same instant
/// records it once. Returns the entry and whether it was new.
///
/// # Errors
/// [`Error::Invalid`] for an empty or overlong text or a bad name, [`StoreError::NotFound`] for an
/// unknown incident, store failures.
pub async fn add_note<S: IncidentStore>(
    store: &S,
    id: &IncidentId,
    by: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(TimelineEntry, bool), Error> {
    let by = validate_person(by)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid("note", "is empty"));
    }
    let n = text.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(Error::invalid(
            "note",
            format!("is {n} characters long; at most {MAX_NOTE_CHARS} are accepted"),
        ));
    }
    let digest = fnv1a(format!("{by}\u{0}{text}\u{0}{}", now.to_rfc3339()).as_bytes());
    let entry = TimelineEntry::new(
        EntryId::Note {
            incident: id.clone(),
            digest: format!("{digest:016x}"),
        }
        .text(),
        now,
        EntryKind::Note,
        text,
    )
    .with_detail(detail::Note {
        by: Some(by.to_string()),
        ..detail::Note::default()
    });
    let added = store.append(id, std::slice::from_ref(&entry)).await?;
    Ok((entry, added == 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::InMemoryIncidentStore;
    use crate::ports::IncidentStore;
    use crate::report::metrics::tests::{at, incident};

    async fn store_with_incident() -> (InMemoryIncidentStore, IncidentId) {
        let s = InMemoryIncidentStore::new();
        let i = incident();
        s.open(&i, &[], std::time::Duration::from_secs(60)).await.unwrap();
        (s, i.id)
    }

    #[tokio::test]
    async fn acknowledging_twice_keeps_the_first() {
        let (s, id) = store_with_incident().await;
        let r = acknowledge(&s, &id, "alice", at(14, 40, 0)).await.unwrap();
        assert_eq!(r, AckOutcome::Acknowledged);
        let r = acknowledge(&s, &id, "bob", at(14, 41, 0)).await.unwrap();
        assert_eq!(
            r,
            AckOutcome::AlreadyAcknowledged {
                by: Some("alice".into()),
                at: at(14, 40, 0)
            }
        );
        let i = s.get(&id).await.unwrap().unwrap();
        assert_eq!(i.acknowledged_at, Some(at(14, 40, 0)));
        let t = s.timeline(&id).await.unwrap();
        assert_eq!(
            t.iter().filter(|e| e.kind() == EntryKind::Acknowledged).count(),
            1
        );
        assert_eq!(t[0].detail().by(), Some("alice"));
    }

    #[tokio::test]
    async fn unknown_incident_and_bad_input_are_typed_errors() {
        let (s, _) = store_with_incident().await;
        let missing = IncidentId("INC-20260101-000000-0000".into());
        let e = acknowledge(&s, &missing, "alice", at(14, 40, 0))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Store(StoreError::NotFound(ref i)) if *i == missing),
            "{e}"
        );
        let e = add_note(&s, &missing, "alice", "hi", at(14, 40, 0))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Store(StoreError::NotFound(_))), "{e}");
        let (s, id) = store_with_incident().await;
        let e = add_note(&s, &id, "alice", "  ", at(14, 40, 0)).await.unwrap_err();
        assert!(e.to_string().contains("note"), "{e}");
        let e = add_note(&s, &id, "", "text", at(14, 40, 0)).await.unwrap_err();
        assert!(e.to_string().contains("--by"), "{e}");
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        assert!(add_note(&s, &id, "a", &long, at(14, 40, 0)).await.is_err());
    }

    #[tokio::test]
    async fn notes_are_recorded_once_per_command() {
        let (s, id) = store_with_incident().await;
        let (e, new) = add_note(&s, &id, "alice", "pool raised to 20", at(14, 55, 0))
            .await
            .unwrap();
        assert!(new);
        assert_eq!(e.summary, "pool raised to 20");
        let (_, new) = add_note(&s, &id, "alice", "pool raised to 20", at(14, 55, 0))
            .await
            .unwrap();
        assert!(!new);
        let (_, new) = add_note(&s, &id, "alice", "pool raised to 20", at(14, 56, 0))
            .await
            .unwrap();
        assert!(new);
        assert_eq!(s.timeline(&id).await.unwrap().len(), 2);
    }
}
