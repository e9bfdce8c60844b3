//! The authorization code grant's token request (RFC 6749 §4.1.3, RFC 7636 §4.5, OIDC Core §3.1.3).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::account::session::Authentication;
use crate::clock;
use crate::error::{Error, Result};
use crate::oauth::grants::{GrantHandler, GrantServices};
use crate::oauth::params::Params;
use crate::oauth::pkce::Challenge;
use crate::oauth::token::{active_user, mint_user_tokens, TokenResponse, UserGrant};
use crate::secret;
use crate::store::{AuthCode, Client, CodeRedemption, Store};
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::refresh_token::{self, Family};

fn invalid_code() -> Error {
    Error::invalid_grant("the authorization code is invalid or expired")
}

pub struct AuthorizationCodeGrant {
    store: Arc<dyn Store>,
    tokens: Arc<TokenIssuer>,
    /// When a replayed code's grant is revoked a second time (see [`Self::revoke_replayed`]).
    revoke_again_after: Duration,
}

impl AuthorizationCodeGrant {
    pub fn build(services: &GrantServices<'_>) -> Box<dyn GrantHandler> {
        Box::new(AuthorizationCodeGrant {
            store: services.store.clone(),
            tokens: services.tokens.clone(),
            // Every request ends within the request timeout, and a queued token write commits
            // within moments after.
            revoke_again_after: services.config.transport.request_timeout + Duration::from_secs(5),
        })
    }

    /// Redeems the code once, after the request proved it is the one the code was issued for
    /// (RFC 6749 §4.1.3, §10.5): a request that fails those checks neither uses up the code nor
    /// counts as a replay, so whoever saw a code cannot burn it or revoke what it issued
    /// (security review finding 10). A second redemption by the code's own client is a replay,
    /// which revokes every token issued from the code (§4.1.2, RFC 9700 §4.2.4).
    async fn redeem(&self, code: &str, client: &Client, params: &Params) -> Result<AuthCode> {
        let code_hash = secret::hash(code);
        let record = self
            .store
            .code(&code_hash)
            .await?
            .ok_or_else(invalid_code)?;
        check_binding(&record, client, params)?;
        match self.store.redeem_code(&code_hash, clock::now()).await? {
            CodeRedemption::Redeemed(record) => Ok(*record),
            CodeRedemption::AlreadyRedeemed { grant_id } => {
                self.revoke_replayed(grant_id).await?;
                Err(Error::invalid_grant(
                    "the authorization code was already used",
                ))
            }
            CodeRedemption::Invalid => Err(invalid_code()),
        }
    }

    /// Revokes what a replayed code issued, now and once more after the first redemption can no
    /// longer be storing its tokens: a replay that races the first redemption would otherwise
    /// find nothing to revoke (finding 15).
    async fn revoke_replayed(&self, grant_id: String) -> Result<()> {
        let revoked = self.store.revoke_grant(&grant_id, clock::now()).await?;
        tracing::warn!(%grant_id, revoked, "authorization code replayed; its tokens are revoked");
        let store = self.store.clone();
        let later = self.revoke_again_after;
        tokio::spawn(async move {
            tokio::time::sleep(later).await;
            if let Err(err) = store.revoke_grant(&grant_id, clock::now()).await {
                tracing::error!(%grant_id, error = %err, "revoking a replayed code's grant again failed");
            }
        });
        Ok(())
    }
}

/// The checks that bind the code to this exact request.
fn check_binding(record: &AuthCode, client: &Client, params: &Params) -> Result<()> {
    if record.client_id != client.client_id {
        return Err(Error::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if params.get("redirect_uri") != Some(record.redirect_uri.as_str()) {
        return Err(Error::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = params.get("code_verifier").unwrap_or_default();
    if !Challenge::from_stored(record.code_challenge.clone()).verify(verifier) {
        return Err(Error::invalid_grant(
            "the PKCE code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

#[async_trait]
impl GrantHandler for AuthorizationCodeGrant {
    async fn handle(&self, client: &Client, params: &Params) -> Result<TokenResponse> {
        let code = params
            .get("code")
            .ok_or_else(|| Error::invalid_request("code is required"))?;
        let record = self.redeem(code, client, params).await?;
        let user = active_user(self.store.as_ref(), &record.user_id).await?;
        let authentication = Authentication {
            auth_time: record.auth_time,
            acr: record.acr.clone(),
            amr: record.amr.clone(),
        };
        let grant = UserGrant {
            grant_id: &record.grant_id,
            user: &user,
            scope: &record.scope,
            authentication: &authentication,
            nonce: record.nonce.as_deref(),
            sid: Some(&record.session_id),
        };
        let (response, access) = mint_user_tokens(&self.tokens, client, &grant).await?;
        let family = Family {
            family_id: &record.grant_id,
            client,
            user_id: &record.user_id,
            scope: &record.scope,
            session_id: Some(&record.session_id),
            authentication: &authentication,
        };
        let refresh = refresh_token::is_offered(client.has_grant("refresh_token"), &record.scope)
            .then(|| self.tokens.mint_refresh_token(&family));
        let refresh_record = refresh.as_ref().map(|(_, record)| record);
        self.store.issue_tokens(&access, refresh_record).await?;
        Ok(match refresh {
            Some((token, _)) => response.with_refresh_token(token),
            None => response,
        })
    }
}
