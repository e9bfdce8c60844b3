//! Interactions: the state of a sign-in between its start (an authorization request, or the
//! account console) and its end, parked server-side under a random id.
//!
//! An interaction is bound to the browser that started it (by the hash of that browser's CSRF
//! token), so a link to someone else's interaction is useless. It records the user who passed the
//! password step but still owes the second factor, and the session that finally signed in, so
//! consent is always given by the user who just authenticated.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use crate::account::session::{self, Authentication, Session};
use crate::clock;
use crate::error::{Error, Result};
use crate::oauth::authorize::{self, AuthorizationRequest};
use crate::oauth::flow::{self, Step};
use crate::secret;
use crate::state::AppState;
use crate::store::{ArtifactKind, Client, Store, UnixTime};
use crate::ui;
use crate::web::paths;
use crate::web::{cookies, csrf};

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
pub struct Interactions<'a> {
    store: &'a dyn Store,
    lifetime: Duration,
    https: bool,
}

impl<'a> Interactions<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Interactions {
            store: state.store.as_ref(),
            lifetime: state.config.lifetimes.interaction,
            https: state.config.is_https(),
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

/// After the password: the next step of the sign-in ([`flow::next_step`]): the second factor
/// when the user has one, an error redirect when the request demands MFA the user cannot give,
/// else signed in.
pub async fn after_password(
    state: &AppState,
    jar: CookieJar,
    id: &str,
    mut interaction: Interaction,
    client: Option<Client>,
    user_id: &str,
) -> Result<Response, InteractionRefusal> {
    match next_step(state, &interaction, client.as_ref(), user_id, false).await? {
        Step::SecondFactor => {
            interaction.pending_mfa = Some(user_id.to_string());
            let id = if id == ACCOUNT_SIGN_IN {
                Interactions::of(state).save_new(&interaction).await?
            } else {
                Interactions::of(state).save(id, &interaction).await?;
                id.to_string()
            };
            Ok(Redirect::to(&paths::for_interaction(paths::LOGIN_MFA, &id)).into_response())
        }
        Step::Refuse(code) => {
            Interactions::of(state).finish(id).await?;
            let request = interaction.request().ok_or(InteractionRefusal::Expired)?;
            Ok(authorize::Reply::to(request, &state.config.issuer).error(authorize::refusal(code)))
        }
        step => {
            let authentication = Authentication::password(clock::now());
            let signed = SignedIn {
                user_id,
                authentication,
                step,
            };
            complete_authentication(state, jar, id, interaction, client, signed).await
        }
    }
}

/// After the second factor: the rest of the sign-in, as [`flow::next_step`] decides it.
pub async fn after_second_factor(
    state: &AppState,
    jar: CookieJar,
    id: &str,
    interaction: Interaction,
    client: Option<Client>,
    user_id: &str,
) -> Result<Response, InteractionRefusal> {
    let signed = SignedIn {
        user_id,
        authentication: Authentication::multi_factor(clock::now()),
        step: next_step(state, &interaction, client.as_ref(), user_id, true).await?,
    };
    complete_authentication(state, jar, id, interaction, client, signed).await
}

/// What comes after `user_id` proved a password (and, with `mfa`, a second factor) just now.
async fn next_step(
    state: &AppState,
    interaction: &Interaction,
    client: Option<&Client>,
    user_id: &str,
    mfa: bool,
) -> Result<Step> {
    let request = interaction.request();
    let sign_in = client.zip(request);
    let facts = authorize::user_facts(state, sign_in, user_id, mfa, true).await?;
    Ok(flow::next_step(request, Some(facts)))
}

/// A user whose authentication is complete, and the step the sign-in goes on with.
struct SignedIn<'a> {
    user_id: &'a str,
    authentication: Authentication,
    step: Step,
}

/// Authentication is complete: a fresh session (a new id at every login, so a planted one is
/// worthless), then consent, a code, or the account page.
async fn complete_authentication(
    state: &AppState,
    jar: CookieJar,
    id: &str,
    mut interaction: Interaction,
    client: Option<Client>,
    signed: SignedIn<'_>,
) -> Result<Response, InteractionRefusal> {
    let SignedIn {
        user_id,
        authentication,
        step,
    } = signed;
    let session_expiry = clock::now() + state.config.lifetimes.session.as_secs() as UnixTime;
    let (cookie_value, session) = session::start(
        state.store.as_ref(),
        user_id,
        authentication,
        session_expiry,
    )
    .await?;
    if let Some(old) = jar.get(session::COOKIE) {
        state
            .store
            .delete_artifact(ArtifactKind::Session, &secret::hash(old.value()))
            .await?;
    }
    tracing::info!(%user_id, acr = %session.authentication.acr, "signed in");
    let jar = jar.add(cookies::build(
        session::COOKIE,
        cookie_value,
        state.config.is_https(),
    ));
    interaction.sid = Some(session.sid.clone());
    interaction.pending_mfa = None;
    let next = match (step, &interaction.purpose, client) {
        (Step::Consent, Purpose::Authorize(_), Some(_)) => {
            Interactions::of(state).save(id, &interaction).await?;
            Redirect::to(&paths::for_interaction(paths::CONSENT, id)).into_response()
        }
        (Step::IssueCode, Purpose::Authorize(request), Some(client)) => {
            complete(state, id, &client, request, &session).await?
        }
        _ => {
            Interactions::of(state).finish(id).await?;
            Redirect::to(paths::ACCOUNT).into_response()
        }
    };
    Ok((jar, next).into_response())
}

/// Ends the interaction and issues its code: one code per interaction, even when a form is
/// submitted twice at once.
pub async fn complete(
    state: &AppState,
    id: &str,
    client: &Client,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<Response> {
    if !Interactions::of(state).finish(id).await? {
        return Err(Error::invalid_request(
            "this sign-in request was already completed",
        ));
    }
    authorize::issue_code(state, client, request, session).await
}
