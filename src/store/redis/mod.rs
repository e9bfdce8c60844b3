//! Redis half of the hybrid backend: codes, access and refresh tokens, artifacts (sessions,
//! pending interactions), signing keys and the outbox, shared by every instance pointed at the
//! same Redis.
//! It behaves exactly as [`super::SqlStore`] does for these traits: expiry is decided by
//! comparing a record's `expires_at` with the `now` the caller passes, never by Redis TTLs.
//!
//! Key layout, under the configurable prefix `P`:
//! - `P code:{hash}`, `P token:{hash}`, `P refresh:{hash}`, `P artifact:{kind}:{id_hash}`:
//!   one hash per record, one field per column; an absent field is SQL's NULL. `consumed_at`,
//!   `revoked_at`, `rotated_at`, `replaced_by` and `grace_used` are the mutable state.
//! - `P jti:{jti}`: the token hash, so a jti is unique as in SQL.
//! - `P expiry:{code|token|refresh|artifact}`: sorted sets of record ids scored by `expires_at`,
//!   which the purge walks.
//! - `P grant-{codes|tokens|refresh}:{grant_id}`, `P user-{codes|tokens|refresh|artifacts}:
//!   {user_id}`, `P session-{codes|refresh}:{session_id}`: sets of record ids, for
//!   `revoke_grant`, [`RedisStore::end_user_access`] and `grants_of_session`.
//! - `P signing-keys` (hash kid → JSON), `P signing-key-order` (sorted set, kid by insertion
//!   number), `P signing-key-seq` (the insertion counter).
//! - `P refresh-reuse`: a list of JSON audit entries.
//! - `P directory`: the hybrid backend's log of user, group and consent changes (`directory.rs`).
//! - `P totp:{user}`, `P recovery:{user}`: second factors (`mfa.rs`); `P passkey:{id}`,
//!   `P user-passkeys:{user}`: passkeys (`passkeys.rs`).
//! - `P outbox:{id}`, `P outbox-due:{channel}`, `P outbox-dead`, `P outbox-written`: audit events
//!   and queued mail (`outbox.rs`).
//!
//! Records also get a Redis expiry, [`EXPIRY_MARGIN`] after they expire (or after now, whichever
//! is later), so an instance that never purges still does not fill Redis; the purge normally
//! removes them first. Signing keys and the reuse audit never expire; events expire
//! [`EXPIRY_MARGIN`] after their retention.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, Script, ScriptInvocation};
use async_trait::async_trait;

use super::{
    ArtifactKind, ArtifactStore, AuthCode, CodeRedemption, CodeStore, KeyStore, PurgeStore,
    RefreshTokenRecord, RefreshTokenStore, Rotation, SigningKeyRecord, StoreError, StoreResult,
    TokenRecord, TokenStore, UnixTime,
};
use crate::clock;

mod directory;
mod mfa;
mod outbox;
mod passkeys;
mod scripts;
mod token_cache;

pub use directory::LogReply;
pub use token_cache::TokenCache;
#[cfg(test)]
mod tests;

/// How long after `expires_at` Redis keeps a record by itself. It must exceed how long the purge
/// keeps expired codes (one access-token lifetime, so a late replay still revokes its grant), or
/// Redis would drop them first; a day covers any sensible token lifetime and a lagging purge.
const EXPIRY_MARGIN: UnixTime = 24 * 3600;

/// Latest Unix time Redis accepts for `EXPIREAT` without overflowing milliseconds, with room:
/// the end of year 9999.
const LATEST_EXPIRY: UnixTime = 253_402_300_799;

/// Each connection attempt gives up after this long, so a request during an outage fails with
/// [`StoreError::Unavailable`] instead of hanging.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// A command without an answer after this long fails (a server that stopped answering).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts after the first when (re)connecting. None: a retry waits a second or more (the
/// manager's backoff), and every request during an outage would wait with it; without, the
/// request fails at once and the next one tries to reconnect again.
const CONNECT_RETRIES: usize = 0;

#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself after the connection drops: the request that saw it fail gets an
    /// error, later ones wait for the new connection.
    conn: ConnectionManager,
    prefix: String,
}

