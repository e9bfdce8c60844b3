//! The hybrid backend: codes, tokens, refresh tokens, sessions, signing keys and second factors
//! (TOTP, recovery codes, attempt counts, passkeys) live in Redis, so every instance sees them;
//! users, groups, clients and consents live in this process's memory, in SQLite (the SQL
//! backend's own code, so the same answers).
//!
//! Every change to users, groups and consents also goes through a log in Redis that each instance
//! applies to its memory ([`directory`]), so two instances answer like one and a restart keeps
//! what was written at run time. Clients and the login-attempt history stay per process. Declare
//! clients (and, if wanted, users) in the seed file (`TESSERA_SEED_FILE`), which every instance
//! applies at start-up.
//!
//! Audit events and queued mail live in Redis too ([`RedisStore`]'s outbox): each is sent once, by
//! whichever instance claims it, and a restart loses none. Events of changes made in Redis
//! (logout, refresh reuse, second factors) are recorded just after the change, not in one
//! transaction with it; those of the directory's changes are moved there from the copy.

use std::sync::Arc;

use async_trait::async_trait;

use super::query::{ListQuery, Page};
use super::*;

mod directory;

use directory::{Change, Directory, Outcome};

pub struct HybridStore {
    /// This process's users, groups, clients, consents and login attempts.
    local: SqlStore,
    redis: Arc<RedisStore>,
    /// The log that keeps users, groups and consents alike on every instance.
    directory: Arc<Directory>,
}

impl HybridStore {
    pub async fn new(redis: RedisStore) -> StoreResult<Self> {
        let local = SqlStore::in_memory().await?;
        local.unbind_consents_from_clients().await?;
        let redis = Arc::new(redis);
        let directory = Arc::new(Directory::new(local.clone(), redis.clone()));
        Ok(HybridStore {
            local,
            redis,
            directory,
        })
    }

    /// The users, groups and consents, with every change any instance made so far.
    async fn directory(&self) -> StoreResult<&SqlStore> {
        self.directory.catch_up().await?;
        Ok(&self.local)
    }

    fn writer(&self) -> Writer {
        Writer {
            redis: self.redis.clone(),
            directory: self.directory.clone(),
        }
    }

    /// Makes a change to users, groups or consents (see [`to_completion`]).
    async fn change(&self, change: Change) -> StoreResult<Outcome> {
        let directory = self.directory.clone();
        to_completion(async move { directory.write(change).await }).await
    }
}

/// What a change to users, groups and consents touches, cheap to clone onto a task.
struct Writer {
    redis: Arc<RedisStore>,
    directory: Arc<Directory>,
}

/// Runs `work` on a task of its own, so it ends even if the request waiting for it is dropped
/// (its client went away, its time ran out): a change in the log is then also applied here,
/// with its event, and followed by what it ends in Redis.
async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = StoreResult<T>> + Send + 'static,
) -> StoreResult<T> {
    tokio::spawn(work)
        .await
        .map_err(|err| StoreError::Backend(err.into()))?
}

#[async_trait]
impl UserStore for HybridStore {
    async fn insert_user(&self, user: &User, origin: UserOrigin) -> StoreResult<()> {
        let user = user.clone();
        self.change(Change::InsertUser { user, origin })
            .await?
            .done()
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.directory().await?.user(id).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.directory().await?.user_by_username(username).await
    }

    async fn update_user(
        &self,
        user: &User,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        let (writer, user) = (self.writer(), user.clone());
        to_completion(async move {
            let (id, active) = (user.id.clone(), user.active);
            let change = Change::UpdateUser {
                user,
                expected_version,
                now,
            };
            let outcome = writer.directory.write(change).await?.update()?;
            // The directory ended the user's copies in memory; these end on every instance.
            if outcome == Update::Done && !active {
                writer.redis.end_user_access(&id, now).await?;
            }
            Ok(outcome)
        })
        .await
    }

    async fn delete_user(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let (writer, id) = (self.writer(), id.to_string());
        to_completion(async move {
            let change = Change::DeleteUser {
                id: id.clone(),
                now,
            };
            let deleted = writer.directory.write(change).await?.deleted()?;
            writer.redis.end_user_access(&id, now).await?;
            writer.redis.delete_mfa(&id).await?;
            writer.redis.delete_passkeys(&id).await?;
            Ok(deleted)
        })
        .await
    }

