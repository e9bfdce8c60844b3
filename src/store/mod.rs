//! Persistence seam. Protocol code talks to these small traits; which backend runs behind them is
//! decided once at start-up (`open`). Traits are grouped by the code that needs them (the fosite
//! habit) and combined in [`Store`], used as `Arc<dyn Store>`.
//!
//! Every secret handed to a store is already hashed ([`crate::secret::SecretHash`]): a store never
//! sees a code, token or session id in clear.

pub mod events;
mod hybrid;
pub mod query;
mod redis;
mod sql;
pub mod token_cache;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use query::{ListQuery, Page};

pub use crate::config::PoolSettings;
pub use hybrid::HybridStore;
pub(crate) use redis::backend as redis_failure;
pub use redis::{connection as redis_connection, RedisStore, TokenCache};
pub use sql::SqlStore;

pub use crate::clock::UnixTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists (user name, group name, client id).
    #[error("{0} already exists")]
    Conflict(String),
    /// A write named a record that does not exist (a group member that is no user).
    #[error("{0} does not exist")]
    MissingReference(String),
    /// The backend cannot answer this query (an attribute it cannot filter or sort on).
    #[error("{0}")]
    Unsupported(String),
    /// A value the backend cannot hold (PostgreSQL refuses U+0000 in text, SQLSTATE class 22):
    /// the caller's input is at fault, so it answers like any other bad value. Surfaces check
    /// their input before it gets here; this is the net under those checks.
    #[error("the store refused a value: {0}")]
    InvalidValue(String),
    /// The backend could not be reached or did not answer in time (connection refused or lost,
    /// pool timeout, a locked SQLite file). The only kind of failure the circuit breaker counts.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend answered with an error of its own. The source is for logs only.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The same kind of error with the same message, for answering several callers that one
    /// failure stopped.
    pub fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Conflict(what) => StoreError::Conflict(what.clone()),
            StoreError::MissingReference(what) => StoreError::MissingReference(what.clone()),
            StoreError::Unsupported(what) => StoreError::Unsupported(what.clone()),
            StoreError::InvalidValue(what) => StoreError::InvalidValue(what.clone()),
            StoreError::Unavailable(source) => StoreError::Unavailable(source.to_string().into()),
            StoreError::Backend(source) => StoreError::Backend(source.to_string().into()),
        }
    }
}

/// A JSON object of SCIM attributes under their canonical names.
pub type Attributes = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    /// argon2id PHC string; `None` for users who cannot sign in with a password.
    pub password_hash: Option<String>,
    pub active: bool,
    /// The address the user proved to receive mail at: [`User::email_verified`] while it is
    /// still their email.
    #[serde(default)]
    pub verified_email: Option<String>,
    /// Every other SCIM attribute the user has (RFC 7643 §4.1, the enterprise extension of §4.3
    /// under its URN): not `id`, `userName`, `active`, `password`, `groups` or `meta`.
    pub attributes: Attributes,
    /// Bumped by every change to the user's SCIM representation, group memberships included
    /// (the ETag of RFC 7644 §3.14).
    pub version: i64,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// How a user came to be: `user.created` says it (`data.origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserOrigin {
    /// Provisioned over SCIM (and what a change logged before origins were recorded reads as).
    #[default]
    Scim,
    /// `tessera user create`.
    Cli,
    /// The seed file.
    Seed,
    /// `/signup`.
    Signup,
    /// `/signup` with an invitation.
    Invitation,
}

impl User {
    /// The primary e-mail address, else the first (RFC 7643 §4.1.2 `emails`).
    pub fn email(&self) -> Option<&str> {
        let emails = self.attributes.get("emails")?.as_array()?;
        let is_primary = |e: &&serde_json::Value| e.get("primary") == Some(&true.into());
        let chosen = emails.iter().find(is_primary).or_else(|| emails.first())?;
        chosen.get("value")?.as_str()
    }

    /// OIDC Core §5.1 `email_verified`: the user proved to receive mail at their email.
    pub fn email_verified(&self) -> bool {
        self.email().is_some() && self.email() == self.verified_email.as_deref()
    }

    /// A sub-attribute of `name` (RFC 7643 §4.1.1), e.g. `givenName`.
    pub fn name_part(&self, part: &str) -> Option<&str> {
        self.attributes.get("name")?.get(part)?.as_str()
    }

