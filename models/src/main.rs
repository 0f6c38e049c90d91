//! `bfp-models`: regenerates the model artifact and its model card.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Train, evaluate and export the bfp compact model")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate, train, evaluate; write the artifact and the model card.
    Train {
        /// Where to write the artifact.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/bfp-model.postcard"))]
        artifact: PathBuf,
        /// Where to write the model card.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/MODEL_CARD.md"))]
        card: PathBuf,
        /// Folder of the original seed CSVs (default: shared/data/seed beside the repository).
        #[arg(long, env = "BFP_SEED_DIR")]
        seed_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Command::Train { artifact, card, seed_dir } = Cli::parse().command;
    match bfp_models::card::regenerate(&artifact, &card, seed_dir) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bfp-models: {e}");
            ExitCode::FAILURE
        }
    }
}
