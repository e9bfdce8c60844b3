//! Sign-in with a passkey ([`crate::account::passkeys`]): alone from the login page, or as the
//! second factor after the password. The page's button posts here to start a ceremony, bound to
//! the interaction and to this browser (its CSRF cookie); the page that answers runs it and posts
//! the authenticator's answer back. Where the browser offers passkeys in the user-name input's
//! autofill (conditional mediation), the login page's script starts the ceremony itself and
//! posts the answer the same way. Alone, a passkey that verified its user signs them in (acr
//! `mfa`, amr `pop` and `mfa`); after the password, any of the user's passkeys does (amr `pwd`,
//! `pop`, `mfa`, and `user` without verification). Every refusal gets one message and counts
//! against the client's address like a wrong password or code.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::json;

use crate::account::passkeys::Passkeys;
use crate::account::session::Authentication;
use crate::clock;
use crate::oauth::interaction::{check_csrf, Interaction, InteractionRefusal};
use crate::oauth::login::{login_view, mfa_view, record, Factors, Refusal};
use crate::oauth::sign_in::SignIn;
use crate::secret;
use crate::state::AppState;
use crate::store::{Client, LoginOutcome};
use crate::ui::{self, PasskeyCeremonyPage};
use crate::web::client_ip::ClientIp;
use crate::web::{csrf, paths};

/// What a ceremony of interaction `id` is bound to: the interaction in this browser.
fn bound_to(jar: &CookieJar, secure: bool, id: &str) -> String {
    let browser = csrf::browser_token(jar, secure).unwrap_or_default();
    format!("{id} {}", secret::hash(browser))
}

fn passkeys(sign_in: &SignIn) -> Result<&Passkeys, InteractionRefusal> {
    // The routes exist only when passkeys do.
    sign_in.passkeys.as_ref().ok_or(InteractionRefusal::Expired)
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    /// `conditional` from the login page's script: the challenge as JSON, for the passkeys the
    /// browser offers in the user-name input's autofill (W3C WebAuthn §5.1.4, `mediation`).
    mediation: Option<String>,
}

/// `refusal` of interaction `id` on its page: the second-factor page once the password was
/// given, else the login page.
async fn refused(
    sign_in: &SignIn,
    jar: &CookieJar,
    (id, interaction, client): (&str, &Interaction, &Option<Client>),
    refusal: Refusal,
) -> Result<Response, InteractionRefusal> {
    let factors = match &interaction.pending_mfa {
        Some(user_id) => Some(Factors::of(sign_in, interaction, user_id).await?),
        None => None,
    };
    Ok(refusal.render(|status, error| match factors {
        Some(factors) => mfa_view(sign_in, jar, (id, client), factors, status, Some(error)),
        None => login_view(sign_in, jar, id, client, "", status, Some(error)),
    }))
}

/// POST /login/passkey/start: a fresh challenge, and the page that hands it to the browser;
/// for conditional mediation, the challenge alone as `{"token", "options"}`.
pub async fn start(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<StartForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, sign_in.https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client) = sign_in.interactions.load(&jar, &id).await?;
    // Every start is stored until it expires: counted as the authorization endpoint counts the
    // sign-ins it starts (security review finding 8).
    let conditional = form.mediation.as_deref() == Some("conditional");
    let starts = [state.throttle.sign_in_starts(ip)];
    if let Some(wait) = state.throttle.record_failure(&starts).await {
        if conditional {
            // The script offers no autofill; the page's form and button stay.
            return Ok(StatusCode::TOO_MANY_REQUESTS.into_response());
        }
        let step = (id.as_str(), &interaction, &client);
        return refused(&sign_in, &jar, step, Refusal::Locked(wait)).await;
    }
    // After the password: the second factor, with one of that user's passkeys.
    let for_user = interaction.pending_mfa.as_deref();
    let started = passkeys(&sign_in)?
        .start_sign_in(&bound_to(&jar, sign_in.https(), &id), for_user)
        .await?;
    if conditional {
        let challenge = json!({"token": started.token, "options": started.options});
        return Ok(([(header::CACHE_CONTROL, "no-store")], Json(challenge)).into_response());
    }
    let back = match for_user {
        Some(_) => paths::for_interaction(paths::LOGIN_MFA, &id),
        None => paths::for_interaction(paths::LOGIN, &id),
    };
    let page = PasskeyCeremonyPage {
        title: "Sign in with a passkey",
        action: paths::LOGIN_PASSKEY,
        mode: "get",
        options: started.options.to_string(),
        token: &started.token,
        interaction: Some(&id),
        csrf_token: csrf::form_token(&jar, sign_in.https()).unwrap_or_default(),
        back: &back,
    };
    Ok(ui::render_with_script(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    csrf_token: Option<String>,
    interaction: Option<String>,
    token: Option<String>,
    /// The JSON of the browser's `PublicKeyCredential`.
    credential: Option<String>,
}

/// POST /login/passkey: the authenticator's answer; signs the user in or shows the login page
/// with one message for every refusal.
pub async fn finish(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<AnswerForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, sign_in.https(), form.csrf_token.as_deref())?;
    let id = form.interaction.unwrap_or_default();
    let (interaction, client) = sign_in.interactions.load(&jar, &id).await?;
    let pending = interaction.pending_mfa.clone();
    let ip_key = [state.throttle.ip(ip)];
    if let Some(wait) = state.throttle.locked(&ip_key).await {
        let step = (id.as_str(), &interaction, &client);
        return refused(&sign_in, &jar, step, Refusal::Locked(wait)).await;
    }
    let answer = passkeys(&sign_in)?
        .finish_sign_in(
            &bound_to(&jar, sign_in.https(), &id),
            form.token.as_deref().unwrap_or_default(),
            form.credential.as_deref().unwrap_or_default(),
            pending.as_deref(),
        )
        .await?;
    let now = clock::now();
    // Alone, a passkey must have verified its user: presence only is one factor, weaker than
    // the password. After the password, presence is the second factor.
    let signed_in = match (answer, pending.is_some()) {
        (Ok(found), true) => Some((
            found.user_id,
            Authentication::password_and_passkey(now, found.user_verified),
        )),
        (Ok(found), false) if found.user_verified => {
            Some((found.user_id, Authentication::passkey(now)))
        }
        _ => None,
    };
    let user = match &signed_in {
        Some((user_id, _)) => state.store.user(user_id).await?.filter(|user| user.active),
        None => None,
    };
    let (Some(user), Some((_, authentication))) = (user, signed_in) else {
        tracing::info!("passkey sign-in refused");
        let refusal = match state.throttle.record_failure(&ip_key).await {
            Some(wait) => Refusal::Locked(wait),
            None => Refusal::Shown(
                StatusCode::UNAUTHORIZED,
                match pending {
                    Some(_) => "That passkey could not sign you in. Try again.",
                    None => "That passkey could not sign you in. Try again, or use your password.",
                },
            ),
        };
        return refused(&sign_in, &jar, (&id, &interaction, &client), refusal).await;
    };
    if pending.is_none() {
        // A sign-in without the password: in the login history and metrics as one with it.
        record(&state, &user.username, ip, LoginOutcome::Success).await;
    }
    sign_in
        .after_multi_factor(jar, &id, interaction, client, &user.id, authentication)
        .await
        .map(IntoResponse::into_response)
}
