//! The store circuit breaker ([`crate::circuit`]) around the routes that need the store: while it
//! is open they are refused at once, in their surface's own format, and each request it admits
//! reports whether the store answered (read off the response's [`Failure`]). Routes that answer
//! without the store (discovery, JWKS, health, metrics, static files) are outside it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::circuit::Admission;
use crate::error::{Error, Failure};
use crate::state::AppState;

/// How a group of routes shows an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Pages a browser shows: an HTML error page.
    Page,
    /// JSON APIs (RFC 6749 §5.2 errors).
    Api,
    /// SCIM (RFC 7644 §3.12 errors).
    Scim,
}

pub async fn guard(
    State((state, surface)): State<(AppState, Surface)>,
    request: Request,
    next: Next,
) -> Response {
    if state.circuit.admit() == Admission::Refuse {
        return refused(surface);
    }
    let response = next.run(request).await;
    let failed = matches!(
        response.extensions().get::<Failure>(),
        Some(Failure::StoreUnreachable(_))
    );
    state.metrics.circuit(state.circuit.record(failed));
    response
}

/// The 503 of an open circuit.
fn refused(surface: Surface) -> Response {
    let err = Error::Unavailable;
    match surface {
        Surface::Page => crate::ui::error_response(err),
        Surface::Api => err.into_response(),
        Surface::Scim => crate::scim::error::ScimError::from(err).into_response(),
    }
}
