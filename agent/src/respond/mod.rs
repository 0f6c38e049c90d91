//! The opt-in response on the device: an address the detectors proved
//! hostile (a brute-force campaign, a source window Suspicious for its
//! failed logins, a login from a campaign's address) is dropped by the
//! device's firewall for a while (`block_secs`), unless an allow-list
//! covers it. Off unless `[respond] enabled = true`; `dry_run` only logs.
//!
//! The collector may also push decisions (an address or network to block on
//! every device of a group, `[respond] decisions`): they go through the
//! same allow-list (a decision it covers is refused and reported, never
//! applied) and the same firewall, end at their own expiry, and are lifted
//! as soon as the collector stops listing them (revoked).
//!
//! Every block, unblock and allow-listed address is logged on standard
//! error and counted; the counters, the blocks in force (with their origin)
//! and the refused decisions travel to the collector in the heartbeat
//! (`bfp_common::wire::ResponseReport`).

pub mod allow;
pub mod decide;
pub mod firewall;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bfp_common::wire::{
    ActiveBlock, BlockOrigin, PushedDecisions, RefusedDecision, ResponseReport, MAX_PUSHED_DECISIONS,
    MAX_REPORTED_BLOCKS,
};
use ipnet::IpNet;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::forward::Status;
use crate::report::Record;

use allow::AllowList;
use firewall::Firewall;

/// Longest block (`block_secs`): 30 days. Beyond that an address belongs
/// in the operator's own firewall rules.
pub const MAX_BLOCK_SECS: u64 = 30 * 86_400;

/// The `[respond]` table of the agent's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    /// Block proven-hostile addresses in the device's firewall. Default
    /// false: the agent changes no firewall unless the operator opts in.
    #[serde(default)]
    pub enabled: bool,
    /// With `enabled`, only log what would be blocked; changes no firewall
    /// and needs no firewall tool. `bfp-agent run --dry-run` sets both this
    /// and `enabled`. Default false.
    #[serde(default)]
    pub dry_run: bool,
    /// How long a block lasts, seconds (1-2592000); the firewall lifts it
    /// by itself at expiry, even if the agent has stopped. A new proof
    /// against a blocked address starts the time again. Default 3600.
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
    /// Networks never blocked, in CIDR form or single addresses, e.g.
    /// `["10.0.0.0/8", "2001:db8::/32", "192.0.2.10"]`. Loopback,
    /// link-local (169.254.0.0/16, fe80::/10) and the collector's address
    /// are always added. Default: none besides those.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `auto` (nftables, else iptables with ipset), `nftables` or
    /// `iptables`. Default `auto`.
    #[serde(default)]
    pub firewall: FirewallKind,
    /// A source window (one address's attempts) blocks its address when
    /// judged Suspicious with at least this many failed logins (1-1000000).
    /// Campaigns and logins from a campaign's address block regardless.
    /// Default 5 (fail2ban's maxretry).
    #[serde(default = "default_min_failed_logins")]
    pub min_failed_logins: u32,
    /// ... and at least this confidence (0.5-1). Default 0.8.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
    /// Most addresses blocked at once (1-1000000); past it new blocks are
    /// refused and counted as failures until others expire. Bounds the
    /// agent's memory and the firewall's sets. Default 4096.
    #[serde(default = "default_max_blocks")]
    pub max_blocks: usize,
    /// With `enabled` and a `[collector]`, fetch the decisions the
    /// collector holds for this device's group (every `heartbeat_secs`) and
    /// block them too, within the allow-list; a decision the collector
    /// revokes is lifted at the next fetch. Default true.
    #[serde(default = "default_decisions")]
    pub decisions: bool,
}

/// Which firewall tool the agent drives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallKind {
    /// nftables where `nft` is on PATH, else iptables with ipset.
    #[default]
    Auto,
    /// nftables only.
    Nftables,
    /// iptables (and ip6tables) with ipset only.
    Iptables,
}

