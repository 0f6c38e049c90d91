//! The `bfp-models` command as a developer meets it: its help and its
//! progress.

use std::process::Command;

fn bfp_models() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bfp-models"))
}

#[test]
fn train_help_names_the_tree_s_files_not_the_build_machine_s_paths() {
    let out = bfp_models().args(["train", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{help}");
    assert!(help.contains("models/artifacts/bfp-model.postcard"), "{help}");
    assert!(!help.contains(env!("CARGO_MANIFEST_DIR")), "{help}");
}

/// Off a terminal each stage is a line as it starts, so a CI log shows
/// where a retrain is; a stage that fails says why and writes nothing.
#[test]
fn train_reports_each_stage_and_a_missing_seed_set_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = bfp_models()
        .arg("train")
        .arg("--artifact")
        .arg(dir.path().join("m.postcard"))
        .arg("--edge-artifact")
        .arg(dir.path().join("e.postcard"))
        .arg("--card")
        .arg(dir.path().join("CARD.md"))
        .arg("--seed-dir")
        .arg(dir.path().join("no-seed"))
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{err}");
    let stages: Vec<&str> = err.lines().filter(|l| l.starts_with("bfp-models: ") && l.ends_with(" s)")).collect();
    assert_eq!(stages.len(), 2, "{err}");
    assert!(stages[0].contains("training the predict model") && stages[1].contains("seed set"), "{err}");
    assert!(err.contains("behavior_dataset.csv"), "the missing file is named: {err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
