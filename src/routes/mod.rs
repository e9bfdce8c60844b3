//! The composition root of the HTTP surface: every route and the middleware around them, the
//! health and metrics endpoints, static assets. The only module that names handlers.

pub mod request_metrics;
pub mod same_origin;
pub mod store_guard;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::account::recovery::Recovery;
use crate::oauth::sign_in::SignIn;
use crate::oauth::{
    authorize, consent, introspection, login, passkey_login, revocation, signup, token,
    verify_email,
};
use crate::oidc::{discovery, jwks, logout, userinfo};
use crate::pages::{account, passkeys, recovery, verification};
use crate::state::{AppState, WithService};
use crate::web::{cors, paths, request_id};
use store_guard::Surface;

pub fn router(state: AppState) -> Router {
    let transport = state.config.transport.clone();
    let cors = cors::layer(&state.config.web.cors_origins);
    let routes = Router::new()
        .merge(storeless_routes(&cors))
        .merge(guarded(pages(&state), &state, Surface::Page))
        .merge(guarded(apis(&cors, &state), &state, Surface::Api))
        .nest(
            crate::scim::BASE_PATH,
            guarded(crate::scim::router(state.clone()), &state, Surface::Scim),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_metrics::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_foreign_form_posts,
        ));
    with_security_headers(routes, state.config.is_https())
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

/// `routes` behind the store circuit breaker, refused in the format of `surface` while it is open.
fn guarded(routes: Router<AppState>, state: &AppState, surface: Surface) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state(
        (state.clone(), surface),
        store_guard::guard,
    ))
}

/// What answers without the store, so it keeps answering while the store is down.
fn storeless_routes(cors: &Option<CorsLayer>) -> Router<AppState> {
    Router::new()
        .route(
            paths::DISCOVERY,
            cors::allow(get(discovery::discovery), cors),
        )
        .route(
            paths::AUTHORIZATION_SERVER_METADATA,
            cors::allow(get(discovery::discovery), cors),
        )
        .route(paths::JWKS, cors::allow(get(jwks::jwks), cors))
        .route(paths::HEALTHZ, get(|| async { "ok" }))
        .route(paths::METRICS, get(metrics))
        .route(paths::STYLESHEET, get(stylesheet))
        .route(paths::PASSKEYS_SCRIPT, get(passkeys_script))
}

/// The pages a browser shows: sign-in, consent, the account, logout.
fn pages(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(sign_in_pages(state))
        .route(paths::ACCOUNT, get(account::overview))
        .route(
            paths::ACCOUNT_TOTP,
            get(account::enroll_page).post(account::enroll_confirm),
        )
        .route(paths::ACCOUNT_TOTP_DISABLE, post(account::disable_totp))
        .route(paths::ACCOUNT_PROFILE, post(account::update_profile))
        .route(paths::ACCOUNT_PASSWORD, post(account::change_password))
        .route(paths::ACCOUNT_END_SESSION, post(account::end_session))
        .route(
            paths::ACCOUNT_END_OTHER_SESSIONS,
            post(account::end_other_sessions),
        )
        .route(paths::ACCOUNT_DEACTIVATE, post(account::deactivate))
        .route(
            paths::ACCOUNT_EMAIL_VERIFY,
            post(account::send_verification),
        )
        .route(paths::LOGOUT, get(logout::get).post(logout::post))
        .route(paths::LOGOUT_CONFIRM, post(logout::confirm))
        .merge(recovery_pages(state))
        .merge(verification_pages(state))
        .merge(passkey_pages(state))
}

/// The page a verification link opens, when verification is on.
fn verification_pages(state: &AppState) -> Router<AppState> {
    let Some(service) = state.verification.clone() else {
        return Router::new();
    };
    Router::new()
        .route(
            paths::EMAIL_VERIFY,
            get(verification::confirm_page).post(verification::confirm_submit),
        )
        .with_state(WithService::new(state, service))
}

/// Password recovery, when mail is configured (else its paths are not found).
fn recovery_pages(state: &AppState) -> Router<AppState> {
    let Some(mailer) = state.mailer.clone() else {
        return Router::new();
    };
    let recovery = Recovery {
        store: state.store.clone(),
        passwords: state.passwords.clone(),
        mailer,
        issuer: state.config.issuer.clone(),
        link_lifetime: state.config.mail.reset_link_lifetime,
    };
    Router::new()
        .route(
            paths::PASSWORD_FORGOT,
            get(recovery::forgot_page).post(recovery::forgot_submit),
        )
        .route(
            paths::PASSWORD_RESET,
            get(recovery::reset_page).post(recovery::reset_submit),
        )
        .with_state(WithService::new(state, recovery))
}

