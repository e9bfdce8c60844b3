//! In-memory backend (`STORE_BACKEND=memory`) for tests and demos, and the in-memory half of the
//! hybrid store. Nothing survives a restart.
//!
//! It answers every method exactly as the SQL backend does (one backend test suite holds both to
//! the same results), including what the SQL schema enforces by itself: unique keys, foreign keys
//! and their cascades. All state sits behind one mutex. Every method takes it once and finishes
//! without awaiting, so each call is a transaction: a write checks every condition before it
//! changes anything, and cannot fail once it has started changing.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::*;

mod filter;
mod groups;
mod outbox;
#[cfg(test)]
mod tests;
mod users;

/// Shares its state between clones, like a connection pool.
#[derive(Clone, Default)]
pub struct MemoryStore {
    data: Arc<Mutex<Data>>,
    /// Set on the hybrid backend's replica, which applies other instances' changes: their
    /// events are those instances' to deliver, and the clients a consent names were checked by
    /// the writer (clients are per process, so this one may not have loaded them yet).
    replica: bool,
}

/// The "tables". Maps are ordered so iteration (and therefore which rows a purge batch takes)
/// does not change from run to run.
#[derive(Default)]
struct Data {
    users: BTreeMap<String, User>,
    /// User ids by user name lower-cased by Rust: user names are unique case-insensitively.
    usernames: HashMap<String, String>,
    /// Groups with `members` left empty: membership lives in `members`.
    groups: BTreeMap<String, Group>,
    /// Group ids by lower-cased display name, unique like user names.
    group_names: HashMap<String, String>,
    /// (group id, user id) pairs.
    members: BTreeSet<(String, String)>,
    clients: HashMap<String, Client>,
    /// Granted scope by (user id, client id).
    consents: HashMap<(String, String), String>,
    codes: BTreeMap<String, StoredCode>,
    tokens: BTreeMap<String, TokenRecord>,
    /// The `jti` of every stored token, unique like the SQL column.
    jtis: HashSet<String>,
    refresh_tokens: BTreeMap<String, RefreshTokenRecord>,
    artifacts: BTreeMap<(&'static str, String), StoredArtifact>,
    /// In insertion order, the order [`KeyStore::signing_keys`] promises.
    signing_keys: Vec<SigningKeyRecord>,
    totp: HashMap<String, TotpRecord>,
    /// (user id, code hash) pairs.
    recovery_codes: BTreeSet<(String, String)>,
    /// Oldest first.
    login_attempts: Vec<LoginAttempt>,
    /// Events in the order they were recorded.
    outbox: VecDeque<outbox::StoredEvent>,
    /// Whether the current call records no events (a [`MemoryStore::replica`]'s).
    events_muted: bool,
}

struct StoredCode {
    code: AuthCode,
    /// Redeemed, or burnt with its grant or user.
    consumed: bool,
}

struct StoredArtifact {
    user_id: Option<String>,
    payload: String,
    expires_at: UnixTime,
}

/// What the SQL backend reports as a backend error: a write that breaks a constraint the SQL
/// code does not turn into [`StoreError::Conflict`] (a foreign key, a duplicate token hash).
fn constraint(what: String) -> StoreError {
    StoreError::Backend(what.into())
}

fn unknown_user(user_id: &str) -> StoreError {
    constraint(format!("no user {user_id}"))
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same data, for applying changes another instance made (see the `replica` field).
    pub(crate) fn replica(&self) -> MemoryStore {
        MemoryStore {
            data: self.data.clone(),
            replica: true,
        }
    }

    /// The state, locked. A panic while it was locked may have left it half-written, so it is
    /// an error from then on rather than something to keep serving.
    fn data(&self) -> StoreResult<MutexGuard<'_, Data>> {
        let mut data = self.data.lock().map_err(|_| {
            StoreError::Backend("the in-memory store was poisoned by a panic".into())
        })?;
        // Every call locks once, so this holds for exactly this call.
        data.events_muted = self.replica;
        Ok(data)
    }
}

