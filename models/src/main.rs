//! `bfp-models`: regenerates the model artifact and its model card.

use std::path::PathBuf;
use std::process::ExitCode;

use bfp_models::sim::{write_csv, SimConfig};
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
        /// Where to write the agent's schema-2 artifact (not written with --extra-labelled).
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/bfp-edge-model.postcard"))]
        edge_artifact: PathBuf,
        /// Where to write the model card.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/MODEL_CARD.md"))]
        card: PathBuf,
        /// Folder of the original seed CSVs (default: shared/data/seed beside the repository).
        #[arg(long, env = "BFP_SEED_DIR")]
        seed_dir: Option<PathBuf>,
        /// Analyst-labelled rows (CSV: the original six columns, `Label`, optional `RiskyCommands`) to add to
        /// training; repeatable. The result is a site model: write it elsewhere with --artifact and --card.
        #[arg(long = "extra-labelled")]
        extra_labelled: Vec<PathBuf>,
    },
    /// Write the simulated, labelled data set (train and held-out rows) as CSV.
    Dataset {
        /// Output file; `-` for standard output.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Train { artifact, edge_artifact, card, seed_dir, extra_labelled } => {
            train(&artifact, &edge_artifact, &card, seed_dir, &extra_labelled)
        }
        Command::Dataset { out } => dataset(&out),
    };
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bfp-models: {e}");
            ExitCode::FAILURE
        }
    }
}

fn train(
    artifact: &std::path::Path,
    edge_artifact: &std::path::Path,
    card: &std::path::Path,
    seed_dir: Option<PathBuf>,
    extra: &[PathBuf],
) -> bfp_models::Result<String> {
    let mut rows = Vec::new();
    for path in extra {
        rows.extend(bfp_models::feedback::read(path)?);
    }
    let committed = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/artifacts/bfp-model.postcard"));
    let committed_card = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/MODEL_CARD.md"));
    if !rows.is_empty() && (artifact == committed || card == committed_card) {
        return Err(bfp_models::Error::Export(
            "a model trained with --extra-labelled is a site model: give --artifact and --card outside models/".into(),
        ));
    }
    let edge = if rows.is_empty() { Some(edge_artifact) } else { None };
    bfp_models::card::train_models_and_write_card(artifact, card, seed_dir, &rows, edge)
}

fn dataset(out: &std::path::Path) -> bfp_models::Result<String> {
    let cfg = SimConfig::default();
    let samples = bfp_models::sim::simulate(&cfg);
    let io = |e: csv::Error| bfp_models::Error::Io { path: out.display().to_string(), source: e.into() };
    if out.as_os_str() == "-" {
        write_csv(&samples, &cfg, std::io::stdout().lock()).map_err(io)?;
    } else {
        let file = std::fs::File::create(out)
            .map_err(|source| bfp_models::Error::Io { path: out.display().to_string(), source })?;
        write_csv(&samples, &cfg, std::io::BufWriter::new(file)).map_err(io)?;
    }
    Ok(format!("{} rows written to {}", samples.len(), out.display()))
}
