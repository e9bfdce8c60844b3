//! Access tokens: JWTs per RFC 9068 (`typ: at+jwt`, ES256), each with a `tokens` row keyed by the
//! token's hash so it can be revoked and introspected.

use serde::{Deserialize, Serialize};

use crate::account::session::{self, Authentication};
use crate::clock;
use crate::error::{Error, ErrorCode, Result};
use crate::keys::SigningAlg;
use crate::secret;
use crate::store::{Client, TokenRecord, UnixTime};
use crate::tokens::issuer::TokenIssuer;

/// RFC 9068 §2.1.
pub const TOKEN_TYPE: &str = "at+jwt";

/// RFC 9068 §2.2 claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The user, or the client itself for client-only grants (§2.2).
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<UnixTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

/// What a new access token is for.
pub struct Grant<'a> {
    pub grant_id: &'a str,
    pub client: &'a Client,
    pub user_id: Option<&'a str>,
    pub scope: &'a str,
    pub authentication: Option<&'a Authentication>,
}

pub struct Issued {
    pub token: String,
    pub expires_in: u64,
}

fn invalid_token(description: &str) -> Error {
    Error::oauth(ErrorCode::InvalidToken, description)
}

impl TokenIssuer {
    /// Signs and persists a new access token.
    pub async fn issue_access_token(&self, grant: &Grant<'_>) -> Result<Issued> {
        let (issued, record) = self.mint_access_token(grant)?;
        self.records.insert_token(&record).await?;
        Ok(issued)
    }

    /// Signs a new access token and returns it with its record, not yet stored: for flows that
    /// store it in one write with other tokens.
    pub fn mint_access_token(&self, grant: &Grant<'_>) -> Result<(Issued, TokenRecord)> {
        let now = clock::now();
        // A client's lifetime may only shorten the server's: retired signing keys stay published,
        // and redeemed codes are kept, for the server's lifetime.
        let server_ttl = self.lifetimes.access_token.as_secs();
        let ttl = grant
            .client
            .access_token_seconds
            .map_or(server_ttl, |seconds| u64::from(seconds).min(server_ttl));
        let auth = grant.authentication;
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: grant.user_id.unwrap_or(&grant.client.client_id).to_string(),
            // The provider's own resources (userinfo) are the audience unless a resource is named.
            aud: self.issuer.clone(),
            exp: now + ttl as UnixTime,
            iat: now,
            jti: uuid::Uuid::now_v7().to_string(),
            client_id: grant.client.client_id.clone(),
            scope: grant.scope.to_string(),
            auth_time: auth.map(|a| a.auth_time),
            acr: auth.map(|a| a.acr.clone()),
            amr: auth.map(|a| a.amr.clone()),
        };
        let token = self
            .keys()
            .sign(SigningAlg::Es256, TOKEN_TYPE, &claims)
            .map_err(Error::internal)?;
        let amr = claims.amr.clone().unwrap_or_default();
        let record = TokenRecord {
            token_hash: secret::hash(&token),
            jti: claims.jti,
            grant_id: grant.grant_id.to_string(),
            client_id: claims.client_id,
            user_id: grant.user_id.map(str::to_string),
            scope: claims.scope,
            mfa_verified: session::is_mfa(&amr),
            acr: claims.acr,
            amr,
            auth_time: claims.auth_time,
            issued_at: now,
            expires_at: claims.exp,
            revoked: false,
        };
        let issued = Issued {
            token,
            expires_in: ttl,
        };
        Ok((issued, record))
    }

    /// The claims and live record of a bearer token we issued, or `invalid_token`. The signature
    /// and claims are checked first, so forged tokens cost no store round-trip.
    pub async fn validate_access_token(
        &self,
        token: &str,
    ) -> Result<(AccessTokenClaims, TokenRecord)> {
        let payload = self
            .keys()
            .verify(token, SigningAlg::Es256, TOKEN_TYPE)
            .map_err(|_| invalid_token("the access token is invalid"))?;
        let claims: AccessTokenClaims = serde_json::from_slice(&payload)
            .map_err(|_| invalid_token("the access token is malformed"))?;
        let now = clock::now();
        if claims.iss != self.issuer || claims.exp <= now {
            return Err(invalid_token("the access token is expired or not ours"));
        }
        let record = self
            .records
            .token_by_hash(&secret::hash(token))
            .await?
            .filter(|r| r.is_active(now))
            .ok_or_else(|| invalid_token("the access token is revoked or unknown"))?;
        Ok((claims, record))
    }
}
