//! Wall-clock time in the store's unit.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::UnixTime;

pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as UnixTime)
        .unwrap_or(0)
}
