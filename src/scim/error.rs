//! SCIM errors (RFC 7644 §3.12): a JSON body with the Error schema, the HTTP status as a string
//! and, for 400s and some 409s, a `scimType`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorCode, Failure};
use crate::store::StoreError;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// `scimType` values of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::Sensitive => "sensitive",
        }
    }
}

#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<ScimType>,
    detail: String,
    /// RFC 6750 §3 challenge for 401s and 403s.
    challenge: Option<String>,
    /// What failed inside, carried to the request middleware (see [`Failure`]).
    failure: Option<Failure>,
}

pub type ScimResult<T> = Result<T, ScimError>;

impl ScimError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
            challenge: None,
            failure: None,
        }
    }

    /// A 400 with its `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            scim_type: Some(scim_type),
            ..Self::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// §3.14: the resource changed since the version the client named.
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "the resource changed: its version no longer matches If-Match",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn bearer(status: StatusCode, error: Option<ErrorCode>, detail: String) -> Self {
        let challenge = match error {
            None => "Bearer realm=\"tessera\"".to_string(),
            Some(code) => format!(
                "Bearer realm=\"tessera\", error=\"{}\", scope=\"scim\"",
                code.as_str()
            ),
        };
        ScimError {
            challenge: Some(challenge),
            ..Self::new(status, detail)
        }
    }
}

impl From<StoreError> for ScimError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => ScimError {
                scim_type: Some(ScimType::Uniqueness),
                ..Self::new(StatusCode::CONFLICT, format!("{what} already exists"))
            },
            StoreError::MissingReference(what) => {
                Self::bad_request(ScimType::InvalidValue, format!("{what} does not exist"))
            }
            StoreError::Unsupported(what) => Self::bad_request(ScimType::InvalidFilter, what),
            StoreError::InvalidValue(_) => Self::bad_request(
                ScimType::InvalidValue,
                "a value holds characters that are not allowed",
            ),
            other => Error::Store(other).into(),
        }
    }
}

/// Protocol and internal errors in SCIM dress: bearer-token failures keep their RFC 6750
/// status and challenge; store and internal failures are logged and shown without detail.
impl From<Error> for ScimError {
    fn from(err: Error) -> Self {
        if let Error::Store(store) = err {
            return match store {
                StoreError::Backend(_) | StoreError::Unavailable(_) => {
                    from_public_parts(Error::Store(store))
                }
                other => other.into(),
            };
        }
        from_public_parts(err)
    }
}

fn from_public_parts(err: Error) -> ScimError {
    let missing_token = matches!(err, Error::MissingBearerToken);
    let (code, description) = err.public_parts();
    let scim = match code {
        ErrorCode::InvalidToken if missing_token => {
            ScimError::bearer(StatusCode::UNAUTHORIZED, None, description)
        }
        ErrorCode::InvalidToken | ErrorCode::InsufficientScope => {
            ScimError::bearer(code.status(), Some(code), description)
        }
        ErrorCode::InvalidRequest => ScimError::bad_request(ScimType::InvalidValue, description),
        _ => ScimError::new(code.status(), description),
    };
    ScimError {
        failure: err.failure(),
        ..scim
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        // Exactly the members of the Error schema: strict clients (scim2-models) refuse others,
        // so the request id travels only in the `X-Request-Id` header here.
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = scim_type.as_str().into();
        }
        let mut response = super::json_response(self.status, &body);
        if let Some(failure) = self.failure {
            response.extensions_mut().insert(failure);
        }
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
