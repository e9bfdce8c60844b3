//! Typed configuration from the environment (CONTRACT.md lists the variables), validated once at
//! start-up so a bad value stops the process with one clear message instead of failing later.

use std::net::SocketAddr;
use std::time::Duration;
mod mail;
mod settings;
pub mod variables;

pub use mail::{EmailVerification, Mail, SmtpRelay, SmtpSecurity};

pub use settings::{
    lifetime_bounds, CircuitSettings, CorsOrigins, KeySchedule, Lifetimes, Limits, Logging,
    MfaAttempts, PoolSettings, Purge, Rule, Signup, StoreBackend, StoreSettings, Transport,
    WebPolicy, Webhooks,
};

/// The configuration, a section per concern; [`variables::VARIABLES`] says which variable sets
/// what.
#[derive(Debug, Clone)]
pub struct Config {
    /// Issuer identifier, without a trailing slash: exactly the `iss` of every token.
    pub issuer: String,
    pub bind: SocketAddr,
    pub store: StoreSettings,
    /// Users and clients applied at start-up ([`crate::seed`]).
    pub seed_file: Option<String>,
    pub logging: Logging,
    pub lifetimes: Lifetimes,
    pub keys: KeySchedule,
    pub purge: Purge,
    pub transport: Transport,
    pub web: WebPolicy,
    /// Seals secrets we must read back (TOTP seeds). `None` only in development (a loopback http
    /// issuer), where a fixed, publicly known key is used and a warning is logged.
    pub encryption_key: Option<[u8; 32]>,
    pub mfa: MfaAttempts,
    /// Brute-force limits on passwords, second-factor codes and client secrets.
    pub limits: Limits,
    pub circuit: CircuitSettings,
    pub webhooks: Webhooks,
    /// Outgoing mail, and the flows that need it.
    pub mail: Mail,
    pub signup: Signup,
    /// `TESSERA_PASSWORD_MIN_LENGTH`: the shortest password a user may choose.
    pub password_min_length: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Default for Config {
    /// The settings no variable sets, then every variable's documented default
    /// ([`variables::Variable::documented_value`]): the variables table is the one place a
    /// default is written.
    fn default() -> Self {
        let mut config = Config {
            issuer: String::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreSettings::default(),
            seed_file: None,
            logging: Logging::default(),
            lifetimes: Lifetimes {
                interaction: Duration::from_secs(15 * 60),
                ..Lifetimes::default()
            },
            keys: KeySchedule::default(),
            purge: Purge {
                batch: 1000,
                ..Purge::default()
            },
            transport: Transport::default(),
            web: WebPolicy::default(),
            encryption_key: None,
            mfa: MfaAttempts {
                failure_window: Duration::from_secs(300),
                ..MfaAttempts::default()
            },
            limits: Limits::default(),
            circuit: CircuitSettings::default(),
            webhooks: Webhooks::default(),
            mail: Mail {
                retry_base: Duration::from_secs(30),
                max_attempts: 10,
                ..Mail::default()
            },
            signup: Signup::default(),
            password_min_length: 0,
        };
        for variable in variables::VARIABLES {
            if let Some(text) = variable.documented_value() {
                let value = variables::Value {
                    name: variable.name,
                    text,
                };
                (variable.apply)(&mut config, &value)
                    .expect("the variables table documents valid defaults");
            }
        }
        config
    }
}

impl Config {
    /// Reads the environment over the defaults and validates the result.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        for variable in variables::VARIABLES {
            if let Some(text) = var(variable.name) {
                let value = variables::Value {
                    name: variable.name,
                    text: &text,
                };
                (variable.apply)(&mut config, &value)?;
            }
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
            .any(|scheme| self.store.database_url.starts_with(scheme))
        {
            return Err(ConfigError(format!(
                "DATABASE_URL must be sqlite://PATH?mode=rwc or postgres://…; got a {:?} URL",
                self.store
                    .database_url
                    .split(':')
                    .next()
                    .unwrap_or_default()
            )));
        }
        self.validate_webhooks()?;
        if self.mail.relay.is_none() && self.mail.verification() != EmailVerification::Off {
            return Err(ConfigError(
                "TESSERA_EMAIL_VERIFICATION needs TESSERA_SMTP_URL (it mails links)".into(),
            ));
        }
        if self.mail.relay.is_some() && self.mail.from.is_none() {
            return Err(ConfigError(
                "TESSERA_MAIL_FROM is required with TESSERA_SMTP_URL".into(),
            ));
        }
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

    /// An absolute URL under the issuer, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
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
    use std::time::Duration;

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
        assert_eq!(config.store.database_url, "sqlite://tessera.db?mode=rwc");
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
            ("TESSERA_LOG_FORMAT", "yaml"),
            ("TESSERA_ENCRYPTION_KEY", "not base64!"),
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
        assert_eq!(config.lifetimes.access_token, secs(300));
        assert_eq!(config.lifetimes.id_token, secs(600));
        assert_eq!(config.lifetimes.refresh_token, secs(86_400));
        assert_eq!(config.lifetimes.code, secs(30));
        assert_eq!(config.lifetimes.session, secs(3600));
        assert_eq!(config.purge.interval, secs(10));
        assert_eq!(
            config.transport,
            Transport {
                header_timeout: secs(5),
                request_timeout: secs(20),
                max_connections: 64,
            }
        );
        assert_eq!(config.mfa.max_failures, 3);
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
        // A key that is refused is not repeated in the message, which goes to the log.
        let err = from(&[("TESSERA_ENCRYPTION_KEY", "c2hvcnQ=")]).unwrap_err();
        assert!(!err.to_string().contains("c2hvcnQ"), "{err}");
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
