//! Registering clients (the CLI and the seed file use this; no dynamic registration yet).

use crate::config::lifetime_bounds;
use crate::keys::SigningAlg;
use crate::oauth::{grants, redirect_uri};
use crate::secret;
use crate::store::{Client, Store, StoreError};
use crate::tokens::scope;

pub const DEFAULT_SCOPE: &str = "openid profile email";

#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty means `authorization_code`.
    pub grant_types: Vec<String>,
    /// `None` means [`DEFAULT_SCOPE`].
    pub scope: Option<String>,
    pub public: bool,
    pub skip_consent: bool,
    pub require_mfa: bool,
    /// Sign-ins need a passkey (acr `phr`).
    pub require_phishing_resistant: bool,
    /// `None` means RS256.
    pub id_token_signed_response_alg: Option<String>,
    /// Absolute URIs of the resource servers this client is (RFC 7662 §4, RFC 8707 §2).
    pub resource_servers: Vec<String>,
    /// `None` means the server's lifetimes.
    pub access_token_seconds: Option<u32>,
    pub refresh_token_seconds: Option<u32>,
}

pub struct Registered {
    pub client: Client,
    /// The generated secret of a confidential client, in clear: shown once, stored only hashed.
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    Invalid(String),
    #[error("client {0:?} already exists")]
    Duplicate(String),
    #[error(transparent)]
    Store(StoreError),
}

fn check_client_id(client_id: &str) -> Result<(), RegistrationError> {
    // RFC 6749 Appendix A.1: client_id is VSCHAR; we also forbid spaces, which break Basic auth UIs.
    let printable = client_id.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if client_id.is_empty() || client_id.len() > 128 || !printable {
        return Err(RegistrationError::Invalid(
            "client id must be 1 to 128 printable ASCII characters without spaces".into(),
        ));
    }
    // A client's own tokens (client_credentials) carry its id as `sub`, and user ids are UUIDs:
    // a UUID-shaped client id could name a user to a resource server (RFC 9068 §2.2, §5;
    // security review finding 22).
    if uuid::Uuid::try_parse(client_id).is_ok() {
        return Err(RegistrationError::Invalid(
            "client id must not be a UUID: user ids are, and a client's tokens name it as sub"
                .into(),
        ));
    }
    Ok(())
}

fn build(reg: ClientRegistration) -> Result<Client, RegistrationError> {
    let invalid = RegistrationError::Invalid;
    check_client_id(&reg.client_id)?;
    let grant_types = if reg.grant_types.is_empty() {
        vec!["authorization_code".to_string()]
    } else {
        reg.grant_types
    };
    if let Some(unknown) = grant_types.iter().find(|g| !grants::is_supported(g)) {
        return Err(invalid(format!(
            "unknown grant {unknown:?} (use {})",
            grants::names().collect::<Vec<_>>().join(", ")
        )));
    }
    let has = |grant: &str| grant_types.iter().any(|g| g == grant);
    if has("authorization_code") && reg.redirect_uris.is_empty() {
        return Err(invalid(
            "--redirect-uri is required for the authorization_code grant".into(),
        ));
    }
    if reg.public && has("client_credentials") {
        return Err(invalid(
            "a public client cannot use client_credentials".into(),
        ));
    }
    for uri in reg
        .redirect_uris
        .iter()
        .chain(&reg.post_logout_redirect_uris)
    {
        redirect_uri::validate_for_registration(uri).map_err(invalid)?;
    }
    for uri in &reg.resource_servers {
        check_resource_uri(uri).map_err(invalid)?;
    }
    check_lifetime(
        "access_token_seconds",
        reg.access_token_seconds,
        &lifetime_bounds::ACCESS_TOKEN,
    )
    .map_err(invalid)?;
    check_lifetime(
        "refresh_token_seconds",
        reg.refresh_token_seconds,
        &lifetime_bounds::REFRESH_TOKEN,
    )
    .map_err(invalid)?;
    let scope = reg.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
    let scope = scope::canonical(&scope::parse(scope).map_err(|e| invalid(e.to_string()))?);
    let alg = reg
        .id_token_signed_response_alg
        .as_deref()
        .unwrap_or("RS256");
    let alg: SigningAlg = alg.parse().map_err(invalid)?;
    Ok(Client {
        client_id: reg.client_id,
        secret_hash: None,
        redirect_uris: reg.redirect_uris,
        post_logout_redirect_uris: reg.post_logout_redirect_uris,
        grant_types,
        scope,
        id_token_signed_response_alg: alg.to_string(),
        require_mfa: reg.require_mfa,
        require_phishing_resistant: reg.require_phishing_resistant,
        skip_consent: reg.skip_consent,
        resource_servers: reg.resource_servers,
        access_token_seconds: reg.access_token_seconds,
        refresh_token_seconds: reg.refresh_token_seconds,
    })
}

