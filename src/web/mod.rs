//! Web primitives every surface uses: the client's IP, cookies, CSRF tokens, request ids, CORS,
//! the bearer token of a request, the paths of every route and `Retry-After`. A leaf: it knows nothing of the handlers,
//! the store or the application's state.

pub mod bearer;
pub mod client_ip;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod paths;
pub mod request_id;

use axum::http::HeaderValue;

/// A `Retry-After` value (RFC 9110 §10.2.3) in whole seconds, rounded up so a client that waits
/// exactly that long is not refused again.
pub fn retry_after(wait: std::time::Duration) -> HeaderValue {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}
