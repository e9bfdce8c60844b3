//! What every handler shares, behind one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use bytes::Bytes;

use crate::account::password::PasswordHasher;
use crate::circuit::Breaker;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::throttle::Throttle;

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Swapped whole when keys are reloaded, so a request sees one consistent ring.
    pub keys: ArcSwap<KeyRing>,
    pub passwords: PasswordHasher,
    pub sealer: Sealer,
    pub throttle: Throttle,
    pub metrics: Metrics,
    /// Opens when the store keeps failing, so requests fail fast ([`crate::circuit`]).
    pub circuit: Breaker,
    /// The discovery document, serialized once at start-up (cloning `Bytes` copies nothing).
    pub discovery_json: Bytes,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Inner {
    pub fn keys(&self) -> Guard<Arc<KeyRing>> {
        self.keys.load()
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
