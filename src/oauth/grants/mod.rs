//! The grants of the token endpoint (RFC 6749 §4), one file each, and their registry. Adding a
//! grant is a new file implementing [`GrantHandler`] and one line in [`GRANTS`]: token dispatch,
//! client registration, discovery's `grant_types_supported` and the CLI's `--grant` read it.

use async_trait::async_trait;

use crate::error::Result;
use crate::oauth::params::Params;
use crate::oauth::token::TokenResponse;
use crate::state::AppState;
use crate::store::Client;

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use authorization_code::AuthorizationCodeGrant;
use client_credentials::ClientCredentialsGrant;
use refresh_token::RefreshTokenGrant;

/// One grant type at the token endpoint.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// The `grant_type` value it answers.
    fn grant_type(&self) -> &'static str;
    /// Issues the tokens of a request from an authenticated client registered for the grant.
    async fn handle(
        &self,
        state: &AppState,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse>;
}

/// Every grant, in the order discovery lists them.
pub static GRANTS: [&dyn GrantHandler; 3] = [
    &AuthorizationCodeGrant,
    &RefreshTokenGrant,
    &ClientCredentialsGrant,
];

/// The handler of `grant_type`, if the server has one.
pub fn named(grant_type: &str) -> Option<&'static dyn GrantHandler> {
    GRANTS
        .iter()
        .copied()
        .find(|g| g.grant_type() == grant_type)
}

/// The grant type names, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    GRANTS.iter().map(|g| g.grant_type())
}
