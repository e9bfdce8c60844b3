//! The sign-up page (`/signup`, inputs `username`, `email`, `password`), when sign-up is open.
//! Started from an authorization request (the login page's link, or `prompt=create`), it goes
//! on with that request once the account exists, as a sign-in with the new password would;
//! started alone, it ends on the account page.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::invitation;
use crate::account::signup::{NewAccount, SignupRefused, SignupService};
use crate::oauth::interaction::{check_csrf, InteractionRefusal, ACCOUNT_SIGN_IN};
use crate::oauth::sign_in::SignIn;
use crate::state::AppState;
use crate::ui::{self, SignupPage};
use crate::web::client_ip::ClientIp;
use crate::web::{csrf, retry_after};

#[derive(Debug, Deserialize)]
pub struct SignupQuery {
    interaction: Option<String>,
    /// An invitation's token (`tessera user invite`).
    invitation: Option<String>,
}

/// GET /signup[?interaction=…][?invitation=…]
pub async fn signup_page(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Query(query): Query<SignupQuery>,
) -> Result<Response, InteractionRefusal> {
    let id = query
        .interaction
        .unwrap_or_else(|| ACCOUNT_SIGN_IN.to_string());
    let invited = match &query.invitation {
        Some(token) => match invitation::pending(state.store.as_ref(), token).await? {
            Some(invited) => Some(invited.email),
            None => return Ok(invitation_invalid()),
        },
        None if !sign_in.offers_signup => return Ok(invitation_only()),
        None => None,
    };
    let (jar, csrf_token) = csrf::page_token(jar, sign_in.https());
    // The interaction must be this browser's (an account sign-in only needs its CSRF cookie).
    sign_in.interactions.load(&jar, &id).await?;
    let page = SignupPage {
        interaction: &id,
        csrf_token,
        username: "",
        email: invited.as_deref().unwrap_or_default(),
        invitation: query.invitation.as_deref(),
        error: None,
    };
    Ok((jar, ui::render(StatusCode::OK, &page)).into_response())
}

fn invitation_invalid() -> Response {
    ui::error_page(
        StatusCode::BAD_REQUEST,
        "Invitation expired",
        "This invitation was already used or has expired. Ask for a new one.",
    )
}

fn invitation_only() -> Response {
    ui::error_page(
        StatusCode::FORBIDDEN,
        "By invitation only",
        "Accounts here are made by invitation. Ask whoever runs this service for one.",
    )
}

#[derive(Debug, Deserialize)]
pub struct SignupForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    invitation: Option<String>,
}

/// POST /signup: makes the account and signs it in for the interaction.
pub async fn signup_submit(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<SignupForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, sign_in.https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client) = sign_in.interactions.load(&jar, &id).await?;
    let account = NewAccount {
        username: form.username.unwrap_or_default(),
        email: form.email.unwrap_or_default().trim().to_string(),
        password: form.password.unwrap_or_default(),
    };
    let (username, email) = (account.username.clone(), account.email.clone());
    let service = SignupService {
        store: state.store.as_ref(),
        passwords: &state.passwords,
        throttle: &state.throttle,
        settings: &state.config.signup,
        verification: state.verification.as_ref(),
    };
    let invitation = form.invitation.as_deref();
    let refused = match service.sign_up(account, invitation, ip).await? {
        Ok(user) => {
            return sign_in
                .after_password(jar, &id, interaction, client, &user.id)
                .await
        }
        Err(refused) => refused,
    };
    let status = match refused {
        SignupRefused::Invalid(_) => StatusCode::BAD_REQUEST,
        SignupRefused::NameTaken => StatusCode::CONFLICT,
        SignupRefused::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
    };
    let page = SignupPage {
        interaction: &id,
        csrf_token: csrf::form_token(&jar, sign_in.https()).unwrap_or_default(),
        username: &username,
        email: &email,
        invitation,
        error: Some(refused.message()),
    };
    let mut response = ui::render(status, &page);
    if let SignupRefused::Throttled(wait) = refused {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after(wait));
    }
    Ok(response)
}