impl Data {
    /// Ends everything a user holds: tokens, refresh tokens, unredeemed codes and sessions (every
    /// artifact naming the user).
    fn end_access(&mut self, user_id: &str) {
        for token in self.tokens.values_mut() {
            if token.user_id.as_deref() == Some(user_id) {
                token.revoked = true;
            }
        }
        for token in self.refresh_tokens.values_mut() {
            if token.user_id == user_id {
                token.revoked = true;
            }
        }
        for stored in self.codes.values_mut() {
            if stored.code.user_id == user_id {
                stored.consumed = true;
            }
        }
        self.artifacts
            .retain(|_, artifact| artifact.user_id.as_deref() != Some(user_id));
    }

    /// Stores a new refresh token, fresh whatever `token` says about rotation or revocation (the
    /// SQL insert sets only the issuing columns).
    fn insert_refresh(&mut self, token: &RefreshTokenRecord) -> StoreResult<()> {
        if self.refresh_tokens.contains_key(&token.token_hash) {
            return Err(constraint("duplicate refresh token hash".into()));
        }
        let fresh = RefreshTokenRecord {
            rotated_at: None,
            replaced_by: None,
            grace_used: false,
            revoked: false,
            ..token.clone()
        };
        self.refresh_tokens.insert(token.token_hash.clone(), fresh);
        Ok(())
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        let mut data = self.data()?;
        if data.clients.contains_key(&client.client_id) {
            return Err(StoreError::Conflict(format!("client {}", client.client_id)));
        }
        data.clients
            .insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn put_client(&self, client: &Client) -> StoreResult<()> {
        self.data()?
            .clients
            .insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        Ok(self.data()?.clients.get(client_id).cloned())
    }
}

#[async_trait]
impl ConsentStore for MemoryStore {
    async fn granted_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let key = (user_id.to_string(), client_id.to_string());
        Ok(self.data()?.consents.get(&key).cloned())
    }

    async fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        _now: UnixTime,
    ) -> StoreResult<()> {
        let mut data = self.data()?;
        if !data.users.contains_key(user_id) {
            return Err(unknown_user(user_id));
        }
        if !self.replica && !data.clients.contains_key(client_id) {
            return Err(constraint(format!("no client {client_id}")));
        }
        data.consents.insert(
            (user_id.to_string(), client_id.to_string()),
            scope.to_string(),
        );
        Ok(())
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn insert_code(&self, code_hash: &str, code: &AuthCode) -> StoreResult<()> {
        let mut data = self.data()?;
        if data.codes.contains_key(code_hash) {
            return Err(constraint("duplicate code hash".into()));
        }
        let stored = StoredCode {
            code: code.clone(),
            consumed: false,
        };
        data.codes.insert(code_hash.to_string(), stored);
        Ok(())
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        Ok(self
            .data()?
            .codes
            .get(code_hash)
            .map(|stored| stored.code.clone()))
    }

    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        let mut data = self.data()?;
        let Some(stored) = data.codes.get_mut(code_hash) else {
            return Ok(CodeRedemption::Invalid);
        };
        Ok(if stored.consumed {
            // A replay, even once expired: the caller revokes what the code issued.
            CodeRedemption::AlreadyRedeemed {
                grant_id: stored.code.grant_id.clone(),
            }
        } else if stored.code.expires_at > now {
            stored.consumed = true;
            CodeRedemption::Redeemed(Box::new(stored.code.clone()))
        } else {
            CodeRedemption::Invalid
        })
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let mut data = self.data()?;
        if data.tokens.contains_key(&token.token_hash) || data.jtis.contains(&token.jti) {
            return Err(constraint("duplicate token hash or jti".into()));
        }
        data.jtis.insert(token.jti.clone());
        let fresh = TokenRecord {
            revoked: false,
            ..token.clone()
        };
        data.tokens.insert(token.token_hash.clone(), fresh);
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(self.data()?.tokens.get(token_hash).cloned())
    }

    async fn revoke_token(&self, token_hash: &str, _now: UnixTime) -> StoreResult<()> {
        if let Some(token) = self.data()?.tokens.get_mut(token_hash) {
            token.revoked = true;
        }
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, _now: UnixTime) -> StoreResult<u64> {
        Ok(self.data()?.revoke_grant(grant_id))
    }
}

