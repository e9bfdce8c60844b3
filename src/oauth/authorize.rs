//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2).
//!
//! Order matters (RFC 6749 §4.1.2.1): `client_id` and `redirect_uri` are checked first, and until
//! both are valid every error is an HTML page, never a redirect. After that, errors go back to the
//! client's redirect URI with `error`, `state` and `iss` (RFC 9207).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};

use crate::account::session;
use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::flow::{self, Step};
use crate::oauth::interaction::{Interaction, Purpose};
use crate::oauth::params::Params;
use crate::oauth::pkce::Challenge;
use crate::oauth::redirect_uri;
use crate::oauth::sign_in::{refusal, SignIn};
use crate::state::AppState;
use crate::store::{Client, Store, UnixTime};
use crate::throttle::Throttle;
use crate::tokens::hint::HintCheck;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;
use crate::ui;
use crate::web::client_ip::ClientIp;
use crate::web::csrf;
use crate::web::paths;

/// Longest `state` or `nonce` we keep: generous for any real client, bounded for the store.
const MAX_OPAQUE_PARAM: usize = 2048;

/// OIDC Core §3.1.2.1 `prompt` values that change what we do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    /// OpenID Connect Prompt Create 1.0 §4: show account creation.
    #[serde(default)]
    pub create: bool,
}

/// A validated authorization request, kept in the interaction while the user signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Canonical (sorted) scope.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The PKCE challenge in its stored form.
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<UnixTime>,
    /// `acr_values` asks for `mfa`, or the client is registered with `--require-mfa`.
    pub require_mfa: bool,
    /// `acr_values` asks for `phr`, or the client is registered with
    /// `--require-phishing-resistant`: only a passkey will do.
    #[serde(default)]
    pub require_phishing_resistant: bool,
    /// The user an `id_token_hint` names: a session of anyone else does not count.
    #[serde(default)]
    pub hinted_user: Option<String>,
}

/// The authorization response, sent to the client's validated redirect URI.
pub struct Reply {
    redirect_uri: String,
    state: Option<String>,
    issuer: String,
}

impl Reply {
    pub fn to(request: &AuthorizationRequest, issuer: &str) -> Self {
        Reply {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            issuer: issuer.to_string(),
        }
    }

    /// Success (RFC 6749 §4.1.2): `code`, `state`, and `iss` (RFC 9207 §2).
    pub fn code(&self, code: &str) -> Response {
        self.redirect(&[("code", code)])
    }

    /// Error (RFC 6749 §4.1.2.1): `error`, `error_description`, `state`, `iss`.
    pub fn error(&self, err: Error) -> Response {
        err.render(|code, description| {
            self.redirect(&[
                ("error", code.as_str()),
                ("error_description", &description),
            ])
        })
    }

    fn redirect(&self, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            // Unreachable: the URI was validated at registration. Fail closed all the same.
            return ui::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "bad redirect URI",
            );
        };
        {
            // Existing query components of a registered URI are kept (RFC 6749 §3.1.2).
            let mut query = url.query_pairs_mut();
            query.extend_pairs(pairs);
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        Redirect::to(url.as_str()).into_response()
    }
}

pub async fn get(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    authorize(&state, &sign_in, ip, jar, &query.unwrap_or_default()).await
}

/// OIDC Core §3.1.2.1: the endpoint accepts POST with a form body too.
pub async fn post(
    State(state): State<AppState>,
    State(sign_in): State<Arc<SignIn>>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    body: String,
) -> Response {
    authorize(&state, &sign_in, ip, jar, &body).await
}

