//! The password-recovery pages (CONTRACT.md): `/password/forgot` asks for an address, and the
//! mailed link opens `/password/reset`, whose form sets the new password. A GET of the link only
//! shows the form (mail scanners open links); the POST uses it up. Both forms are CSRF-checked.
//! They exist only when mail is configured.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::recovery::{Recovery, Requested, Reset};
use crate::account::signup::MAX_EMAIL_LENGTH;
use crate::oauth::interaction::{check_csrf, InteractionRefusal};
use crate::state::AppState;
use crate::ui::{self, NoticePage, PasswordForgotPage, PasswordResetPage};
use crate::web::client_ip::ClientIp;
use crate::web::{csrf, retry_after};

/// GET /password/forgot
pub async fn forgot_page(State(state): State<AppState>, jar: CookieJar) -> Response {
    let (jar, token) = csrf::page_token(jar, state.config.is_https());
    let page = PasswordForgotPage {
        csrf_token: token,
        error: None,
    };
    (jar, ui::render(StatusCode::OK, &page)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    csrf_token: Option<String>,
    email: Option<String>,
}

/// POST /password/forgot: the same answer whether or not an account has the address.
pub async fn forgot_submit(
    State(state): State<AppState>,
    State(recovery): State<Arc<Recovery>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<ForgotForm>,
) -> Result<Response, InteractionRefusal> {
    let secure = state.config.is_https();
    check_csrf(&jar, secure, form.csrf_token.as_deref())?;
    let email = form.email.unwrap_or_default();
    let email = email.trim();
    if email.is_empty() || email.len() > MAX_EMAIL_LENGTH || email.chars().any(char::is_control) {
        let page = PasswordForgotPage {
            csrf_token: csrf::form_token(&jar, secure).unwrap_or_default(),
            error: Some("Enter the email address of your account."),
        };
        return Ok(ui::render(StatusCode::BAD_REQUEST, &page));
    }
    Ok(match recovery.request(&state.throttle, email, ip).await {
        Requested::Answered => ui::render(
            StatusCode::OK,
            &NoticePage {
                title: "Check your mail",
                message: "If an account has this address, a link to choose a new password is on \
                          its way. It works once, for a short while.",
            },
        ),
        Requested::Throttled(wait) => {
            let mut response = ui::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Too many password resets were asked for. Try again later.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after(wait));
            response
        }
    })
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// GET /password/reset?token=…: the form, if the link still works; nothing is used up.
pub async fn reset_page(
    State(state): State<AppState>,
    State(recovery): State<Arc<Recovery>>,
    jar: CookieJar,
    Query(query): Query<LinkQuery>,
) -> Result<Response, InteractionRefusal> {
    let token = query.token.unwrap_or_default();
    let Some(user) = recovery.link_user(&token).await? else {
        return Ok(link_invalid());
    };
    let (jar, csrf_token) = csrf::page_token(jar, state.config.is_https());
    let page = PasswordResetPage {
        csrf_token,
        token: &token,
        username: &user.username,
        error: None,
    };
    Ok((jar, ui::render(StatusCode::OK, &page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    csrf_token: Option<String>,
    token: Option<String>,
    password: Option<String>,
}

/// POST /password/reset: sets the new password and uses the link up.
pub async fn reset_submit(
    State(state): State<AppState>,
    State(recovery): State<Arc<Recovery>>,
    jar: CookieJar,
    Form(form): Form<ResetForm>,
) -> Result<Response, InteractionRefusal> {
    let secure = state.config.is_https();
    check_csrf(&jar, secure, form.csrf_token.as_deref())?;
    let token = form.token.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    Ok(
        match recovery.reset(&state.throttle, &token, password).await? {
            Reset::Done => ui::render(
                StatusCode::OK,
                &NoticePage {
                    title: "Password changed",
                    message: "Your new password is set, and every session that used the old one \
                          was signed out. Sign in again from the app you were using.",
                },
            ),
            Reset::LinkInvalid => link_invalid(),
            Reset::Refused(why) => {
                let user = recovery.link_user(&token).await?;
                let page = PasswordResetPage {
                    csrf_token: csrf::form_token(&jar, secure).unwrap_or_default(),
                    token: &token,
                    username: user.as_ref().map_or("", |user| &user.username),
                    error: Some(why),
                };
                ui::render(StatusCode::BAD_REQUEST, &page)
            }
        },
    )
}

fn link_invalid() -> Response {
    ui::error_page(
        StatusCode::BAD_REQUEST,
        "Link expired",
        "This link was already used, has expired, or is not whole. Ask for a new one.",
    )
}