impl Data {
    /// Revokes a grant's tokens and refresh tokens and burns its unredeemed code; returns how
    /// many changed.
    fn revoke_grant(&mut self, grant_id: &str) -> u64 {
        let data = self;
        let mut revoked = 0;
        for token in data.tokens.values_mut() {
            if token.grant_id == grant_id && !token.revoked {
                token.revoked = true;
                revoked += 1;
            }
        }
        for token in data.refresh_tokens.values_mut() {
            if token.family_id == grant_id && !token.revoked {
                token.revoked = true;
                revoked += 1;
            }
        }
        // An unredeemed code of the grant dies too; redeeming it later counts as a replay.
        for stored in data.codes.values_mut() {
            if stored.code.grant_id == grant_id && !stored.consumed {
                stored.consumed = true;
                revoked += 1;
            }
        }
        revoked
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryStore {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.data()?.insert_refresh(token)
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        Ok(self.data()?.refresh_tokens.get(token_hash).cloned())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        let mut data = self.data()?;
        let claimable = |old: &RefreshTokenRecord| {
            old.rotated_at.is_none() && !old.revoked && old.expires_at > now
        };
        if !data.refresh_tokens.get(old_hash).is_some_and(claimable) {
            return Ok(Rotation::Lost);
        }
        data.insert_refresh(new)?;
        if let Some(old) = data.refresh_tokens.get_mut(old_hash) {
            old.rotated_at = Some(now);
            old.replaced_by = Some(new.token_hash.clone());
        }
        Ok(Rotation::Rotated)
    }

    async fn replace_successor(
        &self,
        old_hash: &str,
        rotated_since: UnixTime,
        new: &RefreshTokenRecord,
        _now: UnixTime,
    ) -> StoreResult<Rotation> {
        let mut data = self.data()?;
        let tokens = &data.refresh_tokens;
        let unused = |hash: &String| {
            tokens
                .get(hash)
                .is_some_and(|t| t.rotated_at.is_none() && !t.revoked)
        };
        let successor = tokens
            .get(old_hash)
            .filter(|old| {
                !old.grace_used
                    && !old.revoked
                    && old.rotated_at.is_some_and(|at| at >= rotated_since)
            })
            .and_then(|old| old.replaced_by.clone())
            .filter(unused);
        let Some(successor) = successor else {
            return Ok(Rotation::Lost);
        };
        data.insert_refresh(new)?;
        if let Some(replaced) = data.refresh_tokens.get_mut(&successor) {
            replaced.revoked = true;
        }
        let mut rotated_at = None;
        if let Some(old) = data.refresh_tokens.get_mut(old_hash) {
            old.grace_used = true;
            old.replaced_by = Some(new.token_hash.clone());
            rotated_at = old.rotated_at;
        }
        // The access token issued with the replaced successor (see the SQL store).
        for token in data.tokens.values_mut() {
            let since_rotation = rotated_at.is_some_and(|at| token.issued_at >= at);
            if token.grant_id == new.family_id && since_rotation {
                token.revoked = true;
            }
        }
        Ok(Rotation::Rotated)
    }

    /// The revocation and the event; the SQL backend's audit table is read by no store method.
    async fn revoke_reused_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let mut data = self.data()?;
        let revoked = data.revoke_grant(family_id);
        if revoked > 0 {
            data.record_event(events::reuse_detected(family_id, client_id, user_id, now));
        }
        Ok(revoked)
    }

    async fn grants_of_session(&self, session_id: &str) -> StoreResult<Vec<String>> {
        let data = self.data()?;
        let families = data
            .refresh_tokens
            .values()
            .filter(|t| t.session_id.as_deref() == Some(session_id))
            .map(|t| &t.family_id);
        let grants = data
            .codes
            .values()
            .filter(|c| c.code.session_id == session_id)
            .map(|c| &c.code.grant_id);
        // Each grant once, as SQL's UNION gives them.
        let distinct: BTreeSet<&String> = families.chain(grants).collect();
        Ok(distinct.into_iter().cloned().collect())
    }

