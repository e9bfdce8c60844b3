//! The user-facing steps of an authorization request: the login page and the consent page.
//!
//! An interaction is the validated request parked server-side under a random id. It is bound to
//! the browser that started it (by the hash of that browser's CSRF token), so a link to someone
//! else's interaction is useless, and it records which session signed in for it, so consent is
//! always given by the user who just authenticated.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use crate::account::session::{self, Authentication, Session};
use crate::account::users;
use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::http::{cookies, csrf};
use crate::oauth::authorize::{self, AuthorizationRequest, Reply};
use crate::oauth::scope;
use crate::secret;
use crate::state::AppState;
use crate::store::{ArtifactKind, Client, UnixTime};
use crate::ui::{self, ConsentPage, LoginPage};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub request: AuthorizationRequest,
    /// SHA-256 of the starting browser's CSRF token.
    browser: String,
    /// The session that authenticated for this request, once someone has.
    sid: Option<String>,
}

impl Interaction {
    pub fn new(request: AuthorizationRequest, csrf_token: &str, sid: Option<String>) -> Self {
        Interaction {
            request,
            browser: secret::hash(csrf_token),
            sid,
        }
    }
}

/// Parks a new interaction; returns its id.
pub async fn save_new(state: &AppState, interaction: &Interaction) -> Result<String> {
    let id = secret::generate();
    save(state, &id, interaction).await?;
    Ok(id)
}

async fn save(state: &AppState, id: &str, interaction: &Interaction) -> Result<()> {
    let payload = serde_json::to_string(interaction).map_err(Error::internal)?;
    let expires_at = clock::now() + state.config.interaction_ttl.as_secs() as UnixTime;
    state
        .store
        .put_artifact(
            ArtifactKind::Interaction,
            &secret::hash(id),
            &payload,
            expires_at,
        )
        .await?;
    Ok(())
}

/// Ends the interaction; `false` if another request ended it first.
async fn finish(state: &AppState, id: &str) -> Result<bool> {
    Ok(state
        .store
        .delete_artifact(ArtifactKind::Interaction, &secret::hash(id))
        .await?)
}

/// Why an interaction step cannot go on; each becomes an HTML page.
enum Refusal {
    Expired,
    Forged,
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        Refusal::Failed(err)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Expired => ui::error_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in request has expired or is unknown. Return to the application and start again.",
            ),
            Refusal::Forged => ui::error_page(
                StatusCode::FORBIDDEN,
                "Request refused",
                "The form could not be verified. Reload the page and try again.",
            ),
            Refusal::Failed(err) => ui::error_response(err),
        }
    }
}

