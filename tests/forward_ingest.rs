//! `POST /api/ingest` and the fleet endpoints against the real collector:
//! tokens from the real `device add`, refusals that store nothing, idempotent
//! batches, agent rows in results/analytics, model download.

use bfp_common::wire::{Batch, CONTENT_TYPE};
use bfp_common::CompactModel;
use bfp_e2e::agent::temp_dir;
use bfp_e2e::forward::{device_add, post_auth, sample_batch};
use bfp_e2e::{get, post_json, request, Backend, Collector};

fn total(c: &Collector) -> u64 {
    get(&c.url("/api/analytics")).json()["total_predictions"].as_u64().unwrap()
}

#[test]
fn refusals_store_nothing_and_batches_are_stored_once() {
    for backend in Backend::ALL {
        refusals_store_nothing_and_batches_are_stored_once_on(backend);
    }
}

fn refusals_store_nothing_and_batches_are_stored_once_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    let token = device_add(&db, "pi-1");
    let c = Collector::start(&db, &[]);
    let ingest = c.url("/api/ingest");
    let body = sample_batch(1, 5).encode().unwrap();

    // Missing, wrong and malformed tokens: 401 JSON, nothing stored.
    for t in [None, Some("bfp_0000"), Some(&token[..token.len() - 1])] {
        let r = post_auth(&ingest, t, CONTENT_TYPE, &body);
        assert_eq!(r.status, 401, "{t:?}: {}", r.body);
        assert_eq!(r.json()["error"], "Unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // Garbage, every truncation of a valid body, trailing bytes, bad JSON,
    // wrong media type, out-of-range numbers: 400 JSON, nothing stored.
    let mut bad: Vec<(String, Vec<u8>)> = vec![
        (CONTENT_TYPE.into(), b"garbage".to_vec()),
        (CONTENT_TYPE.into(), Vec::new()),
        ("application/json".into(), b"{\"seq\":1".to_vec()),
        ("text/plain".into(), body.clone()),
    ];
    for cut in (0..body.len()).step_by(7) {
        bad.push((CONTENT_TYPE.into(), body[..cut].to_vec()));
    }
    let mut longer = body.clone();
    longer.push(0);
    bad.push((CONTENT_TYPE.into(), longer));
    let mut nan = sample_batch(1, 1);
    nan.records[0].confidence = f32::NAN;
    bad.push((CONTENT_TYPE.into(), nan.encode().unwrap()));
    for (ct, b) in &bad {
        let r = post_auth(&ingest, Some(&token), ct, b);
        assert_eq!(r.status, 400, "{ct} {} bytes: {}", b.len(), r.body);
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(total(&c), 0);
    assert_eq!(c.get("/api/devices").json()["devices"][0]["records"], 0);

    // A good batch, then the same batch again (a retry after a lost reply).
    let r = post_auth(&ingest, Some(&token), CONTENT_TYPE, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["duplicate"], false);
    assert_eq!(r.json()["stored"], 5);
    let r = post_auth(&ingest, Some(&token), CONTENT_TYPE, &body);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["duplicate"], true);
    assert_eq!(r.json()["stored"], 0);
    assert_eq!(total(&c), 5);
    // The JSON form of the next batch.
    let json_batch = serde_json::to_vec(&sample_batch(2, 2)).unwrap();
    let r = post_auth(&ingest, Some(&token), "application/json", &json_batch);
    assert_eq!((r.status, r.json()["stored"].as_u64()), (200, Some(2)), "{}", r.body);
    // A heartbeat alone stores no record and takes no sequence number.
    let mut hb = Batch { seq: 0, records: vec![], ..sample_batch(0, 0) };
    hb.heartbeat.dropped = 9;
    hb.heartbeat.spool_depth = 4;
    hb.heartbeat.last_error = Some("collector unreachable".into());
    assert_eq!(post_auth(&ingest, Some(&token), CONTENT_TYPE, &hb.encode().unwrap()).status, 200);
    assert_eq!(total(&c), 7);

    let fleet = c.get("/api/devices").json();
    let d = &fleet["devices"][0];
    assert_eq!(d["name"], "pi-1");
    assert_eq!((d["records"].as_u64(), d["last_seq"].as_u64()), (Some(7), Some(2)));
    assert_eq!((d["dropped"].as_u64(), d["spool_depth"].as_u64()), (Some(9), Some(4)));
    assert_eq!(d["agent_version"], "e2e");
    assert_eq!(d["last_error"], "collector unreachable");
    assert!(d["last_seen"].is_string());

    // Agent rows beside single predictions, filtered with filtered counts.
    let single = serde_json::json!({"login_time":"03:00","session_duration":5,"commands":["ls"],
        "failed_logins":4,"protocol":"TOR","typing_speed":120});
    assert_eq!(post_json(&c.url("/api/predict"), &single).status, 200);
    let all = get(&c.url("/api/results")).json();
    assert_eq!(all["count"], 8);
    let agent = get(&c.url("/api/results?source=agent&device=pi-1")).json();
    assert_eq!(agent["count"], 7);
    let row = &agent["results"][0];
    assert_eq!((row["source"].as_str(), row["kind"].as_str()), (Some("agent"), Some("session")));
    assert_eq!((row["user"].as_str(), row["source_ip"].as_str()), (Some("user0"), Some("192.0.2.0")));
    assert_eq!(row["started_at"], "2023-11-14 22:13:20");
    assert_eq!(row["reasons"][0], "e2e");
    let suspicious = get(&c.url("/api/results?source=agent&prediction=Suspicious")).json();
    // Records 0 and 3 of the first batch, record 0 of the second.
    assert_eq!(suspicious["count"], 3);
    assert_eq!(get(&c.url("/api/results?device=nope")).json()["count"], 0);
    assert_eq!(get(&c.url("/api/results?source=robot")).status, 400);

    // Revocation over the API (an administrator's token): the device's token stops working.
    assert_eq!(request("DELETE", &c.url("/api/devices/pi-1"), &[]).status, 401, "loopback is no identity");
    let r = c.request("DELETE", "/api/devices/pi-1", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post_auth(&ingest, Some(&token), CONTENT_TYPE, &sample_batch(3, 1).encode().unwrap());
    assert_eq!(r.status, 401);
    assert_eq!(total(&c), 8);
    c.stop();
}

#[test]
fn devices_are_created_over_the_api_and_the_model_is_served_with_its_checksum() {
    for backend in Backend::ALL {
        devices_are_created_over_the_api_and_the_model_is_served_with_its_checksum_on(backend);
    }
}

fn devices_are_created_over_the_api_and_the_model_is_served_with_its_checksum_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let c = Collector::start(dir.db(), &["--admin-token".into(), "s3cret-admin".into()]);
    let add = |name: &str| {
        let headers = [("Authorization", "Bearer s3cret-admin"), ("Content-Type", "application/json")];
        bfp_e2e::send("POST", &c.url("/api/devices"), &headers, Some(format!("{{\"name\": \"{name}\"}}").as_bytes()))
    };
    assert_eq!(post_json(&c.url("/api/devices"), &serde_json::json!({"name": "gw-7"})).status, 401);
    let r = add("gw-7");
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(add("gw-7").status, 409);
    assert_eq!(add("a b").status, 400);
    let r = post_auth(&c.url("/api/ingest"), Some(&token), CONTENT_TYPE, &sample_batch(1, 3).encode().unwrap());
    assert_eq!(r.json()["stored"], 3);

    let version = c.get("/api/model/version").json();
    let admin = format!("Bearer {}", c.admin_token());
    let mut r = ureq::get(&c.url("/api/model")).header("Authorization", &admin).call().unwrap();
    check_binary(&c.url("/api/model"), &r);
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(header("x-bfp-model-version").as_deref(), version["model_version"].as_str());
    assert_eq!(header("x-bfp-model-sha256").as_deref(), version["sha256"].as_str());
    assert_eq!(version["sha256"].as_str().unwrap().len(), 64);
    let bytes = r.body_mut().read_to_vec().unwrap();
    assert_eq!(bytes.len() as u64, version["bytes"].as_u64().unwrap());
    let model = CompactModel::from_bytes(&bytes).unwrap();
    assert_eq!(model.model_version, version["model_version"].as_str().unwrap());
    assert_eq!(version["schema_version"], 1, "the default is the /api/predict model");

    // The agents' model (schema 3): the one embedded in the agent, unless
    // --agent-model names another.
    let agents = c.get("/api/model/version?schema=3").json();
    assert_eq!(agents["schema_version"], 3);
    let embedded = CompactModel::from_bytes(bfp_common::artifacts::EMBEDDED_AGENT_MODEL).unwrap();
    assert_eq!(agents["model_version"].as_str(), Some(embedded.model_version.as_str()));
    let mut r = ureq::get(&c.url("/api/model?schema=3")).header("Authorization", &admin).call().unwrap();
    check_binary(&c.url("/api/model?schema=3"), &r);
    let sha = r.headers().get("x-bfp-model-sha256").and_then(|v| v.to_str().ok()).map(str::to_string);
    assert_eq!(sha.as_deref(), agents["sha256"].as_str());
    assert_eq!(r.body_mut().read_to_vec().unwrap(), bfp_common::artifacts::EMBEDDED_AGENT_MODEL);
    for bad in ["4", "two", ""] {
        let r = c.get(&format!("/api/model/version?schema={bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.json()["detail"].as_str().is_some_and(|d| d.contains("schema")), "{}", r.body);
    }
    // An agent of schema 2 (before the escalation features) is not served
    // the schema-3 model: it would score its 25 features with a forest of 31.
    for path in ["/api/model/version?schema=2", "/api/model?schema=2"] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.contains("feature schema 3, not 2") && detail.contains("keeps its own model"), "{detail}");
    }
    c.stop();
}

#[test]
fn the_agents_model_must_be_of_the_agents_schema() {
    let dir = temp_dir();
    let schema_one = bfp_e2e::stand_in_model(dir.path());
    let out = std::process::Command::new(bfp_e2e::binary("bfp-collector"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("app.db"))
        .arg("--agent-model")
        .arg(&schema_one)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--agent-model") && err.contains("schema"), "{err}");
}

/// A mistyped `--db` is refused with the path and the way out named, and
/// creates nothing; `--create` makes the database on purpose.
#[test]
fn device_commands_refuse_a_database_that_does_not_exist_unless_told() {
    let dir = temp_dir();
    let typo = dir.path().join("ap.db");
    let out = std::process::Command::new(bfp_e2e::binary("bfp-collector"))
        .args(["device", "add", "pi-typo", "--db"])
        .arg(&typo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{err}");
    assert!(err.contains(&typo.display().to_string()) && err.contains("--create"), "{err}");
    assert!(!typo.exists(), "nothing created");
    assert!(device_add(&typo, "pi-new").starts_with("bfp_"));
    assert!(typo.exists());
}

/// The model download's status and content type against the OpenAPI
/// document (its bytes are not text, so it is read outside the helpers).
fn check_binary(url: &str, r: &ureq::http::Response<ureq::Body>) {
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let reply = bfp_e2e::Reply { status: r.status().as_u16(), content_type, headers: Vec::new(), body: String::new() };
    bfp_e2e::openapi::check("GET", url, &reply);
}
