//! The outbox in Redis, for the hybrid backend: audit events and queued mail that every instance
//! shares, so a message queued by one instance (or by the CLI) is sent by whichever claims it
//! first, and neither a restart nor a crash loses it. The rules are the SQL outbox's: a claim is
//! a lease that counts an attempt, only the newest claim may report, a failure is retried when
//! due or buries the event, and the purge drops events after [`events::EVENT_RETENTION`].
//!
//! Layout: `P outbox:{id}` is a hash per event (`kind`, `data`, `occurred_at`, `channel`,
//! `attempts`, `last_error`, `seq`, the order it was written in from `P outbox-seq`, and `due`,
//! the time it may next be claimed, absent once dead). Per channel (`webhooks`, `mail`),
//! `P outbox-waiting:{channel}` scores pending events by `due`, and `P outbox-ready:{channel}`
//! by `seq` those a claim found due: a claim first moves what has come due from waiting to
//! ready, then leases the oldest written, so events go out in the order they were written, as
//! from the SQL table. `P outbox-dead` scores dead events by `seq`; `P outbox-written` every
//! event by `occurred_at`, for the purge. A delivered event is deleted, with a mail's sealed
//! parts.

use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::{retain_until, RedisStore};
use crate::store::events::{self, Channel, NewEvent, OutboxEvent, StoredEvent};
use crate::store::{ArtifactKind, ArtifactStore, OutboxStore, StoreError, StoreResult, UnixTime};

fn script(body: &str) -> Script {
    Script::new(&format!(
        r#"local P = ARGV[1]
local function event(id) return P .. 'outbox:' .. id end
local function waiting(channel) return P .. 'outbox-waiting:' .. channel end
local function ready(channel) return P .. 'outbox-ready:' .. channel end
local DEAD, WRITTEN = P .. 'outbox-dead', P .. 'outbox-written'

-- The reply row of one event: id, kind, data, occurred_at, attempts, last_error.
local function row(id)
  local f = redis.call('HMGET', event(id), 'kind', 'data', 'occurred_at', 'attempts', 'last_error')
  return {{id, f[1], f[2], f[3], f[4], f[5]}}
end
{body}"#
    ))
}

/// Queues event `ARGV[2]` (kind, data, occurred_at, channel: `ARGV[3..6]`), kept by Redis until
/// `ARGV[7]` at most. Once: an event queued again (a forward from the hybrid backend's copy that
/// was interrupted) is left as it is.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local key = event(ARGV[2])
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'kind', ARGV[3], 'data', ARGV[4], 'occurred_at', ARGV[5],
  'channel', ARGV[6], 'attempts', 0, 'due', ARGV[5], 'seq', redis.call('INCR', P .. 'outbox-seq'))
redis.call('EXPIREAT', key, ARGV[7])
redis.call('ZADD', waiting(ARGV[6]), ARGV[5], ARGV[2])
redis.call('ZADD', WRITTEN, ARGV[5], ARGV[2])
return 1
"#,
    )
});

/// Leases the `ARGV[5]` oldest written events of channel `ARGV[2]` due at `ARGV[3]` until
/// `ARGV[4]`, counting an attempt for each.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local waits, queue = waiting(ARGV[2]), ready(ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', waits, '-inf', ARGV[3])) do
  local seq = redis.call('HGET', event(id), 'seq')
  -- No seq: Redis dropped the event after its retention.
  if seq then redis.call('ZADD', queue, seq, id) end
  redis.call('ZREM', waits, id)
end
local claimed = {}
for _, id in ipairs(redis.call('ZRANGE', queue, 0, tonumber(ARGV[5]) - 1)) do
  redis.call('ZREM', queue, id)
  if redis.call('EXISTS', event(id)) == 1 then
    redis.call('HSET', event(id), 'due', ARGV[4])
    redis.call('HINCRBY', event(id), 'attempts', 1)
    redis.call('ZADD', waits, ARGV[4], id)
    table.insert(claimed, row(id))
  end
end
return claimed
"#,
    )
});

/// Settles event `ARGV[2]` if its newest claim runs until `ARGV[3]`: deleted (`ARGV[4]` empty),
/// retried at `ARGV[5]`, or dead at once (`ARGV[5]` empty), with the error `ARGV[4]`.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local id, key = ARGV[2], event(ARGV[2])
local f = redis.call('HMGET', key, 'due', 'channel', 'seq')
if f[1] ~= ARGV[3] then return 0 end
local waits = waiting(f[2])
if ARGV[4] == '' then
  redis.call('DEL', key)
  redis.call('ZREM', waits, id)
  redis.call('ZREM', WRITTEN, id)
elseif ARGV[5] ~= '' then
  redis.call('HSET', key, 'last_error', ARGV[4], 'due', ARGV[5])
  redis.call('ZADD', waits, ARGV[5], id)