/// RFC 8707 §2: a resource is an absolute URI without a fragment.
fn check_resource_uri(uri: &str) -> Result<(), String> {
    match url::Url::parse(uri) {
        Ok(parsed) if parsed.fragment().is_none() && !crate::input::has_control(uri) => Ok(()),
        _ => Err(format!(
            "resource server {uri:?} must be an absolute URI without a fragment"
        )),
    }
}

fn check_lifetime(
    name: &str,
    seconds: Option<u32>,
    bounds: &std::ops::RangeInclusive<u64>,
) -> Result<(), String> {
    match seconds {
        Some(n) if !bounds.contains(&u64::from(n)) => Err(format!(
            "{name} must be between {} and {}",
            bounds.start(),
            bounds.end()
        )),
        _ => Ok(()),
    }
}

/// Validates and stores a client; a confidential client gets a generated 256-bit secret.
pub async fn register(
    store: &dyn Store,
    reg: ClientRegistration,
) -> Result<Registered, RegistrationError> {
    let public = reg.public;
    let mut client = build(reg)?;
    let secret = (!public).then(secret::generate);
    client.secret_hash = secret.as_deref().map(secret::hash);
    match store.insert_client(&client).await {
        Ok(()) => Ok(Registered { client, secret }),
        Err(StoreError::Conflict(_)) => Err(RegistrationError::Duplicate(client.client_id)),
        Err(err) => Err(RegistrationError::Store(err)),
    }
}

/// Validates and stores a client with the secret its operator chose (the seed file), replacing a
/// client of the same id.
pub async fn put(
    store: &dyn Store,
    reg: ClientRegistration,
    secret: Option<&str>,
) -> Result<Client, RegistrationError> {
    let mut client = build(reg)?;
    client.secret_hash = secret.map(secret::hash);
    store
        .put_client(&client)
        .await
        .map_err(RegistrationError::Store)?;
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_app() -> ClientRegistration {
        ClientRegistration {
            client_id: "web".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let client = build(web_app()).unwrap();
        assert_eq!(client.grant_types, ["authorization_code"]);
        assert_eq!(client.scope, "email openid profile");
        assert_eq!(client.id_token_signed_response_alg, "RS256");

        let mut no_uri = web_app();
        no_uri.redirect_uris.clear();
        assert!(build(no_uri).is_err());
        let mut bad_grant = web_app();
        bad_grant.grant_types = vec!["password".into()];
        assert!(build(bad_grant).is_err());
        let mut public_cc = web_app();
        public_cc.public = true;
        public_cc.grant_types = vec!["client_credentials".into()];
        assert!(build(public_cc).is_err());
        let mut cleartext = web_app();
        cleartext.redirect_uris = vec!["http://app.example/cb".into()];
        assert!(build(cleartext).is_err());
        let mut spaced = web_app();
        spaced.client_id = "my app".into();
        assert!(build(spaced).is_err());
        let mut like_a_user = web_app();
        like_a_user.client_id = uuid::Uuid::new_v4().to_string();
        assert!(
            build(like_a_user).is_err(),
            "a client's sub could name a user"
        );
        let mut relative_resource = web_app();
        relative_resource.resource_servers = vec!["/api".into()];
        assert!(build(relative_resource).is_err());
        let mut endless = web_app();
        endless.access_token_seconds = Some(10 * 86_400);
        assert!(build(endless).is_err());
        let mut tuned = web_app();
        tuned.resource_servers = vec!["https://api.example/".into()];
        tuned.access_token_seconds = Some(120);
        tuned.refresh_token_seconds = Some(86_400);
        let tuned = build(tuned).unwrap();
        assert!(tuned.is_resource_server());
        assert_eq!(tuned.access_token_seconds, Some(120));
    }
}
