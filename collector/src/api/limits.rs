//! Per-client rate limits (token buckets of `governor`, in memory):
//!
//! - `POST /api/predict` and `POST /api/predict-csv`, per client address
//!   (an IPv6 client by its /64), except clients in the exempt networks
//!   (by default loopback: the original system's local clients and the
//!   load benchmarks, whose 46,000 predictions a second no per-client limit
//!   below the service's own capacity would allow);
//! - `POST /api/ingest`, per device (its token);
//! - failed authentication of any kind (an unknown, revoked or expired
//!   bearer token on any route), per client address: past the limit a wrong
//!   token gets 429 instead of 401. A right token from the same address
//!   still works: a misconfigured agent behind a NAT does not lock out its
//!   neighbours.
//!
//! The dashboard's login has its own limit (see [`super::session`]). A
//! refusal is a 429 with a JSON body and `Retry-After`, counted in
//! `bfp_requests_limited_total{route}`.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::net::client_key;

/// Above this many keys tracked, a limiter drops the ones whose bucket has
/// refilled, so many one-time clients cannot grow it without bound.
const MAX_TRACKED_KEYS: usize = 10_000;

/// The routes with a rate limit of their own.
const LIMITED_ROUTES: &[&str] = &["/api/ingest", "/api/login", "/api/predict", "/api/predict-csv"];

/// The rates, as configured. 0 turns a limit off.
#[derive(Debug, Clone)]
pub struct RateConfig {
    /// `--predict-rate`: `POST /api/predict` requests a second per client
    /// (also the burst). Default: 1,000 (the original system answered 110 a
    /// second in all; an analyst's script stays far below).
    pub predict_per_second: u32,
    /// `--predict-csv-rate`: `POST /api/predict-csv` uploads a minute per
    /// client (also the burst). Default: 60 (one a second: by hand or a
    /// script, each upload up to ten million rows).
    pub predict_csv_per_minute: u32,
    /// `--ingest-rate`: `POST /api/ingest` batches a second per device (also
    /// the burst). Default: 200 (an agent keeps one batch in flight; 100
    /// devices at full speed on this machine send 68 a second each).
    pub ingest_per_second: u32,
    /// `--auth-failure-rate`: wrong bearer tokens a minute per client (also
    /// the burst). Default: 30 (a person mistyping or an agent with a
    /// revoked token, retrying, stays below; a guesser does not).
    pub auth_failures_per_minute: u32,
    /// `--rate-limit-exempt`: client networks the predict and CSV limits do
    /// not apply to. Default: 127.0.0.0/8 and ::1 (the original system's
    /// local clients; a reverse proxy on the same host must then limit by
    /// itself).
    pub exempt: Vec<IpNet>,
}

impl Default for RateConfig {
    fn default() -> RateConfig {
        RateConfig {
            predict_per_second: 1_000,
            predict_csv_per_minute: 60,
            ingest_per_second: 200,
            auth_failures_per_minute: 30,
            exempt: default_exempt(),
        }
    }
}

/// Loopback, IPv4 and IPv6.
pub fn default_exempt() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect()
}

struct Limit<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    /// How the 429 states the limit ("1000 a second").
    rate: String,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    fn new(n: u32, per_minute: bool) -> Option<Limit<K>> {
        let n = NonZeroU32::new(n)?;
        let (quota, unit) =
            if per_minute { (Quota::per_minute(n), "a minute") } else { (Quota::per_second(n), "a second") };
        Some(Limit { limiter: RateLimiter::keyed(quota), rate: format!("{n} {unit}") })
    }

    /// `Ok` if `key` may go on, else the seconds until it may.
    fn check(&self, key: &K) -> std::result::Result<(), u64> {
        if self.limiter.len() > MAX_TRACKED_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            not_until.wait_time_from(DefaultClock::default().now()).as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

/// The limiters and what they refused.
pub struct RateLimits {
    predict: Option<Limit<IpAddr>>,
    predict_csv: Option<Limit<IpAddr>>,
    ingest: Option<Limit<i64>>,
    auth_failures: Option<Limit<IpAddr>>,
    exempt: Vec<IpNet>,
    /// Requests refused, by route.
    limited: Mutex<BTreeMap<&'static str, u64>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits").field("exempt", &self.exempt).finish_non_exhaustive()
    }
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits::new(&RateConfig::default())
    }
}

impl RateLimits {
    /// Limiters for `config`.
    pub fn new(config: &RateConfig) -> RateLimits {
        RateLimits {
            predict: Limit::new(config.predict_per_second, false),
            predict_csv: Limit::new(config.predict_csv_per_minute, true),
            ingest: Limit::new(config.ingest_per_second, false),
            auth_failures: Limit::new(config.auth_failures_per_minute, true),
            exempt: config.exempt.clone(),
            limited: Mutex::default(),
        }
    }