    async fn refresh_grants_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let data = self.data()?;
        let grants: BTreeSet<(String, Option<String>)> = data
            .refresh_tokens
            .values()
            .filter(|t| t.user_id == user_id && !t.revoked)
            .map(|t| (t.family_id.clone(), t.session_id.clone()))
            .collect();
        Ok(grants.into_iter().collect())
    }
}

#[async_trait]
impl ArtifactStore for MemoryStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        user_id: Option<&str>,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let artifact = StoredArtifact {
            user_id: user_id.map(str::to_string),
            payload: payload.to_string(),
            expires_at,
        };
        self.data()?
            .artifacts
            .insert((kind.as_str(), id_hash.to_string()), artifact);
        Ok(())
    }

    async fn artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        let data = self.data()?;
        let artifact = data.artifacts.get(&(kind.as_str(), id_hash.to_string()));
        Ok(artifact
            .filter(|a| a.expires_at > now)
            .map(|a| a.payload.clone()))
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<bool> {
        let key = (kind.as_str(), id_hash.to_string());
        Ok(self.data()?.artifacts.remove(&key).is_some())
    }

    async fn user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, String)>> {
        let data = self.data()?;
        Ok(data
            .artifacts
            .iter()
            .filter(|((k, _), a)| {
                *k == kind.as_str() && a.user_id.as_deref() == Some(user_id) && a.expires_at > now
            })
            .map(|((_, id_hash), a)| (id_hash.clone(), a.payload.clone()))
            .collect())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        Ok(self.data()?.signing_keys.clone())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut data = self.data()?;
        if data.signing_keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict(format!("signing key {}", key.kid)));
        }
        data.signing_keys.push(key.clone());
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.data()?.signing_keys.retain(|k| k.kid != kid);
        Ok(())
    }
}

#[async_trait]
impl MfaStore for MemoryStore {
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>> {
        Ok(self.data()?.totp.get(user_id).cloned())
    }

    async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        _now: UnixTime,
    ) -> StoreResult<bool> {
        let mut data = self.data()?;
        if let Some(existing) = data.totp.get_mut(user_id) {
            if existing.confirmed {
                return Ok(false);
            }
            existing.secret_sealed = secret_sealed.to_string();
            return Ok(true);
        }
        if !data.users.contains_key(user_id) {
            return Err(unknown_user(user_id));
        }
        let pending = TotpRecord {
            secret_sealed: secret_sealed.to_string(),
            confirmed: false,
            last_used_step: 0,
            failures: 0,
            failures_since: 0,
            consecutive_failures: 0,
        };
        data.totp.insert(user_id.to_string(), pending);
        Ok(true)
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
        recovery_code_hashes: &[String],
    ) -> StoreResult<bool> {
        let mut data = self.data()?;
        let pending = data
            .totp
            .get(user_id)
            .is_some_and(|t| !t.confirmed && t.secret_sealed == secret_sealed);
        if !pending {
            return Ok(false);
        }
        let codes: BTreeSet<&String> = recovery_code_hashes.iter().collect();
        if codes.len() != recovery_code_hashes.len() {
            return Err(constraint("duplicate recovery code".into()));
        }
        if let Some(totp) = data.totp.get_mut(user_id) {
            totp.confirmed = true;
            totp.last_used_step = step;
            totp.failures = 0;
        }
        data.recovery_codes.retain(|(user, _)| user != user_id);
        let owned = codes
            .into_iter()
            .map(|hash| (user_id.to_string(), hash.clone()));
        data.recovery_codes.extend(owned);
        data.record_event(events::mfa_enrolled(user_id, crate::clock::now()));
        Ok(true)
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let mut data = self.data()?;
        let Some(totp) = data.totp.get_mut(user_id) else {
            return Ok(false);
        };
        if !totp.confirmed || totp.last_used_step >= step {
            return Ok(false);
        }
        totp.last_used_step = step;
        totp.failures = 0;
        totp.consecutive_failures = 0;
        Ok(true)
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        let key = (user_id.to_string(), code_hash.to_string());
        let mut data = self.data()?;
        let used = data.recovery_codes.remove(&key);
        if let Some(totp) = data.totp.get_mut(user_id).filter(|_| used) {
            totp.failures = 0;
            totp.consecutive_failures = 0;
        }
        Ok(used)
    }

    async fn claim_mfa_attempt(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: &MfaLimit,
    ) -> StoreResult<MfaAttempt> {
        let mut data = self.data()?;
        let Some(totp) = data.totp.get_mut(user_id).filter(|t| t.confirmed) else {
            return Ok(MfaAttempt::NotEnrolled);
        };
        if totp.consecutive_failures >= limit.lock_after {
            return Ok(MfaAttempt::Locked);
        }
        if totp.failures_since < limit.window_start {
            // The first attempt after the window started opens a new one.
            totp.failures = 0;
            totp.failures_since = now;
        } else if totp.failures >= limit.max {
            return Ok(MfaAttempt::Limited);
        }
        totp.failures += 1;
        totp.consecutive_failures += 1;
        Ok(MfaAttempt::Allowed {
            failures: totp.failures,
            consecutive: totp.consecutive_failures,
        })
    }

    async fn record_mfa_locked(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        self.data()?.record_event(events::mfa_locked(user_id, now));
        Ok(())
    }

    async fn delete_mfa(&self, user_id: &str) -> StoreResult<bool> {
        let mut data = self.data()?;
        data.recovery_codes.retain(|(user, _)| user != user_id);
        Ok(data.totp.remove(user_id).is_some())
    }
}

