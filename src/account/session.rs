//! Signed-in (SSO) browser sessions. The cookie carries a random id; the store keeps only its hash
//! with the session payload, so a leaked database holds no usable session.

use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret;
use crate::store::{ArtifactKind, Store, UnixTime};

/// Name of the session cookie.
pub use crate::web::cookies::SESSION as COOKIE;

/// How the user authenticated (OIDC Core §2: `auth_time`, `acr`, `amr`), carried from the session
/// into codes and tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub auth_time: UnixTime,
    pub acr: String,
    /// RFC 8176 method references, e.g. `["pwd"]`.
    pub amr: Vec<String>,
}

impl Authentication {
    pub fn password(now: UnixTime) -> Self {
        Authentication {
            auth_time: now,
            acr: "pwd".into(),
            amr: vec!["pwd".into()],
        }
    }
}

/// Whether an authentication with these RFC 8176 method references counts as multi-factor.
pub fn is_mfa(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "mfa")
}

/// The acr of a phishing-resistant authentication (OpenID EAP ACR Values 1.0 §2).
pub const PHISHING_RESISTANT: &str = "phr";

/// Whether an authentication with these method references was phishing-resistant: it used a
/// passkey (`pop`), whose signature covers the origin it was made for.
pub fn is_phishing_resistant(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "pop")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Public session id, the `sid` claim (OIDC Front-/Back-Channel Logout); not the cookie value.
    pub sid: String,
    pub user_id: String,
    pub authentication: Authentication,
}

/// Starts a new session and returns the cookie value. A fresh id at every login, so a session id
/// planted before login is worth nothing after it.
pub async fn start(
    store: &dyn Store,
    user_id: &str,
    authentication: Authentication,
    expires_at: UnixTime,
) -> Result<(String, Session)> {
    let cookie_value = secret::generate();
    let session = Session {
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_string(),
        authentication,
    };
    let payload = serde_json::to_string(&session).map_err(Error::internal)?;
    store
        .put_artifact(
            ArtifactKind::Session,
            &secret::hash(&cookie_value),
            Some(user_id),
            &payload,
            expires_at,
        )
        .await?;
    Ok((cookie_value, session))
}

/// The live session behind a cookie value, if any.
pub async fn load(store: &dyn Store, cookie_value: &str, now: UnixTime) -> Result<Option<Session>> {
    let payload = store
        .artifact(ArtifactKind::Session, &secret::hash(cookie_value), now)
        .await?;
    payload
        .map(|p| serde_json::from_str(&p).map_err(Error::internal))
        .transpose()
}

/// The browser's live session, if its cookie names one.
pub async fn current(store: &dyn Store, jar: &CookieJar, now: UnixTime) -> Result<Option<Session>> {
    match jar.get(COOKIE) {
        Some(cookie) => load(store, cookie.value(), now).await,
        None => Ok(None),
    }
}

/// A user's live sessions, each with the hash that names it in the store.
pub async fn list(store: &dyn Store, user_id: &str, now: UnixTime) -> Result<Vec<Listed>> {
    store
        .user_artifacts(ArtifactKind::Session, user_id, now)
        .await?
        .into_iter()
        .map(|(id_hash, payload)| {
            let session = serde_json::from_str(&payload).map_err(Error::internal)?;
            Ok(Listed { id_hash, session })
        })
        .collect()
}

/// A session as [`list`] finds it.
pub struct Listed {
    pub id_hash: String,
    pub session: Session,
}

/// Ends a listed session (recording `user.logged_out`) and revokes the grants made in it (its
/// refresh tokens die with it).
pub async fn end_listed(store: &dyn Store, listed: &Listed, now: UnixTime) -> Result<()> {
    let session = &listed.session;
    store
        .log_out(&listed.id_hash, &session.user_id, &session.sid, now)
        .await?;
    revoke_grants(store, session, now).await
}

/// Revokes every grant made in `session` (OIDC RP-Initiated Logout §2: signing out ends what
/// the session authorized).
pub async fn revoke_grants(store: &dyn Store, session: &Session, now: UnixTime) -> Result<()> {
    for grant_id in store.grants_of_session(&session.sid).await? {
        store.revoke_grant(&grant_id, now).await?;
    }
    Ok(())
}

/// Ends the session behind a cookie value (recording `user.logged_out`); returns it if it was
/// live.
pub async fn end(store: &dyn Store, cookie_value: &str, now: UnixTime) -> Result<Option<Session>> {
    let id_hash = secret::hash(cookie_value);
    let session = load(store, cookie_value, now).await?;
    match &session {
        Some(live) => {
            store
                .log_out(&id_hash, &live.user_id, &live.sid, now)
                .await?;
        }
        // Expired: nothing to record, only the row to drop.
        None => {
            store
                .delete_artifact(ArtifactKind::Session, &id_hash)
                .await?;
        }
    }
    Ok(session)
}
