//! Declarative bootstrap from `TESSERA_SEED_FILE` (TOML): users and clients applied at start-up on
//! every backend, idempotently — an entry that exists is updated, none is duplicated. It is how the
//! memory and hybrid backends, whose clients (and users, without Redis) live in process memory out
//! of the CLI's reach, get them, and how operators keep them in version control.
//!
//! A seeded user's id is derived from the user name (UUID v5), so every instance of a hybrid
//! deployment gives the same person the same `sub`.

use serde::Deserialize;

use crate::account::password::{is_argon2_phc, PasswordHasher};
use crate::account::self_service::end_access_after_password_reset;
use crate::account::users::{check_username, scim_attributes, NewUser};
use crate::oauth::clients::{self, ClientRegistration};
use crate::store::{Store, StoreError, Update, User, UserOrigin};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    users: Vec<SeedUser>,
    #[serde(default)]
    clients: Vec<SeedClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedUser {
    username: String,
    /// Plain text, for development: hashed at load.
    password: Option<String>,
    /// An argon2 PHC string.
    password_hash: Option<String>,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedClient {
    client_id: String,
    client_secret: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    grant_types: Vec<String>,
    scope: Option<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    require_mfa: bool,
    #[serde(default)]
    require_phishing_resistant: bool,
    #[serde(default)]
    skip_consent: bool,
    #[serde(default)]
    resource_servers: Vec<String>,
    access_token_seconds: Option<u32>,
    refresh_token_seconds: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] crate::error::Error),
}

/// Reads the seed file at `path` and applies it to `store`.
pub async fn apply_file(
    store: &dyn Store,
    hasher: &PasswordHasher,
    path: &str,
) -> Result<(), SeedError> {
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    apply_text(store, hasher, &text).await
}

/// Applies the seed file's text to `store`.
pub async fn apply_text(
    store: &dyn Store,
    hasher: &PasswordHasher,
    text: &str,
) -> Result<(), SeedError> {
    let seed: Seed = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    // Clients first: on the hybrid backend they are this process's own, and the first read of
    // users replays consents that name them.
    for client in seed.clients {
        apply_client(store, client).await?;
    }
    for user in seed.users {
        apply_user(store, hasher, user).await?;
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> SeedError {
    SeedError::Invalid(message.into())
}

/// The same id for the same user name on every instance. Derived from the lowercase name, as it
/// always was, so a seeded user's `sub` does not change with how names are compared.
fn seeded_user_id(username: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        username.to_lowercase().as_bytes(),
    )
    .to_string()
}

async fn apply_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    seed: SeedUser,
) -> Result<(), SeedError> {
    let name = seed.username.clone();
    check_username(&name).map_err(|e| invalid(format!("user {name:?}: {e}")))?;
    let existing = store.user_by_username(&name).await?;
    let password_hash = match (seed.password, seed.password_hash) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(format!(
                "user {name:?}: give exactly one of password and password_hash"
            )))
        }
        (None, Some(phc)) if is_argon2_phc(&phc) => phc,
        (None, Some(_)) => {
            return Err(invalid(format!(
                "user {name:?}: password_hash is not an argon2 PHC string"
            )))
        }
        // Keep the stored hash when it already matches, so a restart changes nothing.
        (Some(password), None) => match existing.as_ref().and_then(|u| u.password_hash.clone()) {
            Some(hash) if hasher.verify(password.clone(), Some(hash.clone())).await? => hash,
            _ => hasher.hash(password).await?,
        },
    };
    let attributes = scim_attributes(&NewUser {
        username: name.clone(),
        password: String::new(),
        email: seed.email,
        given_name: seed.given_name,
        family_name: seed.family_name,
        email_verified: false,
    });
    let now = crate::clock::now();
    let Some(current) = existing else {
        let user = User {
            id: seeded_user_id(&name),
            username: name.clone(),
            password_hash: Some(password_hash),
            active: true,
            verified_email: None,
            attributes,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        return match store.insert_user(&user, UserOrigin::Seed).await {
            Ok(()) => Ok(()),
            // Another instance applied the same seed at the same moment, if the name is now
            // this very user's; anything else is a real conflict.
            Err(StoreError::Conflict(what)) => match store.user_by_username(&name).await? {
                Some(found) if found.id == user.id => Ok(()),
                _ => Err(invalid(format!("user {name:?}: {what}"))),
            },
            Err(err) => Err(err.into()),
        };
    };
    let mut updated = current.clone();
    updated.password_hash = Some(password_hash);
    updated.attributes.extend(attributes);
    if updated == current {
        return Ok(());
    }
    updated.version += 1;
    updated.updated_at = now;
    match store.update_user(&updated, current.version, now).await? {
        // A changed password in the seed is an administrator's reset.
        Update::Done if updated.password_hash != current.password_hash => {
            Ok(end_access_after_password_reset(store, &updated.id).await?)
        }
        Update::Done => Ok(()),
        // Another instance applied the same seed at the same moment.
        Update::Stale | Update::NotFound => Ok(()),
    }
}

async fn apply_client(store: &dyn Store, seed: SeedClient) -> Result<(), SeedError> {
    let id = seed.client_id.clone();
    let secret = match (seed.public, seed.client_secret) {
        (true, None) => None,
        (false, Some(secret)) if secret.len() >= 32 => Some(secret),
        (true, Some(_)) => {
            return Err(invalid(format!(
                "client {id:?}: a public client has no client_secret"
            )))
        }
        (false, _) => {
            return Err(invalid(format!(
            "client {id:?}: a confidential client needs a client_secret of at least 32 characters"
        )))
        }
    };
    let registration = ClientRegistration {
        client_id: seed.client_id,
        redirect_uris: seed.redirect_uris,
        post_logout_redirect_uris: seed.post_logout_redirect_uris,
        grant_types: seed.grant_types,
        scope: seed.scope,
        public: seed.public,
        skip_consent: seed.skip_consent,
        require_mfa: seed.require_mfa,
        require_phishing_resistant: seed.require_phishing_resistant,
        id_token_signed_response_alg: None,
        resource_servers: seed.resource_servers,
        access_token_seconds: seed.access_token_seconds,
        refresh_token_seconds: seed.refresh_token_seconds,
    };
    clients::put(store, registration, secret.as_deref())
        .await
        .map_err(|e| match e {
            clients::RegistrationError::Store(err) => SeedError::Store(err),
            other => invalid(format!("client {id:?}: {other}")),
        })?;
    Ok(())
}
