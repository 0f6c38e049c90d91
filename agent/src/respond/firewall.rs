//! The device's firewall, driven through its own command-line tools (the
//! agent links no netlink library; `nft` and `ipset` are what an operator
//! would type, so every change can be read and undone by hand).
//!
//! nftables: a table of the agent's own, `inet bfp`, with one set of
//! addresses per family whose elements carry their own timeout, so the
//! kernel lifts a block at its expiry even if the agent is stopped, one set
//! of networks per family (interval sets, for collector decisions naming a
//! CIDR network), and a chain on the input hook, ahead of the
//! distribution's filter (priority -10), that drops what the sets hold. On
//! OpenWrt fw4 manages only `inet fw4`, so the two live side by side. Where
//! `nft` is missing: ipset sets with timeouts (`hash:ip` for addresses,
//! `hash:net` for networks) and one iptables/ip6tables rule each.

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use super::FirewallKind;

/// The nftables table the agent owns (family `inet`).
pub const NFT_TABLE: &str = "bfp";
/// The ipset sets the agent owns, IPv4 and IPv6.
pub const IPSET_V4: &str = "bfp-blocked4";
/// See [`IPSET_V4`].
pub const IPSET_V6: &str = "bfp-blocked6";
/// The ipset sets of networks the agent owns, IPv4 and IPv6.
pub const IPSET_NETS_V4: &str = "bfp-nets4";
/// See [`IPSET_NETS_V4`].
pub const IPSET_NETS_V6: &str = "bfp-nets6";

/// A block still in force in the firewall, found at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// The address (a /32 or /128) or network.
    pub ip: IpNet,
    /// Seconds until the kernel lifts it.
    pub expires_in: u64,
}

/// The firewall the agent blocks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firewall {
    /// nftables (`nft`).
    Nftables,
    /// iptables with ipset; `ip6tables` may be missing (then IPv6 blocks fail).
    Iptables {
        /// `ip6tables` is there.
        ipv6: bool,
    },
}

impl Firewall {
    /// Finds the tool `kind` asks for (`auto`: nft, else iptables with
    /// ipset) on `PATH`, or says what to install.
    pub fn detect(kind: FirewallKind) -> Result<Firewall, String> {
        let nft = runs("nft");
        let iptables = runs("iptables") && runs("ipset");
        match kind {
            FirewallKind::Nftables if nft => Ok(Firewall::Nftables),
            FirewallKind::Iptables if iptables => Ok(Firewall::Iptables { ipv6: runs("ip6tables") }),
            FirewallKind::Auto if nft => Ok(Firewall::Nftables),
            FirewallKind::Auto if iptables => Ok(Firewall::Iptables { ipv6: runs("ip6tables") }),
            FirewallKind::Nftables => Err("`nft` is not on PATH: install nftables (apt install nftables; opkg \
                                           install nftables), or set firewall = \"auto\""
                .into()),
            FirewallKind::Iptables => Err("`iptables` and `ipset` are not both on PATH: install them (apt install \
                                           iptables ipset), or set firewall = \"auto\""
                .into()),
            FirewallKind::Auto => Err("neither `nft` nor `iptables` with `ipset` is on PATH: install nftables (apt \
                                       install nftables; opkg install nftables) or iptables and ipset, or set \
                                       [respond] enabled = false (dry_run = true needs neither)"
                .into()),
        }
    }

