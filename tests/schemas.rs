//! Feature schemas at the binaries' edges: the collector's `/api/predict`
//! scores the six seed features and refuses the agent's schema-3 artifact at
//! start; the agent scores with its embedded schema-3 model, takes a
//! schema-3 `--model`, a schema-2 one (the agents' model before the
//! escalation features, on the prefix of the vector) and a schema-1 one as
//! its documented fallback.

use std::process::Command;

use bfp_e2e::agent::{agent, json_lines, real_log, temp_dir};

const EDGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/artifacts/bfp-edge-model.postcard");
const SCHEMA1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/artifacts/bfp-model.postcard");
const SCHEMA2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/testdata/bfp-edge-model-schema2.postcard");

#[test]
fn the_collector_refuses_an_agents_model_at_start_with_a_clear_error() {
    let dir = temp_dir();
    let out = Command::new(bfp_e2e::binary("bfp-collector"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("app.db"))
        .args(["--model", EDGE])
        .output()
        .expect("run bfp-collector");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feature-schema 3") && err.contains("needs a schema-1 model"), "{err}");
}

#[test]
fn the_collector_refuses_to_serve_agents_a_schema_two_model() {
    let dir = temp_dir();
    let out = Command::new(bfp_e2e::binary("bfp-collector"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("app.db"))
        .args(["--agent-model", SCHEMA2])
        .output()
        .expect("run bfp-collector");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feature-schema 2") && err.contains("--agent-model") && err.contains("schema-3"), "{err}");
}

fn versions(args: &[&str]) -> Vec<String> {
    let log = real_log("elastic/auth.log");
    let mut all = vec!["scan", "--format", "jsonl"];
    all.extend_from_slice(args);
    let log = log.to_str().unwrap().to_string();
    all.push(&log);
    let out = agent(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    json_lines(&out.stdout).iter().filter_map(|o| o["model_version"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_agent_scores_with_schema_three_and_takes_schema_two_and_one() {
    let edge = bfp_common::CompactModel::from_bytes(&std::fs::read(EDGE).unwrap()).unwrap();
    let schema2 = bfp_common::CompactModel::from_bytes(&std::fs::read(SCHEMA2).unwrap()).unwrap();
    let schema1 = bfp_common::CompactModel::from_bytes(&std::fs::read(SCHEMA1).unwrap()).unwrap();
    assert_eq!((edge.schema_version, schema2.schema_version, schema1.schema_version), (3, 2, 1));
    let embedded = versions(&[]);
    assert!(!embedded.is_empty() && embedded.iter().all(|v| *v == edge.model_version), "{embedded:?}");
    let given = versions(&["--model", EDGE]);
    assert!(given.iter().all(|v| *v == edge.model_version));
    let older = versions(&["--model", SCHEMA2]);
    assert!(!older.is_empty() && older.iter().all(|v| *v == schema2.model_version), "{older:?}");
    let fallback = versions(&["--model", SCHEMA1]);
    assert!(fallback.iter().all(|v| *v == schema1.model_version));
}
