//! The directory log of the hybrid backend: every change to users, groups and consents, in the
//! order the instances agreed on, as one Redis list `P directory` of JSON entries. Each instance
//! applies the list to its own in-memory copy; see `store::hybrid::directory` for why a log.

use std::sync::LazyLock;

use ::redis::Script;

use super::RedisStore;
use crate::store::{StoreError, StoreResult};

/// Appends `ARGV[3]` (if given) when the log holds exactly `ARGV[2]` entries. Answers
/// `{'appended'}`, or `{'entries', …}` with the entries from position `ARGV[2]` on (none when
/// the caller is up to date), or `{'lost'}` when the log is shorter than the caller has applied.
static DIRECTORY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local log, at = ARGV[1] .. 'directory', tonumber(ARGV[2])
local len = redis.call('LLEN', log)
if len < at then return {'lost'} end
if len == at and ARGV[3] then
  redis.call('RPUSH', log, ARGV[3])
  return {'appended'}
end
local reply = redis.call('LRANGE', log, at, -1)
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
    /// The entries after the first `position` (none when the caller is up to date).
    pub async fn directory_since(&self, position: u64) -> StoreResult<Vec<String>> {
        match self.directory(position, None).await? {
            LogReply::Behind(entries) => Ok(entries),
            LogReply::Appended => unreachable_reply(),
        }
    }

    /// Appends `entry` if the log holds exactly `position` entries, else answers those after.
    pub async fn append_directory(&self, position: u64, entry: &str) -> StoreResult<LogReply> {
        self.directory(position, Some(entry)).await
    }

    async fn directory(&self, position: u64, entry: Option<&str>) -> StoreResult<LogReply> {
        let mut call = self.call(&DIRECTORY);
        call.arg(position);
        if let Some(entry) = entry {
            call.arg(entry);
        }
        let mut reply: Vec<String> = self.run(&call).await?;
        match reply.first().map(String::as_str) {
            Some("appended") => Ok(LogReply::Appended),
            Some("entries") => Ok(LogReply::Behind(reply.split_off(1))),
            // Redis restarted without its data (or was flushed): this process's copy holds changes
            // Redis no longer has, so nothing can be written or read consistently. Fail closed.
            Some("lost") => Err(StoreError::Unavailable(
                "the directory log in Redis is shorter than this instance has applied: Redis lost \
                 data; restart every instance"
                    .into(),
            )),
            _ => unreachable_reply(),
        }
    }
}

fn unreachable_reply<T>() -> StoreResult<T> {
    Err(StoreError::Backend("unexpected directory log reply".into()))
}
