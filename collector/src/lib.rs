//! `bfp-collector`: the central Behavioral Fingerprinting service.
//!
//! One job: receive fingerprints (single JSON predictions, CSV uploads,
//! agents' batches), score them with the compact model, store every
//! prediction, and serve the original Flask system's REST API over them,
//! unchanged for its clients, plus ingest, the fleet, the dashboard, metrics
//! and an OpenAPI document.
//!
//! # A guide to the layout
//!
//! ```text
//! main.rs, config.rs   command line (serve, device, user, token, alerts,
//!                      decisions, migrate, migrate-store)
//! auth/                passwords (Argon2id), the user and token commands
//! lib.rs               Server: opens the store, builds the router, serves
//! net.rs               the accept loop: connection caps, header, idle and
//!                      body timeouts, TLS, accept errors
//! error.rs             the one error type; each variant knows its HTTP status
//! api/                 HTTP, one module per resource; api/openapi.rs builds
//!                      the OpenAPI 3.1 document from the handlers'
//!                      `#[utoipa::path]`, their types and ROUTE_ACCESS
//!   mod.rs             AppState, the route table, CORS, the metrics layer
//!   access.rs          who may call what: ROUTE_ACCESS, the access layer
//!                      (tokens, sessions, CSRF, Host, body types, legacy
//!                      listeners) and the caller extractors
//!   session.rs, audit.rs  the dashboard's login and the audit trail
//!   extract.rs         extractors: JSON body, query, path, device auth
//!   health, predict, predict_csv, analytics, results   the original contract
//!   ingest, devices, models                            agents and the fleet
//!   feedback, insights, metrics                        dashboard and operators
//!   alerts, destinations, decisions                    alerts and what they cause
//! dashboard.rs         the embedded web page
//! alerts.rs            the --config file, alert rules and their evaluation task
//! notify/              notifications of alerts: [[destinations]] (config.rs),
//!                      message formats (message.rs), the webhook, syslog and
//!                      SMTP senders (send.rs), one delivery task per
//!                      destination reading the outbox (mod.rs)
//! store/               the store seam (traits and the values crossing it)
//!   sqlite/            the SQLite implementation
//!     migrations.rs    one numbered schema ladder, applied at open
//!     writer.rs        the writer thread: group commits, CSV transactions,
//!                      counters, roll-ups and id blocks in the same commits
//!     reads.rs         read connections, counters, pages at any offset
//!     devices, feedback, insights   each resource's SQL
//!   postgres/          the PostgreSQL implementation, for several
//!                      collectors on one database
//!     migrations.rs    the same tables as a ladder for PostgreSQL, safe to
//!                      apply from several collectors at once
//!     store.rs         PgStore: the pool and every trait of the seam
//!     writer.rs        each collector's writer task: group commits with
//!                      counters, roll-ups and id blocks upserted in them
//!     csv.rs           an upload as one transaction (binary COPY into predictions)
//!     reads.rs         counters, pages at any offset, roll-ups, export
//!     resources.rs     devices, feedback, users, console, decisions, alerts
//!     copy.rs          migrate-store: a SQLite store copied in, verified
//! ```
//!
//! # The store seam
//!
//! Routes hold an `Arc<dyn store::Store>` and call its async methods; the
//! traits ([`store::Predictions`], [`store::Devices`],
//! [`store::AnalystFeedback`], together [`store::Store`]) take and return
//! plain values ([`store::NewPrediction`], [`store::ResultsQuery`],
//! [`store::ResultsPage`], ...), never a driver's types. Two backends
//! implement them: SQLite ([`store::sqlite`], the zero-set-up default) and
//! PostgreSQL ([`store::postgres`], for several collectors on one database).
//! `--db` picks one (a path or a `postgres://` URL) and [`store::connect`]
//! opens it, for the service and every command alike. What each backend
//! must guarantee: a write is committed before its request is answered
//! (grouping concurrent requests into one commit), the counters behind
//! analytics change in the same transaction as the rows (exactly, with
//! several collectors writing at once), a CSV upload is stored whole or not
//! at all under contiguous ids, an agent's batch is stored once per
//! `(device, seq)` whichever collector receives it, and a page of results
//! costs the same at any depth. The e2e suites of the collector run against
//! both (`bfp_e2e::Backend`).
//!
//! # Adding to it
//!
//! A new resource (users and API tokens, alerts and their outbox) gets a
//! trait in `store/` (a supertrait of `Store`), its tables as new steps at
//! the end of `store/sqlite/migrations.rs` and `store/postgres/migrations.rs`
//! (and a row of `postgres/copy.rs` for migrate-store), its SQL in
//! `store/sqlite/` and `store/postgres/`, its
//! routes in a module of `api/` listed in `api::router`, and each route's
//! access as a row of `ROUTE_ACCESS` in `api/access.rs` (a route without one
//! answers 500 to everyone).