    /// What to show for the user: `displayName`, else the user name.
    pub fn display_name(&self) -> &str {
        self.attributes
            .get("displayName")
            .and_then(|v| v.as_str())
            .unwrap_or(&self.username)
    }
}

/// A SCIM group (RFC 7643 §4.2). Members are users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub members: Vec<Member>,
    /// Other SCIM attributes (`externalId`).
    pub attributes: Attributes,
    pub version: i64,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    /// The member's display name, filled in by reads; ignored by writes.
    pub display: String,
}

/// A group a user belongs to, as the user's read-only `groups` attribute shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub user_id: String,
    pub group_id: String,
    pub display_name: String,
}

/// Outcome of a conditional update (optimistic concurrency on `version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    Done,
    /// The record changed since it was read: its version is no longer the expected one.
    Stale,
    NotFound,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 of the generated secret; `None` marks a public client.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Space-separated scopes the client may ask for.
    pub scope: String,
    /// JWS algorithm of this client's ID tokens (`RS256`, `ES256` or `EdDSA`).
    pub id_token_signed_response_alg: String,
    pub require_mfa: bool,
    /// Sign-ins for this client need a passkey (acr `phr`).
    pub require_phishing_resistant: bool,
    pub skip_consent: bool,
    /// The resource servers (URIs) this client is: it may introspect other clients' access
    /// tokens (RFC 7662 §4); RFC 8707 `resource` values will name them.
    pub resource_servers: Vec<String>,
    /// This client's token lifetimes in seconds; `None` takes the server's.
    pub access_token_seconds: Option<u32>,
    pub refresh_token_seconds: Option<u32>,
}

impl Client {
    pub fn is_resource_server(&self) -> bool {
        !self.resource_servers.is_empty()
    }

    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn has_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// What an authorization code stands for, kept until the code is redeemed (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    /// Identifies every token issued from this code, so a replay can revoke them all.
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// S256 code challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    pub session_id: String,
    pub auth_time: UnixTime,
    pub acr: String,
    pub amr: Vec<String>,
    pub expires_at: UnixTime,
}

/// Result of redeeming a code: it can succeed exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    Redeemed(Box<AuthCode>),
    /// The code was redeemed before: a replay (RFC 6749 §4.1.2).
    AlreadyRedeemed {
        grant_id: String,
    },
    /// Unknown or expired.
    Invalid,
}

/// A persisted token, looked up by the hash of its value (introspection, userinfo, revocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub jti: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub mfa_verified: bool,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub auth_time: Option<UnixTime>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
}

impl TokenRecord {
    pub fn is_active(&self, now: UnixTime) -> bool {
        !self.revoked && now < self.expires_at
    }
}

/// A refresh token, looked up by the hash of its value. Every use rotates it (RFC 9700 §4.14.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    /// The grant this token descends from; shared by every token of the family.
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The scope of the whole grant; an access token may be narrower (RFC 6749 §6).
    pub scope: String,
    /// The SSO session it was issued in (`sid`), so logout can revoke it.
    pub session_id: Option<String>,
    pub auth_time: UnixTime,
    pub acr: String,
    pub amr: Vec<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<UnixTime>,
    /// Hash of the successor.
    pub replaced_by: Option<String>,
    pub grace_used: bool,
    pub revoked: bool,
}

/// Outcome of [`RefreshTokenStore::rotate_refresh_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is now rotated and the new one stored.
    Rotated,
    /// Someone else rotated (or revoked) it first; nothing was written.
    Lost,
}

/// A user's TOTP enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The seed, sealed with the configured encryption key.
    pub secret_sealed: String,
    pub confirmed: bool,
    pub last_used_step: i64,
    pub failures: u32,
    pub failures_since: UnixTime,
    /// Attempts since the last success, whatever the window.
    pub consecutive_failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_pem: String,
    pub created_at: UnixTime,
}

/// Kinds of short-lived server-side state kept in the artifact store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A browser's signed-in (SSO) session.
    Session,
    /// A pending authorization request between `/authorize` and the code redirect.
    Interaction,
    /// A mailed password-reset link ([`crate::account::recovery`]).
    PasswordReset,
    /// A mailed email-verification link ([`crate::account::verification`]).
    EmailVerification,
    /// An invitation to make an account ([`crate::account::invitation`]).
    Invitation,
    /// A started passkey registration or sign-in ([`crate::account::passkeys`]).
    PasskeyCeremony,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Session => "session",
            ArtifactKind::Interaction => "interaction",
            ArtifactKind::PasswordReset => "password_reset",
            ArtifactKind::EmailVerification => "email_verification",
            ArtifactKind::Invitation => "invitation",
            ArtifactKind::PasskeyCeremony => "passkey_ceremony",
        }
    }
}

