//! The `passkeys` table.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{backend, conflict_or_backend, SqlStore};
use crate::store::*;

fn passkey_from_row(row: &AnyRow) -> PasskeyRecord {
    PasskeyRecord {
        credential_id: row.get("credential_id"),
        user_id: row.get("user_id"),
        name: row.get("name"),
        credential: row.get("credential"),
        sign_count: row.get::<i64, _>("sign_count") as u32,
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
    }
}

#[async_trait::async_trait]
impl PasskeyStore for SqlStore {
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passkeys (credential_id, user_id, name, credential, sign_count, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&passkey.credential_id)
        .bind(&passkey.user_id)
        .bind(&passkey.name)
        .bind(&passkey.credential)
        .bind(i64::from(passkey.sign_count))
        .bind(passkey.created_at)
        .execute(&self.writer)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::MissingReference(format!("user {}", passkey.user_id))
            }
            _ => conflict_or_backend(err, "passkey"),
        })?;
        Ok(())
    }

    async fn passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let rows = sqlx::query(
            "SELECT credential_id, user_id, name, credential, sign_count, created_at, last_used_at
             FROM passkeys WHERE user_id = $1 ORDER BY created_at, credential_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows.iter().map(passkey_from_row).collect())
    }

    async fn use_passkey(
        &self,
        credential_id: &str,
        credential: &str,
        sign_count: u32,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE passkeys SET credential = $1, sign_count = $2, last_used_at = $3
             WHERE credential_id = $4 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
        )
        .bind(credential)
        .bind(i64::from(sign_count))
        .bind(now)
        .bind(credential_id)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user_id: &str, credential_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND credential_id = $2")
            .bind(user_id)
            .bind(credential_id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
