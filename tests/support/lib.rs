//! Support for the end-to-end tests: locating the real binaries, starting them
//! on free loopback ports with temporary state, and talking to them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use bfp_common::model::{CompactModel, Node, FORMAT_VERSION, LEAF, MAGIC};
use bfp_common::schema::{PREDICT_FEATURE_NAMES, PREDICT_SCHEMA};

pub mod browser;
pub mod openapi;

pub use bfp_testkit::{repo_root, shared_data};

/// The target directory's profile folder the test executable runs from
/// (`target/debug`), so a custom `CARGO_TARGET_DIR` works too.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/collector-abc123 -> target/debug
    exe.parent().and_then(Path::parent).expect("test executable lives in target/<profile>/deps").to_path_buf()
}

static BUILD: Mutex<()> = Mutex::new(());

/// Path of a workspace binary (`bfp-collector`, ...), built with a nested
/// `cargo build` if it is missing. `scripts/test.sh` builds every binary
/// first; rebuild by hand after changing a binary's code.
pub fn binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if !path.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--bin", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    assert!(path.is_file(), "{} missing after cargo build", path.display());
    path
}

/// A one-tree model unlike the embedded one ("more than 3 failed logins is
/// Suspicious", version `e2e-stand-in`), written to `dir`, for tests of
/// `--model PATH`.
pub fn stand_in_model(dir: &Path) -> PathBuf {
    let leaf =
        |output, share| Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, output, suspicious_share: share };
    let model = CompactModel {
        magic: MAGIC,
        format_version: FORMAT_VERSION,
        schema_version: PREDICT_SCHEMA,
        model_version: "e2e-stand-in".into(),
        feature_names: PREDICT_FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        roots: vec![0],
        nodes: vec![
            Node { feature: 3, threshold: 3.5, left: 1, right: 2, output: 0, suspicious_share: 128 },
            leaf(0, 10),
            leaf(1, 250),
        ],
        calibration: None,
    };
    let path = dir.join("stand-in-model.postcard");
    std::fs::write(&path, model.to_bytes().expect("encode stand-in model")).expect("write stand-in model");
    path
}

/// A one-tree agents' model (feature schema 3, "more than 3 failed logins is
/// Suspicious", version `e2e-agent-stand-in`), written to `dir`, for tests
/// of model distribution to agents.
pub fn stand_in_agent_model(dir: &Path) -> PathBuf {
    let mut model = CompactModel::from_bytes(&std::fs::read(stand_in_model(dir)).unwrap()).unwrap();
    model.schema_version = bfp_common::schema::AGENT_SCHEMA;
    model.feature_names = bfp_common::schema::AGENT_FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    model.model_version = "e2e-agent-stand-in".into();
    CompactModel::from_bytes_of_schema(&model.to_bytes().unwrap(), bfp_common::schema::AGENT_SCHEMA, "test")
        .expect("a valid agents' model");
    let path = dir.join("stand-in-agent-model.postcard");
    std::fs::write(&path, model.to_bytes().expect("encode stand-in agent model")).expect("write stand-in agent model");
    path
}

/// A running `bfp-collector` on a loopback port. Killed on drop.
pub struct Collector {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// Its database (file or URL), when started with [`Collector::start`].
    db: Option<std::ffi::OsString>,
    /// An administrator's API token, made on first use.
    admin: std::sync::OnceLock<String>,
}

/// The store behind the collector of a test: the suites of the collector's
/// behaviour run against each (`for backend in Backend::ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A throw-away PostgreSQL cluster (`bfp_testkit::pg::PgCluster`).
    Postgres,
}

impl Backend {
    /// Every backend, SQLite first.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// A fresh, empty store of this backend.
    pub fn fresh(self) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, cluster) = match self {
            Backend::Sqlite => (dir.path().join("instance").join("app.db").into_os_string(), None),
            Backend::Postgres => {
                let cluster = bfp_testkit::pg::PgCluster::start();
                (cluster.url().into(), Some(cluster))
            }
        };
        TestDb { backend: self, db, dir, cluster }
    }
}

/// A fresh store of one backend and a temporary folder beside it; the
/// cluster (if any) is stopped and the folder removed on drop.
pub struct TestDb {
    /// Which backend.
    pub backend: Backend,
    db: std::ffi::OsString,
    dir: tempfile::TempDir,
    cluster: Option<bfp_testkit::pg::PgCluster>,
}

