//! The one way a stage changes an incident: read it, change a copy, save the copy on condition
//! that nobody saved since the read; on a conflict, read again and decide again, after a
//! jittered pause ([`super::retry`]), a bounded number of times. The stage never sets
//! `version`: [`Update::save`] keeps the store's optimistic lock.
//!
//! ```ignore
//! let mut up = Update::new(store, id);
//! loop {
//!     let read = up.read().await?;          // Err(Conflict) once the attempts are spent
//!     let mut next = read.clone();
//!     next.acknowledge(by, now);            // any async work may happen here
//!     match up.save(&read, &mut next, PointerChange::Keep, &entries).await? {
//!         Saved::Saved => return Ok(next),
//!         Saved::Conflict => continue,
//!         Saved::AlreadyRecorded(_) => return Ok(read),
//!     }
//! }
//! ```

use super::retry::{may_retry, pause};
use super::{IncidentStore, PointerChange, StoreError};
use crate::model::incident::{Incident, IncidentId};
use crate::model::timeline::TimelineEntry;
use crate::Error;

/// How a save ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Written; `next` is what is stored now.
    Saved,
    /// Someone saved the incident since it was read: read again and decide again.
    Conflict,
    /// An entry of the change is already recorded (this step was done before, by another
    /// invocation or an earlier delivery); nothing was written. Its event id.
    AlreadyRecorded(String),
}

/// One read-modify-write of one incident (see the module comment).
#[derive(Debug)]
pub struct Update<'s, S> {
    store: &'s S,
    id: IncidentId,
    attempt: usize,
    seed: Option<Incident>,
}

impl<'s, S: IncidentStore> Update<'s, S> {
    pub fn new(store: &'s S, id: &IncidentId) -> Update<'s, S> {
        Update {
            store,
            id: id.clone(),
            attempt: 0,
            seed: None,
        }
    }

    /// Starts from an incident the caller has just read some other way (by service, from an
    /// open that found it): the first [`Update::read`] returns it without reading again.
    pub fn from_read(store: &'s S, read: Incident) -> Update<'s, S> {
        Update {
            store,
            id: read.id.clone(),
            attempt: 0,
            seed: Some(read),
        }
    }

    /// The incident as stored now: on the first call (or the seed), else after a pause.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; store failures; [`StoreError::Conflict`] (retryable) once
    /// the reads the deadline allows (or [`super::retry::CONFLICT_ATTEMPTS`]) were each
    /// followed by a conflict.
    pub async fn read(&mut self) -> Result<Incident, Error> {
        let attempt = self.attempt;
        self.attempt += 1;
        if attempt > 0 && !may_retry(attempt - 1) {
            return Err(StoreError::Conflict(self.id.clone()).into());
        }
        if let Some(seed) = self.seed.take() {
            return Ok(seed);
        }
        if attempt > 0 {
            pause(attempt - 1).await;
        }
        self.store
            .get(&self.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(self.id.clone()).into())
    }

    /// Saves `next` (a changed copy of `read`) with the entries and pointer change, on
    /// condition that the stored version is still `read`'s; sets `next.version`.
    ///
    /// # Errors
    /// Store failures other than a conflict or an already recorded entry.
    pub async fn save(
        &mut self,
        read: &Incident,
        next: &mut Incident,
        pointer: PointerChange,
        entries: &[TimelineEntry],
    ) -> Result<Saved, Error> {
        next.version = read.version + 1;
        match self.store.save(next, read.version, pointer, entries).await {
            Ok(()) => Ok(Saved::Saved),
            Err(StoreError::Conflict(_)) => Ok(Saved::Conflict),
            Err(StoreError::Duplicate(event_id)) => Ok(Saved::AlreadyRecorded(event_id)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::InMemoryIncidentStore;
    use crate::model::severity::Severity;
    use crate::model::timeline::EntryKind;
    use crate::ports::retry::CONFLICT_ATTEMPTS;
    use chrono::{TimeZone, Utc};
    use std::sync::Arc;

    fn incident() -> Incident {
        let t = Utc.with_ymd_and_hms(2026, 3, 14, 14, 35, 0).unwrap();
        Incident::open(IncidentId("INC-1".into()), "prod/a", Severity::Sev2, "t", t, t)
    }

    async fn add_word(store: &InMemoryIncidentStore, i: usize) -> Result<usize, Error> {
        let mut up = Update::new(store, &IncidentId("INC-1".into()));
        let mut tries = 0;
        loop {
            let read = up.read().await?;
            tries += 1;
            tokio::task::yield_now().await; // let the writers interleave
            let mut next = read.clone();
            next.title.push_str(&format!(" {i}"));
            let e = TimelineEntry::new(format!("w{i}"), read.opened_at, EntryKind::Note, "n");
            match up.save(&read, &mut next, PointerChange::Keep, &[e]).await? {
                Saved::Saved => return Ok(tries),
                Saved::Conflict => continue,
                Saved::AlreadyRecorded(id) => panic!("{id} recorded twice"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_all_land_and_nobody_sets_the_version() {
        let store = Arc::new(InMemoryIncidentStore::new());
        let inc = incident();
        store
            .open(&inc, &[], std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { add_word(&store, i).await })
            })
            .collect();
        let mut tries = 0;
        for t in tasks {
            tries += t.await.unwrap().unwrap();
        }
        let got = store.get(&inc.id).await.unwrap().unwrap();
        assert_eq!(got.version, 21, "one version per saved change");
        assert_eq!(got.title.split(' ').count(), 21, "{}", got.title);
        assert_eq!(store.timeline(&inc.id).await.unwrap().len(), 20);
        assert!(tries >= 20);
    }

    #[tokio::test]
    async fn a_recorded_step_is_reported_and_attempts_are_bounded() {
        let store = InMemoryIncidentStore::new();
        let inc = incident();
        store
            .open(&inc, &[], std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let step = TimelineEntry::new("step", inc.opened_at, EntryKind::Note, "n");
        let mut up = Update::new(&store, &inc.id);
        let read = up.read().await.unwrap();
        let mut next = read.clone();
        assert_eq!(
            up.save(&read, &mut next, PointerChange::Keep, std::slice::from_ref(&step))
                .await
                .unwrap(),
            Saved::Saved
        );
        assert_eq!(next.version, read.version + 1);
        // the same step again, from a fresh read: already recorded
        let mut up = Update::new(&store, &inc.id);
        let read = up.read().await.unwrap();
        let mut again = read.clone();
        assert_eq!(
            up.save(&read, &mut again, PointerChange::Keep, &[step])
                .await
                .unwrap(),
            Saved::AlreadyRecorded("step".into())
        );
        // a stale read conflicts, and reading stops after CONFLICT_ATTEMPTS
        let mut stale = inc.clone();
        assert_eq!(
            up.save(&inc, &mut stale, PointerChange::Keep, &[]).await.unwrap(),
            Saved::Conflict
        );
        let mut up = Update::new(&store, &inc.id);
        up.attempt = CONFLICT_ATTEMPTS - 1;
        assert!(up.read().await.is_ok(), "the last attempt still reads");
        assert!(matches!(
            up.read().await,
            Err(Error::Store(StoreError::Conflict(_)))
        ));
        assert!(matches!(
            Update::new(&store, &IncidentId("INC-2".into())).read().await,
            Err(Error::Store(StoreError::NotFound(_)))
        ));
    }
}
