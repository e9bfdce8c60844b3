//! The configuration's sections, one per concern, as plain values: other modules import them from
//! here, so the configuration imports nothing of theirs. A section's `Default` is all zeros and
//! empty: the defaults are [`super::Config::default`]'s, taken from the variables table.

use std::time::Duration;

/// The bounds of every configurable lifetime, in seconds: long enough to be usable, short
/// enough that a typo cannot make a token live for years.
pub mod lifetime_bounds {
    use std::ops::RangeInclusive;

    pub const ACCESS_TOKEN: RangeInclusive<u64> = 60..=86_400;
    pub const ID_TOKEN: RangeInclusive<u64> = 60..=86_400;
    pub const REFRESH_TOKEN: RangeInclusive<u64> = 300..=31_536_000;
    /// RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED".
    pub const CODE: RangeInclusive<u64> = 10..=600;
    pub const SESSION: RangeInclusive<u64> = 60..=2_592_000;
    pub const PURGE: RangeInclusive<u64> = 1..=3_600;
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreBackend {
    #[default]
    Sql,
    Hybrid,
    Memory,
}

/// Where data lives ([`crate::store`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub database_url: String,
    pub pool: PoolSettings,
    pub redis_url: Option<String>,
    /// How long Redis may cache an access token's record (sql backend with `REDIS_URL`); 0 turns
    /// the cache off.
    pub token_cache_ttl: Duration,
}

/// Connection pool settings (`DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with 503: short, so an outage
    /// answers quickly instead of piling up requests.
    pub acquire_timeout: Duration,
}

/// How many failures a key may collect in `window` before it is locked for `lockout`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

/// The brute-force limits of each kind of key ([`crate::throttle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Wrong passwords for one user name, whether or not such a user exists.
    pub account: Rule,
    /// Wrong passwords and second-factor codes from one client IP.
    pub ip: Rule,
    /// Failed client authentications at the token, introspection and revocation endpoints from one
    /// client IP.
    pub client_ip: Rule,
    /// Sign-ins started at the authorization endpoint from one client IP (each is stored until
    /// it expires).
    pub sign_in_starts: Rule,
    /// Mailed links (password reset, email verification) asked for one address, whether or not
    /// an account has it.
    pub mail_link_address: Rule,
    /// Mailed links asked for from one client IP.
    pub mail_link_ip: Rule,
}

impl Limits {
    /// `TESSERA_FAILURE_WINDOW_SECONDS` and `TESSERA_LOCKOUT_SECONDS` set every rule.
    pub(super) fn each_rule(&mut self, mut set: impl FnMut(&mut Rule)) {
        for rule in [
            &mut self.account,
            &mut self.ip,
            &mut self.client_ip,
            &mut self.sign_in_starts,
            &mut self.mail_link_address,
            &mut self.mail_link_ip,
        ] {
            set(rule);
        }
    }
}

/// Wrong TOTP or recovery codes allowed per account in `failure_window` before the step is
/// refused, right code included, until the window ends ([`crate::account::mfa`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaAttempts {
    pub max_failures: u32,
    pub failure_window: Duration,
}

/// How long what Tessera hands out stays valid; a client's registration may shorten the tokens'.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    pub access_token: Duration,
    pub id_token: Duration,
    pub refresh_token: Duration,
    /// RFC 9700 §4.14.2 grace: a rotated refresh token presented again within this window gets
    /// one retry (its unused successor is replaced) instead of revoking the family. Off by default.
    pub refresh_reuse_grace: Option<Duration>,
    /// RFC 6749 §4.1.2 recommends at most ten minutes; a minute is plenty for a redirect.
    pub code: Duration,
    pub session: Duration,
    /// How long a user may take on the login and consent pages.
    pub interaction: Duration,
}

impl Lifetimes {
    /// How long a signed token can stay valid: a retired signing key is published that long.
    pub fn longest_signed_token(&self) -> Duration {
        self.access_token.max(self.id_token)
    }
}

/// Signing-key rotation as every instance sees it ([`crate::keys`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySchedule {
    /// How often signing keys are re-read from the store (rotation by the CLI or another
    /// instance).
    pub reload_interval: Duration,
    /// How long a new signing key is published before it signs: the JWKS cache lifetime
    /// (`max-age` of `/jwks`), so relying parties that cache the JWKS know a key before they see
    /// a token it signed.
    pub publish_ahead: Duration,
}

/// How often expired rows are purged, and how many rows per table one delete takes (a round
/// keeps deleting batches until one comes back short).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purge {
    pub interval: Duration,
    pub batch: u32,
}

/// How the listener treats slow, idle and numerous connections ([`crate::serve`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    /// A request head must arrive in full within this (slowloris).
    pub header_timeout: Duration,
    /// A request, body included, must be answered within this.
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

/// Who stands between the client and Tessera, and which browser origins may call it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebPolicy {
    /// How many reverse proxies in front of Tessera append to `X-Forwarded-For`; 0 trusts none
    /// and takes the client IP from the connection.
    pub trusted_proxies: usize,
    /// Who may call discovery, JWKS, token, userinfo and revocation from a browser on another
    /// origin.
    pub cors_origins: CorsOrigins,
}

/// Who may create their own account (`TESSERA_SIGNUP`, `TESSERA_SIGNUP_EMAIL_DOMAINS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signup {
    /// Anyone may create an account at `/signup`; off, only administrators create them.
    pub open: bool,
    /// Invitations (`tessera user invite`) may be redeemed at `/signup` (open or invite).
    pub invitations: bool,
    /// The domains sign-up addresses must be at (lower case); empty: any.
    pub email_domains: Vec<String>,
}

impl Signup {
    /// Whether `email`'s domain is one sign-up accepts (ASCII case does not matter).
    pub fn accepts(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map_or("", |(_, domain)| domain);
        self.email_domains.is_empty()
            || self
                .email_domains
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(domain))
    }
}

/// Store failures in a row that open the circuit breaker, and how long it then stays open before
/// a trial request ([`crate::circuit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CircuitSettings {
    pub failures: u32,
    pub open: Duration,
}

/// Where audit events go ([`crate::events`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// What is logged and how ([`crate::logging`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logging {
    pub filter: String,
    /// JSON lines instead of text.
    pub json: bool,
}

/// Which origins may call the cross-origin endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    #[default]
    None,
    Any,
    /// Exact origins (`https://app.example`, `http://localhost:3000`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or a comma-separated list of origins (scheme, host and port only).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value == "*" {
            return Ok(CorsOrigins::Any);
        }
        let origins = value
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(origin)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if origins.is_empty() {
            CorsOrigins::None
        } else {
            CorsOrigins::List(origins)
        })
    }
}

/// A browser sends an origin as `scheme://host[:port]`, nothing more.
fn origin(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|_| format!("{text:?} is not an origin"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https") || origin != text.trim_end_matches('/') {
        return Err(format!(
            "{text:?} is not an origin like https://app.example (scheme, host and port only)"
        ));
    }
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_exact_or_any() {
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::None));
        assert_eq!(
            CorsOrigins::parse("https://app.example, http://localhost:3000/"),
            Ok(CorsOrigins::List(vec![
                "https://app.example".into(),
                "http://localhost:3000".into()
            ]))
        );
        for bad in ["https://app.example/path", "app.example", "ftp://x.example"] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
