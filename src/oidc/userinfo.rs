//! The UserInfo endpoint (OIDC Core §5.3): the signed-in user's claims, limited by the access
//! token's scope (§5.4). Bearer tokens come in the Authorization header or, for POST, the form
//! body (RFC 6750 §2.1, §2.2).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::{User, UserStore};
use crate::tokens::claims::EmailClaims;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;
use crate::web::bearer;

#[derive(Debug, Serialize)]
struct UserInfo<'a> {
    sub: &'a str,
    #[serde(flatten)]
    profile: Option<Profile<'a>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    email: Option<EmailClaims<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
}

/// §5.4 `profile` claims Tessera holds.
#[derive(Debug, Serialize)]
struct Profile<'a> {
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
}

fn profile(user: &User) -> Profile<'_> {
    let (given_name, family_name) = (user.name_part("givenName"), user.name_part("familyName"));
    let name = match (user.name_part("formatted"), given_name, family_name) {
        (Some(formatted), _, _) => Some(formatted.to_string()),
        (None, Some(given), Some(family)) => Some(format!("{given} {family}")),
        (None, Some(one), None) | (None, None, Some(one)) => Some(one.to_string()),
        (None, None, None) => None,
    };
    Profile {
        preferred_username: &user.username,
        name,
        given_name,
        family_name,
    }
}

fn bearer_token<'a>(headers: &'a HeaderMap, form: &'a Params) -> Result<&'a str> {
    match (bearer::from_header(headers), form.get("access_token")) {
        (Some(token), None) | (None, Some(token)) => Ok(token),
        // RFC 6750 §2: one method per request.
        (Some(_), Some(_)) => Err(Error::invalid_request("send the token once")),
        (None, None) => Err(Error::MissingBearerToken),
    }
}

pub async fn get(state: State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, &headers, &Params::default()).await
}

/// RFC 6750 §2.2: a token in the body comes form-encoded. A body declared as anything else is
/// refused; one sent without a Content-Type is read as a form, because real clients (authlib with
/// `token_placement="body"`) send it so.
pub async fn post(state: State<AppState>, headers: HeaderMap, body: String) -> Response {
    let declared_other = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.starts_with("application/x-www-form-urlencoded"));
    let form = match (body.is_empty(), declared_other) {
        (true, _) => Ok(Params::default()),
        (false, true) => Err(Error::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        )),
        (false, false) => Params::parse(&body).map_err(Error::invalid_request),
    };
    match form {
        Ok(form) => respond(&state, &headers, &form).await,
        Err(err) => err.into_response(),
    }
}

async fn respond(state: &AppState, headers: &HeaderMap, form: &Params) -> Response {
    match userinfo(&state.tokens, state.store.as_ref(), headers, form).await {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn userinfo(
    tokens: &TokenIssuer,
    users: &(dyn UserStore + Send + Sync),
    headers: &HeaderMap,
    form: &Params,
) -> Result<serde_json::Value> {
    let token = bearer_token(headers, form)?;
    let (_, record) = tokens.validate_access_token(token).await?;
    if !scope::has(&record.scope, scope::OPENID) {
        return Err(Error::oauth(
            ErrorCode::InsufficientScope,
            "the token lacks the openid scope",
        ));
    }
    let user = match &record.user_id {
        Some(id) => users.user(id).await?.filter(|u| u.active),
        None => None,
    }
    .ok_or_else(|| Error::oauth(ErrorCode::InvalidToken, "the token's user is gone"))?;
    let info = UserInfo {
        sub: &user.id,
        profile: scope::releases(&record.scope, "name").then(|| profile(&user)),
        email: EmailClaims::of(&user, &record.scope),
        groups: tokens.groups_claim(&user.id, &record.scope).await?,
    };
    serde_json::to_value(info).map_err(Error::internal)
}