/// A Redis error as a store error: lost or refused connections, timeouts and a server still
/// loading its data are [`StoreError::Unavailable`], anything else is the server's answer.
pub(crate) fn backend(err: ::redis::RedisError) -> StoreError {
    let unreachable = err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || matches!(
            err.kind(),
            ::redis::ErrorKind::BusyLoadingError | ::redis::ErrorKind::TryAgain
        );
    if unreachable {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Backend(Box::new(err))
    }
}

/// A stored record that does not decode: written by something else, or by a newer version.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("malformed record in Redis: {what}").into())
}

/// When Redis may drop a record that expires at `expires_at`. Counted from now when that is
/// later, so a record whose `expires_at` lies in the past (tests use fixed times) still lives
/// long enough for the comparisons against `now` to decide.
fn retain_until(expires_at: UnixTime) -> UnixTime {
    expires_at
        .max(clock::now())
        .saturating_add(EXPIRY_MARGIN)
        .min(LATEST_EXPIRY)
}

/// A record to store: its id and fields, in the layout the scripts' `insert` expects.
struct RecordToInsert {
    id: String,
    expires_at: UnixTime,
    fields: Vec<(&'static str, String)>,
}

impl RecordToInsert {
    fn new(id: impl Into<String>, expires_at: UnixTime) -> Self {
        RecordToInsert {
            id: id.into(),
            expires_at,
            fields: vec![("expires_at", expires_at.to_string())],
        }
    }

    fn put(mut self, name: &'static str, value: impl ToString) -> Self {
        self.fields.push((name, value.to_string()));
        self
    }

    /// `None` leaves the field out: the NULL of SQL.
    fn put_opt(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.put(name, value),
            None => self,
        }
    }

    fn put_list(self, name: &'static str, list: &[String]) -> Self {
        let json = serde_json::to_string(list).expect("a list of strings always serializes");
        self.put(name, json)
    }

    /// Appends id, expires_at, retain_until, wall-clock now and the field/value pairs.
    fn push_args(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .arg(&self.id)
            .arg(self.expires_at)
            .arg(retain_until(self.expires_at))
            .arg(clock::now());
        for (name, value) in &self.fields {
            invocation.arg(*name).arg(value);
        }
    }
}

fn code_record(code_hash: &str, code: &AuthCode) -> RecordToInsert {
    RecordToInsert::new(code_hash, code.expires_at)
        .put("grant_id", &code.grant_id)
        .put("client_id", &code.client_id)
        .put("user_id", &code.user_id)
        .put("redirect_uri", &code.redirect_uri)
        .put("scope", &code.scope)
        .put_opt("nonce", code.nonce.as_ref())
        .put("code_challenge", &code.code_challenge)
        .put("session_id", &code.session_id)
        .put("auth_time", code.auth_time)
        .put("acr", &code.acr)
        .put_list("amr", &code.amr)
}

/// As SQL's insert, the record's `revoked` flag is not stored: a new token is live.
fn token_record(token: &TokenRecord) -> RecordToInsert {
    RecordToInsert::new(&token.token_hash, token.expires_at)
        .put("jti", &token.jti)
        .put("grant_id", &token.grant_id)
        .put("client_id", &token.client_id)
        .put_opt("user_id", token.user_id.as_ref())
        .put("scope", &token.scope)
        .put("mfa_verified", u8::from(token.mfa_verified))
        .put_opt("acr", token.acr.as_ref())
        .put_list("amr", &token.amr)
        .put_opt("auth_time", token.auth_time)
        .put("issued_at", token.issued_at)
}

/// As SQL's insert, rotation and revocation state is not stored: a new refresh token is fresh.
fn refresh_record(token: &RefreshTokenRecord) -> RecordToInsert {
    RecordToInsert::new(&token.token_hash, token.expires_at)
        .put("family_id", &token.family_id)
        .put("client_id", &token.client_id)
        .put("user_id", &token.user_id)
        .put("scope", &token.scope)
        .put_opt("session_id", token.session_id.as_ref())
        .put("auth_time", token.auth_time)
        .put("acr", &token.acr)
        .put_list("amr", &token.amr)
        .put("issued_at", token.issued_at)
}

