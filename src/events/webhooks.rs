//! Audit events to webhooks (`TESSERA_WEBHOOK_URLS`): each event is POSTed to every configured
//! URL with an HMAC-SHA256 signature ([`super::signature`]); it is delivered once every URL
//! accepted it in one attempt.

use std::time::Duration;

use super::{sign, Courier, Retries, SIGNATURE_HEADER};
use crate::clock;
use crate::config::Webhooks;
use crate::store::events::{Channel, OutboxEvent};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The receivers and the HTTP client that calls them.
pub struct Delivery {
    webhooks: Webhooks,
    client: reqwest::Client,
}

impl Delivery {
    /// The courier for `webhooks`, `None` when no URL is configured (events are only kept).
    pub fn new(webhooks: &Webhooks) -> Option<Self> {
        if webhooks.urls.is_empty() {
            return None;
        }
        // A redirect is a failure: following one would turn the POST into a GET whose 2xx proves
        // nothing about the event.
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build();
        match client {
            Ok(client) => Some(Delivery {
                webhooks: webhooks.clone(),
                client,
            }),
            Err(err) => {
                tracing::error!(error = %err, "webhook client could not start; events stay queued");
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl Courier for Delivery {
    const CHANNEL: Channel = Channel::Webhooks;
    const NAME: &'static str = "webhooks";

    fn longest_delivery(&self) -> Duration {
        REQUEST_TIMEOUT * self.webhooks.urls.len() as u32
    }

    fn retries(&self) -> Retries {
        Retries {
            max_attempts: self.webhooks.max_attempts,
            base: self.webhooks.retry_base,
        }
    }

    /// POSTs the event to every URL; the error names the first endpoint that did not accept it, by
    /// its origin only: a URL's path, query or user part may hold a credential, which must not end
    /// up in logs or in the stored error.
    async fn deliver(&self, claimed: &OutboxEvent) -> Result<(), String> {
        let webhooks = &self.webhooks;
        let body = claimed.event.body().to_string();
        let signature = sign(&webhooks.secret, clock::now(), &body);
        for url in &webhooks.urls {
            let response = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .header("tessera-event-id", &claimed.event.id)
                .header("tessera-event-type", claimed.event.kind.name())
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .send()
                .await
                .map_err(|err| format!("{}: {}", origin(url), failure(&err)))?;
            if !response.status().is_success() {
                return Err(format!(
                    "{}: HTTP {}",
                    origin(url),
                    response.status().as_u16()
                ));
            }
        }
        Ok(())
    }
}

/// `scheme://host:port` of a webhook URL.
fn origin(url: &str) -> String {
    url::Url::parse(url).map_or_else(|_| "webhook".into(), |u| u.origin().ascii_serialization())
}

/// What went wrong, without the URL reqwest's own message repeats.
fn failure(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_endpoint_without_its_secrets() {
        assert_eq!(
            origin("https://user:pw@hooks.example:8443/T000/secret-token?key=x"),
            "https://hooks.example:8443"
        );
        assert_eq!(origin("not a url"), "webhook");
    }
}
