//! The token issuer: the one holder of what minting and checking tokens read (the issuer name,
//! the signing keys, the lifetimes and the two stores involved), built once at start-up so that
//! grants and endpoints hold it rather than the whole server state. Its methods live beside the
//! token kinds they make: [`super::access_token`], [`super::id_token`], [`super::refresh_token`].

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::config::{Config, Lifetimes};
use crate::keys::KeyRing;
use crate::store::{Store, TokenStore, UserStore};

pub struct TokenIssuer {
    pub(super) issuer: String,
    /// Shared with the key rotation task, which swaps the ring whole.
    keys: Arc<ArcSwap<KeyRing>>,
    /// The server's; a client's registration may shorten them.
    pub(super) lifetimes: Lifetimes,
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
            lifetimes: config.lifetimes,
            records: store.clone(),
            users: store,
        }
    }

    pub(super) fn keys(&self) -> Guard<Arc<KeyRing>> {
        self.keys.load()
    }
}
