//! The accept loop: every connection the collector serves passes through
//! here, so slow, idle or numerous clients cannot exhaust it.
//!
//! - **Global cap** ([`ConnLimits::max_connections`]): at most this many
//!   connections are open. At the cap a new connection makes room by closing
//!   the connections idle the longest (no request in flight: never sent one,
//!   still sending its headers, or kept alive between requests; 1/128 of the
//!   cap at a time, so a flood costs one scan per batch), as nginx reuses
//!   keep-alive connections; only when every open connection has a
//!   request in flight is the new one closed at once. The default sits below
//!   the process' descriptor limit (`RLIMIT_NOFILE`), so accepting never
//!   fails for lack of descriptors while the database, its WAL and the CSV
//!   spool still get theirs.
//! - **Per-client cap** ([`ConnLimits::max_connections_per_client`]): a client
//!   address (an IPv6 client by its /64) past it has its new connection
//!   closed at once.
//! - **Header-read timeout**: hyper's, from the moment the server waits for a
//!   request's head until the whole head is in (HTTP/1).
//! - **Idle timeout**: a connection with no request in flight for this long
//!   is closed (one that never sends a byte, a keep-alive connection, an
//!   HTTP/2 connection without streams).
//! - **Body-read timeout**: a request whose body makes no progress for this
//!   long gets 408 and its connection is closed.
//! - **TLS handshake**: bounded by the header-read timeout.
//! - **Accept errors** (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): counted, and
//!   the loop sleeps [`ACCEPT_BACKOFF`] before the next accept instead of
//!   spinning; it never ends on them.
//!
//! The whole-request timeout is a layer of the router (see
//! [`crate::api::router`]). Every refusal, eviction, timeout and accept error
//! is counted in [`NetMetrics`], shown by `/metrics`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::response::IntoResponse;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::Service;

use crate::api::ConnInfo;
use crate::error::Error;

/// How long the loop sleeps after an accept error that is not one
/// connection's own (descriptors or memory exhausted): long enough not to
/// spin on a full descriptor table, short enough to serve again at once
/// when a descriptor frees up.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Longest the accept loop waits for an evicted connection's socket to
/// close (it takes microseconds; the bound is against a stuck task).
const EVICTION_WAIT: Duration = Duration::from_millis(100);

/// Descriptors kept out of the default global cap: the database, its WAL
/// and shared memory, read connections, the CSV spool, outgoing webhook and
/// PostgreSQL connections, the log. At least this many, or a quarter of the
/// limit when that is more.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// How long shutdown waits for requests in flight before closing anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The connection limits and timeouts of the accept loop.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Most connections open at once. Default: derived from the process'
    /// descriptor limit by [`default_max_connections`] (768 under the usual
    /// 1,024; 192 under 256).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6
    /// client counted by its /64); 0 = no per-client cap. Default: 256.
    pub max_connections_per_client: usize,
    /// Time a client has to send a request's whole head (HTTP/1), and a TLS
    /// handshake. Default: 10 s.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    /// Default: 60 s.
    pub idle_timeout: Duration,
    /// A request body that makes no progress for this long ends the request
    /// with 408 and closes the connection. Default: 30 s.
    pub body_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: default_max_connections(),
            max_connections_per_client: 256,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The process' soft descriptor limit, if the system says.
pub fn descriptor_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    // rlim_t is not u64 on every target.
    #[allow(clippy::unnecessary_cast)]
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

/// The default global cap: the descriptor limit less a reserve of
/// `max(64, limit / 4)` for everything else the process opens; 16 at
/// least; 16,384 when the limit is unknown or unlimited.
pub fn default_max_connections() -> usize {
    cap_for_descriptors(descriptor_limit())
}

fn cap_for_descriptors(limit: Option<u64>) -> usize {
    match limit {
        Some(n) => n.saturating_sub(RESERVED_DESCRIPTORS.max(n / 4)).max(16) as usize,
        None => 16_384,
    }
}

