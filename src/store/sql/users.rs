//! Users: the OIDC subject and the SCIM `User` resource (RFC 7643 §4.1).

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::dialect::Dialect;
use super::filter::{common_location, Elements, Layout, Location, Scalar, Table};
use super::{backend, conflict_or_backend, flag, SqlStore};
use crate::store::events;
use crate::store::query::{Attr, ListQuery, Page};
use crate::store::token_cache::Revocation;
use crate::store::*;
use crate::username;

const USER_COLUMNS: &str =
    "id, username, password_hash, active, verified_email, attributes, version, created_at, updated_at";

pub(super) fn attributes_from_text(text: &str) -> StoreResult<Attributes> {
    serde_json::from_str(text).map_err(backend)
}

pub(super) fn attributes_to_text(attributes: &Attributes) -> String {
    serde_json::Value::Object(attributes.clone()).to_string()
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.get("id"),
        username: row.get("username"),
        password_hash: row.get("password_hash"),
        active: flag(row, "active")?,
        verified_email: row.get("verified_email"),
        attributes: attributes_from_text(row.get("attributes"))?,
        version: row.get("version"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

const USERS: Table = Table {
    created_at: "users.created_at",
    updated_at: "users.updated_at",
    attributes: "users.attributes",
};

/// Where SCIM filters find user attributes.
pub(super) struct UserLayout;

impl Layout for UserLayout {
    fn locate(attr: &Attr) -> Option<Location> {
        let column = |c| Some(Location::Scalar(Scalar::Column(c)));
        match (attr.schema, attr.name, attr.sub) {
            (None, "id", None) => column("users.id"),
            (None, "userName", None) => Some(Location::Scalar(Scalar::Folded {
                column: "users.username_normalized",
                fold: username::key,
            })),
            (None, "active", None) => column("users.active"),
            (None, "groups", _) => Some(Location::Elements(Elements::Relation {
                from: "FROM group_members m JOIN groups g ON g.id = m.group_id
                       WHERE m.user_id = users.id",
                column: |_, sub| match sub {
                    None | Some("value") => Some("g.id"),
                    Some("display") => Some("g.display_name"),
                    _ => None,
                },
            })),
            _ => common_location(&USERS, attr),
        }
    }
}

/// Ends everything a user holds: tokens, refresh tokens, unredeemed codes and sessions.
async fn end_access(
    tx: &mut Transaction<'_, Any>,
    user_id: &str,
    now: UnixTime,
) -> StoreResult<()> {
    for statement in [
        "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        "UPDATE auth_codes SET consumed_at = $1 WHERE user_id = $2 AND consumed_at IS NULL",
    ] {
        sqlx::query(statement)
            .bind(now)
            .bind(user_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    sqlx::query("DELETE FROM artifacts WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait::async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: &User, origin: UserOrigin) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "INSERT INTO users (id, username, username_normalized, password_hash, active,
                                verified_email, attributes, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(username::key(&user.username))
        .bind(&user.password_hash)
        .bind(user.active)
        .bind(&user.verified_email)
        .bind(attributes_to_text(&user.attributes))
        .bind(user.version)
        .bind(user.created_at)
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("user {}", user.username)))?;
        self.insert_event(&mut *tx, &events::user_created(user, origin))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_normalized = $1"
        ))
        .bind(username::key(username))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn update_user(
        &self,
        user: &User,
        expected_version: i64,
        now: UnixTime,
    ) -> StoreResult<Update> {
        if !user.active {
            self.mark_revoked(Revocation::User(&user.id)).await;
        }
        let mut tx = self.write_transaction().await?;
        let old_display: Option<String> = sqlx::query_scalar(&format!(
            "SELECT {} FROM users u WHERE u.id = $1",
            self.dialect.member_display()
        ))
        .bind(&user.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let done = sqlx::query(
            // An unchanged name keeps its stored key: one the RFC 8265 migration could not fold
            // (another user had the folded form) must not make every update a conflict.
            "UPDATE users SET username = $1,
                              username_normalized = CASE WHEN username = $1
                                  THEN username_normalized ELSE $2 END,
                              password_hash = $3, active = $4, verified_email = $5,
                              attributes = $6, version = $7, updated_at = $8
             WHERE id = $9 AND version = $10",
        )
        .bind(&user.username)
        .bind(username::key(&user.username))
        .bind(&user.password_hash)
        .bind(user.active)
        .bind(&user.verified_email)
        .bind(attributes_to_text(&user.attributes))
        .bind(user.version)
        .bind(user.updated_at)
        .bind(&user.id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("user {}", user.username)))?;
        if done.rows_affected() == 0 {
            return Self::why_not_updated(&mut tx, "users", &user.id).await;
        }
        if old_display.as_deref() != Some(user.display_name()) {
            // The user's groups show this name for the member.
            sqlx::query(
                "UPDATE groups SET version = version + 1, updated_at = $1
                 WHERE id IN (SELECT group_id FROM group_members WHERE user_id = $2)",
            )
            .bind(now)
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        if !user.active {
            end_access(&mut tx, &user.id, now).await?;
        }
        self.insert_event(&mut *tx, &events::user_updated(user, now))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(Update::Done)
    }

    async fn delete_user(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        self.mark_revoked(Revocation::User(id)).await;
        let mut tx = self.write_transaction().await?;
        end_access(&mut tx, id, now).await?;
        // The user's groups lose a member: their representation changes.
        sqlx::query(
            "UPDATE groups SET version = version + 1, updated_at = $1
             WHERE id IN (SELECT group_id FROM group_members WHERE user_id = $2)",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            self.insert_event(&mut *tx, &events::user_deleted(id, now))
                .await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(deleted)
    }

    async fn list_users(&self, query: &ListQuery) -> StoreResult<Page<User>> {
        let (total, rows) = self
            .list_rows::<UserLayout>("users", USER_COLUMNS, query)
            .await?;
        let items = rows.iter().map(user_from_row).collect::<StoreResult<_>>()?;
        Ok(Page { total, items })
    }

    async fn memberships(&self, user_ids: &[String]) -> StoreResult<Vec<GroupRef>> {
        let ids = serde_json::to_string(user_ids).map_err(backend)?;
        let rows = sqlx::query(&format!(
            "SELECT m.user_id, g.id, g.display_name
             FROM group_members m JOIN groups g ON g.id = m.group_id
             WHERE m.user_id IN (SELECT value FROM {})
             ORDER BY {}, g.id",
            self.dialect.json_list("$1"),
            self.dialect.binary_order("g.display_name")
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| GroupRef {
                user_id: row.get("user_id"),
                group_id: row.get("id"),
                display_name: row.get("display_name"),
            })
            .collect())
    }
}

/// The `data_migrations` entry of [`fold_stored_usernames`].
const USERNAME_FOLDING: &str = "username_rfc8265";

/// Re-keys the stored user names by RFC 8265 ([`username::key`]), once, in one transaction: the
/// first instance to record the migration does it, the others (waiting on that record) skip
/// it. A name whose new key another user already holds keeps its old one and is logged: no one
/// is merged into another account, but that user cannot sign in by name until an operator
/// renames them (SCIM). Upgrade every instance together: an older one still writing keeps
/// lower-cased keys.
pub(super) async fn fold_stored_usernames(store: &SqlStore) -> StoreResult<()> {
    let mut tx = store.write_transaction().await?;
    let claimed = sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(USERNAME_FOLDING)
    .bind(crate::clock::now())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if claimed.rows_affected() == 0 {
        return Ok(());
    }
    if store.dialect == Dialect::Postgres {
        // No user is written while the keys move (SQLite's write transaction is already alone).
        sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    let rows = sqlx::query("SELECT id, username, username_normalized FROM users")
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    let mut taken = HashSet::new();
    let mut pending = Vec::new();
    for row in &rows {
        let (id, name, old): (String, String, String) = (
            row.try_get("id").map_err(backend)?,
            row.try_get("username").map_err(backend)?,
            row.try_get("username_normalized").map_err(backend)?,
        );
        let new = username::key(&name);
        if new != old {
            pending.push((id, old.clone(), new));
        }
        taken.insert(old);
    }
    // A key freed by one move may be the one another is waiting for: repeat until none moves.
    loop {
        let before = pending.len();
        let mut waiting = Vec::new();
        for (id, old, new) in pending {
            if taken.contains(&new) {
                waiting.push((id, old, new));
                continue;
            }
            sqlx::query("UPDATE users SET username_normalized = $1 WHERE id = $2")
                .bind(&new)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            taken.remove(&old);
            taken.insert(new);
        }
        pending = waiting;
        if pending.is_empty() || pending.len() == before {
            break;
        }
    }
    for (id, _, _) in &pending {
        tracing::warn!(user_id = %id, "user name is spelled like another user's by RFC 8265; rename it");
    }
    tx.commit().await.map_err(backend)
}