    async fn list_users(&self, query: &ListQuery) -> StoreResult<Page<User>> {
        self.directory().await?.list_users(query).await
    }

    async fn memberships(&self, user_ids: &[String]) -> StoreResult<Vec<GroupRef>> {
        self.directory().await?.memberships(user_ids).await
    }
}

#[async_trait]
impl GroupStore for HybridStore {
    async fn insert_group(&self, group: &Group) -> StoreResult<()> {
        let group = group.clone();
        self.change(Change::InsertGroup { group }).await?.done()
    }

    async fn group(&self, id: &str) -> StoreResult<Option<Group>> {
        self.directory().await?.group(id).await
    }

    async fn update_group(
        &self,
        group: &Group,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        let change = Change::UpdateGroup {
            group: group.clone(),
            expected_version,
            now,
        };
        self.change(change).await?.update()
    }

    async fn delete_group(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let change = Change::DeleteGroup {
            id: id.to_string(),
            now,
        };
        self.change(change).await?.deleted()
    }

    async fn list_groups(&self, query: &ListQuery, members: bool) -> StoreResult<Page<Group>> {
        self.directory().await?.list_groups(query, members).await
    }
}

#[async_trait]
impl ClientStore for HybridStore {
    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        self.local.insert_client(client).await
    }

    async fn put_client(&self, client: &Client) -> StoreResult<()> {
        self.local.put_client(client).await
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        self.local.client(client_id).await
    }
}

#[async_trait]
impl ConsentStore for HybridStore {
    async fn granted_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let directory = self.directory().await?;
        directory.granted_scope(user_id, client_id).await
    }

    async fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        // Clients are per process: checked here, before the change reaches the log, since an
        // instance replaying it may not have loaded its clients yet.
        if self.local.client(client_id).await?.is_none() {
            return Err(StoreError::Backend(format!("no client {client_id}").into()));
        }
        let change = Change::Consent {
            user_id: user_id.to_string(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            now,
        };
        self.change(change).await?.done()
    }
}

#[async_trait]
impl LoginAttemptStore for HybridStore {
    async fn record_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<()> {
        self.local.record_login_attempt(attempt).await
    }

    async fn login_attempts(
        &self,
        username_hash: &str,
        limit: u32,
    ) -> StoreResult<Vec<LoginAttempt>> {
        self.local.login_attempts(username_hash, limit).await
    }
}

/// The outbox every instance shares, in Redis: an event or message queued by one instance (or
/// the CLI) is sent once, by whichever instance claims it, and outlives the process.
#[async_trait]
impl OutboxStore for HybridStore {
    async fn log_out(
        &self,
        id_hash: &str,
        user_id: &str,
        sid: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.redis.log_out(id_hash, user_id, sid, now).await
    }

    async fn enqueue(&self, event: &events::NewEvent) -> StoreResult<()> {
        self.redis.enqueue(event).await
    }

    async fn claim_events(
        &self,
        channel: events::Channel,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<events::OutboxEvent>> {
        self.directory.forward_leftover_events().await?;
        self.redis
            .claim_events(channel, now, lease_until, limit)
            .await
    }

    async fn event_delivered(
        &self,
        id: &str,
        claimed_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<()> {
        self.redis.event_delivered(id, claimed_until, now).await
    }

    async fn event_failed(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<()> {
        self.redis
            .event_failed(id, claimed_until, error, retry_at, now)
            .await
    }

    async fn dead_events(&self, limit: u32) -> StoreResult<Vec<events::OutboxEvent>> {
        self.redis.dead_events(limit).await
    }
}

/// Second factors live in Redis when there is one, so that every instance enforces the same
/// enrollment, replay protection and attempt counts, and a restart keeps them (security review
/// finding 7); the enrollment and lock events go to this instance's outbox.
#[async_trait]
impl MfaStore for HybridStore {
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>> {
        self.redis.totp(user_id).await
    }

    async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        _now: UnixTime,
    ) -> StoreResult<bool> {
        if self.user(user_id).await?.is_none() {
            return Err(StoreError::MissingReference(format!("user {user_id}")));
        }
        self.redis.put_pending_totp(user_id, secret_sealed).await
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
        recovery_code_hashes: &[String],
    ) -> StoreResult<bool> {
        let confirmed = self
            .redis
            .confirm_totp(user_id, secret_sealed, step, recovery_code_hashes)
            .await?;
        if confirmed {
            let event = events::mfa_enrolled(user_id, crate::clock::now());
            self.redis.enqueue(&event).await?;
        }
        Ok(confirmed)
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        self.redis.use_totp_step(user_id, step).await
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        self.redis.use_recovery_code(user_id, code_hash).await
    }

    async fn claim_mfa_attempt(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: &MfaLimit,
    ) -> StoreResult<MfaAttempt> {
        self.redis.claim_mfa_attempt(user_id, now, limit).await
    }

    async fn record_mfa_locked(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        self.redis.enqueue(&events::mfa_locked(user_id, now)).await
    }

    async fn delete_mfa(&self, user_id: &str) -> StoreResult<bool> {
        self.redis.delete_mfa(user_id).await
    }
}

/// Passkeys live in Redis, shared by every instance, like the other second factors.
#[async_trait]
impl PasskeyStore for HybridStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        if self.user(&passkey.user_id).await?.is_none() {
            return Err(StoreError::MissingReference(format!(
                "user {}",
                passkey.user_id
            )));
        }
        self.redis.insert_passkey(passkey).await
    }

    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        self.redis.passkeys(user_id).await
    }

    async fn use_passkey(
        &self,
        credential_id: &str,
        credential: &str,
        sign_count: u32,
        now: UnixTime,
    ) -> StoreResult<bool> {
        self.redis
            .use_passkey(credential_id, credential, sign_count, now)
            .await
    }

    async fn delete_passkey(&self, user_id: &str, credential_id: &str) -> StoreResult<bool> {
        self.redis.delete_passkey(user_id, credential_id).await
    }
}

