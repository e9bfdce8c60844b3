//! Users, groups and consents of a hybrid deployment with Redis, coherent across instances
//! (security review finding 7).
//!
//! Every change is appended to one log in Redis (`P directory`), and every instance applies the
//! log, in its order, to its own in-memory SQLite copy, which then answers reads as the SQL
//! backend does (SCIM filters, sorting and paging included). Changes are applied, never their
//! results: the writes are deterministic, so an instance replaying the log reaches the state,
//! and the outcome (done, stale, conflict), that the writer reached.
//!
//! - A write appends its change only if the log holds exactly what this instance has applied,
//!   else catches up and tries again: the log's order decides between two instances' writes (one
//!   ETag wins, one user name is taken once), exactly as one instance's lock would.
//! - A read first asks Redis for entries it has not applied (one round trip, empty when up to
//!   date), so a read on B right after a write on A sees it.
//! - A restart replays the whole log: what was written at run time outlives the process.
//! - Events are recorded by the instance that made the change, not by those replaying it: in
//!   its copy's outbox, in the change's transaction, and from there moved to the outbox every
//!   instance shares in Redis right after (or, if Redis failed just then, at the next change or
//!   claim).
//! - Clients are each process's own (from the seed file), so a consent may name a client this
//!   instance has not loaded yet: the copy's consents do not reference its clients.
//!
//! The log is not compacted: it grows with administrative changes (not with sign-ins or tokens).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::clock;
use crate::store::events::Channel;
use crate::store::redis::LogReply;
use crate::store::{
    ConsentStore, Group, GroupStore, OutboxStore, RedisStore, SqlStore, StoreError, StoreResult,
    UnixTime, Update, User, UserOrigin, UserStore,
};

/// Events moved to Redis per claim of the copy's outbox.
const FORWARD_BATCH: u32 = 100;

/// One change, with every input its write takes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub(super) enum Change {
    InsertUser {
        user: User,
        #[serde(default)]
        origin: UserOrigin,
    },
    UpdateUser {
        user: User,
        expected_version: i64,
        now: UnixTime,
    },
    DeleteUser {
        id: String,
        now: UnixTime,
    },
    InsertGroup {
        group: Group,
    },
    UpdateGroup {
        group: Group,
        expected_version: i64,
        now: UnixTime,
    },
    DeleteGroup {
        id: String,
        now: UnixTime,
    },
    Consent {
        user_id: String,
        client_id: String,
        scope: String,
        now: UnixTime,
    },
}

/// What a change's write answers.
pub(super) enum Outcome {
    Done,
    Updated(Update),
    Deleted(bool),
}

impl Outcome {
    pub(super) fn done(self) -> StoreResult<()> {
        match self {
            Outcome::Done => Ok(()),
            _ => Err(mismatch()),
        }
    }

    pub(super) fn update(self) -> StoreResult<Update> {
        match self {
            Outcome::Updated(update) => Ok(update),
            _ => Err(mismatch()),
        }
    }

    pub(super) fn deleted(self) -> StoreResult<bool> {
        match self {
            Outcome::Deleted(deleted) => Ok(deleted),
            _ => Err(mismatch()),
        }
    }
}

fn mismatch() -> StoreError {
    StoreError::Backend("a directory change answered another kind of outcome".into())
}

impl Change {
    pub(super) async fn apply(&self, to: &SqlStore) -> StoreResult<Outcome> {
        Ok(match self {
            Change::InsertUser { user, origin } => to
                .insert_user(user, *origin)
                .await
                .map(|()| Outcome::Done)?,
            Change::UpdateUser {
                user,
                expected_version,
                now,
            } => Outcome::Updated(to.update_user(user, *expected_version, *now).await?),
            Change::DeleteUser { id, now } => Outcome::Deleted(to.delete_user(id, *now).await?),
            Change::InsertGroup { group } => {
                to.insert_group(group).await.map(|()| Outcome::Done)?
            }
            Change::UpdateGroup {
                group,
                expected_version,
                now,
            } => Outcome::Updated(to.update_group(group, *expected_version, *now).await?),
            Change::DeleteGroup { id, now } => Outcome::Deleted(to.delete_group(id, *now).await?),
            Change::Consent {
                user_id,
                client_id,
                scope,
                now,
            } => {
                to.record_consent(user_id, client_id, scope, *now).await?;
                Outcome::Done
            }
        })
    }
}

