//! Delivery of the outbox. The store writes each audit event with the change it reports
//! ([`crate::store::events`]), and queues mail the same way; a task per way out (a [`Courier`]:
//! the webhooks of [`webhooks`], the SMTP server of [`crate::mail`]) claims the due events of
//! its channel, delivers each, and retries failures with exponential backoff until its maximum
//! of attempts, after which the event is dead: kept and listed by `tessera events dead`, never
//! retried.
//!
//! Delivery is at least once: an event is retried until it was delivered in one attempt, so
//! receivers deduplicate by the event `id`. Claims are leased, so instances sharing a store do not
//! send an event twice at once, and a claim left by a crashed instance runs out.

mod signature;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use crate::clock;
use crate::store::events::{Channel, OutboxEvent};
use crate::store::{OutboxStore, StoreResult, UnixTime};

pub use signature::{sign, SIGNATURE_HEADER};

/// How often the outbox is looked at when it was empty.
const POLL: Duration = Duration::from_secs(1);
/// Events claimed at a time.
const BATCH: u32 = 20;
/// Added to a claim's lease beyond the time its deliveries may take.
const LEASE_SLACK: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_BACKOFF: UnixTime = 3600;

/// How often, and how far apart, a failed delivery is tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retries {
    /// Attempts before an event is dead.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further one.
    pub base: Duration,
}

/// A way out of the outbox for the events of one channel.
#[async_trait::async_trait]
pub trait Courier: Send + Sync + 'static {
    const CHANNEL: Channel;
    /// Named in logs.
    const NAME: &'static str;
    /// The longest one event's delivery may take: what a claim's lease is made of.
    fn longest_delivery(&self) -> Duration;
    fn retries(&self) -> Retries;
    /// Delivers one event; the error is stored and logged, so it holds no secret.
    async fn deliver(&self, event: &OutboxEvent) -> Result<(), String>;
}

/// Starts the task that hands `courier` the due events of its channel, forever.
pub fn run<C: Courier>(outbox: Arc<dyn OutboxStore + Send + Sync>, courier: C) {
    tokio::spawn(async move {
        loop {
            match deliver_due(outbox.as_ref(), &courier).await {
                Ok(0) => tokio::time::sleep(POLL).await,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, courier = C::NAME, "outbox delivery round failed");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    });
}

/// One round: claims the due events, delivers each, records the outcome; returns how many.
async fn deliver_due<C: Courier>(
    outbox: &(dyn OutboxStore + Send + Sync),
    courier: &C,
) -> StoreResult<usize> {
    let now = clock::now();
    // Long enough for every claimed delivery to time out, and some.
    let lease = courier.longest_delivery() * BATCH + LEASE_SLACK;
    let claimed_until = now + lease.as_secs() as UnixTime;
    let events = outbox
        .claim_events(C::CHANNEL, now, claimed_until, BATCH)
        .await?;
    let retries = courier.retries();
    for claimed in &events {
        let id = &claimed.event.id;
        // The claim counted this attempt already: more than the maximum means earlier attempts
        // never reported (the process died while sending), so it is not tried again.
        let outcome = if claimed.attempts > retries.max_attempts {
            Err("earlier attempts never finished".to_string())
        } else {
            courier.deliver(claimed).await
        };
        match outcome {
            Ok(()) => {
                outbox
                    .event_delivered(id, claimed_until, clock::now())
                    .await?
            }
            Err(error) => {
                let retry_at = (claimed.attempts < retries.max_attempts)
                    .then(|| clock::now() + jittered(backoff(retries.base, claimed.attempts)));
                if retry_at.is_none() {
                    tracing::warn!(event_id = %id, %error, courier = C::NAME, "event is dead after its last attempt");
                }
                outbox
                    .event_failed(id, claimed_until, &error, retry_at, clock::now())
                    .await?;
            }
        }
    }
    Ok(events.len())
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

#[cfg(test)]
mod tests {
    use super::*;

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