fn default_block_secs() -> u64 {
    3600
}
fn default_min_failed_logins() -> u32 {
    5
}
fn default_min_confidence() -> f32 {
    0.8
}
fn default_max_blocks() -> usize {
    4096
}
fn default_decisions() -> bool {
    true
}

impl Default for RespondConfig {
    fn default() -> RespondConfig {
        RespondConfig {
            enabled: false,
            dry_run: false,
            block_secs: default_block_secs(),
            allow: Vec::new(),
            firewall: FirewallKind::Auto,
            min_failed_logins: default_min_failed_logins(),
            min_confidence: default_min_confidence(),
            max_blocks: default_max_blocks(),
            decisions: default_decisions(),
        }
    }
}

impl RespondConfig {
    /// Checks ranges and every allow-list entry, naming the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=MAX_BLOCK_SECS).contains(&self.block_secs) {
            return Err(format!("[respond] block_secs must be 1-{MAX_BLOCK_SECS}, got {}", self.block_secs));
        }
        for entry in &self.allow {
            allow::parse_network(entry).map_err(|e| format!("[respond] allow: {e}"))?;
        }
        if !(1..=1_000_000).contains(&self.min_failed_logins) {
            return Err(format!("[respond] min_failed_logins must be 1-1000000, got {}", self.min_failed_logins));
        }
        if !(0.5..=1.0).contains(&self.min_confidence) {
            return Err(format!("[respond] min_confidence must be 0.5-1, got {}", self.min_confidence));
        }
        if !(1..=1_000_000).contains(&self.max_blocks) {
            return Err(format!("[respond] max_blocks must be 1-1000000, got {}", self.max_blocks));
        }
        Ok(())
    }
}

/// One block in force.
#[derive(Debug, Clone)]
struct Block {
    since: i64,
    until: i64,
    reason: String,
    origin: BlockOrigin,
    /// The collector decision behind it (origin `Collector`).
    decision: Option<i64>,
}

