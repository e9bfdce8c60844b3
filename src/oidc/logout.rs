//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! With a valid `id_token_hint` for the signed-in user, the session ends at once; without one the
//! user confirms on a form. The browser goes back only to a `post_logout_redirect_uri` registered
//! for the client (compared exactly), with `state`; otherwise it sees a "signed out" page.

use axum::extract::{Form, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::Cookie;
use axum_extra::extract::CookieJar;
use serde::Deserialize;

use crate::account::session;
use crate::clock;
use crate::error::{Error, Result};
use crate::oauth::interaction::{check_csrf, InteractionRefusal};
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::Store;
use crate::tokens::hint::{Hint, HintCheck};
use crate::tokens::issuer::TokenIssuer;
use crate::ui::{self, LogoutPage, NoticePage};
use crate::web::csrf;

/// A logout request whose parameters have been checked.
struct Request {
    client_id: Option<String>,
    /// Only ever a URI registered for `client_id`.
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    hint: Option<Hint>,
}

/// The logout request form-encoded in `encoded`, checked (§2).
async fn check(tokens: &TokenIssuer, store: &dyn Store, encoded: &str) -> Result<Request> {
    let params = Params::parse(encoded).map_err(Error::invalid_request)?;
    let checked = params
        .get("id_token_hint")
        .map(|t| tokens.check_hint(t))
        .transpose()?;
    let (hint, named) = match checked {
        Some(HintCheck::Verified(hint)) => (Some(hint), None),
        Some(HintCheck::RetiredKey(hint)) => (None, Some(hint)),
        None => (None, None),
    };
    let client_id = match (params.get("client_id"), hint.as_ref().or(named.as_ref())) {
        (Some(id), Some(hint)) if id != hint.aud => {
            return Err(Error::invalid_request(
                "client_id does not match id_token_hint",
            ))
        }
        (Some(id), _) => Some(id.to_string()),
        (None, Some(hint)) => Some(hint.aud.clone()),
        (None, None) => None,
    };
    let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => store.client(id).await?,
                None => None,
            };
            // §3: never redirect to a URI not registered for the identified client.
            if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)) {
                return Err(Error::invalid_request(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some(uri.to_string())
        }
    };
    Ok(Request {
        client_id,
        post_logout_redirect_uri,
        state: params.get("state").map(str::to_string),
        hint,
    })
}

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    logout(&state, jar, &query.unwrap_or_default())
        .await
        .unwrap_or_else(ui::error_response)
}

pub async fn post(State(state): State<AppState>, jar: CookieJar, body: String) -> Response {
    logout(&state, jar, &body)
        .await
        .unwrap_or_else(ui::error_response)
}

async fn logout(state: &AppState, jar: CookieJar, encoded: &str) -> Result<Response> {
    let store = state.store.as_ref();
    let request = check(&state.tokens, store, encoded).await?;
    let session = session::current(store, &jar, clock::now()).await?;
    let confirmed_by_hint = match (&request.hint, &session) {
        (Some(hint), Some(session)) => hint.sub == session.user_id,
        (_, None) => true,
        (None, Some(_)) => false,
    };
    if confirmed_by_hint {
        return finish(store, jar, &request).await;
    }
    let secure = state.config.is_https();
    let (jar, csrf_token) = csrf::page_token(jar, secure);
    let page = ui::render(
        StatusCode::OK,
        &LogoutPage {
            client_id: request.client_id.as_deref(),
            post_logout_redirect_uri: request.post_logout_redirect_uri.as_deref(),
            state: request.state.as_deref(),
            csrf_token,
        },
    );
    Ok((jar, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    csrf_token: Option<String>,
    decision: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

pub async fn confirm(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, InteractionRefusal> {
    check_csrf(&jar, state.config.is_https(), form.csrf_token.as_deref())?;
    if form.decision.as_deref() != Some("allow") {
        return Ok(ui::render(
            StatusCode::OK,
            &NoticePage {
                title: "Still signed in",
                message: "You stay signed in.",
            },
        ));
    }
    // The hidden fields are re-checked exactly as if they came in the original request.
    let encoded = {
        let mut encoded = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("client_id", &form.client_id),
            ("post_logout_redirect_uri", &form.post_logout_redirect_uri),
            ("state", &form.state),
        ] {
            if let Some(value) = value {
                encoded.append_pair(name, value);
            }
        }
        encoded.finish()
    };
    let store = state.store.as_ref();
    let request = check(&state.tokens, store, &encoded).await?;
    Ok(finish(store, jar, &request).await?)
}

/// Ends the SSO session (a later `prompt=none` gets `login_required`), revokes the refresh tokens
/// issued in it, and sends the browser back or shows that it is signed out.
async fn finish(store: &dyn Store, jar: CookieJar, request: &Request) -> Result<Response> {
    if let Some(cookie) = jar.get(session::COOKIE) {
        if let Some(ended) = session::end(store, cookie.value(), clock::now()).await? {
            session::revoke_grants(store, &ended, clock::now()).await?;
            tracing::info!(user_id = %ended.user_id, "signed out");
        }
    }
    let jar = jar.remove(Cookie::build(session::COOKIE).path("/"));
    let Some(uri) = &request.post_logout_redirect_uri else {
        let page = ui::render(
            StatusCode::OK,
            &NoticePage {
                title: "Signed out",
                message: "You are signed out.",
            },
        );
        return Ok((jar, page).into_response());
    };
    let mut target = url::Url::parse(uri).map_err(Error::internal)?;
    if let Some(state) = &request.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    Ok((jar, Redirect::to(target.as_str())).into_response())
}
