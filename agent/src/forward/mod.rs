//! Forwarding to the collector: a thread that sends the spool's records in
//! numbered batches (`POST /api/ingest`, postcard, bearer token), retries
//! with exponential backoff and jitter, sends a heartbeat when idle, and
//! fetches newer models (`GET /api/model`).
//!
//! It uses reqwest's blocking client (HTTP/1.1, rustls with ring; a CA file
//! may be given to trust a self-signed collector). The spool decides what is
//! sent and keeps it until acknowledged; this thread only moves bytes.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bfp_common::wire::{self, Batch, Heartbeat, PushedDecisions, ResponseReport};
use sha2::{Digest, Sha256};

use crate::config::CollectorConfig;
use crate::error::{Error, Result};
use crate::scoring::Scorer;
use crate::spool::Spool;
use crate::state::StateDir;

/// What the run loop tells the forwarder (and the forwarder the heartbeat).
#[derive(Debug, Default)]
pub struct Status {
    /// Lines read since start.
    pub lines_read: AtomicU64,
    /// Version of the model scoring now.
    pub model_version: Mutex<String>,
    /// A model fetched from the collector, for the run loop to swap in.
    pub new_model: Mutex<Option<Scorer>>,
    /// The firewall response's report (`None` when it is off).
    pub response: Mutex<Option<ResponseReport>>,
    /// The responder applies collector decisions: the forwarder fetches them.
    pub wants_decisions: AtomicBool,
    /// The decisions last fetched, for the run loop to apply.
    pub decisions: Mutex<Option<PushedDecisions>>,
    /// The collector answered 404 to the decisions fetch (said once).
    no_decisions_route: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The collector's model last refused for its schema (said once).
    refused_model: Mutex<Option<String>>,
}

impl Status {
    /// The last error, for the heartbeat.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Records an error another part of the agent has logged already.
    pub(crate) fn note_error(&self, e: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(e);
        }
    }

    /// Clears the last error if it is one of `prefix`'s (that part works
    /// again), saying so once.
    fn clear_error_of(&self, prefix: &str) {
        if let Ok(mut last) = self.last_error.lock() {
            if last.as_deref().is_some_and(|e| e.starts_with(prefix)) {
                eprintln!("bfp-agent: collector: {} working again", prefix.trim_end_matches(": "));
                *last = None;
            }
        }
    }

    fn set_error(&self, e: Option<String>) {
        if let Ok(mut last) = self.last_error.lock() {
            // Said once per change, not at every retry.
            match (&e, &*last) {
                (Some(new), old) if old.as_ref() != Some(new) => eprintln!("bfp-agent: collector: {new}"),
                (None, Some(_)) => eprintln!("bfp-agent: collector: delivering again"),
                _ => {}
            }
            *last = e;
        }
    }
}

/// Builds the HTTP client: rustls with ring; only `ca_file`'s certificates
/// are trusted when it is given.
pub fn client(config: &CollectorConfig) -> Result<reqwest::blocking::Client> {
    // Ignored if already installed (a second forwarder in tests).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(config.timeout_secs))
        .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
        .user_agent(concat!("bfp-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(Error::io(path))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| Error::Forward(format!("ca_file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Forward(format!("ca_file {}: no certificate in it", path.display())));
        }
        builder = builder.tls_certs_only(certs);
    } else if config.urls().all(|url| url.starts_with("http://")) {
        // Plain HTTP needs no roots: not loading the system's store keeps
        // a megabyte or so of certificates out of the agent's memory.
        builder = builder.tls_certs_only(Vec::new());
    }
    builder.build().map_err(|e| Error::Forward(format!("HTTP client: {e}")))
}

/// Why a delivery failed.
struct PostError {
    message: String,
    /// The collector answered 401/403: the token is wrong or revoked.
    refused: bool,
}

/// The forwarding thread's state.
pub struct Forwarder {
    config: CollectorConfig,
    client: reqwest::blocking::Client,
    spool: Arc<Mutex<Spool>>,
    status: Arc<Status>,
    state: StateDir,
    rng: oorandom::Rand64,
    /// Index into `config.urls()` of the collector in use.
    active: usize,
}

