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
use sqlx::any::AnyRow;
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
        insert_rows(conn, &self.tokens).await?;
        self.tokens.clear();
        insert_rows(conn, &self.refresh_tokens).await?;
        self.refresh_tokens.clear();
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A record that multi-row `INSERT`s write.
pub(super) trait InsertRow {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// Binds the row's values, in the order of `COLUMNS`.
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Writes `rows` with one `INSERT INTO table (columns) VALUES ($1, …), ($n, …)…`; none, nothing.
pub(super) async fn insert_rows<R: InsertRow>(
    conn: &mut AnyConnection,
    rows: &[R],
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = R::COLUMNS.len();
    let values: Vec<String> = (0..rows.len())
        .map(|row| {
            let numbers: Vec<String> = (1..=width)
                .map(|column| format!("${}", row * width + column))
                .collect();
            format!("({})", numbers.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        R::TABLE,
        R::COLUMNS.join(", "),
        values.join(", ")
    );
    let query = rows
        .iter()
        .fold(sqlx::query(&sql), |query, row| row.bind(query));
    query.execute(conn).await.map_err(backend)?;
    Ok(())
}

impl InsertRow for TokenRecord {
    const TABLE: &'static str = "tokens";
    const COLUMNS: &'static [&'static str] = &[
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

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.token_hash)
            .bind(&self.jti)
            .bind(&self.grant_id)
            .bind(&self.client_id)
            .bind(&self.user_id)
            .bind(&self.scope)
            .bind(self.mfa_verified)
            .bind(&self.acr)
            .bind(to_json(&self.amr))
            .bind(self.auth_time)
            .bind(self.issued_at)
            .bind(self.expires_at)
    }
}

impl InsertRow for RefreshTokenRecord {
    const TABLE: &'static str = "refresh_tokens";
    const COLUMNS: &'static [&'static str] = &[
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

    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(&self.token_hash)
            .bind(&self.family_id)
            .bind(&self.client_id)
            .bind(&self.user_id)
            .bind(&self.scope)
            .bind(&self.session_id)
            .bind(self.auth_time)
            .bind(&self.acr)
            .bind(to_json(&self.amr))
            .bind(self.issued_at)
            .bind(self.expires_at)
    }
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
        let statement = format!(
            "UPDATE auth_codes SET consumed_at = $1
             WHERE code_hash = $2 AND consumed_at IS NULL AND expires_at > $1
             RETURNING {CODE_COLUMNS}"
        );
        let Some(row) = sqlx::query(&statement)
            .bind(self.now)
            .bind(&self.code_hash)
            .fetch_optional(conn)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        code_of_row(&row).map(Some)
    }
}

/// The columns [`code_of_row`] reads.
pub(super) const CODE_COLUMNS: &str = "grant_id, client_id, user_id, redirect_uri, scope, nonce,
    code_challenge, session_id, auth_time, acr, amr, expires_at";

/// The columns of [`CODE_COLUMNS`] as a code. `try_get`, never `get`: a panic here would end the
/// group-commit task, and with it every token write of the process.
pub(super) fn code_of_row(row: &AnyRow) -> StoreResult<AuthCode> {
    let column = |name: &str| row.try_get::<String, _>(name).map_err(backend);
    let number = |name: &str| row.try_get::<i64, _>(name).map_err(backend);
    Ok(AuthCode {
        grant_id: column("grant_id")?,
        client_id: column("client_id")?,
        user_id: column("user_id")?,
        redirect_uri: column("redirect_uri")?,
        scope: column("scope")?,
        nonce: row.try_get("nonce").map_err(backend)?,
        code_challenge: column("code_challenge")?,
        session_id: column("session_id")?,
        auth_time: number("auth_time")?,
        acr: column("acr")?,
        amr: from_json(&column("amr")?)?,
        expires_at: number("expires_at")?,
    })
}
