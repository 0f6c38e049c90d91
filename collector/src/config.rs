//! Command line and environment: `bfp-collector [serve] [--listen ADDR]
//! [--db PATH] [--model PATH] ...`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::store::sqlite::Synchronous;
use crate::store::Role;
use crate::store::StoreConfig;

/// Port of the original Flask system, kept as the default.
pub const DEFAULT_PORT: u16 = 5000;

/// `bfp-collector`: the central Behavioral Fingerprinting service.
#[derive(Debug, Parser)]
#[command(name = "bfp-collector", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; without a subcommand the collector serves.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, also accepted without the subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
// Parsed once per process: the size of `Serve` costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve(ServeArgs),
    /// Manage agent devices (tokens) in the database.
    Device(DeviceArgs),
    /// Bring the database's schema up to this collector's version, then exit
    /// (`serve` does the same at start; this lets an operator do it first,
    /// once, before starting several collectors on one PostgreSQL database).
    Migrate(MigrateArgs),
    /// Copy a SQLite store into a PostgreSQL database (resumable), then
    /// verify it by counts and checksums.
    MigrateStore(MigrateStoreArgs),
    /// List, acknowledge and resolve alerts in the database.
    Alerts(AlertsArgs),
    /// List, add and delete decisions (blocks pushed to a device group).
    Decisions(DecisionsArgs),
    /// Manage operators (users with a role) in the database.
    User(UserArgs),
    /// Manage operators' API tokens in the database.
    Token(TokenArgs),
}

/// `bfp-collector migrate-store`.
#[derive(Debug, Clone, Args)]
pub struct MigrateStoreArgs {
    /// The SQLite store to copy (stop the collector using it first). It is
    /// brought up to this collector's schema before the copy.
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,
    /// The PostgreSQL database to copy into (`postgres://...`): empty, or
    /// holding an interrupted copy of the same store, which is resumed.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Rows copied per transaction (each one records how far the copy got).
    /// Default: 10000.
    #[arg(long, default_value_t = 10_000)]
    pub chunk: usize,
}

/// `bfp-collector migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The database: a SQLite file, or a `postgres://user[:password]@host[:port]/db`
    /// URL. Default: `instance/app.db`.
    #[arg(
        long,
        visible_alias = "database-url",
        value_name = "PATH|URL",
        env = "BFP_DATABASE_URL",
        hide_env_values = true,
        default_value = "instance/app.db"
    )]
    pub db: String,
}

/// `--db` of the operators' commands (`device`, `user`, `token`, `alerts`,
/// `decisions`): the database they work on, beside a running service or
/// without one.
#[derive(Debug, Clone, Args)]
pub struct DbArg {
    /// SQLite database file or PostgreSQL URL (the service's `--db`; also
    /// `BFP_DATABASE_URL`). Default: `instance/app.db`.
    #[arg(
        long = "db",
        visible_alias = "database-url",
        value_name = "PATH|URL",
        env = "BFP_DATABASE_URL",
        hide_env_values = true,
        default_value = "instance/app.db",
        global = true
    )]
    pub url: String,
}

impl std::ops::Deref for DbArg {
    type Target = str;

    fn deref(&self) -> &str {
        &self.url
    }
}

/// `bfp-collector alerts list|ack|resolve`.
#[derive(Debug, Clone, Args)]
pub struct AlertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AlertsAction,
    /// The database the command works on.
    #[command(flatten)]
    pub db: DbArg,
    /// Print JSON instead of a table. Default: a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// An alert action.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertsAction {
    /// List alerts, newest first.
    List {
        /// Only this state: open, acknowledged or resolved. Default: all.
        #[arg(long)]
        state: Option<String>,
        /// Only this rule. Default: all.
        #[arg(long)]
        rule: Option<String>,
        /// Most alerts listed. Default: 100.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Acknowledge an open alert.
    Ack {
        /// Alert id.
        id: i64,
        /// Who acknowledges it. Default: the `USER` environment variable, else `cli`.
        #[arg(long)]
        by: Option<String>,
    },
    /// Resolve an alert.
    Resolve {
        /// Alert id.
        id: i64,
        /// Who resolves it. Default: the `USER` environment variable, else `cli`.
        #[arg(long)]
        by: Option<String>,
    },
}