pub(super) struct Directory {
    /// The copy this instance reads, written with events for its own changes.
    local: SqlStore,
    /// The same copy, for other instances' changes: no events.
    replica: SqlStore,
    redis: Arc<RedisStore>,
    /// Which life of the log the copy follows, learnt at the first call.
    epoch: OnceLock<String>,
    /// How many log entries the copy holds, read without waiting for `applying`.
    applied: AtomicU64,
    /// Held while the copy changes, so entries apply one at a time and in order.
    applying: Mutex<()>,
}

impl Directory {
    pub(super) fn new(local: SqlStore, redis: Arc<RedisStore>) -> Self {
        Directory {
            replica: local.replica(),
            local,
            redis,
            epoch: OnceLock::new(),
            applied: AtomicU64::new(0),
            applying: Mutex::new(()),
        }
    }

    /// Brings the copy up to the log's end.
    pub(super) async fn catch_up(&self) -> StoreResult<()> {
        let seen = self.applied.load(Ordering::Acquire);
        let entries = self.redis.directory_since(seen, &self.epoch).await?;
        if entries.is_empty() {
            return Ok(());
        }
        let _applying = self.applying.lock().await;
        self.apply_entries(seen, &entries).await
    }

    /// Appends `change` to the log and applies it; answers what the write answers.
    pub(super) async fn write(&self, change: Change) -> StoreResult<Outcome> {
        let entry = serde_json::to_string(&change).map_err(|e| StoreError::Backend(e.into()))?;
        let _applying = self.applying.lock().await;
        loop {
            let position = self.applied.load(Ordering::Acquire);
            match self
                .redis
                .append_directory(position, &self.epoch, &entry)
                .await?
            {
                LogReply::Appended => {
                    let outcome = change.apply(&self.local).await;
                    self.applied.store(position + 1, Ordering::Release);
                    // The change is made: its events wait in the copy if Redis fails now.
                    if let Err(err) = self.forward_events().await {
                        tracing::warn!(error = %err, "events stay queued in memory for now");
                    }
                    return outcome;
                }
                LogReply::Behind(entries) => self.apply_entries(position, &entries).await?,
            }
        }
    }

    /// Moves what this instance's changes recorded in the copy's outbox to the shared outbox,
    /// marking each delivered once Redis holds it.
    pub(super) async fn forward_leftover_events(&self) -> StoreResult<()> {
        let _applying = self.applying.lock().await;
        self.forward_events().await
    }

    /// As [`Self::forward_leftover_events`]; the caller holds `applying`, so one forward runs at a
    /// time and none sends an event twice.
    async fn forward_events(&self) -> StoreResult<()> {
        // Every event the copy holds, whatever times its changes were given.
        let (all, claimed_until) = (UnixTime::MAX, UnixTime::MAX);
        loop {
            let batch = self
                .local
                .claim_events(Channel::Webhooks, all, claimed_until, FORWARD_BATCH)
                .await?;
            for claimed in &batch {
                self.redis.enqueue(&claimed.event).await?;
                let id = &claimed.event.id;
                self.local
                    .event_delivered(id, claimed_until, clock::now())
                    .await?;
            }
            if batch.len() < FORWARD_BATCH as usize {
                return Ok(());
            }
        }
    }

    /// Applies the entries that start at log position `from` and are not yet in the copy.
    /// The caller holds `applying`.
    async fn apply_entries(&self, from: u64, entries: &[String]) -> StoreResult<()> {
        for (position, entry) in (from..).zip(entries) {
            if position < self.applied.load(Ordering::Acquire) {
                continue;
            }
            let change: Change =
                serde_json::from_str(entry).map_err(|e| StoreError::Backend(e.into()))?;
            // The writer got the same outcome and reported it; a refused change is no change.
            let _ = change.apply(&self.replica).await;
            self.applied.store(position + 1, Ordering::Release);
        }
        Ok(())
    }
}