/// Counters of the accept loop, the rate limits and the timeouts, for
/// `/metrics`.
#[derive(Debug, Default)]
pub struct NetMetrics {
    /// Connections open now.
    pub open: AtomicU64,
    /// The global cap in force.
    pub max: AtomicU64,
    /// New connections closed at once: the client was at its cap.
    pub refused_per_client: AtomicU64,
    /// New connections closed at once: at the global cap with every open
    /// connection busy.
    pub refused_global: AtomicU64,
    /// Idle connections closed to make room for a new one at the global cap.
    pub evicted: AtomicU64,
    /// Accept errors for lack of descriptors or memory (the loop backed off).
    pub accept_errors_resources: AtomicU64,
    /// Other accept errors (a connection reset before it was accepted).
    pub accept_errors_other: AtomicU64,
    /// Connections closed because their request head was not in time.
    pub timeouts_header: AtomicU64,
    /// Connections closed after the idle timeout.
    pub timeouts_idle: AtomicU64,
    /// Requests ended because their body stalled.
    pub timeouts_body: AtomicU64,
    /// Requests ended by the whole-request timeout.
    pub timeouts_request: AtomicU64,
    /// TLS handshakes not finished in time.
    pub timeouts_handshake: AtomicU64,
}

/// A client as the caps and rate limits count it: an IPv4 address (an
/// IPv4-mapped IPv6 one too), or the /64 of an IPv6 address, which one
/// client usually holds whole.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// One open connection, as the table sees it.
#[derive(Debug)]
struct Tracked {
    client: IpAddr,
    /// Requests in flight (response not yet fully written).
    in_flight: AtomicUsize,
    /// Milliseconds since the table's start at which the connection last
    /// became idle.
    idle_since: AtomicU64,
    /// Set when the table closes the connection (idle or evicted).
    close: Notify,
    /// Set when the connection's socket is closed.
    gone: Notify,
}

#[derive(Debug, Default)]
struct Open {
    conns: HashMap<u64, Arc<Tracked>>,
    per_client: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// The open connections, their caps, and who to close.
#[derive(Debug)]
struct Table {
    limits: ConnLimits,
    metrics: Arc<NetMetrics>,
    start: Instant,
    open: Mutex<Open>,
}

/// A connection admitted by the table; leaving it (dropping) frees its place.
struct Admitted {
    table: Arc<Table>,
    id: u64,
    tracked: Arc<Tracked>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.table.forget(self.id);
        self.tracked.gone.notify_one();
    }
}

/// Why a new connection is closed at once.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    PerClient,
    Global,
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Admits a connection from `peer`, evicting the longest-idle ones at
    /// the global cap (returned, to wait until their sockets are closed).
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<(Admitted, Vec<Arc<Tracked>>), Refusal> {
        let client = client_key(peer);
        let now = self.now_ms();
        let Ok(mut open) = self.open.lock() else { return Err(Refusal::Global) };
        let per_client = open.per_client.get(&client).copied().unwrap_or(0);
        if self.limits.max_connections_per_client > 0 && per_client >= self.limits.max_connections_per_client {
            return Err(Refusal::PerClient);
        }
        let mut evicted = Vec::new();
        if open.conns.len() >= self.limits.max_connections {
            // The longest idle go: a scan, only at the cap, and for a batch
            // (1/128 of the cap), so a flood at the cap costs one scan per
            // batch of new connections, not one per connection.
            let batch = (self.limits.max_connections / 128).max(1);
            let mut idle: Vec<(u64, u64)> = open
                .conns
                .iter()
                .filter(|(_, c)| c.in_flight.load(Relaxed) == 0)
                .map(|(id, c)| (c.idle_since.load(Relaxed), *id))
                .collect();
            if idle.is_empty() {
                return Err(Refusal::Global);
            }
            if idle.len() > batch {
                idle.select_nth_unstable(batch - 1);
                idle.truncate(batch);
            }
            for (_, id) in idle {
                if let Some(c) = Self::remove(&mut open, id) {
                    c.close.notify_one();
                    self.metrics.evicted.fetch_add(1, Relaxed);
                    evicted.push(c);
                }
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let tracked = Arc::new(Tracked {
            client,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            close: Notify::new(),
            gone: Notify::new(),
        });
        open.conns.insert(id, tracked.clone());
        *open.per_client.entry(client).or_default() += 1;
        self.metrics.open.store(open.conns.len() as u64, Relaxed);
        Ok((Admitted { table: self.clone(), id, tracked }, evicted))
    }

    fn remove(open: &mut Open, id: u64) -> Option<Arc<Tracked>> {
        let c = open.conns.remove(&id)?;
        if let Some(n) = open.per_client.get_mut(&c.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&c.client);
            }
        }
        Some(c)
    }

    fn forget(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            Self::remove(&mut open, id);
            self.metrics.open.store(open.conns.len() as u64, Relaxed);
        }
    }

    /// Closes every connection idle for longer than the idle timeout.
    fn sweep(&self) {
        let now = self.now_ms();
        let limit = self.limits.idle_timeout.as_millis() as u64;
        let Ok(mut open) = self.open.lock() else { return };
        let stale: Vec<u64> = open
            .conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Relaxed) == 0 && now.saturating_sub(c.idle_since.load(Relaxed)) >= limit)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some(c) = Self::remove(&mut open, id) {
                c.close.notify_one();
                self.metrics.timeouts_idle.fetch_add(1, Relaxed);
            }
        }
        self.metrics.open.store(open.conns.len() as u64, Relaxed);
    }
}