/// `bfp-collector decisions list|add|delete`.
#[derive(Debug, Clone, Args)]
pub struct DecisionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DecisionsAction,
    /// The database the command works on.
    #[command(flatten)]
    pub db: DbArg,
    /// Print JSON instead of a table. Default: a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A decision action.
#[derive(Debug, Clone, Subcommand)]
pub enum DecisionsAction {
    /// List decisions, newest first: those in force unless `--all`.
    List {
        /// Only this group. Default: all groups.
        #[arg(long)]
        group: Option<String>,
        /// Expired and deleted decisions too. Default: off.
        #[arg(long)]
        all: bool,
        /// Most decisions listed. Default: 100.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Block an address or a CIDR network on every device of a group.
    Add {
        /// The address (198.51.100.66) or network (203.0.113.0/24).
        address: String,
        /// How long: 90s, 30m, 4h, 2d or seconds, at most 30d. Default: 4h.
        #[arg(long, default_value = "4h")]
        duration: String,
        /// The device group. Default: `default`.
        #[arg(long, default_value = "default")]
        group: String,
        /// Why. Default: "decision by WHO".
        #[arg(long, default_value = "")]
        reason: String,
        /// Who decides. Default: the `USER` environment variable, else `cli`.
        #[arg(long)]
        by: Option<String>,
    },
    /// Revoke a decision: the agents lift it at their next fetch.
    Delete {
        /// Decision id.
        id: i64,
        /// Who revokes it. Default: the `USER` environment variable, else `cli`.
        #[arg(long)]
        by: Option<String>,
    },
}

/// `bfp-collector user add|list|delete|passwd`.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
    /// The database the command works on.
    #[command(flatten)]
    pub db: DbArg,
}

/// A user action. Passwords are prompted twice at a terminal, or read as
/// the first line of stdin otherwise; at least 10 characters.
#[derive(Debug, Clone, Subcommand)]
pub enum UserAction {
    /// Create a user with a role.
    Add {
        /// User name: 1-64 letters, digits, '.', '_', '-' or '@'.
        name: String,
        /// What the user may do.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List the users as JSON (never their password hashes).
    List,
    /// Delete a user and its API tokens.
    Delete {
        /// User name.
        name: String,
    },
    /// Set a user's password.
    Passwd {
        /// User name.
        name: String,
    },
}

/// `bfp-collector token add|list|revoke`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TokenAction,
    /// The database the command works on.
    #[command(flatten)]
    pub db: DbArg,
}

/// An API token action.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenAction {
    /// Create an API token carrying a user's role and print it (shown once;
    /// only its hash is kept).
    Add {
        /// The user the token speaks for.
        #[arg(long)]
        user: String,
        /// Days until the token stops working. Default: never expires.
        #[arg(long, value_name = "N")]
        expires_days: Option<u32>,
    },
    /// List the API tokens as JSON (never the tokens).
    List,
    /// Revoke an API token by its id (from `token list`).
    Revoke {
        /// Token id.
        id: i64,
    },
}

/// `bfp-collector device add|revoke|list`.
#[derive(Debug, Clone, Args)]
pub struct DeviceArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: DeviceAction,
    /// The database the command works on.
    #[command(flatten)]
    pub db: DbArg,
    /// Create the SQLite file when it does not exist. Default: off, so a
    /// mistyped `--db` is refused instead of becoming a new database whose
    /// tokens the running collector never accepts.
    #[arg(long, global = true)]
    pub create: bool,
}

/// A device action.
#[derive(Debug, Clone, Subcommand)]
pub enum DeviceAction {
    /// Create a device and print its token (shown once; only its hash is kept).
    Add {
        /// Device name: 1-64 letters, digits, '.', '_' or '-'.
        name: String,
        /// Its group: the decisions it applies. Default: `default`.
        #[arg(long, default_value = "default")]
        group: String,
    },
    /// Move a device to another group.
    Group {
        /// Device name.
        name: String,
        /// The group: 1-64 letters, digits, '.', '_' or '-'.
        group: String,
    },
    /// Revoke a device's token (its data stays).
    Revoke {
        /// Device name.
        name: String,
    },
    /// List the devices as JSON.
    List,
}

