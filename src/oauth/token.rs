//! The token endpoint (RFC 6749 §3.2): authenticates the client, then hands the request to the
//! grant handler that claims its `grant_type` (the fosite pattern: a new grant is a new file).

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::oauth::access_token::Issued;
use crate::oauth::client_auth;
use crate::oauth::grants::authorization_code::AuthorizationCodeGrant;
use crate::oauth::grants::client_credentials::ClientCredentialsGrant;
use crate::oauth::grants::refresh_token::RefreshTokenGrant;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::Client;

#[async_trait]
pub trait GrantHandler: Send + Sync {
    fn can_handle(&self, grant_type: &str) -> bool;
    async fn handle(
        &self,
        state: &AppState,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse>;
}

static GRANT_HANDLERS: &[&dyn GrantHandler] = &[
    &AuthorizationCodeGrant,
    &RefreshTokenGrant,
    &ClientCredentialsGrant,
];

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

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    match exchange(&state, &headers, &body).await {
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

async fn exchange(state: &AppState, headers: &HeaderMap, body: &str) -> Result<TokenResponse> {
    let params = Params::from_form(headers, body)?;
    let client = client_auth::authenticate(state, headers, &params).await?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| Error::invalid_request("grant_type is required"))?;
    let handler = GRANT_HANDLERS
        .iter()
        .find(|h| h.can_handle(grant_type))
        .ok_or_else(|| {
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
    handler.handle(state, &client, &params).await
}
