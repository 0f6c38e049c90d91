//! One authentication attempt: what the campaign detectors (in `bfp-detect`)
//! count, handed out by the analyzer beside its observations.

use std::net::IpAddr;

use bfp_common::Protocol;
use serde::{Deserialize, Serialize};

/// One authentication attempt, as the log parser saw it (see
/// [`Analyzer::record_auth_attempts`](crate::analyze::Analyzer::record_auth_attempts)).
/// `Copy` and allocation-free: the user is a hash.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AuthAttempt {
    /// When, unix seconds.
    pub at: i64,
    /// From where.
    pub source: IpAddr,
    /// Stable hash of the user name tried ([`crate::analyze::hash_user`]),
    /// if the log names one.
    pub user: Option<u64>,
    /// Whether it succeeded.
    pub success: bool,
    /// The user does not exist on the device.
    pub invalid_user: bool,
    /// How many attempts the line stands for ("message repeated 3 times").
    pub count: u32,
    /// Over which protocol.
    pub protocol: Protocol,
}
