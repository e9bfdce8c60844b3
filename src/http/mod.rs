//! The HTTP surface: routes, middleware, static assets.

pub mod client_ip;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod observe;
pub mod request_id;
pub mod same_origin;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::oauth::{authorize, consent, introspection, login, revocation, token};
use crate::oidc::{discovery, jwks, logout, userinfo};
use crate::state::AppState;
use crate::ui::account;

pub fn router(state: AppState) -> Router {
    let cors = state.config.cors_origins.layer();
    let transport = state.config.transport.clone();
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            cors::allow(get(discovery::discovery), &cors),
        )
        .route("/jwks", cors::allow(get(jwks::jwks), &cors))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/login", get(login::login_page).post(login::login_submit))
        .route(
            "/login/mfa",
            get(login::mfa_step_page).post(login::mfa_step_submit),
        )
        .route(
            "/consent",
            get(consent::consent_page).post(consent::consent_submit),
        )
        .route("/account", get(account::overview))
        .route(
            "/account/mfa/totp",
            get(account::enroll_page).post(account::enroll_confirm),
        )
        .route("/account/mfa/totp/disable", post(account::disable_totp))
        .route("/account/profile", post(account::update_profile))
        .route("/account/password", post(account::change_password))
        .route("/account/sessions/end", post(account::end_session))
        .route(
            "/account/sessions/end-others",
            post(account::end_other_sessions),
        )
        .route("/account/deactivate", post(account::deactivate))
        .route("/token", cors::allow(post(token::token), &cors))
        .route("/revoke", cors::allow(post(revocation::revoke), &cors))
        .route("/introspect", post(introspection::introspect))
        .route("/logout", get(logout::get).post(logout::post))
        .route("/logout/confirm", post(logout::confirm))
        .route(
            "/userinfo",
            cors::allow(get(userinfo::get).post(userinfo::post), &cors),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/static/tessera.css", get(stylesheet))
        .nest(crate::scim::BASE_PATH, crate::scim::router(state.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(request_id::middleware))
        // Finding 9: a body whose next chunk takes longer than a header may is cut off, and so
        // is any request not answered within the request timeout (408).
        .layer(RequestBodyTimeoutLayer::new(transport.header_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            transport.request_timeout,
        ))
        .with_state(state)
}

/// A `Retry-After` value (RFC 9110 §10.2.3) in whole seconds, rounded up so a client that waits
/// exactly that long is not refused again.
pub fn retry_after(wait: std::time::Duration) -> HeaderValue {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

/// Ready when the store answers (on the hybrid backend that includes Redis). Redis beside the
/// sql backend only shares throttle counters and caches tokens, so losing it degrades this
/// instance (per-instance limits, no cache) without making it unready.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(err) = state.store.ping().await {
        tracing::warn!(error = %err, "store not reachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response();
    }
    match state.throttle.shared_reachable().await {
        Some(false) => {
            "ready; Redis unreachable: throttle counters per instance, token cache bypassed"
                .into_response()
        }
        _ => "ready".into_response(),
    }
}

/// Prometheus metrics in the OpenMetrics text format. Contains no secrets; restrict it at the
/// proxy if the numbers themselves are sensitive.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/tessera.css"),
    )
}

async fn not_found() -> Response {
    crate::ui::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no page at this address.",
    )
}

/// Whether `request` is a form POST to one of our pages from another site ([`same_origin`]).
fn foreign_form_post(request: &Request, issuer: &str) -> bool {
    let guarded = request.method() == axum::http::Method::POST
        && request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .is_some_and(|route| same_origin::guards(route.as_str()));
    guarded && same_origin::is_foreign(request.headers(), &same_origin::origin_of(issuer))
}

/// Refuses a form POST to one of our pages from another site, and sets the headers every
/// response carries: no framing (clickjacking on the login page), no script at all, no MIME
/// sniffing, no referrer leaking codes or state; HSTS when we are served over https. One
/// middleware for both: each `from_fn` layer costs every request, JWKS included.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = if foreign_form_post(&request, &state.config.issuer) {
        tracing::info!("form POST from another site refused");
        crate::ui::error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was sent from another site.",
        )
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if state.config.is_https() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}