/// Exponential backoff with jitter: `base * 2^failures`, capped, then a
/// uniform draw in its upper half (so agents that lost the collector at the
/// same moment do not come back in step).
pub fn backoff(failures: u32, max: Duration, rng: &mut oorandom::Rand64) -> Duration {
    let base = Duration::from_millis(500);
    let full = base.saturating_mul(1u32 << failures.min(16)).min(max);
    let half = full / 2;
    half + Duration::from_nanos(rng.rand_range(0..(half.as_nanos() as u64).max(1)))
}

impl Forwarder {
    /// A forwarder over `spool` (already recovered).
    pub fn new(
        config: CollectorConfig,
        spool: Arc<Mutex<Spool>>,
        status: Arc<Status>,
        state: StateDir,
    ) -> Result<Forwarder> {
        let client = client(&config)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        Ok(Forwarder { config, client, spool, status, state, rng: oorandom::Rand64::new(u128::from(seed)), active: 0 })
    }

    /// Starts the thread; it returns when `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("bfp-forward".into()).spawn(move || self.run(&stop))
    }

    fn heartbeat(&self, spool: &Spool, in_batch: u64) -> Heartbeat {
        Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            model_version: self.status.model_version.lock().map(|v| v.clone()).unwrap_or_default(),
            // What waits besides this batch.
            spool_depth: spool.depth().saturating_sub(in_batch),
            dropped: spool.dropped(),
            lines_read: self.status.lines_read.load(Ordering::Relaxed),
            last_error: self.status.last_error(),
            response: self.status.response.lock().ok().and_then(|r| r.clone()),
        }
    }

    fn lock_spool(&self) -> Result<std::sync::MutexGuard<'_, Spool>> {
        self.spool.lock().map_err(|_| Error::Spool("spool lock poisoned".into()))
    }

    /// The batch to send: the one in flight, else a new one from the spool,
    /// else (`idle` true) a heartbeat.
    fn next_batch(&mut self) -> Result<(Vec<u8>, bool)> {
        let mut spool = self.lock_spool()?;
        if let Some(bytes) = spool.inflight()? {
            return Ok((bytes, false));
        }
        let (records, end) = spool.peek(self.config.batch_max_records)?;
        if records.is_empty() {
            let heartbeat = self.heartbeat(&spool, 0);
            let bytes = Batch { seq: 0, heartbeat, records }.encode().map_err(|e| Error::Spool(e.to_string()))?;
            return Ok((bytes, true));
        }
        let n = records.len() as u64;
        let heartbeat = self.heartbeat(&spool, n);
        let bytes = spool.begin(n, end, |seq| {
            Batch { seq, heartbeat, records }.encode().map_err(|e| Error::Spool(format!("encode batch: {e}")))
        })?;
        Ok((bytes, false))
    }

    fn post(&self, body: Vec<u8>) -> std::result::Result<(), PostError> {
        let url = format!("{}/api/ingest", self.base_url());
        let response = self
            .client
            .post(&url)
            .bearer_auth(&self.config.token)
            .header(reqwest::header::CONTENT_TYPE, wire::CONTENT_TYPE)
            .body(body)
            .send()
            .map_err(|e| PostError { message: format!("{url}: {}", error_chain(&e)), refused: false })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let refused = matches!(status.as_u16(), 401 | 403);
        let text = response.text().unwrap_or_default();
        let mut message = format!("{url}: HTTP {status}: {}", text.chars().take(300).collect::<String>());
        if refused {
            message = format!(
                "the collector refused this device's token ({message}); retrying every {}s \
                 (a new token: bfp-collector device add NAME, then [collector] token)",
                self.config.refused_retry_secs
            );
        }
        Err(PostError { message, refused })
    }

    /// The collector in use, without a trailing `/`.
    fn base_url(&self) -> &str {
        self.config.urls().nth(self.active).unwrap_or(&self.config.url).trim_end_matches('/')
    }

    /// After a failure: moves to the next collector; true when that one
    /// has not failed yet in this round, so it is tried at once rather than
    /// after a back-off (one collector down must not slow the agent).
    fn fail_over(&mut self, failed_in_round: &mut usize) -> bool {
        let count = self.config.urls().count();
        self.active = (self.active + 1) % count;
        *failed_in_round += 1;
        if *failed_in_round < count {
            return true;
        }
        *failed_in_round = 0;
        false
    }

    /// Sleeps up to `d`, waking early on `stop`.
    fn sleep(d: Duration, stop: &AtomicBool) {
        let until = Instant::now() + d;
        while !stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn run(&mut self, stop: &AtomicBool) {
        let mut failures = 0u32;
        let mut failed_in_round = 0usize;
        let heartbeat_every = Duration::from_secs(self.config.heartbeat_secs);
        let mut last_contact = Instant::now() - heartbeat_every;
        let model_every = Duration::from_secs(self.config.model_check_secs);
        let mut next_model_check = Instant::now();
        let max_backoff = Duration::from_secs(self.config.backoff_max_secs);
        let mut next_decisions_fetch = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let (body, idle) = match self.next_batch() {
                Ok(b) => b,
                Err(e) => {
                    self.status.set_error(Some(e.to_string()));
                    Self::sleep(backoff(failures, max_backoff, &mut self.rng), stop);
                    failures = failures.saturating_add(1);
                    continue;
                }
            };
            if !idle || last_contact.elapsed() >= heartbeat_every {
                match self.post(body) {
                    Ok(()) => {
                        last_contact = Instant::now();
                        failed_in_round = 0;
                        if failures > 0 {
                            self.status.set_error(None);
                        }
                        failures = 0;
                        if !idle {
                            if let Err(e) = self.lock_spool().and_then(|mut s| s.ack()) {
                                self.status.set_error(Some(e.to_string()));
                            }
                            continue;
                        }
                    }
                    // A refused token will not heal by retrying soon: only
                    // an operator fixes it, so wait long, not the network's
                    // backoff.
                    Err(PostError { message, refused: true }) => {
                        self.status.set_error(Some(message));
                        Self::sleep(Duration::from_secs(self.config.refused_retry_secs), stop);
                        failures = failures.saturating_add(1);
                        continue;
                    }
                    Err(PostError { message, refused: false }) => {
                        self.status.set_error(Some(message));
                        if self.fail_over(&mut failed_in_round) {
                            continue;
                        }
                        Self::sleep(backoff(failures, max_backoff, &mut self.rng), stop);
                        failures = failures.saturating_add(1);
                        continue;
                    }
                }
            }
            if self.status.wants_decisions.load(Ordering::Relaxed) && Instant::now() >= next_decisions_fetch {
                next_decisions_fetch = Instant::now() + heartbeat_every;
                match self.fetch_decisions() {
                    Ok(()) => self.status.clear_error_of("decisions: "),
                    Err(e) => self.status.set_error(Some(format!("decisions: {e}"))),
                }
            }
            if self.config.model_check_secs > 0 && Instant::now() >= next_model_check {
                next_model_check = Instant::now() + model_every;
                if let Err(e) = self.check_model() {
                    self.status.set_error(Some(format!("model update: {e}")));
                }
            }
            Self::sleep(Duration::from_millis(200), stop);
        }
    }

    /// Fetches the decisions in force for this device's group and hands
    /// them to the run loop. A collector from before decisions answers 404:
    /// said once, and nothing is applied (nor lifted).
    fn fetch_decisions(&self) -> std::result::Result<(), String> {
        let url = format!("{}/api/agent/decisions", self.base_url());
        let response = self.client.get(&url).bearer_auth(&self.config.token).send().map_err(|e| error_chain(&e))?;
        // 404 from a collector without the route; 501 from a server that is
        // no collector at all (a test receiver, a proxy page).
        if matches!(response.status().as_u16(), 404 | 501) {
            if !self.status.no_decisions_route.swap(true, Ordering::Relaxed) {
                eprintln!("bfp-agent: collector {} pushes no decisions (it predates them)", self.base_url());
            }
            return Ok(());
        }
        let response = response.error_for_status().map_err(|e| error_chain(&e))?;
        let bytes = response.bytes().map_err(|e| error_chain(&e))?;
        let pushed: PushedDecisions =
            serde_json::from_slice(&bytes).map_err(|e| format!("{url}: not a list of decisions: {e}"))?;
        if let Ok(mut slot) = self.status.decisions.lock() {
            *slot = Some(pushed);
        }
        Ok(())
    }

    /// Fetches the collector's model if its version differs from ours,
    /// verifies it (checksum, format, schema), stores it atomically and hands
    /// it to the run loop.
    fn check_model(&self) -> std::result::Result<(), String> {
        let base = self.base_url();
        // The agents' model, not the one /api/predict scores with.
        let schema = bfp_common::schema::AGENT_SCHEMA;
        let info: serde_json::Value = self
            .client
            .get(format!("{base}/api/model/version?schema={schema}"))
            // The collector serves its models to devices only, never to anyone.
            .bearer_auth(&self.config.token)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map_err(|e| error_chain(&e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("/api/model/version: {e}")))?;
        let Some(version) = info.get("model_version").and_then(|v| v.as_str()) else {
            return Err("no model_version in /api/model/version".into());
        };
        let current = self.status.model_version.lock().map(|v| v.clone()).unwrap_or_default();
        if version == current {
            return Ok(());
        }
        // A collector from before agent models were served answers with its
        // /api/predict model (schema 1): taking it would silently drop this
        // agent's novelty and source features.
        let served = info.get("schema_version").and_then(|v| v.as_u64());
        // Not an error (nothing is wrong with the link): said once per version.
        if served != Some(u64::from(schema)) {
            if let Ok(mut refused) = self.status.refused_model.lock() {
                if refused.as_deref() != Some(version) {
                    eprintln!(
                        "bfp-agent: collector serves model {version} of feature schema {}; this agent scores schema \
                         {schema} and keeps {current}",
                        served.map_or("?".to_string(), |s| s.to_string()),
                    );
                    *refused = Some(version.to_string());
                }
            }
            return Ok(());
        }
        let response = self
            .client
            .get(format!("{base}/api/model?schema={schema}"))
            .bearer_auth(&self.config.token)
            .send()
            .and_then(|r| r.error_for_status())
            .map_err(|e| error_chain(&e))?;
        let sha = response
            .headers()
            .get("x-bfp-model-sha256")
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .ok_or("no x-bfp-model-sha256 header")?;
        let bytes = response.bytes().map_err(|e| error_chain(&e))?;
        let actual: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        if actual != sha {
            return Err(format!("checksum mismatch (header {sha}, body {actual})"));
        }
        let scorer = Scorer::from_bytes(&bytes, Path::new("<collector>")).map_err(|e| e.to_string())?;
        self.state.save_fetched_model(&bytes).map_err(|e| e.to_string())?;
        eprintln!("bfp-agent: model {} from the collector (was {current})", scorer.version());
        if let Ok(mut slot) = self.status.new_model.lock() {
            *slot = Some(scorer);
        }
        Ok(())
    }
}

