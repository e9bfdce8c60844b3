//! Second factors in Redis, for the hybrid backend: every instance sees one enrollment, one set
//! of used time steps, recovery codes and attempt counts, and a restart loses none of them
//! (security review finding 7). The rules are those of the other backends, each write one Lua
//! script, so parallel attempts on two instances are counted as on one.
//!
//! Layout: `P totp:{user}` is a hash (`secret_sealed`, `confirmed` 0/1, `last_used_step`,
//! `failures`, `failures_since`, `consecutive_failures`); `P recovery:{user}` the set of the
//! user's recovery-code hashes. Neither expires.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use ::redis::Script;

use super::RedisStore;
use crate::store::{MfaAttempt, MfaLimit, StoreError, StoreResult, TotpRecord, UnixTime};

fn script(body: &str) -> Script {
    Script::new(&format!(
        "local P = ARGV[1]\nlocal totp, codes = P .. 'totp:' .. ARGV[2], P .. 'recovery:' .. ARGV[2]\n{body}"
    ))
}

/// A new pending seed `ARGV[3]`, replacing a pending one; 0 if the enrollment is confirmed.
static PUT_PENDING: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('HGET', totp, 'confirmed') == '1' then return 0 end
redis.call('HSET', totp, 'secret_sealed', ARGV[3], 'confirmed', 0, 'last_used_step', 0,
  'failures', 0, 'failures_since', 0, 'consecutive_failures', 0)
return 1
"#,
    )
});

/// Confirms the pending enrollment of seed `ARGV[3]` at step `ARGV[4]` with the recovery codes
/// `ARGV[5..]`.
static CONFIRM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local state = redis.call('HMGET', totp, 'confirmed', 'secret_sealed')
if state[1] ~= '0' or state[2] ~= ARGV[3] then return 0 end
redis.call('HSET', totp, 'confirmed', 1, 'last_used_step', ARGV[4], 'failures', 0)
redis.call('DEL', codes)
if #ARGV > 4 then redis.call('SADD', codes, unpack(ARGV, 5)) end
return 1
"#,
    )
});

/// Accepts step `ARGV[3]` once (RFC 6238 §5.2) and clears the counts.
static USE_STEP: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local state = redis.call('HMGET', totp, 'confirmed', 'last_used_step')
if state[1] ~= '1' or tonumber(state[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', totp, 'last_used_step', ARGV[3], 'failures', 0, 'consecutive_failures', 0)
return 1
"#,
    )
});

/// Uses up recovery code `ARGV[3]` and clears the counts.
static USE_RECOVERY: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
if redis.call('SREM', codes, ARGV[3]) == 0 then return 0 end
if redis.call('EXISTS', totp) == 1 then
  redis.call('HSET', totp, 'failures', 0, 'consecutive_failures', 0)
end
return 1
"#,
    )
});

/// Claims one attempt at `ARGV[3]` (now) under window start `ARGV[4]`, at most `ARGV[5]` per
/// window and `ARGV[6]` in a row: `{'allowed', failures, consecutive}`, `{'limited'}`,
/// `{'locked'}` or `{'none'}`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
local s = redis.call('HMGET', totp, 'confirmed', 'failures', 'failures_since', 'consecutive_failures')
if s[1] ~= '1' then return {'none'} end
local failures, since, consecutive = tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
if consecutive >= tonumber(ARGV[6]) then return {'locked'} end
if since < tonumber(ARGV[4]) then
  failures, since = 0, tonumber(ARGV[3])
elseif failures >= tonumber(ARGV[5]) then
  return {'limited'}
end
failures, consecutive = failures + 1, consecutive + 1
redis.call('HSET', totp, 'failures', failures, 'failures_since', since,
  'consecutive_failures', consecutive)
return {'allowed', tostring(failures), tostring(consecutive)}
"#,
    )
});

/// Removes the enrollment and the recovery codes; 1 if there was an enrollment.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    script(
        r#"
redis.call('DEL', codes)
return redis.call('DEL', totp)
"#,
    )
});

impl RedisStore {
    async fn mfa_script<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        user_id: &str,
        args: &[String],
    ) -> StoreResult<T> {
        let mut call = self.call(script);
        call.arg(user_id);
        for arg in args {
            call.arg(arg);
        }
        self.run(&call).await
    }

    /// A script that answers 1 for done and 0 for not.
    async fn mfa_flag(&self, script: &Script, user_id: &str, args: &[String]) -> StoreResult<bool> {
        let done: i64 = self.mfa_script(script, user_id, args).await?;
        Ok(done == 1)
    }

    pub async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>> {
        let Some(stored) = self.fields(&self.key("totp", user_id)).await? else {
            return Ok(None);
        };
        let count = |name| -> StoreResult<u32> { Ok(stored.int(name)? as u32) };
        Ok(Some(TotpRecord {
            secret_sealed: stored.text("secret_sealed")?,
            confirmed: stored.int("confirmed")? == 1,
            last_used_step: stored.int("last_used_step")?,
            failures: count("failures")?,
            failures_since: stored.int("failures_since")?,
            consecutive_failures: count("consecutive_failures")?,
        }))
    }

    /// Stores a pending seed; the caller has checked the user exists.
    pub async fn put_pending_totp(&self, user_id: &str, secret_sealed: &str) -> StoreResult<bool> {
        self.mfa_flag(&PUT_PENDING, user_id, &[secret_sealed.to_string()])
            .await
    }

    pub async fn confirm_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
        recovery_code_hashes: &[String],
    ) -> StoreResult<bool> {
        let distinct: BTreeSet<&String> = recovery_code_hashes.iter().collect();
        if distinct.len() != recovery_code_hashes.len() {
            return Err(StoreError::Backend("duplicate recovery code".into()));
        }
        let mut args = vec![secret_sealed.to_string(), step.to_string()];
        args.extend(recovery_code_hashes.iter().cloned());
        self.mfa_flag(&CONFIRM, user_id, &args).await
    }

    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        self.mfa_flag(&USE_STEP, user_id, &[step.to_string()]).await
    }

    pub async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        self.mfa_flag(&USE_RECOVERY, user_id, &[code_hash.to_string()])
            .await
    }

    pub async fn claim_mfa_attempt(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: &MfaLimit,
    ) -> StoreResult<MfaAttempt> {
        let args = [
            now.to_string(),
            limit.window_start.to_string(),
            limit.max.to_string(),
            limit.lock_after.to_string(),
        ];
        let reply: Vec<String> = self.mfa_script(&CLAIM, user_id, &args).await?;
        let number = |text: &String| {
            text.parse()
                .map_err(|_| StoreError::Backend(format!("claim reply {reply:?}").into()))
        };
        Ok(match reply.as_slice() {
            [status, failures, consecutive] if status == "allowed" => MfaAttempt::Allowed {
                failures: number(failures)?,
                consecutive: number(consecutive)?,
            },
            [status] if status == "limited" => MfaAttempt::Limited,
            [status] if status == "locked" => MfaAttempt::Locked,
            [status] if status == "none" => MfaAttempt::NotEnrolled,
            _ => return Err(StoreError::Backend(format!("claim reply {reply:?}").into())),
        })
    }

    pub async fn delete_mfa(&self, user_id: &str) -> StoreResult<bool> {
        self.mfa_flag(&DELETE, user_id, &[]).await
    }
}
