//! Interactions: the state of a sign-in between its start (an authorization request, or the
//! account console) and its end, parked server-side under a random id.
//!
//! An interaction is bound to the browser that started it (by the hash of that browser's CSRF
//! token), so a link to someone else's interaction is useless. It records the user who passed the
//! password step but still owes the second factor, and the session that finally signed in, so
//! consent is always given by the user who just authenticated.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::oauth::authorize::AuthorizationRequest;
use crate::secret;
use crate::store::{ArtifactKind, Client, Store, UnixTime};
use crate::ui;
use crate::web::{csrf, paths};

/// What the sign-in is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Purpose {
    Authorize(AuthorizationRequest),
    /// The user's own account pages.
    Account,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub purpose: Purpose,
    /// SHA-256 of the starting browser's CSRF token.
    browser: String,
    /// The session that authenticated for this interaction, once one has.
    pub sid: Option<String>,
    /// A user who passed the password (or holds a password-only session) and owes the TOTP step.
    pub pending_mfa: Option<String>,
}

impl Interaction {
    pub fn new(purpose: Purpose, csrf_token: &str) -> Self {
        Interaction {
            purpose,
            browser: secret::hash(csrf_token),
            sid: None,
            pending_mfa: None,
        }
    }

    pub fn request(&self) -> Option<&AuthorizationRequest> {
        match &self.purpose {
            Purpose::Authorize(request) => Some(request),
            Purpose::Account => None,
        }
    }
}

/// The id of a sign-in to the account pages before its password is checked. Nothing is stored
/// for it: the account pages must not store a row for every visitor without a session (security
/// review finding 8). It is bound to the browser by its CSRF cookie like any other, and gets an
/// id of its own if it must be parked for the second factor.
pub const ACCOUNT_SIGN_IN: &str = "account";

/// Where interactions are parked: artifacts in the store, kept for the interaction lifetime,
/// each bound to the browser that started it by its CSRF cookie (named after `https`).
pub struct Interactions {
    store: Arc<dyn Store>,
    lifetime: Duration,
    https: bool,
}

impl Interactions {
    pub fn new(config: &Config, store: Arc<dyn Store>) -> Self {
        Interactions {
            store,
            lifetime: config.lifetimes.interaction,
            https: config.is_https(),
        }
    }

    /// Parks a new interaction; returns its id.
    pub async fn save_new(&self, interaction: &Interaction) -> Result<String> {
        let id = secret::generate();
        self.save(&id, interaction).await?;
        Ok(id)
    }

    pub async fn save(&self, id: &str, interaction: &Interaction) -> Result<()> {
        let payload = serde_json::to_string(interaction).map_err(Error::internal)?;
        let expires_at = clock::now() + self.lifetime.as_secs() as UnixTime;
        self.store
            .put_artifact(
                ArtifactKind::Interaction,
                &secret::hash(id),
                None,
                &payload,
                expires_at,
            )
            .await?;
        Ok(())
    }

    /// Ends the interaction; `false` if another request ended it first.
    pub async fn finish(&self, id: &str) -> Result<bool> {
        Ok(self
            .store
            .delete_artifact(ArtifactKind::Interaction, &secret::hash(id))
            .await?)
    }

    /// The interaction `id` if it exists and belongs to this browser, with its client (if any).
    pub async fn load(
        &self,
        jar: &CookieJar,
        id: &str,
    ) -> Result<(Interaction, Option<Client>), InteractionRefusal> {
        if id == ACCOUNT_SIGN_IN {
            let token = csrf::browser_token(jar, self.https).ok_or(InteractionRefusal::Expired)?;
            return Ok((Interaction::new(Purpose::Account, token), None));
        }
        let payload = self
            .store
            .artifact(ArtifactKind::Interaction, &secret::hash(id), clock::now())
            .await?
            .ok_or(InteractionRefusal::Expired)?;
        let interaction: Interaction = serde_json::from_str(&payload).map_err(Error::internal)?;
        let same_browser = csrf::browser_token(jar, self.https).is_some_and(|token| {
            secret::constant_time_eq(
                secret::hash(token).as_bytes(),
                interaction.browser.as_bytes(),
            )
        });
        if !same_browser {
            return Err(InteractionRefusal::Expired);
        }
        let client = match interaction.request() {
            Some(request) => Some(
                self.store
                    .client(&request.client_id)
                    .await?
                    .ok_or(InteractionRefusal::Expired)?,
            ),
            None => None,
        };
        Ok((interaction, client))
    }
}

/// `?interaction=ID` on the pages of an interaction.
#[derive(Debug, Deserialize)]
pub struct InteractionQuery {
    pub interaction: Option<String>,
}

/// Why an interaction step cannot go on; each becomes an HTML page.
pub enum InteractionRefusal {
    Expired,
    Forged,
    /// The step needs the session that signed in for interaction `.0`, which the browser no
    /// longer has: back to its login page.
    SignInAgain(String),
    Failed(Error),
}

impl From<Error> for InteractionRefusal {
    fn from(err: Error) -> Self {
        InteractionRefusal::Failed(err)
    }
}

impl From<crate::store::StoreError> for InteractionRefusal {
    fn from(err: crate::store::StoreError) -> Self {
        InteractionRefusal::Failed(err.into())
    }
}

impl IntoResponse for InteractionRefusal {
    fn into_response(self) -> Response {
        match self {
            InteractionRefusal::Expired => ui::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request has expired or is unknown. Return to the application and start again.",
            ),
            InteractionRefusal::Forged => ui::error_page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "The form could not be verified. Reload the page and try again.",
            ),
            InteractionRefusal::SignInAgain(id) => {
                Redirect::to(&paths::for_interaction(paths::LOGIN, &id)).into_response()
            }
            InteractionRefusal::Failed(err) => ui::error_response(err),
        }
    }
}

/// A POSTed form is ours only if it carries this browser's CSRF token (`secure`: the issuer is
/// https).
pub fn check_csrf(
    jar: &CookieJar,
    secure: bool,
    submitted: Option<&str>,
) -> Result<(), InteractionRefusal> {
    if submitted.is_some_and(|token| csrf::verify(jar, secure, token)) {
        Ok(())
    } else {
        Err(InteractionRefusal::Forged)
    }
}
