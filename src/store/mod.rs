//! Persistence seam. Protocol code talks to these small traits; which backend runs behind them is
//! decided once at start-up (`open`). Traits are grouped by the code that needs them (the fosite
//! habit) and combined in [`Store`], used as `Arc<dyn Store>`.
//!
//! Every secret handed to a store is already hashed ([`crate::secret::SecretHash`]): a store never
//! sees a code, token or session id in clear.

mod sql;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use sql::SqlStore;

/// Unix time in seconds, the unit of every timestamp in the store.
pub type UnixTime = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key already exists (user name, client id).
    #[error("{0} already exists")]
    Conflict(String),
    /// The backend failed or is unreachable. The source is for logs only.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// argon2id PHC string; `None` for users who cannot sign in with a password.
    pub password_hash: Option<String>,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub skip_consent: bool,
}

impl Client {
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
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactKind::Session => "session",
            ArtifactKind::Interaction => "interaction",
        }
    }
}

#[async_trait]
pub trait UserStore {
    /// Fails with [`StoreError::Conflict`] when the user name is taken (case-insensitively).
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
}

#[async_trait]
pub trait ClientStore {
    /// Fails with [`StoreError::Conflict`] when the client id is taken.
    async fn insert_client(&self, client: &Client) -> StoreResult<()>;
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
    /// Atomically marks the code redeemed: of any number of concurrent calls, one gets `Redeemed`.
    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption>;
}

#[async_trait]
pub trait TokenStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()>;
    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;
    /// Revokes every token of a grant; returns how many were newly revoked.
    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64>;
}

/// TTL'd opaque payloads (the node-oidc-provider adapter shape).
#[async_trait]
pub trait ArtifactStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
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
    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait KeyStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
}

/// Everything Tessera persists, behind one object-safe trait.
#[async_trait]
pub trait Store:
    UserStore
    + ClientStore
    + ConsentStore
    + CodeStore
    + TokenStore
    + ArtifactStore
    + KeyStore
    + Send
    + Sync
{
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}
