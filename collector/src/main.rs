//! `bfp-collector`: the central service. See the library for what it does.

use std::io::Write;
use std::process::ExitCode;

use bfp_collector::config::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Device(args)) => return device(&args),
        Some(Command::Migrate(args)) => return migrate(&args),
        Some(Command::Alerts(args)) => return alerts(&args),
        Some(Command::Decisions(args)) => return offline(bfp_collector::decisions_cli::run(&args)),
        Some(Command::User(args)) => return offline(bfp_collector::auth::cli::user(&args)),
        Some(Command::Token(args)) => return offline(bfp_collector::auth::cli::token(&args)),
        None => cli.serve,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bfp-collector: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port_env = std::env::var("PORT").ok();
    let result = runtime.block_on(async {
        let server = bfp_collector::Server::bind(&args, port_env.as_deref()).await?;
        let addr = server.local_addr()?;
        // Tests and scripts read the bound address (port 0 resolved) from here.
        println!("bfp-collector listening on {}://{addr}", server.scheme());
        let _ = std::io::stdout().flush();
        tracing::info!(%addr, db = %args.db.display(), "serving");
        server.run(bfp_collector::shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            println!("bfp-collector stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bfp-collector: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `bfp-collector migrate`: applies the schema ladder of the backend `--db`
/// names and prints the version reached on stdout.
fn migrate(args: &bfp_collector::config::MigrateArgs) -> ExitCode {
    use bfp_collector::store::{self, postgres, sqlite};
    let run = async {
        if postgres::is_postgres_url(&args.db) {
            let mut client = postgres::connect(&args.db).await?;
            let report = postgres::migrate(&mut client).await?;
            println!(
                "PostgreSQL schema version {} (was {}; steps applied now: {:?})",
                report.to, report.from, report.applied
            );
        } else {
            // Opening a SQLite store migrates it.
            let store = store::open(&sqlite::SqliteConfig::new(std::path::Path::new(&args.db)))?;
            store.shutdown().await;
            println!("SQLite schema version {}", sqlite::SCHEMA_VERSION);
        }
        Ok::<(), bfp_collector::Error>(())
    };
    offline(run)
}

/// `bfp-collector device ...`: works on the database directly, beside a
/// running service or without one (SQLite's WAL and busy timeout let both
/// write), through the same store seam as the service.
fn device(args: &bfp_collector::config::DeviceArgs) -> ExitCode {
    use bfp_collector::auth::cli::audit_cli;
    use bfp_collector::config::DeviceAction;
    use bfp_collector::store::{self, sqlite::SqliteConfig};
    let run = async {
        let store = store::open(&SqliteConfig::new(&args.db))?;
        let done = match &args.action {
            DeviceAction::Add { name, group } => match bfp_collector::store::decisions::check_group(group) {
                // Checked before the device exists, so a bad group creates nothing.
                Err(e) => Err(e),
                Ok(()) => match store.add_device(name.clone()).await {
                    Ok(token) => match store.set_device_group(name.clone(), group.clone()).await {
                        Ok(()) => {
                            audit_cli(&*store, "device.add", name.clone(), format!("group {group}")).await.map(|()| {
                                eprintln!(
                                    "device {name:?} created in group {group:?}; its token is shown only this once:"
                                );
                                println!("{token}");
                            })
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                },
            },
            DeviceAction::Group { name, group } => match store.set_device_group(name.clone(), group.clone()).await {
                Ok(()) => audit_cli(&*store, "device.group", name.clone(), group.clone())
                    .await
                    .map(|()| eprintln!("device {name:?} is in group {group:?}")),
                Err(e) => Err(e),
            },
            DeviceAction::Revoke { name } => match store.revoke_device(name.clone()).await {
                Ok(()) => audit_cli(&*store, "device.revoke", name.clone(), String::new())
                    .await
                    .map(|()| eprintln!("device {name:?} revoked")),
                Err(e) => Err(e),
            },
            DeviceAction::List => store
                .devices()
                .await
                .map(|list| println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default())),
        };
        store.shutdown().await;
        done
    };
    offline(run)
}

/// `bfp-collector alerts ...`: on the database file, beside a running
/// service or without one, as `device` does.
fn alerts(args: &bfp_collector::config::AlertsArgs) -> ExitCode {
    use bfp_collector::config::AlertsAction;
    use bfp_collector::store::alerts::{Alert, AlertQuery, AlertState};
    use bfp_collector::store::{self, sqlite::SqliteConfig};
    let json = args.json;
    let print = move |list: &[Alert]| {
        if json {
            println!("{}", serde_json::to_string_pretty(list).unwrap_or_default());
            return;
        }
        println!("{:>6}  {:<13}  {:<24}  {:<20}  {:>8}  last seen", "id", "state", "rule", "group", "count");
        for a in list {
            println!(
                "{:>6}  {:<13}  {:<24}  {:<20}  {:>8}  {}",
                a.id,
                a.state.as_str(),
                a.rule,
                a.group_key,
                a.count,
                a.last_seen
            );
        }
    };
    let who = |by: &Option<String>| by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into());
    let run = async {
        let store = store::open(&SqliteConfig::new(&args.db))?;
        let done = match &args.action {
            AlertsAction::List { state, rule, limit } => match state.as_deref().map(AlertState::parse).transpose() {
                Ok(state) => store
                    .alerts(AlertQuery { state, rule: rule.clone(), before_id: None, limit: *limit })
                    .await
                    .map(|list| print(&list)),
                Err(e) => Err(e),
            },
            AlertsAction::Ack { id, by } => {
                store.set_alert_state(*id, AlertState::Acknowledged, who(by)).await.map(|a| print(&[a]))
            }
            AlertsAction::Resolve { id, by } => {
                store.set_alert_state(*id, AlertState::Resolved, who(by)).await.map(|a| print(&[a]))
            }
        };
        store.shutdown().await;
        done
    };
    offline(run)
}

/// Runs a command that works on the database file, and reports its error.
fn offline(run: impl std::future::Future<Output = bfp_collector::Result<()>>) -> ExitCode {
    let result = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run),
        Err(e) => Err(bfp_collector::Error::Io(e)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bfp-collector: {e}");
            ExitCode::FAILURE
        }
    }
}
