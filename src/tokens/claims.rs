//! Claims read from the user's record or groups when the scope releases them.

use serde::Serialize;

use crate::error::Result;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;

/// OIDC Core §5.4 `email` scope claims.
#[derive(Debug, Clone, Serialize)]
pub struct EmailClaims {
    pub email: String,
    pub email_verified: bool,
}

impl TokenIssuer {
    /// `email` and `email_verified` for a token of `granted` scope: `None` unless the scope
    /// releases them and the user has an address.
    pub async fn email_claims(&self, user_id: &str, granted: &str) -> Result<Option<EmailClaims>> {
        if !scope::releases(granted, "email") {
            return Ok(None);
        }
        let user = self.users.user(user_id).await?;
        Ok(user.and_then(|user| {
            Some(EmailClaims {
                email: user.email()?.to_string(),
                email_verified: user.email_verified(),
            })
        }))
    }

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
