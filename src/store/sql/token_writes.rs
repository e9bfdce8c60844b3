//! The token endpoint's writes, shaped for [group commit](super::group_commit): redeeming a code,
//! storing access and refresh tokens, rotating a refresh token.
//!
//! New rows do not go to the database one statement each. A write adds them to the batch's
//! [`Inserts`], which writes each table's rows with one multi-row `INSERT` just before the commit:
//! on SQLite every statement is a round trip to sqlx's connection thread, and the writer spends
//! its time on those trips, not in SQLite. That a later write of the same batch does not see
//! these rows yet is safe: a write only ever names values its caller received from an earlier,
//! committed response (a refresh token is rotated after the response that carried it).

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::group_commit::Write;
use super::{backend, from_json, to_json};
use crate::store::{AuthCode, RefreshTokenRecord, Rotation, StoreResult, TokenRecord, UnixTime};

/// Rows a batch of writes will insert, written by [`Inserts::flush`].
#[derive(Default)]
pub(super) struct Inserts {
    tokens: Vec<TokenRecord>,
    refresh_tokens: Vec<RefreshTokenRecord>,
}

impl Inserts {
    /// Writes the rows: one statement per table that has any.
    pub async fn flush(&mut self, conn: &mut AnyConnection) -> StoreResult<()> {
        if !self.tokens.is_empty() {
            insert_tokens(conn, &self.tokens).await?;
            self.tokens.clear();
        }
        if !self.refresh_tokens.is_empty() {
            insert_refresh_tokens(conn, &self.refresh_tokens).await?;
            self.refresh_tokens.clear();
        }
        Ok(())
    }
}

/// `INSERT INTO table (columns) VALUES ($1, …), ($n, …)…` for `rows` rows.
fn multi_row_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let placeholders: Vec<String> = (0..rows)
        .map(|row| {
            let numbers: Vec<String> = (1..=columns.len())
                .map(|column| format!("${}", row * columns.len() + column))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        placeholders.join(", ")
    )
}

const TOKEN_COLUMNS: [&str; 12] = [
    "token_hash",
    "jti",
    "grant_id",
    "client_id",
    "user_id",
    "scope",
    "mfa_verified",
    "acr",
    "amr",
    "auth_time",
    "issued_at",
    "expires_at",
];

async fn insert_tokens(conn: &mut AnyConnection, tokens: &[TokenRecord]) -> StoreResult<()> {
    let sql = multi_row_insert("tokens", &TOKEN_COLUMNS, tokens.len());
    let mut query = sqlx::query(&sql);
    for token in tokens {
        query = query
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
            .bind(token.expires_at);
    }
    query.execute(conn).await.map_err(backend)?;
    Ok(())
}

const REFRESH_TOKEN_COLUMNS: [&str; 11] = [
    "token_hash",
    "family_id",
    "client_id",
    "user_id",
    "scope",
    "session_id",
    "auth_time",
    "acr",
    "amr",
    "issued_at",
    "expires_at",
];

pub(super) async fn insert_refresh_tokens(
    conn: &mut AnyConnection,
    tokens: &[RefreshTokenRecord],
) -> StoreResult<()> {
    let sql = multi_row_insert("refresh_tokens", &REFRESH_TOKEN_COLUMNS, tokens.len());
    let mut query = sqlx::query(&sql);
    for token in tokens {
        query = query
            .bind(&token.token_hash)
            .bind(&token.family_id)
            .bind(&token.client_id)
            .bind(&token.user_id)
            .bind(&token.scope)
            .bind(&token.session_id)
            .bind(token.auth_time)
            .bind(&token.acr)
            .bind(to_json(&token.amr))
            .bind(token.issued_at)
            .bind(token.expires_at);
    }
    query.execute(conn).await.map_err(backend)?;
    Ok(())
}

/// Stores new tokens: an access token, a refresh token, or both.
pub(super) struct IssueTokens {
    pub access: Option<TokenRecord>,
    pub refresh: Option<RefreshTokenRecord>,
}

#[async_trait]
impl Write for IssueTokens {
    type Output = ();

    fn single_statement(&self) -> bool {
        self.access.is_none() || self.refresh.is_none()
    }

    async fn apply(&self, _: &mut AnyConnection, inserts: &mut Inserts) -> StoreResult<()> {
        inserts.tokens.extend(self.access.clone());
        inserts.refresh_tokens.extend(self.refresh.clone());
        Ok(())
    }
}

/// Marks `old_hash` rotated and stores its successor `new` and, if given, the access token
/// issued with it.
pub(super) struct RotateRefresh {
    pub old_hash: String,
    pub new: RefreshTokenRecord,
    pub access: Option<TokenRecord>,
    pub now: UnixTime,
}

#[async_trait]
impl Write for RotateRefresh {
    type Output = Rotation;

    fn single_statement(&self) -> bool {
        false
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        inserts: &mut Inserts,
    ) -> StoreResult<Rotation> {
        // The conditional UPDATE is the claim: of concurrent rotations only one matches a row.
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1, replaced_by = $2
             WHERE token_hash = $3 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(self.now)
        .bind(&self.new.token_hash)
        .bind(&self.old_hash)
        .execute(conn)
        .await
        .map_err(backend)?;
        if claimed.rows_affected() != 1 {
            return Ok(Rotation::Lost);
        }
        inserts.refresh_tokens.push(self.new.clone());
        inserts.tokens.extend(self.access.clone());
        Ok(Rotation::Rotated)
    }
}

/// Marks a code redeemed and returns it. One statement marks and returns the code, so two
/// concurrent redemptions cannot both win.
pub(super) struct RedeemCode {
    pub code_hash: String,
    pub now: UnixTime,
}

#[async_trait]
impl Write for RedeemCode {
    type Output = Option<AuthCode>;

    fn single_statement(&self) -> bool {
        true
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        _: &mut Inserts,
    ) -> StoreResult<Option<AuthCode>> {
        let Some(row) = sqlx::query(
            "UPDATE auth_codes SET consumed_at = $1
             WHERE code_hash = $2 AND consumed_at IS NULL AND expires_at > $1
             RETURNING grant_id, client_id, user_id, redirect_uri, scope, nonce, code_challenge,
                       session_id, auth_time, acr, amr, expires_at",
        )
        .bind(self.now)
        .bind(&self.code_hash)
        .fetch_optional(conn)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(AuthCode {
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
        }))
    }
}
