//! Groups and their members: the SCIM `Group` resource (RFC 7643 §4.2).

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::dialect::Dialect;
use super::filter::{common_location, Elements, Layout, Location, Scalar, Table};
use super::users::{attributes_from_text, attributes_to_text};
use super::{backend, conflict_or_backend, SqlStore};
use crate::store::query::{Attr, ListQuery, Page};
use crate::store::*;

const GROUP_COLUMNS: &str = "id, display_name, attributes, version, created_at, updated_at";

fn group_from_row(row: &AnyRow) -> StoreResult<Group> {
    Ok(Group {
        id: row.get("id"),
        display_name: row.get("display_name"),
        members: Vec::new(),
        attributes: attributes_from_text(row.get("attributes"))?,
        version: row.get("version"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

const GROUPS: Table = Table {
    created_at: "groups.created_at",
    updated_at: "groups.updated_at",
    attributes: "groups.attributes",
};

/// Where SCIM filters find group attributes.
pub(super) struct GroupLayout;

impl Layout for GroupLayout {
    fn locate(attr: &Attr) -> Option<Location> {
        let column = |c| Some(Location::Scalar(Scalar::Column(c)));
        match (attr.schema, attr.name, attr.sub) {
            (None, "id", None) => column("groups.id"),
            (None, "displayName", None) => Some(Location::Scalar(Scalar::Folded {
                column: "groups.display_name_normalized",
                fold: str::to_lowercase,
            })),
            (None, "members", _) => Some(Location::Elements(Elements::Relation {
                from: "FROM group_members m JOIN users u ON u.id = m.user_id
                       WHERE m.group_id = groups.id",
                column: |dialect, sub| match sub {
                    None | Some("value") => Some("m.user_id"),
                    Some("display") => Some(dialect.member_display()),
                    _ => None,
                },
            })),
            _ => common_location(&GROUPS, attr),
        }
    }
}

/// A JSON array of ids, bound as one argument and read back with [`Dialect::json_list`].
fn id_list<'a>(ids: impl IntoIterator<Item = &'a String>) -> String {
    serde_json::Value::from_iter(ids.into_iter().map(String::as_str)).to_string()
}

/// The members of these groups, in display order.
async fn load_members(
    executor: impl sqlx::AnyExecutor<'_>,
    dialect: Dialect,
    groups: &mut [Group],
) -> StoreResult<()> {
    let ids = id_list(groups.iter().map(|g| &g.id));
    let rows = sqlx::query(&format!(
        "SELECT m.group_id, m.user_id, {} AS display
         FROM group_members m JOIN users u ON u.id = m.user_id
         WHERE m.group_id IN (SELECT value FROM {})
         ORDER BY {}, m.user_id",
        dialect.member_display(),
        dialect.json_list("$1"),
        dialect.binary_order(dialect.member_display()),
    ))
    .bind(ids)
    .fetch_all(executor)
    .await
    .map_err(backend)?;
    for row in rows {
        let group_id: String = row.get("group_id");
        if let Some(group) = groups.iter_mut().find(|g| g.id == group_id) {
            group.members.push(Member {
                user_id: row.get("user_id"),
                display: row.get("display"),
            });
        }
    }
    Ok(())
}

/// Makes the group's members exactly `wanted`, and gives every user who joined or left a new
/// version: their `groups` attribute changed.
async fn set_members(
    tx: &mut Transaction<'_, Any>,
    dialect: Dialect,
    group_id: &str,
    wanted: &BTreeSet<String>,
    now: UnixTime,
) -> StoreResult<()> {
    let missing: Option<String> = sqlx::query_scalar(&format!(
        "SELECT value FROM {} WHERE value NOT IN (SELECT id FROM users) LIMIT 1",
        dialect.json_list("$1")
    ))
    .bind(id_list(wanted))
    .fetch_optional(&mut **tx)
    .await
    .map_err(backend)?;
    if let Some(missing) = missing {
        return Err(StoreError::MissingReference(format!("user {missing}")));
    }
    let current: BTreeSet<String> =
        sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(group_id)
            .fetch_all(&mut **tx)
            .await
            .map_err(backend)?
            .into_iter()
            .collect();
    let left: Vec<&String> = current.difference(wanted).collect();
    let joined: Vec<&String> = wanted.difference(&current).collect();
    let list = dialect.json_list("$2");
    for (statement, users) in [
        (
            format!(
                "DELETE FROM group_members
                 WHERE group_id = $1 AND user_id IN (SELECT value FROM {list})"
            ),
            &left,
        ),
        (
            format!("INSERT INTO group_members (group_id, user_id) SELECT $1, value FROM {list}"),
            &joined,
        ),
    ] {
        sqlx::query(&statement)
            .bind(group_id)
            .bind(id_list(users.iter().copied()))
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    sqlx::query(&format!(
        "UPDATE users SET version = version + 1, updated_at = $1
         WHERE id IN (SELECT value FROM {list})"
    ))
    .bind(now)
    .bind(id_list(left.into_iter().chain(joined)))
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

fn member_ids(group: &Group) -> BTreeSet<String> {
    group.members.iter().map(|m| m.user_id.clone()).collect()
}

#[async_trait::async_trait]
impl GroupStore for SqlStore {
    async fn insert_group(&self, group: &Group) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO groups (id, display_name, display_name_normalized, attributes, version,
                                 created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&group.id)
        .bind(&group.display_name)
        .bind(group.display_name.to_lowercase())
        .bind(attributes_to_text(&group.attributes))
        .bind(group.version)
        .bind(group.created_at)
        .bind(group.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("group {}", group.display_name)))?;
        set_members(
            &mut tx,
            self.dialect,
            &group.id,
            &member_ids(group),
            group.created_at,
        )
        .await?;
        self.insert_event(&mut *tx, &events::group_created(group))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn group(&self, id: &str) -> StoreResult<Option<Group>> {
        let mut tx = self
            .pool
            .begin_with(self.dialect.begin_snapshot())
            .await
            .map_err(backend)?;
        let row = sqlx::query(&format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut groups = [group_from_row(&row)?];
        load_members(&mut *tx, self.dialect, &mut groups).await?;
        tx.commit().await.map_err(backend)?;
        let [group] = groups;
        Ok(Some(group))
    }

    async fn update_group(
        &self,
        group: &Group,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        let mut tx = self.write_transaction().await?;
        let old_name: Option<String> =
            sqlx::query_scalar("SELECT display_name FROM groups WHERE id = $1")
                .bind(&group.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let done = sqlx::query(
            "UPDATE groups SET display_name = $1, display_name_normalized = $2, attributes = $3,
                               version = $4, updated_at = $5
             WHERE id = $6 AND version = $7",
        )
        .bind(&group.display_name)
        .bind(group.display_name.to_lowercase())
        .bind(attributes_to_text(&group.attributes))
        .bind(group.version)
        .bind(group.updated_at)
        .bind(&group.id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("group {}", group.display_name)))?;
        if done.rows_affected() == 0 {
            return Self::why_not_updated(&mut tx, "groups", &group.id).await;
        }
        if old_name.as_deref() != Some(group.display_name.as_str()) {
            // Every member shows the group's name in its `groups` attribute.
            sqlx::query(
                "UPDATE users SET version = version + 1, updated_at = $1
                 WHERE id IN (SELECT user_id FROM group_members WHERE group_id = $2)",
            )
            .bind(now)
            .bind(&group.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        set_members(&mut tx, self.dialect, &group.id, &member_ids(group), now).await?;
        self.insert_event(&mut *tx, &events::group_updated(group, now))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(Update::Done)
    }

    async fn delete_group(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        set_members(&mut tx, self.dialect, id, &BTreeSet::new(), now).await?;
        let done = sqlx::query("DELETE FROM groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.insert_event(&mut *tx, &events::group_deleted(id, now))
                .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn list_groups(&self, query: &ListQuery, members: bool) -> StoreResult<Page<Group>> {
        let (total, rows) = self
            .list_rows::<GroupLayout>("groups", GROUP_COLUMNS, query)
            .await?;
        let mut items = rows
            .iter()
            .map(group_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if members && !items.is_empty() {
            load_members(&self.pool, self.dialect, &mut items).await?;
        }
        Ok(Page { total, items })
    }
}