else
  redis.call('HSET', key, 'last_error', ARGV[4])
  redis.call('HDEL', key, 'due')
  redis.call('ZREM', waits, id)
  redis.call('ZADD', DEAD, f[3], id)
end
return 1
"#,
    )
});

/// The `ARGV[2]` last written dead events, newest first.
static DEAD_EVENTS: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local dead = {}
for _, id in ipairs(redis.call('ZREVRANGE', DEAD, 0, tonumber(ARGV[2]) - 1)) do
  if redis.call('EXISTS', event(id)) == 1 then
    table.insert(dead, row(id))
  else
    redis.call('ZREM', DEAD, id)
  end
end
return dead
"#,
    )
});

/// Drops up to `ARGV[3]` events that occurred before `ARGV[2]`; how many it dropped.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ids = redis.call('ZRANGEBYSCORE', WRITTEN, '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[3])
local sets = {DEAD, WRITTEN}
for _, channel in ipairs({'webhooks', 'mail'}) do
  table.insert(sets, waiting(channel))
  table.insert(sets, ready(channel))
end
for _, id in ipairs(ids) do
  redis.call('DEL', event(id))
  for _, set in ipairs(sets) do redis.call('ZREM', set, id) end
end
return #ids
"#,
    )
});

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Webhooks => "webhooks",
        Channel::Mail => "mail",
    }
}

/// Reads a reply row of the scripts' `row`.
fn outbox_event(row: Vec<Option<String>>) -> StoreResult<OutboxEvent> {
    let corrupt = || StoreError::Backend(format!("outbox row {row:?}").into());
    let [Some(id), Some(kind), Some(data), Some(occurred_at), Some(attempts), last_error] =
        <[Option<String>; 6]>::try_from(row.clone()).map_err(|_| corrupt())?
    else {
        return Err(corrupt());
    };
    StoredEvent {
        id,
        kind,
        data,
        occurred_at: occurred_at.parse().map_err(|_| corrupt())?,
        attempts: attempts.parse().map_err(|_| corrupt())?,
        last_error,
    }
    .try_into()
}

impl RedisStore {
    async fn outbox_rows(
        &self,
        call: &::redis::ScriptInvocation<'_>,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let rows: Vec<Vec<Option<String>>> = self.run(call).await?;
        rows.into_iter().map(outbox_event).collect()
    }

    /// Settles a claimed event (see [`SETTLE`]); a claim that is no longer the newest changes
    /// nothing.
    async fn settle(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
    ) -> StoreResult<()> {
        let mut call = self.call(&SETTLE);
        call.arg(id).arg(claimed_until).arg(error);
        call.arg(retry_at.map(|at| at.to_string()).unwrap_or_default());
        self.run::<i64>(&call).await?;
        Ok(())
    }

    /// Drops a batch of events older than the retention; how many.
    pub(super) async fn purge_events(&self, now: UnixTime, batch: u32) -> StoreResult<u64> {
        let mut call = self.call(&PURGE);
        call.arg(now - events::EVENT_RETENTION).arg(batch);
        self.run(&call).await
    }
}

#[async_trait]
impl OutboxStore for RedisStore {
    /// The session ends in Redis first and its event follows, not in one transaction with it: an
    /// instance dying in between ends the session without the event.
    async fn log_out(
        &self,
        id_hash: &str,
        user_id: &str,
        sid: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let ended = self.delete_artifact(ArtifactKind::Session, id_hash).await?;
        if ended {
            self.enqueue(&events::user_logged_out(user_id, sid, now))
                .await?;
        }
        Ok(ended)
    }

    async fn enqueue(&self, event: &NewEvent) -> StoreResult<()> {
        let mut call = self.call(&ENQUEUE);
        call.arg(&event.id)
            .arg(event.kind.name())
            .arg(event.data.to_string())
            .arg(event.occurred_at)
            .arg(channel_name(event.kind.channel()))
            .arg(retain_until(event.occurred_at + events::EVENT_RETENTION));
        self.run::<i64>(&call).await?;
        Ok(())
    }

    async fn claim_events(
        &self,
        channel: Channel,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut call = self.call(&CLAIM);
        call.arg(channel_name(channel))
            .arg(now)
            .arg(lease_until)
            .arg(limit);
        self.outbox_rows(&call).await
    }

    async fn event_delivered(
        &self,
        id: &str,
        claimed_until: UnixTime,
        _now: UnixTime,
    ) -> StoreResult<()> {
        self.settle(id, claimed_until, "", None).await
    }

    async fn event_failed(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
        _now: UnixTime,
    ) -> StoreResult<()> {
        // An empty error would read as delivered.
        let error = if error.is_empty() { "failed" } else { error };
        self.settle(id, claimed_until, error, retry_at).await
    }

    async fn dead_events(&self, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut call = self.call(&DEAD_EVENTS);
        call.arg(limit);
        self.outbox_rows(&call).await
    }
}
