//! What every handler shares, behind one cheap-to-clone handle.

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use axum::extract::FromRef;
use bytes::Bytes;

use crate::account::mfa::Mfa;
use crate::account::passkeys::Passkeys;
use crate::account::password::PasswordHasher;
use crate::account::self_service::SelfService;
use crate::account::verification::Verification;
use crate::circuit::Breaker;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tokens::issuer::TokenIssuer;
use crate::web::client_ip::TrustedProxies;

pub struct Services {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// Swapped whole when keys are reloaded, so a request sees one consistent ring.
    pub keys: Arc<ArcSwap<KeyRing>>,
    pub tokens: Arc<TokenIssuer>,
    pub passwords: PasswordHasher,
    pub sealer: Sealer,
    pub mfa: Mfa,
    /// Queues mail; `None` without `TESSERA_SMTP_URL`.
    pub mailer: Option<Mailer>,
    /// Email verification; `None` when it is off.
    pub verification: Option<Verification>,
    /// `None` when the issuer's host cannot be a WebAuthn relying party id (an IP address).
    pub passkeys: Option<Passkeys>,
    pub throttle: Throttle,
    pub metrics: Arc<Metrics>,
    /// Opens when the store keeps failing, so requests fail fast ([`crate::circuit`]).
    pub circuit: Breaker,
    /// The discovery document, serialized once at start-up (cloning `Bytes` copies nothing).
    pub discovery_json: Bytes,
}

#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl Services {
    pub fn keys(&self) -> Guard<Arc<KeyRing>> {
        self.keys.load()
    }

    pub fn self_service(&self) -> SelfService<'_> {
        SelfService {
            store: self.store.as_ref(),
            passwords: &self.passwords,
            throttle: &self.throttle,
            mfa: &self.mfa,
            verification: self.verification.as_ref(),
        }
    }
}

impl Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        TrustedProxies(state.config.web.trusted_proxies)
    }
}

/// One router's state: the server's, and a service built from it once at start-up (the token
/// endpoint's grants, the sign-in pages' steps). A handler extracts either half.
pub struct WithService<T> {
    pub server: AppState,
    pub service: Arc<T>,
}

impl<T> WithService<T> {
    pub fn new(server: &AppState, service: T) -> Self {
        WithService {
            server: server.clone(),
            service: Arc::new(service),
        }
    }
}

impl<T> Clone for WithService<T> {
    fn clone(&self) -> Self {
        WithService {
            server: self.server.clone(),
            service: self.service.clone(),
        }
    }
}

impl<T> FromRef<WithService<T>> for AppState {
    fn from_ref(state: &WithService<T>) -> Self {
        state.server.clone()
    }
}

impl<T> FromRef<WithService<T>> for Arc<T> {
    fn from_ref(state: &WithService<T>) -> Self {
        state.service.clone()
    }
}

impl<T> FromRef<WithService<T>> for TrustedProxies {
    fn from_ref(state: &WithService<T>) -> Self {
        TrustedProxies::from_ref(&state.server)
    }
}
