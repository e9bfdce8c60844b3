//! The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, ErrorCode, Result};
use crate::oauth::grants::{GrantHandler, GrantServices};
use crate::oauth::params::Params;
use crate::oauth::token::TokenResponse;
use crate::store::Client;
use crate::tokens::access_token::Grant;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;

pub struct ClientCredentialsGrant {
    tokens: Arc<TokenIssuer>,
}

impl ClientCredentialsGrant {
    pub fn build(services: &GrantServices<'_>) -> Box<dyn GrantHandler> {
        Box::new(ClientCredentialsGrant {
            tokens: services.tokens.clone(),
        })
    }
}

/// The requested scope, limited to the client's allowed scopes; without a request, all of them
/// (RFC 6749 §3.3 lets the server apply a default).
fn granted_scope(client: &Client, params: &Params) -> Result<String> {
    let allowed = scope::parse(&client.scope)?;
    let requested = match params.get("scope") {
        Some(raw) => scope::parse(raw)?,
        None => allowed.clone(),
    };
    let asks_for_user = requested.iter().any(scope::is_user_only);
    if params.get("scope").is_some() && (asks_for_user || !scope::is_within(&requested, &allowed)) {
        return Err(Error::oauth(
            ErrorCode::InvalidScope,
            "the requested scope exceeds what the client may ask for",
        ));
    }
    Ok(scope::join_sorted(
        requested.iter().filter(|s| !scope::is_user_only(s)),
    ))
}

#[async_trait]
impl GrantHandler for ClientCredentialsGrant {
    async fn handle(&self, client: &Client, params: &Params) -> Result<TokenResponse> {
        if client.is_public() {
            return Err(Error::oauth(
                ErrorCode::UnauthorizedClient,
                "a public client cannot use client_credentials",
            ));
        }
        let scope = granted_scope(client, params)?;
        let grant_id = uuid::Uuid::now_v7().to_string();
        let access = self
            .tokens
            .issue_access_token(&Grant {
                grant_id: &grant_id,
                client,
                user_id: None,
                scope: &scope,
                authentication: None,
            })
            .await?;
        // §4.4.3: no refresh token.
        Ok(TokenResponse::bearer(access, scope, None))
    }
}
