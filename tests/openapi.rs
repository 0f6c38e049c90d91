//! The OpenAPI document the real collector serves: valid OpenAPI 3.1 by a
//! real validator (Python's openapi-spec-validator, scripts/setup/openapi.sh),
//! and the support's response checker, which every other suite runs on every
//! answer it gets, refuses what the document does not describe.

use std::process::Command;

use bfp_e2e::openapi::Contract;
use bfp_e2e::{Collector, Reply};
use serde_json::{json, Value};

/// `python3 -m openapi_spec_validator FILE`: (passed, what it said).
fn spec_validator(doc: &Value, dir: &std::path::Path, name: &str) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 with openapi-spec-validator (scripts/setup/openapi.sh)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!said.contains("No module named"), "openapi-spec-validator missing (scripts/setup/openapi.sh): {said}");
    (out.status.success(), said)
}

fn collector(dir: &std::path::Path) -> Collector {
    Collector::start(dir.join("app.db"), &[])
}

#[test]
fn the_served_document_is_valid_openapi_3_1_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let reply = bfp_e2e::get(&c.url("/api/openapi.json"));
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let (ok, said) = spec_validator(&doc, dir.path(), "served.json");
    assert!(ok, "the served document is not valid: {said}");

    // The validator can fail: a dangling reference, and a schema of a wrong type.
    let mut dangling = doc.clone();
    dangling["paths"]["/api/results"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({"$ref": "#/components/schemas/NoSuchSchema"});
    let (ok, said) = spec_validator(&dangling, dir.path(), "dangling.json");
    assert!(!ok, "a dangling $ref passed: {said}");
    let mut wrong = doc.clone();
    wrong["components"]["schemas"]["Error"]["type"] = json!("no-such-type");
    let (ok, said) = spec_validator(&wrong, dir.path(), "wrong-type.json");
    assert!(!ok, "an unknown schema type passed: {said}");

    // What the issue found drifted in the hand-written one, now from the code.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["DeviceInfo"]["properties"]["last_seen"]["type"], json!(["string", "null"]));
    let label = &schemas["StoredPrediction"]["properties"]["analyst_label"]["oneOf"];
    assert_eq!(
        label,
        &json!([{"type": "null"}, {"$ref": "#/components/schemas/Verdict", "description": label[1]["description"]}])
    );
    assert_eq!(schemas["Verdict"]["enum"], json!(["Normal", "Suspicious"]));
    let revoke = &doc["paths"]["/api/devices/{name}"]["delete"];
    assert_eq!(
        revoke["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Revoked"
    );
    let ingest = &doc["paths"]["/api/ingest"]["post"];
    let bodies = ingest["requestBody"]["content"].as_object().unwrap();
    assert_eq!(bodies["application/json"]["schema"]["$ref"], "#/components/schemas/Batch");
    assert!(bodies.contains_key("application/x-bfp-batch"));
    assert_eq!(ingest["security"], json!([{"deviceToken": []}]));
    let upload = &doc["paths"]["/api/predict-csv"]["post"]["requestBody"]["content"];
    assert_eq!(upload["multipart/form-data"]["schema"]["$ref"], "#/components/schemas/CsvUpload");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes.keys().collect::<Vec<_>>(), ["apiToken", "deviceToken", "session"]);
    assert_eq!(
        schemes["session"],
        json!({"type": "apiKey", "in": "cookie", "name": "bfp_session", "description": schemes["session"]["description"]})
    );
}

fn json_reply(status: u16, body: &Value) -> Reply {
    Reply { status, content_type: Some("application/json".into()), headers: vec![], body: body.to_string() }
}

/// The checker every suite runs passes real answers and fails on each kind
/// of answer the document does not describe.
#[test]
fn the_response_checker_refuses_what_the_document_does_not_describe() {
    let dir = tempfile::tempdir().unwrap();
    let c = collector(dir.path());
    let contract = Contract::new(bfp_e2e::get(&c.url("/api/openapi.json")).json());
    let made = c.post_json("/api/devices", &json!({"name": "pi-doc"}));
    assert_eq!(made.status, 201, "{}", made.body);
    let predicted = c.post_json(
        "/api/predict",
        &json!({"login_time": "03:00", "session_duration": 5, "commands": ["ls"], "failed_logins": 4, "protocol": "TOR", "typing_speed": 120}),
    );
    assert_eq!(predicted.status, 200, "{}", predicted.body);

    let devices = c.get("/api/devices");
    assert_eq!(contract.check("GET", "/api/devices", &devices), Ok(()));
    let mut body = devices.json();
    assert_eq!(body["devices"][0]["last_seen"], Value::Null, "a device that never called");
    body["devices"][0]["spool_depth"] = json!("many");
    let err = contract.check("GET", "/api/devices", &json_reply(200, &body)).unwrap_err();
    assert!(err.contains("spool_depth") || err.contains("many"), "{err}");

    let results = c.get("/api/results");
    assert_eq!(contract.check("GET", "/api/results", &results), Ok(()));
    let mut body = results.json();
    assert_eq!(body["results"][0]["analyst_label"], Value::Null);
    body["results"][0]["analyst_label"] = json!("Suspicious");
    assert_eq!(contract.check("GET", "/api/results", &json_reply(200, &body)), Ok(()));
    body["results"][0]["analyst_label"] = json!("Maybe");
    assert!(contract.check("GET", "/api/results", &json_reply(200, &body)).is_err(), "a label outside its enum");
    let mut body = results.json();
    body["results"][0].as_object_mut().unwrap().remove("event_at");
    assert!(contract.check("GET", "/api/results", &json_reply(200, &body)).is_err(), "a required field missing");

    let revoked = c.request("DELETE", "/api/devices/pi-doc", &[]);
    assert_eq!(contract.check("DELETE", "/api/devices/pi-doc", &revoked), Ok(()));
    assert!(contract.check("DELETE", "/api/devices/pi-doc", &json_reply(200, &json!({"name": "pi-doc"}))).is_err());

    // A status the operation does not document.
    let teapot = json_reply(418, &json!({"error": "I'm a teapot", "detail": ""}));
    assert!(contract.check("GET", "/api/devices", &teapot).unwrap_err().contains("418"));
    // An error whose body is not the Error schema.
    assert!(contract.check("GET", "/api/devices", &json_reply(401, &json!({"message": "no"}))).is_err());
    // Another content type than documented.
    let html = Reply { content_type: Some("text/html".into()), ..json_reply(200, &json!({})) };
    assert!(contract.check("GET", "/api/analytics", &html).unwrap_err().contains("text/html"));
    // A path the document does not have, answering 200.
    assert!(contract.check("GET", "/api/nowhere", &json_reply(200, &json!({}))).is_err());
    // ... while the router's JSON 404 for it is described.
    let missing = bfp_e2e::get(&c.url("/api/nowhere"));
    assert_eq!(contract.check("GET", "/api/nowhere", &missing), Ok(()));

    // The helpers run the same check on every answer from a collector.
    let before = bfp_e2e::openapi::checked();
    assert_eq!(c.get("/api/analytics").status, 200);
    assert!(bfp_e2e::openapi::checked() > before, "the helpers' answer was not checked");
    let wrong = json_reply(200, &json!({"count": "three", "devices": []}));
    let url = c.url("/api/devices");
    let caught = std::panic::catch_unwind(|| bfp_e2e::openapi::check("GET", &url, &wrong));
    assert!(caught.is_err(), "the helpers' check let a wrong body through");
}