/// Options of the service.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Default: `127.0.0.1:5000`, where the `PORT`
    /// environment variable replaces the port (as the original honoured).
    /// Port 0 picks a free port; the bound address is printed on stdout.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// SQLite database file (created with its parent directory at
    /// start-up), or a PostgreSQL URL (`postgres://user@host/db`, migrated
    /// at start-up; several collectors may share it). Also
    /// `BFP_DATABASE_URL`. Default: `instance/app.db` (the original's location).
    #[arg(
        long,
        visible_alias = "database-url",
        value_name = "PATH|URL",
        env = "BFP_DATABASE_URL",
        hide_env_values = true,
        default_value = "instance/app.db"
    )]
    pub db: String,
    /// Compact model artifact to use instead of the embedded one.
    /// Default: the model embedded at build time.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Model artifact served to agents (`GET /api/model?schema=3`; feature
    /// schema 3, e.g. a newer `bfp-models train` output); agents fetch it
    /// when its version differs from theirs. Default: the agents' model
    /// embedded at build time (`models/artifacts/bfp-edge-model.postcard`).
    #[arg(long, value_name = "PATH")]
    pub agent_model: Option<PathBuf>,
    /// Origin allowed to call the API from a browser (repeatable; `*` allows
    /// any), with an API token or on the open legacy routes; the session
    /// cookie is never allowed cross-origin. Default: none (no CORS headers).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Largest JSON body accepted, in bytes. Default: 65536.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Largest CSV upload accepted, in bytes. Default: 268435456 (256 MiB,
    /// about ten million rows).
    #[arg(long, value_name = "BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Durability of each SQLite commit: `full` (fsync, survives power loss)
    /// or `normal` (survives a process crash). Default: full. PostgreSQL
    /// follows its server's `synchronous_commit` instead.
    #[arg(long, value_enum, default_value_t = Synchronous::Full)]
    pub sync: Synchronous,
    /// Most rows one group commit takes. Default: 4096.
    #[arg(long, value_name = "ROWS", default_value_t = 4096)]
    pub max_batch: usize,
    /// PostgreSQL only: connections this collector keeps open at most (its
    /// writer, CSV uploads, reads, alert passes). The server's
    /// `max_connections` must cover every collector's, plus the commands run
    /// beside them. At least 2. Default: 16.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(2..))]
    pub db_pool_size: u16,
    /// Bearer token that stands for an administrator on every route (for
    /// scripts; prefer a user's API token, `bfp-collector token add`).
    /// Default: none.
    #[arg(long, value_name = "TOKEN", env = "BFP_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Keep the original system's routes (`/health`, `/api/predict`,
    /// `/api/predict-csv`, `/api/analytics`, `/api/results`) open without a
    /// credential on every address the collector listens on. Default: off
    /// (open only on the legacy listeners, see `--legacy-listener`).
    #[arg(long)]
    pub open_legacy_api: bool,
    /// A local address on which the original system's routes stay open
    /// without a credential (repeatable). Default: every loopback address
    /// (127.0.0.0/8, ::1). Elsewhere they need a token like any other route.
    #[arg(long = "legacy-listener", value_name = "IP")]
    pub legacy_listeners: Vec<IpAddr>,
    /// A host name the collector answers to in the `Host` header
    /// (repeatable; against DNS rebinding). `localhost`, the machine's name
    /// and the address a connection reached are always allowed; any other
    /// name gets 421. Default: none besides those.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`).
    /// Default: plain HTTP (the loopback default).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Most connections open at once; at the cap a new connection closes
    /// the one idle the longest (or is closed itself when all are busy).
    /// Default: the process' descriptor limit (`ulimit -n`) less
    /// max(64, a quarter of it), kept for the database and other files:
    /// 768 under the usual 1,024.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (an IPv6
    /// client by its /64); past it a new connection is closed at once. 0 =
    /// no cap. Default: 256 (an agent keeps one, a browser six, the load
    /// benchmarks 64; a reverse proxy on the host shares one address: raise
    /// it there).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_client: usize,
    /// Time a client has to send a request's headers (and finish a TLS
    /// handshake). Default: 10s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: std::time::Duration,
    /// A connection with no request in flight for this long is closed.
    /// Default: 60s (agents send at least a heartbeat every 30s).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: std::time::Duration,
    /// A request body that makes no progress for this long gets 408 and its
    /// connection is closed. Default: 30s.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: std::time::Duration,
    /// Longest time for a whole request, body and answer; past it, 408.
    /// Default: 120s (a 256 MiB upload at 3 MB/s; a million rows are scored
    /// in about 2 s).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub request_timeout: std::time::Duration,
    /// Longest `/health` and `/health/ready` wait for a round trip through
    /// the writer and the database; past it they answer 503. A write
    /// transaction in progress (a large CSV upload: about 2 s a million rows)
    /// delays the round trip. Default: 10s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub health_timeout: std::time::Duration,
    /// After SIGTERM or SIGINT, how long to keep accepting requests while
    /// `/health/ready` answers 503 `shutting down`, so a load balancer that
    /// probes it stops sending new ones before the listener closes; then
    /// requests in flight finish and queued writes commit. Default: 0s (the
    /// listener closes at once).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub drain_delay: std::time::Duration,
    /// `POST /api/predict` requests a second per client address (also the
    /// burst), outside `--rate-limit-exempt`; 0 = no limit. Default: 1000.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub predict_rate: u32,
    /// `POST /api/predict-csv` uploads a minute per client address (also the
    /// burst), outside `--rate-limit-exempt`; 0 = no limit. Default: 60.
    #[arg(long, value_name = "N", default_value_t = 60)]
    pub predict_csv_rate: u32,
    /// `POST /api/ingest` batches a second per device (also the burst); 0 =
    /// no limit. Default: 200.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub ingest_rate: u32,
    /// Wrong bearer tokens a minute per client address (also the burst);
    /// past it a wrong token gets 429 instead of 401. 0 = no limit.
    /// Default: 30.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub auth_failure_rate: u32,
    /// A client network exempt from the predict and CSV rate limits
    /// (repeatable; `none` for no exemption). Default: 127.0.0.0/8 and ::1.
    #[arg(long = "rate-limit-exempt", value_name = "CIDR|none", default_values = ["127.0.0.0/8", "::1/128"])]
    pub rate_limit_exempt: Vec<String>,
    /// TOML configuration file (alert rules in `[[alert.rule]]`; see
    /// `bfp_collector::alerts`). An unknown key or a bad regex stops the
    /// start with an error. Default: none (no alert rules).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ServeArgs {
    /// How to open the store these options name.
    pub fn store_config(&self) -> StoreConfig {
        match StoreConfig::for_db(&self.db) {
            StoreConfig::Sqlite(mut config) => {
                config.synchronous = self.sync;
                config.max_batch = self.max_batch;
                StoreConfig::Sqlite(config)
            }
            StoreConfig::Postgres(mut config) => {
                config.max_batch = self.max_batch;
                config.pool_size = usize::from(self.db_pool_size);
                StoreConfig::Postgres(config)
            }
        }
    }

    /// The accept loop's caps and timeouts these options name.
    pub fn conn_limits(&self) -> crate::net::ConnLimits {
        let defaults = crate::net::ConnLimits::default();
        crate::net::ConnLimits {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections).max(1),
            max_connections_per_client: self.max_connections_per_client,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            body_read_timeout: self.body_read_timeout,
        }
    }

    /// The per-client rate limits these options name.
    pub fn rate_config(&self) -> Result<crate::api::limits::RateConfig> {
        let exempt = self
            .rate_limit_exempt
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("none"))
            .map(|n| {
                n.parse::<ipnet::IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| Error::Config(format!("--rate-limit-exempt {n:?} is not an address or network")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::api::limits::RateConfig {
            predict_per_second: self.predict_rate,
            predict_csv_per_minute: self.predict_csv_rate,
            ingest_per_second: self.ingest_rate,
            auth_failures_per_minute: self.auth_failure_rate,
            exempt,
        })
    }

    /// The address to bind: `--listen`, else `127.0.0.1:$PORT`, else
    /// `127.0.0.1:5000`. `port_env` is the value of `PORT`, if set.
    pub fn listen_addr(&self, port_env: Option<&str>) -> Result<SocketAddr> {
        if let Some(addr) = self.listen {
            return Ok(addr);
        }
        let port = match port_env.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => p.parse::<u16>().map_err(|_| Error::Config(format!("PORT must be a port number, got {p:?}")))?,
            None => DEFAULT_PORT,
        };
        Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("bfp-collector").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_match_the_original() {
        let cli = parse(&[]);
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.db, "instance/app.db");
        assert_eq!(cli.serve.listen_addr(None).unwrap(), "127.0.0.1:5000".parse().unwrap());
        assert_eq!(cli.serve.listen_addr(Some("8080")).unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert!(cli.serve.listen_addr(Some("http")).is_err());
    }

    #[test]
    fn serve_is_optional_and_listen_beats_port() {
        let cli = parse(&["serve", "--listen", "127.0.0.1:0", "--db", "x.db"]);
        let Some(Command::Serve(args)) = cli.command else { panic!("serve expected") };
        assert_eq!(args.listen_addr(Some("8080")).unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(args.db, "x.db");
        let cli = parse(&["--listen", "0.0.0.0:7000", "--cors-origin", "*", "--sync", "normal"]);
        assert_eq!(cli.serve.listen.unwrap().port(), 7000);
        assert_eq!(cli.serve.cors_origins, vec!["*"]);
        assert_eq!(cli.serve.sync, Synchronous::Normal);
    }

    #[test]
    fn the_postgres_pool_size_is_a_flag_of_at_least_two() {
        let pool = |args: &[&str]| match parse(args).serve.store_config() {
            StoreConfig::Postgres(c) => c.pool_size,
            StoreConfig::Sqlite(_) => panic!("a postgres:// URL opens PostgreSQL"),
        };
        assert_eq!(pool(&["--db", "postgres://bfp@db/bfp"]), 16);
        assert_eq!(pool(&["--db", "postgres://bfp@db/bfp", "--db-pool-size", "40"]), 40);
        let refused = Cli::try_parse_from(["bfp-collector", "--db-pool-size", "1"]);
        assert!(refused.is_err(), "one connection cannot hold an upload and the writer");
    }

    #[test]
    fn limits_have_documented_defaults_and_flags() {
        let cli = parse(&[]);
        let limits = cli.serve.conn_limits();
        assert_eq!(limits.max_connections_per_client, 256);
        assert_eq!(limits.header_read_timeout, std::time::Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, std::time::Duration::from_secs(60));
        assert_eq!(limits.body_read_timeout, std::time::Duration::from_secs(30));
        assert_eq!(cli.serve.request_timeout, std::time::Duration::from_secs(120));
        assert_eq!(cli.serve.health_timeout, std::time::Duration::from_secs(10));
        assert_eq!(cli.serve.drain_delay, std::time::Duration::ZERO);
        let rates = cli.serve.rate_config().unwrap();
        assert_eq!((rates.predict_per_second, rates.predict_csv_per_minute), (1000, 60));
        assert_eq!((rates.ingest_per_second, rates.auth_failures_per_minute), (200, 30));
        assert_eq!(rates.exempt, crate::api::limits::default_exempt());
        let cli = parse(&["--max-connections", "50", "--idle-timeout", "2s", "--rate-limit-exempt", "none"]);
        assert_eq!(cli.serve.conn_limits().max_connections, 50);
        assert_eq!(cli.serve.conn_limits().idle_timeout, std::time::Duration::from_secs(2));
        assert!(cli.serve.rate_config().unwrap().exempt.is_empty());
        let cli = parse(&["--rate-limit-exempt", "10.0.0.0/8", "--rate-limit-exempt", "192.0.2.1"]);
        assert_eq!(cli.serve.rate_config().unwrap().exempt.len(), 2);
        assert!(parse(&["--rate-limit-exempt", "nonsense"]).serve.rate_config().is_err());
    }

    #[test]
    fn migrate_takes_a_file_or_a_url() {
        let Some(Command::Migrate(args)) = parse(&["migrate", "--database-url", "postgres://bfp@db/bfp"]).command
        else {
            panic!("migrate expected")
        };
        assert_eq!(args.db, "postgres://bfp@db/bfp");
        let Some(Command::Migrate(args)) = parse(&["migrate", "--db", "x.db"]).command else {
            panic!("migrate expected")
        };
        assert_eq!(args.db, "x.db");
    }
}