impl TestDb {
    /// What `--db` takes: the SQLite file's path or the PostgreSQL URL.
    pub fn db(&self) -> &std::ffi::OsStr {
        &self.db
    }

    /// A temporary folder for the test's other files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The PostgreSQL cluster, for a PostgreSQL store.
    pub fn cluster(&self) -> Option<&bfp_testkit::pg::PgCluster> {
        self.cluster.as_ref()
    }

    /// A second, empty store of the same backend (`name`: a file name or a
    /// database name).
    pub fn another(&self, name: &str) -> std::ffi::OsString {
        match &self.cluster {
            Some(c) => {
                c.create_database(name);
                c.url_of(name).into()
            }
            None => self.dir.path().join(format!("{name}.db")).into_os_string(),
        }
    }

    /// Runs one statement of `sql` on the store.
    pub fn execute(&self, sql: &str) {
        match &self.cluster {
            Some(c) => {
                c.psql(sql);
            }
            None => {
                let conn = rusqlite::Connection::open(&self.db).expect("open the database");
                conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    /// The number `sql` (one integer) counts in the store, through sqlite3's
    /// library or psql.
    pub fn count(&self, sql: &str) -> i64 {
        match &self.cluster {
            Some(c) => c.psql(sql).trim().parse().unwrap_or_else(|e| panic!("{sql}: {e}")),
            None => {
                let conn = rusqlite::Connection::open(&self.db).expect("open the database");
                conn.query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }
}

/// `bfp-collector ARGS --db DB` run to completion with `stdin` as its
/// input, whatever its outcome.
pub fn collector_output(db: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(binary("bfp-collector"))
        .args(args)
        .arg("--db")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bfp-collector");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for bfp-collector")
}

/// [`collector_output`] of a command that must succeed: its stdout, or a
/// panic with its stderr.
pub fn collector_cli(db: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: &str) -> String {
    let out = collector_output(db, args, stdin);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The password [`operator_token`] gives user `name`.
pub fn password_of(name: &str) -> String {
    format!("e2e password of {name}")
}

/// Creates user `name` with `role` (`viewer`, `analyst`, `admin`) and the
/// password [`password_of`] through the real `bfp-collector user add`, and
/// returns a new API token of it (`token add`).
pub fn operator_token(db: impl AsRef<std::ffi::OsStr>, name: &str, role: &str) -> String {
    let db = db.as_ref();
    add_operator(db, name, role);
    collector_cli(db, &["token", "add", "--user", name], "").trim().to_string()
}

/// Creates user `name` with `role` and the password [`password_of`]
/// through the real `bfp-collector user add`, unless it exists (a test that
/// restarts its collector on the same database).
pub fn add_operator(db: impl AsRef<std::ffi::OsStr>, name: &str, role: &str) {
    use std::io::Write;
    let mut child = Command::new(binary("bfp-collector"))
        .args(["user", "add", name, "--role", role, "--db"])
        .arg(db.as_ref())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bfp-collector user add");
    child.stdin.take().expect("stdin").write_all(format!("{}\n", password_of(name)).as_bytes()).expect("stdin");
    let out = child.wait_with_output().expect("wait for bfp-collector");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || err.contains("already exists"), "user add {name}: {err}");
}

impl Collector {
    /// Starts the real binary with `--listen 127.0.0.1:0 --db DB` plus `args`,
    /// and waits for it to print its bound address.
    pub fn start(db: impl AsRef<std::ffi::OsStr>, args: &[String]) -> Collector {
        let db = db.as_ref();
        let mut cmd = Command::new(binary("bfp-collector"));
        cmd.arg("--listen").arg("127.0.0.1:0").arg("--db").arg(db).args(args);
        let mut c = Collector::spawn(cmd);
        c.db = Some(db.to_os_string());
        c
    }

    /// Names the database a collector started with [`Collector::spawn`]
    /// uses, for [`Collector::admin_token`].
    pub fn with_db(mut self, db: impl AsRef<std::ffi::OsStr>) -> Collector {
        self.db = Some(db.as_ref().to_os_string());
        self
    }

    /// An administrator's API token on this collector's database (user
    /// `e2e-admin`, made through the real command line on first use).
    pub fn admin_token(&self) -> &str {
        self.admin.get_or_init(|| {
            let db = self.db.as_deref().expect("a collector started with Collector::start");
            operator_token(db, "e2e-admin", "admin")
        })
    }

    /// `GET path` as the administrator.
    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[])
    }

    /// `POST path` with a JSON body, as the administrator.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Reply {
        let auth = format!("Bearer {}", self.admin_token());
        let url = self.url(path);
        let req = agent().post(&url).header("Authorization", &auth).header("Content-Type", "application/json");
        reply("POST", &url, req.send(body.to_string().as_bytes()))
    }

    /// `POST path` with a body of `content_type`, as the administrator.
    pub fn post(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
        let auth = format!("Bearer {}", self.admin_token());
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        send("POST", &self.url(path), &headers, Some(body))
    }

    /// A request without a body, as the administrator, with more `headers`.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        let auth = format!("Bearer {}", self.admin_token());
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        request(method, &self.url(path), &all)
    }