pub mod alerts;
pub mod api;
pub mod auth;
pub mod auto_decisions;
pub mod config;
pub mod dashboard;
pub mod decisions_cli;
pub mod error;
pub mod net;
pub mod notify;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bfp_common::artifacts::{EMBEDDED_AGENT_MODEL, EMBEDDED_PREDICT_MODEL};
use bfp_common::CompactModel;
use tokio::net::TcpListener;

pub use error::{Error, Result};

/// Loads the model from `path`, or the embedded one. It must be a schema-1
/// model: `/api/predict` and the CSV upload carry the six seed features, so a
/// schema-2 (agent) artifact is refused with a clear error at start.
pub fn load_model(path: Option<&Path>) -> Result<CompactModel> {
    let bytes = match path {
        Some(p) => std::fs::read(p).map_err(|e| Error::Config(format!("cannot read model {}: {e}", p.display())))?,
        None => {
            return Ok(CompactModel::from_bytes_of_schema(
                EMBEDDED_PREDICT_MODEL,
                bfp_common::schema::PREDICT_SCHEMA,
                COLLECTOR,
            )?)
        }
    };
    Ok(CompactModel::from_bytes_of_schema(&bytes, bfp_common::schema::PREDICT_SCHEMA, COLLECTOR)?)
}

/// Loads the model served to agents from `path`, or the embedded one. It
/// must be of the agents' feature schema (3): agents ask for it by number,
/// and the collector serves no other to them.
pub fn load_agent_model(path: Option<&Path>) -> Result<CompactModel> {
    let schema = bfp_common::schema::AGENT_SCHEMA;
    let bytes = match path {
        Some(p) => {
            std::fs::read(p).map_err(|e| Error::Config(format!("cannot read agent model {}: {e}", p.display())))?
        }
        None => return Ok(CompactModel::from_bytes_of_schema(EMBEDDED_AGENT_MODEL, schema, FOR_AGENTS)?),
    };
    Ok(CompactModel::from_bytes_of_schema(&bytes, schema, FOR_AGENTS)?)
}

/// How the served agents' model is named in a schema error.
const FOR_AGENTS: &str =
    "--agent-model (agents score schema-3 features: sessions, novelty, source context, privilege escalation)";

/// How the collector names itself in a model's schema error.
const COLLECTOR: &str = "the collector (/api/predict and CSV score the six seed features)";

/// A bound, ready-to-run collector.
pub struct Server {
    listener: TcpListener,
    app: api::Api,
    store: Arc<dyn store::Store>,
    /// HTTPS settings when `--tls-cert`/`--tls-key` are given.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The accept loop's caps and timeouts.
    limits: net::ConnLimits,
    /// The accept loop's counters, shared with `/metrics`.
    net: Arc<net::NetMetrics>,
    /// The alert rules' background evaluation, if any rules are configured.
    alerting: Option<tokio::task::JoinHandle<()>>,
    /// The phase `/health/ready` reports.
    health: Arc<api::health::Health>,
    /// How long to keep accepting after shutdown is asked (`--drain-delay`).
    drain_delay: std::time::Duration,
}