/// The interaction `id` if it exists and belongs to this browser, with its client.
async fn load(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Result<(Interaction, Client), Refusal> {
    let payload = state
        .store
        .artifact(ArtifactKind::Interaction, &secret::hash(id), clock::now())
        .await
        .map_err(Error::from)?
        .ok_or(Refusal::Expired)?;
    let interaction: Interaction = serde_json::from_str(&payload).map_err(Error::internal)?;
    let same_browser = csrf::cookie_token(jar).is_some_and(|token| {
        secret::constant_time_eq(
            secret::hash(token).as_bytes(),
            interaction.browser.as_bytes(),
        )
    });
    if !same_browser {
        return Err(Refusal::Expired);
    }
    let client = state
        .store
        .client(&interaction.request.client_id)
        .await
        .map_err(Error::from)?
        .ok_or(Refusal::Expired)?;
    Ok((interaction, client))
}

/// A POSTed form is ours only if it carries this browser's CSRF token.
fn check_csrf(jar: &CookieJar, submitted: Option<&str>) -> Result<(), Refusal> {
    if submitted.is_some_and(|token| csrf::verify(jar, token)) {
        Ok(())
    } else {
        Err(Refusal::Forged)
    }
}

#[derive(Debug, Deserialize)]
pub struct InteractionQuery {
    interaction: Option<String>,
}

pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Response {
    let id = query.interaction.unwrap_or_default();
    let (_, client) = match load(&state, &jar, &id).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let csrf_token = csrf::cookie_token(&jar).unwrap_or_default();
    ui::render(
        StatusCode::OK,
        &LoginPage {
            client_id: &client.client_id,
            interaction: &id,
            csrf_token,
            username: "",
            error: None,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

pub async fn login_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    login(state, jar, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn login(state: AppState, jar: CookieJar, form: LoginForm) -> Result<Response, Refusal> {
    check_csrf(&jar, form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (mut interaction, client) = load(&state, &jar, &id).await?;
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let user =
        users::authenticate(state.store.as_ref(), &state.passwords, &username, password).await?;
    let Some(user) = user else {
        // One message for unknown users, wrong passwords and disabled accounts.
        tracing::info!("login failed");
        return Ok(ui::render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                client_id: &client.client_id,
                interaction: &id,
                csrf_token: csrf::cookie_token(&jar).unwrap_or_default(),
                username: &username,
                error: Some("Incorrect username or password."),
            },
        ));
    };
    tracing::info!(user_id = %user.id, "login succeeded");
    let now = clock::now();
    let session_expiry = now + state.config.session_ttl.as_secs() as UnixTime;
    let (cookie_value, session) = session::start(
        state.store.as_ref(),
        &user.id,
        Authentication::password(now),
        session_expiry,
    )
    .await?;
    // A fresh session id at every login; the old session, if any, ends here.
    if let Some(old) = jar.get(session::COOKIE) {
        state
            .store
            .delete_artifact(ArtifactKind::Session, &secret::hash(old.value()))
            .await
            .map_err(Error::from)?;
    }
    let jar = jar.add(cookies::build(
        session::COOKIE,
        cookie_value,
        state.config.is_https(),
    ));
    interaction.sid = Some(session.sid.clone());
    let next = if authorize::consent_needed(&state, &client, &interaction.request, &user.id).await?
    {
        save(&state, &id, &interaction).await?;
        Redirect::to(&format!("/consent?interaction={id}")).into_response()
    } else {
        complete(&state, &id, &client, &interaction.request, &session).await?
    };
    Ok((jar, next).into_response())
}

async fn complete(
    state: &AppState,
    id: &str,
    client: &Client,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<Response> {
    // One code per interaction, even when the form is submitted twice at once.
    if !finish(state, id).await? {
        return Err(Error::invalid_request(
            "this sign-in request was already completed",
        ));
    }
    authorize::issue_code(state, client, request, session).await
}

/// The session that signed in for this interaction; without one the user goes to the login page.
async fn signed_in_session(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
    interaction: &Interaction,
) -> Result<Session, Result<Response, Refusal>> {
    let session = authorize::current_session(state, jar, clock::now())
        .await
        .map_err(|e| Err(e.into()))?;
    match (session, &interaction.sid) {
        (Some(session), Some(sid)) if session.sid == *sid => Ok(session),
        _ => Err(Ok(
            Redirect::to(&format!("/login?interaction={id}")).into_response()
        )),
    }
}

pub async fn consent_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Response {
    consent_view(state, jar, query.interaction.unwrap_or_default())
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn consent_view(state: AppState, jar: CookieJar, id: String) -> Result<Response, Refusal> {
    let (interaction, client) = load(&state, &jar, &id).await?;
    let session = match signed_in_session(&state, &jar, &id, &interaction).await {
        Ok(session) => session,
        Err(other) => return other,
    };
    let user = state
        .store
        .user(&session.user_id)
        .await
        .map_err(Error::from)?
        .ok_or(Refusal::Expired)?;
    let scopes = interaction
        .request
        .scope
        .split(' ')
        .map(|s| (s.to_string(), ui::describe_scope(s)))
        .collect();
    Ok(ui::render(
        StatusCode::OK,
        &ConsentPage {
            client_id: &client.client_id,
            username: &user.username,
            scopes,
            interaction: &id,
            csrf_token: csrf::cookie_token(&jar).unwrap_or_default(),
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    decision: Option<String>,
}

pub async fn consent_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    consent(state, jar, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn consent(state: AppState, jar: CookieJar, form: ConsentForm) -> Result<Response, Refusal> {
    check_csrf(&jar, form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client) = load(&state, &jar, &id).await?;
    let session = match signed_in_session(&state, &jar, &id, &interaction).await {
        Ok(session) => session,
        Err(other) => return other,
    };
    let request = &interaction.request;
    match form.decision.as_deref() {
        Some("allow") => {
            let store = &state.store;
            let earlier = store
                .granted_scope(&session.user_id, &client.client_id)
                .await
                .map_err(Error::from)?;
            let granted = scope::union(earlier.as_deref().unwrap_or_default(), &request.scope);
            store
                .record_consent(&session.user_id, &client.client_id, &granted, clock::now())
                .await
                .map_err(Error::from)?;
            Ok(complete(&state, &id, &client, request, &session).await?)
        }
        Some("deny") => {
            finish(&state, &id).await?;
            let denied = Error::oauth(ErrorCode::AccessDenied, "the user denied the request");
            Ok(Reply::to(request, &state.config.issuer).error(denied))
        }
        _ => Err(Error::invalid_request("decision must be allow or deny").into()),
    }
}
