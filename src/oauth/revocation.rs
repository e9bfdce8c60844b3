//! The revocation endpoint (RFC 7009).

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::client_auth;
use crate::oauth::params::Params;
use crate::oauth::presented_token::{self, KnownToken};
use crate::state::AppState;
use crate::web::client_ip::ClientIp;

pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: String,
) -> Response {
    match revoke_token(&state, ip, &headers, &body).await {
        Ok(()) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn revoke_token(state: &AppState, ip: IpAddr, headers: &HeaderMap, body: &str) -> Result<()> {
    let params = Params::from_form(headers, body)?;
    let client =
        client_auth::authenticate(state.store.as_ref(), &state.throttle, ip, headers, &params)
            .await?;
    let token = params
        .get("token")
        .ok_or_else(|| Error::invalid_request("token is required"))?;
    // §2.2: an unknown, expired or already revoked token is not an error.
    let Some(found) =
        presented_token::find(state.store.as_ref(), token, params.get("token_type_hint")).await?
    else {
        return Ok(());
    };
    // §2.1: a client may only revoke its own tokens.
    if found.client_id() != client.client_id {
        return Err(Error::oauth(
            ErrorCode::UnauthorizedClient,
            "the token was not issued to this client",
        ));
    }
    let now = clock::now();
    match found {
        KnownToken::Access(token) => state.store.revoke_token(&token.token_hash, now).await?,
        // §2.1: revoking a refresh token ends the grant: every token of its family.
        KnownToken::Refresh(token) => {
            state.store.revoke_grant(&token.family_id, now).await?;
        }
    }
    Ok(())
}
