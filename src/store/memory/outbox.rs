//! The in-memory outbox: events appended under the same lock as the change they report. Nothing
//! can read an in-memory audit trail, so a delivered event is dropped at once, and at most
//! [`MAX_EVENTS`] are kept (the oldest go first).

use super::{Data, MemoryStore};
use crate::store::events::{self, NewEvent, OutboxEvent};
use crate::store::*;

/// Events kept at most: a day of heavy provisioning without a reachable webhook.
const MAX_EVENTS: usize = 10_000;

pub(super) struct StoredEvent {
    event: NewEvent,
    attempts: u32,
    last_error: Option<String>,
    next_attempt_at: UnixTime,
    dead: bool,
}

impl StoredEvent {
    fn outbox_event(&self) -> OutboxEvent {
        OutboxEvent {
            event: self.event.clone(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
        }
    }
}

impl Data {
    /// Appends `event`, due at once (the SQL `insert_event`).
    pub(super) fn record_event(&mut self, event: NewEvent) {
        if self.events_muted {
            return;
        }
        if self.outbox.len() >= MAX_EVENTS {
            if let Some(dropped) = self.outbox.pop_front() {
                tracing::warn!(event_id = %dropped.event.id, "in-memory outbox full; oldest event dropped");
            }
        }
        self.outbox.push_back(StoredEvent {
            next_attempt_at: event.occurred_at,
            event,
            attempts: 0,
            last_error: None,
            dead: false,
        });
    }

    /// The event `id`, if its current claim is the one that ends at `claimed_until`.
    fn claimed_event(&mut self, id: &str, claimed_until: UnixTime) -> Option<&mut StoredEvent> {
        self.outbox
            .iter_mut()
            .find(|stored| stored.event.id == id && stored.next_attempt_at == claimed_until)
    }

    /// Drops up to `batch` events that occurred before `before`; returns how many.
    pub(super) fn purge_events(&mut self, before: UnixTime, batch: usize) -> usize {
        let mut purged = 0;
        self.outbox.retain(|stored| {
            let drop = purged < batch && stored.event.occurred_at < before;
            purged += usize::from(drop);
            !drop
        });
        purged
    }
}

impl MemoryStore {
    /// Records an event of a change made elsewhere (the hybrid store's Redis half).
    pub fn record_event(&self, event: NewEvent) -> StoreResult<()> {
        self.data()?.record_event(event);
        Ok(())
    }
}

#[async_trait::async_trait]
impl OutboxStore for MemoryStore {
    async fn log_out(
        &self,
        id_hash: &str,
        user_id: &str,
        sid: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut data = self.data()?;
        let key = (ArtifactKind::Session.as_str(), id_hash.to_string());
        if data.artifacts.remove(&key).is_none() {
            return Ok(false);
        }
        data.record_event(events::user_logged_out(user_id, sid, now));
        Ok(true)
    }

    async fn claim_events(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let mut data = self.data()?;
        Ok(data
            .outbox
            .iter_mut()
            .filter(|stored| !stored.dead && stored.next_attempt_at <= now)
            .take(limit as usize)
            .map(|stored| {
                stored.next_attempt_at = lease_until;
                stored.attempts += 1;
                stored.outbox_event()
            })
            .collect())
    }

    async fn event_delivered(
        &self,
        id: &str,
        claimed_until: UnixTime,
        _now: UnixTime,
    ) -> StoreResult<()> {
        let mut data = self.data()?;
        if data.claimed_event(id, claimed_until).is_some() {
            data.outbox.retain(|stored| stored.event.id != id);
        }
        Ok(())
    }

    async fn event_failed(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
        _now: UnixTime,
    ) -> StoreResult<()> {
        if let Some(stored) = self.data()?.claimed_event(id, claimed_until) {
            stored.last_error = Some(error.to_string());
            match retry_at {
                Some(at) => stored.next_attempt_at = at,
                None => stored.dead = true,
            }
        }
        Ok(())
    }

    async fn dead_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        let data = self.data()?;
        Ok(data
            .outbox
            .iter()
            .rev()
            .filter(|stored| stored.dead)
            .take(limit as usize)
            .map(StoredEvent::outbox_event)
            .collect())
    }
}