/// Removes up to `batch` entries `expired` picks, in key order, and returns them.
fn take_expired<K: Ord + Clone, V>(
    map: &mut BTreeMap<K, V>,
    batch: usize,
    expired: impl Fn(&V) -> bool,
) -> Vec<V> {
    let keys: Vec<K> = map
        .iter()
        .filter(|(_, value)| expired(value))
        .map(|(key, _)| key.clone())
        .take(batch)
        .collect();
    keys.iter().filter_map(|key| map.remove(key)).collect()
}

#[async_trait]
impl Purge for MemoryStore {
    async fn purge_expired(
        &self,
        now: UnixTime,
        codes_expired_before: UnixTime,
        batch: u32,
    ) -> StoreResult<u64> {
        let batch = usize::try_from(batch).unwrap_or(usize::MAX);
        let mut data = self.data()?;
        let codes = take_expired(&mut data.codes, batch, |c| {
            c.code.expires_at < codes_expired_before
        });
        let tokens = take_expired(&mut data.tokens, batch, |t| t.expires_at < now);
        for token in &tokens {
            data.jtis.remove(&token.jti);
        }
        let refresh = take_expired(&mut data.refresh_tokens, batch, |t| t.expires_at < now);
        let artifacts = take_expired(&mut data.artifacts, batch, |a| a.expires_at < now);
        let kept_after = now - LOGIN_ATTEMPT_RETENTION;
        let old_attempts = data
            .login_attempts
            .iter()
            .take(batch)
            .take_while(|attempt| attempt.at < kept_after)
            .count();
        data.login_attempts.drain(..old_attempts);
        let old_events = data.purge_events(now - events::EVENT_RETENTION, batch);
        let rows = codes.len() + tokens.len() + refresh.len() + artifacts.len();
        Ok((rows + old_attempts + old_events) as u64)
    }
}

#[async_trait]
impl LoginAttemptStore for MemoryStore {
    async fn record_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<()> {
        let mut data = self.data()?;
        // Kept in order of time (the purge takes from the front), ties in arrival order.
        let at = data
            .login_attempts
            .partition_point(|stored| stored.at <= attempt.at);
        data.login_attempts.insert(at, attempt.clone());
        Ok(())
    }

    async fn login_attempts(
        &self,
        username_hash: &str,
        limit: u32,
    ) -> StoreResult<Vec<LoginAttempt>> {
        let data = self.data()?;
        Ok(data
            .login_attempts
            .iter()
            .rev()
            .filter(|attempt| attempt.username_hash == username_hash)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        self.data().map(drop)
    }
}