/// Decides, blocks, expires, counts. Lives in the run loop's thread.
pub struct Responder {
    config: RespondConfig,
    allow: AllowList,
    /// `None` in a dry run.
    firewall: Option<Firewall>,
    active: HashMap<IpNet, Block>,
    /// Collector decisions refused, by id (kept while the collector lists
    /// them, so each is logged once and reported until revoked).
    refused: BTreeMap<i64, RefusedDecision>,
    report: ResponseReport,
    status: Arc<Status>,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Responder {
    /// The responder `config` asks for, ready to block (its firewall table
    /// created), or `None` when the response is off. Every problem that
    /// would stop it from blocking later (no firewall tool, no permission)
    /// is an error now.
    pub fn start(
        config: &RespondConfig,
        collector_url: Option<&str>,
        status: Arc<Status>,
    ) -> Result<Option<Responder>> {
        if !config.enabled {
            return Ok(None);
        }
        let err = |detail: String| Error::Respond(detail);
        config.validate().map_err(err)?;
        let allow = AllowList::new(&config.allow, collector_url).map_err(err)?;
        let firewall = if config.dry_run {
            None
        } else {
            let firewall = Firewall::detect(config.firewall).map_err(err)?;
            firewall
                .setup(config.max_blocks)
                .map_err(|e| err(format!("cannot set up {}: {e}", firewall.describe())))?;
            Some(firewall)
        };
        let networks: Vec<String> = allow.networks().map(|a| a.network.to_string()).collect();
        match &firewall {
            Some(f) => eprintln!(
                "bfp-agent: respond: blocking through {} for {}s; never blocked: {}",
                f.describe(),
                config.block_secs,
                networks.join(", ")
            ),
            None => eprintln!(
                "bfp-agent: respond: dry run: logging what would be blocked for {}s, changing no firewall; never \
                 blocked: {}",
                config.block_secs,
                networks.join(", ")
            ),
        }
        let mut responder = Responder {
            config: config.clone(),
            allow,
            report: ResponseReport {
                firewall: firewall.as_ref().map_or("dry-run", Firewall::name).to_string(),
                ..ResponseReport::default()
            },
            firewall,
            active: HashMap::new(),
            refused: BTreeMap::new(),
            status,
        };
        if config.decisions && collector_url.is_some() {
            responder.status.wants_decisions.store(true, Ordering::Relaxed);
        }
        responder.adopt_existing();
        responder.publish();
        Ok(Some(responder))
    }

    /// Takes over the blocks an earlier run left in the firewall (they
    /// keep their expiry), so they are reported and their end logged.
    fn adopt_existing(&mut self) {
        let Some(firewall) = &self.firewall else { return };
        match firewall.existing() {
            Ok(existing) => {
                let now = now();
                for e in existing.into_iter().take(self.config.max_blocks) {
                    let reason = "blocked by an earlier run".to_string();
                    let block = Block {
                        since: now,
                        until: now + e.expires_in as i64,
                        reason,
                        origin: BlockOrigin::Agent,
                        decision: None,
                    };
                    self.active.insert(e.ip, block);
                }
                if !self.active.is_empty() {
                    eprintln!(
                        "bfp-agent: respond: {} address(es) still blocked from an earlier run",
                        self.active.len()
                    );
                }
            }
            Err(e) => eprintln!("bfp-agent: respond: warning: cannot list the blocks in force: {e}"),
        }
    }

    /// Acts on newly judged records: every address they prove hostile is
    /// blocked in one firewall transaction (each `nft` or `ipset` run costs
    /// tens of milliseconds, whatever it holds; docs/benchmarks.md).
    pub fn consider(&mut self, records: &[Record]) {
        let mut wanted: Vec<(IpNet, String)> = Vec::new();
        let mut changed = false;
        for record in records {
            for verdict in decide::hostile(record, &self.config) {
                changed = true;
                let ip = verdict.ip.to_canonical();
                let net = IpNet::from(ip);
                if let Some(allowed) = self.allow.covering(ip) {
                    self.report.allowed += 1;
                    eprintln!(
                        "bfp-agent: respond: not blocking {ip}: {} {} covers it ({})",
                        allowed.origin, allowed.network, verdict.reason
                    );
                    continue;
                }
                if wanted.iter().any(|(w, _)| *w == net) {
                    continue;
                }
                let new = wanted.iter().filter(|(w, _)| !self.active.contains_key(w)).count();
                if !self.active.contains_key(&net) && self.active.len() + new >= self.config.max_blocks {
                    self.report.failures += 1;
                    let message = format!(
                        "not blocking {ip}: {} addresses are blocked already (max_blocks)",
                        self.active.len() + new
                    );
                    eprintln!("bfp-agent: respond: {message}");
                    self.status.note_error(format!("respond: {message}"));
                    continue;
                }
                wanted.push((net, verdict.reason));
            }
        }
        if !wanted.is_empty() {
            self.block(&wanted);
        }
        if changed {
            self.publish();
        }
    }

    fn block(&mut self, wanted: &[(IpNet, String)]) {
        let secs = self.config.block_secs;
        if let Some(firewall) = &self.firewall {
            let ips: Vec<IpNet> = wanted.iter().map(|(ip, _)| *ip).collect();
            if let Err(e) = firewall.block(&ips, secs) {
                self.report.failures += wanted.len() as u64;
                let list: Vec<String> = ips.iter().map(|n| shown(*n)).collect();
                let message = format!("cannot block {}: {e}", list.join(", "));
                eprintln!("bfp-agent: respond: {message}");
                self.status.note_error(format!("respond: {message}"));
                return;
            }
        }
        let now = now();
        for (net, reason) in wanted {
            let ip = shown(*net);
            match &self.firewall {
                None => eprintln!("bfp-agent: respond: dry run: would block {ip} for {secs}s: {reason}"),
                Some(_) => {
                    let again = if self.active.contains_key(net) { " (again: expiry renewed)" } else { "" };
                    eprintln!("bfp-agent: respond: blocked {ip} for {secs}s{again}: {reason}");
                }
            }
            self.report.blocks += 1;
            let block = Block {
                since: now,
                until: now + secs as i64,
                reason: reason.clone(),
                origin: BlockOrigin::Agent,
                decision: None,
            };
            self.active.insert(*net, block);
        }
    }

    /// Brings the collector's decisions for this device's group into force:
    /// `pushed` lists every decision in force, so one it no longer lists
    /// was revoked and is lifted now. A decision the allow-list covers (or
    /// overlaps) is refused, logged once and reported, never applied.
    pub fn apply_decisions(&mut self, pushed: &PushedDecisions) {
        self.apply_decisions_at(pushed, now());
    }

    fn apply_decisions_at(&mut self, pushed: &PushedDecisions, now: i64) {
        let mut listed: HashSet<i64> = HashSet::new();
        let mut refused: BTreeMap<i64, RefusedDecision> = BTreeMap::new();
        // Refused for the allow-list (counted as `allowed`), not for a bad
        // address or a full firewall (counted as `failures`).
        let mut for_allow_list: HashSet<i64> = HashSet::new();
        let mut wanted: Vec<(IpNet, u64, i64, String)> = Vec::new();
        for d in pushed.decisions.iter().take(MAX_PUSHED_DECISIONS) {
            listed.insert(d.id);
            if d.until <= now {
                continue;
            }
            let mut refuse = |reason: String| {
                refused.insert(d.id, RefusedDecision { decision: d.id, address: d.address.clone(), reason });
            };
            let net = match allow::parse_network(&d.address) {
                Ok(net) => net,
                Err(e) => {
                    refuse(e);
                    continue;
                }
            };
            if let Some(allowed) = self.allow.overlapping(net) {
                for_allow_list.insert(d.id);
                refuse(format!("{} {} covers it", allowed.origin, allowed.network));
                continue;
            }
            if wanted.iter().any(|(w, ..)| *w == net) {
                continue;
            }
            if self.active.get(&net).is_some_and(|b| b.decision == Some(d.id) && b.until == d.until) {
                continue;
            }
            let new = wanted.iter().filter(|(w, ..)| !self.active.contains_key(w)).count();
            if !self.active.contains_key(&net) && self.active.len() + new >= self.config.max_blocks {
                refuse(format!("{} addresses are blocked already (max_blocks)", self.active.len() + new));
                continue;
            }
            let secs = (d.until - now).clamp(1, MAX_BLOCK_SECS as i64) as u64;
            wanted.push((net, secs, d.id, format!("decision {} of group {}: {}", d.id, pushed.group, d.reason)));
        }
        let mut changed = false;
        for (id, r) in &refused {
            if !self.refused.contains_key(id) {
                changed = true;
                if for_allow_list.contains(id) {
                    self.report.allowed += 1;
                } else {
                    self.report.failures += 1;
                }
                eprintln!("bfp-agent: respond: not applying decision {id} for {}: {}", r.address, r.reason);
            }
        }
        changed |= refused.keys().ne(self.refused.keys());
        self.refused = refused;

        let revoked: Vec<IpNet> = self
            .active
            .iter()
            .filter(|(net, b)| {
                b.origin == BlockOrigin::Collector
                    && !b.decision.is_some_and(|id| listed.contains(&id))
                    && !wanted.iter().any(|(w, ..)| w == *net)
            })
            .map(|(net, _)| *net)
            .collect();
        if !revoked.is_empty() {
            changed = true;
            self.lift(&revoked);
        }
        if !wanted.is_empty() {
            changed = true;
            self.block_decisions(&wanted, now);
        }
        if changed {
            self.publish();
        }
    }

    /// Lifts revoked decisions' blocks now.
    fn lift(&mut self, nets: &[IpNet]) {
        if let Some(firewall) = &self.firewall {
            if let Err(e) = firewall.unblock(nets) {
                self.report.failures += nets.len() as u64;
                let message = format!("cannot lift revoked decisions: {e}");
                eprintln!("bfp-agent: respond: {message}");
                self.status.note_error(format!("respond: {message}"));
                return;
            }
        }
        for net in nets {
            let Some(block) = self.active.remove(net) else { continue };
            self.report.unblocks += 1;
            let what = if self.firewall.is_some() { "unblocked" } else { "dry run: would unblock" };
            let id = block.decision.map_or("?".to_string(), |id| id.to_string());
            eprintln!("bfp-agent: respond: {what} {} (decision {id} revoked)", shown(*net));
        }
    }

    fn block_decisions(&mut self, wanted: &[(IpNet, u64, i64, String)], now: i64) {
        if let Some(firewall) = &self.firewall {
            let each: Vec<(IpNet, u64)> = wanted.iter().map(|(net, secs, ..)| (*net, *secs)).collect();
            if let Err(e) = firewall.block_each(&each) {
                self.report.failures += wanted.len() as u64;
                let list: Vec<String> = wanted.iter().map(|(n, ..)| shown(*n)).collect();
                let message = format!("cannot apply decisions for {}: {e}", list.join(", "));
                eprintln!("bfp-agent: respond: {message}");
                self.status.note_error(format!("respond: {message}"));
                return;
            }
        }
        for (net, secs, id, reason) in wanted {
            let ip = shown(*net);
            match &self.firewall {
                None => eprintln!("bfp-agent: respond: dry run: would block {ip} for {secs}s: {reason}"),
                Some(_) => eprintln!("bfp-agent: respond: blocked {ip} for {secs}s: {reason}"),
            }
            self.report.blocks += 1;
            let block = Block {
                since: now,
                until: now + *secs as i64,
                reason: reason.clone(),
                origin: BlockOrigin::Collector,
                decision: Some(*id),
            };
            self.active.insert(*net, block);
        }
    }

    /// Logs and counts the blocks that have expired (the firewall lifted
    /// them by itself; a dry run's imagined ones end the same way).
    pub fn expire(&mut self) {
        self.expire_at(now());
    }

    fn expire_at(&mut self, now: i64) {
        let expired: Vec<IpNet> = self.active.iter().filter(|(_, b)| b.until <= now).map(|(ip, _)| *ip).collect();
        if expired.is_empty() {
            return;
        }
        for ip in expired {
            self.active.remove(&ip);
            self.report.unblocks += 1;
            let what = if self.firewall.is_some() { "unblocked" } else { "dry run: would unblock" };
            eprintln!("bfp-agent: respond: {what} {} (expired)", shown(ip));
        }
        self.publish();
    }

    /// Addresses (and networks) blocked now.
    pub fn active(&self) -> impl Iterator<Item = &IpNet> {
        self.active.keys()
    }

    /// The report as the heartbeat carries it.
    pub fn report(&self) -> ResponseReport {
        let mut active: Vec<(&IpNet, &Block)> = self.active.iter().collect();
        active.sort_by(|a, b| b.1.since.cmp(&a.1.since).then(a.0.cmp(b.0)));
        ResponseReport {
            active: active
                .into_iter()
                .take(MAX_REPORTED_BLOCKS)
                .map(|(ip, b)| ActiveBlock {
                    address: shown(*ip),
                    since: b.since,
                    until: b.until,
                    reason: b.reason.clone(),
                    origin: b.origin,
                    decision: b.decision,
                })
                .collect(),
            refused: self.refused.values().take(MAX_REPORTED_BLOCKS).cloned().collect(),
            ..self.report.clone()
        }
    }

    fn publish(&self) {
        if let Ok(mut slot) = self.status.response.lock() {
            *slot = Some(self.report());
        }
    }
}

/// An address without its prefix length, a network in CIDR form.
fn shown(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bfp_common::wire::RecordKind;
    use bfp_common::{Prediction, Protocol};

    fn brute_force(ip: &str) -> Record {
        Record {
            kind: RecordKind::Source,
            log: "auth".into(),
            source_ip: Some(ip.parse().unwrap()),
            user: None,
            start: 0,
            end: Some(600),
            open: false,
            login_hour: 3,
            duration_min: 10.0,
            failed_logins: 287,
            commands: Vec::new(),
            command_count: 0,
            risky_commands: Some(0),
            protocol: Protocol::Ssh,
            typing_speed: None,
            prediction: Prediction::Suspicious,
            confidence: 1.0,
            reasons: vec!["287 failed logins from this address in the last day".into()],
            model_version: "m".into(),
            campaign: None,
            learning: false,
            details: serde_json::Value::Null,
        }
    }

    fn dry_run(allow: &[&str], block_secs: u64) -> (Responder, Arc<Status>) {
        let config = RespondConfig {
            enabled: true,
            dry_run: true,
            block_secs,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            max_blocks: 2,
            ..RespondConfig::default()
        };
        let status = Arc::new(Status::default());
        let responder = Responder::start(&config, Some("http://198.51.100.5:5000"), status.clone()).unwrap().unwrap();
        (responder, status)
    }

    #[test]
    fn off_by_default_and_an_unknown_key_or_a_bad_network_is_named() {
        let status = Arc::new(Status::default());
        assert!(Responder::start(&RespondConfig::default(), None, status).unwrap().is_none());
        let bad = RespondConfig { allow: vec!["10.0.0.0/8".into(), "10.0.0/33".into()], ..RespondConfig::default() };
        let err = bad.validate().unwrap_err();
        assert!(err.contains("[respond] allow") && err.contains("10.0.0/33"), "{err}");
        for (config, key) in [
            (RespondConfig { block_secs: 0, ..RespondConfig::default() }, "block_secs"),
            (RespondConfig { min_confidence: 0.2, ..RespondConfig::default() }, "min_confidence"),
            (RespondConfig { max_blocks: 0, ..RespondConfig::default() }, "max_blocks"),
        ] {
            assert!(config.validate().unwrap_err().contains(key), "{key}");
        }
    }

    #[test]
    fn a_dry_run_counts_what_it_would_block_and_never_the_allow_list_or_the_collector() {
        let (mut responder, status) = dry_run(&["192.0.2.0/24"], 3600);
        responder.consider(&[brute_force("198.51.100.66"), brute_force("192.0.2.77"), brute_force("198.51.100.5")]);
        let active: Vec<String> = responder.active().map(|ip| shown(*ip)).collect();
        assert_eq!(active, ["198.51.100.66"]);
        let report = status.response.lock().unwrap().clone().unwrap();
        assert_eq!((report.firewall.as_str(), report.blocks, report.allowed), ("dry-run", 1, 2));
        assert_eq!(report.active.len(), 1);
        assert_eq!(report.active[0].address, "198.51.100.66");
        assert!(report.active[0].reason.contains("287 failed logins"), "{:?}", report.active[0]);
        assert_eq!(report.active[0].until - report.active[0].since, 3600);
    }

    #[test]
    fn the_bound_holds_and_a_repeat_renews_rather_than_adds() {
        let (mut responder, status) = dry_run(&[], 3600);
        // One batch names an address once.
        responder.consider(&[brute_force("203.0.113.1"), brute_force("203.0.113.2"), brute_force("203.0.113.1")]);
        assert_eq!((responder.active().count(), responder.report().blocks), (2, 2));
        // A later proof renews a block in force, even at the bound.
        responder.consider(&[brute_force("203.0.113.1")]);
        assert_eq!(responder.active().count(), 2);
        responder.consider(&[brute_force("203.0.113.3")]);
        assert_eq!(responder.active().count(), 2, "max_blocks = 2");
        let report = responder.report();
        assert_eq!((report.blocks, report.failures), (3, 1));
        assert!(status.last_error().unwrap().contains("max_blocks"));
    }

    fn pushed(decisions: &[(i64, &str, i64)]) -> PushedDecisions {
        PushedDecisions {
            group: "edge".into(),
            decisions: decisions
                .iter()
                .map(|(id, address, until)| bfp_common::wire::PushedDecision {
                    id: *id,
                    address: address.to_string(),
                    until: *until,
                    reason: "seen on pi-1".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn decisions_are_applied_refused_when_allow_listed_and_lifted_when_revoked() {
        let (mut responder, status) = dry_run(&["192.0.2.0/24"], 3600);
        responder.config.max_blocks = 10;
        let t = now();
        let first =
            pushed(&[(1, "198.51.100.66", t + 600), (2, "192.0.2.0/25", t + 600), (3, "203.0.113.0/24", t + 60)]);
        responder.apply_decisions_at(&first, t);
        let mut active: Vec<String> = responder.active().map(|n| n.to_string()).collect();
        active.sort();
        assert_eq!(active, ["198.51.100.66/32", "203.0.113.0/24"]);
        let report = status.response.lock().unwrap().clone().unwrap();
        assert_eq!((report.blocks, report.allowed), (2, 1));
        assert_eq!(report.refused.len(), 1);
        assert_eq!((report.refused[0].decision, report.refused[0].address.as_str()), (2, "192.0.2.0/25"));
        assert!(report.refused[0].reason.contains("allow-list 192.0.2.0/24"), "{:?}", report.refused);
        let decided = report.active.iter().find(|b| b.address == "198.51.100.66").unwrap();
        assert_eq!((decided.origin, decided.decision, decided.until), (BlockOrigin::Collector, Some(1), t + 600));
        assert!(decided.reason.contains("decision 1 of group edge: seen on pi-1"), "{decided:?}");
        assert_eq!(report.active.iter().find(|b| b.address == "203.0.113.0/24").unwrap().until, t + 60);

        // The same list again changes nothing and refuses nothing twice.
        responder.apply_decisions_at(&first, t + 1);
        let report = responder.report();
        assert_eq!((report.blocks, report.allowed, report.refused.len()), (2, 1, 1));

        // Decision 1 revoked: lifted at once; 3 ends at its own expiry.
        responder.apply_decisions_at(&pushed(&[(2, "192.0.2.0/25", t + 600), (3, "203.0.113.0/24", t + 60)]), t + 2);
        let active: Vec<String> = responder.active().map(|n| n.to_string()).collect();
        assert_eq!(active, ["203.0.113.0/24"]);
        assert_eq!(responder.report().unblocks, 1);
        responder.expire_at(t + 61);
        assert_eq!(responder.active().count(), 0);
        // Nothing listed: nothing refused any more either.
        responder.apply_decisions_at(&pushed(&[]), t + 62);
        assert!(responder.report().refused.is_empty());
    }

    #[test]
    fn a_decision_renews_a_local_block_and_a_bad_address_is_refused() {
        let (mut responder, _status) = dry_run(&[], 3600);
        responder.consider(&[brute_force("198.51.100.66")]);
        let t = now();
        responder.apply_decisions_at(&pushed(&[(7, "198.51.100.66", t + 7200), (8, "not-an-address", t + 60)]), t);
        let report = responder.report();
        assert_eq!(report.active.len(), 1);
        assert_eq!((report.active[0].origin, report.active[0].until), (BlockOrigin::Collector, t + 7200));
        assert_eq!((report.refused.len(), report.failures, report.allowed), (1, 1, 0));
        assert!(report.refused[0].reason.contains("neither a network"), "{:?}", report.refused);
        // Encoded as wire version 3 now that it carries decisions.
        let batch = bfp_common::wire::Batch {
            seq: 1,
            heartbeat: bfp_common::wire::Heartbeat { response: Some(report), ..Default::default() },
            records: vec![],
        };
        assert_eq!(batch.encode().unwrap()[0], 3);
    }

    #[test]
    fn expired_blocks_are_counted_as_unblocks() {
        let (mut responder, _status) = dry_run(&[], 60);
        responder.consider(&[brute_force("203.0.113.9")]);
        responder.expire();
        assert_eq!(responder.active().count(), 1, "not yet");
        responder.expire_at(now() + 61);
        assert_eq!(responder.active().count(), 0);
        assert_eq!(responder.report().unblocks, 1);
    }
}
