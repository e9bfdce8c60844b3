//! Mail. A message is rendered from askama templates (a text and an HTML part, under
//! `templates/mail/`), queued in the outbox as an event of kind `mail`, and sent over SMTP by
//! lettre from the outbox's delivery loop ([`crate::events::run`]): a mail server that is down
//! delays mail and loses none, and a message whose tries all failed is dead, listed by
//! `tessera events dead`.
//!
//! Messages carry single-use links, so the queued bodies are sealed ([`crate::sealing`]) for the
//! event that holds them, and blanked once sent.

mod messages;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::config::{Mail, SmtpSecurity};
use crate::events::{Courier, Retries};
use crate::sealing::Sealer;
use crate::store::events::{self, Channel, OutboxEvent};
use crate::store::{OutboxStore, StoreResult, UnixTime};

pub use messages::{EmailChanged, Invite, PasswordChanged, PasswordReset, VerifyEmail};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A message ready to queue.
pub struct Message {
    pub subject: String,
    body: Body,
}

/// The parts of a message: what is sealed in the outbox.
#[derive(Serialize, Deserialize)]
struct Body {
    text: String,
    html: String,
}

/// Queues messages. Exists only when mail is configured.
#[derive(Clone)]
pub struct Mailer {
    outbox: Arc<dyn OutboxStore + Send + Sync>,
    sealer: Sealer,
}

impl Mailer {
    pub fn new(
        settings: &Mail,
        outbox: Arc<dyn OutboxStore + Send + Sync>,
        sealer: Sealer,
    ) -> Option<Self> {
        settings.relay.as_ref()?;
        Some(Mailer { outbox, sealer })
    }

    /// Queues `message` to `to`, an address the caller has checked ([`is_deliverable`]).
    pub async fn send(&self, to: &str, message: Message, now: UnixTime) -> StoreResult<()> {
        let mut event = events::mail(to, &message.subject, now);
        let body = serde_json::to_vec(&message.body).expect("strings serialize");
        event.data["sealed"] = self.sealer.seal(&body, &event.id).into();
        self.outbox.enqueue(&event).await
    }
}

/// Whether `address` is one lettre can send to: checked before anything is queued for it.
pub fn is_deliverable(address: &str) -> bool {
    address.parse::<Mailbox>().is_ok()
}

/// Sends queued messages over SMTP.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    sealer: Sealer,
    retries: Retries,
}

impl Smtp {
    /// The sender for `settings`, `None` without a relay; fails on a bad `TESSERA_MAIL_FROM`.
    pub fn new(settings: &Mail, sealer: Sealer) -> anyhow::Result<Option<Self>> {
        let Some(relay) = &settings.relay else {
            return Ok(None);
        };
        let from = settings
            .from
            .as_deref()
            .context("TESSERA_MAIL_FROM is required with TESSERA_SMTP_URL")?
            .parse::<Mailbox>()
            .context("TESSERA_MAIL_FROM is not a mail address")?;
        let builder = match relay.security {
            SmtpSecurity::Plain => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&relay.host)
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&relay.host)?
            }
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&relay.host)?,
        };
        let mut builder = builder.port(relay.port).timeout(Some(SMTP_TIMEOUT));
        if let Some((user, password)) = &relay.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(Smtp {
            transport: builder.build(),
            from,
            sealer,
            retries: Retries {
                max_attempts: settings.max_attempts,
                base: settings.retry_base,
            },
        }))
    }

    fn message(&self, event: &OutboxEvent) -> Result<lettre::Message, String> {
        let field = |name: &str| event.event.data[name].as_str().ok_or(format!("no {name}"));
        let to = field("to")?
            .parse::<Mailbox>()
            .map_err(|_| "bad recipient")?;
        let body = self
            .sealer
            .open(field("sealed")?, &event.event.id)
            .map_err(|err| err.to_string())?;
        let body: Body = serde_json::from_slice(&body).map_err(|_| "corrupt body")?;
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(field("subject")?)
            .multipart(MultiPart::alternative_plain_html(body.text, body.html))
            .map_err(|err| err.to_string())
    }
}

#[async_trait::async_trait]
impl Courier for Smtp {
    const CHANNEL: Channel = Channel::Mail;
    const NAME: &'static str = "mail";

    fn longest_delivery(&self) -> Duration {
        SMTP_TIMEOUT
    }

    fn retries(&self) -> Retries {
        self.retries
    }

    /// The error names the SMTP reply or the connection failure, never the message.
    async fn deliver(&self, event: &OutboxEvent) -> Result<(), String> {
        let message = self.message(event)?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|err| format!("SMTP: {err}"))
    }
}
