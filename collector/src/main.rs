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

/// `bfp-collector device ...`: works on the database directly, beside a
/// running service or without one.
fn device(args: &bfp_collector::config::DeviceArgs) -> ExitCode {
    use bfp_collector::config::DeviceAction;
    use bfp_collector::store::devices;
    let run = || -> bfp_collector::Result<()> {
        let conn = devices::open_admin(&args.db)?;
        match &args.action {
            DeviceAction::Add { name } => {
                let token = devices::add_device(&conn, name)?;
                eprintln!("device {name:?} created; its token is shown only this once:");
                println!("{token}");
            }
            DeviceAction::Revoke { name } => {
                devices::revoke_device(&conn, name)?;
                eprintln!("device {name:?} revoked");
            }
            DeviceAction::List => {
                let list = devices::list_devices(&conn)?;
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
            }
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bfp-collector: {e}");
            ExitCode::FAILURE
        }
    }
}
