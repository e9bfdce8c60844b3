//! The sign-in step that waits for a verified address (`TESSERA_EMAIL_VERIFICATION=required`):
//! the user is signed in but gets no code until they open the link mailed to their address. The
//! page sends that link on arrival (unless one is live), and offers to send another and to go on
//! once it was opened, in any browser.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::verification::Verification;
use crate::error::Error;
use crate::oauth::consent::consenting_session;
use crate::oauth::interaction::{check_csrf, InteractionQuery, InteractionRefusal};
use crate::oauth::sign_in::SignIn;
use crate::state::AppState;
use crate::store::User;
use crate::ui::{self, VerifyEmailWaitPage};
use crate::web::client_ip::ClientIp;
use crate::web::{csrf, retry_after};

/// The router registers this step only when verification is required.
fn verification(sign_in: &SignIn) -> Result<&Verification, InteractionRefusal> {
    let off = || Error::internal("no verification step without required verification");
    Ok(sign_in.verification.as_ref().ok_or_else(off)?)
}

/// GET /login/verify-email?interaction=…
pub async fn waiting_page(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Result<Response, InteractionRefusal> {
    let id = query.interaction.unwrap_or_default();
    let (_, _, session) = consenting_session(&sign_in, &jar, &id).await?;
    let user = state.store.user(&session.user_id).await?;
    let user = user.ok_or(InteractionRefusal::Expired)?;
    verification(&sign_in)?.ensure_sent(&user).await?;
    Ok(page(&sign_in, &jar, &id, &user, StatusCode::OK, None))
}

#[derive(Debug, Deserialize)]
pub struct WaitingForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    /// `resend` or `continue`.
    action: Option<String>,
}

/// POST /login/verify-email: sends another link, or goes on if the address is now verified.
pub async fn waiting_submit(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<WaitingForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, sign_in.https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client, session) = consenting_session(&sign_in, &jar, &id).await?;
    let request = interaction.request().ok_or(InteractionRefusal::Expired)?;
    let user = state.store.user(&session.user_id).await?;
    let user = user.ok_or(InteractionRefusal::Expired)?;
    match form.action.as_deref() {
        Some("continue") if user.email_verified() => {
            Ok(sign_in.resume(&id, request, &client, &session).await?)
        }
        Some("continue") => Ok(page(
            &sign_in,
            &jar,
            &id,
            &user,
            StatusCode::OK,
            Some("The address is not verified yet: open the link in the mail first."),
        )),
        Some("resend") => {
            let offered = verification(&sign_in)?
                .offer(&state.throttle, &user, ip)
                .await?;
            Ok(match offered {
                Ok(()) => page(
                    &sign_in,
                    &jar,
                    &id,
                    &user,
                    StatusCode::OK,
                    Some("Another link is on its way."),
                ),
                Err(wait) => {
                    let mut response = page(
                        &sign_in,
                        &jar,
                        &id,
                        &user,
                        StatusCode::TOO_MANY_REQUESTS,
                        Some("Too many links were asked for. Try again later."),
                    );
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, retry_after(wait));
                    response
                }
            })
        }
        _ => Err(Error::invalid_request("action must be resend or continue").into()),
    }
}

fn page(
    sign_in: &SignIn,
    jar: &CookieJar,
    id: &str,
    user: &User,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let page = VerifyEmailWaitPage {
        interaction: id,
        csrf_token: csrf::form_token(jar, sign_in.https()).unwrap_or_default(),
        address: user.email().unwrap_or("your address"),
        has_address: user.email().is_some(),
        notice,
    };
    ui::render(status, &page).into_response()
}