/// The sign-in, from the authorization request to its code, with its steps built once.
fn sign_in_pages(state: &AppState) -> Router<AppState> {
    let sign_in = SignIn::new(
        &state.config,
        state.store.clone(),
        state.mfa.clone(),
        state.verification.clone(),
        state.passkeys.clone(),
    );
    Router::new()
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(
            paths::LOGIN,
            get(login::login_page).post(login::login_submit),
        )
        .route(
            paths::LOGIN_MFA,
            get(login::mfa_step_page).post(login::mfa_step_submit),
        )
        .merge(signup_page(state))
        .merge(verify_email_step(&sign_in))
        .merge(passkey_sign_in(&sign_in))
        .route(
            paths::CONSENT,
            get(consent::consent_page).post(consent::consent_submit),
        )
        .with_state(WithService::new(state, sign_in))
}

/// The step that waits for a verified address, when verification is required (else its path
/// is not found).
fn verify_email_step(sign_in: &SignIn) -> Router<WithService<SignIn>> {
    if sign_in.verification.is_none() {
        return Router::new();
    }
    Router::new().route(
        paths::LOGIN_VERIFY_EMAIL,
        get(verify_email::waiting_page).post(verify_email::waiting_submit),
    )
}

/// The passkey sign-in, when the issuer can have passkeys (else its paths are not found).
fn passkey_sign_in(sign_in: &SignIn) -> Router<WithService<SignIn>> {
    if sign_in.passkeys.is_none() {
        return Router::new();
    }
    Router::new()
        .route(paths::LOGIN_PASSKEY_START, post(passkey_login::start))
        .route(paths::LOGIN_PASSKEY, post(passkey_login::finish))
}

/// The account's passkeys page, when the issuer can have passkeys.
fn passkey_pages(state: &AppState) -> Router<AppState> {
    let Some(service) = state.passkeys.clone() else {
        return Router::new();
    };
    Router::new()
        .route(paths::ACCOUNT_PASSKEYS, get(passkeys::list))
        .route(paths::ACCOUNT_PASSKEYS_NEW, post(passkeys::start))
        .route(paths::ACCOUNT_PASSKEYS_REGISTER, post(passkeys::register))
        .route(paths::ACCOUNT_PASSKEYS_REMOVE, post(passkeys::remove))
        .with_state(WithService::new(state, service))
}

/// Sign-up, when it is open or takes invitations (else its path is not found).
fn signup_page(state: &AppState) -> Router<WithService<SignIn>> {
    if !(state.config.signup.open || state.config.signup.invitations) {
        return Router::new();
    }
    Router::new().route(
        paths::SIGNUP,
        get(signup::signup_page).post(signup::signup_submit),
    )
}

/// The JSON endpoints of relying parties and resource servers, and readiness.
fn apis(cors: &Option<CorsLayer>, state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            paths::TOKEN,
            cors::allow(
                post(token::token).with_state(WithService::new(state, token::grants(state))),
                cors,
            ),
        )
        .route(paths::REVOKE, cors::allow(post(revocation::revoke), cors))
        .route(paths::INTROSPECT, post(introspection::introspect))
        .route(
            paths::USERINFO,
            cors::allow(get(userinfo::get).post(userinfo::post), cors),
        )
        .route(paths::READYZ, get(readyz))
        .merge(crate::api::router(cors))
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

async fn passkeys_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/passkeys.js"),
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

/// Refuses a form POST to one of our pages from another site ([`same_origin`]).
async fn refuse_foreign_form_posts(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !foreign_form_post(&request, &state.config.issuer) {
        return next.run(request).await;
    }
    tracing::info!("form POST from another site refused");
    crate::ui::error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another site.",
    )
}

/// The headers every response carries: no framing (clickjacking on the login page), no script
/// (but ours on the pages that set [`crate::ui::CSP_WITH_SCRIPT`]), no MIME sniffing, no referrer
/// leaking codes or state; HSTS when we are served over https.
fn with_security_headers(routes: Router<AppState>, https: bool) -> Router<AppState> {
    const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                       frame-ancestors 'none'; base-uri 'none'";
    let fixed =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    let hsts = https.then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    routes
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(fixed(header::X_FRAME_OPTIONS, "DENY"))
        .layer(fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(fixed(header::REFERRER_POLICY, "no-referrer"))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &Response| hsts.clone(),
        ))
}
