//! CORS (the Fetch standard's protocol) on exactly the endpoints a browser app calls from its own
//! origin: discovery, JWKS, token, userinfo, revocation (OAuth 2.0 for Browser-Based Apps) and
//! the self-service API.
//! Pages, introspection and SCIM never answer cross-origin requests. Origins come from
//! `TESSERA_CORS_ORIGINS`; none are allowed by default. No credentials mode: these endpoints
//! authenticate with headers or the form body, never with cookies.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use axum::routing::MethodRouter;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;

/// The layer that answers cross-origin requests from `origins`, if any are allowed.
pub fn layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(origins) => AllowOrigin::list(
            origins
                .iter()
                .map(|o| HeaderValue::from_str(o).expect("origins are validated")),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// `route`, answering cross-origin requests when `cors` is configured.
pub fn allow<S: Clone + Send + Sync + 'static>(
    route: MethodRouter<S>,
    cors: &Option<CorsLayer>,
) -> MethodRouter<S> {
    match cors {
        Some(cors) => route.layer(cors.clone()),
        None => route,
    }
}
