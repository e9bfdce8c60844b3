//! Refresh tokens: opaque 256-bit values stored by hash, issued per token family (the grant id).

use crate::account::session::Authentication;
use crate::clock;
use crate::secret;
use crate::store::{Client, RefreshTokenRecord, UnixTime};
use crate::tokens::issuer::TokenIssuer;

/// What a refresh token continues.
pub struct Family<'a> {
    pub family_id: &'a str,
    pub client: &'a Client,
    pub user_id: &'a str,
    /// The grant's full scope.
    pub scope: &'a str,
    pub session_id: Option<&'a str>,
    pub authentication: &'a Authentication,
}

impl TokenIssuer {
    /// A new token of `family`, not yet stored: returns its value and its record.
    pub fn mint_refresh_token(&self, family: &Family<'_>) -> (String, RefreshTokenRecord) {
        let token = secret::generate();
        let now = clock::now();
        let auth = family.authentication;
        let lifetime = family
            .client
            .refresh_token_seconds
            .map_or(self.lifetimes.refresh_token.as_secs(), u64::from);
        let record = RefreshTokenRecord {
            token_hash: secret::hash(&token),
            family_id: family.family_id.to_string(),
            client_id: family.client.client_id.clone(),
            user_id: family.user_id.to_string(),
            scope: family.scope.to_string(),
            session_id: family.session_id.map(str::to_string),
            auth_time: auth.auth_time,
            acr: auth.acr.clone(),
            amr: auth.amr.clone(),
            issued_at: now,
            expires_at: now + lifetime as UnixTime,
            rotated_at: None,
            replaced_by: None,
            grace_used: false,
            revoked: false,
        };
        (token, record)
    }
}

/// OIDC Core §11 / RFC 6749 §1.5: a refresh token only for clients registered for the grant,
/// and only when the user granted `offline_access`.
pub fn is_offered(client_has_grant: bool, scope: &str) -> bool {
    client_has_grant && crate::tokens::scope::has(scope, crate::tokens::scope::OFFLINE_ACCESS)
}
