//! The JWK Set endpoint (RFC 7517 §5): every published public key, serialized once.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            // Short enough that a rotated key is picked up promptly.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.keys().jwks_json(),
    )
}
