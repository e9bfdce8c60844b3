//! One error type for the whole server. Protocol errors carry their RFC error code; each surface
//! renders them its own way (JSON here for the token and API endpoints, a redirect or an HTML page
//! at the authorization endpoint, see `oauth::authorize` and `ui`). Internal failures are logged
//! with the request id and shown only as `server_error` / `temporarily_unavailable`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::http::request_id;
use crate::store::StoreError;

/// Error codes of RFC 6749 §4.1.2.1 / §5.2, OIDC Core §3.1.2.6 and RFC 6750 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    UnmetAuthenticationRequirements,
    InvalidToken,
    InsufficientScope,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied | ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol error the client may see in full.
    #[error("{}: {description}", code.as_str())]
    OAuth {
        code: ErrorCode,
        description: String,
    },
    /// Client authentication failed (RFC 6749 §5.2). `basic` records whether the client used the
    /// Authorization header, which obliges a `WWW-Authenticate` challenge.
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    /// A protected resource was called without any token (RFC 6750 §3.1: the challenge then
    /// carries no error code).
    #[error("a bearer token is required")]
    MissingBearerToken,
    /// Too many failed attempts from this caller: 429 with `Retry-After` (RFC 6585 §4).
    #[error("too many failed attempts")]
    Throttled { retry_after: std::time::Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store circuit breaker is open: refused without trying the store.
    #[error("the store circuit is open")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn oauth(code: ErrorCode, description: impl Into<String>) -> Self {
        Error::OAuth {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth(ErrorCode::InvalidGrant, description)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Error::Internal(err.to_string())
    }

    /// The code and description a client may see. Internal detail never leaves the server: it is
    /// logged here, once, with the request id of the span.
    pub fn public_parts(&self) -> (ErrorCode, String) {
        match self {
            Error::OAuth { code, description } => (*code, description.clone()),
            Error::InvalidClient { .. } => (
                ErrorCode::InvalidClient,
                "client authentication failed".into(),
            ),
            Error::MissingBearerToken => {
                (ErrorCode::InvalidToken, "a bearer token is required".into())
            }
            Error::Throttled { .. } => (
                ErrorCode::TemporarilyUnavailable,
                "too many failed attempts from this address; retry later".into(),
            ),
            Error::Store(StoreError::InvalidValue(detail)) => {
                tracing::info!(error = %detail, "value refused by the store");
                (
                    ErrorCode::InvalidRequest,
                    "a parameter holds characters that are not allowed".into(),
                )
            }
            Error::Store(err) => {
                tracing::error!(error = %err, "store failure");
                // Only an unreachable store counts toward the circuit breaker: an error the
                // store answered with says nothing about its health, and a client could
                // provoke it at will.
                if matches!(err, StoreError::Unavailable(_)) {
                    crate::http::observe::note_store_failure();
                }
                (
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable, try again".into(),
                )
            }
            Error::Unavailable => (
                ErrorCode::TemporarilyUnavailable,
                "the service is temporarily unavailable, try again".into(),
            ),
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (ErrorCode::ServerError, "internal server error".into())
            }
        }
    }
}

/// The JSON rendering (RFC 6749 §5.2), used by the token, userinfo and other API endpoints.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let basic = matches!(self, Error::InvalidClient { basic: true });
        let missing_token = matches!(self, Error::MissingBearerToken);
        let retry_after = match self {
            Error::Throttled { retry_after } => Some(retry_after),
            _ => None,
        };
        let (code, description) = self.public_parts();
        let body = serde_json::json!({
            "error": code.as_str(),
            "error_description": description,
            "request_id": request_id::current(),
        });
        let status = match retry_after {
            Some(_) => StatusCode::TOO_MANY_REQUESTS,
            None => code.status(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(wait) = retry_after {
            headers.insert(header::RETRY_AFTER, crate::http::retry_after(wait));
        }
        if basic {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\", charset=\"UTF-8\""),
            );
        }
        if missing_token {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\""),
            );
        } else if matches!(code, ErrorCode::InvalidToken | ErrorCode::InsufficientScope) {
            // RFC 6750 §3: a protected resource names the error in its Bearer challenge.
            let challenge = format!(
                "Bearer error=\"{}\", error_description=\"{}\"",
                code.as_str(),
                description.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
