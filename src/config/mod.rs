//! Typed configuration from the environment (CONTRACT.md lists the variables), validated once at
//! start-up so a bad value stops the process with one clear message instead of failing later.

use std::net::SocketAddr;
use std::time::Duration;

mod settings;

pub use settings::{CorsOrigins, Limits, PoolSettings, Rule};

/// The bounds of every configurable lifetime, in seconds: long enough to be usable, short
/// enough that a typo cannot make a token live for years.
pub mod lifetimes {
    use std::ops::RangeInclusive;

    pub const ACCESS_TOKEN: RangeInclusive<u64> = 60..=86_400;
    pub const ID_TOKEN: RangeInclusive<u64> = 60..=86_400;
    pub const REFRESH_TOKEN: RangeInclusive<u64> = 300..=31_536_000;
    /// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED".
    pub const CODE: RangeInclusive<u64> = 10..=600;
    pub const SESSION: RangeInclusive<u64> = 60..=2_592_000;
    pub const PURGE: RangeInclusive<u64> = 1..=3_600;
}

/// How the listener treats slow, idle and numerous connections ([`crate::serve`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// A request head must arrive in full within this (slowloris).
    pub header_timeout: Duration,
    /// A request, body included, must be answered within this.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    Sql,
    Hybrid,
    Memory,
}

/// Where audit events go ([`crate::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Empty: events are only kept (the audit trail), not sent.
    pub urls: Vec<String>,
    /// The HMAC key of the signature header; required with URLs.
    pub secret: String,
    /// Attempts before an event is dead.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further one.
    pub retry_base: Duration,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            urls: Vec::new(),
            secret: String::new(),
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer identifier, without a trailing slash: exactly the `iss` of every token.
    pub issuer: String,
    pub bind: SocketAddr,
    pub store_backend: StoreBackend,
    pub database_url: String,
    pub pool: PoolSettings,
    pub redis_url: Option<String>,
    /// `TESSERA_SEED_FILE`: users and clients applied at start-up ([`crate::seed`]).
    pub seed_file: Option<String>,
    pub log_filter: String,
    pub log_json: bool,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    /// RFC 6749 §4.1.2 recommends at most ten minutes; a minute is plenty for a redirect.
    pub code_ttl: Duration,
    pub session_ttl: Duration,
    /// How long a user may take on the login and consent pages.
    pub interaction_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// RFC 9700 §4.14.2 grace: a rotated refresh token presented again within this window gets one
    /// retry (its unused successor is replaced) instead of revoking the family. Off by default.
    pub refresh_reuse_grace: Option<Duration>,
    /// How often signing keys are re-read from the store (rotation by the CLI or another instance).
    pub key_reload_interval: Duration,
    /// How long a new signing key is published before it signs: the JWKS cache lifetime
    /// (`max-age` of `/jwks`), so relying parties that cache the JWKS know a key before they see
    /// a token it signed.
    pub key_publish_ahead: Duration,
    /// How often expired rows are purged, and how many rows per table one delete takes (a round
    /// keeps deleting batches until one comes back short).
    pub purge_interval: Duration,
    pub purge_batch: u32,
    pub transport: Transport,
    /// Seals secrets we must read back (TOTP seeds). `None` only in development (a loopback http
    /// issuer), where a fixed, publicly known key is used and a warning is logged.
    pub encryption_key: Option<[u8; 32]>,
    /// Wrong TOTP or recovery codes allowed per account in `mfa_failure_window` before the step is
    /// refused, right code included, until the window ends (`TESSERA_MFA_MAX_FAILURES`).
    pub mfa_max_failures: u32,
    pub mfa_failure_window: Duration,
    /// Brute-force limits on passwords, second-factor codes and client secrets.
    pub limits: Limits,
    /// How many reverse proxies in front of Tessera append to `X-Forwarded-For`; 0 trusts none
    /// and takes the client IP from the connection.
    pub trusted_proxies: usize,
    /// How long Redis may cache an access token's record (sql backend with `REDIS_URL`); 0 turns
    /// the cache off.
    pub token_cache_ttl: Duration,
    /// Store failures in a row that open the circuit breaker, and how long it then stays open
    /// before a trial request.
    pub circuit_failures: u32,
    pub circuit_open: Duration,
    /// `TESSERA_CORS_ORIGINS`: who may call discovery, JWKS, token, userinfo and revocation from
    /// a browser on another origin.
    pub cors_origins: CorsOrigins,
    pub webhooks: Webhooks,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://127.0.0.1:8080".into(),
            bind: "127.0.0.1:8080".parse().expect("valid default address"),
            store_backend: StoreBackend::Sql,
            database_url: "sqlite://tessera.db?mode=rwc".into(),
            pool: PoolSettings::default(),
            redis_url: None,
            seed_file: None,
            log_filter: "info".into(),
            log_json: false,
            access_token_ttl: Duration::from_secs(600),
            id_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            session_ttl: Duration::from_secs(8 * 3600),
            interaction_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: None,
            key_reload_interval: Duration::from_secs(60),
            key_publish_ahead: Duration::from_secs(300),
            purge_interval: Duration::from_secs(300),
            purge_batch: 1000,
            transport: Transport::default(),
            encryption_key: None,
            mfa_max_failures: 5,
            mfa_failure_window: Duration::from_secs(300),
            limits: Limits::default(),
            trusted_proxies: 0,
            token_cache_ttl: Duration::from_secs(30),
            circuit_failures: 5,
            circuit_open: Duration::from_secs(5),
            cors_origins: CorsOrigins::None,
            webhooks: Webhooks::default(),
        }
    }
}