/// An error with its causes (reqwest's top level says little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decisions_error_clears_when_decisions_work_again_and_no_other_error_does() {
        let status = Status::default();
        status.set_error(Some("decisions: connection refused".into()));
        status.clear_error_of("decisions: ");
        assert_eq!(status.last_error(), None);
        status.set_error(Some("http://c/api/ingest: HTTP 500".into()));
        status.clear_error_of("decisions: ");
        assert_eq!(status.last_error().as_deref(), Some("http://c/api/ingest: HTTP 500"));
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut rng = oorandom::Rand64::new(7);
        let max = Duration::from_secs(60);
        let first = backoff(0, max, &mut rng);
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500), "{first:?}");
        let fifth = backoff(5, max, &mut rng);
        assert!(fifth >= Duration::from_secs(8) && fifth <= Duration::from_secs(16), "{fifth:?}");
        let draws: Vec<Duration> = (0..20).map(|_| backoff(30, max, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d >= Duration::from_secs(30) && *d <= max));
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "jitter");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = crate::testutil::tempdir("ca");
        let mut c = CollectorConfig::new("https://x", "t");
        c.ca_file = Some(dir.join("missing.pem"));
        assert!(client(&c).is_err());
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        c.ca_file = Some(dir.join("empty.pem"));
        assert!(client(&c).unwrap_err().to_string().contains("no certificate"));
    }
}
