//! `/account/passkeys`: the signed-in user's passkeys, listed with when they were added and last
//! used, removed one at a time, and added after the password is entered again (so a session
//! left open cannot plant a passkey of someone else's). Adding runs a WebAuthn ceremony bound
//! to this session ([`crate::account::passkeys`]).

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::passkeys::{passkey_name, Passkeys, Refused};
use crate::account::self_service::prove_password;
use crate::clock;
use crate::error::Result;
use crate::oauth::interaction::{check_csrf, InteractionRefusal};
use crate::pages::account::{current_user, sign_in_first};
use crate::state::AppState;
use crate::store::{PasskeyRecord, User};
use crate::ui::{self, PasskeyCeremonyPage, PasskeyView, PasskeysPage};
use crate::web::client_ip::ClientIp;
use crate::web::{csrf, paths};

fn view(passkey: PasskeyRecord) -> PasskeyView {
    PasskeyView {
        created: clock::rfc3339(passkey.created_at),
        last_used: passkey.last_used_at.map(clock::rfc3339),
        credential_id: passkey.credential_id,
        name: passkey.name,
    }
}

/// The list page, with what the last action did.
async fn list_page(
    state: &AppState,
    passkeys: &Passkeys,
    jar: &CookieJar,
    user: &User,
    shown: std::result::Result<Option<&str>, (StatusCode, &str)>,
) -> Result<Response> {
    let (status, notice, error) = match shown {
        Ok(notice) => (StatusCode::OK, notice, None),
        Err((status, error)) => (status, None, Some(error)),
    };
    let page = PasskeysPage {
        passkeys: passkeys
            .of_user(&user.id)
            .await?
            .into_iter()
            .map(view)
            .collect(),
        csrf_token: csrf::form_token(jar, state.config.is_https()).unwrap_or_default(),
        default_name: "My passkey",
        error,
        notice,
    };
    Ok(ui::render_with_script(status, &page))
}

/// GET /account/passkeys
pub async fn list(
    State(state): State<AppState>,
    State(passkeys): State<Arc<Passkeys>>,
    jar: CookieJar,
) -> Response {
    let shown = async {
        match current_user(&state, &jar).await? {
            Some((user, _)) => list_page(&state, &passkeys, &jar, &user, Ok(None)).await,
            None => sign_in_first(&state, jar).await,
        }
    };
    shown.await.unwrap_or_else(ui::error_response)
}

#[derive(Debug, Deserialize)]
pub struct NewForm {
    csrf_token: Option<String>,
    name: Option<String>,
    password: Option<String>,
}

/// POST /account/passkeys/new: the password again, then the page that asks the browser to make
/// the passkey.
pub async fn start(
    State(state): State<AppState>,
    State(passkeys): State<Arc<Passkeys>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Form(form): Form<NewForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let Some((user, current)) = current_user(&state, &jar).await? else {
        return Ok(Redirect::to(paths::ACCOUNT_PASSKEYS).into_response());
    };
    let password = form.password.unwrap_or_default();
    if let Some(refused) = prove_password(&state.self_service(), &user, password, ip).await? {
        let shown = Err((StatusCode::UNAUTHORIZED, refused.message()));
        return Ok(list_page(&state, &passkeys, &jar, &user, shown).await?);
    }
    let name = form.name.unwrap_or_default();
    let Some(name) = passkey_name(&name) else {
        let error = "Give the passkey a name of up to 64 characters.";
        let shown = Err((StatusCode::BAD_REQUEST, error));
        return Ok(list_page(&state, &passkeys, &jar, &user, shown).await?);
    };
    let started = passkeys.start_registration(&user, &current, name).await?;
    let page = PasskeyCeremonyPage {
        title: "Add a passkey",
        action: paths::ACCOUNT_PASSKEYS_REGISTER,
        mode: "create",
        options: started.options.to_string(),
        token: &started.token,
        interaction: None,
        csrf_token: csrf::form_token(&jar, state.config.is_https()).unwrap_or_default(),
        back: paths::ACCOUNT_PASSKEYS,
    };
    Ok(ui::render_with_script(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    csrf_token: Option<String>,
    token: Option<String>,
    /// The JSON of the browser's `PublicKeyCredential`.
    credential: Option<String>,
}

/// POST /account/passkeys/register: the browser's new credential.
pub async fn register(
    State(state): State<AppState>,
    State(passkeys): State<Arc<Passkeys>>,
    jar: CookieJar,
    Form(form): Form<RegisterForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let Some((user, current)) = current_user(&state, &jar).await? else {
        return Ok(Redirect::to(paths::ACCOUNT_PASSKEYS).into_response());
    };
    let registered = passkeys
        .finish_registration(
            &user.id,
            &current,
            form.token.as_deref().unwrap_or_default(),
            form.credential.as_deref().unwrap_or_default(),
        )
        .await?;
    let shown = match registered {
        Ok(passkey) => {
            tracing::info!(user_id = %user.id, name = %passkey.name, "passkey added");
            Ok(Some("Your passkey is added."))
        }
        Err(Refused::Duplicate) => {
            Err((StatusCode::CONFLICT, "That passkey is registered already."))
        }
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            "The passkey could not be added. Try again.",
        )),
    };
    Ok(list_page(&state, &passkeys, &jar, &user, shown).await?)
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    csrf_token: Option<String>,
    credential_id: Option<String>,
}

/// POST /account/passkeys/remove
pub async fn remove(
    State(state): State<AppState>,
    State(passkeys): State<Arc<Passkeys>>,
    jar: CookieJar,
    Form(form): Form<RemoveForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    let Some((user, _)) = current_user(&state, &jar).await? else {
        return Ok(Redirect::to(paths::ACCOUNT_PASSKEYS).into_response());
    };
    let credential_id = form.credential_id.unwrap_or_default();
    let shown = if passkeys.remove(&user.id, &credential_id).await? {
        tracing::info!(user_id = %user.id, "passkey removed");
        Ok(Some("The passkey is removed."))
    } else {
        Err((StatusCode::NOT_FOUND, "There is no such passkey."))
    };
    Ok(list_page(&state, &passkeys, &jar, &user, shown).await?)
}
