//! Passkeys in Redis, for the hybrid backend: every instance sees a registration at once, and
//! the counter check of a use is one script, so two instances accept one assertion once.
//!
//! Layout: `P passkey:{credential_id}` is a hash per passkey (`user_id`, `name`, `credential`,
//! `sign_count`, `created_at`, `last_used_at`); `P user-passkeys:{user}` lists a user's credential
//! ids scored by `created_at`. Neither expires.

use std::sync::LazyLock;

use ::redis::Script;
use async_trait::async_trait;

use super::{RedisHash, RedisStore};
use crate::store::{PasskeyRecord, PasskeyStore, StoreError, StoreResult, UnixTime};

fn script(body: &str) -> Script {
    Script::new(&format!(
        r#"local P = ARGV[1]
local function passkey(id) return P .. 'passkey:' .. id end
local function of_user(user) return P .. 'user-passkeys:' .. user end
{body}"#
    ))
}

/// Registers passkey `ARGV[2]` of user `ARGV[3]` (name, credential, sign_count, created_at:
/// `ARGV[4..7]`); 0 if the credential id is taken.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local key = passkey(ARGV[2])
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 'user_id', ARGV[3], 'name', ARGV[4], 'credential', ARGV[5],
  'sign_count', ARGV[6], 'created_at', ARGV[7])
redis.call('ZADD', of_user(ARGV[3]), ARGV[7], ARGV[2])
return 1
"#,
    )
});

/// The passkeys of user `ARGV[2]`, oldest first, each as its hash's field-value pairs after its id.
static OF_USER: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local found = {}
for _, id in ipairs(redis.call('ZRANGE', of_user(ARGV[2]), 0, -1)) do
  local fields = redis.call('HGETALL', passkey(id))
  if #fields > 0 then
    table.insert(fields, 1, id)
    table.insert(found, fields)
  end
end
return found
"#,
    )
});

/// Records a use of passkey `ARGV[2]` leaving credential `ARGV[3]` and counter `ARGV[4]` at
/// `ARGV[5]`, if the counter grew or both are 0.
static USE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local key = passkey(ARGV[2])
local stored = tonumber(redis.call('HGET', key, 'sign_count'))
local count = tonumber(ARGV[4])
if not stored or not (stored < count or (stored == 0 and count == 0)) then return 0 end
redis.call('HSET', key, 'credential', ARGV[3], 'sign_count', ARGV[4], 'last_used_at', ARGV[5])
return 1
"#,
    )
});

/// Removes passkey `ARGV[3]` if it is user `ARGV[2]`'s.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local key = passkey(ARGV[3])
if redis.call('HGET', key, 'user_id') ~= ARGV[2] then return 0 end
redis.call('DEL', key)
redis.call('ZREM', of_user(ARGV[2]), ARGV[3])
return 1
"#,
    )
});

/// Removes every passkey of user `ARGV[2]`; how many.
static DELETE_ALL: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local ids = redis.call('ZRANGE', of_user(ARGV[2]), 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', passkey(id)) end
redis.call('DEL', of_user(ARGV[2]))
return #ids
"#,
    )
});

fn passkey_from(reply: Vec<String>) -> StoreResult<PasskeyRecord> {
    let Some((credential_id, fields)) = reply.split_first() else {
        return Err(StoreError::Backend("an empty passkey reply".into()));
    };
    let stored = RedisHash::from_pairs(fields);
    Ok(PasskeyRecord {
        credential_id: credential_id.clone(),
        user_id: stored.text("user_id")?,
        name: stored.text("name")?,
        credential: stored.text("credential")?,
        sign_count: stored.int("sign_count")? as u32,
        created_at: stored.int("created_at")?,
        last_used_at: stored.opt_int("last_used_at")?,
    })
}

impl RedisStore {
    /// Removes every passkey of the user (who is being deleted).
    pub async fn delete_passkeys(&self, user_id: &str) -> StoreResult<()> {
        let mut call = self.call(&DELETE_ALL);
        call.arg(user_id);
        self.run::<i64>(&call).await?;
        Ok(())
    }
}

#[async_trait]
impl PasskeyStore for RedisStore {
    /// The caller has checked the user exists (users live in the hybrid backend's directory).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        let mut call = self.call(&INSERT);
        call.arg(&passkey.credential_id)
            .arg(&passkey.user_id)
            .arg(&passkey.name)
            .arg(&passkey.credential)
            .arg(passkey.sign_count)
            .arg(passkey.created_at);
        match self.run::<i64>(&call).await? {
            1 => Ok(()),
            _ => Err(StoreError::Conflict("passkey".into())),
        }
    }

    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let mut call = self.call(&OF_USER);
        call.arg(user_id);
        let replies: Vec<Vec<String>> = self.run(&call).await?;
        replies.into_iter().map(passkey_from).collect()
    }

    async fn use_passkey(
        &self,
        credential_id: &str,
        credential: &str,
        sign_count: u32,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut call = self.call(&USE);
        call.arg(credential_id)
            .arg(credential)
            .arg(sign_count)
            .arg(now);
        Ok(self.run::<i64>(&call).await? == 1)
    }

    async fn delete_passkey(&self, user_id: &str, credential_id: &str) -> StoreResult<bool> {
        let mut call = self.call(&DELETE);
        call.arg(user_id).arg(credential_id);
        Ok(self.run::<i64>(&call).await? == 1)
    }
}
