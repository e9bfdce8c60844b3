//! The signed-in user's own pages (CONTRACT.md): `/account` with the profile, password, TOTP,
//! session and account-closing forms, and TOTP enrollment. Every form is CSRF-checked and acts
//! on the user of the browser's session only.

use std::future::Future;

use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::Cookie;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::mfa::{self, Verdict};
use crate::account::self_service::{self, AccountChangeRefused, Enrolled, Profile, ProfileSaved};
use crate::account::session;
use crate::clock;
use crate::error::Result;
use crate::oauth::interaction::{self, check_csrf, InteractionRefusal};
use crate::secret;
use crate::state::AppState;
use crate::store::User;
use crate::ui::{self, AccountPage, NoticePage, RecoveryCodesPage, SessionView, TotpEnrollPage};
use crate::web::client_ip::ClientIp;
use crate::web::paths;
use crate::web::{csrf, retry_after};

/// The browser's signed-in user (if active), with the hash naming its session in the store.
pub(super) async fn current_user(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(User, String)>> {
    let Some(cookie) = jar.get(session::COOKIE) else {
        return Ok(None);
    };
    let store = state.store.as_ref();
    let Some(session) = session::load(store, cookie.value(), clock::now()).await? else {
        return Ok(None);
    };
    let user = store.user(&session.user_id).await?.filter(|u| u.active);
    Ok(user.map(|user| (user, secret::hash(cookie.value()))))
}

/// Without a session, the account pages start a sign-in that ends back at `/account`; nothing
/// is stored for it ([`interaction::ACCOUNT_SIGN_IN`]).
pub(super) async fn sign_in_first(state: &AppState, jar: CookieJar) -> Result<Response> {
    let (jar, _) = csrf::ensure_token(jar, state.config.is_https());
    let login = paths::for_interaction(paths::LOGIN, interaction::ACCOUNT_SIGN_IN);
    Ok((jar, Redirect::to(&login)).into_response())
}

/// What the account page reports about the last action.
enum Shown<'a> {
    Plain,
    Notice(&'a str),
    Error(StatusCode, &'a str),
    Refused(AccountChangeRefused),
}

async fn overview_page(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    current_session: &str,
    shown: Shown<'_>,
) -> Result<Response> {
    let (status, error, notice) = match &shown {
        Shown::Plain => (StatusCode::OK, None, None),
        Shown::Notice(notice) => (StatusCode::OK, None, Some(*notice)),
        Shown::Error(status, error) => (*status, Some(*error), None),
        Shown::Refused(refused) => (refusal_status(refused), Some(refused.message()), None),
    };
    let sessions = session::list(state.store.as_ref(), &user.id, clock::now())
        .await?
        .into_iter()
        .map(|listed| session_view(listed, current_session))
        .collect();
    let page = AccountPage {
        username: &user.username,
        mfa_enabled: state.mfa.is_enrolled(&user.id).await?,
        csrf_token: csrf::form_token(jar, state.config.is_https()).unwrap_or_default(),
        error,
        notice,
        profile: Profile::of(user),
        email_unverified: state.verification.is_some()
            && user.email().is_some()
            && !user.email_verified(),
        offers_passkeys: state.passkeys.is_some(),
        sessions,
    };
    let mut response = ui::render(status, &page);
    if let Shown::Refused(
        AccountChangeRefused::Locked(wait) | AccountChangeRefused::TooManyLinks(wait),
    ) = shown
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after(wait));
    }
    Ok(response)
}

fn refusal_status(refused: &AccountChangeRefused) -> StatusCode {
    match refused {
        AccountChangeRefused::WrongPassword | AccountChangeRefused::WrongCode => {
            StatusCode::UNAUTHORIZED
        }
        AccountChangeRefused::Locked(_) | AccountChangeRefused::TooManyLinks(_) => {
            StatusCode::TOO_MANY_REQUESTS
        }
        AccountChangeRefused::Invalid(_) => StatusCode::BAD_REQUEST,
        AccountChangeRefused::ChangedMeanwhile => StatusCode::CONFLICT,
    }
}

fn session_view(listed: session::Listed, current_session: &str) -> SessionView {
    let authentication = &listed.session.authentication;
    let signed_in_at = clock::rfc3339(authentication.auth_time);
    SessionView {
        current: listed.id_hash == current_session,
        sid: listed.session.sid,
        signed_in_at,
        method: if authentication.amr.iter().any(|method| method == "pop") {
            "passkey"
        } else if session::is_mfa(&authentication.amr) {
            "password and authenticator"
        } else {
            "password"
        },
    }
}

