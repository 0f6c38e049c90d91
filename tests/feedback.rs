//! Analyst feedback end to end: predictions stored by the
//! real collector, labelled through `POST /api/results/{id}/feedback`,
//! listed with their labels, exported by `GET /api/export/labelled.csv`, and
//! the export read by the very function `bfp-models train --extra-labelled`
//! reads it with, then a full retrain with the real `bfp-models` binary
//! (bfp-models and smartcore are optimised even in test builds, see the root
//! Cargo.toml, so this takes seconds rather than minutes).

use std::process::Command;

use bfp_e2e::{binary, get, post_json, shared_data, Backend, Collector, Reply, TestDb};
use serde_json::{json, Value};

fn ok(r: Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn assert_error(r: &Reply, status: u16, detail_has: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r.content_type.as_deref().unwrap_or("").starts_with("application/json"), "{:?}", r.content_type);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains(detail_has), "detail {detail:?} should mention {detail_has:?}");
}

/// Stores three predictions, labels two (false positive, true positive) and
/// one cleared, checks what the API lists; returns the labelled export and
/// the verdicts the model gave the two labelled rows.
fn store_label_and_export(dir: &TestDb) -> (String, [String; 2]) {
    let c = Collector::start(dir.db(), &[]);
    let attack = json!({"login_time":"03:00","session_duration":5,"commands":["wget","chmod"],"failed_logins":9,"protocol":"TOR","typing_speed":140});
    let admin = json!({"login_time":"10:00","session_duration":45,"commands":["ls","df"],"failed_logins":0,"protocol":"SSH","typing_speed":40});
    let mut ids = Vec::new();
    let mut verdicts = Vec::new();
    for body in [&attack, &admin, &attack] {
        let r = ok(post_json(&c.url("/api/predict"), body));
        ids.push(r["id"].as_i64().unwrap());
        verdicts.push(r["prediction"].as_str().unwrap().to_string());
    }
    let feedback = |id: i64, body: &Value| c.post_json(&format!("/api/results/{id}/feedback"), body);

    // The analyst says the first verdict is wrong and the second right.
    let fp = ok(feedback(ids[0], &json!({"label": "false_positive", "note": "our pen test"})));
    assert_eq!(fp["prediction"], verdicts[0].as_str());
    assert_eq!(fp["analyst_label"], other(&verdicts[0]), "{fp}");
    assert_eq!(fp["analyst_note"], "our pen test");
    let tp = ok(feedback(ids[1], &json!({"label": "true_positive"})));
    assert_eq!(tp["analyst_label"], verdicts[1].as_str());
    // Labelled then cleared: not labelled.
    ok(feedback(ids[2], &json!({"label": "true_positive"})));
    assert_eq!(ok(feedback(ids[2], &json!({"label": "clear"})))["analyst_label"], Value::Null);

    // Bad requests are JSON errors and change nothing.
    assert_error(&feedback(9999, &json!({"label": "true_positive"})), 404, "9999");
    assert_error(&feedback(ids[2], &json!({"label": "maybe"})), 400, "label must be");
    assert_error(&feedback(ids[2], &json!({"labels": "clear"})), 400, "unknown field");
    assert_error(&feedback(ids[2], &json!({"label": "clear", "note": "x".repeat(1001)})), 400, "note");
    assert_error(&c.post("/api/results/abc/feedback", Some("application/json"), b"{}"), 400, "positive integer");
    assert_error(&c.post(&format!("/api/results/{}/feedback", ids[2]), Some("text/plain"), b"x"), 400, "Content-Type");
    assert_error(
        &c.post(&format!("/api/results/{}/feedback", ids[2]), Some("application/json"), b"{"),
        400,
        "bad feedback body",
    );

    let all = ok(get(&c.url("/api/results")));
    let labels: Vec<&Value> = all["results"].as_array().unwrap().iter().map(|r| &r["analyst_label"]).collect();
    assert_eq!(labels, [&json!(other(&verdicts[0])), &json!(verdicts[1]), &Value::Null]);
    let labelled = ok(get(&c.url("/api/results?labelled=true")));
    assert_eq!(labelled["count"], 2, "{labelled}");
    assert_eq!(labelled["results"][0]["id"], ids[0]);
    assert_eq!(labelled["results"][0]["analyst_note"], "our pen test");
    let unlabelled = ok(get(&c.url("/api/results?labelled=false")));
    assert_eq!((unlabelled["count"].as_u64(), unlabelled["results"][0]["id"].as_i64()), (Some(1), Some(ids[2])));
    assert_error(&get(&c.url("/api/results?labelled=perhaps")), 400, "labelled must be");

    let doc = ok(get(&c.url("/api/openapi.json")));
    for path in ["/api/results/{id}/feedback", "/api/export/labelled.csv"] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }

    let export = c.get("/api/export/labelled.csv");
    assert_eq!(export.status, 200);
    assert!(export.content_type.as_deref().unwrap_or("").starts_with("text/csv"), "{:?}", export.content_type);
    let lines: Vec<&str> = export.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", export.body);
    assert!(lines[0].starts_with("LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed,Label,"));
    assert!(lines[1].starts_with(&format!("3,5,2,9,TOR,140,{},", other(&verdicts[0]))), "{}", lines[1]);
    assert!(lines[2].starts_with(&format!("10,45,2,0,SSH,40,{},", verdicts[1])), "{}", lines[2]);
    c.stop();
    (export.body, [verdicts[0].clone(), verdicts[1].clone()])
}

