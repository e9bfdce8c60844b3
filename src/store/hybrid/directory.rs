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
//! - Events are recorded by the instance that made the change, not by those replaying it.
//! - Clients are each process's own (from the seed file), so a consent may name a client this
//!   instance has not loaded yet: the copy's consents do not reference its clients.
//!
//! The log is not compacted: it grows with administrative changes (not with sign-ins or tokens).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::store::redis::LogReply;
use crate::store::{
    ConsentStore, Group, GroupStore, RedisStore, SqlStore, StoreError, StoreResult, UnixTime,
    Update, User, UserOrigin, UserStore,
};

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
                    return outcome;
                }
                LogReply::Behind(entries) => self.apply_entries(position, &entries).await?,
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
