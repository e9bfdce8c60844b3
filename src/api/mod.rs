//! The JSON self-service API for single-page and mobile apps, under `/api/v1/users/me`, for an
//! access token of scope `account` (RFC 6750 bearer): the user's profile, password, sessions,
//! and closing the account. The same rules as the account page hold (`account::self_service`):
//! a new email or password needs the current password, throttled like a sign-in. Errors are
//! `{"error": {"code", "message", "details", "correlation_id", "timestamp"}}`, the correlation
//! id being the request id. `openapi.json` beside this file documents it (OpenAPI 3.1), served at
//! `/api/v1/openapi.json`.

mod error;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_http::cors::CorsLayer;

use crate::account::self_service::{self, Profile, ProfileSaved};
use crate::account::session;
use crate::clock;
use crate::state::AppState;
use crate::store::User;
use crate::tokens::scope;
use crate::web::client_ip::ClientIp;
use crate::web::{bearer, cors};

pub use error::ApiError;

pub const ME: &str = "/api/v1/users/me";
pub const ME_PASSWORD: &str = "/api/v1/users/me/password";
pub const ME_SESSIONS: &str = "/api/v1/users/me/sessions";
pub const ME_SESSION: &str = "/api/v1/users/me/sessions/{id}";
pub const OPENAPI: &str = "/api/v1/openapi.json";

/// The API's routes, answering cross-origin requests from the allowed origins (`cors`).
pub fn router(cors: &Option<CorsLayer>) -> Router<AppState> {
    Router::new()
        .route(
            ME,
            cors::allow(get(me).patch(update_me).delete(close), cors),
        )
        .route(ME_PASSWORD, cors::allow(post(change_password), cors))
        .route(ME_SESSIONS, cors::allow(get(sessions), cors))
        .route(ME_SESSION, cors::allow(delete(end_session), cors))
        .route(OPENAPI, cors::allow(get(openapi), cors))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// The active user of the request's bearer token, which must carry scope `account`.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<User, ApiError> {
    let token = bearer::from_header(headers).ok_or_else(ApiError::no_token)?;
    let (_, record) = state
        .tokens
        .validate_access_token(token)
        .await
        .map_err(|_| ApiError::invalid_token())?;
    if !scope::has(&record.scope, scope::ACCOUNT) {
        return Err(ApiError::insufficient_scope());
    }
    let user = match &record.user_id {
        Some(id) => state.store.user(id).await?.filter(|user| user.active),
        None => None,
    };
    user.ok_or_else(ApiError::invalid_token)
}

/// The body of a request, or the API's error for a body that is not the JSON asked for.
fn body<T>(parsed: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    parsed
        .map(|Json(body)| body)
        .map_err(|rejection| ApiError::invalid_request(rejection.body_text()))
}

#[derive(Serialize)]
struct Me {
    id: String,
    username: String,
    given_name: String,
    family_name: String,
    email: Option<String>,
    email_verified: bool,
    created_at: i64,
}

impl Me {
    fn of(user: &User) -> Self {
        let profile = Profile::of(user);
        Me {
            id: user.id.clone(),
            username: user.username.clone(),
            given_name: profile.given_name,
            family_name: profile.family_name,
            email: user.email().map(str::to_string),
            email_verified: user.email_verified(),
            created_at: user.created_at,
        }
    }
}

/// GET /api/v1/users/me
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me::of(&caller(&state, &headers).await?)))
}

#[derive(Deserialize)]
struct ProfilePatch {
    given_name: Option<String>,
    family_name: Option<String>,
    /// Empty removes it; a new one needs `current_password`.
    email: Option<String>,
    current_password: Option<String>,
}

/// PATCH /api/v1/users/me: the fields named change, the rest stay. With verification on, a new
/// email is mailed a link and changes once it is used (`email_pending` says where it went).
async fn update_me(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    patch: Result<Json<ProfilePatch>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = caller(&state, &headers).await?;
    let patch = body(patch)?;
    let current = Profile::of(&user);
    let profile = Profile {
        given_name: patch.given_name.unwrap_or(current.given_name),
        family_name: patch.family_name.unwrap_or(current.family_name),
        email: patch.email.unwrap_or(current.email),
    };
    let password = patch.current_password.unwrap_or_default();
    let service = state.self_service();
    let saved = self_service::update_profile(&service, &user, &profile, password, ip).await?;
    let pending = match saved.map_err(ApiError::refused)? {
        ProfileSaved::Saved => None,
        ProfileSaved::AddressPending(address) => Some(address),
    };
    let user = state.store.user(&user.id).await?.unwrap_or(user);
    let mut answer = serde_json::to_value(Me::of(&user)).map_err(crate::error::Error::internal)?;
    answer["email_pending"] = pending.into();
    Ok(Json(answer))
}

/// 204 for a change made, the API's error for one refused.
fn done(refused: Option<self_service::AccountChangeRefused>) -> Result<StatusCode, ApiError> {
    refused.map_or(Ok(StatusCode::NO_CONTENT), |refused| {
        Err(ApiError::refused(refused))
    })
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// POST /api/v1/users/me/password: every session and refresh-token grant of the user ends, and
/// with them the access token of the call (an app holds no browser session to keep).
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    change: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&state, &headers).await?;
    let change = body(change)?;
    let passwords = (change.current_password, change.new_password);
    let service = state.self_service();
    done(self_service::change_password(&service, &user, "", passwords, ip).await?)
}

#[derive(Deserialize)]
struct Close {
    password: String,
}

/// DELETE /api/v1/users/me: closes the account (inactive; an administrator can reopen it).
async fn close(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    close: Result<Json<Close>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&state, &headers).await?;
    let close = body(close)?;
    let service = state.self_service();
    done(self_service::deactivate(&service, &user, close.password, ip).await?)
}

#[derive(Serialize)]
struct SessionJson {
    id: String,
    signed_in_at: i64,
    amr: Vec<String>,
}

/// GET /api/v1/users/me/sessions: the user's signed-in browsers.
async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionJson>>, ApiError> {
    let user = caller(&state, &headers).await?;
    let listed = session::list(state.store.as_ref(), &user.id, clock::now()).await?;
    Ok(Json(
        listed
            .into_iter()
            .map(|listed| SessionJson {
                id: listed.session.sid,
                signed_in_at: listed.session.authentication.auth_time,
                amr: listed.session.authentication.amr,
            })
            .collect(),
    ))
}

/// DELETE /api/v1/users/me/sessions/{id}: signs that session out, with its grants.
async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(sid): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = caller(&state, &headers).await?;
    let listed = session::list(state.store.as_ref(), &user.id, clock::now()).await?;
    if !listed.iter().any(|listed| listed.session.sid == sid) {
        return Err(ApiError::not_found("no such session"));
    }
    let service = state.self_service();
    done(self_service::end_session(&service, &user.id, "", &sid).await?)
}
