//! Tessera: an OAuth 2.0 / OpenID Connect provider.
//!
//! [`build`] turns a [`Config`] into a bound, ready [`App`]; `main` and the integration tests start
//! the server the same way.

pub mod account;
pub mod api;
pub mod circuit;
pub mod clock;
pub mod config;
pub mod error;
pub mod events;
pub mod fuzzing;
pub mod input;
pub mod keys;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod routes;
pub mod scim;
pub mod sealing;
pub mod secret;
pub mod seed;
pub mod serve;
pub mod state;
pub mod store;
pub mod tasks;
pub mod throttle;
pub mod tokens;
pub mod ui;
pub mod username;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

pub use config::Config;

use crate::account::passkeys::Passkeys;
use crate::account::password::PasswordHasher;
use crate::account::verification::Verification;
use crate::config::{EmailVerification, StoreBackend};
use crate::keys::KeyRing;
use crate::state::{AppState, Services};
use crate::store::{HybridStore, RedisStore, SqlStore, Store, TokenCache};
use crate::tokens::issuer::TokenIssuer;
use crate::username::NameHasher;

/// Every Redis key Tessera writes starts with this.
const REDIS_PREFIX: &str = "tessera:";

/// A server bound to its address, not yet serving.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    /// Sends the queued mail once the server runs; `None` without `TESSERA_SMTP_URL`.
    smtp: Option<mail::Smtp>,
}

/// Opens the store named by the configuration (running migrations).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config.store.backend {
        StoreBackend::Sql => {
            let store = SqlStore::connect(&config.store.database_url, &config.store.pool)
                .await
                .context("opening the database")?;
            match &config.store.redis_url {
                Some(url) if !config.store.token_cache_ttl.is_zero() => {
                    let cache =
                        TokenCache::connect(url, REDIS_PREFIX, config.store.token_cache_ttl)
                            .await
                            .context("connecting to Redis")?;
                    Arc::new(store.with_token_cache(cache))
                }
                _ => Arc::new(store),
            }
        }
        StoreBackend::Memory => Arc::new(in_memory().await?),
        // Without Redis nothing is shared: the hybrid backend is then the memory one.
        StoreBackend::Hybrid => match &config.store.redis_url {
            Some(url) => {
                let redis = RedisStore::connect(url, REDIS_PREFIX)
                    .await
                    .context("connecting to Redis")?;
                Arc::new(
                    HybridStore::new(redis)
                        .await
                        .context("opening the in-memory directory")?,
                )
            }
            None => Arc::new(in_memory().await?),
        },
    })
}

async fn in_memory() -> anyhow::Result<SqlStore> {
    SqlStore::in_memory()
        .await
        .context("opening the in-memory database")
}

/// Brute-force counters: shared through Redis when it is configured, else this process's own.
async fn open_throttle(config: &Config, names: NameHasher) -> anyhow::Result<throttle::Throttle> {
    Ok(match &config.store.redis_url {
        Some(url) => throttle::Throttle::shared(
            config.limits,
            names,
            throttle::RedisCounters::connect(url, REDIS_PREFIX)
                .await
                .context("connecting to Redis")?,
        ),
        None => throttle::Throttle::local(config.limits, names),
    })
}

/// Email verification as configured: `None` when it is off.
fn verification(
    config: &Config,
    store: &Arc<dyn Store>,
    mailer: Option<&mail::Mailer>,
) -> Option<Verification> {
    let mode = config.mail.verification();
    (mode != EmailVerification::Off).then_some(())?;
    Some(Verification {
        store: store.clone(),
        mailer: mailer?.clone(),
        issuer: config.issuer.clone(),
        mode,
    })
}

/// Binds `config.bind` and prepares the server.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    build_on(listener, config).await
}

/// Prepares the server on an already bound listener (tests bind port 0 first to learn the issuer).
pub async fn build_on(listener: TcpListener, config: Config) -> anyhow::Result<App> {
    let store = open_store(&config).await?;
    let passwords = PasswordHasher::for_this_machine().with_min_length(config.password_min_length);
    if let Some(path) = &config.seed_file {
        seed::apply_file(store.as_ref(), &passwords, path)
            .await
            .with_context(|| format!("applying the seed file {path}"))?;
    }
    let keys = KeyRing::load_or_generate(store.as_ref(), keys::Lifetimes::of(&config))
        .await
        .context("loading signing keys")?;
    let discovery_json = oidc::discovery::document(&config)
        .map_err(|e| anyhow::anyhow!("building the discovery document: {e}"))?;
    let sealer = sealing::Sealer::new(config.encryption_key);
    let names = NameHasher::new(sealer.derive("tessera user-name hashes"));
    let throttle = open_throttle(&config, names).await?;
    let circuit = circuit::Breaker::new(config.circuit.failures, config.circuit.open);
    let mfa = account::mfa::Mfa::new(store.clone(), sealer.clone(), config.mfa);
    let keys = Arc::new(arc_swap::ArcSwap::from_pointee(keys));
    let tokens = Arc::new(TokenIssuer::new(&config, keys.clone(), store.clone()));
    let smtp = mail::Smtp::new(&config.mail, sealer.clone())?;
    let mailer = mail::Mailer::new(&config.mail, store.clone(), sealer.clone());
    let verification = verification(&config, &store, mailer.as_ref());
    let passkeys = Passkeys::new(&config.issuer, store.clone());
    if passkeys.is_none() {
        tracing::info!(
            "no passkeys: the issuer's host is an IP address, which cannot be a WebAuthn \
             relying party id"
        );
    }
    let state = AppState::new(Services {
        config,
        store,
        keys,
        tokens,
        passwords,
        mfa,
        sealer,
        mailer,
        verification,
        passkeys,
        throttle,
        metrics: Arc::default(),
        circuit,
        discovery_json: discovery_json.into(),
    });
    Ok(App {
        listener,
        router: routes::router(state.clone()),
        state,
        smtp,
    })
}

impl App {
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests. Maintenance tasks run
    /// beside the server.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tasks::spawn(&self.state, self.smtp);
        let transport = self.state.config.transport.clone();
        serve::serve(self.listener, self.router, &transport, shutdown_signal()).await;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
