//! Background work: reloading signing keys (rotation by the CLI or by another instance sharing the
//! store), purging expired rows in bounded batches, and delivering audit events to webhooks.

use std::sync::Arc;

use crate::clock;
use crate::keys::{self, KeyRing};
use crate::state::AppState;
use crate::store::UnixTime;

/// Starts both loops on the current runtime; they end with it.
pub fn spawn(state: &AppState) {
    tokio::spawn(reload_keys_forever(state.clone()));
    tokio::spawn(purge_forever(state.clone()));
    crate::events::spawn(state);
}

async fn reload_keys_forever(state: AppState) {
    let mut ticks = tokio::time::interval(state.config.keys.reload_interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(err) = reload_keys(&state).await {
            tracing::warn!(error = %err, "reloading signing keys failed; keeping the current ones");
        }
    }
}

/// Re-reads the published keys and swaps them in.
pub async fn reload_keys(state: &AppState) -> Result<(), keys::KeyError> {
    let lifetimes = keys::Lifetimes::of(&state.config);
    let ring = KeyRing::load_or_generate(state.store.as_ref(), lifetimes).await?;
    state.keys.store(Arc::new(ring));
    Ok(())
}

async fn purge_forever(state: AppState) {
    let mut ticks = tokio::time::interval(state.config.purge.interval);
    loop {
        ticks.tick().await;
        match purge(&state).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged expired rows"),
            Err(err) => tracing::warn!(error = %err, "purging expired rows failed"),
        }
    }
}

/// The pause between two purge batches, so a long purge never holds the SQLite writer for
/// long: token writes queued meanwhile go first.
const PURGE_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// One purge round: expired codes (kept one access-token lifetime longer, so a late replay still
/// revokes what they issued), tokens, refresh tokens, artifacts, and retired signing keys. It
/// deletes batch after batch until a batch finds nothing left, so purging keeps up with any rate
/// of expiry (security review finding 8).
pub async fn purge(state: &AppState) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let now = clock::now();
    let config = &state.config;
    let codes_before = now - config.lifetimes.access_token.as_secs() as UnixTime;
    let mut purged = 0;
    loop {
        let batch = state
            .store
            .purge_expired(now, codes_before, config.purge.batch)
            .await?;
        if batch == 0 {
            break;
        }
        purged += batch;
        tokio::time::sleep(PURGE_PAUSE).await;
    }
    let lifetimes = keys::Lifetimes::of(config);
    let (_, retired) = keys::partition(state.store.signing_keys().await?, now, lifetimes);
    for key in retired {
        state.store.delete_signing_key(&key.kid).await?;
        tracing::info!(kid = %key.kid, alg = %key.alg, "retired signing key removed");
        purged += 1;
    }
    Ok(purged)
}
