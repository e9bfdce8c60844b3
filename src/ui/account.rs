//! The signed-in user's own pages: `/account` and TOTP enrollment (CONTRACT.md).

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::mfa::{self, Verdict};
use crate::clock;
use crate::error::Result;
use crate::http::csrf;
use crate::oauth::authorize;
use crate::oauth::interaction::{self, check_csrf, Interaction, Purpose, Refusal};
use crate::state::AppState;
use crate::store::User;
use crate::ui::{self, AccountPage, RecoveryCodesPage, TotpEnrollPage};

/// The signed-in user, if the browser has a live session.
async fn signed_in_user(state: &AppState, jar: &CookieJar) -> Result<Option<User>> {
    let Some(session) = authorize::current_session(state, jar, clock::now()).await? else {
        return Ok(None);
    };
    Ok(state
        .store
        .user(&session.user_id)
        .await?
        .filter(|u| u.active))
}

/// Without a session, the account pages start a sign-in that ends back at `/account`.
async fn sign_in_first(state: &AppState, jar: CookieJar) -> Result<Response> {
    let (jar, csrf_token) = csrf::ensure_token(jar, state.config.is_https());
    let id = interaction::save_new(state, &Interaction::new(Purpose::Account, &csrf_token)).await?;
    Ok((jar, Redirect::to(&format!("/login?interaction={id}"))).into_response())
}

async fn overview_page(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    let page = AccountPage {
        username: &user.username,
        mfa_enabled: mfa::is_enrolled(state.store.as_ref(), &user.id).await?,
        csrf_token: csrf::cookie_token(jar).unwrap_or_default(),
        error,
    };
    Ok(ui::render(status, &page))
}

pub async fn overview(State(state): State<AppState>, jar: CookieJar) -> Response {
    let shown = match signed_in_user(&state, &jar).await {
        Ok(Some(user)) => overview_page(&state, &jar, &user, StatusCode::OK, None).await,
        Ok(None) => sign_in_first(&state, jar).await,
        Err(err) => Err(err),
    };
    shown.unwrap_or_else(ui::error_response)
}

fn enroll_view(
    jar: &CookieJar,
    enrollment: &mfa::Enrollment,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let svg = &enrollment.qr_svg;
    let page = TotpEnrollPage {
        otpauth_uri: &enrollment.otpauth_uri,
        // Drop the XML declaration: the SVG is embedded in HTML.
        qr_svg: svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]),
        csrf_token: csrf::cookie_token(jar).unwrap_or_default(),
        error,
    };
    ui::render(status, &page)
}

/// GET /account/mfa/totp: a fresh seed, shown as a QR code and as the otpauth URI.
pub async fn enroll_page(State(state): State<AppState>, jar: CookieJar) -> Response {
    let shown = async {
        let Some(user) = signed_in_user(&state, &jar).await? else {
            return Ok(Redirect::to("/account").into_response());
        };
        Ok(
            match mfa::begin_enrollment(&state, &user.id, &user.username).await? {
                Some(enrollment) => enroll_view(&jar, &enrollment, StatusCode::OK, None),
                None => Redirect::to("/account").into_response(),
            },
        )
    };
    shown.await.unwrap_or_else(ui::error_response)
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    csrf_token: Option<String>,
    code: Option<String>,
}

/// POST /account/mfa/totp: a valid code confirms enrollment; the answer shows the recovery codes.
pub async fn enroll_confirm(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    confirm(state, jar, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn confirm(state: AppState, jar: CookieJar, form: CodeForm) -> Result<Response, Refusal> {
    check_csrf(&jar, form.csrf_token.as_deref())?;
    let Some(user) = signed_in_user(&state, &jar).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let code = form.code.unwrap_or_default();
    if let Some(codes) = mfa::confirm_enrollment(&state, &user.id, &user.username, &code).await? {
        return Ok(ui::render(StatusCode::OK, &RecoveryCodesPage { codes }));
    }
    Ok(
        match mfa::pending_enrollment(&state, &user.id, &user.username).await? {
            Some(enrollment) => enroll_view(
                &jar,
                &enrollment,
                StatusCode::UNAUTHORIZED,
                Some("That code is not valid. Try the next one."),
            ),
            None => Redirect::to("/account").into_response(),
        },
    )
}

/// POST /account/mfa/totp/disable: turning TOTP off takes a valid code.
pub async fn disable_totp(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    disable(state, jar, form)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn disable(state: AppState, jar: CookieJar, form: CodeForm) -> Result<Response, Refusal> {
    check_csrf(&jar, form.csrf_token.as_deref())?;
    let Some(user) = signed_in_user(&state, &jar).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let code = form.code.unwrap_or_default();
    let (status, error) = match mfa::verify(&state, &user.id, &user.username, &code).await? {
        Verdict::Accepted => {
            state.store.delete_mfa(&user.id).await?;
            tracing::info!(user_id = %user.id, "TOTP turned off");
            return Ok(Redirect::to("/account").into_response());
        }
        Verdict::Rejected => (StatusCode::UNAUTHORIZED, "That code is not valid."),
        Verdict::LockedOut => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes. Wait a few minutes.",
        ),
    };
    Ok(overview_page(&state, &jar, &user, status, Some(error)).await?)
}