fn other(verdict: &str) -> &'static str {
    if verdict == "Suspicious" {
        "Normal"
    } else {
        "Suspicious"
    }
}

#[test]
fn labelled_results_are_listed_and_exported_in_the_retraining_format() {
    for backend in Backend::ALL {
        labelled_results_are_listed_and_exported_in_the_retraining_format_on(backend);
    }
}

fn labelled_results_are_listed_and_exported_in_the_retraining_format_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let (export, verdicts) = store_label_and_export(&dir);
    let rows = bfp_models::feedback::parse(export.as_bytes()).expect("the models reader takes the export");
    assert_eq!(rows.len(), 2);
    let (fp, tp) = (&rows[0], &rows[1]);
    assert_eq!(fp.suspicious, other(&verdicts[0]) == "Suspicious");
    assert_eq!(tp.suspicious, verdicts[1] == "Suspicious");
    let f = fp.fingerprint;
    assert_eq!((f.login_hour, f.session_duration_min, f.commands, f.failed_logins), (3, 5.0, 2, 9));
    assert_eq!((f.protocol, f.typing_speed_wpm), (bfp_common::Protocol::Tor, Some(140.0)));
    assert_eq!(tp.fingerprint.protocol, bfp_common::Protocol::Ssh);
}

#[test]
fn the_labelled_export_retrains_a_site_model_with_the_real_bfp_models() {
    for backend in Backend::ALL {
        the_labelled_export_retrains_a_site_model_with_the_real_bfp_models_on(backend);
    }
}

fn the_labelled_export_retrains_a_site_model_with_the_real_bfp_models_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let (export, _) = store_label_and_export(&dir);

    // The export retrains a site model with the real bfp-models.
    let file = dir.path().join("labelled.csv");
    std::fs::write(&file, &export).unwrap();
    let out = dir.path().join("site");
    std::fs::create_dir_all(&out).unwrap();
    let run = Command::new(binary("bfp-models"))
        .arg("train")
        .arg("--extra-labelled")
        .arg(&file)
        .arg("--artifact")
        .arg(out.join("model.postcard"))
        .arg("--card")
        .arg(out.join("MODEL_CARD.md"))
        .arg("--seed-dir")
        .arg(shared_data().join("seed"))
        .output()
        .expect("run bfp-models");
    assert!(run.status.success(), "bfp-models failed: {}", String::from_utf8_lossy(&run.stderr));
    let model = bfp_common::CompactModel::from_bytes(&std::fs::read(out.join("model.postcard")).unwrap()).unwrap();
    assert!(model.model_version.ends_with("+feedback.2"), "{}", model.model_version);
}