fn artifact_id(kind: ArtifactKind, id_hash: &str) -> String {
    format!("{}:{id_hash}", kind.as_str())
}

/// A record read back: its hash's fields.
struct RedisHash(HashMap<String, String>);

impl RedisHash {
    fn from_pairs(pairs: &[String]) -> Self {
        RedisHash(
            pairs
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        )
    }

    fn text(&self, name: &str) -> StoreResult<String> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| corrupt(format_args!("no field {name}")))
    }

    fn opt_text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn int(&self, name: &str) -> StoreResult<i64> {
        self.opt_int(name)?
            .ok_or_else(|| corrupt(format_args!("no field {name}")))
    }

    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.0
            .get(name)
            .map(|text| {
                text.parse()
                    .map_err(|_| corrupt(format_args!("{name} = {text:?}")))
            })
            .transpose()
    }

    /// A flag: `mfa_verified` is stored as 0 or 1, the state flags are present or absent.
    fn flag(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| v != "0")
    }

    fn list(&self, name: &str) -> StoreResult<Vec<String>> {
        serde_json::from_str(&self.text(name)?).map_err(|_| corrupt(format_args!("{name}")))
    }

    fn code(&self) -> StoreResult<AuthCode> {
        Ok(AuthCode {
            grant_id: self.text("grant_id")?,
            client_id: self.text("client_id")?,
            user_id: self.text("user_id")?,
            redirect_uri: self.text("redirect_uri")?,
            scope: self.text("scope")?,
            nonce: self.opt_text("nonce"),
            code_challenge: self.text("code_challenge")?,
            session_id: self.text("session_id")?,
            auth_time: self.int("auth_time")?,
            acr: self.text("acr")?,
            amr: self.list("amr")?,
            expires_at: self.int("expires_at")?,
        })
    }

    fn token(&self, token_hash: &str) -> StoreResult<TokenRecord> {
        Ok(TokenRecord {
            token_hash: token_hash.to_string(),
            jti: self.text("jti")?,
            grant_id: self.text("grant_id")?,
            client_id: self.text("client_id")?,
            user_id: self.opt_text("user_id"),
            scope: self.text("scope")?,
            mfa_verified: self.flag("mfa_verified"),
            acr: self.opt_text("acr"),
            amr: self.list("amr")?,
            auth_time: self.opt_int("auth_time")?,
            issued_at: self.int("issued_at")?,
            expires_at: self.int("expires_at")?,
            revoked: self.flag("revoked_at"),
        })
    }

    fn refresh(&self, token_hash: &str) -> StoreResult<RefreshTokenRecord> {
        Ok(RefreshTokenRecord {
            token_hash: token_hash.to_string(),
            family_id: self.text("family_id")?,
            client_id: self.text("client_id")?,
            user_id: self.text("user_id")?,
            scope: self.text("scope")?,
            session_id: self.opt_text("session_id"),
            auth_time: self.int("auth_time")?,
            acr: self.text("acr")?,
            amr: self.list("amr")?,
            issued_at: self.int("issued_at")?,
            expires_at: self.int("expires_at")?,
            rotated_at: self.opt_int("rotated_at")?,
            replaced_by: self.opt_text("replaced_by"),
            grace_used: self.flag("grace_used"),
            revoked: self.flag("revoked_at"),
        })
    }
}

