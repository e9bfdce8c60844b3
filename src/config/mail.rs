//! The mail settings (`TESSERA_SMTP_URL`, `TESSERA_MAIL_FROM`) and the SMTP URL they are read from.

use std::fmt;
use std::time::Duration;

use percent_encoding::percent_decode_str;

/// Outgoing mail: where it goes, whom it is from, how long its links work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    /// `None`: no mail, so no flow that needs one (password recovery) is offered.
    pub relay: Option<SmtpRelay>,
    /// The `From` of every message, checked at start-up.
    pub from: Option<String>,
    /// How long a password-reset link works.
    pub reset_link_lifetime: Duration,
    /// The wait before a failed message is tried again, doubled for each further try.
    pub retry_base: Duration,
    /// Tries before a message is dead (kept and listed by `tessera events dead`).
    pub max_attempts: u32,
    /// `TESSERA_EMAIL_VERIFICATION`; `None` (unset) is [`Mail::verification`]'s default.
    pub verification: Option<EmailVerification>,
}

/// Whether users prove their address (`TESSERA_EMAIL_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailVerification {
    /// No verification mail; `email_verified` stays false.
    Off,
    /// Addresses can be verified, and a new or changed one is mailed a link.
    Optional,
    /// As optional, and a user whose address is not verified cannot finish a sign-in.
    Required,
}

impl EmailVerification {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "off" => Some(EmailVerification::Off),
            "optional" => Some(EmailVerification::Optional),
            "required" => Some(EmailVerification::Required),
            _ => None,
        }
    }
}

impl Mail {
    /// The verification in force: as set, else optional when mail is configured.
    pub fn verification(&self) -> EmailVerification {
        match (self.verification, &self.relay) {
            (Some(set), _) => set,
            (None, Some(_)) => EmailVerification::Optional,
            (None, None) => EmailVerification::Off,
        }
    }
}

/// An SMTP server, from `smtp://HOST:PORT` (plain, for a local relay), `smtp://…?tls=starttls`
/// (RFC 3207) or `smtps://USER:PASSWORD@HOST:465` (implicit TLS, RFC 8314 §3.3).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpRelay {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// User and password for SMTP AUTH, from the URL's user part.
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    Plain,
    StartTls,
    Tls,
}

/// Never prints the password.
impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl SmtpRelay {
    /// Reads an SMTP URL; the error never repeats it, since it may hold a password.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let url = url::Url::parse(raw.trim()).map_err(|_| "is not a URL")?;
        let host = url.host_str().ok_or("has no host")?.to_string();
        let starttls = match url.query() {
            None => false,
            Some("tls=starttls") if url.scheme() == "smtp" => true,
            Some(_) => return Err("takes no query but `?tls=starttls` (with smtp://)"),
        };
        let (security, default_port) = match url.scheme() {
            "smtp" if starttls => (SmtpSecurity::StartTls, 587),
            "smtp" => (SmtpSecurity::Plain, 25),
            "smtps" => (SmtpSecurity::Tls, 465),
            _ => return Err("must start with smtp:// or smtps://"),
        };
        let decode = |part: &str| percent_decode_str(part).decode_utf8().map(String::from);
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) => Some(
                decode(user)
                    .and_then(|user| Ok((user, decode(password)?)))
                    .map_err(|_| "has a user part that is not UTF-8")?,
            ),
            (_, None) => return Err("names a user without a password"),
        };
        if credentials.is_some() && security == SmtpSecurity::Plain {
            return Err("would send its password in the clear: use smtps:// or ?tls=starttls");
        }
        Ok(SmtpRelay {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds_of_smtp_url_are_read() {
        let plain = SmtpRelay::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.security),
            ("127.0.0.1", 2525, SmtpSecurity::Plain)
        );
        let starttls = SmtpRelay::parse("smtp://mail.example?tls=starttls").unwrap();
        assert_eq!(
            (starttls.port, starttls.security),
            (587, SmtpSecurity::StartTls)
        );
        let tls = SmtpRelay::parse("smtps://me%40example:p%3Ass@mail.example").unwrap();
        assert_eq!((tls.port, tls.security), (465, SmtpSecurity::Tls));
        assert_eq!(
            tls.credentials,
            Some(("me@example".to_string(), "p:ss".to_string()))
        );
        assert!(!format!("{tls:?}").contains("p:ss"));
    }

    #[test]
    fn unsafe_or_unknown_smtp_urls_are_refused() {
        for url in [
            "mail.example:25",
            "http://mail.example",
            "smtp://me:secret@mail.example",
            "smtp://mail.example?tls=maybe",
            "smtps://mail.example?tls=starttls",
            "smtp://me@mail.example?tls=starttls",
        ] {
            assert!(SmtpRelay::parse(url).is_err(), "{url}");
        }
    }
}
