//! Wall-clock time in the store's unit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds, the unit of every timestamp in the store.
pub type UnixTime = i64;

pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as UnixTime)
        .unwrap_or(0)
}
