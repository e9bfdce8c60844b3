//! The User resource (RFC 7643 §4.1, enterprise extension §4.3) over the user store.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::error::{ScimError, ScimResult, ScimType};
use super::operations::{Basis, ResourceKind};
use super::representation::{meta, Projection};
use super::schema::{ResourceType, ENTERPRISE_USER_SCHEMA, USER_SCHEMA, USER_TYPE};
use super::Directory;
use crate::account::{self_service, users};
use crate::store::query::{ListQuery, Page};
use crate::store::{Attributes, GroupRef, StoreResult, UnixTime, Update, User, UserOrigin};

pub struct Users;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

fn render_user(directory: &Directory<'_>, user: &User, groups: &[&GroupRef]) -> Map<String, Value> {
    let mut resource = user.attributes.clone();
    let mut schemas = vec![USER_SCHEMA];
    if resource.contains_key(ENTERPRISE_USER_SCHEMA) {
        schemas.push(ENTERPRISE_USER_SCHEMA);
    }
    resource.insert("schemas".into(), json!(schemas));
    resource.insert("id".into(), json!(user.id));
    resource.insert("userName".into(), json!(user.username));
    show_active(&mut resource, user);
    if !groups.is_empty() {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.group_id,
                    "$ref": directory.location(&format!("/Groups/{}", g.group_id)),
                    "display": g.display_name,
                    "type": "direct",
                })
            })
            .collect();
        resource.insert("groups".into(), groups.into());
    }
    let here = directory.location(&format!("/Users/{}", user.id));
    resource.insert(
        "meta".into(),
        meta(
            "User",
            &here,
            user.created_at,
            user.updated_at,
            user.version,
        ),
    );
    resource
}

/// `active` (RFC 7643 §4.1.1) as the account's real state, whoever changed it: SCIM, or the user
/// closing their own account. A closed account always shows `false`; an open one shows `true`
/// once a client assigned it (a client that removed it sees it unassigned).
fn show_active(resource: &mut Map<String, Value>, user: &User) {
    if !user.active || resource.contains_key("active") {
        resource.insert("active".into(), json!(user.active));
    }
}

#[async_trait]
impl ResourceKind for Users {
    const TYPE: &'static ResourceType = &USER_TYPE;
    type Record = User;

    fn id(user: &User) -> &str {
        &user.id
    }

    fn version(user: &User) -> i64 {
        user.version
    }

    async fn load(directory: &Directory<'_>, id: &str) -> StoreResult<Option<User>> {
        directory.store.user(id).await
    }

    async fn list(
        directory: &Directory<'_>,
        query: &ListQuery,
        _: &Projection,
    ) -> StoreResult<Page<User>> {
        directory.store.list_users(query).await
    }

    async fn insert(directory: &Directory<'_>, user: &User) -> StoreResult<()> {
        directory.store.insert_user(user, UserOrigin::Scim).await
    }

    async fn update(
        directory: &Directory<'_>,
        user: &User,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        directory
            .store
            .update_user(user, expected_version, now)
            .await
    }

    async fn delete(directory: &Directory<'_>, id: &str, now: UnixTime) -> StoreResult<bool> {
        directory.store.delete_user(id, now).await
    }

    /// `password` is hashed with argon2id and kept out of the attributes; a write without one
    /// keeps the current password (it is write-only, so clients cannot send it back). `active`
    /// sets the account's state; a PUT that does not name it keeps the state, a PATCH that
    /// removes it opens the account (unassigned, as a new user is).
    async fn build(
        directory: &Directory<'_>,
        mut attributes: Attributes,
        existing: Option<&User>,
        basis: Basis,
        now: UnixTime,
    ) -> ScimResult<User> {
        let username = match attributes.remove("userName") {
            Some(Value::String(name)) => name,
            _ => return Err(invalid("userName is required")),
        };
        // A name stored before RFC 8265 folding that the profile disallows may be kept.
        if existing.is_none_or(|user| user.username != username) {
            users::check_username(&username).map_err(invalid)?;
        }
        let password_hash = match attributes.remove("password") {
            Some(Value::String(password)) if !password.is_empty() => {
                let known_by = [username.as_str()];
                let checked = directory.passwords.check_new(&password, &known_by);
                checked.map_err(|weak| invalid(weak.message()))?;
                Some(directory.passwords.hash(password).await?)
            }
            Some(_) => return Err(invalid("password must be a non-empty string")),
            None => existing.and_then(|u| u.password_hash.clone()),
        };
        let active = match attributes.get("active") {
            Some(Value::Bool(active)) => *active,
            Some(_) => return Err(invalid("active must be a boolean")),
            // PATCH removed it: unassigned, the default of a new user (RFC 7644 §3.5.2.2).
            None if basis == Basis::Patched => true,
            None => existing.is_none_or(|u| u.active),
        };
        Ok(User {
            id: existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |u| u.id.clone()),
            username,
            password_hash,
            active,
            // Kept: it names the address it verified, so a new email is unverified.
            verified_email: existing.and_then(|u| u.verified_email.clone()),
            attributes,
            version: existing.map_or(1, |u| u.version + 1),
            created_at: existing.map_or(now, |u| u.created_at),
            updated_at: now,
        })
    }

    /// A new password set over SCIM is an administrator's reset: it ends the user's sessions
    /// and refresh-token grants.
    async fn after_update(
        directory: &Directory<'_>,
        before: &User,
        after: &User,
    ) -> ScimResult<()> {
        if before.password_hash != after.password_hash {
            self_service::end_access_after_password_reset(directory.store, &after.id).await?;
        }
        Ok(())
    }

    fn writable(user: &User) -> Map<String, Value> {
        let mut doc = user.attributes.clone();
        doc.insert("userName".into(), json!(user.username));
        // Always there, so that only a PATCH that removes it leaves it out.
        doc.insert("active".into(), json!(user.active));
        doc
    }

    async fn render(
        directory: &Directory<'_>,
        users: &[User],
    ) -> ScimResult<Vec<Map<String, Value>>> {
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
        let memberships = if ids.is_empty() {
            Vec::new()
        } else {
            directory.store.memberships(&ids).await?
        };
        Ok(users
            .iter()
            .map(|user| {
                let groups: Vec<&GroupRef> = memberships
                    .iter()
                    .filter(|m| m.user_id == user.id)
                    .collect();
                render_user(directory, user, &groups)
            })
            .collect())
    }
}
