//! Who may call what, against the real collector: every route of the
//! OpenAPI document (and the dashboard's) × every kind of caller, from the
//! one table below. A route the service documents but the table lacks fails
//! the test, so a new route cannot ship without its row.
//!
//! Callers: no credential, a device token, API tokens of a viewer, an
//! analyst and an administrator, an expired and a revoked token (both an
//! administrator's, so only their state refuses them). Two more columns
//! repeat "no credential" and "viewer" on a collector whose listener is not
//! a legacy listener (`--legacy-listener 127.0.0.2` while it is reached on
//! 127.0.0.1): there the original routes need a token like any other.

use std::collections::BTreeSet;

use bfp_e2e::forward::{device_add, sample_batch};
use bfp_e2e::{
    collector_cli, multipart, operator_token, password_of, post_json, send, Backend, Collector, Reply, TestDb,
};
use serde_json::Value;

/// A request's body.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// JSON text.
    Json(&'static str),
    /// The seed's three-row CSV as a multipart upload.
    Csv,
    /// An agent's batch (postcard).
    Batch,
}

/// Column order of [`MATRIX`].
const CALLERS: [&str; 9] = [
    "none",
    "device",
    "viewer",
    "analyst",
    "admin",
    "expired",
    "revoked",
    "none, not a legacy listener",
    "viewer, not a legacy listener",
];

