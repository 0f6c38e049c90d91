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
//! A message that fails `max_attempts` times is dead: it leaves the queue
//! (counted as dead in the destination's status and `bfp_outbox_dead`) and
//! the messages behind it go out; order holds among the messages that are
//! delivered. Delivered and dead rows are deleted after `retention_days`.
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
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DestinationStatus {
    /// Its name.
    pub name: String,
    /// `webhook`, `syslog` or `email`.
    #[serde(rename = "type")]
    #[schema(value_type = crate::api::openapi::DestinationType)]
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
        if !self.senders.is_empty() {
            tokio::spawn(prune_forever(store, self.config.clone()));
        }
    }

    /// Every destination with its counts (zeros for one that never sent).
    pub async fn status(&self, store: &dyn Store) -> Result<Vec<DestinationStatus>> {
        let counts = store.destination_counts(self.config.max_attempts).await?;
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

/// Deletes delivered and dead messages older than `retention_days`, at
/// start and then hourly, until the store shuts down.
async fn prune_forever(store: Arc<dyn Store>, config: NotifyConfig) {
    loop {
        let before = unix_now() - (config.retention_days * 86_400) as i64;
        match store.outbox_prune(before, config.max_attempts).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "old delivered and dead notifications deleted"),
            Err(Error::ShuttingDown) => return,
            Err(e) => tracing::warn!(error = %e, "outbox pruning failed; retried in an hour"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

async fn deliver_tick(store: &dyn Store, sender: &Sender, config: &NotifyConfig) -> Result<Tick> {
    let head = store.outbox_head(sender.name().to_string(), config.max_per_tick, config.max_attempts).await?;
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
                if attempts >= config.max_attempts {
                    tracing::error!(
                        destination = sender.name(),
                        id = %m.notification.id,
                        attempts,
                        %error,
                        "notification given up on (dead); the destination's next messages go out"
                    );
                    let now = unix_now();
                    store.outbox_failed(m.row, error, now, now).await?;
                    // The dead message no longer holds the queue.
                    continue;
                }
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
    use crate::alerts::CollectorConfig;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::store::NewPrediction;
    use std::io::{Read, Write};

    /// Each key once: the flattened counts do not repeat the name.
    #[test]
    fn a_destination_status_names_itself_once() {
        let status = DestinationStatus {
            name: "hook".into(),
            kind: "webhook",
            target: "https://example.org/".into(),
            counts: DestinationCounts { name: "hook".into(), delivered: 3, ..DestinationCounts::default() },
        };
        let text = serde_json::to_string(&status).unwrap();
        assert_eq!(text.matches("\"name\"").count(), 1, "{text}");
        assert!(text.contains("\"delivered\":3"), "{text}");
    }

    /// The shared failed-login row, without a user name.
    fn attempt(ip: &str) -> NewPrediction {
        let mut row = crate::store::backends::failed_login_attempt(ip);
        row.agent.user = None;
        row
    }

    /// A webhook receiver on loopback that answers 500 to every message
    /// whose body holds `reject`, 200 to the rest; returns its port and the
    /// ids it was sent, in order, with the status it answered.
    type Log = Arc<std::sync::Mutex<Vec<(String, u16)>>>;

    fn receiver(reject: &'static str) -> (u16, Log) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                let body = loop {
                    let Ok(n) = stream.read(&mut buf) else { break None };
                    if n == 0 {
                        break None;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            break Some(String::from_utf8_lossy(&data[end + 4..end + 4 + length]).to_string());
                        }
                    }
                };
                let Some(body) = body else { continue };
                let id = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let status = if body.contains(reject) { 500 } else { 200 };
                seen.lock().unwrap().push((id, status));
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        (port, log)
    }

    #[tokio::test]
    async fn a_message_that_keeps_failing_dies_after_max_attempts_and_the_queue_moves_on() {
        let (port, log) = receiver("alert-2-raised");
        let text = format!(
            "[notify]\nmax_attempts = 3\nbackoff_base_secs = 1\nbackoff_max_secs = 1\n\
             [[alert.rule]]\nname = \"brute\"\n\
             [[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:{port}/\"\n"
        );
        let config = CollectorConfig::parse(&text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&SqliteConfig::new(dir.path().join("app.db"))).unwrap());
        store.insert(vec![attempt("203.0.113.1"), attempt("203.0.113.2"), attempt("203.0.113.3")]).await.unwrap();
        assert_eq!(store.evaluate_alerts(Arc::new(config.alert.clone())).await.unwrap().notifications, 3);
        let sender = Sender::new(config.destinations[0].clone()).unwrap();
        let notify = config.notify.clone();
        // Ticks until the head is empty: the second message fails, waits
        // for its retries (about a second each), and dies at its third.
        for _ in 0..100 {
            deliver_tick(&*store, &sender, &notify).await.unwrap();
            if store.outbox_head("hook".into(), 10, notify.max_attempts).await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = log.lock().unwrap().clone();
        let expected: Vec<(String, u16)> = [
            ("alert-1-raised", 200),
            ("alert-2-raised", 500),
            ("alert-2-raised", 500),
            ("alert-2-raised", 500),
            ("alert-3-raised", 200),
        ]
        .iter()
        .map(|(id, s)| (id.to_string(), *s))
        .collect();
        assert_eq!(got, expected, "in order; the rejected one tried max_attempts times, then the next sent");
        let counts = store.destination_counts(notify.max_attempts).await.unwrap();
        let hook = &counts[0];
        assert_eq!((hook.delivered, hook.failed, hook.pending, hook.dead), (2, 3, 0, 1));
        assert!(hook.last_error.as_deref().is_some_and(|e| e.contains("500")), "{:?}", hook.last_error);
        store.shutdown().await;
    }

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