    /// Starts the binary exactly as `cmd` says (for tests of the defaults),
    /// and waits for it to print its bound address.
    pub fn spawn(mut cmd: Command) -> Collector {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).env("RUST_LOG", "warn");
        let mut child = cmd.spawn().expect("spawn bfp-collector");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let addr = line
                        .strip_prefix("bfp-collector listening on http://")
                        .or_else(|| line.strip_prefix("bfp-collector listening on https://"));
                    if let Some(addr) = addr {
                        let addr = addr.trim().parse().expect("bound address");
                        openapi::register(addr, line.contains("https://"));
                        return Collector { child, addr, lines, db: None, admin: std::sync::OnceLock::new() };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    panic!("bfp-collector did not report its address (exit: {status:?})");
                }
            }
        }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGKILLs the collector (no clean stop) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns at once (see [`Collector::stop`] to wait).
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM failed");
    }

    /// Sends SIGTERM and waits (up to 30 s) for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The last line says the writer finished. Read to the end of
                // stdout: the reader thread may not have passed it on yet.
                let mut rest = Vec::new();
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    rest.push(line);
                }
                assert!(rest.iter().any(|l| l == "bfp-collector stopped"), "no clean stop: {rest:?}");
                return status;
            }
            assert!(Instant::now() < deadline, "bfp-collector ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if std::env::var_os("BFP_E2E_OPENAPI_STATS").is_some() {
            eprintln!("openapi: {} answers checked against the document so far", openapi::checked());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Other headers of interest, lower-case name and value.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The HTTP client of the helpers (statuses are answers, not errors).
pub(crate) fn agent_unchecked() -> ureq::Agent {
    agent()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The answer to `method url`, checked against the collector's OpenAPI
/// document if `url` is a collector's (see [`openapi`]).
fn reply(method: &str, url: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let reply = read_reply(r);
    openapi::check(method, url, &reply);
    reply
}

/// An answer, read whole.
pub(crate) fn read_reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("HTTP request");
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect::<Vec<_>>();
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    // Lossy: a binary reply (a model artifact) is read as well, not refused.
    let bytes = r.body_mut().with_config().limit(512 * 1024 * 1024).read_to_vec().expect("read body");
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Reply { status: r.status().as_u16(), content_type, headers, body }
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    reply("GET", url, agent().get(url).call())
}

/// A request with any method and headers, and no body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    reply(method, url, agent().run(builder.body(()).expect("request")))
}

/// `POST url` with a body and (optionally) a content type.
pub fn post(url: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
    let mut req = agent().post(url);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    reply("POST", url, req.send(body))
}

/// `POST url` with a JSON body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Reply {
    post(url, Some("application/json"), body.to_string().as_bytes())
}

/// A request with any method, headers and body (`None`: no body).
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (n, v) in headers {
        builder = builder.header(*n, *v);
    }
    match body {
        Some(b) => reply(method, url, agent().run(builder.body(b.to_vec()).expect("request"))),
        None => reply(method, url, agent().run(builder.body(()).expect("request"))),
    }
}

/// A `multipart/form-data` body with one file field; returns (content type, body).
pub fn multipart(field: &str, filename: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "bfp-e2e-boundary-7d1f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `POST url` uploading `content` as the multipart field `field`.
pub fn upload(url: &str, field: &str, content: &[u8]) -> Reply {
    let (ct, body) = multipart(field, "upload.csv", content);
    post(url, Some(&ct), &body)
}

/// A free loopback port (bound and released; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}
pub mod agent;
pub mod forward;
