//! The outbox table: events written inside the transactions of the changes they report, then
//! claimed, delivered or failed by the webhook dispatcher.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{backend, SqlStore};
use crate::store::events::{self, Channel, EventKind, NewEvent, OutboxEvent, StoredEvent};
use crate::store::*;

impl SqlStore {
    /// Writes `event` (due at once) with the caller's executor, normally its open transaction.
    /// A [`SqlStore::replica`] writes none.
    pub(super) async fn insert_event(
        &self,
        executor: impl sqlx::AnyExecutor<'_>,
        event: &NewEvent,
    ) -> StoreResult<()> {
        if !self.records_events {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO outbox (id, kind, data, occurred_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&event.id)
        .bind(event.kind.name())
        .bind(event.data.to_string())
        .bind(event.occurred_at)
        .execute(executor)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

const EVENT_COLUMNS: &str = "seq, id, kind, data, occurred_at, attempts, last_error";

fn event_from_row(row: &AnyRow) -> StoreResult<OutboxEvent> {
    StoredEvent {
        id: row.get("id"),
        kind: row.get("kind"),
        data: row.get("data"),
        occurred_at: row.get("occurred_at"),
        attempts: row.get::<i64, _>("attempts") as u32,
        last_error: row.get("last_error"),
    }
    .try_into()
}

#[async_trait::async_trait]
impl OutboxStore for SqlStore {
    async fn log_out(
        &self,
        id_hash: &str,
        user_id: &str,
        sid: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query("DELETE FROM artifacts WHERE kind = $1 AND id_hash = $2")
            .bind(ArtifactKind::Session.as_str())
            .bind(id_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_event(&mut *tx, &events::user_logged_out(user_id, sid, now))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn enqueue(&self, event: &NewEvent) -> StoreResult<()> {
        self.insert_event(&self.writer, event).await
    }

    async fn claim_events(
        &self,
        channel: Channel,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let mail = EventKind::Mail.name();
        let of_channel = match channel {
            Channel::Mail => format!("kind = '{mail}'"),
            Channel::Webhooks => format!("kind <> '{mail}'"),
        };
        // The outer condition repeats the inner one: on PostgreSQL, an instance that waited for
        // another's claim re-checks the row and skips it instead of claiming it twice.
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1
             WHERE seq IN (SELECT seq FROM outbox
                           WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $2
                             AND {of_channel}
                           ORDER BY seq LIMIT $3)
               AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $2
             RETURNING {EVENT_COLUMNS}"
        ))
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(backend)?;
        let mut claimed: Vec<(i64, OutboxEvent)> = rows
            .iter()
            .map(|row| Ok((row.get("seq"), event_from_row(row)?)))
            .collect::<StoreResult<_>>()?;
        claimed.sort_by_key(|(seq, _)| *seq);
        Ok(claimed.into_iter().map(|(_, event)| event).collect())
    }

    async fn event_delivered(
        &self,
        id: &str,
        claimed_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<()> {
        // A sent message's parts (with their single-use links) are not kept.
        let statement = format!(
            "UPDATE outbox SET delivered_at = $1,
                    data = CASE WHEN kind = '{}' THEN '{{}}' ELSE data END
             WHERE id = $2 AND next_attempt_at = $3",
            EventKind::Mail.name()
        );
        sqlx::query(&statement)
            .bind(now)
            .bind(id)
            .bind(claimed_until)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn event_failed(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (statement, at) = match retry_at {
            Some(at) => (
                "UPDATE outbox SET last_error = $1, next_attempt_at = $2
                 WHERE id = $3 AND next_attempt_at = $4",
                at,
            ),
            None => (
                "UPDATE outbox SET last_error = $1, dead_at = $2
                 WHERE id = $3 AND next_attempt_at = $4",
                now,
            ),
        };
        sqlx::query(statement)
            .bind(error)
            .bind(at)
            .bind(id)
            .bind(claimed_until)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn dead_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM outbox WHERE dead_at IS NOT NULL ORDER BY seq DESC LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(event_from_row).collect()
    }
}
