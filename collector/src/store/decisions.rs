//! Decisions and device blocks as they cross the store seam.
//!
//! A decision blocks an address or a network on every device of a group
//! for a while: an operator's (or the collector's) verdict that an address
//! proven hostile on one device is hostile for the fleet. Agents fetch the
//! decisions of their group and apply them through their own firewall;
//! deleting a decision revokes it, and the agents lift it at their next
//! fetch. What each device has blocked comes back in its heartbeats and is
//! kept per device ([`DeviceBlock`]), replaced whole at every heartbeat.
//!
//! The checks on a new decision live here, the same for every backend.

use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use crate::error::{Error, Result};

/// The group a device belongs to unless told otherwise.
pub const DEFAULT_GROUP: &str = "default";

/// Longest decision: 30 days, as the agent's longest block. Beyond that an
/// address belongs in the operators' own firewall rules.
pub const MAX_DECISION_SECS: u64 = 30 * 86_400;

/// Longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// A decision as the API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// Its id.
    pub id: i64,
    /// The device group it applies to.
    pub group: String,
    /// The address (`198.51.100.66`) or network (`203.0.113.0/24`).
    pub address: String,
    /// Why.
    pub reason: String,
    /// Who made it: an operator's name, or `collector`.
    pub created_by: String,
    /// When, unix seconds UTC.
    pub created_at: i64,
    /// When it ends, unix seconds UTC.
    pub until: i64,
    /// When it was deleted (revoked), if it was.
    pub deleted_at: Option<i64>,
    /// Who deleted it.
    pub deleted_by: Option<String>,
    /// `active`, `expired` or `deleted`.
    #[schema(value_type = crate::api::openapi::DecisionState)]
    pub state: &'static str,
}

impl Decision {
    /// `active`, `expired` or `deleted` at `now`.
    pub fn state_at(deleted_at: Option<i64>, until: i64, now: i64) -> &'static str {
        match deleted_at {
            Some(_) => "deleted",
            None if until <= now => "expired",
            None => "active",
        }
    }
}

/// A decision to make, checked ([`NewDecision::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    /// The device group.
    pub group: String,
    /// The network (a single address is a /32 or /128).
    pub network: IpNet,
    /// How long.
    pub secs: u64,
    /// Why.
    pub reason: String,
    /// Who makes it.
    pub created_by: String,
    /// The alert it was made from, when the collector made it from one:
    /// an alert makes one decision at most.
    pub alert: Option<i64>,
}

impl NewDecision {
    /// Checks an operator's input: an address or CIDR network, a duration
    /// (`90s`, `30m`, `4h`, `2d`, or plain seconds; 1 s to 30 days), a group
    /// name (device-name rules), a reason of at most 200 characters.
    pub fn parse(address: &str, duration: &str, group: &str, reason: &str, created_by: &str) -> Result<NewDecision> {
        check_group(group)?;
        let network = parse_network(address)?;
        let secs = parse_duration(duration)?;
        let reason = reason.trim();
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::BadInput(format!("reason must be at most {MAX_REASON_CHARS} characters")));
        }
        let reason = if reason.is_empty() { format!("decision by {created_by}") } else { reason.to_string() };
        Ok(NewDecision {
            group: group.to_string(),
            network,
            secs,
            reason,
            created_by: created_by.to_string(),
            alert: None,
        })
    }

    /// The address as stored and pushed: a single address without its
    /// prefix length, a network in CIDR form.
    pub fn address(&self) -> String {
        if self.network.prefix_len() == self.network.max_prefix_len() {
            self.network.addr().to_string()
        } else {
            self.network.to_string()
        }
    }
}

/// An address or a network in CIDR form. A network written with host bits
/// set (`10.1.2.3/8`) is refused: blocking more than the operator meant is
/// worse than asking again.
pub fn parse_network(text: &str) -> Result<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(Error::BadInput(format!("{text:?} has host bits set: did you mean {}?", net.trunc())));
        }
        if net.prefix_len() == 0 {
            return Err(Error::BadInput(format!("{text:?} would block every address")));
        }
        return Ok(net);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| IpNet::from(ip.to_canonical()))
        .map_err(|_| Error::BadInput(format!("{text:?} is neither an address nor a network (203.0.113.0/24)")))
}

