//! The grants of the token endpoint (RFC 6749 §4), one file each, and their registry. Adding a
//! grant is a new file implementing [`GrantHandler`] and one line in [`GRANTS`]: token dispatch,
//! client registration, discovery's `grant_types_supported` and the CLI's `--grant` read it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::oauth::params::Params;
use crate::oauth::token::TokenResponse;
use crate::store::{Client, Store};
use crate::tokens::issuer::TokenIssuer;

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use authorization_code::AuthorizationCodeGrant;
use client_credentials::ClientCredentialsGrant;
use refresh_token::RefreshTokenGrant;

/// One grant type at the token endpoint, holding what it touches.
#[async_trait]
pub trait GrantHandler: Send + Sync {
    /// Issues the tokens of a request from an authenticated client registered for the grant.
    async fn handle(&self, client: &Client, params: &Params) -> Result<TokenResponse>;
}

/// What the grants are built from at start-up; each keeps only the parts it uses.
pub struct GrantServices<'a> {
    pub config: &'a Config,
    pub store: &'a Arc<dyn Store>,
    pub tokens: &'a Arc<TokenIssuer>,
    pub metrics: &'a Arc<Metrics>,
}

/// A grant type the server implements: the `grant_type` value it answers, and its handler's
/// constructor.
pub struct GrantType {
    pub name: &'static str,
    build: fn(&GrantServices<'_>) -> Box<dyn GrantHandler>,
}

/// Every grant, in the order discovery lists them.
pub static GRANTS: [GrantType; 3] = [
    GrantType {
        name: "authorization_code",
        build: AuthorizationCodeGrant::build,
    },
    GrantType {
        name: "refresh_token",
        build: RefreshTokenGrant::build,
    },
    GrantType {
        name: "client_credentials",
        build: ClientCredentialsGrant::build,
    },
];

/// The grant type names, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    GRANTS.iter().map(|g| g.name)
}

pub fn is_supported(grant_type: &str) -> bool {
    names().any(|name| name == grant_type)
}

/// The handlers of [`GRANTS`], built once at start-up.
pub struct Grants(Vec<(&'static str, Box<dyn GrantHandler>)>);

impl Grants {
    pub fn new(services: &GrantServices<'_>) -> Self {
        Grants(
            GRANTS
                .iter()
                .map(|grant| (grant.name, (grant.build)(services)))
                .collect(),
        )
    }

    /// The handler of `grant_type`, if the server has one.
    pub fn named(&self, grant_type: &str) -> Option<&dyn GrantHandler> {
        self.0
            .iter()
            .find(|(name, _)| *name == grant_type)
            .map(|(_, handler)| handler.as_ref())
    }
}

#[cfg(test)]
mod tests;
