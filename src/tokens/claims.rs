//! Claims read from the user's record or groups when the scope releases them.

use serde::Serialize;

use crate::error::Result;
use crate::store::User;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;

/// OIDC Core §5.4 `email` scope claims, for the ID token and userinfo alike. `email_verified`
/// (§5.1) is true only once the user opened a link mailed to the address, so that no relying
/// party links accounts by an address anyone could have typed.
#[derive(Debug, Clone, Serialize)]
pub struct EmailClaims<'a> {
    pub email: &'a str,
    pub email_verified: bool,
}

impl<'a> EmailClaims<'a> {
    /// The claims for a token of `granted` scope: `None` unless the scope releases them and
    /// the user has an address.
    pub fn of(user: &'a User, granted: &str) -> Option<Self> {
        scope::releases(granted, "email").then_some(())?;
        Some(EmailClaims {
            email: user.email()?,
            email_verified: user.email_verified(),
        })
    }
}

impl TokenIssuer {
    /// The `groups` claim for a token of `granted` scope: `None` unless the scope releases it.
    pub async fn groups_claim(&self, user_id: &str, granted: &str) -> Result<Option<Vec<String>>> {
        if !scope::releases(granted, "groups") {
            return Ok(None);
        }
        let memberships = self.users.memberships(&[user_id.to_string()]).await?;
        Ok(Some(
            memberships.into_iter().map(|m| m.display_name).collect(),
        ))
    }
}
