//! The introspection endpoint (RFC 7662), for confidential clients.
//!
//! §4: the server "MUST determine whether or not the token can be used at the protected
//! resource making the introspection call". A client may introspect the tokens issued to it; a
//! client registered as a resource server (`--resource-server URI`) also other clients' access
//! tokens. A refresh token is only ever its own client's business (RFC 6749 §10.4). Anything
//! else is `{"active": false}`, exactly as for an unknown token, so introspection is no oracle.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::account::session;
use crate::clock;
use crate::error::{Error, Result};
use crate::oauth::client_auth;
use crate::oauth::params::Params;
use crate::oauth::presented_token::{self, KnownToken};
use crate::state::AppState;
use crate::store::{Client, UnixTime};
use crate::web::client_ip::ClientIp;

/// §2.2 response for an active token.
#[derive(Debug, Serialize)]
struct Active<'a> {
    active: bool,
    iss: &'a str,
    scope: String,
    client_id: String,
    sub: String,
    exp: UnixTime,
    iat: UnixTime,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<String>,
    mfa_verified: bool,
}

pub async fn introspect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: String,
) -> Response {
    match describe(&state, ip, &headers, &body).await {
        Ok(answer) => ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response(),
        Err(err) => err.into_response(),
    }
}

async fn describe(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &str,
) -> Result<serde_json::Value> {
    let params = Params::from_form(headers, body)?;
    let client =
        client_auth::authenticate(state.store.as_ref(), &state.throttle, ip, headers, &params)
            .await?;
    if client.is_public() {
        // A public client has no credentials to prove it is a resource server.
        return Err(Error::InvalidClient { basic: false });
    }
    let token = params
        .get("token")
        .ok_or_else(|| Error::invalid_request("token is required"))?;
    let found =
        presented_token::find(state.store.as_ref(), token, params.get("token_type_hint")).await?;
    let active = found
        .filter(|found| may_introspect(&client, found))
        .and_then(|found| active(&state.config.issuer, found, clock::now()));
    // §2.2: anything not active is exactly {"active": false}, with no hint as to why.
    Ok(active.unwrap_or_else(|| serde_json::json!({ "active": false })))
}

fn may_introspect(caller: &Client, found: &KnownToken) -> bool {
    match found {
        KnownToken::Access(t) => t.client_id == caller.client_id || caller.is_resource_server(),
        KnownToken::Refresh(t) => t.client_id == caller.client_id,
    }
}

fn active(iss: &str, found: KnownToken, now: UnixTime) -> Option<serde_json::Value> {
    let answer = match found {
        KnownToken::Access(t) if t.is_active(now) => Active {
            active: true,
            iss,
            sub: t.user_id.clone().unwrap_or_else(|| t.client_id.clone()),
            scope: t.scope,
            client_id: t.client_id,
            exp: t.expires_at,
            iat: t.issued_at,
            token_type: "Bearer",
            jti: Some(t.jti),
            auth_time: t.auth_time,
            acr: t.acr,
            amr: t.amr,
            mfa_verified: t.mfa_verified,
        },
        KnownToken::Refresh(t) if !t.revoked && t.rotated_at.is_none() && now < t.expires_at => {
            Active {
                active: true,
                iss,
                mfa_verified: session::is_mfa(&t.amr),
                sub: t.user_id,
                scope: t.scope,
                client_id: t.client_id,
                exp: t.expires_at,
                iat: t.issued_at,
                token_type: "refresh_token",
                jti: None,
                auth_time: Some(t.auth_time),
                acr: Some(t.acr),
                amr: t.amr,
            }
        }
        _ => return None,
    };
    serde_json::to_value(answer).ok()
}
