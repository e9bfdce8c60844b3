//! Background work: reloading signing keys (rotation by the CLI or by another instance sharing the
//! store), purging expired rows in bounded batches, and delivering the outbox: audit events to
//! webhooks, messages to the mail server.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock;
use crate::config::Config;
use crate::events::{self, webhooks};
use crate::keys::{self, KeyRing};
use crate::mail::Smtp;
use crate::state::AppState;
use crate::store::{Store, UnixTime};

/// Starts the loops on the current runtime, each with what it touches; they end with it.
pub fn spawn(state: &AppState, smtp: Option<Smtp>) {
    let config = &state.config;
    tokio::spawn(reload_keys_forever(
        state.store.clone(),
        state.keys.clone(),
        keys::Lifetimes::of(config),
        config.keys.reload_interval,
    ));
    tokio::spawn(purge_forever(state.store.clone(), config.clone()));
    if let Some(webhooks) = webhooks::Delivery::new(&config.webhooks) {
        events::run(state.store.clone(), webhooks);
    }
    if let Some(smtp) = smtp {
        events::run(state.store.clone(), smtp);
    }
}

/// Re-reads the published keys every `interval` and swaps them in whole.
async fn reload_keys_forever(
    store: Arc<dyn Store>,
    ring: Arc<ArcSwap<KeyRing>>,
    lifetimes: keys::Lifetimes,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match KeyRing::load_or_generate(store.as_ref(), lifetimes).await {
            Ok(reloaded) => ring.store(Arc::new(reloaded)),
            Err(err) => {
                tracing::warn!(error = %err, "reloading signing keys failed; keeping the current ones")
            }
        }
    }
}

async fn purge_forever(store: Arc<dyn Store>, config: Config) {
    let mut ticks = tokio::time::interval(config.purge.interval);
    loop {
        ticks.tick().await;
        match purge(store.as_ref(), &config).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged expired rows"),
            Err(err) => tracing::warn!(error = %err, "purging expired rows failed"),
        }
    }
}

/// The pause between two purge batches, so a long purge never holds the SQLite writer for
/// long: token writes queued meanwhile go first.
const PURGE_PAUSE: Duration = Duration::from_millis(20);

/// One purge round: expired codes (kept one access-token lifetime longer, so a late replay still
/// revokes what they issued), tokens, refresh tokens, artifacts, and retired signing keys. It
/// deletes batch after batch until a batch finds nothing left, so purging keeps up with any rate
/// of expiry (security review finding 8).
async fn purge(
    store: &dyn Store,
    config: &Config,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let now = clock::now();
    let codes_before = now - config.lifetimes.access_token.as_secs() as UnixTime;
    let mut purged = 0;
    loop {
        let batch = store
            .purge_expired(now, codes_before, config.purge.batch)
            .await?;
        if batch == 0 {
            break;
        }
        purged += batch;
        tokio::time::sleep(PURGE_PAUSE).await;
    }
    let lifetimes = keys::Lifetimes::of(config);
    let (_, retired) = keys::partition(store.signing_keys().await?, now, lifetimes);
    for key in retired {
        store.delete_signing_key(&key.kid).await?;
        tracing::info!(kid = %key.kid, alg = %key.alg, "retired signing key removed");
        purged += 1;
    }
    Ok(purged)
}
