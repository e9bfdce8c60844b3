//! The in-memory outbox: events appended under the same lock as the change they report.

use super::{Data, MemoryStore};
use crate::store::events::{self, NewEvent, OutboxEvent};
use crate::store::*;

pub(super) struct StoredEvent {
    event: NewEvent,
    attempts: u32,
    last_error: Option<String>,
    next_attempt_at: UnixTime,
    delivered: bool,
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

    fn pending(&self) -> bool {
        !self.delivered && !self.dead
    }
}

impl Data {
    /// Appends `event`, due at once (the SQL `insert_event`).
    pub(super) fn record_event(&mut self, event: NewEvent) {
        self.outbox.push(StoredEvent {
            next_attempt_at: event.occurred_at,
            event,
            attempts: 0,
            last_error: None,
            delivered: false,
            dead: false,
        });
    }

    fn stored_event(&mut self, id: &str) -> Option<&mut StoredEvent> {
        self.outbox.iter_mut().find(|stored| stored.event.id == id)
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
            .filter(|stored| stored.pending() && stored.next_attempt_at <= now)
            .take(limit as usize)
            .map(|stored| {
                stored.next_attempt_at = lease_until;
                stored.outbox_event()
            })
            .collect())
    }

    async fn event_delivered(&self, id: &str, _now: UnixTime) -> StoreResult<()> {
        if let Some(stored) = self.data()?.stored_event(id) {
            stored.delivered = true;
        }
        Ok(())
    }

    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<UnixTime>,
        _now: UnixTime,
    ) -> StoreResult<()> {
        if let Some(stored) = self.data()?.stored_event(id) {
            stored.attempts += 1;
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