impl Config {
    /// Reads the environment over the defaults and validates the result.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(issuer) = var("TESSERA_ISSUER") {
            config.issuer = issuer;
        }
        if let Some(bind) = var("TESSERA_BIND") {
            config.bind = bind.parse().map_err(|_| {
                ConfigError(format!(
                    "TESSERA_BIND={bind:?} is not an address like 127.0.0.1:8080"
                ))
            })?;
        }
        if let Some(backend) = var("STORE_BACKEND") {
            config.store_backend = match backend.as_str() {
                "sql" => StoreBackend::Sql,
                "hybrid" => StoreBackend::Hybrid,
                "memory" => StoreBackend::Memory,
                other => {
                    return Err(ConfigError(format!(
                        "STORE_BACKEND={other:?} is unknown (use sql, hybrid or memory)"
                    )))
                }
            };
        }
        if let Some(url) = var("DATABASE_URL") {
            config.database_url = url;
        }
        let positive = |name: &str| whole_number(&var, name, 1);
        let number = |name: &str| whole_number(&var, name, 0);
        let count = |name: &str| -> Result<Option<u32>, ConfigError> {
            whole_number(&var, name, 1)?
                .map(|n| u32::try_from(n).map_err(|_| ConfigError(format!("{name} is too large"))))
                .transpose()
        };
        if let Some(max) = count("DATABASE_MAX_CONNECTIONS")? {
            config.pool.max_connections = max;
        }
        if let Some(seconds) = number("DATABASE_ACQUIRE_TIMEOUT_SECONDS")? {
            config.pool.acquire_timeout = Duration::from_secs(seconds);
        }
        let within = |name: &str, bounds: &std::ops::RangeInclusive<u64>| {
            whole_number_within(&var, name, bounds)
        };
        for (name, bounds, field) in [
            (
                "TESSERA_ACCESS_TOKEN_SECONDS",
                &lifetimes::ACCESS_TOKEN,
                &mut config.access_token_ttl,
            ),
            (
                "TESSERA_ID_TOKEN_SECONDS",
                &lifetimes::ID_TOKEN,
                &mut config.id_token_ttl,
            ),
            (
                "TESSERA_REFRESH_TOKEN_SECONDS",
                &lifetimes::REFRESH_TOKEN,
                &mut config.refresh_token_ttl,
            ),
            (
                "TESSERA_CODE_SECONDS",
                &lifetimes::CODE,
                &mut config.code_ttl,
            ),
            (
                "TESSERA_SESSION_SECONDS",
                &lifetimes::SESSION,
                &mut config.session_ttl,
            ),
            (
                "TESSERA_PURGE_SECONDS",
                &lifetimes::PURGE,
                &mut config.purge_interval,
            ),
            (
                "TESSERA_HEADER_TIMEOUT_SECONDS",
                &(1..=300),
                &mut config.transport.header_timeout,
            ),
            (
                "TESSERA_REQUEST_TIMEOUT_SECONDS",
                &(1..=600),
                &mut config.transport.request_timeout,
            ),
        ] {
            if let Some(seconds) = within(name, bounds)? {
                *field = Duration::from_secs(seconds);
            }
        }
        if let Some(seconds) = within("TESSERA_KEY_PUBLISH_AHEAD_SECONDS", &(0..=3_600))? {
            config.key_publish_ahead = Duration::from_secs(seconds);
        }
        if let Some(max) = within("TESSERA_MAX_CONNECTIONS", &(1..=1_000_000))? {
            config.transport.max_connections = max as usize;
        }
        if let Some(max) = within("TESSERA_MFA_MAX_FAILURES", &(1..=100))? {
            config.mfa_max_failures = max as u32;
        }
        if let Some(seconds) = positive("TESSERA_KEY_RELOAD_SECONDS")? {
            config.key_reload_interval = Duration::from_secs(seconds);
        }
        if let Some(seconds) = number("TESSERA_TOKEN_CACHE_SECONDS")? {
            config.token_cache_ttl = Duration::from_secs(seconds);
        }
        if let Some(failures) = count("TESSERA_CIRCUIT_FAILURES")? {
            config.circuit_failures = failures;
        }
        if let Some(seconds) = positive("TESSERA_CIRCUIT_OPEN_SECONDS")? {
            config.circuit_open = Duration::from_secs(seconds);
        }
        if let Some(hops) = number("TESSERA_TRUSTED_PROXIES")? {
            config.trusted_proxies = hops as usize;
        }
        let limits = &mut config.limits;
        for (name, rule) in [
            ("TESSERA_ACCOUNT_MAX_FAILURES", &mut limits.account),
            ("TESSERA_IP_MAX_FAILURES", &mut limits.ip),
            ("TESSERA_CLIENT_IP_MAX_FAILURES", &mut limits.client_ip),
            ("TESSERA_IP_MAX_SIGN_IN_STARTS", &mut limits.sign_in_starts),
        ] {
            if let Some(max) = count(name)? {
                rule.max_failures = max;
            }
        }
        let window = positive("TESSERA_FAILURE_WINDOW_SECONDS")?;
        let lockout = positive("TESSERA_LOCKOUT_SECONDS")?;
        for rule in [
            &mut limits.account,
            &mut limits.ip,
            &mut limits.client_ip,
            &mut limits.sign_in_starts,
        ] {
            if let Some(seconds) = window {
                rule.window = Duration::from_secs(seconds);
            }
            if let Some(seconds) = lockout {
                rule.lockout = Duration::from_secs(seconds);
            }
        }
        if let Some(urls) = var("TESSERA_WEBHOOK_URLS") {
            config.webhooks.urls = urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(secret) = var("TESSERA_WEBHOOK_SECRET") {
            config.webhooks.secret = secret;
        }
        if let Some(attempts) = count("TESSERA_WEBHOOK_MAX_ATTEMPTS")? {
            config.webhooks.max_attempts = attempts;
        }
        if let Some(seconds) = positive("TESSERA_WEBHOOK_RETRY_SECONDS")? {
            // Backoff never waits more than an hour anyway.
            config.webhooks.retry_base = Duration::from_secs(seconds.min(3600));
        }
        if let Some(origins) = var("TESSERA_CORS_ORIGINS") {
            config.cors_origins = CorsOrigins::parse(&origins)
                .map_err(|e| ConfigError(format!("TESSERA_CORS_ORIGINS: {e}")))?;
        }
        config.redis_url = var("REDIS_URL");
        config.seed_file = var("TESSERA_SEED_FILE");
        if let Some(filter) = var("TESSERA_LOG") {
            config.log_filter = filter;
        }
        config.log_json = var("TESSERA_LOG_FORMAT").as_deref() == Some("json");
        if let Some(key) = var("TESSERA_ENCRYPTION_KEY") {
            config.encryption_key = Some(parse_key(&key)?);
        }
        if let Some(seconds) = number("TESSERA_REFRESH_REUSE_GRACE_SECONDS")? {
            config.refresh_reuse_grace = (seconds > 0).then(|| Duration::from_secs(seconds));
        }
        config.validate()?;
        Ok(config)
    }

    /// Normalises and checks the values that other code relies on.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.issuer = validate_issuer(&self.issuer)?;
        let known = ["sqlite:", "postgres:", "postgresql:"];
        if !known
            .iter()
            .any(|scheme| self.database_url.starts_with(scheme))
        {
            return Err(ConfigError(format!(
                "DATABASE_URL must be sqlite://PATH?mode=rwc or postgres://…; got a {:?} URL",
                self.database_url.split(':').next().unwrap_or_default()
            )));
        }
        self.validate_webhooks()?;
        if self.issuer.starts_with("http://") && !self.is_development() {
            return Err(ConfigError(format!(
                "TESSERA_ISSUER={:?}: plain http is for a loopback address only; use https",
                self.issuer
            )));
        }
        if self.encryption_key.is_none() && !self.is_development() {
            return Err(ConfigError(
                "TESSERA_ENCRYPTION_KEY is required unless the issuer is a loopback http URL \
                 (development); generate one with: head -c 32 /dev/urandom | base64"
                    .into(),
            ));
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let webhooks = &self.webhooks;
        for url in &webhooks.urls {
            let parsed = url::Url::parse(url).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                return Err(ConfigError(format!(
                    "TESSERA_WEBHOOK_URLS: {url:?} is not an http(s) URL"
                )));
            }
        }
        if !webhooks.urls.is_empty() && webhooks.secret.len() < 32 {
            return Err(ConfigError(
                "TESSERA_WEBHOOK_SECRET of at least 32 characters is required with \
                 TESSERA_WEBHOOK_URLS (receivers check the signature with it)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Development mode: the issuer is plain http on this machine.
    pub fn is_development(&self) -> bool {
        ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| {
                self.issuer
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            })
    }

    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// How long a signed token can stay valid: a retired signing key is published that long.
    pub fn longest_token_ttl(&self) -> Duration {
        self.access_token_ttl.max(self.id_token_ttl)
    }

    /// An absolute URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// The whole number in variable `name`, if set; refused below `min`.
fn whole_number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    min: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(text) = var(name) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ if min > 0 => Err(ConfigError(format!(
            "{name}={text:?} is not a whole number of at least {min}"
        ))),
        _ => Err(ConfigError(format!(
            "{name}={text:?} is not a whole number"
        ))),
    }
}

