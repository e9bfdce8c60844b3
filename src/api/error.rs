//! The API's error shape (seed 002): `{"error": {"code", "message", "details",
//! "correlation_id", "timestamp"}}`, with the request id as correlation id, so a report can be
//! found in the logs. 401 and 403 carry `WWW-Authenticate` (RFC 6750 §3).

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::account::self_service::AccountChangeRefused;
use crate::error::{Error, Failure};
use crate::web::{request_id, retry_after};

/// Boxed: errors are rare, and `Result<_, ApiError>` stays small on the happy path.
pub struct ApiError(Box<Problem>);

struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// RFC 6750 §3 `error` for `WWW-Authenticate`.
    bearer_error: Option<&'static str>,
    retry_after: Option<Duration>,
    failure: Option<Failure>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Problem {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            bearer_error: None,
            retry_after: None,
            failure: None,
        }))
    }

    fn with(mut self, change: impl FnOnce(&mut Problem)) -> Self {
        change(&mut self.0);
        self
    }

    pub fn no_token() -> Self {
        let message = "a bearer access token is required";
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .with(|problem| problem.bearer_error = Some(""))
    }

    pub fn invalid_token() -> Self {
        let message = "the access token is not valid";
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
            .with(|problem| problem.bearer_error = Some("invalid_token"))
    }

    pub fn insufficient_scope() -> Self {
        let message = "the access token lacks scope account";
        Self::new(StatusCode::FORBIDDEN, "insufficient_scope", message).with(|problem| {
            problem.bearer_error = Some("insufficient_scope");
            problem.details = json!({"scope": crate::tokens::scope::ACCOUNT});
        })
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A change the account rules refused, in the account page's words.
    pub fn refused(refused: AccountChangeRefused) -> Self {
        let message = refused.message();
        match refused {
            AccountChangeRefused::WrongPassword => {
                Self::new(StatusCode::FORBIDDEN, "wrong_password", message)
            }
            AccountChangeRefused::WrongCode => {
                Self::new(StatusCode::FORBIDDEN, "wrong_code", message)
            }
            AccountChangeRefused::Locked(wait) | AccountChangeRefused::TooManyLinks(wait) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
                    .with(|problem| problem.retry_after = Some(wait))
            }
            AccountChangeRefused::Invalid(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_value", message)
            }
            AccountChangeRefused::ChangedMeanwhile => {
                Self::new(StatusCode::CONFLICT, "conflict", message)
            }
        }
    }
}

/// What callers may see of an internal error; the failure itself rides on the response for the
/// logs and the circuit breaker, as for every other error.
impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let (code, description) = err.public_parts();
        Self::new(code.status(), code.as_str(), description)
            .with(|problem| problem.failure = err.failure())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        Error::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = *self.0;
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let body = json!({"error": {
            "code": problem.code,
            "message": problem.message,
            "details": problem.details,
            "correlation_id": request_id::current(),
            "timestamp": timestamp,
        }});
        let mut response = (problem.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(error) = problem.bearer_error {
            let challenge = match error {
                "" => r#"Bearer realm="account""#.to_string(),
                error => format!(r#"Bearer realm="account", error="{error}""#),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(wait) = problem.retry_after {
            headers.insert(header::RETRY_AFTER, retry_after(wait));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(failure) = problem.failure {
            response.extensions_mut().insert(failure);
        }
        response
    }
}