#[async_trait]
impl CodeStore for HybridStore {
    async fn insert_code(&self, code_hash: &str, code: &AuthCode) -> StoreResult<()> {
        self.redis.insert_code(code_hash, code).await
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        self.redis.code(code_hash).await
    }

    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        self.redis.redeem_code(code_hash, now).await
    }
}

#[async_trait]
impl TokenStore for HybridStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        self.redis.insert_token(token).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        self.redis.token_by_hash(token_hash).await
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        self.redis.revoke_token(token_hash, now).await
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
        self.redis.revoke_grant(grant_id, now).await
    }
}

#[async_trait]
impl RefreshTokenStore for HybridStore {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.redis.insert_refresh_token(token).await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        self.redis.refresh_token(token_hash).await
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        self.redis.rotate_refresh_token(old_hash, new, now).await
    }

    async fn replace_successor(
        &self,
        old_hash: &str,
        rotated_since: UnixTime,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        self.redis
            .replace_successor(old_hash, rotated_since, new, now)
            .await
    }

    async fn revoke_reused_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let revoked = self
            .redis
            .revoke_reused_family(family_id, client_id, user_id, now)
            .await?;
        if revoked > 0 {
            let event = events::reuse_detected(family_id, client_id, user_id, now);
            self.redis.enqueue(&event).await?;
        }
        Ok(revoked)
    }

    async fn grants_of_session(&self, session_id: &str) -> StoreResult<Vec<String>> {
        self.redis.grants_of_session(session_id).await
    }

    async fn refresh_grants_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        self.redis.refresh_grants_of_user(user_id).await
    }
}

#[async_trait]
impl ArtifactStore for HybridStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        user_id: Option<&str>,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        self.redis
            .put_artifact(kind, id_hash, user_id, payload, expires_at)
            .await
    }

    async fn artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        self.redis.artifact(kind, id_hash, now).await
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<bool> {
        self.redis.delete_artifact(kind, id_hash).await
    }

    async fn user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, String)>> {
        self.redis.user_artifacts(kind, user_id, now).await
    }
}

#[async_trait]
impl KeyStore for HybridStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.redis.signing_keys().await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.redis.insert_signing_key(key).await
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.redis.delete_signing_key(kid).await
    }
}
#[async_trait]
impl PurgeStore for HybridStore {
    async fn purge_expired(
        &self,
        now: UnixTime,
        codes_expired_before: UnixTime,
        batch: u32,
    ) -> StoreResult<u64> {
        let purged = self
            .local
            .purge_expired(now, codes_expired_before, batch)
            .await?;
        let expired = self
            .redis
            .purge_expired(now, codes_expired_before, batch)
            .await?;
        Ok(purged + expired)
    }
}

#[async_trait]
impl Store for HybridStore {
    async fn ping(&self) -> StoreResult<()> {
        self.redis.ping().await
    }
}
