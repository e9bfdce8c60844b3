//! SQL backend: SQLite, the embedded default, and PostgreSQL for production, chosen by the URL.
//! Both run the same statements through sqlx's `Any` driver; what they spell differently lives in
//! [`dialect`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};

use super::token_cache::{Revocation, TokenRecordCache};
use super::*;
use crate::clock;
use crate::config::PoolSettings;
use dialect::{numbered, Dialect};
use group_commit::{GroupCommit, Write};
use token_writes::{code_of_row, Inserts, IssueTokens, RedeemCode, RotateRefresh, CODE_COLUMNS};

mod dialect;
mod filter;
mod group_commit;
mod groups;
mod outbox;
mod passkeys;
mod token_writes;
mod users;

#[derive(Clone)]
pub struct SqlStore {
    /// Reads.
    pool: AnyPool,
    /// Writes. On SQLite a single connection: SQLite takes one writer at a time, and writers
    /// queueing here in order is far cheaper than several connections retrying on SQLITE_BUSY.
    /// On PostgreSQL the same pool as `pool`.
    writer: AnyPool,
    /// SQLite only: the token endpoint's writes, committed in batches on `writer`.
    group_commit: Option<GroupCommit>,
    dialect: Dialect,
    /// Access-token records cached in Redis, when configured.
    token_cache: Option<Arc<dyn TokenRecordCache>>,
    /// Clients read recently (see [`CLIENT_CACHE_TTL`]).
    clients: mini_moka::sync::Cache<String, Client>,
    /// False on a [`SqlStore::replica`]: its changes are another instance's, so are their events.
    records_events: bool,
    /// In-memory SQLite only: a connection held for the store's life, since SQLite drops a shared
    /// in-memory database with its last connection and pools close idle ones.
    _held_open: Option<Arc<std::sync::Mutex<sqlx::AnyConnection>>>,
}

/// How long a client record read from the database answers from memory. Client authentication
/// reads the client on every token, introspection and revocation request; this spares that read.
/// Only found clients are kept, so a client the CLI just created is seen at once. A client
/// changed elsewhere (another instance applying a seed file) is seen within this time. This
/// process's own writes drop the entry before and after writing; a read racing the write can
/// still keep the old record for this time (clients change only at start-up, from the seed).
const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);
const CLIENT_CACHE_CAPACITY: u64 = 10_000;

/// A failure as a store error. For a database error, says whose fault it was: the connection's
/// ([`StoreError::Unavailable`], which the circuit breaker counts), a value's
/// ([`StoreError::InvalidValue`]), or the database's own answer ([`StoreError::Backend`]).
fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let err: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
    match err.downcast_ref::<sqlx::Error>().map(failure_kind) {
        Some(Failure::Unreachable) => StoreError::Unavailable(err),
        Some(Failure::Value) => StoreError::InvalidValue(err.to_string()),
        _ => StoreError::Backend(err),
    }
}

enum Failure {
    Unreachable,
    Value,
    Answer,
}

fn failure_kind(err: &sqlx::Error) -> Failure {
    use sqlx::Error as E;
    match err {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            Failure::Unreachable
        }
        E::Database(db) => match db.code().as_deref().unwrap_or_default() {
            // SQLite's numeric codes have at most four digits, SQLSTATEs five characters.
            // SQLite reports extended result codes, whose low byte is the primary one:
            // 5 BUSY, 6 LOCKED, 10 IOERR, 14 CANTOPEN.
            code if code.len() != 5 => match code.parse::<i32>().map(|extended| extended & 0xff) {
                Ok(5 | 6 | 10 | 14) => Failure::Unreachable,
                _ => Failure::Answer,
            },
            // PostgreSQL (Appendix A): class 08 connection exception, 53300 too many
            // connections, 57P01–57P03 shut down or starting up, 57014 statement timeout,
            // 25006 read-only (a standby after a failover); 22021 and 22P05, text the
            // database cannot hold (a NUL byte). Other data exceptions are our own bugs.
            code if code.starts_with("08") || code.starts_with("57P") => Failure::Unreachable,
            "53300" | "57014" | "25006" => Failure::Unreachable,
            "22021" | "22P05" => Failure::Value,
            _ => Failure::Answer,
        },
        _ => Failure::Answer,
    }
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
    serde_json::from_str(text).map_err(backend)
}

