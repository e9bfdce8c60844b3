//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use returns a new refresh token; presenting a rotated one revokes the whole family.

use async_trait::async_trait;

use crate::account::session::{self, Authentication};
use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::grants::GrantHandler;
use crate::oauth::params::Params;
use crate::oauth::token::{ensure_active_user, mint_user_tokens, TokenResponse, UserGrant};
use crate::secret;
use crate::state::AppState;
use crate::store::{Client, RefreshTokenRecord, Rotation, TokenRecord, UnixTime};
use crate::tokens::refresh_token::{self, Family};
use crate::tokens::scope;

pub struct RefreshTokenGrant;

fn dead() -> Error {
    Error::invalid_grant("the refresh token is invalid, expired or revoked")
}

/// RFC 6749 §6: the requested scope may narrow the grant's, never widen it.
fn requested_scope(params: &Params, record: &RefreshTokenRecord) -> Result<String> {
    let Some(requested) = params.get("scope") else {
        return Ok(record.scope.clone());
    };
    let requested = scope::parse(requested)?;
    if !scope::is_within(&requested, &scope::parse(&record.scope)?) {
        return Err(Error::oauth(
            ErrorCode::InvalidScope,
            "the requested scope exceeds the original grant",
        ));
    }
    Ok(scope::canonical(&requested))
}

/// A rotated token came back within the optional grace window: if its successor is still
/// unused, the client lost the response, and the successor is replaced once. Stores `access`
/// with the replacement; returns the new refresh token.
async fn retry_in_grace(
    state: &AppState,
    record: &RefreshTokenRecord,
    family: &Family<'_>,
    access: &TokenRecord,
) -> Result<Option<String>> {
    let Some(grace) = state.config.refresh_reuse_grace else {
        return Ok(None);
    };
    let now = clock::now();
    let (token, new) = refresh_token::mint(state, family);
    let since = now - grace.as_secs() as UnixTime;
    let rotation = state
        .store
        .replace_successor(&record.token_hash, since, &new, now)
        .await?;
    if rotation == Rotation::Lost {
        return Ok(None);
    }
    state.store.insert_token(access).await?;
    // Within the window this may be a client that lost a response, or a thief who came first:
    // either way it is reported, and what the replaced successor carried no longer works.
    state.metrics.refresh_reuse_detected();
    tracing::warn!(family_id = %record.family_id,
        "refresh token presented again within the grace window; its unused successor and that successor's access token are revoked");
    Ok(Some(token))
}

/// RFC 9700 §4.14.2: a token that can no longer be used came back, so two parties hold the
/// family. Revokes it whole and records the event (once: a dead family has nothing to revoke).
async fn revoke_reused_family(state: &AppState, record: &RefreshTokenRecord) -> Result<Error> {
    let now = clock::now();
    let revoked = state
        .store
        .revoke_reused_family(&record.family_id, &record.client_id, &record.user_id, now)
        .await?;
    if revoked > 0 {
        state.metrics.refresh_reuse_detected();
        tracing::warn!(family_id = %record.family_id, client_id = %record.client_id, revoked,
            "refresh token reuse detected; the token family is revoked");
    }
    Ok(Error::invalid_grant(
        "the refresh token was already used; its grant is revoked",
    ))
}

#[async_trait]
impl GrantHandler for RefreshTokenGrant {
    fn grant_type(&self) -> &'static str {
        "refresh_token"
    }

    async fn handle(
        &self,
        state: &AppState,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse> {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| Error::invalid_request("refresh_token is required"))?;
        let now = clock::now();
        let record = state
            .store
            .refresh_token(&secret::hash(presented))
            .await?
            .ok_or_else(dead)?;
        // RFC 6749 §10.4: a refresh token is bound to the client it was issued to.
        if record.client_id != client.client_id {
            return Err(Error::invalid_grant(
                "the refresh token was issued to another client",
            ));
        }
        if record.expires_at <= now {
            return Err(dead());
        }
        // A revoked token is either in a dead family (revoking again changes nothing) or a
        // successor replaced in the grace window, which the legitimate client never received.
        if record.revoked {
            return Err(revoke_reused_family(state, &record).await?);
        }
        // A client switched to --require-mfa gets no more tokens from a family that began with
        // a password alone: the user signs in again, with the second factor.
        if client.require_mfa && !session::is_mfa(&record.amr) {
            return Err(Error::invalid_grant(
                "this client requires two-step verification; sign in again",
            ));
        }
        let access_scope = requested_scope(params, &record)?;
        ensure_active_user(state, &record.user_id).await?;
        let authentication = Authentication {
            auth_time: record.auth_time,
            acr: record.acr.clone(),
            amr: record.amr.clone(),
        };
        let family = Family {
            family_id: &record.family_id,
            client,
            user_id: &record.user_id,
            scope: &record.scope,
            session_id: record.session_id.as_deref(),
            authentication: &authentication,
        };
        // OIDC Core §12.2: the refreshed ID token keeps sub, aud and auth_time, has a new iat
        // and no nonce.
        let grant = UserGrant {
            grant_id: &record.family_id,
            user_id: &record.user_id,
            scope: &access_scope,
            authentication: &authentication,
            nonce: None,
            sid: record.session_id.as_deref(),
        };
        // Signed first, so the rotation and the new access token are one write; a lost
        // rotation drops them unsent.
        let (response, access) = mint_user_tokens(state, client, &grant).await?;
        let new_refresh_token = if record.rotated_at.is_some() {
            match retry_in_grace(state, &record, &family, &access).await? {
                Some(token) => token,
                None => return Err(revoke_reused_family(state, &record).await?),
            }
        } else {
            let (token, new) = refresh_token::mint(state, &family);
            match state
                .store
                .rotate_and_issue(&record.token_hash, &new, &access, now)
                .await?
            {
                Rotation::Rotated => token,
                // A concurrent request rotated it first; that one won.
                Rotation::Lost => return Err(dead()),
            }
        };
        Ok(response.with_refresh_token(new_refresh_token))
    }
}
