//! Claims beyond OIDC Core's standard set.

use crate::error::Result;
use crate::oauth::scope;
use crate::state::AppState;

/// The scope that asks for the `groups` claim: the names of the user's groups, as provisioned
/// through SCIM (the claim name Keycloak, Okta and Entra ID use).
pub const GROUPS_SCOPE: &str = "groups";

/// The `groups` claim for a token of `granted` scope: `None` unless the scope asks for it.
pub async fn groups(state: &AppState, user_id: &str, granted: &str) -> Result<Option<Vec<String>>> {
    if !scope::has(granted, GROUPS_SCOPE) {
        return Ok(None);
    }
    let memberships = state.store.memberships(&[user_id.to_string()]).await?;
    Ok(Some(
        memberships.into_iter().map(|m| m.display_name).collect(),
    ))
}
