//! The login steps of an interaction: the password page, then the TOTP page when the user has
//! TOTP or the request demands MFA.
//!
//! Both steps are throttled ([`crate::throttle`]): wrong passwords per user name and per client
//! IP, wrong codes per client IP (and per account in [`mfa::verify`]). A locked user name gets
//! the same answer whether or not the user exists, and its right password is refused too.

use axum::extract::{Form, Query, State};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::mfa::Verdict;
use crate::account::password_check::{check_throttled, PasswordCheck};
use crate::account::session::Authentication;
use crate::account::users;
use crate::clock;
use crate::oauth::interaction::{check_csrf, Interaction, InteractionQuery, InteractionRefusal};
use crate::oauth::sign_in::SignIn;
use crate::state::AppState;
use crate::store::{Client, LoginAttempt, LoginOutcome};
use crate::ui::{self, LoginPage, MfaPage};
use crate::web::client_ip::ClientIp;
use crate::web::paths;
use crate::web::{csrf, retry_after};

/// Whom the login page names: the client, or the account console.
fn audience(client: &Option<Client>) -> &str {
    client
        .as_ref()
        .map_or("your account", |c| c.client_id.as_str())
}

pub async fn login_page(
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Response {
    let id = query.interaction.unwrap_or_default();
    let (interaction, client) = match sign_in.interactions.load(&jar, &id).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    if interaction.pending_mfa.is_some() {
        return Redirect::to(&paths::for_interaction(paths::LOGIN_MFA, &id)).into_response();
    }
    login_view(&sign_in, &jar, &id, &client, "", StatusCode::OK, None)
}

/// The login page of interaction `id`, with `username` filled in and `error` shown.
pub fn login_view(
    sign_in: &SignIn,
    jar: &CookieJar,
    id: &str,
    client: &Option<Client>,
    username: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let page = LoginPage {
        client_id: audience(client),
        interaction: id,
        csrf_token: csrf::form_token(jar, sign_in.https()).unwrap_or_default(),
        username,
        error,
        offers_recovery: sign_in.offers_recovery,
        offers_signup: sign_in.offers_signup,
        offers_passkeys: sign_in.passkeys.is_some(),
    };
    match page.offers_passkeys {
        true => ui::render_with_script(status, &page),
        false => ui::render(status, &page),
    }
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
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client) = sign_in.interactions.load(&jar, &id).await?;
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let login_page =
        |status, error| login_view(&sign_in, &jar, &id, &client, &username, status, Some(error));
    if crate::input::has_control(&username) {
        return Ok(login_page(
            StatusCode::BAD_REQUEST,
            "The user name holds characters that are not allowed.",
        ));
    }
    let authenticate =
        users::authenticate(state.store.as_ref(), &state.passwords, &username, password);
    let user = match check_throttled(&state.throttle, &username, ip, authenticate).await? {
        PasswordCheck::Accepted(user) => user,
        PasswordCheck::Locked(wait) => {
            tracing::info!("login refused: too many failures");
            state.metrics.login_refused_while_locked();
            return Ok(locked(login_page, wait));
        }
        PasswordCheck::Wrong { lockout } => {
            // One message for unknown users, wrong passwords and disabled accounts.
            tracing::info!("login failed");
            record(&state, &username, ip, LoginOutcome::Failure).await;
            return Ok(match lockout {
                Some(wait) => locked(login_page, wait),
                None => login_page(StatusCode::UNAUTHORIZED, "Incorrect username or password."),
            });
        }
    };
    record(&state, &username, ip, LoginOutcome::Success).await;
    sign_in
        .after_password(jar, &id, interaction, client, &user.id)
        .await
}

/// Counts the attempt in the metrics and keeps it in `login_attempts` (a passkey sign-in's
/// too). The audit row is best effort: the throttle has already counted the attempt, and a
/// sign-in does not fail for it.
pub async fn record(state: &AppState, username: &str, ip: IpAddr, outcome: LoginOutcome) {
    state.metrics.login(outcome);
    let attempt = LoginAttempt {
        username_hash: state.throttle.names().hash(username),
        ip: ip.to_string(),
        outcome,
        at: clock::now(),
    };
    if let Err(err) = state.store.record_login_attempt(&attempt).await {
        tracing::warn!(error = %err, "login attempt not recorded");
    }
}