/// A duration: `humantime` forms (`90s`, `30m`, `4h`, `2d`, `1h 30m`) or
/// plain seconds, 1 s to 30 days.
pub fn parse_duration(text: &str) -> Result<u64> {
    let text = text.trim();
    let secs = match text.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(text)
            .map(|d: Duration| d.as_secs())
            .map_err(|e| Error::BadInput(format!("duration {text:?}: {e} (e.g. 30m, 4h, 2d)")))?,
    };
    if !(1..=MAX_DECISION_SECS).contains(&secs) {
        return Err(Error::BadInput(format!("duration must be 1s to 30d, got {text:?}")));
    }
    Ok(secs)
}

/// Checks a group name: the rules of device names.
pub fn check_group(group: &str) -> Result<()> {
    let ok = !group.is_empty()
        && group.len() <= 64
        && group.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!("group must be 1-64 letters, digits, '.', '_' or '-', got {group:?}")))
    }
}

/// What a decision listing asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecisionQuery {
    /// Only this group.
    pub group: Option<String>,
    /// Expired and deleted ones too (newest first); default: active only.
    pub all: bool,
    /// Most listed.
    pub limit: u32,
}

/// One block a device reported in its last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceBlock {
    /// The address or network.
    pub address: String,
    /// When it was set, unix seconds UTC.
    pub since: i64,
    /// When it expires, unix seconds UTC.
    pub until: i64,
    /// Why.
    pub reason: String,
    /// `agent` (its own detectors) or `collector` (a decision).
    #[schema(value_type = bfp_common::wire::BlockOrigin)]
    pub origin: String,
    /// The decision, for a block of origin `collector`.
    pub decision: Option<i64>,
}

/// A decision a device refused to apply, from its last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceRefusal {
    /// The decision.
    pub decision: i64,
    /// What it named.
    pub address: String,
    /// Why the agent refused it.
    pub reason: String,
}

/// What a device reported of its firewall response.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceBlocks {
    /// The device.
    pub device: String,
    /// Its group.
    pub group: String,
    /// `nftables`, `iptables`, `dry-run`, or `None` when its response is
    /// off (or it has not said yet).
    pub backend: Option<String>,
    /// The backend is `dry-run`: nothing is really dropped.
    pub dry_run: bool,
    /// When the report arrived, unix seconds UTC.
    pub reported_at: Option<i64>,
    /// Blocks in force, newest first.
    pub blocks: Vec<DeviceBlock>,
    /// Decisions it refused.
    pub refused: Vec<DeviceRefusal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_input_is_checked_naming_what_is_wrong() {
        let d = NewDecision::parse("198.51.100.66", "4h", "edge", "", "root").unwrap();
        assert_eq!((d.address(), d.secs, d.reason.as_str()), ("198.51.100.66".into(), 4 * 3600, "decision by root"));
        let d = NewDecision::parse("203.0.113.0/24", "90", "default", "campaign", "root").unwrap();
        assert_eq!((d.address(), d.secs), ("203.0.113.0/24".into(), 90));
        assert_eq!(NewDecision::parse("::ffff:192.0.2.9", "1d", "default", "", "r").unwrap().address(), "192.0.2.9");
        assert_eq!(NewDecision::parse("2001:db8::/32", "2d", "default", "", "r").unwrap().address(), "2001:db8::/32");
        for (address, duration, group, needle) in [
            ("10.1.2.3/8", "4h", "default", "host bits"),
            ("0.0.0.0/0", "4h", "default", "every address"),
            ("example.org", "4h", "default", "neither an address"),
            ("10.0.0.0/33", "4h", "default", "neither an address"),
            ("192.0.2.1", "0", "default", "1s to 30d"),
            ("192.0.2.1", "31d", "default", "1s to 30d"),
            ("192.0.2.1", "soon", "default", "duration \"soon\""),
            ("192.0.2.1", "4h", "", "group must be"),
            ("192.0.2.1", "4h", "a b", "group must be"),
        ] {
            let err = NewDecision::parse(address, duration, group, "", "r").unwrap_err().to_string();
            assert!(err.contains(needle), "{address} {duration} {group}: {err}");
        }
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(NewDecision::parse("192.0.2.1", "4h", "default", &long, "r").is_err());
    }

    #[test]
    fn a_decision_is_active_until_it_expires_or_is_deleted() {
        assert_eq!(Decision::state_at(None, 100, 99), "active");
        assert_eq!(Decision::state_at(None, 100, 100), "expired");
        assert_eq!(Decision::state_at(Some(50), 100, 60), "deleted");
    }
}
