//! The notification outbox as it crosses the store seam: one row per
//! (destination, alert event), written in the same transaction as the alert
//! it tells of, and what the delivery task records of each attempt.

use serde::{Deserialize, Serialize};

use super::alerts::Alert;

/// What happened to an alert that is worth telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// The alert was opened.
    Raised,
    /// Its count reached at least twice the count last told.
    Escalated,
    /// A test message from `POST /api/destinations/{name}/test`.
    Test,
}

impl AlertEvent {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Raised => "raised",
            AlertEvent::Escalated => "escalated",
            AlertEvent::Test => "test",
        }
    }
}

/// One message as it is kept in the outbox and rendered per destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable across retries and restarts: `alert-ID-raised` or
    /// `alert-ID-escalated-COUNT` (`test-...` for a test), so a receiver
    /// can drop a message it has had.
    pub id: String,
    /// Raised, escalated or test.
    pub event: AlertEvent,
    /// The alert as it was when the event happened.
    pub alert: Alert,
}

impl Notification {
    /// The id of `event` for `alert`.
    pub fn id_of(event: AlertEvent, alert: &Alert) -> String {
        match event {
            AlertEvent::Raised => format!("alert-{}-raised", alert.id),
            AlertEvent::Escalated => format!("alert-{}-escalated-{}", alert.id, alert.count),
            AlertEvent::Test => format!("test-{}", alert.id),
        }
    }
}

/// An undelivered outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    /// Row id (the order messages are sent in, per destination).
    pub row: i64,
    /// The destination's name.
    pub destination: String,
    /// What to send.
    pub notification: Notification,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (seconds since the epoch).
    pub next_attempt: i64,
}

/// What the store knows of one destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DestinationCounts {
    /// The destination's name (not serialized: the status that flattens
    /// these counts names it, and a JSON object has each key once).
    #[serde(skip)]
    pub name: String,
    /// Messages delivered (acknowledged by the receiver).
    pub delivered: u64,
    /// Failed attempts, over all time.
    pub failed: u64,
    /// Messages waiting (never tried, or to be retried).
    pub pending: u64,
    /// Of those, messages that failed at least once.
    pub retrying: u64,
    /// Attempts already made on the waiting messages.
    pub retries_pending: u64,
    /// Messages given up on after `notify.max_attempts` failed attempts
    /// (kept until `notify.retention_days` after they were written).
    pub dead: u64,
    /// Last delivery, UTC `YYYY-MM-DD HH:MM:SS`.
    pub last_success_at: Option<String>,
    /// Last failure's error, and when.
    pub last_error: Option<String>,
    /// See `last_error`.
    pub last_error_at: Option<String>,
}