/// The whole number in variable `name`, if set; refused outside `bounds`.
fn whole_number_within(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    bounds: &std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ConfigError> {
    let Some(text) = var(name) else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if bounds.contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError(format!(
            "{name}={text:?} is not a whole number from {} to {}",
            bounds.start(),
            bounds.end()
        ))),
    }
}

/// A 256-bit key, base64 or base64url encoded.
fn parse_key(encoded: &str) -> Result<[u8; 32], ConfigError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let trimmed = encoded.trim();
    let bytes = STANDARD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
        .map_err(|_| ConfigError("TESSERA_ENCRYPTION_KEY is not base64".into()))?;
    bytes
        .try_into()
        .map_err(|_| ConfigError("TESSERA_ENCRYPTION_KEY must decode to exactly 32 bytes".into()))
}

/// OIDC Discovery §3: the issuer is an https URL with no query or fragment. Plain http is accepted
/// for local development only.
fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(raw)
        .map_err(|e| ConfigError(format!("TESSERA_ISSUER={raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(ConfigError(format!(
            "TESSERA_ISSUER={raw:?} must be an http(s) URL with a host"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError(format!(
            "TESSERA_ISSUER={raw:?} must not have a query or fragment"
        )));
    }
    // The issuer is compared as a string (OIDC Discovery §4.3) and decides whether cookies are
    // Secure: it must be written as URL parsers write it (lowercase scheme and host).
    let origin = url.origin().ascii_serialization();
    if !raw.starts_with(&origin) {
        return Err(ConfigError(format!(
            "TESSERA_ISSUER={raw:?} must be written in lowercase as {origin}…"
        )));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_match_the_contract() {
        let config = from(&[]).unwrap();
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://tessera.db?mode=rwc");
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        for (var, value) in [
            ("TESSERA_ISSUER", "not a url"),
            ("TESSERA_ISSUER", "https://idp.example?x=1"),
            ("TESSERA_ISSUER", "HTTPS://idp.example"),
            ("TESSERA_ISSUER", "https://IdP.example"),
            ("TESSERA_ISSUER", "http://idp.example"),
            ("TESSERA_BIND", "nowhere"),
            ("STORE_BACKEND", "mongo"),
            ("TESSERA_REFRESH_REUSE_GRACE_SECONDS", "soon"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("TESSERA_LOCKOUT_SECONDS", "-1"),
            ("TESSERA_TRUSTED_PROXIES", "one"),
            ("TESSERA_WEBHOOK_URLS", "ftp://hooks.example"),
            ("TESSERA_WEBHOOK_URLS", "https://hooks.example"),
            ("TESSERA_WEBHOOK_MAX_ATTEMPTS", "4294967296"),
            ("TESSERA_ACCESS_TOKEN_SECONDS", "59"),
            ("TESSERA_ACCESS_TOKEN_SECONDS", "86401"),
            ("TESSERA_CODE_SECONDS", "3600"),
            ("TESSERA_REFRESH_TOKEN_SECONDS", "forever"),
            ("TESSERA_SESSION_SECONDS", "0"),
            ("TESSERA_PURGE_SECONDS", "0"),
            ("TESSERA_HEADER_TIMEOUT_SECONDS", "0"),
            ("TESSERA_REQUEST_TIMEOUT_SECONDS", "601"),
            ("TESSERA_MAX_CONNECTIONS", "0"),
            ("TESSERA_MFA_MAX_FAILURES", "101"),
        ] {
            let err = from(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn lifetimes_and_transport_limits_are_read_within_their_bounds() {
        let config = from(&[
            ("TESSERA_ACCESS_TOKEN_SECONDS", "300"),
            ("TESSERA_ID_TOKEN_SECONDS", "600"),
            ("TESSERA_REFRESH_TOKEN_SECONDS", "86400"),
            ("TESSERA_CODE_SECONDS", "30"),
            ("TESSERA_SESSION_SECONDS", "3600"),
            ("TESSERA_PURGE_SECONDS", "10"),
            ("TESSERA_HEADER_TIMEOUT_SECONDS", "5"),
            ("TESSERA_REQUEST_TIMEOUT_SECONDS", "20"),
            ("TESSERA_MAX_CONNECTIONS", "64"),
            ("TESSERA_MFA_MAX_FAILURES", "3"),
        ])
        .unwrap();
        let secs = Duration::from_secs;
        assert_eq!(config.access_token_ttl, secs(300));
        assert_eq!(config.id_token_ttl, secs(600));
        assert_eq!(config.refresh_token_ttl, secs(86_400));
        assert_eq!(config.code_ttl, secs(30));
        assert_eq!(config.session_ttl, secs(3600));
        assert_eq!(config.purge_interval, secs(10));
        assert_eq!(
            config.transport,
            Transport {
                header_timeout: secs(5),
                request_timeout: secs(20),
                max_connections: 64,
            }
        );
        assert_eq!(config.mfa_max_failures, 3);
    }

    #[test]
    fn an_encryption_key_is_required_outside_development() {
        let err = from(&[("TESSERA_ISSUER", "https://idp.example")]).unwrap_err();
        assert!(err.to_string().contains("TESSERA_ENCRYPTION_KEY"));
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let config = from(&[
            ("TESSERA_ISSUER", "https://idp.example"),
            ("TESSERA_ENCRYPTION_KEY", key),
        ])
        .unwrap();
        assert_eq!(config.encryption_key, Some([0; 32]));
        assert!(from(&[("TESSERA_ISSUER", "http://127.0.0.1.evil.example")]).is_err());
        assert!(from(&[("TESSERA_ISSUER", "http://localhost:9000")])
            .unwrap()
            .is_development());
        assert!(from(&[("TESSERA_ENCRYPTION_KEY", "c2hvcnQ=")]).is_err());
    }

    #[test]
    fn issuer_loses_its_trailing_slash() {
        let config = from(&[
            ("TESSERA_ISSUER", "https://idp.example/"),
            (
                "TESSERA_ENCRYPTION_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ])
        .unwrap();
        assert_eq!(config.endpoint("/token"), "https://idp.example/token");
    }
}
