//! SQL backend. Today SQLite, the embedded default; the queries are plain SQL so the PostgreSQL
//! backend can share them.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::*;

#[derive(Clone)]
pub struct SqlStore {
    pool: SqlitePool,
}

fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Backend`.
fn conflict_or_backend(err: sqlx::Error, what: &str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(what.to_string())
        }
        _ => backend(err),
    }
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings always serializes")
}

fn from_json(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(Box::new(e)))
}

impl SqlStore {
    /// Opens the database at `url` (`sqlite://PATH?mode=rwc`) and runs pending migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(backend)?
            // WAL lets readers run beside the one writer; NORMAL sync is durable across
            // process crashes, which is what WAL mode is designed for.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(SqlStore { pool })
    }
}

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: row.get("id"),
        username: row.get("username"),
        password_hash: row.get("password_hash"),
        email: row.get("email"),
        given_name: row.get("given_name"),
        family_name: row.get("family_name"),
        active: row.get("active"),
    }
}

const USER_COLUMNS: &str = "id, username, password_hash, email, given_name, family_name, active";

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let now = crate::clock::now();
        sqlx::query(
            "INSERT INTO users (id, username, username_normalized, password_hash, email, given_name,
                                family_name, active, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(user.username.to_lowercase())
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.active)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("user {}", user.username)))?;
        Ok(())
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.as_ref().map(user_from_row))
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_normalized = ?"
        ))
        .bind(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.as_ref().map(user_from_row))
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, redirect_uris, post_logout_redirect_uris,
                                  grant_types, scope, id_token_signed_response_alg, require_mfa,
                                  skip_consent, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&client.client_id)
        .bind(&client.secret_hash)
        .bind(to_json(&client.redirect_uris))
        .bind(to_json(&client.post_logout_redirect_uris))
        .bind(to_json(&client.grant_types))
        .bind(&client.scope)
        .bind(&client.id_token_signed_response_alg)
        .bind(client.require_mfa)
        .bind(client.skip_consent)
        .bind(crate::clock::now())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("client {}", client.client_id)))?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let Some(row) = sqlx::query(
            "SELECT client_id, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types,
                    scope, id_token_signed_response_alg, require_mfa, skip_consent
             FROM clients WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(Client {
            client_id: row.get("client_id"),
            secret_hash: row.get("secret_hash"),
            redirect_uris: from_json(row.get("redirect_uris"))?,
            post_logout_redirect_uris: from_json(row.get("post_logout_redirect_uris"))?,
            grant_types: from_json(row.get("grant_types"))?,
            scope: row.get("scope"),
            id_token_signed_response_alg: row.get("id_token_signed_response_alg"),
            require_mfa: row.get("require_mfa"),
            skip_consent: row.get("skip_consent"),
        }))
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn granted_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = ? AND client_id = ?")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn record_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope,
                                                           updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn insert_code(&self, code_hash: &str, code: &AuthCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, grant_id, client_id, user_id, redirect_uri, scope,
                                     nonce, code_challenge, session_id, auth_time, acr, amr,
                                     expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(code_hash)
        .bind(&code.grant_id)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.scope)
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(&code.session_id)
        .bind(code.auth_time)
        .bind(&code.acr)
        .bind(to_json(&code.amr))
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        // One statement marks and returns the code, so two concurrent redemptions cannot both win.
        let redeemed = sqlx::query(
            "UPDATE auth_codes SET consumed_at = ?1
             WHERE code_hash = ?2 AND consumed_at IS NULL AND expires_at > ?1
             RETURNING grant_id, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
                       session_id, auth_time, acr, amr, expires_at",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if let Some(row) = redeemed {
            return Ok(CodeRedemption::Redeemed(Box::new(AuthCode {
                grant_id: row.get("grant_id"),
                client_id: row.get("client_id"),
                user_id: row.get("user_id"),
                redirect_uri: row.get("redirect_uri"),
                scope: row.get("scope"),
                nonce: row.get("nonce"),
                code_challenge: row.get("code_challenge"),
                session_id: row.get("session_id"),
                auth_time: row.get("auth_time"),
                acr: row.get("acr"),
                amr: from_json(row.get("amr"))?,
                expires_at: row.get("expires_at"),
            })));
        }
        let replayed: Option<String> = sqlx::query_scalar(
            "SELECT grant_id FROM auth_codes WHERE code_hash = ? AND consumed_at IS NOT NULL",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(match replayed {
            Some(grant_id) => CodeRedemption::AlreadyRedeemed { grant_id },
            None => CodeRedemption::Invalid,
        })
    }
}

#[async_trait]
impl TokenStore for SqlStore {
    async fn insert_token(&self, token: &TokenRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tokens (token_hash, jti, grant_id, client_id, user_id, scope, mfa_verified,
                                 acr, amr, auth_time, issued_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&token.token_hash)
        .bind(&token.jti)
        .bind(&token.grant_id)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(&token.scope)
        .bind(token.mfa_verified)
        .bind(&token.acr)
        .bind(to_json(&token.amr))
        .bind(token.auth_time)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let Some(row) = sqlx::query(
            "SELECT token_hash, jti, grant_id, client_id, user_id, scope, mfa_verified, acr, amr,
                    auth_time, issued_at, expires_at, revoked_at IS NOT NULL AS revoked
             FROM tokens WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(TokenRecord {
            token_hash: row.get("token_hash"),
            jti: row.get("jti"),
            grant_id: row.get("grant_id"),
            client_id: row.get("client_id"),
            user_id: row.get("user_id"),
            scope: row.get("scope"),
            mfa_verified: row.get("mfa_verified"),
            acr: row.get("acr"),
            amr: from_json(row.get("amr"))?,
            auth_time: row.get("auth_time"),
            issued_at: row.get("issued_at"),
            expires_at: row.get("expires_at"),
            revoked: row.get("revoked"),
        }))
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(grant_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl ArtifactStore for SqlStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO artifacts (kind, id_hash, payload, expires_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (kind, id_hash) DO UPDATE SET payload = excluded.payload,
                                                       expires_at = excluded.expires_at",
        )
        .bind(kind.as_str())
        .bind(id_hash)
        .bind(payload)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT payload FROM artifacts WHERE kind = ? AND id_hash = ? AND expires_at > ?",
        )
        .bind(kind.as_str())
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM artifacts WHERE kind = ? AND id_hash = ?")
            .bind(kind.as_str())
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_pem, created_at FROM signing_keys ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| SigningKeyRecord {
                kid: row.get("kid"),
                alg: row.get("alg"),
                private_pem: row.get("private_pem"),
                created_at: row.get("created_at"),
            })
            .collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_pem)
        .bind(key.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("signing key {}", key.kid)))?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
