//! A cache of access-token records in front of the SQL store, as the store sees it: reads it
//! may answer, and revocations it must learn of before the database applies them, so that no
//! cached record outlives its revocation. The Redis cache implements it
//! ([`super::TokenCache`]); the SQL store names only this trait, not another backend.

use async_trait::async_trait;

use super::{StoreResult, TokenRecord, UnixTime};

/// What a revocation covers.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    Token(&'a str),
    Grant(&'a str),
    /// A user deactivated or deleted.
    User(&'a str),
}

#[async_trait]
pub trait TokenRecordCache: Send + Sync {
    /// The cached record of a live token, unless a revocation covers it.
    async fn get(&self, token_hash: &str) -> StoreResult<Option<TokenRecord>>;

    /// Caches an active token's record until it expires, at most for the cache lifetime.
    async fn put(&self, token: &TokenRecord, now: UnixTime) -> StoreResult<()>;

    /// Drops the entries of these tokens.
    async fn evict(&self, token_hashes: &[String]) -> StoreResult<()>;

    /// Records `revocation`; called before the database revokes.
    async fn revoke(&self, revocation: Revocation<'_>) -> StoreResult<()>;
}
