//! Per-request bookkeeping around every route: Prometheus metrics by route pattern, and the store
//! circuit breaker ([`crate::circuit`]), which refuses requests that need the store while it is
//! open. Store failures are noticed where they become a response ([`note_store_failure`], called
//! by [`crate::error::Error::public_parts`]), whatever surface renders them.

use std::cell::Cell;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::circuit::Admission;
use crate::error::Error;
use crate::state::AppState;

tokio::task_local! {
    static STORE_FAILED: Cell<bool>;
}

/// Marks the request being served as failed by the store.
pub fn note_store_failure() {
    let _ = STORE_FAILED.try_with(|failed| failed.set(true));
}

/// Routes that answer without the store: never refused by the breaker, never counted by it.
const STORELESS: [&str; 5] = [
    "/.well-known/openid-configuration",
    "/jwks",
    "/healthz",
    "/metrics",
    "/static/tessera.css",
];

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = label_of(request.method());
    let uses_store = route != "unmatched" && !STORELESS.contains(&route.as_str());
    let response = if uses_store && state.circuit.admit() == Admission::Refuse {
        refused(&route)
    } else {
        let (response, store_failed) = STORE_FAILED
            .scope(Cell::new(false), async {
                let response = next.run(request).await;
                (response, STORE_FAILED.with(Cell::get))
            })
            .await;
        if store_failed {
            state.metrics.store_error();
        }
        if uses_store {
            state.metrics.circuit(state.circuit.record(store_failed));
        }
        response
    };
    let status = response.status().as_u16();
    state
        .metrics
        .request(route, method, status, started.elapsed());
    response
}

/// Methods outside the standard set share one label, so a client cannot grow the label set.
fn label_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The 503 of an open circuit, in the format of the surface that was called.
fn refused(route: &str) -> Response {
    let err = Error::Unavailable;
    if route.starts_with(crate::scim::BASE_PATH) {
        crate::scim::error::ScimError::from(err).into_response()
    } else if crate::ui::is_page(route) {
        crate::ui::error_response(err)
    } else {
        err.into_response()
    }
}
