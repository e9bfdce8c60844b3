//! The table of environment variables: each one's name, meaning, default and how it sets the
//! configuration. The parser walks it, and the README's configuration table is generated from it
//! (a test fails when the two drift apart).

use std::ops::RangeInclusive;
use std::time::Duration;

use super::settings::{lifetime_bounds as bounds, CorsOrigins, StoreBackend};
use super::{Config, ConfigError};
use super::{EmailVerification, SmtpRelay};

pub struct Variable {
    pub name: &'static str,
    /// Markdown, as the README shows it.
    pub meaning: &'static str,
    /// Markdown. A default in backticks is the variable's own value: setting it changes nothing.
    pub default: &'static str,
    pub apply: fn(&mut Config, &Value) -> Result<(), ConfigError>,
}

impl Variable {
    /// The default's value when it is one (in backticks), which [`Config::default`] applies.
    pub fn documented_value(&self) -> Option<&'static str> {
        let rest = self.default.strip_prefix('`')?;
        rest.split('`').next()
    }
}

/// A variable's value as set, with its name for the error message.
pub struct Value<'a> {
    pub name: &'static str,
    pub text: &'a str,
}

impl Value<'_> {
    /// An error that repeats the value.
    fn invalid(&self, why: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{}={:?} {why}", self.name, self.text))
    }

    /// An error that does not repeat the value, for secrets.
    fn refused(&self, why: impl std::fmt::Display) -> ConfigError {
        ConfigError(format!("{} {why}", self.name))
    }

    fn whole_number(&self, min: u64) -> Result<u64, ConfigError> {
        match self.text.trim().parse::<u64>() {
            Ok(n) if n >= min => Ok(n),
            _ if min > 0 => Err(self.invalid(format!("is not a whole number of at least {min}"))),
            _ => Err(self.invalid("is not a whole number")),
        }
    }

    fn within(&self, bounds: RangeInclusive<u64>) -> Result<u64, ConfigError> {
        match self.text.trim().parse::<u64>() {
            Ok(n) if bounds.contains(&n) => Ok(n),
            _ => Err(self.invalid(format!(
                "is not a whole number from {} to {}",
                bounds.start(),
                bounds.end()
            ))),
        }
    }

    fn seconds(&self, min: u64) -> Result<Duration, ConfigError> {
        self.whole_number(min).map(Duration::from_secs)
    }

    fn seconds_within(&self, bounds: RangeInclusive<u64>) -> Result<Duration, ConfigError> {
        self.within(bounds).map(Duration::from_secs)
    }

    /// A count of at least one that fits a `u32`.
    fn count(&self) -> Result<u32, ConfigError> {
        u32::try_from(self.whole_number(1)?).map_err(|_| self.invalid("is too large"))
    }

    /// A 256-bit key, base64 or base64url encoded.
    fn key(&self) -> Result<[u8; 32], ConfigError> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use base64::Engine;
        let trimmed = self.text.trim();
        let bytes = STANDARD
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('=')))
            .map_err(|_| self.refused("is not base64"))?;
        bytes
            .try_into()
            .map_err(|_| self.refused("must decode to exactly 32 bytes"))
    }
}