    /// `nftables` or `iptables`, as the heartbeat reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Firewall::Nftables => "nftables",
            Firewall::Iptables { .. } => "iptables",
        }
    }

    /// Where the blocks live, for the start-up message.
    pub fn describe(&self) -> String {
        match self {
            Firewall::Nftables => {
                format!("nftables table inet {NFT_TABLE} (sets blocked4, blocked6, nets4, nets6)")
            }
            Firewall::Iptables { ipv6: true } => {
                format!("ipset {IPSET_V4}/{IPSET_V6}/{IPSET_NETS_V4}/{IPSET_NETS_V6} with iptables and ip6tables")
            }
            Firewall::Iptables { ipv6: false } => format!(
                "ipset {IPSET_V4}/{IPSET_NETS_V4} with iptables (no ip6tables: IPv6 addresses cannot be blocked)"
            ),
        }
    }

    /// Creates the agent's table (sets and chain) or sets and rules, keeping
    /// the blocks already in them: a restarted agent lifts nothing.
    pub fn setup(&self, max_blocks: usize) -> Result<(), String> {
        match self {
            Firewall::Nftables => {
                // `add` leaves an existing table and set as they are; the
                // chain is refilled so an older agent's rules do not stay.
                // The sets get no `size`: an existing set of another size
                // would refuse the `add`; the agent bounds them itself.
                let script = format!(
                    "add table inet {t}\n\
                     add set inet {t} blocked4 {{ type ipv4_addr; flags timeout; }}\n\
                     add set inet {t} blocked6 {{ type ipv6_addr; flags timeout; }}\n\
                     add set inet {t} nets4 {{ type ipv4_addr; flags interval, timeout; }}\n\
                     add set inet {t} nets6 {{ type ipv6_addr; flags interval, timeout; }}\n\
                     add chain inet {t} input {{ type filter hook input priority -10; policy accept; }}\n\
                     flush chain inet {t} input\n\
                     add rule inet {t} input ip saddr @blocked4 drop\n\
                     add rule inet {t} input ip6 saddr @blocked6 drop\n\
                     add rule inet {t} input ip saddr @nets4 drop\n\
                     add rule inet {t} input ip6 saddr @nets6 drop\n",
                    t = NFT_TABLE
                );
                nft_script(&script)
            }
            Firewall::Iptables { ipv6 } => {
                let max = max_blocks.to_string();
                let mut families =
                    vec![("iptables", IPSET_V4, "hash:ip", "inet"), ("iptables", IPSET_NETS_V4, "hash:net", "inet")];
                if *ipv6 {
                    families.push(("ip6tables", IPSET_V6, "hash:ip", "inet6"));
                    families.push(("ip6tables", IPSET_NETS_V6, "hash:net", "inet6"));
                }
                for (tables, set, kind, family) in families {
                    run("ipset", &["create", set, kind, "family", family, "timeout", "0", "maxelem", &max, "-exist"])?;
                    let rule = ["INPUT", "-m", "set", "--match-set", set, "src", "-j", "DROP"];
                    let check: Vec<&str> = ["-w", "-C"].into_iter().chain(rule).collect();
                    if run(tables, &check).is_err() {
                        let insert: Vec<&str> = ["-w", "-I"].into_iter().chain(rule).collect();
                        run(tables, &insert)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Blocks every address or network of `nets` for `secs` seconds in one
    /// transaction (all or none); a block already there gets the new expiry.
    pub fn block(&self, nets: &[IpNet], secs: u64) -> Result<(), String> {
        self.block_each(&nets.iter().map(|n| (*n, secs)).collect::<Vec<_>>())
    }

    /// Blocks each address or network for its own number of seconds, in one
    /// transaction (all or none).
    pub fn block_each(&self, nets: &[(IpNet, u64)]) -> Result<(), String> {
        match self {
            Firewall::Nftables => {
                // Per element: add (so the delete cannot fail), delete, add
                // with the new timeout (a plain add would keep the old one).
                // One transaction: never unblocked in between.
                let mut script = String::new();
                for (net, secs) in nets {
                    let (set, elem) = nft_element(*net);
                    script.push_str(&format!(
                        "add element inet {t} {set} {{ {elem} timeout {secs}s }}\n\
                         delete element inet {t} {set} {{ {elem} }}\n\
                         add element inet {t} {set} {{ {elem} timeout {secs}s }}\n",
                        t = NFT_TABLE
                    ));
                }
                nft_script(&script)
            }
            Firewall::Iptables { ipv6 } => {
                if let Some((net, _)) = nets.iter().find(|(n, _)| matches!(n, IpNet::V6(_)) && !ipv6) {
                    return Err(format!("cannot block {net}: ip6tables is not on PATH"));
                }
                // `ipset restore` applies the lines in one run; -exist
                // re-sets the timeout of an element already there.
                let mut script = String::new();
                for (net, secs) in nets {
                    let (set, elem) = ipset_element(*net);
                    script.push_str(&format!("add {set} {elem} timeout {secs}\n"));
                }
                with_stdin("ipset", &["restore", "-exist"], &script)
            }
        }
    }

    /// Lifts the blocks of `nets` now, in one transaction; one that is not
    /// (or no longer) there is no error.
    pub fn unblock(&self, nets: &[IpNet]) -> Result<(), String> {
        match self {
            Firewall::Nftables => {
                // Add first so the delete cannot fail on a missing element;
                // an add keeps an existing element as it is.
                let mut script = String::new();
                for net in nets {
                    let (set, elem) = nft_element(*net);
                    script.push_str(&format!(
                        "add element inet {t} {set} {{ {elem} timeout 1s }}\n\
                         delete element inet {t} {set} {{ {elem} }}\n",
                        t = NFT_TABLE
                    ));
                }
                nft_script(&script)
            }
            Firewall::Iptables { .. } => {
                let mut script = String::new();
                for net in nets {
                    let (set, elem) = ipset_element(*net);
                    script.push_str(&format!("del {set} {elem}\n"));
                }
                with_stdin("ipset", &["restore", "-exist"], &script)
            }
        }
    }

    /// The blocks in force now (after a restart: the earlier run's).
    pub fn existing(&self) -> Result<Vec<Existing>, String> {
        match self {
            Firewall::Nftables => {
                let mut found = Vec::new();
                for set in ["blocked4", "blocked6", "nets4", "nets6"] {
                    let json = output("nft", &["-j", "list", "set", "inet", NFT_TABLE, set])?;
                    found.extend(parse_nft_elements(&json)?);
                }
                Ok(found)
            }
            Firewall::Iptables { ipv6 } => {
                let mut found = parse_ipset_save(&output("ipset", &["save", IPSET_V4])?);
                found.extend(parse_ipset_save(&output("ipset", &["save", IPSET_NETS_V4])?));
                if *ipv6 {
                    found.extend(parse_ipset_save(&output("ipset", &["save", IPSET_V6])?));
                    found.extend(parse_ipset_save(&output("ipset", &["save", IPSET_NETS_V6])?));
                }
                Ok(found)
            }
        }
    }
}

/// A single address (a /32 or /128).
fn is_host(net: IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

/// The nft set and element text of `net`: an address goes in the address
/// set, a network in the interval set.
fn nft_element(net: IpNet) -> (&'static str, String) {
    match (net, is_host(net)) {
        (IpNet::V4(_), true) => ("blocked4", net.addr().to_string()),
        (IpNet::V6(_), true) => ("blocked6", net.addr().to_string()),
        (IpNet::V4(_), false) => ("nets4", net.to_string()),
        (IpNet::V6(_), false) => ("nets6", net.to_string()),
    }
}

/// The ipset set and element text of `net`.
fn ipset_element(net: IpNet) -> (&'static str, String) {
    match (net, is_host(net)) {
        (IpNet::V4(_), true) => (IPSET_V4, net.addr().to_string()),
        (IpNet::V6(_), true) => (IPSET_V6, net.addr().to_string()),
        (IpNet::V4(_), false) => (IPSET_NETS_V4, net.to_string()),
        (IpNet::V6(_), false) => (IPSET_NETS_V6, net.to_string()),
    }
}

/// An element's value as `nft -j` writes it: an address, or
/// `{"prefix": {"addr": A, "len": N}}` in an interval set.
fn nft_value(val: &serde_json::Value) -> Option<IpNet> {
    if let Some(text) = val.as_str() {
        return text.parse::<IpAddr>().ok().map(IpNet::from);
    }
    let prefix = val.get("prefix")?;
    let addr: IpAddr = prefix.get("addr")?.as_str()?.parse().ok()?;
    let len = u8::try_from(prefix.get("len")?.as_u64()?).ok()?;
    IpNet::new(addr, len).ok()
}

/// The tool starts (`--version` answers) from `PATH`.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `program args`, its standard error the error's text.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    output(program, args).map(|_| ())
}

fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Applies an nft script in one transaction (`nft -f -`): all of it or none.
fn nft_script(script: &str) -> Result<(), String> {
    with_stdin("nft", &["-f", "-"], script)
}

/// Runs `program args` with `input` on its standard input.
fn with_stdin(program: &str, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The elements of `nft -j list set`: `{"elem": {"val": ADDR, "expires": SECS}}`.
fn parse_nft_elements(json: &str) -> Result<Vec<Existing>, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("nft -j: {e}"))?;
    let mut found = Vec::new();
    let items = value.get("nftables").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    for item in items {
        let Some(elems) = item.get("set").and_then(|s| s.get("elem")).and_then(|e| e.as_array()) else { continue };
        for elem in elems {
            let elem = elem.get("elem").unwrap_or(elem);
            let (Some(ip), Some(expires)) =
                (elem.get("val").and_then(nft_value), elem.get("expires").and_then(|v| v.as_u64()))
            else {
                continue;
            };
            found.push(Existing { ip, expires_in: expires });
        }
    }
    Ok(found)
}

/// The `add SET ADDR timeout SECS` lines of `ipset save`.
fn parse_ipset_save(text: &str) -> Vec<Existing> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["add", _, ip, "timeout", secs, ..] => {
                    let ip = ip.parse::<IpNet>().ok().or_else(|| ip.parse::<IpAddr>().ok().map(IpNet::from))?;
                    Some(Existing { ip, expires_in: secs.parse().ok()? })
                }
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_blocks_nft_lists() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "blocked4", "table": "bfp", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": [{"elem": {"val": "198.51.100.66", "timeout": 9, "expires": 8}}, {"elem": {"val": "203.0.113.7", "timeout": 3600, "expires": 3599}}]}}]}"#;
        let found = parse_nft_elements(json).unwrap();
        assert_eq!(
            found,
            vec![
                Existing { ip: "198.51.100.66/32".parse().unwrap(), expires_in: 8 },
                Existing { ip: "203.0.113.7/32".parse().unwrap(), expires_in: 3599 },
            ]
        );
        // An interval set's network, as nft 1.0.6 lists it.
        let nets = r#"{"nftables": [{"metainfo": {}}, {"set": {"family": "inet", "name": "nets4", "table": "bfp", "type": "ipv4_addr", "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 24}}, "timeout": 90, "expires": 89}}]}}]}"#;
        assert_eq!(
            parse_nft_elements(nets).unwrap(),
            vec![Existing { ip: "203.0.113.0/24".parse().unwrap(), expires_in: 89 }]
        );
        let empty = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "blocked6"}}]}"#;
        assert!(parse_nft_elements(empty).unwrap().is_empty());
        assert!(parse_nft_elements("not json").is_err());
    }

    #[test]
    fn reads_the_blocks_ipset_saves() {
        let text = "create bfp-blocked4 hash:ip family inet hashsize 1024 maxelem 4096 timeout 0\n\
                    add bfp-blocked4 198.51.100.66 timeout 3580\nadd bfp-blocked4 junk timeout 1\n\
                    add bfp-nets4 203.0.113.0/24 timeout 60\n";
        assert_eq!(
            parse_ipset_save(text),
            vec![
                Existing { ip: "198.51.100.66/32".parse().unwrap(), expires_in: 3580 },
                Existing { ip: "203.0.113.0/24".parse().unwrap(), expires_in: 60 },
            ]
        );
    }

    #[test]
    fn addresses_and_networks_go_to_their_own_sets() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(nft_element(net("198.51.100.66/32")), ("blocked4", "198.51.100.66".to_string()));
        assert_eq!(nft_element(net("2001:db8::66/128")), ("blocked6", "2001:db8::66".to_string()));
        assert_eq!(nft_element(net("203.0.113.0/24")), ("nets4", "203.0.113.0/24".to_string()));
        assert_eq!(nft_element(net("2001:db8::/32")), ("nets6", "2001:db8::/32".to_string()));
        assert_eq!(ipset_element(net("203.0.113.0/24")), (IPSET_NETS_V4, "203.0.113.0/24".to_string()));
        assert_eq!(ipset_element(net("198.51.100.66/32")), (IPSET_V4, "198.51.100.66".to_string()));
    }
}