/// Marks a request in flight on its connection until dropped (with the
/// response's body, once fully written).
struct InFlight {
    tracked: Arc<Tracked>,
    table: Arc<Table>,
}

impl InFlight {
    fn new(tracked: Arc<Tracked>, table: Arc<Table>) -> InFlight {
        tracked.in_flight.fetch_add(1, Relaxed);
        InFlight { tracked, table }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Idle from now, set before the count drops so the sweeper never
        // sees an idle connection with an old time.
        self.tracked.idle_since.store(self.table.now_ms(), Relaxed);
        self.tracked.in_flight.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its connection busy (not idle) until it is
/// written whole or dropped; size and end pass through, so a sized reply
/// keeps its `Content-Length`.
struct BusyBody {
    body: Body,
    _busy: InFlight,
}

impl hyper::body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Whether an accept error is the listener's (descriptors, memory) rather
/// than one connection's.
fn is_resource_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// The collector's listener and what it serves, with its limits.
pub struct Listener {
    /// The bound socket.
    pub listener: TcpListener,
    /// The service's router (with its state).
    pub router: crate::api::Api,
    /// TLS settings, when serving HTTPS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Caps and timeouts.
    pub limits: ConnLimits,
    /// Where the loop counts.
    pub metrics: Arc<NetMetrics>,
}

impl Listener {
    /// Accepts and serves until `shutdown` resolves, then lets requests in
    /// flight finish (up to [`SHUTDOWN_GRACE`]).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let Listener { listener, router, tls, limits, metrics } = self;
        metrics.max.store(limits.max_connections as u64, Relaxed);
        let table = Arc::new(Table {
            limits: limits.clone(),
            metrics: metrics.clone(),
            start: Instant::now(),
            open: Mutex::default(),
        });
        let sweeper = {
            let table = table.clone();
            // A quarter of the idle timeout, so a connection lives at most
            // 1.25 times it; at least every 100 ms, at most every second.
            let every = (limits.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    table.sweep();
                }
            })
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
        // CONNECT protocol, as axum::serve enables it (HTTP/2 websockets).
        builder.http2().timer(TokioTimer::new()).enable_connect_protocol();
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let graceful = GracefulShutdown::new();
        let mut last_logged = None::<Instant>;
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) if is_resource_error(&e) => {
                    metrics.accept_errors_resources.fetch_add(1, Relaxed);
                    // Once a second at most: a flood must not fill the log.
                    if last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accept error; backing off");
                        last_logged = Some(Instant::now());
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
                Err(_) => {
                    metrics.accept_errors_other.fetch_add(1, Relaxed);
                    continue;
                }
            };
            let (admitted, evicted) = match table.admit(peer.ip()) {
                Ok(a) => a,
                Err(why) => {
                    let counter = match why {
                        Refusal::PerClient => &metrics.refused_per_client,
                        Refusal::Global => &metrics.refused_global,
                    };
                    counter.fetch_add(1, Relaxed);
                    drop(stream);
                    continue;
                }
            };
            let info = ConnInfo { peer, local: stream.local_addr().ok() };
            let conn = Connection {
                router: router.clone(),
                info,
                table: table.clone(),
                body_timeout: limits.body_read_timeout,
                metrics: metrics.clone(),
            };
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            let handshake_timeout = limits.header_read_timeout;
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                match tls {
                    None => conn.run(stream, &builder, watcher, admitted).await,
                    Some(acceptor) => {
                        let handshake = tokio::select! {
                            done = tokio::time::timeout(handshake_timeout, acceptor.accept(stream)) => done,
                            () = admitted.tracked.close.notified() => return,
                        };
                        match handshake {
                            Ok(Ok(tls_stream)) => conn.run(tls_stream, &builder, watcher, admitted).await,
                            Ok(Err(_)) => {}
                            Err(_) => {
                                conn.metrics.timeouts_handshake.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            });
            if !evicted.is_empty() {
                // Their descriptors are freed before the next accept, so a
                // burst of new connections never holds more than the cap
                // (plus this one) however fast they come.
                let _ = tokio::time::timeout(EVICTION_WAIT, async {
                    for victim in evicted {
                        victim.gone.notified().await;
                    }
                })
                .await;
            }
        }
        drop(listener);
        sweeper.abort();
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing them");
        }
        Ok(())
    }
}