/// Every variable, in the README's order.
pub static VARIABLES: &[Variable] = &[
    Variable {
        name: "TESSERA_ISSUER",
        meaning: "issuer URL, exactly as in `iss` and discovery (a trailing `/` is dropped)",
        default: "`http://127.0.0.1:8080`",
        apply: |config, value| {
            config.issuer = value.text.to_string();
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_BIND",
        meaning: "listen address",
        default: "`127.0.0.1:8080`",
        apply: |config, value| {
            config.bind = value
                .text
                .parse()
                .map_err(|_| value.invalid("is not an address like 127.0.0.1:8080"))?;
            Ok(())
        },
    },
    Variable {
        name: "STORE_BACKEND",
        meaning: "`sql` (SQLite or PostgreSQL, chosen by `DATABASE_URL`), `hybrid` (users in \
                  memory, replicated through Redis; tokens in Redis), `memory`; see [Running in \
                  production](#running-in-production)",
        default: "`sql`",
        apply: |config, value| {
            config.store.backend = match value.text {
                "sql" => StoreBackend::Sql,
                "hybrid" => StoreBackend::Hybrid,
                "memory" => StoreBackend::Memory,
                _ => return Err(value.invalid("is unknown (use sql, hybrid or memory)")),
            };
            Ok(())
        },
    },
    Variable {
        name: "DATABASE_URL",
        meaning: "`sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST:PORT/DB` \
                  (`?sslmode=require` for TLS)",
        default: "`sqlite://tessera.db?mode=rwc`",
        apply: |config, value| {
            config.store.database_url = value.text.to_string();
            Ok(())
        },
    },
    Variable {
        name: "DATABASE_MAX_CONNECTIONS",
        meaning: "connections in this instance's pool",
        default: "`10`",
        apply: |config, value| {
            config.store.pool.max_connections = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "DATABASE_ACQUIRE_TIMEOUT_SECONDS",
        meaning: "how long a request waits for a connection before it fails with 503",
        default: "`5`",
        apply: |config, value| {
            config.store.pool.acquire_timeout = value.seconds(0)?;
            Ok(())
        },
    },
    Variable {
        name: "REDIS_URL",
        meaning: "Redis (`redis://HOST:6379/`): the hybrid backend's codes, tokens, sessions, \
                  keys, second factors and passkeys, its log of user changes and its outbox; on \
                  every backend the shared brute-force counters; on the sql backend also the \
                  access-token cache",
        default: "unset",
        apply: |config, value| {
            config.store.redis_url = Some(value.text.to_string());
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_TOKEN_CACHE_SECONDS",
        meaning: "how long Redis may cache an access token's record for introspection and \
                  userinfo (sql backend with `REDIS_URL`); `0` = no cache",
        default: "`30`",
        apply: |config, value| {
            config.store.token_cache_ttl = value.seconds(0)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_ACCOUNT_MAX_FAILURES",
        meaning: "wrong passwords for one user name (existing or not) before it is locked",
        default: "`5`",
        apply: |config, value| {
            config.limits.account.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_IP_MAX_FAILURES",
        meaning: "wrong passwords and TOTP codes from one client IP before it is locked out of \
                  signing in",
        default: "`50`",
        apply: |config, value| {
            config.limits.ip.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_CLIENT_IP_MAX_FAILURES",
        meaning: "failed client authentications (token, introspection, revocation) from one \
                  client IP before its further failures get 429",
        default: "`50`",
        apply: |config, value| {
            config.limits.client_ip.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_IP_MAX_SIGN_IN_STARTS",
        meaning: "sign-ins one client IP may start at `/authorize`, and passkey ceremonies it \
                  may start at `/login/passkey/start`, in the window (each is stored until it \
                  expires); the start that reaches it locks the address, and further requests \
                  are sent back with `error=temporarily_unavailable` (a passkey start: 429)",
        default: "`1000`",
        apply: |config, value| {
            config.limits.sign_in_starts.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MAIL_LINK_MAX_REQUESTS",
        meaning: "mailed links (password reset, email verification) one address may ask for in \
                  the window, whether or not an account has it; further requests get 429 (as for \
                  the next variable, without saying which limit was hit)",
        default: "`5`",
        apply: |config, value| {
            config.limits.mail_link_address.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MAIL_LINK_IP_MAX_REQUESTS",
        meaning: "mailed links one client IP may ask for in the window",
        default: "`20`",
        apply: |config, value| {
            config.limits.mail_link_ip.max_failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_FAILURE_WINDOW_SECONDS",
        meaning: "the sliding window those failures are counted in",
        default: "`900`",
        apply: |config, value| {
            let window = value.seconds(1)?;
            config.limits.each_rule(|rule| rule.window = window);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_LOCKOUT_SECONDS",
        meaning: "how long a lock lasts (`Retry-After` says what is left)",
        default: "`900`",
        apply: |config, value| {
            let lockout = value.seconds(1)?;
            config.limits.each_rule(|rule| rule.lockout = lockout);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_WEBHOOK_URLS",
        meaning: "comma-separated http(s) URLs that receive every audit event (see [Audit events \
                  and webhooks](#audit-events-and-webhooks))",
        default: "none",
        apply: |config, value| {
            config.webhooks.urls = value
                .text
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(String::from)
                .collect();
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_WEBHOOK_SECRET",
        meaning: "HMAC-SHA256 key of the `Tessera-Signature` header, at least 32 characters; \
                  required with URLs",
        default: "unset",
        apply: |config, value| {
            config.webhooks.secret = value.text.to_string();
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_WEBHOOK_MAX_ATTEMPTS",
        meaning: "delivery attempts before an event is dead",
        default: "`8`",
        apply: |config, value| {
            config.webhooks.max_attempts = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_WEBHOOK_RETRY_SECONDS",
        meaning: "wait after the first failed attempt; it doubles each time, at most an hour",
        default: "`10`",
        apply: |config, value| {
            // Backoff never waits more than an hour anyway.
            config.webhooks.retry_base = value.seconds(1)?.min(Duration::from_secs(3600));
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_SMTP_URL",
        meaning: "the SMTP server mail goes through: `smtp://HOST:PORT` (plain, for a local \
                  relay), `smtp://HOST:PORT?tls=starttls`, or `smtps://USER:PASSWORD@HOST:465`; \
                  a password needs TLS. Unset: no mail, and no password recovery",
        default: "unset",
        apply: |config, value| {
            config.mail.relay =
                Some(SmtpRelay::parse(value.text).map_err(|why| value.refused(why))?);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MAIL_FROM",
        meaning: "the `From` of every mail (`Tessera <id@example.com>`); required with \
                  `TESSERA_SMTP_URL`",
        default: "unset",
        apply: |config, value| {
            config.mail.from = Some(value.text.trim().to_string());
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MAIL_RETRY_SECONDS",
        meaning: "wait after a message's first failed try (the SMTP server down or refusing); \
                  it doubles each time, at most an hour, and the tenth failure makes the \
                  message dead (`tessera events dead`)",
        default: "`30`",
        apply: |config, value| {
            config.mail.retry_base = value.seconds(1)?.min(Duration::from_secs(3600));
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_EMAIL_VERIFICATION",
        meaning: "`off`, `optional` (a new or changed address is mailed a link; `email_verified` \
                  says whether it was opened) or `required` (also: a user whose address is not \
                  verified cannot finish a sign-in for any client, and is asked to open the \
                  link)",
        default: "optional with `TESSERA_SMTP_URL`, else off",
        apply: |config, value| {
            let parsed = EmailVerification::parse(value.text);
            config.mail.verification =
                Some(parsed.ok_or_else(|| value.invalid("is not off, optional or required"))?);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_PASSWORD_MIN_LENGTH",
        meaning: "the shortest password a user may choose (8–64), at sign-up, reset, the account \
                  page and SCIM; see [Passwords](#passwords) for the rest of the rule",
        default: "`8`",
        apply: |config, value| {
            config.password_min_length = value.within(8..=64)? as usize;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_SIGNUP",
        meaning: "`off` (administrators create accounts), `open` (anyone may, at `/signup`, \
                  linked from the login page; `prompt=create` opens it) or `invite` (only with \
                  a link from `tessera user invite`, which `open` takes too)",
        default: "`off`",
        apply: |config, value| {
            let (open, invitations) = match value.text.trim() {
                "off" => (false, false),
                "open" => (true, true),
                "invite" => (false, true),
                _ => return Err(value.invalid("is not off, open or invite")),
            };
            config.signup.open = open;
            config.signup.invitations = invitations;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_SIGNUP_EMAIL_DOMAINS",
        meaning: "comma-separated domains (`example.com,example.org`) sign-up addresses must be \
                  at",
        default: "any",
        apply: |config, value| {
            config.signup.email_domains = value
                .text
                .split(',')
                .map(|domain| domain.trim().to_ascii_lowercase())
                .filter(|domain| !domain.is_empty())
                .collect();
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_PASSWORD_RESET_SECONDS",
        meaning: "how long a mailed password-reset link works (60–86,400)",
        default: "`1800` (30 min)",
        apply: |config, value| {
            config.mail.reset_link_lifetime = value.seconds_within(60..=86_400)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_CORS_ORIGINS",
        meaning: "origins (`https://app.example,http://localhost:3000`) or `*` whose browser apps \
                  may call discovery, JWKS, token, userinfo and revocation; pages, introspection \
                  and SCIM never answer cross-origin",
        default: "none",
        apply: |config, value| {
            config.web.cors_origins = CorsOrigins::parse(value.text)
                .map_err(|e| ConfigError(format!("{}: {e}", value.name)))?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_CIRCUIT_FAILURES",
        meaning: "store failures in a row that open the circuit breaker (requests needing the \
                  store then get 503 at once)",
        default: "`5`",
        apply: |config, value| {
            config.circuit.failures = value.count()?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_CIRCUIT_OPEN_SECONDS",
        meaning: "how long the circuit stays open before one trial request",
        default: "`5`",
        apply: |config, value| {
            config.circuit.open = value.seconds(1)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_TRUSTED_PROXIES",
        meaning: "reverse proxies in front of Tessera that append to `X-Forwarded-For`; the \
                  client IP is the entry that many from the right. `0` uses the connection's \
                  address. Set it only when no request can reach Tessera without passing them, \
                  or a caller chooses their own address",
        default: "`0`",
        apply: |config, value| {
            config.web.trusted_proxies = value.whole_number(0)? as usize;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_SEED_FILE",
        meaning: "TOML file of `[[users]]` and `[[clients]]` applied at start-up, idempotently \
                  (see below)",
        default: "unset",
        apply: |config, value| {
            config.seed_file = Some(value.text.to_string());
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_KEY_RELOAD_SECONDS",
        meaning: "how often signing keys are re-read from the store (rotation by the CLI or \
                  another instance)",
        default: "`60`",
        apply: |config, value| {
            config.keys.reload_interval = value.seconds(1)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_KEY_PUBLISH_AHEAD_SECONDS",
        meaning: "how long a new signing key is in the JWKS before it signs, on top of one key \
                  reload (another instance publishes it only at its next reload); keep it at \
                  least the JWKS `max-age` (0–3,600)",
        default: "`300`",
        apply: |config, value| {
            config.keys.publish_ahead = value.seconds_within(0..=3_600)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_LOG",
        meaning: "log filter (`info`, `tessera=debug`, …)",
        default: "`info`",
        apply: |config, value| {
            config.logging.filter = value.text.to_string();
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_LOG_FORMAT",
        meaning: "`text`, or `json` for JSON lines on stdout",
        default: "`text`",
        apply: |config, value| {
            config.logging.json = match value.text {
                "text" => false,
                "json" => true,
                _ => return Err(value.invalid("is unknown (use text or json)")),
            };
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_ENCRYPTION_KEY",
        meaning: "32 bytes, base64: seals TOTP seeds and queued mail at rest. Required unless the \
                  issuer is a loopback http URL (development, where a public development key is \
                  used with a warning). Make one with `head -c 32 /dev/urandom \\| base64`",
        default: "unset",
        apply: |config, value| {
            config.encryption_key = Some(value.key()?);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_ACCESS_TOKEN_SECONDS",
        meaning: "access-token lifetime (60–86,400); a client's `--access-token-seconds` \
                  overrides it",
        default: "`600`",
        apply: |config, value| {
            config.lifetimes.access_token = value.seconds_within(bounds::ACCESS_TOKEN)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_ID_TOKEN_SECONDS",
        meaning: "ID-token lifetime (60–86,400)",
        default: "`3600`",
        apply: |config, value| {
            config.lifetimes.id_token = value.seconds_within(bounds::ID_TOKEN)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_REFRESH_TOKEN_SECONDS",
        meaning: "refresh-token lifetime, renewed at each rotation (300–31,536,000); a client's \
                  `--refresh-token-seconds` overrides it",
        default: "`2592000` (30 days)",
        apply: |config, value| {
            config.lifetimes.refresh_token = value.seconds_within(bounds::REFRESH_TOKEN)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_REFRESH_REUSE_GRACE_SECONDS",
        meaning: "grace window for refresh-token reuse (see below); `0` = off",
        default: "`0` (off)",
        apply: |config, value| {
            let grace = value.seconds(0)?;
            config.lifetimes.refresh_reuse_grace = (!grace.is_zero()).then_some(grace);
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_CODE_SECONDS",
        meaning: "authorization-code lifetime (10–600, RFC 6749 §4.1.2)",
        default: "`60`",
        apply: |config, value| {
            config.lifetimes.code = value.seconds_within(bounds::CODE)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_SESSION_SECONDS",
        meaning: "SSO session lifetime (60–2,592,000)",
        default: "`28800` (8 h)",
        apply: |config, value| {
            config.lifetimes.session = value.seconds_within(bounds::SESSION)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_PURGE_SECONDS",
        meaning: "how often expired rows are purged (1–3,600)",
        default: "`300`",
        apply: |config, value| {
            config.purge.interval = value.seconds_within(bounds::PURGE)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MFA_MAX_FAILURES",
        meaning: "second-factor attempts per account in 5 minutes (1–100)",
        default: "`5`",
        apply: |config, value| {
            config.mfa.max_failures = value.within(1..=100)? as u32;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_HEADER_TIMEOUT_SECONDS",
        meaning: "a request head must arrive within this; also how long a kept-alive connection \
                  may idle, and the longest pause inside a request body (1–300)",
        default: "`10`",
        apply: |config, value| {
            config.transport.header_timeout = value.seconds_within(1..=300)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_REQUEST_TIMEOUT_SECONDS",
        meaning: "a request not answered within this gets 408 (1–600)",
        default: "`30`",
        apply: |config, value| {
            config.transport.request_timeout = value.seconds_within(1..=600)?;
            Ok(())
        },
    },
    Variable {
        name: "TESSERA_MAX_CONNECTIONS",
        meaning: "connections served at once; more wait in the kernel's accept queue (keep it \
                  under the process's file-descriptor limit)",
        default: "`1000`",
        apply: |config, value| {
            config.transport.max_connections = value.within(1..=1_000_000)? as usize;
            Ok(())
        },
    },
];

/// The README's configuration table: a header and a row per variable.
pub fn markdown_table() -> String {
    let mut table = String::from("| variable | meaning | default |\n|---|---|---|\n");
    for variable in VARIABLES {
        table += &format!(
            "| `{}` | {} | {} |\n",
            variable.name, variable.meaning, variable.default
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table: from its header to the first line that is not a row.
    fn readme_table() -> String {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let start = readme
            .find("| variable | meaning | default |")
            .expect("the README has a configuration table");
        readme[start..]
            .lines()
            .take_while(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    #[test]
    fn the_readme_table_is_the_variables_table() {
        let generated = markdown_table();
        assert!(
            readme_table() == generated,
            "README.md's configuration table differs from src/config/variables.rs; replace it \
             with:\n\n{generated}"
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
    }

    /// A default the README shows as a value (in backticks) is its variable's own: applying it
    /// again changes nothing, so no two variables fight over a setting.
    #[test]
    fn documented_defaults_are_the_defaults() {
        let defaults = format!("{:?}", Config::default());
        let mut checked = 0;
        for variable in VARIABLES {
            let Some(text) = variable.documented_value() else {
                continue;
            };
            let mut config = Config::default();
            let value = Value {
                name: variable.name,
                text,
            };
            (variable.apply)(&mut config, &value).expect("a documented default is valid");
            assert_eq!(format!("{config:?}"), defaults, "{}", variable.name);
            checked += 1;
        }
        assert!(checked > 30, "only {checked} defaults were checked");
    }
}
