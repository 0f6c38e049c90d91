//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/setup/browser.sh`), for the
//! dashboard's end-to-end tests.
//!
//! A missing browser is a test failure with a message saying how to install
//! it, never a silent skip: CI installs it, so its absence is a broken setup.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a page gets to reach an expected state before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// The flags Chromium needs on this machine: headless as root, and no
/// background networking (the sandbox has no network; without these flags
/// Chromium keeps dialling out and stalls).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--window-size=1280,900",
];

/// A chromedriver process with one browser session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
        for name in candidates {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port").local_addr().unwrap().port()
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless
    /// Chromium session with a fresh profile. Panics with install advice when
    /// either program is missing.
    pub async fn start() -> Browser {
        let missing = "install Debian's chromium and chromium-driver: `bash scripts/setup/browser.sh` \
                       (or set BFP_CHROMIUM / BFP_CHROMEDRIVER to their paths)";
        let chromium = find_program("BFP_CHROMIUM", &["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("the dashboard browser tests need Chromium, which was not found: {missing}"));
        let chromedriver = find_program("BFP_CHROMEDRIVER", &["chromedriver"])
            .unwrap_or_else(|| panic!("the dashboard browser tests need chromedriver, which was not found: {missing}"));

        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");

        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), json!({"binary": chromium, "args": args}));

        let url = format!("http://127.0.0.1:{port}");
        // Generous: on a loaded CI machine chromedriver and Chromium start slowly.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut browser = None;
        let mut driver = Some(driver);
        while browser.is_none() {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => {
                    browser = Some(Browser { client, driver: driver.take().unwrap(), _profile: profile });
                    break;
                }
                // chromedriver may not listen yet; anything else past the deadline is fatal.
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    let _ = driver.as_mut().map(|d| d.kill());
                    panic!("cannot open a Chromium session through {} ({}): {e}", chromedriver.display(), url);
                }
            }
        }
        browser.unwrap()
    }

    /// Ends the browser session, then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find all {css}: {e}"))
    }

    /// Runs `script` (a function body; `arguments` as usual) and returns its value.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Text content of the element at `css` (also when hidden), "" if absent.
    pub async fn text(&self, css: &str) -> String {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';";
        self.js(script, vec![json!(css)]).await.as_str().unwrap_or("").trim().to_string()
    }

    /// Whether the element at `css` exists and is rendered (not `hidden`, not
    /// inside a hidden ancestor).
    pub async fn visible(&self, css: &str) -> bool {
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
                vec![json!(css)],
            )
            .await;
        v.as_bool().unwrap_or(false)
    }

    /// Waits until the element at `css` is rendered; fails the test after [`WAIT`].
    pub async fn wait_visible(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.visible(css).await {
            if Instant::now() > deadline {
                panic!("{css} did not become visible within {WAIT:?}; page text: {}", self.text("main").await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    pub async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            if Instant::now() > deadline {
                panic!("{css}: expected {what} within {WAIT:?}, text is {t:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Replaces the value of the input at `css` by typing `value`.
    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap_or_else(|err| panic!("clear {css}: {err}"));
        if !value.is_empty() {
            e.send_keys(value).await.unwrap_or_else(|err| panic!("type into {css}: {err}"));
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Logs in on the dashboard's login page at `base` and waits until the
    /// page shows the operator.
    pub async fn log_in(&self, base: &str, user: &str, password: &str) {
        self.goto(&format!("{base}/")).await;
        self.wait_visible("#login-form").await;
        self.fill("#login-user", user).await;
        self.fill("#login-password", password).await;
        self.click("#login-submit").await;
        self.wait_text("#whoami-user", "the logged-in user", |t| t == user).await;
    }

    /// Saves a PNG of the whole page (the window is stretched to the page's
    /// height for the shot, up to 4000 px) as `dir/NAME.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let (w, h) = self.client.get_window_size().await.unwrap_or((1280, 900));
        let size = self
            .js("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];", vec![])
            .await;
        let page = size[0].as_u64().unwrap_or(h);
        let chrome = size[1].as_u64().unwrap_or(0);
        let tall = (page + chrome).clamp(h, 4000);
        if tall != h {
            let _ = self.client.set_window_size(w as u32, tall as u32).await;
        }
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        if tall != h {
            let _ = self.client.set_window_size(w as u32, h as u32).await;
        }
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

/// Where the browser tests save their screenshots: `target/screenshots/`
/// (ignored, so a test run changes no tracked file), or `BFP_SCREENSHOTS`.
/// `scripts/refresh-screenshots.sh` points it at `docs/screenshots/`, which
/// the README shows, when someone refreshes them on purpose.
pub fn screenshots_dir() -> PathBuf {
    match std::env::var_os("BFP_SCREENSHOTS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("screenshots"),
    }
}