/// What one connection's task needs.
struct Connection {
    router: crate::api::Api,
    info: ConnInfo,
    table: Arc<Table>,
    body_timeout: Duration,
    metrics: Arc<NetMetrics>,
}

impl Connection {
    async fn run<I>(
        self,
        io: I,
        builder: &auto::Builder<TokioExecutor>,
        watcher: hyper_util::server::graceful::Watcher,
        admitted: Admitted,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection { router, info, table, body_timeout, metrics } = self;
        let tracked = admitted.tracked.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let in_flight = InFlight::new(tracked.clone(), table.clone());
            let metrics = metrics.clone();
            async move {
                let stalled = Arc::new(AtomicBool::new(false));
                let flag = stalled.clone();
                let mut req = req.map(|body| {
                    Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, body).map_err(move |e| {
                        if e.is::<tower_http::timeout::TimeoutError>() {
                            flag.store(true, Relaxed);
                        }
                        e
                    }))
                });
                req.extensions_mut().insert(ConnectInfo(info));
                let Ok(response) = router.call(req).await;
                let response = if stalled.load(Relaxed) {
                    metrics.timeouts_body.fetch_add(1, Relaxed);
                    // Whatever the handler made of the broken body, the
                    // client is told why; hyper closes the connection, the
                    // body being unread.
                    let mut r = Error::Timeout(format!(
                        "the request body made no progress for {} s",
                        body_timeout.as_secs_f64()
                    ))
                    .into_response();
                    r.headers_mut()
                        .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
                    r
                } else {
                    response
                };
                // The connection stays busy until the body is fully written.
                let response = response.map(|body| Body::new(BusyBody { body, _busy: in_flight }));
                Ok::<_, Infallible>(response)
            }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
        let conn = watcher.watch(conn);
        tokio::select! {
            served = conn => {
                if let Err(e) = served {
                    let timed_out = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                    if timed_out {
                        admitted.table.metrics.timeouts_header.fetch_add(1, Relaxed);
                    }
                }
            }
            // Closed by the table (idle, or evicted): dropping the
            // connection closes the socket.
            () = admitted.tracked.close.notified() => {}
        }
        drop(admitted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize, per_client: usize) -> Arc<Table> {
        let limits = ConnLimits {
            max_connections: max,
            max_connections_per_client: per_client,
            idle_timeout: Duration::from_millis(0),
            ..ConnLimits::default()
        };
        Arc::new(Table { limits, metrics: Arc::default(), start: Instant::now(), open: Mutex::default() })
    }

    #[test]
    fn the_default_cap_leaves_descriptors_for_the_rest() {
        assert_eq!(cap_for_descriptors(Some(256)), 192);
        assert_eq!(cap_for_descriptors(Some(1024)), 768);
        assert_eq!(cap_for_descriptors(Some(40)), 16);
        assert_eq!(cap_for_descriptors(None), 16_384);
        assert!(default_max_connections() < descriptor_limit().map_or(usize::MAX, |l| l as usize));
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_past_its_cap_is_refused_and_others_are_not() {
        let t = table(100, 2);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let (a, _) = t.admit(one).unwrap();
        let _b = t.admit(one).unwrap();
        assert_eq!(t.admit(one).err(), Some(Refusal::PerClient));
        let _c = t.admit(two).unwrap();
        drop(a);
        assert!(t.admit(one).is_ok(), "a closed connection frees its place");
    }

    #[test]
    fn at_the_global_cap_the_longest_idle_connection_makes_room() {
        let t = table(2, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let (old, _) = t.admit(ip).unwrap();
        old.tracked.idle_since.store(0, Relaxed);
        let (busy, _) = t.admit(ip).unwrap();
        busy.tracked.idle_since.store(0, Relaxed);
        let _req = InFlight::new(busy.tracked.clone(), t.clone());
        old.tracked.idle_since.store(0, Relaxed);
        let (_new, victims) = t.admit(ip).unwrap();
        assert_eq!(t.metrics.evicted.load(Relaxed), 1);
        assert!(victims.len() == 1 && Arc::ptr_eq(&victims[0], &old.tracked));
        // The idle one was told to close, the busy one was not.
        let closed = tokio_test_notified(&old.tracked.close);
        assert!(closed);
        assert!(!tokio_test_notified(&busy.tracked.close));
        // Now every open connection is busy or new: the new one must be
        // idle to go, so make it busy too and the next is refused.
        let _req2 = InFlight::new(_new.tracked.clone(), t.clone());
        assert_eq!(t.admit(ip).err(), Some(Refusal::Global));
    }

    #[test]
    fn a_large_cap_evicts_a_batch_of_the_longest_idle_at_once() {
        let t = table(256, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let open: Vec<_> = (0..256u64)
            .map(|i| {
                let (a, _) = t.admit(ip).unwrap();
                a.tracked.idle_since.store(1000 - i, Relaxed);
                a
            })
            .collect();
        let (_new, victims) = t.admit(ip).unwrap();
        // 256 / 128 = 2: the two idle the longest (the last two admitted).
        assert_eq!(victims.len(), 2);
        assert!(victims.iter().all(|v| Arc::ptr_eq(v, &open[255].tracked) || Arc::ptr_eq(v, &open[254].tracked)));
        assert_eq!(t.metrics.open.load(Relaxed), 255);
        // The next one fits without evicting.
        let (_next, victims) = t.admit(ip).unwrap();
        assert!(victims.is_empty());
    }

    #[test]
    fn the_sweep_closes_idle_connections_only() {
        let t = table(10, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let (idle, _) = t.admit(ip).unwrap();
        let (busy, _) = t.admit(ip).unwrap();
        let _req = InFlight::new(busy.tracked.clone(), t.clone());
        t.sweep();
        assert!(tokio_test_notified(&idle.tracked.close));
        assert!(!tokio_test_notified(&busy.tracked.close));
        assert_eq!(t.metrics.timeouts_idle.load(Relaxed), 1);
        assert_eq!(t.metrics.open.load(Relaxed), 1);
    }

    /// Whether `notify` holds a permit (was notified), without waiting.
    fn tokio_test_notified(notify: &Notify) -> bool {
        use std::task::{Context, Poll, Waker};
        let fut = notify.notified();
        let mut fut = std::pin::pin!(fut);
        matches!(fut.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(()))
    }
}