    /// Counts a refusal on `route`.
    pub fn count(&self, route: &'static str) {
        if let Ok(mut m) = self.limited.lock() {
            *m.entry(route).or_default() += 1;
        }
    }

    /// Requests refused so far, by route; the routes with a limit of their
    /// own are listed from the start (at 0), so their series always exist.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut all: BTreeMap<&'static str, u64> = LIMITED_ROUTES.iter().map(|r| (*r, 0)).collect();
        if let Ok(m) = self.limited.lock() {
            all.extend(m.iter().map(|(k, v)| (*k, *v)));
        }
        all.into_iter().collect()
    }

    fn refuse(&self, route: &'static str, what: &str, rate: &str, retry_after: u64) -> Error {
        self.count(route);
        Error::TooManyRequests(format!("more than {rate} {what}; retry in {retry_after} s"))
    }

    /// The per-client limit of `route` (`path` as the router spells it), if
    /// it has one: predictions and uploads by `client`, batches by `device`.
    pub fn check_route(&self, path: &str, client: Option<IpAddr>, device: Option<i64>) -> Result<()> {
        let by_client = |limit: &Option<Limit<IpAddr>>, route: &'static str, what: &str| -> Result<()> {
            let (Some(limit), Some(ip)) = (limit, client) else { return Ok(()) };
            if self.exempt.iter().any(|n| n.contains(&ip.to_canonical())) {
                return Ok(());
            }
            limit.check(&client_key(ip)).map_err(|secs| self.refuse(route, what, &limit.rate, secs))
        };
        match path {
            "/api/predict" => by_client(&self.predict, "/api/predict", "predictions from one client"),
            "/api/predict-csv" => by_client(&self.predict_csv, "/api/predict-csv", "uploads from one client"),
            "/api/ingest" => match (&self.ingest, device) {
                (Some(limit), Some(id)) => limit
                    .check(&id)
                    .map_err(|secs| self.refuse("/api/ingest", "batches from one device", &limit.rate, secs)),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// A wrong bearer token from `client` on `route`: the 401 it deserves,
    /// or 429 past the client's failure limit.
    pub fn auth_failed(&self, route: &'static str, client: Option<IpAddr>, unauthorized: Error) -> Error {
        let (Some(limit), Some(ip)) = (&self.auth_failures, client) else { return unauthorized };
        match limit.check(&client_key(ip)) {
            Ok(()) => unauthorized,
            Err(secs) => self.refuse(route, "failed authentications from one client", &limit.rate, secs),
        }
    }
}

/// The seconds in a 429's detail, for its `Retry-After` header.
pub fn retry_after(detail: &str) -> Option<u64> {
    detail.rsplit_once("retry in ")?.1.strip_suffix(" s")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_are_limited_per_client_outside_the_exempt_networks() {
        let limits = RateLimits::new(&RateConfig { predict_per_second: 3, ..RateConfig::default() });
        let remote: IpAddr = "192.0.2.9".parse().unwrap();
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        for _ in 0..3 {
            limits.check_route("/api/predict", Some(remote), None).unwrap();
        }
        let e = limits.check_route("/api/predict", Some(remote), None).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&e.to_string()).is_some_and(|s| s >= 1), "{e}");
        limits.check_route("/api/predict", Some(other), None).unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..10 {
            limits.check_route("/api/predict", Some(local), None).unwrap();
        }
        // Other routes have no per-client limit here.
        for _ in 0..10 {
            limits.check_route("/api/results", Some(remote), None).unwrap();
        }
        let refused: Vec<_> = limits.snapshot().into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(refused, vec![("/api/predict", 1)]);
        assert_eq!(limits.snapshot().len(), 4, "every limited route listed from the start");
    }

    #[test]
    fn batches_are_limited_per_device_and_failures_per_client() {
        let limits =
            RateLimits::new(&RateConfig { ingest_per_second: 2, auth_failures_per_minute: 2, ..RateConfig::default() });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        limits.check_route("/api/ingest", Some(ip), Some(1)).unwrap();
        limits.check_route("/api/ingest", Some(ip), Some(1)).unwrap();
        assert!(limits.check_route("/api/ingest", Some(ip), Some(1)).is_err());
        limits.check_route("/api/ingest", Some(ip), Some(2)).unwrap();
        let wrong = || Error::Unauthorized("unknown token".into());
        assert_eq!(limits.auth_failed("/api/ingest", Some(ip), wrong()).status().as_u16(), 401);
        assert_eq!(limits.auth_failed("/api/ingest", Some(ip), wrong()).status().as_u16(), 401);
        assert_eq!(limits.auth_failed("/api/ingest", Some(ip), wrong()).status().as_u16(), 429);
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(limits.auth_failed("/api/ingest", Some(other), wrong()).status().as_u16(), 401);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = RateLimits::new(&RateConfig { predict_per_second: 0, exempt: vec![], ..RateConfig::default() });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..5_000 {
            limits.check_route("/api/predict", Some(ip), None).unwrap();
        }
    }
}
