//! Per-request bookkeeping around every route: Prometheus metrics by route pattern, and the log
//! line and count of a failure behind an error response. Every error renderer puts that failure
//! on the response ([`Failure`], by [`crate::error::Error::render`]), whatever surface it renders
//! for.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::Failure;
use crate::state::AppState;

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = label_of(request.method());
    let response = next.run(request).await;
    if let Some(failure) = response.extensions().get::<Failure>() {
        failure.log();
        if matches!(failure, Failure::StoreUnreachable(_)) {
            state.metrics.store_error();
        }
    }
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
