//! The directory log of the hybrid backend: every change to users, groups and consents, in the
//! order the instances agreed on, as one Redis list `P directory` of JSON entries. Each instance
//! applies the list to its own in-memory copy; see `store::hybrid::directory` for why a log.
//!
//! `P directory-epoch` names the list's life: made with the list's first use, it changes only if
//! Redis lost both (a restart without persistence, a flush), so an instance that applied entries
//! of the old list can tell, even once the new list has grown as long.

use std::sync::{LazyLock, OnceLock};

use ::redis::Script;

use super::RedisStore;
use crate::store::{StoreError, StoreResult};

/// With `ARGV[2]` the caller's position, `ARGV[3]` an epoch to start a new log with, `ARGV[4]`
/// the epoch the caller knows ('' before its first call) and `ARGV[5]` an entry to append if the
/// log holds exactly `ARGV[2]` entries: `{'appended', epoch}`, or `{'entries', epoch, …}` with
/// the entries from position `ARGV[2]` on (none when the caller is up to date), or `{'lost'}`.
static DIRECTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local log, epoch_key, at = ARGV[1] .. 'directory', ARGV[1] .. 'directory-epoch', tonumber(ARGV[2])
local epoch = redis.call('GET', epoch_key)
if not epoch then
  if at > 0 then return {'lost'} end
  epoch = ARGV[3]
  redis.call('SET', epoch_key, epoch)
end
if ARGV[4] ~= '' and ARGV[4] ~= epoch then return {'lost'} end
local len = redis.call('LLEN', log)
if len < at then return {'lost'} end
if len == at and ARGV[5] then
  redis.call('RPUSH', log, ARGV[5])
  return {'appended', epoch}
end
local reply = redis.call('LRANGE', log, at, -1)
table.insert(reply, 1, epoch)
table.insert(reply, 1, 'entries')
return reply
"#,
    )
});

/// What the log answered a caller that has applied its first `position` entries.
pub enum LogReply {
    /// The caller's entry is now at `position`.
    Appended,
    /// The entries from `position` on, which the caller has still to apply.
    Behind(Vec<String>),
}

impl RedisStore {
    /// The entries after the first `position` (none when the caller is up to date) of the log
    /// of `epoch` (learnt into it on the first call).
    pub async fn directory_since(
        &self,
        position: u64,
        epoch: &OnceLock<String>,
    ) -> StoreResult<Vec<String>> {
        match self.directory(position, epoch, None).await? {
            LogReply::Behind(entries) => Ok(entries),
            LogReply::Appended => Err(unexpected_reply()),
        }
    }

    /// Appends `entry` if the log holds exactly `position` entries, else answers those after.
    pub async fn append_directory(
        &self,
        position: u64,
        epoch: &OnceLock<String>,
        entry: &str,
    ) -> StoreResult<LogReply> {
        self.directory(position, epoch, Some(entry)).await
    }

    async fn directory(
        &self,
        position: u64,
        epoch: &OnceLock<String>,
        entry: Option<&str>,
    ) -> StoreResult<LogReply> {
        let mut call = self.call(&DIRECTORY);
        call.arg(position)
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(epoch.get().map_or("", String::as_str));
        if let Some(entry) = entry {
            call.arg(entry);
        }
        let mut reply: Vec<String> = self.run(&call).await?;
        let status = reply.first().cloned().unwrap_or_default();
        if status == "lost" {
            // Redis lost the log this process applied (a restart without persistence, a flush):
            // its copy holds changes Redis no longer has, so nothing can be read or written
            // consistently any more. Fail closed.
            return Err(StoreError::Unavailable(
                "the directory log in Redis is not the one this instance applied: Redis lost \
                 data; restart every instance"
                    .into(),
            ));
        }
        let Some(current) = reply.get(1).cloned() else {
            return Err(unexpected_reply());
        };
        // Kept from the first answer; a later one is the same, or the script said `lost`.
        let _ = epoch.set(current);
        match status.as_str() {
            "appended" => Ok(LogReply::Appended),
            "entries" => Ok(LogReply::Behind(reply.split_off(2))),
            _ => Err(unexpected_reply()),
        }
    }
}

fn unexpected_reply() -> StoreError {
    StoreError::Backend("unexpected directory log reply".into())
}