pub async fn overview(State(state): State<AppState>, jar: CookieJar) -> Response {
    let shown = match current_user(&state, &jar).await {
        Ok(Some((user, current))) => {
            overview_page(&state, &jar, &user, &current, Shown::Plain).await
        }
        Ok(None) => sign_in_first(&state, jar).await,
        Err(err) => Err(err),
    };
    shown.unwrap_or_else(ui::error_response)
}

/// How an account action ended.
enum Outcome {
    Done(&'static str),
    Refused(AccountChangeRefused),
    /// A whole answer of its own (closing the account leaves the account page).
    Respond(Response),
}

/// `notice` unless the action was refused.
fn done_unless(refused: Option<AccountChangeRefused>, notice: &'static str) -> Outcome {
    refused.map_or(Outcome::Done(notice), Outcome::Refused)
}

/// Runs `action` for the browser's signed-in user (and session hash) behind a CSRF-checked
/// form, then shows the account page with what happened.
async fn act<F, Fut>(
    state: &AppState,
    jar: &CookieJar,
    csrf_token: Option<&str>,
    action: F,
) -> Response
where
    F: FnOnce(User, String) -> Fut,
    Fut: Future<Output = Result<Outcome>>,
{
    let shown = async {
        check_csrf(jar, state.config.is_https(), csrf_token)?;
        let Some((user, current)) = current_user(state, jar).await? else {
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        };
        let shown = match action(user.clone(), current.clone()).await? {
            Outcome::Respond(response) => return Ok(response),
            Outcome::Done(notice) => Shown::Notice(notice),
            Outcome::Refused(refused) => Shown::Refused(refused),
        };
        // Show the account as it is now.
        let user = state.store.user(&user.id).await?.unwrap_or(user);
        Ok::<_, InteractionRefusal>(overview_page(state, jar, &user, &current, shown).await?)
    };
    shown.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    csrf_token: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    /// Needed only for a new email.
    password: Option<String>,
}

/// POST /account/profile: the name and email Tessera owns.
pub async fn update_profile(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<ProfileForm>,
) -> Response {
    let profile = Profile {
        given_name: form.given_name.unwrap_or_default(),
        family_name: form.family_name.unwrap_or_default(),
        email: form.email.unwrap_or_default(),
    };
    let (state, profile) = (&state, &profile);
    let password = form.password.unwrap_or_default();
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, _| async move {
            let service = state.self_service();
            let saved =
                self_service::update_profile(&service, &user, profile, password, ip).await?;
            Ok(match saved {
                Ok(ProfileSaved::Saved) => Outcome::Done("Your profile is saved."),
                Ok(ProfileSaved::AddressPending(_)) => Outcome::Done(
                    "Your profile is saved. A link went to the new address: it becomes your \
                     email when you open it.",
                ),
                Err(refused) => Outcome::Refused(refused),
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf_token: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

/// POST /account/password: takes the current password; signs out every other session.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> Response {
    let passwords = (
        form.current_password.unwrap_or_default(),
        form.new_password.unwrap_or_default(),
    );
    let state = &state;
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, current| async move {
            let refused = self_service::change_password(
                &state.self_service(),
                &user,
                &current,
                passwords,
                ip,
            )
            .await?;
            let notice = "Your password is changed. Every other session is signed out.";
            Ok(done_unless(refused, notice))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct SessionForm {
    csrf_token: Option<String>,
    sid: Option<String>,
}

/// POST /account/sessions/end: signs out one other session of the user.
pub async fn end_session(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<SessionForm>,
) -> Response {
    let sid = form.sid.unwrap_or_default();
    let state = &state;
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, current| async move {
            let refused =
                self_service::end_session(&state.self_service(), &user.id, &current, &sid).await?;
            Ok(done_unless(refused, "That session is signed out."))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

/// POST /account/sessions/end-others: signs out every session but this browser's.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    let state = &state;
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, current| async move {
            self_service::end_other_sessions(&state.self_service(), &user.id, &current).await?;
            Ok(Outcome::Done("Every other session is signed out."))
        },
    )
    .await
}

/// POST /account/email/verify: mails a link that verifies the account's email.
pub async fn send_verification(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    let state = &state;
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, _| async move {
            let Some(verification) = &state.verification else {
                return Ok(Outcome::Refused(AccountChangeRefused::Invalid(
                    "Email verification is off.",
                )));
            };
            Ok(
                match verification.offer(&state.throttle, &user, ip).await? {
                    Ok(()) => Outcome::Done("A verification link is on its way to your address."),
                    Err(wait) => Outcome::Refused(AccountChangeRefused::TooManyLinks(wait)),
                },
            )
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf_token: Option<String>,
    password: Option<String>,
}

/// POST /account/deactivate: closes the account once the password is proven.
pub async fn deactivate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<CloseForm>,
) -> Response {
    let password = form.password.unwrap_or_default();
    let signed_out = jar.clone().remove(Cookie::build(session::COOKIE).path("/"));
    let state = &state;
    act(
        state,
        &jar,
        form.csrf_token.as_deref(),
        |user, _| async move {
            if let Some(refused) =
                self_service::deactivate(&state.self_service(), &user, password, ip).await?
            {
                return Ok(Outcome::Refused(refused));
            }
            let page = ui::render(
                StatusCode::OK,
                &NoticePage {
                    title: "Account closed",
                    message: "Your account is closed and you are signed out everywhere.",
                },
            );
            Ok(Outcome::Respond((signed_out, page).into_response()))
        },
    )
    .await
}

fn enroll_view(
    jar: &CookieJar,
    secure: bool,
    enrollment: &mfa::Enrollment,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let svg = &enrollment.qr_svg;
    let page = TotpEnrollPage {
        otpauth_uri: &enrollment.otpauth_uri,
        offer: &enrollment.offer,
        // Drop the XML declaration: the SVG is embedded in HTML.
        qr_svg: svg.find("<svg").map_or(svg.as_str(), |start| &svg[start..]),
        csrf_token: csrf::form_token(jar, secure).unwrap_or_default(),
        error,
    };
    ui::render(status, &page)
}

/// GET /account/mfa/totp: a fresh seed, shown as a QR code and as the otpauth URI; nothing is
/// stored until it is confirmed.
pub async fn enroll_page(State(state): State<AppState>, jar: CookieJar) -> Response {
    let shown = async {
        let Some((user, _)) = current_user(&state, &jar).await? else {
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        };
        Ok(
            match state.mfa.begin_enrollment(&user.id, &user.username).await? {
                Some(enrollment) => enroll_view(
                    &jar,
                    state.config.is_https(),
                    &enrollment,
                    StatusCode::OK,
                    None,
                ),
                None => Redirect::to(paths::ACCOUNT).into_response(),
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

#[derive(Debug, Deserialize)]
pub struct EnrollForm {
    csrf_token: Option<String>,
    code: Option<String>,
    password: Option<String>,
    /// The sealed seed the page offered.
    offer: Option<String>,
}

/// POST /account/mfa/totp: the password and a valid code confirm enrollment; the answer shows
/// the recovery codes.
pub async fn enroll_confirm(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<EnrollForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let Some((user, current)) = current_user(&state, &jar).await? else {
        return Ok(Redirect::to(paths::ACCOUNT).into_response());
    };
    let offer = form.offer.unwrap_or_default();
    let (password, code) = (
        form.password.unwrap_or_default(),
        form.code.unwrap_or_default(),
    );
    let refused = match self_service::enroll_totp(
        &state.self_service(),
        &user,
        &current,
        password,
        &offer,
        &code,
        ip,
    )
    .await?
    {
        Enrolled::Done(codes) => {
            return Ok(ui::render(StatusCode::OK, &RecoveryCodesPage { codes }))
        }
        Enrolled::Refused(refused) => refused,
    };
    Ok(
        match state
            .mfa
            .offered_enrollment(&user.id, &user.username, &offer)?
        {
            Some(enrollment) => enroll_view(
                &jar,
                state.config.is_https(),
                &enrollment,
                refusal_status(&refused),
                Some(refused.message()),
            ),
            // The offer ran out (or was not this user's): start again.
            None => Redirect::to(paths::ACCOUNT_TOTP).into_response(),
        },
    )
}

/// POST /account/mfa/totp/disable: turning TOTP off takes a valid code.
pub async fn disable_totp(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let Some((user, current)) = current_user(&state, &jar).await? else {
        return Ok(Redirect::to(paths::ACCOUNT).into_response());
    };
    let code = form.code.unwrap_or_default();
    let (status, error) = match state.mfa.verify(&user.id, &user.username, &code).await? {
        Verdict::Accepted => {
            state.store.delete_mfa(&user.id).await?;
            tracing::info!(user_id = %user.id, "TOTP turned off");
            return Ok(Redirect::to(paths::ACCOUNT).into_response());
        }
        Verdict::Rejected => (StatusCode::UNAUTHORIZED, "That code is not valid."),
        Verdict::LockedOut => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many wrong codes. Wait a few minutes.",
        ),
        Verdict::LockedForGood => (
            StatusCode::TOO_MANY_REQUESTS,
            "Two-step verification is locked after too many wrong codes. Ask an administrator to reset it.",
        ),
    };
    Ok(overview_page(&state, &jar, &user, &current, Shown::Error(status, error)).await?)
}
