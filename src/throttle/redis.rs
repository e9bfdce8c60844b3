//! Throttle counters in Redis, shared by every instance. Each key has a sorted set of failure
//! times (the sliding window) and a lock key that expires with the lockout; scripts make each
//! step atomic and take the time from Redis, so instances with skewed clocks agree.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use super::Key;
use crate::store::{redis_connection, redis_failure as backend, StoreResult};

/// KEYS: lock keys. Returns the longest remaining lockout in milliseconds, 0 if none.
static LOCKED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local longest = 0
for _, lock in ipairs(KEYS) do
  longest = math.max(longest, redis.call('PTTL', lock))
end
return longest
"#,
    )
});

/// KEYS: pairs of (failure set, lock key). ARGV: a unique member, then per pair the window,
/// limit and lockout (milliseconds, count, milliseconds). Returns the longest lockout now
/// running, in milliseconds, 0 if none.
static RECORD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local longest = 0
for i = 1, #KEYS, 2 do
  local failures, lock = KEYS[i], KEYS[i + 1]
  local n = (i - 1) / 2 * 3
  local window, limit, lockout = tonumber(ARGV[n + 2]), tonumber(ARGV[n + 3]), tonumber(ARGV[n + 4])
  local left = redis.call('PTTL', lock)
  if left <= 0 then
    redis.call('ZREMRANGEBYSCORE', failures, '-inf', now - window)
    redis.call('ZADD', failures, now, ARGV[1])
    if redis.call('ZCARD', failures) >= limit then
      redis.call('DEL', failures)
      redis.call('SET', lock, '1', 'PX', lockout)
      left = lockout
    else
      redis.call('PEXPIRE', failures, window)
      left = 0
    end
  end
  longest = math.max(longest, left)
end
return longest
"#,
    )
});

pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisCounters {
    /// Every key starts with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Ok(RedisCounters {
            conn: redis_connection(url).await?,
            prefix: prefix.to_string(),
        })
    }

    /// The failure set and lock of a key, under one hash tag so they share a Redis Cluster slot.
    fn names(&self, key: &Key) -> (String, String) {
        let base = format!("{}throttle:{{{}}}", self.prefix, key.name);
        (format!("{base}:failures"), format!("{base}:lock"))
    }

    pub async fn locked(&self, keys: &[Key]) -> StoreResult<Option<Duration>> {
        let mut call = LOCKED.prepare_invoke();
        for key in keys {
            call.key(self.names(key).1);
        }
        self.run(&call).await
    }

    pub async fn record_failure(&self, keys: &[Key]) -> StoreResult<Option<Duration>> {
        let mut call = RECORD_FAILURE.prepare_invoke();
        call.arg(uuid::Uuid::new_v4().to_string());
        for key in keys {
            let (failures, lock) = self.names(key);
            call.key(failures).key(lock);
            call.arg(millis(key.rule.window))
                .arg(key.rule.max_failures)
                .arg(millis(key.rule.lockout));
        }
        self.run(&call).await
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    pub async fn clear(&self, key: &Key) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.names(key).0)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    pub async fn unlock(&self, key: &Key) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let (failures, lock) = self.names(key);
        redis::cmd("DEL")
            .arg(failures)
            .arg(lock)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Runs a script that answers a lockout in milliseconds (0 for none).
    async fn run(&self, call: &redis::ScriptInvocation<'_>) -> StoreResult<Option<Duration>> {
        let mut conn = self.conn.clone();
        let millis: i64 = call.invoke_async(&mut conn).await.map_err(backend)?;
        Ok((millis > 0).then(|| Duration::from_millis(millis as u64)))
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().max(1) as u64
}
