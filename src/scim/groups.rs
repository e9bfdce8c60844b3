//! The Group resource (RFC 7643 §4.2) over the group store. Members are users.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::error::{ScimError, ScimResult, ScimType};
use super::operations::{Basis, ResourceKind};
use super::representation::{meta, Projection};
use super::schema::{ResourceType, GROUP_SCHEMA, GROUP_TYPE};
use super::Directory;
use crate::store::query::{ListQuery, Page};
use crate::store::{Attributes, Group, Member, StoreResult, UnixTime, Update};

pub struct Groups;

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// The members a client wrote: each names a user by `value`.
fn members(value: Option<Value>) -> ScimResult<Vec<Member>> {
    let list = match value {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("members must be an array")),
    };
    list.into_iter()
        .map(|member| {
            if member
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "User")
            {
                return Err(invalid("only users can be group members"));
            }
            match member.get("value") {
                Some(Value::String(id)) => Ok(Member {
                    user_id: id.clone(),
                    display: String::new(),
                }),
                _ => Err(invalid("every member needs a value: the user's id")),
            }
        })
        .collect()
}

/// Members as responses show them; `display` is returned on request only (see the schema).
fn member_values(directory: &Directory<'_>, group: &Group) -> Vec<Value> {
    group
        .members
        .iter()
        .map(|m| {
            json!({
                "value": m.user_id,
                "$ref": directory.location(&format!("/Users/{}", m.user_id)),
                "type": "User",
                "display": m.display,
            })
        })
        .collect()
}

#[async_trait]
impl ResourceKind for Groups {
    const TYPE: &'static ResourceType = &GROUP_TYPE;
    type Record = Group;

    fn id(group: &Group) -> &str {
        &group.id
    }

    fn version(group: &Group) -> i64 {
        group.version
    }

    async fn load(directory: &Directory<'_>, id: &str) -> StoreResult<Option<Group>> {
        directory.store.group(id).await
    }

    /// Members are loaded only when the response shows them (`excludedAttributes=members` is
    /// how provisioning clients look groups up cheaply).
    async fn list(
        directory: &Directory<'_>,
        query: &ListQuery,
        projection: &Projection,
    ) -> StoreResult<Page<Group>> {
        directory
            .store
            .list_groups(query, projection.wants("members"))
            .await
    }

    async fn insert(directory: &Directory<'_>, group: &Group) -> StoreResult<()> {
        directory.store.insert_group(group).await
    }

    async fn update(
        directory: &Directory<'_>,
        group: &Group,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        directory
            .store
            .update_group(group, expected_version, now)
            .await
    }

    async fn delete(directory: &Directory<'_>, id: &str, now: UnixTime) -> StoreResult<bool> {
        directory.store.delete_group(id, now).await
    }

    async fn build(
        _: &Directory<'_>,
        mut attributes: Attributes,
        existing: Option<&Group>,
        _: Basis,
        now: UnixTime,
    ) -> ScimResult<Group> {
        let display_name = match attributes.remove("displayName") {
            Some(Value::String(name)) if !name.trim().is_empty() => name,
            _ => return Err(invalid("displayName is required")),
        };
        let members = members(attributes.remove("members"))?;
        Ok(Group {
            id: existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |g| g.id.clone()),
            display_name,
            members,
            attributes,
            version: existing.map_or(1, |g| g.version + 1),
            created_at: existing.map_or(now, |g| g.created_at),
            updated_at: now,
        })
    }

    /// What PATCH works on; the read-only `display` of members is left out.
    fn writable(group: &Group) -> Map<String, Value> {
        let mut doc = group.attributes.clone();
        doc.insert("displayName".into(), json!(group.display_name));
        doc.insert("members".into(), json!(member_list(group)));
        doc
    }

    async fn render(
        directory: &Directory<'_>,
        groups: &[Group],
    ) -> ScimResult<Vec<Map<String, Value>>> {
        Ok(groups
            .iter()
            .map(|group| {
                let mut resource = group.attributes.clone();
                resource.insert("schemas".into(), json!([GROUP_SCHEMA]));
                resource.insert("id".into(), json!(group.id));
                resource.insert("displayName".into(), json!(group.display_name));
                if !group.members.is_empty() {
                    let members = member_values(directory, group);
                    resource.insert("members".into(), members.into());
                }
                let here = directory.location(&format!("/Groups/{}", group.id));
                resource.insert(
                    "meta".into(),
                    meta(
                        "Group",
                        &here,
                        group.created_at,
                        group.updated_at,
                        group.version,
                    ),
                );
                resource
            })
            .collect())
    }
}

fn member_list(group: &Group) -> Vec<Value> {
    group
        .members
        .iter()
        .map(|m| json!({ "value": m.user_id, "type": "User" }))
        .collect()
}