/// A nullable lifetime column in seconds.
fn seconds(row: &AnyRow, column: &str) -> StoreResult<Option<u32>> {
    let value: Option<i64> = row.try_get(column).map_err(backend)?;
    value
        .map(|n| u32::try_from(n).map_err(|_| StoreError::Backend(format!("{column} {n}").into())))
        .transpose()
}

/// A boolean column: PostgreSQL has a boolean type, SQLite stores 0 or 1.
fn flag(row: &AnyRow, column: &str) -> StoreResult<bool> {
    row.try_get::<bool, _>(column)
        .or_else(|_| row.try_get::<i64, _>(column).map(|n| n != 0))
        .map_err(backend)
}

/// SQLite settings applied to every new connection. WAL lets readers run beside the one writer;
/// NORMAL sync is durable across process crashes, which is what WAL mode is designed for.
/// Checkpoints (which fsync) run beside the writer (see [`group_commit`]); the writer checkpoints
/// by itself only if the WAL grows past 10,000 pages (40 MB), and the WAL file is cut back to
/// 64 MB after a checkpoint.
const SQLITE_PRAGMAS: [&str; 6] = [
    "PRAGMA wal_autocheckpoint = 10000",
    "PRAGMA journal_size_limit = 67108864",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

impl SqlStore {
    /// Opens the database at `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) and runs pending
    /// migrations. On PostgreSQL, sqlx holds an advisory lock while migrating, so instances
    /// starting together apply each migration once.
    pub async fn connect(url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Dialect::Postgres
        } else {
            return Err(StoreError::Unsupported(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ));
        };
        let open = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(settings.acquire_timeout)
                // A ping before each use finds a PostgreSQL connection the server dropped. An
                // SQLite connection is a file in this process: the ping is only a thread hop.
                .test_before_acquire(dialect == Dialect::Postgres)
                // A request dropped while its transaction began (its client went away) leaves the
                // connection inside a transaction nothing will end: on SQLite it would read one old
                // snapshot for ever (sessions and tokens made since would not exist) and block
                // checkpoints. Such a connection is closed, which rolls the transaction back.
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if dialect == Dialect::Sqlite {
                            for pragma in SQLITE_PRAGMAS {
                                conn.execute(pragma).await?;
                            }
                        }
                        Ok(())
                    })
                })
                .connect(url)
        };
        let pool = open(settings.max_connections).await.map_err(backend)?;
        let migrator = match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(backend)?;
        let (writer, group_commit) = match dialect {
            Dialect::Sqlite => {
                let writer = open(1).await.map_err(backend)?;
                (
                    writer.clone(),
                    Some(GroupCommit::start(writer, pool.clone())),
                )
            }
            Dialect::Postgres => (pool.clone(), None),
        };
        let store = SqlStore {
            pool,
            writer,
            group_commit,
            dialect,
            token_cache: None,
            clients: mini_moka::sync::Cache::builder()
                .max_capacity(CLIENT_CACHE_CAPACITY)
                .time_to_live(CLIENT_CACHE_TTL)
                .build(),
            records_events: true,
            _held_open: None,
        };
        users::fold_stored_usernames(&store).await?;
        Ok(store)
    }

    /// A new database in this process's memory (`STORE_BACKEND=memory`, and the users, groups and
    /// consents of the hybrid backend): the same SQL as on disk, so the same answers, gone with
    /// the process. SQLite's shared cache lets the readers and the writer see one database.
    pub async fn in_memory() -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        // The `file:` URI form names the database, so every connection of both pools opens this one.
        let url = format!("sqlite:file:tessera-{}?mode=memory", uuid::Uuid::new_v4());
        let held = sqlx::AnyConnection::connect(&url).await.map_err(backend)?;
        let mut store = Self::connect(&url, &crate::config::Config::default().store.pool).await?;
        store._held_open = Some(Arc::new(std::sync::Mutex::new(held)));
        Ok(store)
    }

    /// Drops the reference from consents to clients, for the hybrid backend's directory: there
    /// clients are each process's own (from the seed file) while consents come from every
    /// instance, so a consent may name a client this process has not loaded yet. Only for a new,
    /// empty database.
    pub(crate) async fn unbind_consents_from_clients(&self) -> StoreResult<()> {
        let statements = [
            "DROP TABLE consents",
            "CREATE TABLE consents (
                user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                client_id  TEXT NOT NULL,
                scope      TEXT NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (user_id, client_id)
            )",
        ];
        let mut tx = self.write_transaction().await?;
        for statement in statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    /// The same database, for applying changes another instance made and recorded the events of
    /// (the hybrid backend's directory log).
    pub(crate) fn replica(&self) -> SqlStore {
        SqlStore {
            records_events: false,
            ..self.clone()
        }
    }

    /// Serves access-token lookups from `cache` when it can (see [`TokenRecordCache`]).
    pub fn with_token_cache(mut self, cache: impl TokenRecordCache + 'static) -> Self {
        self.token_cache = Some(Arc::new(cache));
        self
    }

    /// Writes the cache's revocation marker before the database revokes. A failure is logged and
    /// the revocation goes on: the database is the copy that counts.
    async fn mark_revoked(&self, revocation: Revocation<'_>) {
        if let Some(cache) = &self.token_cache {
            if let Err(err) = cache.revoke(revocation).await {
                tracing::error!(error = %err, "token cache: revocation marker not written");
            }
        }
    }

    /// A transaction that will write (see [`Dialect::begin_write`]).
    async fn write_transaction(&self) -> StoreResult<sqlx::Transaction<'_, sqlx::Any>> {
        self.writer
            .begin_with(self.dialect.begin_write())
            .await
            .map_err(backend)
    }

    /// Applies `write`: through group commit on SQLite; on PostgreSQL, whose connections commit
    /// in parallel, at once (in a transaction if it has several statements).
    async fn write<W: Write>(&self, write: W) -> StoreResult<W::Output> {
        if let Some(group) = &self.group_commit {
            return group.write(write).await;
        }
        let mut inserts = Inserts::default();
        if write.single_statement() {
            let mut conn = self.writer.acquire().await.map_err(backend)?;
            let outcome = write.apply(&mut conn, &mut inserts).await?;
            inserts.flush(&mut conn).await?;
            return Ok(outcome);
        }
        let mut tx = self.write_transaction().await?;
        let outcome = write.apply(&mut tx, &mut inserts).await?;
        inserts.flush(&mut tx).await?;
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    /// Why a conditional update of a versioned row changed nothing, read in the update's own
    /// transaction (on in-memory SQLite another connection would wait for its table lock).
    async fn why_not_updated(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        table: &str,
        id: &str,
    ) -> StoreResult<Update> {
        let exists = sqlx::query(&format!("SELECT 1 FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
        Ok(if exists.is_some() {
            Update::Stale
        } else {
            Update::NotFound
        })
    }

    /// The total and the requested page of a filtered, sorted listing, read from one snapshot so
    /// the total agrees with the page (RFC 7644 §3.4.2.4).
    async fn list_rows<L: filter::Layout>(
        &self,
        table: &str,
        columns: &str,
        query: &query::ListQuery,
    ) -> StoreResult<(u64, Vec<AnyRow>)> {
        let unqueryable = || StoreError::Unsupported("that attribute cannot be queried".into());
        let filter = match &query.filter {
            Some(f) => filter::where_clause::<L>(self.dialect, f).ok_or_else(unqueryable)?,
            None => filter::Sql {
                text: "TRUE".into(),
                args: Vec::new(),
            },
        };
        let order =
            filter::order_by::<L>(self.dialect, query.sort.as_ref(), &format!("{table}.id"))
                .ok_or_else(unqueryable)?;
        let arguments = |extra: &[filter::Arg]| {
            let mut args = AnyArguments::default();
            for arg in filter.args.iter().chain(extra) {
                arg.add_to(&mut args);
            }
            args
        };
        let mut tx = self
            .pool
            .begin_with(self.dialect.begin_snapshot())
            .await
            .map_err(backend)?;
        let count_sql = numbered(&format!(
            "SELECT count(*) FROM {table} WHERE {}",
            filter.text
        ));
        let total: i64 = sqlx::query_scalar_with(&count_sql, arguments(&[]))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let rows = if query.count == 0 {
            Vec::new()
        } else {
            let page_sql = numbered(&format!(
                "SELECT {columns} FROM {table} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
                filter.text, order.text
            ));
            let mut extra = order.args.clone();
            extra.push(filter::Arg::Int(
                i64::try_from(query.count).unwrap_or(i64::MAX),
            ));
            let offset = query.start_index.saturating_sub(1);
            extra.push(filter::Arg::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
            sqlx::query_with(&page_sql, arguments(&extra))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?
        };
        tx.commit().await.map_err(backend)?;
        Ok((u64::try_from(total).unwrap_or(0), rows))
    }
}

impl SqlStore {
    /// Writes a client; `on_conflict` says what a taken client id does.
    async fn write_client(&self, client: &Client, on_conflict: &str) -> Result<(), sqlx::Error> {
        let statement = format!(
            "INSERT INTO clients (client_id, secret_hash, redirect_uris, post_logout_redirect_uris,
                                  grant_types, scope, id_token_signed_response_alg, require_mfa,
                                  skip_consent, resource_servers, access_token_seconds,
                                  refresh_token_seconds, created_at, require_phishing_resistant)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) {on_conflict}"
        );
        self.clients.invalidate(&client.client_id);
        sqlx::query(&statement)
            .bind(&client.client_id)
            .bind(&client.secret_hash)
            .bind(to_json(&client.redirect_uris))
            .bind(to_json(&client.post_logout_redirect_uris))
            .bind(to_json(&client.grant_types))
            .bind(&client.scope)
            .bind(&client.id_token_signed_response_alg)
            .bind(client.require_mfa)
            .bind(client.skip_consent)
            .bind(to_json(&client.resource_servers))
            .bind(client.access_token_seconds.map(i64::from))
            .bind(client.refresh_token_seconds.map(i64::from))
            .bind(crate::clock::now())
            .bind(client.require_phishing_resistant)
            .execute(&self.writer)
            .await?;
        self.clients.invalidate(&client.client_id);
        Ok(())
    }

    async fn client_row(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let Some(row) = sqlx::query(
            "SELECT client_id, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types,
                    scope, id_token_signed_response_alg, require_mfa, skip_consent,
                    resource_servers, access_token_seconds, refresh_token_seconds,
                    require_phishing_resistant
             FROM clients WHERE client_id = $1",
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
            require_mfa: flag(&row, "require_mfa")?,
            require_phishing_resistant: flag(&row, "require_phishing_resistant")?,
            skip_consent: flag(&row, "skip_consent")?,
            resource_servers: from_json(row.get("resource_servers"))?,
            access_token_seconds: seconds(&row, "access_token_seconds")?,
            refresh_token_seconds: seconds(&row, "refresh_token_seconds")?,
        }))
    }
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn insert_client(&self, client: &Client) -> StoreResult<()> {
        self.write_client(client, "")
            .await
            .map_err(|e| conflict_or_backend(e, &format!("client {}", client.client_id)))
    }

    async fn put_client(&self, client: &Client) -> StoreResult<()> {
        let replace = "ON CONFLICT (client_id) DO UPDATE SET
            secret_hash = excluded.secret_hash, redirect_uris = excluded.redirect_uris,
            post_logout_redirect_uris = excluded.post_logout_redirect_uris,
            grant_types = excluded.grant_types, scope = excluded.scope,
            id_token_signed_response_alg = excluded.id_token_signed_response_alg,
            require_mfa = excluded.require_mfa, skip_consent = excluded.skip_consent,
            require_phishing_resistant = excluded.require_phishing_resistant,
            resource_servers = excluded.resource_servers,
            access_token_seconds = excluded.access_token_seconds,
            refresh_token_seconds = excluded.refresh_token_seconds";
        self.write_client(client, replace).await.map_err(backend)
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<Client>> {
        if let Some(client) = self.clients.get(&client_id.to_string()) {
            return Ok(Some(client));
        }
        let client = self.client_row(client_id).await?;
        if let Some(client) = &client {
            self.clients.insert(client_id.to_string(), client.clone());
        }
        Ok(client)
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn granted_scope(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
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
            "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope,
                                                           updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.writer)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn code(&self, code_hash: &str) -> StoreResult<Option<AuthCode>> {
        let statement = format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE code_hash = $1");
        let row = sqlx::query(&statement)
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(code_of_row).transpose()
    }

    async fn redeem_code(&self, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption> {
        let redeemed = self
            .write(RedeemCode {
                code_hash: code_hash.to_string(),
                now,
            })
            .await?;
        if let Some(code) = redeemed {
            return Ok(CodeRedemption::Redeemed(Box::new(code)));
        }
        let replayed: Option<String> = sqlx::query_scalar(
            "SELECT grant_id FROM auth_codes WHERE code_hash = $1 AND consumed_at IS NOT NULL",
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
        self.write(IssueTokens {
            access: Some(token.clone()),
            refresh: None,
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let Some(cache) = &self.token_cache else {
            return self.token_row(token_hash).await;
        };
        match cache.get(token_hash).await {
            Ok(Some(token)) => return Ok(Some(token)),
            Ok(None) => {}
            Err(err) => tracing::debug!(error = %err, "token cache unavailable"),
        }
        let token = self.token_row(token_hash).await?;
        if let Some(token) = &token {
            if let Err(err) = cache.put(token, clock::now()).await {
                tracing::debug!(error = %err, "token cache unavailable");
            }
        }
        Ok(token)
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        self.mark_revoked(Revocation::Token(token_hash)).await;
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> StoreResult<u64> {
        self.mark_revoked(Revocation::Grant(grant_id)).await;
        let mut tx = self.write_transaction().await?;
        let revoked = revoke_grant_rows(&mut tx, grant_id, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(revoked)
    }
}

/// Revokes a grant's tokens and refresh tokens and burns its unredeemed code, in `tx`; returns
/// how many rows changed.
async fn revoke_grant_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    grant_id: &str,
    now: UnixTime,
) -> StoreResult<u64> {
    let mut revoked = 0;
    for statement in [
        "UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        // An unredeemed code of the grant dies too; redeeming it later counts as a replay.
        "UPDATE auth_codes SET consumed_at = $1 WHERE grant_id = $2 AND consumed_at IS NULL",
    ] {
        let done = sqlx::query(statement)
            .bind(now)
            .bind(grant_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        revoked += done.rows_affected();
    }
    Ok(revoked)
}

impl SqlStore {
    /// An access token's row, read from the database.
    async fn token_row(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>> {
        let Some(row) = sqlx::query(
            "SELECT token_hash, jti, grant_id, client_id, user_id, scope, mfa_verified, acr, amr,
                    auth_time, issued_at, expires_at, revoked_at IS NOT NULL AS revoked
             FROM tokens WHERE token_hash = $1",
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
            mfa_verified: flag(&row, "mfa_verified")?,
            acr: row.get("acr"),
            amr: from_json(row.get("amr"))?,
            auth_time: row.get("auth_time"),
            issued_at: row.get("issued_at"),
            expires_at: row.get("expires_at"),
            revoked: flag(&row, "revoked")?,
        }))
    }
}

#[async_trait]
impl RefreshTokenStore for SqlStore {
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        self.write(IssueTokens {
            access: None,
            refresh: Some(token.clone()),
        })
        .await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let Some(row) = sqlx::query(
            "SELECT token_hash, family_id, client_id, user_id, scope, session_id, auth_time, acr, amr,
                    issued_at, expires_at, rotated_at, replaced_by, grace_used,
                    revoked_at IS NOT NULL AS revoked
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(RefreshTokenRecord {
            token_hash: row.get("token_hash"),
            family_id: row.get("family_id"),
            client_id: row.get("client_id"),
            user_id: row.get("user_id"),
            scope: row.get("scope"),
            session_id: row.get("session_id"),
            auth_time: row.get("auth_time"),
            acr: row.get("acr"),
            amr: from_json(row.get("amr"))?,
            issued_at: row.get("issued_at"),
            expires_at: row.get("expires_at"),
            rotated_at: row.get("rotated_at"),
            replaced_by: row.get("replaced_by"),
            grace_used: flag(&row, "grace_used")?,
            revoked: flag(&row, "revoked")?,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        self.write(RotateRefresh {
            old_hash: old_hash.to_string(),
            new: new.clone(),
            access: None,
            now,
        })
        .await
    }

    async fn replace_successor(
        &self,
        old_hash: &str,
        rotated_since: UnixTime,
        new: &RefreshTokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        let mut tx = self.write_transaction().await?;
        let successor: Option<String> = sqlx::query_scalar(
            "UPDATE refresh_tokens SET grace_used = TRUE
             WHERE token_hash = $1 AND grace_used = FALSE AND revoked_at IS NULL AND rotated_at >= $2
               AND replaced_by IN (SELECT token_hash FROM refresh_tokens
                                   WHERE rotated_at IS NULL AND revoked_at IS NULL)
             RETURNING replaced_by",
        )
        .bind(old_hash)
        .bind(rotated_since)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(successor) = successor else {
            return Ok(Rotation::Lost);
        };
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&successor)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // The access token issued with the replaced successor: the family's, issued since the
        // old token's rotation (the retry's own access token is stored after this).
        let revoked: Vec<String> = sqlx::query_scalar(
            "UPDATE tokens SET revoked_at = $1
             WHERE grant_id = $2 AND revoked_at IS NULL
               AND issued_at >= (SELECT rotated_at FROM refresh_tokens WHERE token_hash = $3)
             RETURNING token_hash",
        )
        .bind(now)
        .bind(&new.family_id)
        .bind(old_hash)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("UPDATE refresh_tokens SET replaced_by = $1 WHERE token_hash = $2")
            .bind(&new.token_hash)
            .bind(old_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Reported in the reuse audit like any reuse, though within the grace window.
        sqlx::query(
            "INSERT INTO refresh_token_reuse (family_id, client_id, user_id, detected_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&new.family_id)
        .bind(&new.client_id)
        .bind(&new.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        token_writes::insert_rows(&mut tx, std::slice::from_ref(new)).await?;
        tx.commit().await.map_err(backend)?;
        for token_hash in &revoked {
            self.mark_revoked(Revocation::Token(token_hash)).await;
        }
        Ok(Rotation::Rotated)
    }

    async fn revoke_reused_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        self.mark_revoked(Revocation::Grant(family_id)).await;
        let mut tx = self.write_transaction().await?;
        let revoked = revoke_grant_rows(&mut tx, family_id, now).await?;
        if revoked == 0 {
            return Ok(0);
        }
        sqlx::query(
            "INSERT INTO refresh_token_reuse (family_id, client_id, user_id, detected_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(family_id)
        .bind(client_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let event = events::reuse_detected(family_id, client_id, user_id, now);
        self.insert_event(&mut *tx, &event).await?;
        tx.commit().await.map_err(backend)?;
        Ok(revoked)
    }

    async fn grants_of_session(&self, session_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT family_id FROM refresh_tokens WHERE session_id = $1
             UNION SELECT grant_id FROM auth_codes WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    async fn refresh_grants_of_user(
        &self,
        user_id: &str,
    ) -> StoreResult<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT family_id, session_id FROM refresh_tokens
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        // Sorted here: Rust's order is the code-point order every backend promises.
        let grants: BTreeSet<(String, Option<String>)> = rows
            .iter()
            .map(|row| (row.get("family_id"), row.get("session_id")))
            .collect();
        Ok(grants.into_iter().collect())
    }
}

#[async_trait]
impl MfaStore for SqlStore {
    async fn totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>> {
        let row = sqlx::query(
            "SELECT secret_sealed, confirmed, last_used_step, failures, failures_since,
                    consecutive_failures
             FROM user_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(TotpRecord {
            secret_sealed: row.get("secret_sealed"),
            confirmed: flag(&row, "confirmed")?,
            last_used_step: row.get("last_used_step"),
            failures: row.get::<i64, _>("failures") as u32,
            failures_since: row.get("failures_since"),
            consecutive_failures: row.get::<i64, _>("consecutive_failures") as u32,
        }))
    }

    async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO user_totp (user_id, secret_sealed, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = $2, created_at = $3
             WHERE user_totp.confirmed = FALSE",
        )
        .bind(user_id)
        .bind(secret_sealed)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
        recovery_code_hashes: &[String],
    ) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        let confirmed = sqlx::query(
            "UPDATE user_totp SET confirmed = TRUE, last_used_step = $1, failures = 0
             WHERE user_id = $2 AND confirmed = FALSE AND secret_sealed = $3",
        )
        .bind(step)
        .bind(user_id)
        .bind(secret_sealed)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if confirmed.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for hash in recovery_code_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        self.insert_event(&mut *tx, &events::mfa_enrolled(user_id, clock::now()))
            .await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE user_totp SET last_used_step = $1, failures = 0, consecutive_failures = 0
             WHERE user_id = $2 AND confirmed = TRUE AND last_used_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2")
            .bind(user_id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE user_totp SET failures = 0, consecutive_failures = 0 WHERE user_id = $1",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_mfa_attempt(
        &self,
        user_id: &str,
        now: UnixTime,
        limit: &MfaLimit,
    ) -> StoreResult<MfaAttempt> {
        // One statement counts the attempt only while both limits allow it, so parallel
        // attempts cannot all pass a check made before any of them was counted.
        let counted = sqlx::query(
            "UPDATE user_totp SET
                 failures = CASE WHEN failures_since < $2 THEN 1 ELSE failures + 1 END,
                 failures_since = CASE WHEN failures_since < $2 THEN $1 ELSE failures_since END,
                 consecutive_failures = consecutive_failures + 1
             WHERE user_id = $3 AND confirmed = TRUE AND consecutive_failures < $5
               AND (failures_since < $2 OR failures < $4)
             RETURNING failures, consecutive_failures",
        )
        .bind(now)
        .bind(limit.window_start)
        .bind(user_id)
        .bind(i64::from(limit.max))
        .bind(i64::from(limit.lock_after))
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        let count = |row: &AnyRow, column| -> StoreResult<u32> {
            let n: i64 = row.try_get(column).map_err(backend)?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        };
        if let Some(row) = counted {
            return Ok(MfaAttempt::Allowed {
                failures: count(&row, "failures")?,
                consecutive: count(&row, "consecutive_failures")?,
            });
        }
        let refused: Option<i64> = sqlx::query_scalar(
            "SELECT consecutive_failures FROM user_totp WHERE user_id = $1 AND confirmed = TRUE",
        )
        .bind(user_id)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        Ok(match refused {
            None => MfaAttempt::NotEnrolled,
            Some(n) if n >= i64::from(limit.lock_after) => MfaAttempt::Locked,
            Some(_) => MfaAttempt::Limited,
        })
    }

    async fn record_mfa_locked(&self, user_id: &str, now: UnixTime) -> StoreResult<()> {
        let mut tx = self.write_transaction().await?;
        self.insert_event(&mut *tx, &events::mfa_locked(user_id, now))
            .await?;
        tx.commit().await.map_err(backend)
    }

    async fn delete_mfa(&self, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.write_transaction().await?;
        let deleted = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted.rows_affected() == 1)
    }
}

#[async_trait]
impl LoginAttemptStore for SqlStore {
    async fn record_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_attempts (username_hash, ip, outcome, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&attempt.username_hash)
        .bind(&attempt.ip)
        .bind(attempt.outcome.as_str())
        .bind(attempt.at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn login_attempts(
        &self,
        username_hash: &str,
        limit: u32,
    ) -> StoreResult<Vec<LoginAttempt>> {
        let rows = sqlx::query(
            "SELECT username_hash, ip, outcome, at FROM login_attempts
             WHERE username_hash = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(username_hash)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let outcome: String = row.get("outcome");
                Ok(LoginAttempt {
                    username_hash: row.get("username_hash"),
                    ip: row.get("ip"),
                    outcome: LoginOutcome::parse(&outcome).ok_or_else(|| {
                        StoreError::Backend(format!("login outcome {outcome:?}").into())
                    })?,
                    at: row.get("at"),
                })
            })
            .collect()
    }
}

#[async_trait]
impl PurgeStore for SqlStore {
    async fn purge_expired(
        &self,
        now: UnixTime,
        codes_expired_before: UnixTime,
        batch: u32,
    ) -> StoreResult<u64> {
        let statements = [
            (
                "DELETE FROM auth_codes WHERE code_hash IN
              (SELECT code_hash FROM auth_codes WHERE expires_at < $1 LIMIT $2)",
                codes_expired_before,
            ),
            (
                "DELETE FROM refresh_tokens WHERE token_hash IN
              (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM artifacts WHERE (kind, id_hash) IN
              (SELECT kind, id_hash FROM artifacts WHERE expires_at < $1 LIMIT $2)",
                now,
            ),
            (
                "DELETE FROM login_attempts WHERE id IN
              (SELECT id FROM login_attempts WHERE at < $1 LIMIT $2)",
                now - LOGIN_ATTEMPT_RETENTION,
            ),
            (
                "DELETE FROM outbox WHERE seq IN
              (SELECT seq FROM outbox WHERE occurred_at < $1 LIMIT $2)",
                now - events::EVENT_RETENTION,
            ),
        ];
        let mut purged = 0;
        for (statement, before) in statements {
            let done = sqlx::query(statement)
                .bind(before)
                .bind(i64::from(batch))
                .execute(&self.writer)
                .await
                .map_err(backend)?;
            purged += done.rows_affected();
        }
        let tokens: Vec<String> = sqlx::query_scalar(
            "DELETE FROM tokens WHERE token_hash IN
              (SELECT token_hash FROM tokens WHERE expires_at < $1 LIMIT $2)
             RETURNING token_hash",
        )
        .bind(now)
        .bind(i64::from(batch))
        .fetch_all(&self.writer)
        .await
        .map_err(backend)?;
        if let Some(cache) = &self.token_cache {
            // Only needed when `now` runs ahead of the wall clock (a cached entry never
            // outlives its token), but then a purged token must not be read back either.
            if let Err(err) = cache.evict(&tokens).await {
                tracing::debug!(error = %err, "token cache unavailable");
            }
        }
        Ok(purged + tokens.len() as u64)
    }
}

#[async_trait]
impl ArtifactStore for SqlStore {
    async fn put_artifact(
        &self,
        kind: ArtifactKind,
        id_hash: &str,
        user_id: Option<&str>,
        payload: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO artifacts (kind, id_hash, user_id, payload, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kind, id_hash) DO UPDATE SET user_id = excluded.user_id,
                                                       payload = excluded.payload,
                                                       expires_at = excluded.expires_at",
        )
        .bind(kind.as_str())
        .bind(id_hash)
        .bind(user_id)
        .bind(payload)
        .bind(expires_at)
        .execute(&self.writer)
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
            "SELECT payload FROM artifacts WHERE kind = $1 AND id_hash = $2 AND expires_at > $3",
        )
        .bind(kind.as_str())
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM artifacts WHERE kind = $1 AND id_hash = $2")
            .bind(kind.as_str())
            .bind(id_hash)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn user_artifacts(
        &self,
        kind: ArtifactKind,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT id_hash, payload FROM artifacts
             WHERE kind = $1 AND user_id = $2 AND expires_at > $3 ORDER BY {}",
            self.dialect.binary_order("id_hash")
        ))
        .bind(kind.as_str())
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| (row.get("id_hash"), row.get("payload")))
            .collect())
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT kid, alg, private_pem, created_at FROM signing_keys ORDER BY {}",
            self.dialect.insertion_order()
        ))
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
            "INSERT INTO signing_keys (kid, alg, private_pem, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.private_pem)
        .bind(key.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| conflict_or_backend(e, &format!("signing key {}", key.kid)))?;
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn issue_tokens(
        &self,
        access: &TokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> StoreResult<()> {
        self.write(IssueTokens {
            access: Some(access.clone()),
            refresh: refresh.cloned(),
        })
        .await
    }

    async fn rotate_and_issue(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        access: &TokenRecord,
        now: UnixTime,
    ) -> StoreResult<Rotation> {
        self.write(RotateRefresh {
            old_hash: old_hash.to_string(),
            new: new.clone(),
            access: Some(access.clone()),
            now,
        })
        .await
    }
}
