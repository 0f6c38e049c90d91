//! Networks never blocked: the operator's list, plus what blocking would
//! cut the device off from (itself, its link-local neighbours, the
//! collector).

use std::net::{IpAddr, ToSocketAddrs};

use ipnet::IpNet;

/// Networks every allow-list holds whatever the config says: loopback and
/// link-local (a router's own neighbours and autoconfiguration), IPv4 and
/// IPv6, and the unspecified addresses (never a real source).
const ALWAYS: [&str; 6] = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10", "0.0.0.0/32", "::/128"];

/// Parses one allow-list entry: a network in CIDR form (`10.0.0.0/8`,
/// `2001:db8::/32`) or a single address.
pub fn parse_network(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        // Written with host bits set (10.1.2.3/8): the network it names.
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is neither a network (10.0.0.0/8, 2001:db8::/32) nor an address"))
}

/// Why an address is never blocked: the network that covers it and where
/// that network came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// The covering network.
    pub network: IpNet,
    /// `allow-list`, `always` (loopback, link-local) or `collector`.
    pub origin: &'static str,
}

/// The networks never blocked.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    networks: Vec<Allowed>,
}

impl AllowList {
    /// The operator's networks (already validated) plus the built-in ones
    /// and the collector's addresses.
    pub fn new(configured: &[String], collector_url: Option<&str>) -> Result<AllowList, String> {
        let mut networks = Vec::new();
        for entry in ALWAYS {
            networks.push(Allowed { network: parse_network(entry)?, origin: "always" });
        }
        for entry in configured {
            networks.push(Allowed { network: parse_network(entry)?, origin: "allow-list" });
        }
        if let Some(url) = collector_url {
            for ip in collector_addresses(url) {
                networks.push(Allowed { network: IpNet::from(ip), origin: "collector" });
            }
        }
        Ok(AllowList { networks })
    }

    /// The entry that covers `ip`, if any. An IPv4 address written as
    /// IPv6 (`::ffff:192.0.2.1`) is judged as the IPv4 address it is.
    pub fn covering(&self, ip: IpAddr) -> Option<&Allowed> {
        let ip = ip.to_canonical();
        self.networks.iter().find(|a| a.network.contains(&ip))
    }

    /// The entry that covers any part of `net` (it contains `net`, or `net`
    /// contains it): a decision for a network is refused whole rather than
    /// blocked around the allow-listed part.
    pub fn overlapping(&self, net: IpNet) -> Option<&Allowed> {
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(IpNet::V6(v6))
                }
                _ => IpNet::V6(v6),
            },
            other => other,
        };
        self.networks.iter().find(|a| a.network.contains(&net) || net.contains(&a.network))
    }

    /// Every network, for the start-up message.
    pub fn networks(&self) -> impl Iterator<Item = &Allowed> {
        self.networks.iter()
    }
}

/// The collector's addresses: the URL's host if it is an address, else what
/// it resolves to now. A name that does not resolve at start is reported
/// by the caller (the forwarder says so too); nothing is added for it.
fn collector_addresses(url: &str) -> Vec<IpAddr> {
    let Ok(url) = reqwest::Url::parse(url) else { return Vec::new() };
    let port = url.port_or_known_default().unwrap_or(443);
    let Some(host) = url.host_str() else { return Vec::new() };
    // An IPv6 host comes bracketed (`[2001:db8::5]`).
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return vec![ip.to_canonical()];
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| a.ip().to_canonical()).collect(),
        Err(e) => {
            eprintln!(
                "bfp-agent: respond: warning: collector host {host} does not resolve now ({e}); it is not on the \
                 allow-list"
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_addresses_and_mistakes() {
        assert_eq!(parse_network("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network(" 192.0.2.7 ").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(parse_network("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        for bad in ["10.0.0.0/33", "300.1.1.1", "example.org", "", "10.0.0.0/"] {
            let err = parse_network(bad).unwrap_err();
            assert!(err.contains("neither a network"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn loopback_link_local_the_operators_networks_and_the_collector_are_covered() {
        let list = AllowList::new(&["192.0.2.0/24".into()], Some("http://198.51.100.5:5000")).unwrap();
        for (addr, origin) in [
            ("127.0.0.1", "always"),
            ("::1", "always"),
            ("169.254.10.1", "always"),
            ("fe80::1", "always"),
            ("192.0.2.77", "allow-list"),
            ("::ffff:192.0.2.77", "allow-list"),
            ("198.51.100.5", "collector"),
        ] {
            assert_eq!(list.covering(ip(addr)).map(|a| a.origin), Some(origin), "{addr}");
        }
        for addr in ["198.51.100.66", "203.0.113.7", "2001:db8::7", "192.0.3.1"] {
            assert_eq!(list.covering(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn a_network_overlapping_an_allowed_one_either_way_is_covered() {
        let list = AllowList::new(&["192.0.2.0/24".into()], None).unwrap();
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(list.overlapping(net("192.0.2.77/32")).map(|a| a.origin), Some("allow-list"));
        assert_eq!(list.overlapping(net("192.0.0.0/16")).map(|a| a.origin), Some("allow-list"), "contains it");
        assert_eq!(list.overlapping(net("192.0.2.128/25")).map(|a| a.origin), Some("allow-list"), "inside it");
        assert_eq!(list.overlapping(net("127.0.0.0/16")).map(|a| a.origin), Some("always"));
        assert_eq!(list.overlapping(net("::ffff:192.0.2.9/128")).map(|a| a.origin), Some("allow-list"));
        assert_eq!(list.overlapping(net("203.0.113.0/24")), None);
        assert_eq!(list.overlapping(net("2001:db8::/32")), None);
    }

    #[test]
    fn a_collector_named_by_host_is_covered_by_what_the_name_resolves_to() {
        let list = AllowList::new(&[], Some("https://localhost:5000")).unwrap();
        assert!(list.networks().any(|a| a.origin == "collector"));
        let list = AllowList::new(&[], Some("http://[2001:db8::5]:5000")).unwrap();
        assert_eq!(list.covering(ip("2001:db8::5")).map(|a| a.origin), Some("collector"));
    }
}
