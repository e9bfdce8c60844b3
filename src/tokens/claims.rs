//! Claims beyond OIDC Core's standard set.

use crate::error::Result;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;

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