/// How a sign-in step refused: decided before its page is rendered, so that what only the page
/// needs is read only for a refusal.
pub enum Refusal {
    /// The user name or address is locked for this long.
    Locked(Duration),
    Shown(StatusCode, &'static str),
}

impl Refusal {
    pub fn render(self, page: impl FnOnce(StatusCode, &'static str) -> Response) -> Response {
        match self {
            Refusal::Locked(wait) => locked(page, wait),
            Refusal::Shown(status, message) => page(status, message),
        }
    }
}

/// The page for a locked user name or address: 429 with `Retry-After` (RFC 6585 §4).
fn locked(page: impl FnOnce(StatusCode, &'static str) -> Response, wait: Duration) -> Response {
    let mut response = page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many failed sign-in attempts. Wait a few minutes, then try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after(wait));
    response
}

/// The second-factor step's interaction, provided someone passed the password step for it.
pub async fn pending(
    sign_in: &SignIn,
    jar: &CookieJar,
    id: &str,
) -> Result<(Interaction, Option<Client>, String), InteractionRefusal> {
    let (interaction, client) = sign_in.interactions.load(jar, id).await?;
    let user_id = interaction
        .pending_mfa
        .clone()
        .ok_or(InteractionRefusal::Expired)?;
    Ok((interaction, client, user_id))
}

/// Which second factors a user can give: what the second-factor page offers.
#[derive(Debug, Clone, Copy)]
pub struct Factors {
    /// TOTP (or, without a passkey, at least the code form: a recovery code).
    code: bool,
    passkey: bool,
}

impl Factors {
    /// What the user can give in `interaction`: a passkey only when its request needs one.
    pub async fn of(
        sign_in: &SignIn,
        interaction: &Interaction,
        user_id: &str,
    ) -> crate::error::Result<Self> {
        let passkey = sign_in.has_passkey(user_id).await?;
        let passkey_only = interaction
            .request()
            .is_some_and(|request| request.require_phishing_resistant);
        let code = !passkey_only && (!passkey || sign_in.has_totp(user_id).await?);
        Ok(Factors { code, passkey })
    }
}

/// The second-factor page of interaction `id`: the code form, the passkey button, or both.
pub fn mfa_view(
    sign_in: &SignIn,
    jar: &CookieJar,
    (id, client): (&str, &Option<Client>),
    factors: Factors,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let page = MfaPage {
        client_id: audience(client),
        interaction: id,
        csrf_token: csrf::form_token(jar, sign_in.https()).unwrap_or_default(),
        error,
        offers_code: factors.code,
        offers_passkey: factors.passkey,
    };
    match factors.passkey {
        true => ui::render_with_script(status, &page),
        false => ui::render(status, &page),
    }
}

pub async fn mfa_step_page(
    State(sign_in): State<Arc<SignIn>>,
    jar: CookieJar,
    Query(query): Query<InteractionQuery>,
) -> Result<Response, InteractionRefusal> {
    let id = query.interaction.unwrap_or_default();
    let (interaction, client, user_id) = pending(&sign_in, &jar, &id).await?;
    let factors = Factors::of(&sign_in, &interaction, &user_id).await?;
    Ok(mfa_view(
        &sign_in,
        &jar,
        (&id, &client),
        factors,
        StatusCode::OK,
        None,
    ))
}

#[derive(Debug, Deserialize)]
pub struct MfaForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    code: Option<String>,
}

pub async fn mfa_step_submit(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<MfaForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client, user_id) = pending(&sign_in, &jar, &id).await?;
    let ip_key = [state.throttle.ip(ip)];
    let refusal = 'refusal: {
        if let Some(wait) = state.throttle.locked(&ip_key).await {
            break 'refusal Refusal::Locked(wait);
        }
        let user = state
            .store
            .user(&user_id)
            .await?
            .filter(|u| u.active)
            .ok_or(InteractionRefusal::Expired)?;
        let code = form.code.unwrap_or_default();
        match state.mfa.verify(&user.id, &user.username, &code).await? {
            // Parallel wrong codes from this address may have locked it while this one was
            // checked: then the right code is refused too, as at the password step.
            Verdict::Accepted => match state.throttle.locked(&ip_key).await {
                Some(wait) => Refusal::Locked(wait),
                None => {
                    let authentication = Authentication::multi_factor(clock::now());
                    return sign_in
                        .after_multi_factor(jar, &id, interaction, client, &user.id, authentication)
                        .await;
                }
            },
            Verdict::Rejected => match state.throttle.record_failure(&ip_key).await {
                Some(wait) => Refusal::Locked(wait),
                None => Refusal::Shown(StatusCode::UNAUTHORIZED, "That code is not valid."),
            },
            Verdict::LockedOut => Refusal::Shown(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong codes. Wait a few minutes, then try again.",
            ),
            Verdict::LockedForGood => Refusal::Shown(
                StatusCode::TOO_MANY_REQUESTS,
                "Two-step verification is locked after too many wrong codes. \
                 Ask an administrator to reset it.",
            ),
        }
    };
    let factors = Factors::of(&sign_in, &interaction, &user_id).await?;
    Ok(refusal.render(|status, error| {
        mfa_view(&sign_in, &jar, (&id, &client), factors, status, Some(error))
    }))
}