#[async_trait]
pub trait UserStore {
    /// Fails with [`StoreError::Conflict`] when the user name is taken (case-insensitively).
    async fn insert_user(&self, user: &User, origin: UserOrigin) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Replaces the user if its stored version is still `expected_version`. A user left
    /// inactive loses, in the same transaction, every session, code and token they hold.
    async fn update_user(
        &self,
        user: &User,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update>;
    /// Deletes the user with everything they hold; `false` if there was no such user.
    async fn delete_user(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    async fn list_users(&self, query: &ListQuery) -> StoreResult<Page<User>>;
    /// The groups each of these users belongs to.
    async fn memberships(&self, user_ids: &[String]) -> StoreResult<Vec<GroupRef>>;
}

#[async_trait]
pub trait GroupStore {
    /// Fails with [`StoreError::Conflict`] when the name is taken (case-insensitively) and with
    /// [`StoreError::MissingReference`] when a member is no user.
    async fn insert_group(&self, group: &Group) -> StoreResult<()>;
    async fn group(&self, id: &str) -> StoreResult<Option<Group>>;
    /// Replaces the group, members included, if its stored version is still `expected_version`;
    /// users who joined or left get a new version too.
    async fn update_group(
        &self,
        group: &Group,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update>;
    async fn delete_group(&self, id: &str, now: UnixTime) -> StoreResult<bool>;
    /// Groups matching the query; `members` says whether to load their members.
    async fn list_groups(&self, query: &ListQuery, members: bool) -> StoreResult<Page<Group>>;
}

#[async_trait]
pub trait ClientStore {
    /// Fails with [`StoreError::Conflict`] when the client id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
    /// Inserts the client, or replaces the one with its id (declarative bootstrap).
    async fn put_client(&self, client: &Client) -> StoreResult<()>;
    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>>;
}

#[async_trait]
pub trait ConsentStore {
    /// The scope the user already granted to the client, if any.
    async fn granted_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>>;
    async fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait CodeStore {
    async fn insert_code(&self, code_hash: &str, code: &AuthCode) -> StoreResult<()>;
    /// The code's record, redeemed or not, expired or not (while it is kept): what the token
    /// endpoint checks the request against before it redeems the code.
    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>>;
    /// Atomically marks the code redeemed: of any number of concurrent calls, one gets `Redeemed`.
    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption>;
}

#[async_trait]
pub trait TokenStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Revokes one access token.
    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()>;
    /// Revokes every access and refresh token of a grant (a token family) and burns its unredeemed
    /// code, atomically; returns how many rows were newly revoked.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait RefreshTokenStore {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Atomically marks `old_hash` rotated and stores `new`, provided `old_hash` is still live and
    /// unrotated: of concurrent rotations of one token, exactly one gets [`Rotation::Rotated`].
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation>;
    /// The grace-window retry: once per token, if `old_hash` was rotated at or after
    /// `rotated_since` and its successor is still unused, revokes that successor and stores `new`
    /// in its place.
    async fn replace_successor(
        &self,
        old_hash: &str,
        rotated_since: UnixTime,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation>;
    /// A rotated refresh token came back (RFC 9700 §4.14.2): revokes its grant as
    /// [`TokenStore::revoke_grant`] does and, if that revoked anything, records the reuse (an
    /// audit row and `token.reuse_detected`) in the same transaction. Returns how many rows were
    /// newly revoked: a family already dead records nothing again.
    async fn revoke_reused_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64>;
    /// The grants made in an SSO session (through its codes and refresh tokens).
    async fn grants_of_session(&self, session_id: &str) -> StoreResult<Vec<String>>;
    /// The user's grants that still have an unrevoked refresh token, as (grant id, the session
    /// it was made in), ordered by grant id.
    async fn refresh_grants_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, Option<String>)>>;
}

/// TTL'd opaque payloads (the node-oidc-provider adapter shape).
#[async_trait]
pub trait ArtifactStore {
    /// `user_id` names the user the artifact belongs to, if any: removing the user (or
    /// deactivating them) removes it.
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        user_id: Option<&str>,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()>;
    /// The payload, unless missing or expired at `now`.
    async fn artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>>;
    /// Returns whether there was something to delete: of concurrent deletions, one gets `true`.
    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<bool>;
    /// The live artifacts of `kind` that belong to `user_id`, as (id hash, payload), ordered by
    /// id hash.
    async fn user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, String)>>;

    /// Deletes every live artifact of `kind` that belongs to `user_id` (a user's mailed links).
    async fn delete_user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        for (id_hash, _) in self.user_artifacts(kind, user_id, now).await? {
            self.delete_artifact(kind, &id_hash).await?;
        }
        Ok(())
    }
}

#[async_trait]
pub trait KeyStore {
    /// Every stored key in insertion order, oldest first (several may share a `created_at`).
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait MfaStore {
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>>;
    /// Stores a new unconfirmed seed, replacing an unconfirmed one; a confirmed enrollment is
    /// left alone (returns `false`).
    async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Confirms the pending enrollment of seed `secret_sealed` with the step of its first code
    /// and replaces the user's recovery codes, atomically. `false` if the pending enrollment is
    /// not that seed's (none, or another one put since by a second tab: the enrolled seed is
    /// always the one whose code and recovery codes the user was shown).
    async fn confirm_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
        recovery_code_hashes: &[String],
    ) -> StoreResult<bool>;
    /// Accepts a code's time step once: `true` only if `step` is newer than every step used before
    /// (RFC 6238 §5.2: a code must not be accepted twice). Also clears the attempt counts.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;
    /// Consumes one recovery code; `true` if it existed. Also clears the attempt counts.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool>;
    /// Claims the right to check one code of a confirmed enrollment, in one atomic step: the
    /// attempt is counted before it is checked (a success clears the counts), so of any number
    /// of parallel attempts at most `limit.max` per window are checked (security review
    /// finding 2). A window starts at the first attempt after `limit.window_start`.
    async fn claim_mfa_attempt(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: &MfaLimit,
    ) -> StoreResult<MfaAttempt>;
    /// Records that the user's second factor locked for good (the `mfa.locked` event).
    async fn record_mfa_locked(&self, user_id: &str, now: UnixTime) -> StoreResult<()>;
    /// Removes TOTP and recovery codes (not passkeys); `true` if there was an enrollment.
    async fn delete_mfa(&self, user_id: &str) -> StoreResult<bool>;
}

/// A WebAuthn credential registered to a user: a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential id, base64url. One credential belongs to one user (WebAuthn §7.1 step 26).
    pub credential_id: String,
    pub user_id: String,
    /// What the user called it.
    pub name: String,
    /// The credential as the WebAuthn library keeps it (public key, counter, flags), as JSON.
    pub credential: String,
    /// The authenticator's signature counter at the last use (WebAuthn §6.1.1); 0 for one that
    /// keeps none.
    pub sign_count: u32,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

#[async_trait]
pub trait PasskeyStore {
    /// Registers a passkey; `Conflict` if its credential id is registered already (to anyone).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    /// Records a use of the passkey with the credential and counter it leaves, atomically and
    /// only if the counter moved forward (or the authenticator keeps none: both 0). `false`
    /// otherwise: a counter that did not grow may mean a cloned authenticator (WebAuthn §6.1.1),
    /// and of two parallel uses of one assertion's counter one loses.
    async fn use_passkey(
        &self,
        credential_id: &str,
        credential: &str,
        sign_count: u32,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Removes one of the user's passkeys; `true` if it was theirs and there.
    async fn delete_passkey(&self, user_id: &str, credential_id: &str) -> StoreResult<bool>;
}

/// The limits [`MfaStore::claim_mfa_attempt`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaLimit {
    /// Attempts before this time belong to an earlier window.
    pub window_start: UnixTime,
    /// Attempts checked per window.
    pub max: u32,
    /// Attempts without a success after which the factor stays locked until an administrator
    /// resets it.
    pub lock_after: u32,
}

/// The answer to a claimed second-factor attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaAttempt {
    /// Check the code. The counts include this attempt.
    Allowed { failures: u32, consecutive: u32 },
    /// The window's attempts are used up.
    Limited,
    /// Locked until an administrator resets the factor.
    Locked,
    /// No confirmed enrollment.
    NotEnrolled,
}

