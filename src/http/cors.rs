//! CORS (the Fetch standard's protocol) on exactly the endpoints a browser app calls from its own
//! origin: discovery, JWKS, token, userinfo and revocation (OAuth 2.0 for Browser-Based Apps).
//! Pages, introspection and SCIM never answer cross-origin requests. Origins come from
//! `TESSERA_CORS_ORIGINS`; none are allowed by default. No credentials mode: these endpoints
//! authenticate with headers or the form body, never with cookies.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method};
use axum::routing::MethodRouter;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the cross-origin endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    #[default]
    None,
    Any,
    /// Exact origins (`https://app.example`, `http://localhost:3000`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or a comma-separated list of origins (scheme, host and port only).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value == "*" {
            return Ok(CorsOrigins::Any);
        }
        let origins = value
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(origin)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if origins.is_empty() {
            CorsOrigins::None
        } else {
            CorsOrigins::List(origins)
        })
    }

    pub fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
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
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
                .max_age(Duration::from_secs(3600)),
        )
    }
}

/// A browser sends an origin as `scheme://host[:port]`, nothing more.
fn origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not an origin"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https") || origin != text.trim_end_matches('/') {
        return Err(format!(
            "{text:?} is not an origin like https://app.example (scheme, host and port only)"
        ));
    }
    Ok(origin)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_exact_or_any() {
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::None));
        assert_eq!(
            CorsOrigins::parse("https://app.example, http://localhost:3000/"),
            Ok(CorsOrigins::List(vec![
                "https://app.example".into(),
                "http://localhost:3000".into()
            ]))
        );
        for bad in ["https://app.example/path", "app.example", "ftp://x.example"] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
