//! Alerts as they cross the store seam: the stored record, its state, and
//! what a listing asks for.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where an alert stands; an analyst moves it forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[derive(utoipa::ToSchema)]
pub enum AlertState {
    /// Raised, nobody has looked at it.
    Open,
    /// Someone is on it; matches still join it.
    Acknowledged,
    /// Closed; a later match opens a new alert (after the rule's cool-down).
    Resolved,
}

impl AlertState {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }

    /// Parses `open`, `acknowledged` or `resolved`.
    pub fn parse(s: &str) -> Result<AlertState> {
        match s {
            "open" => Ok(AlertState::Open),
            "acknowledged" => Ok(AlertState::Acknowledged),
            "resolved" => Ok(AlertState::Resolved),
            other => Err(Error::BadInput(format!("state must be open, acknowledged or resolved, got {other:?}"))),
        }
    }
}

/// One stored alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Id, increasing.
    pub id: i64,
    /// The rule that raised it.
    pub rule: String,
    /// The value it groups by (an address, a user, a device, or `*`).
    pub group_key: String,
    /// Its state.
    pub state: AlertState,
    /// Matching results it groups.
    pub count: u64,
    /// First and last matching result ids (its results lie between them).
    pub first_result_id: i64,
    /// See `first_result_id`.
    pub last_result_id: i64,
    /// When the first and last matching results were stored (UTC).
    pub first_seen: String,
    /// See `first_seen`.
    pub last_seen: String,
    /// Context of the first match.
    pub source_ip: Option<String>,
    /// See `source_ip`.
    pub user: Option<String>,
    /// See `source_ip`.
    pub device: Option<String>,
    /// Who acknowledged it, and when.
    pub acknowledged_by: Option<String>,
    /// See `acknowledged_by`.
    pub acknowledged_at: Option<String>,
    /// Who resolved it, and when.
    pub resolved_by: Option<String>,
    /// See `resolved_by`.
    pub resolved_at: Option<String>,
}

/// A listing of alerts, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    /// Only this state.
    pub state: Option<AlertState>,
    /// Only this rule.
    pub rule: Option<String>,
    /// Only alerts with ids below this (the next page).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// What one evaluation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvaluationPass {
    /// Results read.
    pub results: u64,
    /// Alerts opened.
    pub opened: u64,
    /// Matches added to existing alerts.
    pub grouped: u64,
    /// Outbox rows written (one per destination and raised or escalated
    /// alert).
    pub notifications: u64,
    /// Of `results`, those read back from the database (catching up after a
    /// start, a CSV upload or another process's writes; on PostgreSQL,
    /// where several collectors write, every one); the rest the writer
    /// handed over in memory after its commit.
    pub caught_up: u64,
}
