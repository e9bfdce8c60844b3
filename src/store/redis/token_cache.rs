//! A Redis cache of access-token records in front of the SQL store (`REDIS_URL` on the sql
//! backend), so resource servers introspecting the same token again and again do not each cost a
//! database query. The database stays the only copy: a cache entry can always be dropped, and
//! every failure here falls back to the database.
//!
//! Revocation must never be hidden by the cache. Before the database revokes anything, a marker
//! is written: `P cache:revoked:token:{hash}`, `… :grant:{grant_id}` or `… :user:{user_id}`. A
//! cached record is served only if no marker covers it, checked in the same script that reads
//! it, so an entry written by a read that raced the revocation is refused too. Markers outlive
//! every entry that could predate them; while a user's marker lives, none of their tokens is
//! served from the cache (comparing issue and revocation times would trust the clocks of two
//! instances to agree). If a marker cannot be written (Redis unreachable), the revocation goes ahead in
//! the database and a cached entry may be served until it expires, at most the cache lifetime.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::Script;
use async_trait::async_trait;

use super::{backend, connection, token_record, RedisHash};
use crate::store::token_cache::{Revocation, TokenRecordCache};
use crate::store::{StoreResult, TokenRecord, UnixTime};

/// ARGV: prefix, token hash. Returns the cached record's field/value pairs, or nothing when it is
/// not cached or a revocation marker covers it.
static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local P, hash = ARGV[1], ARGV[2]
local fields = redis.call('HGETALL', P .. 'cache:token:' .. hash)
if #fields == 0 then return fields end
local f = {}
for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
local function revoked(kind, id)
  return id and redis.call('EXISTS', P .. 'cache:revoked:' .. kind .. ':' .. id) == 1
end
if revoked('token', hash) or revoked('grant', f['grant_id']) or revoked('user', f['user_id']) then
  return {}
end
return fields
"#,
    )
});

#[derive(Clone)]
pub struct TokenCache {
    conn: ConnectionManager,
    prefix: String,
    /// How long an entry may live.
    ttl: Duration,
}

impl TokenCache {
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> StoreResult<Self> {
        Ok(TokenCache {
            conn: connection(url).await?,
            prefix: prefix.to_string(),
            ttl,
        })
    }
}

#[async_trait]
impl TokenRecordCache for TokenCache {
    /// The cached record of a live token, unless a revocation marker covers it.
    async fn get(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.conn.clone();
        let pairs: Vec<String> = LOOKUP
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(token_hash)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        if pairs.is_empty() {
            return Ok(None);
        }
        RedisHash::from_pairs(&pairs).token(token_hash).map(Some)
    }

    async fn put(&self, token: &TokenRecord, now: UnixTime) -> StoreResult<()> {
        let left = token.expires_at.saturating_sub(now);
        if !token.is_active(now) || left <= 0 {
            return Ok(());
        }
        let seconds = (left as u64).min(self.ttl.as_secs()).max(1);
        let key = format!("{}cache:token:{}", self.prefix, token.token_hash);
        let mut conn = self.conn.clone();
        ::redis::pipe()
            .atomic()
            .del(&key)
            .hset_multiple(&key, &token_record(token).fields)
            .expire(&key, seconds as i64)
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }

    async fn evict(&self, token_hashes: &[String]) -> StoreResult<()> {
        if token_hashes.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = token_hashes
            .iter()
            .map(|hash| format!("{}cache:token:{hash}", self.prefix))
            .collect();
        let mut conn = self.conn.clone();
        ::redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }

    /// Writes the marker `revocation` is named by.
    async fn revoke(&self, revocation: Revocation<'_>) -> StoreResult<()> {
        let (kind, id) = match revocation {
            Revocation::Token(hash) => ("token", hash),
            Revocation::Grant(id) => ("grant", id),
            Revocation::User(id) => ("user", id),
        };
        let key = format!("{}cache:revoked:{kind}:{id}", self.prefix);
        // An entry read before the marker may be written just after it; it lives at most `ttl`.
        let marker_life = self.ttl.as_secs() + 60;
        let mut conn = self.conn.clone();
        ::redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .arg("EX")
            .arg(marker_life)
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }
}