/// The documented route (method, path as documented), the request made
/// (path with its parameters filled in, body), and the status each caller
/// gets. 2xx/404/409: admitted (404: no alert 99 exists, no destination `nowhere`); 401: no or a bad
/// credential; 403: a credential without the right.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str, Body, [u16; 9])] = &[
    //                                                                                         none dev  view anal admn expd revk  none' view'
    ("GET", "/", "/", Body::None,                                                              [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/assets/{*path}", "/assets/app.js", Body::None,                                   [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/api/openapi.json", "/api/openapi.json", Body::None,                              [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("POST", "/api/login", "/api/login", Body::Json(LOGIN),                                    [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("GET", "/health/ready", "/health/ready", Body::None,                                      [200, 200, 200, 200, 200, 200, 200, 200, 200]),
    ("POST", "/api/logout", "/api/logout", Body::Json("{}"),                                   [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/api/session", "/api/session", Body::None,                                        [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    // The original system's routes: open on a legacy listener, a token elsewhere.
    ("GET", "/health", "/health", Body::None,                                                  [200, 200, 200, 200, 200, 401, 401, 401, 200]),
    ("POST", "/api/predict", "/api/predict", Body::Json(PREDICT),                              [200, 200, 200, 200, 200, 401, 401, 401, 403]),
    ("POST", "/api/predict-csv", "/api/predict-csv", Body::Csv,                                [200, 200, 200, 200, 200, 401, 401, 401, 403]),
    ("GET", "/api/analytics", "/api/analytics", Body::None,                                    [200, 200, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/api/results", "/api/results", Body::None,                                        [200, 200, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/metrics", "/metrics", Body::None,                                                [200, 200, 200, 200, 200, 401, 401, 401, 200]),
    // Operators' routes: the same on every listener; a device never reads a result.
    ("POST", "/api/results/{id}/feedback", "/api/results/1/feedback", Body::Json(LABEL),       [401, 403, 403, 200, 200, 401, 401, 401, 403]),
    ("GET", "/api/export/labelled.csv", "/api/export/labelled.csv", Body::None,                [401, 403, 403, 200, 200, 401, 401, 401, 403]),
    ("GET", "/api/insights", "/api/insights", Body::None,                                      [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/api/export.csv", "/api/export.csv", Body::None,                                  [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/api/devices", "/api/devices", Body::None,                                        [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    ("POST", "/api/devices", "/api/devices", Body::Json(NEW_DEVICE),                           [401, 403, 403, 403, 201, 401, 401, 401, 403]),
    ("DELETE", "/api/devices/{name}", "/api/devices/to-revoke", Body::None,                    [401, 403, 403, 403, 200, 401, 401, 401, 403]),
    ("GET", "/api/alerts", "/api/alerts", Body::None,                                          [401, 403, 200, 200, 200, 401, 401, 401, 200]),
    ("POST", "/api/alerts/{id}/ack", "/api/alerts/99/ack", Body::Json("{}"),                   [401, 403, 403, 404, 404, 401, 401, 401, 403]),
    ("POST", "/api/alerts/{id}/resolve", "/api/alerts/99/resolve", Body::Json("{}"),           [401, 403, 403, 404, 404, 401, 401, 401, 403]),
    ("GET", "/api/destinations", "/api/destinations", Body::None,                              [401, 403, 403, 200, 200, 401, 401, 401, 403]),
    ("POST", "/api/destinations/{name}/test", "/api/destinations/nowhere/test", Body::Json("{}"), [401, 403, 403, 403, 404, 401, 401, 401, 403]),
    // 404 in the last column: admitted, but that collector has no device pi-matrix.
    ("GET", "/api/devices/{name}/blocks", "/api/devices/pi-matrix/blocks", Body::None,         [401, 403, 200, 200, 200, 401, 401, 401, 404]),
    ("GET", "/api/decisions", "/api/decisions", Body::None,                                    [401, 403, 403, 200, 200, 401, 401, 401, 403]),
    ("POST", "/api/decisions", "/api/decisions", Body::Json(DECISION),                         [401, 403, 403, 403, 201, 401, 401, 401, 403]),
    ("DELETE", "/api/decisions/{id}", "/api/decisions/99", Body::None,                         [401, 403, 403, 403, 404, 401, 401, 401, 403]),
    ("GET", "/api/audit", "/api/audit", Body::None,                                            [401, 403, 403, 403, 200, 401, 401, 401, 403]),
    ("GET", "/api/audit.csv", "/api/audit.csv", Body::None,                                    [401, 403, 403, 403, 200, 401, 401, 401, 403]),
    // Devices: ingest only theirs; the agents' model for devices and operators.
    ("POST", "/api/ingest", "/api/ingest", Body::Batch,                                        [401, 200, 403, 403, 403, 401, 401, 401, 403]),
    ("GET", "/api/model/version", "/api/model/version?schema=3", Body::None,                   [401, 200, 200, 200, 200, 401, 401, 401, 200]),
    ("GET", "/api/agent/decisions", "/api/agent/decisions", Body::None,                        [401, 200, 403, 403, 403, 401, 401, 401, 403]),
    ("GET", "/api/model", "/api/model?schema=3", Body::None,                                   [401, 200, 403, 403, 200, 401, 401, 401, 403]),
];

const LOGIN: &str = r#"{"user": "vera", "password": "e2e password of vera"}"#;
const PREDICT: &str = r#"{"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120}"#;
const LABEL: &str = r#"{"label": "false_positive"}"#;
const NEW_DEVICE: &str = r#"{"name": "matrix-new"}"#;
const DECISION: &str = r#"{"address": "198.51.100.7", "duration": "1h", "reason": "matrix"}"#;

/// Every route the running collector documents, plus the dashboard's page
/// and assets.
fn documented_routes(c: &Collector) -> BTreeSet<(String, String)> {
    let doc = bfp_e2e::get(&c.url("/api/openapi.json")).json();
    let mut routes: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_ascii_uppercase(), path.clone())))
        .collect();
    routes.insert(("GET".into(), "/".into()));
    routes.insert(("GET".into(), "/assets/{*path}".into()));
    routes
}

/// The request of one table row, with `token` (if any) as its bearer.
fn call(c: &Collector, method: &str, path: &str, body: Body, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let url = c.url(path);
    match body {
        Body::None => send(method, &url, &headers, None),
        Body::Json(text) => {
            headers.push(("Content-Type", "application/json"));
            send(method, &url, &headers, Some(text.as_bytes()))
        }
        Body::Csv => {
            let csv = std::fs::read(bfp_e2e::shared_data().join("seed/test.csv")).expect("seed CSV");
            let (content_type, bytes) = multipart("file", "test.csv", &csv);
            headers.push(("Content-Type", &content_type));
            send(method, &url, &headers, Some(&bytes))
        }
        Body::Batch => {
            let bytes = sample_batch(1, 1).encode().expect("batch");
            headers.push(("Content-Type", bfp_common::wire::CONTENT_TYPE));
            send(method, &url, &headers, Some(&bytes))
        }
    }
}

/// An API token of `user` whose expiry has passed (made with a day to run,
/// then aged in the database file).
fn expired_token(db: &TestDb, user: &str) -> String {
    let token = collector_cli(db.db(), &["token", "add", "--user", user, "--expires-days", "1"], "").trim().to_string();
    db.execute("UPDATE api_tokens SET expires_at = 1 WHERE id = (SELECT max(id) FROM api_tokens)");
    assert_eq!(db.count("SELECT count(*) FROM api_tokens WHERE expires_at = 1"), 1);
    token
}

/// An API token of `user`, revoked with `bfp-collector token revoke`.
fn revoked_token(db: &std::ffi::OsStr, user: &str) -> String {
    let token = collector_cli(db, &["token", "add", "--user", user], "").trim().to_string();
    let list: Value = serde_json::from_str(&collector_cli(db, &["token", "list"], "")).expect("token list");
    let id = list[0]["id"].as_i64().expect("newest token first").to_string();
    collector_cli(db, &["token", "revoke", &id], "");
    token
}

#[test]
fn every_route_answers_every_caller_as_documented() {
    for backend in Backend::ALL {
        every_route_answers_every_caller_as_documented_on(backend);
    }
}

fn every_route_answers_every_caller_as_documented_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    let device = device_add(&db, "pi-matrix");
    device_add(&db, "to-revoke");
    let viewer = operator_token(&db, "vera", "viewer");
    let analyst = operator_token(&db, "ana", "analyst");
    let admin = operator_token(&db, "root", "admin");
    let expired = expired_token(&dir, "root");
    let revoked = revoked_token(&db, "root");
    let tokens = [None, Some(&device), Some(&viewer), Some(&analyst), Some(&admin), Some(&expired), Some(&revoked)];
    assert_eq!(password_of("vera"), "e2e password of vera", "LOGIN's password");

    // The matrix sends ~60 expired and revoked tokens from one address in a
    // minute: the failed-authentication limit (tests/abuse.rs) is off here so
    // each cell shows the status of its credential, not of the flood.
    let no_flood_limit = ["--auth-failure-rate".to_string(), "0".to_string()];
    let c = Collector::start(&db, &no_flood_limit);
    // A result to label.
    assert_eq!(post_json(&c.url("/api/predict"), &serde_json::from_str(PREDICT).unwrap()).status, 200);
    // Its listener is 127.0.0.1; only 127.0.0.2 keeps the original routes open.
    let closed_db = dir.another("closed");
    let closed_viewer = operator_token(&closed_db, "vera", "viewer");
    let closed = Collector::start(
        &closed_db,
        &[&no_flood_limit[..], &["--legacy-listener".into(), "127.0.0.2".into()]].concat(),
    );
    assert_eq!(post_json(&closed.url("/api/predict"), &serde_json::from_str(PREDICT).unwrap()).status, 401);
    let closed_tokens = [None, Some(&closed_viewer)];

    let table: BTreeSet<(String, String)> = MATRIX.iter().map(|r| (r.0.to_string(), r.1.to_string())).collect();
    assert_eq!(table.len(), MATRIX.len(), "a route has two rows");
    let documented = documented_routes(&c);
    let unlisted: Vec<_> = documented.difference(&table).collect();
    assert!(unlisted.is_empty(), "documented routes missing from the matrix: {unlisted:?}");
    let undocumented: Vec<_> = table.difference(&documented).collect();
    assert!(undocumented.is_empty(), "rows for undocumented routes: {undocumented:?}");

    let mut wrong = Vec::new();
    for (method, route, path, body, want) in MATRIX {
        for (column, want) in want.iter().enumerate() {
            let r = if column < tokens.len() {
                call(&c, method, path, *body, tokens[column].map(String::as_str))
            } else {
                call(&closed, method, path, *body, closed_tokens[column - tokens.len()].map(String::as_str))
            };
            if r.status != *want {
                wrong.push(format!("{method} {route} as {}: {} (want {want}): {}", CALLERS[column], r.status, r.body));
            }
            let json_reply = r.content_type.as_deref().is_some_and(|t| t.starts_with("application/json"));
            if r.status >= 400 && !json_reply {
                wrong.push(format!("{method} {route} as {}: a {} that is not JSON", CALLERS[column], r.status));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cells differ:\n{}",
        wrong.len(),
        MATRIX.len() * CALLERS.len(),
        wrong.join("\n")
    );

    // What was admitted left its trace: the labels and the device change
    // under the operators' names.
    let trail =
        bfp_e2e::send("GET", &c.url("/api/audit?limit=1000"), &[("Authorization", &format!("Bearer {admin}"))], None);
    let lines: BTreeSet<String> = trail.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "ana feedback.set result 1",
        "root feedback.set result 1",
        "root device.add matrix-new",
        "root device.revoke to-revoke",
        "root decision.add 198.51.100.7",
        "vera login.ok ",
    ] {
        assert!(lines.contains(want), "{want:?} not in the audit trail: {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("vera feedback")), "a refused label was recorded: {lines:?}");

    // --open-legacy-api opens them on every listener again.
    drop(closed);
    let open =
        Collector::start(&closed_db, &["--legacy-listener".into(), "127.0.0.2".into(), "--open-legacy-api".into()]);
    assert_eq!(bfp_e2e::get(&open.url("/api/results")).status, 200);
    assert_eq!(bfp_e2e::get(&open.url("/api/insights")).status, 401, "only the original routes");
}

/// The listener decides, not the peer: one collector bound to every address
/// of a private network namespace, reached once through 127.0.0.1 and once
/// through a non-loopback address (10.77.0.1 on the namespace's own `lo`),
/// from the same client. Only the loopback connection gets the original
/// routes without a credential; the other needs a token, which then works.
/// On PostgreSQL the collector in the namespace reaches the test's cluster
/// through its Unix socket (the namespace's 127.0.0.1 is its own).
#[test]
fn the_original_routes_need_a_token_on_a_connection_to_a_non_loopback_address() {
    for backend in Backend::ALL {
        the_original_routes_need_a_token_on_a_connection_to_a_non_loopback_address_on(backend);
    }
}

fn the_original_routes_need_a_token_on_a_connection_to_a_non_loopback_address_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let store = backend.fresh();
    let viewer = operator_token(store.db(), "vera", "viewer");
    let db: std::ffi::OsString = match store.cluster() {
        Some(cluster) => cluster.socket_url().into(),
        None => store.db().to_os_string(),
    };
    let script = r#"
set -u
ip link set lo up && ip addr add 10.77.0.1/32 dev lo || exit 90
"$BIN" --listen 0.0.0.0:0 --db "$DB" >"$DIR/out.log" 2>"$DIR/err.log" &
pid=$!
addr=""
for _ in $(seq 600); do
  addr="$(sed -n 's#^bfp-collector listening on http://##p' "$DIR/out.log")"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$DIR/err.log"; exit 91; }
port="${addr##*:}"
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for host in 127.0.0.1 10.77.0.1; do
  for path in /health /api/results /api/analytics /metrics /api/insights; do
    echo "$host GET $path none $(status "http://$host:$port$path")"
    echo "$host GET $path viewer $(status -H "Authorization: Bearer $TOKEN" "http://$host:$port$path")"
  done
  echo "$host POST /api/predict none $(status -H 'Content-Type: application/json' -d "$PREDICT" "http://$host:$port/api/predict")"
done
kill "$pid"
wait "$pid"
"#;
    let out = std::process::Command::new("unshare")
        .args(["--net", "sh", "-c", script])
        .env("BIN", bfp_e2e::binary("bfp-collector"))
        .env("DB", &db)
        .env("DIR", store.path())
        .env("TOKEN", &viewer)
        .env("PREDICT", PREDICT)
        .output()
        .expect("run unshare (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() || !text.is_empty(),
        "a network namespace (unshare --net, as root) is needed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: BTreeSet<String> = text.lines().map(str::to_string).collect();
    #[rustfmt::skip]
    let want: BTreeSet<String> = [
        "127.0.0.1 GET /health none 200", "127.0.0.1 GET /health viewer 200",
        "127.0.0.1 GET /api/results none 200", "127.0.0.1 GET /api/results viewer 200",
        "127.0.0.1 GET /api/analytics none 200", "127.0.0.1 GET /api/analytics viewer 200",
        "127.0.0.1 GET /metrics none 200", "127.0.0.1 GET /metrics viewer 200",
        "127.0.0.1 GET /api/insights none 401", "127.0.0.1 GET /api/insights viewer 200",
        "127.0.0.1 POST /api/predict none 200",
        "10.77.0.1 GET /health none 401", "10.77.0.1 GET /health viewer 200",
        "10.77.0.1 GET /api/results none 401", "10.77.0.1 GET /api/results viewer 200",
        "10.77.0.1 GET /api/analytics none 401", "10.77.0.1 GET /api/analytics viewer 200",
        "10.77.0.1 GET /metrics none 401", "10.77.0.1 GET /metrics viewer 200",
        "10.77.0.1 GET /api/insights none 401", "10.77.0.1 GET /api/insights viewer 200",
        "10.77.0.1 POST /api/predict none 401",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    let log = std::fs::read_to_string(store.path().join("err.log")).unwrap_or_default();
    assert_eq!(got, want, "{backend:?}: stderr: {}; collector: {log}", String::from_utf8_lossy(&out.stderr));
}
