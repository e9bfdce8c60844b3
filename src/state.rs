//! What every handler shares, behind one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use crate::account::password::PasswordHasher;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::store::Store;

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub keys: KeyRing,
    pub passwords: PasswordHasher,
    /// The discovery document, serialized once at start-up.
    pub discovery_json: Vec<u8>,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
