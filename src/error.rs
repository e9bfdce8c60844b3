//! One error type for the whole server. Protocol errors carry their RFC error code; each surface
//! renders them its own way (JSON here for the token and API endpoints, a redirect or an HTML page
//! at the authorization endpoint, see `oauth::authorize` and `ui`), all through
//! [`Error::render`]. Internal failures are shown only as `server_error` /
//! `temporarily_unavailable`; their detail travels on the response as a [`Failure`], which the
//! request middleware logs and counts (and feeds to the circuit breaker).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::store::StoreError;
use crate::web::{self, request_id};

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

/// What failed inside the server behind an error response: a response extension, never shown.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The store could not be reached: the circuit breaker counts these. A failure the store
    /// answered with says nothing about its health, and a client could provoke it at will.
    StoreUnreachable(String),
    /// The store answered with an error.
    Store(String),
    /// The store refused a value (text it cannot hold): the client's doing, not ours.
    RefusedValue(String),
    Internal(String),
}

impl Failure {
    /// Logs the failure in the request's span.
    pub fn log(&self) {
        match self {
            Failure::StoreUnreachable(detail) | Failure::Store(detail) => {
                tracing::error!(error = %detail, "store failure")
            }
            Failure::RefusedValue(detail) => {
                tracing::info!(error = %detail, "value refused by the store")
            }
            Failure::Internal(detail) => tracing::error!(error = %detail, "internal error"),
        }
    }
}

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

    /// The code and description a client may see.
    pub fn public_parts(&self) -> (ErrorCode, String) {
        let unavailable = || {
            (
                ErrorCode::TemporarilyUnavailable,
                "the service is temporarily unavailable, try again".into(),
            )
        };
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
            Error::Store(StoreError::InvalidValue(_)) => (
                ErrorCode::InvalidRequest,
                "a parameter holds characters that are not allowed".into(),
            ),
            Error::Store(_) | Error::Unavailable => unavailable(),
            Error::Internal(_) => (ErrorCode::ServerError, "internal server error".into()),
        }
    }

    /// The detail a client must not see, if any.
    pub fn failure(&self) -> Option<Failure> {
        Some(match self {
            Error::Store(StoreError::InvalidValue(detail)) => Failure::RefusedValue(detail.clone()),
            Error::Store(err @ StoreError::Unavailable(_)) => {
                Failure::StoreUnreachable(err.to_string())
            }
            Error::Store(err) => Failure::Store(err.to_string()),
            Error::Internal(detail) => Failure::Internal(detail.clone()),
            _ => return None,
        })
    }

    /// The response `render` makes of the public parts, carrying the [`Failure`] behind it.
    pub fn render(&self, render: impl FnOnce(ErrorCode, String) -> Response) -> Response {
        let (code, description) = self.public_parts();
        let mut response = render(code, description);
        if let Some(failure) = self.failure() {
            response.extensions_mut().insert(failure);
        }
        response
    }
}

/// The JSON rendering (RFC 6749 §5.2), used by the token, userinfo and other API endpoints.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let retry_after = match self {
            Error::Throttled { retry_after } => Some(retry_after),
            _ => None,
        };
        let mut response = self.render(|code, description| {
            let status = match retry_after {
                Some(_) => StatusCode::TOO_MANY_REQUESTS,
                None => code.status(),
            };
            let challenge = bearer_error_challenge(code, &description);
            let body = serde_json::json!({
                "error": code.as_str(),
                "error_description": description,
                "request_id": request_id::current(),
            });
            let mut response = (status, Json(body)).into_response();
            if let Some(value) = challenge {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        });
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(wait) = retry_after {
            headers.insert(header::RETRY_AFTER, web::retry_after(wait));
        }
        let challenge = match self {
            Error::InvalidClient { basic: true } => "Basic realm=\"tessera\", charset=\"UTF-8\"",
            // RFC 6750 §3.1: a request without any token gets a challenge without an error code.
            Error::MissingBearerToken => "Bearer realm=\"tessera\"",
            _ => return response,
        };
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }
}

/// RFC 6750 §3: a protected resource names the error in its Bearer challenge.
fn bearer_error_challenge(code: ErrorCode, description: &str) -> Option<HeaderValue> {
    if !matches!(code, ErrorCode::InvalidToken | ErrorCode::InsufficientScope) {
        return None;
    }
    let challenge = format!(
        "Bearer error=\"{}\", error_description=\"{}\"",
        code.as_str(),
        description.replace('"', "'")
    );
    HeaderValue::from_str(&challenge).ok()
}
