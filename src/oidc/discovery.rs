//! OpenID Provider metadata (OIDC Discovery §3, RFC 8414), built with the `openidconnect` crate's
//! provider types and served from bytes serialized once at start-up. One document answers at
//! both well-known paths: OIDC's metadata is RFC 8414's with OpenID members added (RFC 8414 §5),
//! so the two can never disagree.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, IssuerUrl, JsonWebKeySetUrl,
    ProviderMetadata, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};

use crate::account::session;
use crate::config::Config;
use crate::oauth::grants;
use crate::state::AppState;
use crate::tokens::scope;
use crate::web::paths;

/// Metadata the `openidconnect` core type has no field for.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TesseraMetadata {
    /// RFC 7636 §6.2: S256 only.
    code_challenge_methods_supported: Vec<String>,
    /// RFC 9207 §3: the authorization response carries `iss`.
    authorization_response_iss_parameter_supported: bool,
    /// RFC 7009 / RFC 8414 §2.
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662 / RFC 8414 §2.
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// OpenID Connect RP-Initiated Logout 1.0 §2.1.
    end_session_endpoint: String,
    /// OpenID Connect Prompt Create 1.0 §4.1: `create` only while sign-up is open.
    prompt_values_supported: Vec<String>,
}

/// The `prompt` values the authorization endpoint takes (OIDC Core §3.1.2.1).
fn prompt_values(signup_open: bool) -> Vec<String> {
    let mut values = ["none", "login", "consent", "select_account"]
        .map(String::from)
        .to_vec();
    if signup_open {
        values.push("create".into());
    }
    values
}

impl AdditionalProviderMetadata for TesseraMetadata {}

type Metadata = ProviderMetadata<
    TesseraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Client authentication methods; `none` (public clients) where a public client may call.
fn client_auth_methods(with_none: bool) -> Vec<String> {
    let mut methods = vec![
        "client_secret_basic".to_string(),
        "client_secret_post".to_string(),
    ];
    if with_none {
        methods.push("none".into());
    }
    methods
}

/// The discovery document for `config`, as JSON bytes.
/// `pwd`: a password; `mfa`: two factors (password and TOTP or a passkey, or a passkey that
/// verified its user); `phr`: phishing-resistant (OpenID EAP ACR Values 1.0 §2: a passkey),
/// where the issuer can have passkeys. `acr_values` with `mfa` or `phr` demands it.
fn acr_values(config: &Config) -> Vec<AuthenticationContextClass> {
    let mut values = vec!["pwd", "mfa"];
    if crate::account::passkeys::relying_party_id(&config.issuer).is_some() {
        values.push(session::PHISHING_RESISTANT);
    }
    values
        .into_iter()
        .map(|acr| AuthenticationContextClass::new(acr.into()))
        .collect()
}

pub fn document(config: &Config) -> Result<Vec<u8>, String> {
    let url = |path: &str| config.endpoint(path);
    let metadata = Metadata::new(
        IssuerUrl::new(config.issuer.clone()).map_err(|e| e.to_string())?,
        AuthUrl::new(url(paths::AUTHORIZE)).map_err(|e| e.to_string())?,
        JsonWebKeySetUrl::new(url(paths::JWKS)).map_err(|e| e.to_string())?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ],
        TesseraMetadata {
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            revocation_endpoint: url(paths::REVOKE),
            revocation_endpoint_auth_methods_supported: client_auth_methods(true),
            introspection_endpoint: url(paths::INTROSPECT),
            introspection_endpoint_auth_methods_supported: client_auth_methods(false),
            end_session_endpoint: url(paths::LOGOUT),
            prompt_values_supported: prompt_values(config.signup.open),
        },
    )
    .set_token_endpoint(Some(
        TokenUrl::new(url(paths::TOKEN)).map_err(|e| e.to_string())?,
    ))
    .set_userinfo_endpoint(Some(
        UserInfoUrl::new(url(paths::USERINFO)).map_err(|e| e.to_string())?,
    ))
    .set_scopes_supported(Some(
        scope::SCOPES
            .iter()
            .filter(|s| s.advertised)
            .map(|s| Scope::new(s.name.into()))
            .collect(),
    ))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
    .set_acr_values_supported(Some(acr_values(config)))
    .set_grant_types_supported(Some(grant_types()?))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::None,
    ]))
    .set_claims_supported(Some(claims_supported()))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false))
    .set_claims_parameter_supported(Some(false));
    serde_json::to_vec(&metadata).map_err(|e| e.to_string())
}

pub async fn discovery(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.discovery_json.clone(),
    )
}

/// The registry's grant types ([`grants::GRANTS`]), as discovery names them.
fn grant_types() -> Result<Vec<CoreGrantType>, String> {
    grants::names()
        .map(|name| serde_json::from_value(name.into()).map_err(|e| e.to_string()))
        .collect()
}

/// The ID token's own claims (OIDC Core §2) and every claim a scope releases.
fn claims_supported() -> Vec<CoreClaimName> {
    let token_claims = [
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "sid",
    ];
    let scope_claims = scope::SCOPES.iter().flat_map(|s| s.claims.iter().copied());
    let mut names: Vec<&str> = Vec::new();
    for name in scope_claims.chain(token_claims) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| CoreClaimName::new(name.into()))
        .collect()
}
