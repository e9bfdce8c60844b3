//! The token endpoint (RFC 6749 §3.2): authenticates the client, then hands the request to the
//! handler of its `grant_type` in the registry ([`crate::oauth::grants::Grants`]).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::account::session::Authentication;
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::client_auth;
use crate::oauth::grants::{GrantServices, Grants};
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::{Client, TokenRecord, User, UserStore};
use crate::tokens::access_token::{Grant, Issued};
use crate::tokens::claims::EmailClaims;
use crate::tokens::id_token::IdTokenFacts;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;
use crate::web::client_ip::ClientIp;

/// RFC 6749 §5.1 (with OIDC Core §3.1.3.3's `id_token`).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    pub fn bearer(access: Issued, scope: String, id_token: Option<String>) -> Self {
        TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope,
            id_token,
            refresh_token: None,
        }
    }

    pub fn with_refresh_token(mut self, refresh_token: String) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }
}

/// A user's grant at the token endpoint: what its access token and ID token state.
pub struct UserGrant<'a> {
    pub grant_id: &'a str,
    /// The grant's user, as [`active_user`] read it.
    pub user: &'a User,
    /// The scope of this access token.
    pub scope: &'a str,
    pub authentication: &'a Authentication,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
}

/// The grant's user; refuses a grant whose user was deleted or deactivated since it was made.
pub async fn active_user(users: &(dyn UserStore + Send + Sync), user_id: &str) -> Result<User> {
    match users.user(user_id).await? {
        Some(user) if user.active => Ok(user),
        _ => Err(Error::invalid_grant("the user is no longer active")),
    }
}

/// Signs the access token of a user's grant and, when its scope has `openid`, an ID token bound
/// to it through `at_hash` (OIDC Core §3.1.3.3). The access token's record is returned for the
/// caller to store with the grant's other tokens, in one write.
pub async fn mint_user_tokens(
    tokens: &TokenIssuer,
    client: &Client,
    grant: &UserGrant<'_>,
) -> Result<(TokenResponse, TokenRecord)> {
    let (access, record) = tokens.mint_access_token(&Grant {
        grant_id: grant.grant_id,
        client,
        user_id: Some(&grant.user.id),
        scope: grant.scope,
        authentication: Some(grant.authentication),
    })?;
    let id_token = if scope::has(grant.scope, scope::OPENID) {
        let groups = tokens.groups_claim(&grant.user.id, grant.scope).await?;
        let email = EmailClaims::of(grant.user, grant.scope);
        Some(tokens.sign_id_token(&IdTokenFacts {
            client,
            user_id: &grant.user.id,
            nonce: grant.nonce,
            authentication: grant.authentication,
            sid: grant.sid,
            access_token: &access.token,
            groups: groups.as_deref(),
            email: email.as_ref(),
        })?)
    } else {
        None
    };
    let response = TokenResponse::bearer(access, grant.scope.to_string(), id_token);
    Ok((response, record))
}

/// The grant handlers, built once at start-up from the server's services; the token endpoint's
/// router state holds them ([`crate::state::WithService`]).
pub fn grants(state: &AppState) -> Grants {
    Grants::new(&GrantServices {
        config: &state.config,
        store: &state.store,
        tokens: &state.tokens,
        metrics: &state.metrics,
    })
}

pub async fn token(
    State(state): State<AppState>,
    State(grants): State<Arc<Grants>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: String,
) -> Response {
    match exchange(&state, &grants, ip, &headers, &body).await {
        // §5.1: token responses must not be cached.
        Ok(response) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(response),
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

async fn exchange(
    state: &AppState,
    grants: &Grants,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &str,
) -> Result<TokenResponse> {
    let params = Params::from_form(headers, body)?;
    let client =
        client_auth::authenticate(state.store.as_ref(), &state.throttle, ip, headers, &params)
            .await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| Error::invalid_request("grant_type is required"))?;
    let handler = grants.named(grant_type).ok_or_else(|| {
        Error::oauth(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {grant_type:?} is not supported"),
        )
    })?;
    if !client.has_grant(grant_type) {
        return Err(Error::oauth(
            ErrorCode::UnauthorizedClient,
            "the client is not registered for this grant type",
        ));
    }
    let response = handler.handle(&client, &params).await?;
    state.metrics.token_issued(grant_type);
    Ok(response)
}
