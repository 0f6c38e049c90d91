//! Notifications of new and escalated alerts, delivered at least once from
//! a durable outbox.
//!
//! The alert pass writes one outbox row per destination for each alert it
//! raises or escalates, in the same transaction as the alert (see
//! `store::sqlite::outbox`), so a crash never loses a message nor makes
//! one twice. Here one task per destination reads its queue in order: it
//! sends the oldest due message, marks it delivered as soon as the
//! receiver has acknowledged it (a 2xx, a written and flushed syslog
//! frame, an SMTP `250`), or records the error and the time of the next
//! attempt (exponential backoff with a cap and jitter) and stops there, so
//! messages reach each destination in order, one at a time. A tick sends at
//! most `max_per_tick` messages, each bounded by the destination's timeout,
//! and none of this runs on the writer: a slow or failing receiver holds
//! its own queue back, never ingest.
//!
//! At-least-once: a collector killed after the receiver acknowledged a
//! message and before the delivered mark committed sends it again after
//! the restart, with the same `id`; receivers drop what they have had.

pub mod config;
pub mod message;
mod send;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::store::alerts::{Alert, AlertState};
use crate::store::outbox::{AlertEvent, DestinationCounts, Notification};
use crate::store::Store;
use config::{Destination, NotifyConfig};
pub use send::Sender;

/// Every configured destination, ready to send.
pub struct Notifier {
    config: NotifyConfig,
    senders: Vec<Arc<Sender>>,
}

/// One destination as `GET /api/destinations` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestinationStatus {
    /// Its name.
    pub name: String,
    /// `webhook`, `syslog` or `email`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where it goes (the URL without credentials, `host:port`, or the
    /// SMTP server and recipients).
    pub target: String,
    /// The store's counts and last outcomes.
    #[serde(flatten)]
    pub counts: DestinationCounts,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Notifier {
    /// Builds a sender per destination (HTTP clients, TLS settings, SMTP
    /// transports): a CA file that does not load is an error here, at start.
    pub fn new(config: NotifyConfig, destinations: &[Destination]) -> Result<Notifier> {
        let senders = destinations.iter().map(|d| Sender::new(d.clone()).map(Arc::new)).collect::<Result<_>>()?;
        Ok(Notifier { config, senders })
    }

    /// No destinations.
    pub fn none() -> Notifier {
        Notifier { config: NotifyConfig::default(), senders: Vec::new() }
    }

    /// Whether any destination is configured.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Starts one delivery task per destination; each ends when the store
    /// shuts down.
    pub fn spawn(&self, store: Arc<dyn Store>) {
        for sender in &self.senders {
            tokio::spawn(deliver_forever(store.clone(), sender.clone(), self.config.clone()));
        }
    }

    /// Every destination with its counts (zeros for one that never sent).
    pub async fn status(&self, store: &dyn Store) -> Result<Vec<DestinationStatus>> {
        let counts = store.destination_counts().await?;
        Ok(self
            .senders
            .iter()
            .map(|s| DestinationStatus {
                name: s.name().to_string(),
                kind: s.destination().kind(),
                target: s.target(),
                counts: counts.iter().find(|c| c.name == s.name()).cloned().unwrap_or_else(|| DestinationCounts {
                    name: s.name().to_string(),
                    ..DestinationCounts::default()
                }),
            })
            .collect())
    }

    /// Sends a test message to `name` through its real sender, records the
    /// outcome on its status, and returns it (the error text on failure);
    /// [`Error::NotFound`] for an unknown destination.
    pub async fn test(&self, store: &dyn Store, name: &str) -> Result<(String, std::result::Result<(), String>)> {
        let sender = self
            .senders
            .iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| Error::NotFound(format!("no destination named {name:?}")))?;
        let n = test_notification();
        let outcome = sender.send(&n).await;
        store.destination_tested(name.to_string(), outcome.clone(), unix_now()).await?;
        Ok((n.id, outcome))
    }
}

/// A message about no real alert, with an id of its own.
fn test_notification() -> Notification {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace('T', " ").replace('Z', "");
    let alert = Alert {
        id: 0,
        rule: "test".into(),
        group_key: "-".into(),
        state: AlertState::Open,
        count: 0,
        first_result_id: 0,
        last_result_id: 0,
        first_seen: stamp.clone(),
        last_seen: stamp,
        source_ip: None,
        user: None,
        device: None,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_by: None,
        resolved_at: None,
    };
    Notification { id: format!("test-{}", now.as_nanos()), event: AlertEvent::Test, alert }
}

/// Seconds before attempt `attempts + 1`, after `attempts` failures:
/// `base * 2^(attempts-1)` capped at `max`, then drawn uniformly from its
/// upper half so destinations that failed together do not retry together.
pub fn backoff_secs(config: &NotifyConfig, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(32);
    let full = config.backoff_base_secs.saturating_mul(1u64 << exp).min(config.backoff_max_secs);
    let half = full / 2;
    (half + fastrand::u64(0..=full - half)).max(1)
}

/// What one tick did.
#[derive(Debug, PartialEq, Eq)]
enum Tick {
    /// A full batch went out: more may be waiting.
    Full,
    /// Nothing (more) to send now.
    Idle,
}

async fn deliver_forever(store: Arc<dyn Store>, sender: Arc<Sender>, config: NotifyConfig) {
    let interval = Duration::from_secs(config.interval_secs);
    loop {
        match deliver_tick(&*store, &sender, &config).await {
            // Yield between full batches so the next tick's reads and marks
            // queue behind other work rather than ahead of it.
            Ok(Tick::Full) => tokio::task::yield_now().await,
            Ok(Tick::Idle) => tokio::time::sleep(interval).await,
            Err(Error::ShuttingDown) => return,
            Err(e) => {
                tracing::warn!(destination = sender.name(), error = %e, "outbox delivery failed; retried later");
                tokio::time::sleep(interval).await;
            }
        }
    }
}

async fn deliver_tick(store: &dyn Store, sender: &Sender, config: &NotifyConfig) -> Result<Tick> {
    let head = store.outbox_head(sender.name().to_string(), config.max_per_tick).await?;
    let full = head.len() >= config.max_per_tick as usize;
    for m in head {
        if m.next_attempt > unix_now() {
            // The oldest waits for its retry; later ones wait behind it.
            return Ok(Tick::Idle);
        }
        match sender.send(&m.notification).await {
            Ok(()) => {
                store.outbox_delivered(m.row, unix_now()).await?;
                tracing::debug!(destination = sender.name(), id = %m.notification.id, "notification delivered");
            }
            Err(error) => {
                let attempts = m.attempts + 1;
                let delay = backoff_secs(config, attempts);
                tracing::warn!(
                    destination = sender.name(),
                    id = %m.notification.id,
                    attempts,
                    retry_in_secs = delay,
                    %error,
                    "notification failed"
                );
                let now = unix_now();
                store.outbox_failed(m.row, error, now + delay as i64, now).await?;
                return Ok(Tick::Idle);
            }
        }
    }
    Ok(if full { Tick::Full } else { Tick::Idle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        let config = NotifyConfig { backoff_base_secs: 2, backoff_max_secs: 60, ..NotifyConfig::default() };
        for _ in 0..200 {
            assert!((1..=2).contains(&backoff_secs(&config, 1)));
            assert!((4..=8).contains(&backoff_secs(&config, 3)));
            assert!((30..=60).contains(&backoff_secs(&config, 10)));
            assert!((30..=60).contains(&backoff_secs(&config, u32::MAX)));
        }
    }
}
