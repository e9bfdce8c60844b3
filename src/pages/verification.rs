//! The page a verification link opens (`/email/verify?token=…`): a GET shows a form, since mail
//! scanners open links; its POST verifies the address. Exists while verification is on.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::verification::{Confirmed, Verification};
use crate::oauth::interaction::{check_csrf, InteractionRefusal};
use crate::state::AppState;
use crate::ui::{self, EmailVerifyPage, NoticePage};
use crate::web::csrf;

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// GET /email/verify?token=…: the form, if the link still works; nothing is used up.
pub async fn confirm_page(
    State(state): State<AppState>,
    State(verification): State<Arc<Verification>>,
    jar: CookieJar,
    Query(query): Query<LinkQuery>,
) -> Result<Response, InteractionRefusal> {
    let token = query.token.unwrap_or_default();
    let Some((_, address)) = verification.link(&token).await? else {
        return Ok(link_invalid());
    };
    let (jar, csrf_token) = csrf::page_token(jar, state.config.is_https());
    let page = EmailVerifyPage {
        csrf_token,
        token: &token,
        address: &address,
    };
    Ok((jar, ui::render(StatusCode::OK, &page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    csrf_token: Option<String>,
    token: Option<String>,
}

/// POST /email/verify: records the address as verified and uses the link up.
pub async fn confirm_submit(
    State(state): State<AppState>,
    State(verification): State<Arc<Verification>>,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let token = form.token.unwrap_or_default();
    Ok(match verification.confirm(&token).await? {
        Confirmed::Verified(_) => ui::render(
            StatusCode::OK,
            &NoticePage {
                title: "Address verified",
                message: "Thank you: your email address is verified. You can close this page \
                          and go on where you were.",
            },
        ),
        Confirmed::LinkInvalid => link_invalid(),
    })
}

fn link_invalid() -> Response {
    ui::error_page(
        StatusCode::BAD_REQUEST,
        "Link expired",
        "This link was already used, has expired, is not whole, or is for an address the \
         account no longer has. Ask for a new one.",
    )
}
