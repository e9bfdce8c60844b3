//! SCIM 2.0 (RFC 7643 schemas, RFC 7644 protocol): admins provision users and groups under
//! `{issuer}/scim/v2`, with bearer tokens of scope `scim` from the client_credentials grant.

mod discovery;
pub mod error;
pub mod filter;
mod groups;
mod operations;
pub mod patch;
pub mod query;
pub mod representation;
pub mod schema;
mod users;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{Map, Value};

use crate::account::password::PasswordHasher;
use crate::state::AppState;
use crate::store::Store;
use crate::tokens::issuer::TokenIssuer;
use crate::tokens::scope;
use crate::web::bearer;
use error::{ScimError, ScimResult, ScimType};
use groups::Groups;
use operations::ResourceKind;
use users::Users;

/// The media type of every SCIM body (RFC 7644 §3.1).
pub const MEDIA_TYPE: &str = "application/scim+json";

/// The scope a token needs to call the SCIM API.
pub const SCOPE: &str = scope::SCIM;

/// Where the SCIM API is mounted, below the issuer.
pub const BASE_PATH: &str = "/scim/v2";

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{id}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route("/.search", post(operations::search_all))
        .merge(resource_routes::<Users>())
        .merge(resource_routes::<Groups>())
        // RFC 7644 §3.11: `/Me` is optional; unsupported endpoints answer 501.
        .route("/Me", any(|| async { not_implemented("/Me") }))
        .route("/Bulk", any(|| async { not_implemented("/Bulk") }))
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .method_not_allowed_fallback(|| async {
            ScimError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(middleware::from_fn_with_state(state, require_scim_token))
}

fn resource_routes<K: ResourceKind>() -> Router<AppState> {
    let endpoint = K::TYPE.endpoint;
    Router::new()
        .route(
            endpoint,
            get(operations::list::<K>).post(operations::create::<K>),
        )
        .route(
            &format!("{endpoint}/.search"),
            post(operations::search::<K>),
        )
        .route(
            &format!("{endpoint}/{{id}}"),
            get(operations::get::<K>)
                .put(operations::replace::<K>)
                .patch(operations::patch::<K>)
                .delete(operations::delete::<K>),
        )
}

fn not_implemented(what: &str) -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} is not supported"),
    )
}

/// Only client tokens (client_credentials) with scope `scim` may call the API: a user's token
/// must never administer users, whatever scope its client may request.
async fn require_scim_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match check_token(&state.tokens, request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

async fn check_token(tokens: &TokenIssuer, headers: &HeaderMap) -> ScimResult<()> {
    let token = bearer::from_header(headers).ok_or(crate::error::Error::MissingBearerToken)?;
    let (_, record) = tokens.validate_access_token(token).await?;
    if record.user_id.is_some() || !scope::has(&record.scope, SCOPE) {
        return Err(crate::error::Error::oauth(
            crate::error::ErrorCode::InsufficientScope,
            "the token lacks the scim scope",
        )
        .into());
    }
    Ok(())
}

/// A SCIM JSON response.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
        body.to_string(),
    )
        .into_response()
}

/// What the SCIM operations touch: the directory in the store, the hasher for `password`
/// writes, and the issuer every `Location` and `$ref` starts from.
pub struct Directory<'a> {
    store: &'a dyn Store,
    passwords: &'a PasswordHasher,
    issuer: &'a str,
}

impl<'a> Directory<'a> {
    pub fn of(state: &'a AppState) -> Self {
        Directory {
            store: state.store.as_ref(),
            passwords: &state.passwords,
            // `Config::validate` already dropped any trailing `/`.
            issuer: &state.config.issuer,
        }
    }

    /// The absolute URL of a SCIM endpoint path (`/Users/…`).
    pub fn location(&self, path: &str) -> String {
        format!("{}{BASE_PATH}{path}", self.issuer)
    }
}

/// A request body that must be a JSON object, with no U+0000 in any name or string (no stored
/// value can hold one: PostgreSQL refuses it in text and JSON).
pub fn json_object(body: &Bytes) -> ScimResult<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) if holds_nul(&object) => Err(ScimError::bad_request(
            ScimType::InvalidValue,
            "a string in the body holds U+0000, which no value can hold",
        )),
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        )),
        Err(err) => Err(ScimError::bad_request(
            ScimType::InvalidSyntax,
            format!("the body is not valid JSON: {err}"),
        )),
    }
}

fn holds_nul(object: &Map<String, Value>) -> bool {
    fn value_holds_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().any(value_holds_nul),
            Value::Object(object) => holds_nul(object),
            _ => false,
        }
    }
    object
        .iter()
        .any(|(name, value)| name.contains('\0') || value_holds_nul(value))
}