/// A self-reconnecting connection to `url` (`redis://HOST:PORT/DB`) with the timeouts every Redis
/// user of Tessera shares: the store, the shared throttle and the token cache.
pub async fn connection(url: &str) -> StoreResult<ConnectionManager> {
    let client = ::redis::Client::open(url).map_err(backend)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECTION_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        .set_number_of_retries(CONNECT_RETRIES);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(backend)
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT/DB`). Every key starts with `prefix`, so several
    /// deployments (or tests) can share one server.
    pub async fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Ok(RedisStore {
            conn: connection(url).await?,
            prefix: prefix.to_string(),
        })
    }

    /// Cheap reachability check for `/readyz`.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Ends everything a user holds here, atomically: revokes their access and refresh tokens,
    /// burns their unredeemed codes and deletes their artifacts (sessions). The hybrid store
    /// calls it when the user is deactivated or deleted.
    pub async fn end_user_access(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        let mut call = self.call(&scripts::END_USER_ACCESS);
        call.arg(user_id).arg(now);
        self.run::<i64>(&call).await?;
        Ok(())
    }

    /// The name of the record `kind:id`, as the scripts' `k` builds it.
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    /// Appends an entry to the reuse audit (`P refresh-reuse`).
    async fn record_reuse(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        let entry = serde_json::json!({
            "family_id": family_id,
            "client_id": client_id,
            "user_id": user_id,
            "detected_at": now,
        });
        let mut conn = self.conn.clone();
        ::redis::cmd("RPUSH")
            .arg(format!("{}refresh-reuse", self.prefix))
            .arg(entry.to_string())
            .query_async::<i64>(&mut conn)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// An invocation of `script` with the prefix as its first argument.
    fn call<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        invocation
    }

    async fn run<T: FromRedisValue>(&self, invocation: &ScriptInvocation<'_>) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        invocation.invoke_async(&mut conn).await.map_err(backend)
    }

    /// Every field of the hash `key`; `None` if there is no such key.
    async fn fields(&self, key: &str) -> StoreResult<Option<RedisHash>> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok((!fields.is_empty()).then_some(RedisHash(fields)))
    }

    async fn insert(&self, kind: &str, record: &RecordToInsert) -> StoreResult<()> {
        let mut call = self.call(&scripts::INSERT);
        call.arg(kind);
        record.push_args(&mut call);
        self.run::<i64>(&call).await?;
        Ok(())
    }
}

fn rotation(claimed: bool) -> Rotation {
    if claimed {
        Rotation::Rotated
    } else {
        Rotation::Lost
    }
}

#[async_trait]
impl CodeStore for RedisStore {
    async fn insert_code(&self, code_hash: &str, code: &AuthCode) -> StoreResult<()> {
        self.insert("code", &code_record(code_hash, code)).await
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        let stored = self.fields(&self.key("code", code_hash)).await?;
        stored.map(|s| s.code()).transpose()
    }

    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        let mut call = self.call(&scripts::REDEEM_CODE);
        call.arg(code_hash).arg(now);
        let reply: Vec<String> = self.run(&call).await?;
        match reply.split_first() {
            Some((status, fields)) if status == "redeemed" => Ok(CodeRedemption::Redeemed(
                Box::new(RedisHash::from_pairs(fields).code()?),
            )),
            Some((status, [grant_id])) if status == "replay" => {
                Ok(CodeRedemption::AlreadyRedeemed {
                    grant_id: grant_id.clone(),
                })
            }
            Some((status, [])) if status == "invalid" => Ok(CodeRedemption::Invalid),
            _ => Err(corrupt(format_args!("redeem reply {reply:?}"))),
        }
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut call = self.call(&scripts::INSERT_TOKEN);
        call.arg(&token.jti);
        token_record(token).push_args(&mut call);
        self.run::<i64>(&call).await?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let stored = self.fields(&self.key("token", token_hash)).await?;
        stored.map(|s| s.token(token_hash)).transpose()
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        let mut call = self.call(&scripts::REVOKE_TOKEN);
        call.arg(token_hash).arg(now);
        self.run::<i64>(&call).await?;
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
        let mut call = self.call(&scripts::REVOKE_GRANT);
        call.arg(grant_id).arg(now);
        self.run(&call).await
    }
}

#[async_trait]
impl RefreshTokenStore for RedisStore {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.insert("refresh", &refresh_record(token)).await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let stored = self.fields(&self.key("refresh", token_hash)).await?;
        stored.map(|s| s.refresh(token_hash)).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        let mut call = self.call(&scripts::ROTATE_REFRESH);
        call.arg(old_hash).arg(now);
        refresh_record(new).push_args(&mut call);
        Ok(rotation(self.run(&call).await?))
    }

    async fn replace_successor(
        &self,
        old_hash: &str,
        rotated_since: UnixTime,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        let mut call = self.call(&scripts::REPLACE_SUCCESSOR);
        call.arg(old_hash).arg(rotated_since).arg(now);
        refresh_record(new).push_args(&mut call);
        let replaced = rotation(self.run(&call).await?);
        if replaced == Rotation::Rotated {
            self.record_reuse(&new.family_id, &new.client_id, &new.user_id, now)
                .await?;
        }
        Ok(replaced)
    }

    /// The revocation is atomic; the audit entry follows it (the hybrid store records the
    /// event).
    async fn revoke_reused_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let revoked = self.revoke_grant(family_id, now).await?;
        if revoked == 0 {
            return Ok(0);
        }
        self.record_reuse(family_id, client_id, user_id, now)
            .await?;
        Ok(revoked)
    }

    async fn grants_of_session(&self, session_id: &str) -> StoreResult<Vec<String>> {
        let mut call = self.call(&scripts::GRANTS_OF_SESSION);
        call.arg(session_id);
        self.run(&call).await
    }

    async fn refresh_grants_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let mut call = self.call(&scripts::REFRESH_GRANTS_OF_USER);
        call.arg(user_id);
        // Pairs of family id and session id ("" for none).
        let flat: Vec<String> = self.run(&call).await?;
        let grants: std::collections::BTreeSet<(String, Option<String>)> = flat
            .chunks_exact(2)
            .map(|pair| {
                let session = (!pair[1].is_empty()).then(|| pair[1].clone());
                (pair[0].clone(), session)
            })
            .collect();
        Ok(grants.into_iter().collect())
    }
}

#[async_trait]
impl ArtifactStore for RedisStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        user_id: Option<&str>,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let record = RecordToInsert::new(artifact_id(kind, id_hash), expires_at)
            .put("payload", payload)
            .put_opt("user_id", user_id);
        let mut call = self.call(&scripts::PUT_ARTIFACT);
        record.push_args(&mut call);
        self.run::<i64>(&call).await?;
        Ok(())
    }

    async fn artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        let mut conn = self.conn.clone();
        let (payload, expires_at): (Option<String>, Option<i64>) = ::redis::cmd("HMGET")
            .arg(self.key("artifact", &artifact_id(kind, id_hash)))
            .arg("payload")
            .arg("expires_at")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(payload.filter(|_| expires_at.is_some_and(|at| at > now)))
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<bool> {
        let mut call = self.call(&scripts::DELETE_ARTIFACT);
        call.arg(artifact_id(kind, id_hash));
        self.run(&call).await
    }

    async fn user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut call = self.call(&scripts::USER_ARTIFACTS);
        call.arg(user_id)
            .arg(format!("{}:", kind.as_str()))
            .arg(now);
        let flat: Vec<String> = self.run(&call).await?;
        let mut found: Vec<(String, String)> = flat
            .chunks_exact(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        found.sort();
        Ok(found)
    }
}

#[async_trait]
impl KeyStore for RedisStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let keys: Vec<Option<String>> = self.run(&self.call(&scripts::SIGNING_KEYS)).await?;
        keys.into_iter()
            .map(|json| {
                let json = json.ok_or_else(|| corrupt("signing key listed but missing"))?;
                serde_json::from_str(&json).map_err(|_| corrupt("signing key"))
            })
            .collect()
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let json = serde_json::to_string(key).expect("a signing key always serializes");
        let mut call = self.call(&scripts::INSERT_SIGNING_KEY);
        call.arg(&key.kid).arg(json);
        if self.run(&call).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict(format!("signing key {}", key.kid)))
        }
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let mut call = self.call(&scripts::DELETE_SIGNING_KEY);
        call.arg(kid);
        self.run::<i64>(&call).await?;
        Ok(())
    }
}

#[async_trait]
impl PurgeStore for RedisStore {
    async fn purge_expired(
        &self,
        now: UnixTime,
        codes_expired_before: UnixTime,
        batch: u32,
    ) -> StoreResult<u64> {
        let mut call = self.call(&scripts::PURGE);
        call.arg(now).arg(codes_expired_before).arg(batch);
        let records: u64 = self.run(&call).await?;
        Ok(records + self.purge_events(now, batch).await?)
    }
}
