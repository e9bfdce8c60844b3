//! Wall-clock time in the store's unit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds, the unit of every timestamp in the store.
pub type UnixTime = i64;

/// `at` as RFC 3339 (`2026-12-04T05:20:00Z`), as SCIM's `meta` and the account pages show
/// times; empty for a time outside the calendar.
pub fn rfc3339(at: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as UnixTime)
        .unwrap_or(0)
}
