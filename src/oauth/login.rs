//! The login steps of an interaction: the password page, then the TOTP page when the user has
//! TOTP or the request demands MFA.

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::mfa::{self, Verdict};
use crate::account::session::Authentication;
use crate::account::users;
use crate::clock;
use crate::http::csrf;
use crate::oauth::interaction::{self, check_csrf, Interaction, InteractionQuery, Refusal};
use crate::state::AppState;
use crate::store::Client;
use crate::ui::{self, LoginPage, MfaPage};

/// Whom the login page names: the client, or the account console.
fn audience(client: &Option<Client>) -> &str {
    client
        .as_ref()
        .map_or("your account", |c| c.client_id.as_str())
}

pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Response {
    let id = query.interaction.unwrap_or_default();
    let (interaction, client) = match interaction::load(&state, &jar, &id).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    if interaction.pending_mfa.is_some() {
        return Redirect::to(&format!("/login/mfa?interaction={id}")).into_response();
    }
    let page = LoginPage {
        client_id: audience(&client),
        interaction: &id,
        csrf_token: csrf::cookie_token(&jar).unwrap_or_default(),
        username: "",
        error: None,
    };
    ui::render(StatusCode::OK, &page)
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
    let (interaction, client) = interaction::load(&state, &jar, &id).await?;
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let user =
        users::authenticate(state.store.as_ref(), &state.passwords, &username, password).await?;
    let Some(user) = user else {
        // One message for unknown users, wrong passwords and disabled accounts.
        tracing::info!("login failed");
        let page = LoginPage {
            client_id: audience(&client),
            interaction: &id,
            csrf_token: csrf::cookie_token(&jar).unwrap_or_default(),
            username: &username,
            error: Some("Incorrect username or password."),
        };
        return Ok(ui::render(StatusCode::UNAUTHORIZED, &page));
    };
    interaction::after_password(&state, jar, &id, interaction, client, &user.id).await
}

/// The TOTP step's interaction, provided someone passed the password step for it.
async fn pending(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Result<(Interaction, Option<Client>, String), Refusal> {
    let (interaction, client) = interaction::load(state, jar, id).await?;
    let user_id = interaction.pending_mfa.clone().ok_or(Refusal::Expired)?;
    Ok((interaction, client, user_id))
}

fn mfa_page(
    jar: &CookieJar,
    id: &str,
    client: &Option<Client>,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let page = MfaPage {
        client_id: audience(client),
        interaction: id,
        csrf_token: csrf::cookie_token(jar).unwrap_or_default(),
        error,
    };
    ui::render(status, &page)
}

pub async fn mfa_step_page(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Response {
    let id = query.interaction.unwrap_or_default();
    match pending(&state, &jar, &id).await {
        Ok((_, client, _)) => mfa_page(&jar, &id, &client, StatusCode::OK, None),
        Err(refusal) => refusal.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct MfaForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    code: Option<String>,
}

pub async fn mfa_step_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<MfaForm>,
) -> Response {
    mfa_step(state, jar, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn mfa_step(state: AppState, jar: CookieJar, form: MfaForm) -> Result<Response, Refusal> {
    check_csrf(&jar, form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client, user_id) = pending(&state, &jar, &id).await?;
    let user = state
        .store
        .user(&user_id)
        .await?
        .filter(|u| u.active)
        .ok_or(Refusal::Expired)?;
    let code = form.code.unwrap_or_default();
    match mfa::verify(&state, &user.id, &user.username, &code).await? {
        Verdict::Accepted => {
            let authentication = Authentication::multi_factor(clock::now());
            interaction::signed_in(
                &state,
                jar,
                &id,
                interaction,
                client,
                &user.id,
                authentication,
            )
            .await
        }
        Verdict::Rejected => Ok(mfa_page(
            &jar,
            &id,
            &client,
            StatusCode::UNAUTHORIZED,
            Some("That code is not valid."),
        )),
        Verdict::LockedOut => Ok(mfa_page(
            &jar,
            &id,
            &client,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many wrong codes. Wait a few minutes, then try again."),
        )),
    }
}
