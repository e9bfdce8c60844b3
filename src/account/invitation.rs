//! Invitations (`tessera user invite --email E [--group G]`): a single-use link to `/signup`
//! that makes an account for that address, already verified (the link proves the mailbox), and
//! in that group. The link holds a 256-bit secret stored as its hash and works for 7 days; it is
//! mailed when mail is configured, and printed either way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::error::{Error, Result};
use crate::mail::{self, Invite, Mailer};
use crate::secret;
use crate::store::query::{Attr, AttrKind, ListQuery};
use crate::store::{ArtifactKind, Member, Store, UnixTime, Update};
use crate::web::paths;

/// How long an invitation works.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// What an invitation makes, kept with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub email: String,
    /// The group the new account joins.
    pub group_id: Option<String>,
    pub expires_at: UnixTime,
}

/// Makes an invitation for `email` into the group named `group`; returns the link.
pub async fn invite(
    store: &dyn Store,
    mailer: Option<&Mailer>,
    issuer: &str,
    email: &str,
    group: Option<&str>,
) -> Result<String> {
    if !mail::is_deliverable(email) {
        return Err(Error::invalid_request(format!(
            "{email:?} is not a mail address"
        )));
    }
    let group_id = match group {
        Some(name) => Some(group_named(store, name).await?),
        None => None,
    };
    let now = clock::now();
    let invitation = Invitation {
        email: email.to_string(),
        group_id,
        expires_at: now + LIFETIME.as_secs() as UnixTime,
    };
    let token = secret::generate();
    put(store, &token, &invitation).await?;
    let link = format!("{issuer}{}?invitation={token}", paths::SIGNUP);
    if let Some(mailer) = mailer {
        mailer
            .send(email, Invite { link: &link }.into(), now)
            .await?;
    }
    Ok(link)
}

/// The id of the group whose `displayName` is `name`.
async fn group_named(store: &dyn Store, name: &str) -> Result<String> {
    let display_name = Attr {
        schema: None,
        name: "displayName",
        sub: None,
        kind: AttrKind::String,
        case_exact: false,
        multi_valued: false,
    };
    let page = store
        .list_groups(&ListQuery::equal(display_name, name, 1), false)
        .await?;
    let group = page.items.into_iter().next();
    group
        .map(|group| group.id)
        .ok_or_else(|| Error::invalid_request(format!("no group {name:?}")))
}

async fn put(store: &dyn Store, token: &str, invitation: &Invitation) -> Result<()> {
    let payload = serde_json::to_string(invitation).map_err(Error::internal)?;
    let (kind, id_hash) = (ArtifactKind::Invitation, secret::hash(token));
    store
        .put_artifact(kind, &id_hash, None, &payload, invitation.expires_at)
        .await?;
    Ok(())
}

/// The invitation a link holds, if it still works.
pub async fn pending(store: &dyn Store, token: &str) -> Result<Option<Invitation>> {
    if !secret::is_base64url_256(token) {
        return Ok(None);
    }
    let (kind, now) = (ArtifactKind::Invitation, clock::now());
    let Some(payload) = store.artifact(kind, &secret::hash(token), now).await? else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_str(&payload).map_err(Error::internal)?,
    ))
}

/// Uses the invitation up: of two redemptions at once, one gets it.
pub async fn take(store: &dyn Store, token: &str) -> Result<Option<Invitation>> {
    let Some(invitation) = pending(store, token).await? else {
        return Ok(None);
    };
    let deleted = store
        .delete_artifact(ArtifactKind::Invitation, &secret::hash(token))
        .await?;
    Ok(deleted.then_some(invitation))
}

/// Puts a taken invitation back, when no account came of it (the name was taken).
pub async fn give_back(store: &dyn Store, token: &str, invitation: &Invitation) -> Result<()> {
    put(store, token, invitation).await
}

/// Adds the new account to the invitation's group; a group deleted meanwhile is skipped.
pub async fn join_group(store: &dyn Store, invitation: &Invitation, user_id: &str) -> Result<()> {
    let Some(group_id) = &invitation.group_id else {
        return Ok(());
    };
    for _ in 0..3 {
        let Some(mut group) = store.group(group_id).await? else {
            tracing::warn!(%group_id, "the invitation's group is gone");
            return Ok(());
        };
        let (version, now) = (group.version, clock::now());
        group.members.push(Member {
            user_id: user_id.to_string(),
            display: String::new(),
        });
        group.version += 1;
        group.updated_at = now;
        if store.update_group(&group, version, now).await? != Update::Stale {
            return Ok(());
        }
    }
    Err(Error::internal("the invitation's group kept changing"))
}