impl Server {
    /// Loads the model, opens the store and binds the listener.
    pub async fn bind(args: &config::ServeArgs, port_env: Option<&str>) -> Result<Server> {
        let config = match &args.config {
            Some(path) => alerts::CollectorConfig::load(path)?,
            None => alerts::CollectorConfig::default(),
        };
        let model = load_model(args.model.as_deref())?;
        let agent_model = load_agent_model(args.agent_model.as_deref())?;
        let notifier = Arc::new(notify::Notifier::new(config.notify.clone(), &config.destinations)?);
        let store = store::connect(&args.store_config()).await?;
        let addr = args.listen_addr(port_env)?;
        let listener =
            TcpListener::bind(addr).await.map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
        let bound = listener.local_addr()?;
        let mut allowed_hosts: std::collections::BTreeSet<String> =
            args.allowed_hosts.iter().map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()).collect();
        allowed_hosts.insert("localhost".into());
        if let Some(name) = gethostname::gethostname().to_str() {
            allowed_hosts.insert(name.to_ascii_lowercase());
        }
        let net = Arc::new(net::NetMetrics::default());
        let health = Arc::new(api::health::Health::new(args.health_timeout));
        let console = api::access::ConsoleConfig {
            open_legacy_api: args.open_legacy_api,
            legacy_listeners: args.legacy_listeners.clone(),
            allowed_hosts,
            sessions: store::console::SessionPolicy::default(),
            secure_cookie: args.tls_cert.is_some(),
            cors_origins: args.cors_origins.clone(),
        };
        let state = api::SharedState {
            store: store.clone(),
            model_version: Arc::from(model.model_version.as_str()),
            model: Arc::new(model),
            agent_model: Arc::new(agent_model),
            metrics: Arc::default(),
            admin_token: args.admin_token.as_deref().map(Arc::from),
            console: Arc::new(console),
            login_limiter: api::session::login_limiter(),
            rate_limits: Arc::new(api::limits::RateLimits::new(&args.rate_config()?)),
            net: net.clone(),
            tokens: Arc::default(),
            notifier: notifier.clone(),
            health: health.clone(),
        };
        let app = api::router(
            state.into(),
            &api::ApiConfig {
                max_body_bytes: args.max_body_bytes,
                max_upload_bytes: args.max_upload_bytes,
                cors_origins: args.cors_origins.clone(),
                bound: Some(bound),
                request_timeout: args.request_timeout,
            },
        )?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                // rustls with ring, as the agent (no aws-lc build); ignored
                // if a provider is already installed.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await.map_err(|e| {
                    Error::Config(format!("TLS certificate {} / key {}: {e}", cert.display(), key.display()))
                })?;
                Some(config.get_inner())
            }
            (None, None) => None,
            _ => return Err(Error::Config("--tls-cert and --tls-key go together".into())),
        };
        // Ends by itself when the store shuts down.
        if !config.decisions.from_alert_rules.is_empty() {
            tokio::spawn(auto_decisions::decide_forever(store.clone(), Arc::new(config.decisions)));
        }
        notifier.spawn(store.clone());
        let alerting = (!config.alert.rules.is_empty())
            .then(|| tokio::spawn(alerts::evaluate_forever(store.clone(), Arc::new(config.alert))));
        Ok(Server {
            listener,
            app,
            store,
            tls,
            limits: args.conn_limits(),
            net,
            alerting,
            health,
            drain_delay: args.drain_delay,
        })
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and
    /// commits every queued write before returning.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        // Bound, migrated, the writer running: ready until shutdown is asked.
        self.health.set(api::health::Phase::Ready);
        let health = self.health.clone();
        let drain_delay = self.drain_delay;
        let shutdown = async move {
            shutdown.await;
            health.set(api::health::Phase::Draining);
            // Still accepting, so a load balancer probing /health/ready sees
            // "shutting down" and stops sending before the listener closes.
            if !drain_delay.is_zero() {
                tracing::info!(delay = ?drain_delay, "shutting down: /health/ready answers 503 until the listener closes");
                tokio::time::sleep(drain_delay).await;
            }
        };
        let listener = net::Listener {
            listener: self.listener,
            router: self.app,
            tls: self.tls,
            limits: self.limits,
            metrics: self.net,
        };
        let served = listener.serve(shutdown).await;
        if let Some(task) = self.alerting {
            task.abort();
        }
        self.store.shutdown().await;
        served.map_err(Error::Io)
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing requests and pending writes");
}