async fn authorize(
    state: &AppState,
    sign_in: &SignIn,
    ip: IpAddr,
    jar: CookieJar,
    encoded: &str,
) -> Response {
    let params = match Params::parse(encoded) {
        Ok(params) => params,
        Err(message) => {
            return ui::error_page(StatusCode::BAD_REQUEST, "invalid_request", &message)
        }
    };
    let client = match registered_client(state.store.as_ref(), &params).await {
        Ok(client) => client,
        Err(page) => return page,
    };
    // From here on the redirect URI is trusted: errors are sent to it.
    let reply = Reply {
        redirect_uri: params.get("redirect_uri").unwrap_or_default().to_string(),
        state: params.get("state").map(str::to_string),
        issuer: state.config.issuer.clone(),
    };
    let request = validate(&client, &params).and_then(|mut request| {
        request.hinted_user = hinted_user(&state.tokens, &client, &params)?;
        Ok(request)
    });
    let outcome = match request {
        Ok(request) => begin(sign_in, &state.throttle, ip, jar, &client, request).await,
        Err(err) => Err(err),
    };
    outcome.unwrap_or_else(|err| reply.error(err))
}

/// The client and its registered redirect URI, or the HTML error page that must replace a redirect.
async fn registered_client(store: &dyn Store, params: &Params) -> Result<Client, Response> {
    let bad = |message: &str| ui::error_page(StatusCode::BAD_REQUEST, "invalid_request", message);
    let client_id = params
        .get("client_id")
        .ok_or_else(|| bad("The request names no client (client_id)."))?;
    let client = store
        .client(client_id)
        .await
        .map_err(|err| ui::error_response(err.into()))?
        .ok_or_else(|| bad("The client is not registered with this server."))?;
    let requested = params
        .get("redirect_uri")
        .ok_or_else(|| bad("The request has no redirect_uri."))?;
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_uri::matches(r, requested))
    {
        return Err(bad("The redirect_uri is not registered for this client."));
    }
    Ok(client)
}

