//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2):
//! every use returns a new refresh token; presenting a rotated one revokes the whole family.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::account::session::{self, Authentication};
use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::metrics::Metrics;
use crate::oauth::grants::{GrantHandler, GrantServices};
use crate::oauth::params::Params;
use crate::oauth::token::{active_user, mint_user_tokens, TokenResponse, UserGrant};
use crate::secret;
use crate::store::{Client, RefreshTokenRecord, Rotation, Store, TokenRecord, UnixTime};
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::refresh_token::Family;
use crate::tokens::scope;

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

pub struct RefreshTokenGrant {
    store: Arc<dyn Store>,
    tokens: Arc<TokenIssuer>,
    metrics: Arc<Metrics>,
    /// The optional window in which a rotated token may be presented again (RFC 9700 §4.14.2).
    reuse_grace: Option<Duration>,
}

impl RefreshTokenGrant {
    pub fn build(services: &GrantServices<'_>) -> Box<dyn GrantHandler> {
        Box::new(RefreshTokenGrant {
            store: services.store.clone(),
            tokens: services.tokens.clone(),
            metrics: services.metrics.clone(),
            reuse_grace: services.config.lifetimes.refresh_reuse_grace,
        })
    }

    /// A rotated token came back within the optional grace window: if its successor is still
    /// unused, the client lost the response, and the successor is replaced once. Stores `access`
    /// with the replacement; returns the new refresh token.
    async fn retry_in_grace(
        &self,
        record: &RefreshTokenRecord,
        family: &Family<'_>,
        access: &TokenRecord,
    ) -> Result<Option<String>> {
        let Some(grace) = self.reuse_grace else {
            return Ok(None);
        };
        let now = clock::now();
        let (token, new) = self.tokens.mint_refresh_token(family);
        let since = now - grace.as_secs() as UnixTime;
        let rotation = self
            .store
            .replace_successor(&record.token_hash, since, &new, now)
            .await?;
        if rotation == Rotation::Lost {
            return Ok(None);
        }
        self.store.insert_token(access).await?;
        // Within the window this may be a client that lost a response, or a thief who came first:
        // either way it is reported, and what the replaced successor carried no longer works.
        self.metrics.refresh_reuse_detected();
        tracing::warn!(family_id = %record.family_id,
            "refresh token presented again within the grace window; its unused successor and that successor's access token are revoked");
        Ok(Some(token))
    }

    /// RFC 9700 §4.14.2: a token that can no longer be used came back, so two parties hold the
    /// family. Revokes it whole and records the event (once: a dead family has nothing to revoke).
    async fn revoke_reused_family(&self, record: &RefreshTokenRecord) -> Result<Error> {
        let now = clock::now();
        let revoked = self
            .store
            .revoke_reused_family(&record.family_id, &record.client_id, &record.user_id, now)
            .await?;
        if revoked > 0 {
            self.metrics.refresh_reuse_detected();
            tracing::warn!(family_id = %record.family_id, client_id = %record.client_id, revoked,
                "refresh token reuse detected; the token family is revoked");
        }
        Ok(Error::invalid_grant(
            "the refresh token was already used; its grant is revoked",
        ))
    }
}

#[async_trait]
impl GrantHandler for RefreshTokenGrant {
    async fn handle(&self, client: &Client, params: &Params) -> Result<TokenResponse> {
        let presented = params
            .get("refresh_token")
            .ok_or_else(|| Error::invalid_request("refresh_token is required"))?;
        let now = clock::now();
        let record = self
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
            return Err(self.revoke_reused_family(&record).await?);
        }
        // A client switched to --require-mfa gets no more tokens from a family that began with
        // a password alone: the user signs in again, with the second factor.
        if client.require_mfa && !session::is_mfa(&record.amr) {
            return Err(Error::invalid_grant(
                "this client requires two-step verification; sign in again",
            ));
        }
        if client.require_phishing_resistant && !session::is_phishing_resistant(&record.amr) {
            return Err(Error::invalid_grant(
                "this client requires a passkey; sign in again",
            ));
        }
        let access_scope = requested_scope(params, &record)?;
        let user = active_user(self.store.as_ref(), &record.user_id).await?;
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
            user: &user,
            scope: &access_scope,
            authentication: &authentication,
            nonce: None,
            sid: record.session_id.as_deref(),
        };
        // Signed first, so the rotation and the new access token are one write; a lost
        // rotation drops them unsent.
        let (response, access) = mint_user_tokens(&self.tokens, client, &grant).await?;
        let new_refresh_token = if record.rotated_at.is_some() {
            match self.retry_in_grace(&record, &family, &access).await? {
                Some(token) => token,
                None => return Err(self.revoke_reused_family(&record).await?),
            }
        } else {
            let (token, new) = self.tokens.mint_refresh_token(&family);
            match self
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
