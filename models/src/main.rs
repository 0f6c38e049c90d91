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
        /// Where to write the artifact. Default: models/artifacts/bfp-model.postcard of the source tree.
        #[arg(long)]
        artifact: Option<PathBuf>,
        /// Where to write the agent's schema-2 artifact (not written with --extra-labelled).
        /// Default: models/artifacts/bfp-edge-model.postcard of the source tree.
        #[arg(long)]
        edge_artifact: Option<PathBuf>,
        /// Where to write the model card. Default: models/MODEL_CARD.md of the source tree.
        #[arg(long)]
        card: Option<PathBuf>,
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
            // The committed files of the tree this binary was built from: a
            // developer's command, run from its own checkout.
            let in_tree = |rel: &str| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/")).join(rel);
            let artifact = artifact.unwrap_or_else(|| in_tree("artifacts/bfp-model.postcard"));
            let edge_artifact = edge_artifact.unwrap_or_else(|| in_tree("artifacts/bfp-edge-model.postcard"));
            let card = card.unwrap_or_else(|| in_tree("MODEL_CARD.md"));
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
    let bar = Stages::new();
    let done =
        bfp_models::card::train_models_and_write_card(artifact, card, seed_dir, &rows, edge, &mut |s| bar.stage(s));
    bar.finish();
    done
}

/// The stage a retrain is at: on a terminal a spinner with the stage's
/// number, its name and the time spent; otherwise one plain line per stage.
struct Stages {
    bar: Option<indicatif::ProgressBar>,
    started: std::time::Instant,
}

impl Stages {
    fn new() -> Stages {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            let style = indicatif::ProgressStyle::with_template("{spinner} [{pos}] {msg} ({elapsed})")
                .expect("a valid template");
            bar.set_style(style);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Stages { bar, started: std::time::Instant::now() }
    }

    fn stage(&self, name: &'static str) {
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.set_message(name);
            }
            None => eprintln!("bfp-models: {name} ({:.0} s)", self.started.elapsed().as_secs_f64()),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