/// How a password sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    /// Wrong password, unknown user name or inactive account: the login page does not say which.
    Failure,
}

impl LoginOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Failure => "failure",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Success, Self::Failure]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// One password sign-in attempt (`login_attempts`), kept [`LOGIN_ATTEMPT_RETENTION`] seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// SHA-256 of the user name as typed, case-folded: attempts on one name are found together,
    /// whether or not it names a user, and what was typed (sometimes a password) is not kept.
    pub username_hash: String,
    pub ip: String,
    pub outcome: LoginOutcome,
    pub at: UnixTime,
}

/// How long login attempts are kept: 30 days.
pub const LOGIN_ATTEMPT_RETENTION: UnixTime = 30 * 24 * 3600;

#[async_trait]
pub trait LoginAttemptStore {
    async fn record_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<()>;
    /// The newest `limit` attempts on a user name hash, newest first.
    async fn login_attempts(
        &self,
        username_hash: &str,
        limit: u32,
    ) -> StoreResult<Vec<LoginAttempt>>;
}

/// The transactional outbox of audit events ([`events`]). Store methods that change users,
/// groups, MFA or refresh families write their event themselves, in their own transaction.
#[async_trait]
pub trait OutboxStore {
    /// Ends a user's session and records `user.logged_out`, atomically; `false` if the session
    /// was already gone (then nothing is recorded).
    async fn log_out(
        &self,
        id_hash: &str,
        user_id: &str,
        sid: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Queues an event that reports no change of this store: a message to mail, or a change
    /// made elsewhere.
    async fn enqueue(&self, event: &events::NewEvent) -> StoreResult<()>;
    /// Takes up to `limit` events of `channel` due at `now`, oldest first, counts an attempt for
    /// each, and holds them until `lease_until`: meanwhile no other instance takes them.
    async fn claim_events(
        &self,
        channel: events::Channel,
        now: UnixTime,
        lease_until: UnixTime,
        limit: u32,
    ) -> StoreResult<Vec<events::OutboxEvent>>;
    /// Marks an event claimed until `claimed_until` delivered (a message's sealed parts are
    /// dropped then). Ignored if that claim has run
    /// out and the event was claimed again: the newer claim decides.
    async fn event_delivered(
        &self,
        id: &str,
        claimed_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Records why the attempt of the claim `claimed_until` failed: the event is due again at
    /// `retry_at`, or, without one, dead (kept and listed, never retried). Ignored, as above,
    /// for a claim that ran out.
    async fn event_failed(
        &self,
        id: &str,
        claimed_until: UnixTime,
        error: &str,
        retry_at: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Dead events, newest first.
    async fn dead_events(&self, limit: u32) -> StoreResult<Vec<events::OutboxEvent>>;
}

/// Removal of what has expired, in bounded batches so no statement holds the database for long.
#[async_trait]
pub trait PurgeStore {
    /// Deletes up to `batch` expired rows of each table: codes that expired before
    /// `codes_expired_before` (kept a while longer so a replay can still revoke what they issued),
    /// login attempts [`LOGIN_ATTEMPT_RETENTION`] after they were made, events
    /// [`events::EVENT_RETENTION`] after they occurred, everything else once expired at `now`.
    /// Returns how many rows went.
    async fn purge_expired(
        &self,
        now: UnixTime,
        codes_expired_before: UnixTime,
        batch: u32,
    ) -> StoreResult<u64>;
}

/// Everything Tessera persists, behind one object-safe trait.
#[async_trait]
pub trait Store:
    UserStore
    + GroupStore
    + ClientStore
    + ConsentStore
    + CodeStore
    + TokenStore
    + RefreshTokenStore
    + ArtifactStore
    + KeyStore
    + MfaStore
    + PasskeyStore
    + LoginAttemptStore
    + OutboxStore
    + PurgeStore
    + Send
    + Sync
{
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Stores the tokens of a grant just made: its access token and, if issued, its first refresh
    /// token. One write where a backend can (the token endpoint's hot path, issue 8).
    async fn issue_tokens(
        &self,
        access: &TokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        self.insert_token(access).await?;
        match refresh {
            Some(refresh) => self.insert_refresh_token(refresh).await,
            None => Ok(()),
        }
    }

    /// [`RefreshTokenStore::rotate_refresh_token`], storing `access` (the access token issued with
    /// the new refresh token) only if this rotation wins. One write where a backend can.
    async fn rotate_and_issue(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        access: &TokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        let rotation = self.rotate_refresh_token(old_hash, new, now).await?;
        if rotation == Rotation::Rotated {
            self.insert_token(access).await?;
        }
        Ok(rotation)
    }
}
