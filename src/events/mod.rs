//! Delivery of audit events to webhooks (`TESSERA_WEBHOOK_URLS`). The store writes each event
//! with the change it reports ([`crate::store::events`]); this task claims due events, POSTs
//! each to every configured URL with an HMAC-SHA256 signature ([`signature`]), and retries
//! failures with exponential backoff until `TESSERA_WEBHOOK_MAX_ATTEMPTS`, after which the event
//! is dead: kept and listed by `tessera events dead`, never retried.
//!
//! Delivery is at least once: an event is retried until every URL accepted it in one attempt,
//! so receivers deduplicate by the event `id`. Claims are leased, so instances sharing a store
//! do not send an event twice at once, and a claim left by a crashed instance runs out.

mod signature;

use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::config::Webhooks;
use crate::store::events::OutboxEvent;
use crate::store::{OutboxStore, StoreResult, UnixTime};

pub use signature::{sign, SIGNATURE_HEADER};

/// How often the outbox is looked at when it was empty.
const POLL: Duration = Duration::from_secs(1);
/// Events claimed at a time.
const BATCH: u32 = 20;
/// Added to a claim's lease beyond the time its requests may take.
const LEASE_SLACK: Duration = Duration::from_secs(30);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF: UnixTime = 3600;

/// Starts the delivery task when webhooks are configured.
pub fn spawn(outbox: Arc<dyn OutboxStore + Send + Sync>, webhooks: &Webhooks) {
    if !webhooks.urls.is_empty() {
        tokio::spawn(deliver_forever(outbox, webhooks.clone()));
    }
}

/// The delivery task's view: the outbox, the receivers and the HTTP client that calls them.
struct Delivery {
    outbox: Arc<dyn OutboxStore + Send + Sync>,
    webhooks: Webhooks,
    client: reqwest::Client,
}

async fn deliver_forever(outbox: Arc<dyn OutboxStore + Send + Sync>, webhooks: Webhooks) {
    // A redirect is a failure: following one would turn the POST into a GET whose 2xx proves
    // nothing about the event.
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "webhook client could not start; events stay queued");
            return;
        }
    };
    let delivery = Delivery {
        outbox,
        webhooks,
        client,
    };
    loop {
        match delivery.deliver_due().await {
            Ok(0) => tokio::time::sleep(POLL).await,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "webhook delivery round failed");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

impl Delivery {
    /// One round: claims the due events, delivers each, records the outcome; returns how many.
    async fn deliver_due(&self) -> StoreResult<usize> {
        let webhooks = &self.webhooks;
        let now = clock::now();
        // Long enough for every request of every claimed event to time out, and some.
        let requests = u64::from(BATCH) * webhooks.urls.len() as u64;
        let lease = REQUEST_TIMEOUT.as_secs() * requests + LEASE_SLACK.as_secs();
        let claimed_until = now + lease as UnixTime;
        let events = self.outbox.claim_events(now, claimed_until, BATCH).await?;
        for claimed in &events {
            let id = &claimed.event.id;
            // The claim counted this attempt already: more than the maximum means earlier attempts
            // never reported (the process died while sending), so it is not tried again.
            let outcome = if claimed.attempts > webhooks.max_attempts {
                Err("earlier attempts never finished".to_string())
            } else {
                self.deliver(claimed).await
            };
            match outcome {
                Ok(()) => {
                    let delivered_at = clock::now();
                    self.outbox
                        .event_delivered(id, claimed_until, delivered_at)
                        .await?;
                }
                Err(error) => {
                    let retry_at = (claimed.attempts < webhooks.max_attempts).then(|| {
                        clock::now() + jittered(backoff(webhooks.retry_base, claimed.attempts))
                    });
                    if retry_at.is_none() {
                        tracing::warn!(event_id = %id, %error, "webhook event is dead after its last attempt");
                    }
                    self.outbox
                        .event_failed(id, claimed_until, &error, retry_at, clock::now())
                        .await?;
                }
            }
        }
        Ok(events.len())
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
/// `base`, doubled for every attempt after the first, at most an hour.
fn backoff(base: Duration, attempts: u32) -> UnixTime {
    let factor = 1u64 << attempts.saturating_sub(1).min(20);
    let seconds = base.as_secs().max(1).saturating_mul(factor);
    UnixTime::try_from(seconds).map_or(MAX_BACKOFF, |s| s.min(MAX_BACKOFF))
}

/// `wait` plus up to a fifth more, at random: after a receiver's outage the queued events do not
/// all come back at the same instants.
fn jittered(wait: UnixTime) -> UnixTime {
    use rand::Rng;
    wait + rand::thread_rng().gen_range(0..=wait / 5)
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

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), 10);
        assert_eq!(backoff(base, 2), 20);
        assert_eq!(backoff(base, 4), 80);
        assert_eq!(backoff(base, 30), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 1), 1);
        assert_eq!(backoff(Duration::from_secs(u64::MAX), 1), MAX_BACKOFF);
    }

    #[test]
    fn jitter_only_lengthens_a_wait_by_a_fifth_at_most() {
        let waits: Vec<UnixTime> = (0..200).map(|_| jittered(100)).collect();
        assert!(waits.iter().all(|w| (100..=120).contains(w)));
        assert!(waits.iter().any(|w| *w != waits[0]), "spread");
        assert_eq!(jittered(3), 3);
    }
}
