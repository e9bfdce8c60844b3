//! Reading the mail a test server sent, from a real SMTP server (aiosmtpd) that keeps it.

use std::time::{Duration, Instant};

use tessera::config::SmtpRelay;
use tessera::Config;

use crate::harness::TestServer;
use crate::servers::Smtp;

/// A server that mails through `smtp`, retrying failed mail after a second.
pub async fn mailing_server(smtp: &Smtp, adjust: impl FnOnce(&mut Config)) -> TestServer {
    let url = smtp.url();
    TestServer::start_with(|config| {
        config.mail.relay = Some(SmtpRelay::parse(&url).unwrap());
        config.mail.from = Some("Tessera <id@tessera.test>".into());
        config.mail.retry_base = Duration::from_secs(1);
        adjust(config);
    })
    .await
}

/// A received message's subject and its text and HTML parts.
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn read(raw: &[u8]) -> (String, Mail) {
    use mailparse::MailHeaderMap;
    let parsed = mailparse::parse_mail(raw).expect("an RFC 5322 message");
    let header = |name| parsed.headers.get_first_value(name).unwrap_or_default();
    let part = |mime: &str| {
        let found = parsed.subparts.iter().find(|p| p.ctype.mimetype == mime);
        found.map(|p| p.get_body().unwrap()).unwrap_or_default()
    };
    let mail = Mail {
        subject: header("Subject"),
        text: part("text/plain"),
        html: part("text/html"),
    };
    (header("To"), mail)
}

/// The messages to `to` so far.
pub fn mails_to(smtp: &Smtp, to: &str) -> Vec<Mail> {
    smtp.messages()
        .iter()
        .map(|raw| read(raw))
        .filter(|(recipient, _)| recipient.contains(to))
        .map(|(_, mail)| mail)
        .collect()
}

/// Waits (up to 20 s) for a message to `to` with `subject`.
pub async fn mail_to(smtp: &Smtp, to: &str, subject: &str) -> Mail {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(mail) = mails_to(smtp, to)
            .into_iter()
            .find(|m| m.subject == subject)
        {
            return mail;
        }
        assert!(Instant::now() < deadline, "no mail {subject:?} to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The link to `path` in a message's text, which its HTML part carries too.
pub fn link_in(server: &TestServer, mail: &Mail, path: &str) -> String {
    let prefix = server.url(&format!("{path}?token="));
    let link = mail
        .text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no link in {}", mail.text));
    assert!(
        mail.html.contains(&link.replace('&', "&amp;")),
        "both parts carry it"
    );
    link.to_string()
}
