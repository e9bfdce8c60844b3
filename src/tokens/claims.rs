//! Claims beyond OIDC Core's standard set.

use crate::error::Result;
use crate::state::AppState;
use crate::tokens::scope;

/// The `groups` claim for a token of `granted` scope: `None` unless the scope releases it.
pub async fn groups(state: &AppState, user_id: &str, granted: &str) -> Result<Option<Vec<String>>> {
    if !scope::releases(granted, "groups") {
        return Ok(None);
    }
    let memberships = state.store.memberships(&[user_id.to_string()]).await?;
    Ok(Some(
        memberships.into_iter().map(|m| m.display_name).collect(),
    ))
}
