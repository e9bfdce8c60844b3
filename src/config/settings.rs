//! Settings that other modules take from the configuration, as plain values: they import them
//! from here, so the configuration imports nothing of theirs.

use std::time::Duration;

/// Connection pool settings (`DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT_SECONDS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with 503: short, so an outage
    /// answers quickly instead of piling up requests.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// How many failures a key may collect in `window` before it is locked for `lockout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

/// The limits of each kind of key (`TESSERA_*` variables, see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Default for Limits {
    fn default() -> Self {
        let rule = |max_failures, minutes: u64| Rule {
            max_failures,
            window: Duration::from_secs(minutes * 60),
            lockout: Duration::from_secs(minutes * 60),
        };
        Limits {
            account: rule(5, 15),
            ip: rule(50, 15),
            client_ip: rule(50, 15),
            sign_in_starts: rule(1000, 15),
        }
    }
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