fn bounded(params: &Params, name: &str) -> Result<Option<String>> {
    match params.get(name) {
        Some(value) if value.len() > MAX_OPAQUE_PARAM => {
            Err(Error::invalid_request(format!("{name} is too long")))
        }
        value => Ok(value.map(str::to_string)),
    }
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt> {
    let mut prompt = Prompt::default();
    for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "create" => prompt.create = true,
            // We have no account chooser; the login page serves.
            "select_account" => {}
            other => {
                return Err(Error::invalid_request(format!(
                    "unknown prompt value {other:?}"
                )))
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.create) {
        return Err(Error::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// The authorization request `params` make for `client` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1),
/// or why they make none. Needs nothing but its arguments.
pub fn validate(client: &Client, params: &Params) -> Result<AuthorizationRequest> {
    if params.get("request").is_some() {
        return Err(Error::oauth(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(Error::oauth(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(Error::oauth(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
        None => return Err(Error::invalid_request("response_type is required")),
    }
    if !client.has_grant("authorization_code") {
        return Err(Error::oauth(
            ErrorCode::UnauthorizedClient,
            "the client may not use the authorization code grant",
        ));
    }
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return Err(Error::invalid_request(
            "only response_mode=query is supported",
        ));
    }
    let requested = scope::parse(
        params
            .get("scope")
            .ok_or_else(|| Error::oauth(ErrorCode::InvalidScope, "scope is required"))?,
    )?;
    if !scope::is_within(&requested, &scope::parse(&client.scope)?) {
        return Err(Error::oauth(
            ErrorCode::InvalidScope,
            "the requested scope exceeds what the client may ask for",
        ));
    }
    let challenge = Challenge::from_request(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(Error::invalid_request)?;
    let max_age = params
        .get("max_age")
        .map(|v| v.parse::<u32>().map(UnixTime::from))
        .transpose()
        .map_err(|_| Error::invalid_request("max_age must be a non-negative integer"))?;
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: params.get("redirect_uri").unwrap_or_default().to_string(),
        scope: scope::canonical(&requested),
        state: bounded(params, "state")?,
        nonce: bounded(params, "nonce")?,
        code_challenge: challenge.as_stored().to_string(),
        prompt: parse_prompt(params.get("prompt"))?,
        max_age,
        // OIDC Core §3.1.2.1: acr_values is a preference list; `mfa` or `phr` anywhere in it is
        // honoured as a requirement (CONTRACT.md), other values are ignored.
        require_mfa: client.require_mfa || asks_for_acr(params, "mfa"),
        require_phishing_resistant: client.require_phishing_resistant
            || asks_for_acr(params, session::PHISHING_RESISTANT),
        hinted_user: None,
    })
}

fn asks_for_acr(params: &Params, acr: &str) -> bool {
    params
        .get("acr_values")
        .is_some_and(|values| values.split(' ').any(|value| value == acr))
}

/// OIDC Core §3.1.2.1 `id_token_hint`: the user the client believes is signed in. A session of
/// another user then does not count, so the user signs in again, and under `prompt=none` the
/// answer is `login_required` (security review finding 18). Hints signed by a since retired key
/// are used too: they can only ask for a sign-in, never skip one.
fn hinted_user(tokens: &TokenIssuer, client: &Client, params: &Params) -> Result<Option<String>> {
    let Some(token) = params.get("id_token_hint") else {
        return Ok(None);
    };
    let (HintCheck::Verified(hint) | HintCheck::RetiredKey(hint)) = tokens.check_hint(token)?;
    if hint.aud != client.client_id {
        return Err(Error::invalid_request(
            "id_token_hint was issued to another client",
        ));
    }
    Ok(Some(hint.sub))
}

/// Starts a sign-in for a valid request, or answers it at once from the browser's session: a
/// code, or (with `prompt=none`, or MFA the user cannot give) an error redirect.
async fn begin(
    sign_in: &SignIn,
    throttle: &Throttle,
    ip: IpAddr,
    jar: CookieJar,
    client: &Client,
    request: AuthorizationRequest,
) -> Result<Response> {
    let now = clock::now();
    let session = sign_in
        .current_session(&jar, now)
        .await?
        .filter(|s| flow::session_counts(&request, &s.user_id, s.authentication.auth_time, now));
    let user = match &session {
        Some(s) => {
            let amr = &s.authentication.amr;
            let facts = sign_in.user_facts(Some((client, &request)), &s.user_id, amr, false);
            Some(facts.await?)
        }
        None => None,
    };
    let step = flow::next_step(Some(&request), user);
    let page = match (step, &session) {
        (Step::IssueCode, Some(session)) => {
            return sign_in.issue_code(client, &request, session).await
        }
        (Step::Refuse(code), _) => return Err(refusal(code)),
        (Step::Login, _) => paths::LOGIN,
        // Prompt Create 1.0 §4.1: a value the provider does not offer is invalid_request.
        (Step::SignUp, _) if !sign_in.offers_signup => {
            return Err(Error::invalid_request(
                "prompt=create: this provider has no sign-up",
            ))
        }
        (Step::SignUp, _) => paths::SIGNUP,
        (Step::SecondFactor, Some(_)) => paths::LOGIN_MFA,
        (Step::Consent, Some(_)) => paths::CONSENT,
        (Step::VerifyEmail, Some(_)) => paths::LOGIN_VERIFY_EMAIL,
        (step, _) => {
            return Err(Error::internal(format!(
                "sign-in step {step:?} at authorize"
            )))
        }
    };
    // Every sign-in started here is stored until it expires (security review finding 8), so one
    // address may start only so many in a window; the client is told to come back later
    // (`temporarily_unavailable`, RFC 6749 §4.1.2.1). The throttle counts each start as it
    // counts a failure elsewhere.
    let starts = [throttle.sign_in_starts(ip)];
    if let Some(retry_after) = throttle.record_failure(&starts).await {
        return Err(Error::Throttled { retry_after });
    }
    let (jar, csrf_token) = csrf::ensure_token(jar, sign_in.https());
    let mut interaction = Interaction::new(Purpose::Authorize(request), &csrf_token);
    if let Some(session) = session {
        match step {
            Step::SecondFactor => interaction.pending_mfa = Some(session.user_id),
            _ => interaction.sid = Some(session.sid),
        }
    }
    let id = sign_in.interactions.save_new(&interaction).await?;
    Ok((jar, Redirect::to(&paths::for_interaction(page, &id))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values() {
        assert_eq!(parse_prompt(None).unwrap(), Prompt::default());
        let p = parse_prompt(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("bogus")).is_err());
    }
}
