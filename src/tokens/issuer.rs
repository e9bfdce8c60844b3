//! The token issuer: the one holder of what minting and checking tokens read (the issuer name,
//! the signing keys, the lifetimes and the two stores involved), built once at start-up so that
//! grants and endpoints hold it rather than the whole server state. Its methods live beside the
//! token kinds they make: [`super::access_token`], [`super::id_token`], [`super::refresh_token`].

use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use crate::config::Config;
use crate::keys::KeyRing;
use crate::store::{Store, TokenStore, UserStore};

/// The server's token lifetimes; a client's registration may shorten them.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub id_token: Duration,
    pub refresh: Duration,
}

pub struct TokenIssuer {
    pub(super) issuer: String,
    /// Shared with the key rotation task, which swaps the ring whole.
    keys: Arc<ArcSwap<KeyRing>>,
    pub(super) lifetimes: TokenLifetimes,
    /// Access tokens' records, which make them revocable and introspectable.
    pub(super) records: Arc<dyn TokenStore + Send + Sync>,
    /// Read for the `groups` claim.
    pub(super) users: Arc<dyn UserStore + Send + Sync>,
}

impl TokenIssuer {
    pub fn new(config: &Config, keys: Arc<ArcSwap<KeyRing>>, store: Arc<dyn Store>) -> Self {
        TokenIssuer {
            issuer: config.issuer.clone(),
            keys,
            lifetimes: TokenLifetimes {
                access: config.access_token_ttl,
                id_token: config.id_token_ttl,
                refresh: config.refresh_token_ttl,
            },
            records: store.clone(),
            users: store,
        }
    }

    pub(super) fn keys(&self) -> Guard<Arc<KeyRing>> {
        self.keys.load()
    }
}
