//! The operator dashboard in a real headless Chromium, against the real
//! `bfp-collector` binary on loopback with a temporary database.
//!
//! One browser session walks every page the way an operator would and checks
//! what the page shows against what the API says; screenshots of each page go
//! to `target/screenshots/` (`scripts/refresh-screenshots.sh` writes the
//! README's, in `docs/screenshots/`).

use std::path::Path;

use bfp_e2e::browser::{screenshots_dir, Browser};
use bfp_e2e::{self as support, forward, Backend, Collector};
use serde_json::{json, Value};

/// The API, to compare the pages with (blocking, through the shared
/// helpers), as an administrator.
struct Api<'a> {
    base: String,
    collector: &'a Collector,
}

impl Api<'_> {
    fn get(&self, path: &str) -> (u16, Value) {
        let r = self.collector.get(path);
        let v = if r.status == 404 && !r.body.starts_with('{') { Value::Null } else { r.json() };
        (r.status, v)
    }

    fn get_text(&self, path: &str) -> (u16, String, String) {
        let r = self.collector.get(path);
        (r.status, r.content_type.unwrap_or_default(), r.body)
    }

    fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.collector.post_json(path, body);
        (r.status, r.json())
    }

    /// The same upload the page makes (multipart, field `file`).
    fn post_csv(&self, content: &[u8]) -> (u16, Value) {
        let r = support::upload(&format!("{}/api/predict-csv", self.base), "file", content);
        (r.status, r.json())
    }
}

async fn single_scan(b: &Browser, api: &Api<'_>, base: &str, shots: &Path) {
    b.goto(&format!("{base}/#/scan")).await;
    b.wait_visible("#scan-form").await;
    let before = api.get("/api/analytics").1["total_predictions"].as_u64().unwrap();

    // Client-side validation mirrors the server's: an hour of 24 and a
    // negative duration never reach the server.
    b.fill("#f-hour", "24").await;
    b.fill("#f-duration", "-1").await;
    b.click("#scan-submit").await;
    b.wait_text("#e-hour", "an hour-range message", |t| t.contains("at most 23")).await;
    assert!(b.text("#e-duration").await.contains("at least 0"), "duration error: {}", b.text("#e-duration").await);
    assert_eq!(b.find("#f-hour").await.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert!(!b.visible("#scan-result").await, "a verdict was shown for invalid input");
    assert_eq!(api.get("/api/analytics").1["total_predictions"].as_u64().unwrap(), before, "invalid input was sent");

    // The original example, typed in the form: Suspicious, with reasons.
    b.fill("#f-hour", "3").await;
    b.fill("#f-duration", "5").await;
    b.fill("#f-command-list", "ls\nsudo\nchmod").await;
    b.fill("#f-failed", "4").await;
    b.select("#f-protocol", "TOR").await;
    b.fill("#f-typing", "120").await;
    assert_eq!(b.find("#f-commands").await.prop("value").await.unwrap().as_deref(), Some("3"));
    b.click("#scan-submit").await;
    b.wait_visible("#scan-result").await;
    assert_eq!(b.text("#scan-verdict").await, "Suspicious");
    assert!(b.text("#e-hour").await.is_empty());
    let confidence = b.text("#scan-confidence").await;
    let pct: f64 = confidence.trim_end_matches('%').parse().unwrap_or_else(|_| panic!("confidence {confidence:?}"));
    assert!((50.0..=100.0).contains(&pct), "confidence {pct}");
    let reasons: Vec<String> = {
        let mut out = Vec::new();
        for li in b.find_all("#scan-reasons li").await {
            out.push(li.text().await.unwrap());
        }
        out
    };
    assert!(!reasons.is_empty(), "no reasons shown");
    // The page shows the server's reasons for this very prediction.
    let (_, stored) = api.get("/api/results?limit=1000");
    let last = stored["results"].as_array().unwrap().last().unwrap().clone();
    let server_reasons: Vec<String> =
        last["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert_eq!(reasons, server_reasons);
    assert!(reasons.iter().any(|r| r.contains("failed login") || r.contains("Tor")), "{reasons:?}");
    b.screenshot(shots, "scan").await;
}

async fn csv_batch(b: &Browser, api: &Api<'_>, base: &str, shots: &Path) {
    let seed = support::shared_data().join("seed/test.csv");
    assert!(seed.is_file(), "{} not found (set BFP_SHARED_DATA to the shared data folder)", seed.display());
    let seed = seed.canonicalize().unwrap();

    b.goto(&format!("{base}/#/batch")).await;
    b.wait_visible("#batch-form").await;
    // Submitting without a file is caught on the page.
    b.click("#batch-submit").await;
    b.wait_text("#e-file", "a choose-a-file message", |t| t.contains("Choose a CSV")).await;

    b.find("#f-file").await.send_keys(seed.to_str().unwrap()).await.unwrap();
    b.click("#batch-submit").await;
    b.wait_visible("#batch-result").await;
    assert_eq!(b.text("#batch-total").await, "3");
    assert_eq!(b.text("#batch-normal").await, "2");
    assert_eq!(b.text("#batch-suspicious").await, "1");
    assert_eq!(b.js("return document.getElementById('batch-progress').value;", vec![]).await, json!(100));
    // Each row's verdict, in file order: the TOR row is the suspicious one.
    b.wait_text("#batch-rows tbody", "three rows", |t| t.matches('%').count() == 3).await;
    let (mut verdicts, mut commands) = (Vec::new(), Vec::new());
    for row in b.find_all("#batch-rows tbody tr").await {
        verdicts.push(row.find(fantoccini::Locator::Css("td:nth-child(8)")).await.unwrap().text().await.unwrap());
        commands.push(row.find(fantoccini::Locator::Css("td:nth-child(4)")).await.unwrap().text().await.unwrap());
    }
    assert_eq!(verdicts, ["Normal", "Suspicious", "Normal"]);
    // The Commands column holds the file's CommandsCount.
    assert_eq!(commands, ["10", "80", "5"]);
    // The scored CSV the download link gives: the original columns plus the verdict.
    let href = b.find("#batch-download").await.attr("href").await.unwrap().expect("download link");
    let path = href.strip_prefix(base).unwrap_or(&href);
    let (status, ty, scored) = api.get_text(path);
    assert_eq!(status, 200, "{path}: {scored}");
    assert!(ty.starts_with("text/csv"), "{ty}");
    let lines: Vec<&str> = scored.lines().collect();
    assert!(lines[0].starts_with(bfp_common::fingerprint::CSV_HEADER), "{}", lines[0]);
    assert!(lines[0].contains("Prediction"), "{}", lines[0]);
    assert_eq!(lines.len(), 4, "{scored}");
    assert!(lines[2].starts_with("2,5,80,4,TOR,120") && lines[2].contains("Suspicious"), "{}", lines[2]);
    b.screenshot(shots, "batch").await;

    // A bad file: the page shows the server's own message, row included.
    let bad = b"LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed\n9,40,10,0,HTTPS,45\n25,5,1,0,SSH,30\n";
    let (status, server) = api.post_csv(bad);
    assert_eq!(status, 400, "{server}");
    let dir = tempfile::tempdir().unwrap();
    let bad_path = dir.path().join("bad.csv");
    std::fs::write(&bad_path, bad).unwrap();
    let total = api.get("/api/analytics").1["total_predictions"].clone();
    b.goto(&format!("{base}/#/batch")).await;
    b.find("#f-file").await.send_keys(bad_path.to_str().unwrap()).await.unwrap();
    b.click("#batch-submit").await;
    b.wait_visible("#batch-error").await;
    let shown = b.text("#batch-error").await;
    assert!(shown.contains(server["error"].as_str().unwrap()), "page {shown:?} vs server {server}");
    if let Some(detail) = server["detail"].as_str() {
        assert!(shown.contains(detail), "page {shown:?} vs server {server}");
    }
    assert!(shown.contains("row 2"), "the failing row is not named: {shown:?}");
    assert!(!b.visible("#batch-result").await);
    assert_eq!(api.get("/api/analytics").1["total_predictions"], total, "a bad file stored rows");
    b.screenshot(shots, "batch-error").await;
}

async fn analytics(b: &Browser, api: &Api<'_>, base: &str, shots: &Path) {
    let (_, a) = api.get("/api/analytics");
    b.goto(&format!("{base}/#/analytics")).await;
    let total = a["total_predictions"].as_u64().unwrap().to_string();
    b.wait_text("#a-total", "the API's total", |t| t == total).await;
    assert_eq!(b.text("#a-normal").await, a["normal_users"].as_u64().unwrap().to_string());
    assert_eq!(b.text("#a-suspicious").await, a["suspicious_users"].as_u64().unwrap().to_string());
    assert_eq!(b.text("#a-normal-pct").await, format!("{:.1}%", a["normal_percent"].as_f64().unwrap()));
    assert_eq!(b.text("#a-suspicious-pct").await, format!("{:.1}%", a["suspicious_percent"].as_f64().unwrap()));
    // The charts were drawn by the vendored Chart.js, and their data tables
    // agree with the store: single and CSV predictions both appear by source.
    b.wait_text("#table-source", "rows by source", |t| t.contains("csv")).await;
    let drawn =
        b.js("return !!window.Chart && !!Chart.getChart(document.getElementById('chart-source'));", vec![]).await;
    assert_eq!(drawn, json!(true), "the source chart was not drawn");
    // No agent has reported: the device and source-address charts say so
    // rather than drawing empty axes.
    assert!(b.visible("#chart-device ~ .chart-empty").await && !b.visible("#chart-device").await);
    assert!(b.visible("#chart-ips ~ .chart-empty").await);
    assert!(!b.visible("#chart-source ~ .chart-empty").await);
    let (_, insights) = api.get("/api/insights?bucket=hour");
    let csv = insights["by_source"].as_array().unwrap().iter().find(|s| s["key"] == "csv").unwrap();
    assert_eq!(csv["normal"].as_u64().unwrap() + csv["suspicious"].as_u64().unwrap(), 3, "{insights}");
    let sum: u64 = insights["over_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["normal"].as_u64().unwrap() + p["suspicious"].as_u64().unwrap())
        .sum();
    assert_eq!(sum.to_string(), total, "over-time buckets do not add up to the total");
    // Switching the bucket redraws by day.
    b.click(".segmented button[data-bucket=day]").await;
    b.wait_text("#table-time", "a day bucket", |t| t.contains("Day")).await;
    b.screenshot(shots, "analytics").await;
}

async fn results(b: &Browser, api: &Api<'_>, base: &str, shots: &Path) {
    // Enough rows for three pages of ten.
    for i in 0..22u32 {
        let protocol = ["SSH", "HTTPS", "FTP"][i as usize % 3];
        let body = json!({"login_time": i % 24, "session_duration": 10 + i, "commands": i, "failed_logins": i % 3,
                          "protocol": protocol, "typing_speed": 40});
        assert_eq!(api.post_json("/api/predict", &body).0, 200);
    }
    // The list is newest first (by event time, ties by id).
    let (_, all) = api.get("/api/results?limit=1000&order=newest");
    let count = all["count"].as_u64().unwrap();
    let ids: Vec<u64> = all["results"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert!(count >= 26, "{count}");

    b.goto(&format!("{base}/#/results")).await;
    b.wait_visible("#results-filters").await;
    b.select("#r-limit", "10").await;
    b.click("#results-filters button[type=submit]").await;
    b.wait_text("#results-status", "the first page", |t| t.starts_with("Showing 1–10 of")).await;
    assert_eq!(page_ids(b).await, ids[..10]);
    assert_eq!(b.text("#results-status").await, format!("Showing 1–10 of {count} predictions."));
    b.click("#results-next").await;
    b.wait_text("#results-status", "the second page", |t| t.starts_with("Showing 11–20")).await;
    assert_eq!(page_ids(b).await, ids[10..20]);
    b.click("#results-next").await;
    b.wait_text("#results-status", "the third page", |t| t.starts_with("Showing 21–")).await;
    assert_eq!(page_ids(b).await, ids[20..30.min(ids.len())]);
    b.click("#results-prev").await;
    b.wait_text("#results-status", "the second page again", |t| t.starts_with("Showing 11–20")).await;
    assert_eq!(page_ids(b).await, ids[10..20]);

    // Filter: suspicious predictions only; the count is the API's filtered total.
    b.select("#r-prediction", "Suspicious").await;
    b.click("#results-filters button[type=submit]").await;
    let (_, sus) = api.get("/api/results?prediction=Suspicious&limit=10&order=newest");
    let n = sus["count"].as_u64().unwrap();
    assert!(n >= 2, "{sus}");
    b.wait_text("#results-status", "the filtered count", |t| t.ends_with(&format!("of {n} predictions."))).await;
    let want: Vec<u64> = sus["results"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(page_ids(b).await, want);
    for badge in b.find_all("#results-table tbody .badge").await {
        assert_eq!(badge.text().await.unwrap(), "Suspicious");
    }
    // Filter by source and a time range that excludes everything.
    b.select("#r-prediction", "").await;
    b.select("#r-source", "csv").await;
    b.click("#results-filters button[type=submit]").await;
    b.wait_text("#results-status", "the three CSV rows", |t| t == "Showing 1–3 of 3 predictions.").await;
    b.js(
        "document.getElementById('r-to').value = '2000-01-01T00:00:00'; \
         document.querySelector('#results-filters button[type=submit]').click();",
        vec![],
    )
    .await;
    b.wait_text("#results-status", "nothing before 2000", |t| t == "Showing 0–0 of 0 predictions.").await;

    // A row opens its fingerprint and reasons, with the keyboard too.
    b.click("#results-filters button[type=reset]").await;
    b.wait_text("#results-status", "all rows again", |t| t.ends_with(&format!("of {count} predictions."))).await;
    b.screenshot(shots, "results").await;
    let first = format!("#results-table tbody tr[data-id='{}'] button.details", ids[0]);
    b.find(&first).await.send_keys("\u{E007}").await.unwrap(); // Enter
    b.wait_visible("#detail[open]").await;
    let detail = b.text("#detail-body").await;
    let row = &all["results"][0];
    assert!(detail.contains("Fingerprint") && detail.contains("Login hour"), "{detail}");
    // Features read with their units, never as raw keys and decimals.
    let minutes = row["features"]["session_duration"].as_f64().unwrap();
    assert!(detail.contains(&format!("{} min", minutes.round())), "{minutes} min in {detail:?}");
    assert!(!detail.contains("session_duration"), "{detail}");
    for r in row["reasons"].as_array().unwrap() {
        assert!(detail.contains(r.as_str().unwrap()), "reason {r} missing from {detail:?}");
    }
    // Analyst feedback: "Mark false positive" stores the other class and shows it.
    assert_eq!(b.text("#detail-label").await, "Not labelled by an analyst.");
    let other = if row["prediction"] == "Suspicious" { "Normal" } else { "Suspicious" };
    b.click("#detail-fp").await;
    let shown = b
        .wait_text("#detail-label", "the analyst's label", |t| {
            t.starts_with(&format!("Analyst label: {other} (marked"))
        })
        .await;
    let (_, labelled) = api.get("/api/results?labelled=true");
    assert_eq!(labelled["count"], 1, "{labelled}");
    assert_eq!(
        (&labelled["results"][0]["id"], &labelled["results"][0]["analyst_label"]),
        (&json!(ids[0]), &json!(other))
    );
    assert!(shown.contains(labelled["results"][0]["labelled_at"].as_str().unwrap()), "{shown}");
    b.screenshot(shots, "result-detail").await;
    b.js("document.getElementById('detail').close();", vec![]).await;
}

/// The ids of the rows the results table shows, in order.
async fn page_ids(b: &Browser) -> Vec<u64> {
    let script =
        "return [...document.querySelectorAll('#results-table tbody tr[data-id]')].map(r => Number(r.dataset.id));";
    b.js(script, vec![]).await.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

/// An agent reports (a real token from `device add`, a batch over
/// `/api/ingest`): the devices page lists it, and the analytics page charts it
/// by device and by source address.
async fn fleet(b: &Browser, api: &Api<'_>, base: &str, token: &str, shots: &Path) {
    // Choosing the current page again reloads it.
    b.click("nav a[data-page=devices]").await;
    b.wait_visible("#devices-wrap").await;
    assert_eq!(b.text("#devices-table tbody td:nth-child(6)").await, "0", "records before the batch");

    let mut batch = forward::sample_batch(1, 6);
    batch.heartbeat.spool_depth = 4;
    batch.heartbeat.dropped = 2;
    batch.heartbeat.last_error = Some("collector unreachable for 5 min".into());
    let body = batch.encode().unwrap();
    let r = forward::post_auth(&format!("{base}/api/ingest"), Some(token), bfp_common::wire::CONTENT_TYPE, &body);
    assert_eq!(r.status, 200, "{}", r.body);

    let (_, fleet) = api.get("/api/devices");
    let d = &fleet["devices"][0];
    b.click("nav a[data-page=devices]").await;
    b.wait_text("#devices-table tbody", "the reported spool depth", |t| t.contains("collector unreachable")).await;
    let cells = b
        .js("return [...document.querySelectorAll('#devices-table tbody tr:first-child td')].map(td => td.textContent);", vec![])
        .await;
    let cell = |i: usize| cells[i].as_str().unwrap().to_string();
    assert_eq!(cell(0), "pi-lab");
    assert_eq!(cell(1), d["last_seen"].as_str().unwrap());
    assert_eq!((cell(2), cell(3)), ("e2e".to_string(), "e2e-model".to_string()));
    assert_eq!((cell(4), cell(5), cell(6), cell(7)), ("4".into(), "2".into(), "10".into(), "6".into()));
    b.screenshot(shots, "devices").await;

    // The device's name opens its results.
    b.click("#devices-table tbody tr:first-child a").await;
    b.wait_text("#results-status", "the device's six results", |t| t == "Showing 1–6 of 6 predictions.").await;

    // Analytics: by device and top suspicious source addresses (records 0 and
    // 3 of the sample batch are suspicious: 192.0.2.0 and 192.0.2.3).
    b.goto(&format!("{base}/#/analytics")).await;
    b.wait_text("#table-device", "the device's bar", |t| t.contains("pi-lab")).await;
    b.wait_text("#table-ips", "the suspicious addresses", |t| t.contains("192.0.2.0") && t.contains("192.0.2.3")).await;
    assert!(!b.text("#table-ips").await.contains("192.0.2.1"), "a normal-only address among the suspicious");
    assert!(b.visible("#chart-device").await && b.visible("#chart-ips").await);
    b.wait_text("#table-source", "agent rows by source", |t| t.contains("agent")).await;
    b.screenshot(shots, "analytics").await;
}

/// Before any agent exists the devices page says so (an empty fleet, or a
/// collector without fleet support answering 404).
async fn devices(b: &Browser, api: &Api<'_>, base: &str) {
    let (status, body) = api.get("/api/devices");
    assert!(status == 404 || body["devices"].as_array().is_some_and(|d| d.is_empty()), "{status} {body}");
    b.goto(&format!("{base}/#/devices")).await;
    b.wait_visible("#devices-empty").await;
    assert!(b.text("#devices-empty").await.starts_with("No devices yet"));
    assert!(!b.visible("#devices-error").await, "{}", b.text("#devices-error").await);
    assert!(!b.visible("#devices-wrap").await);
}

/// axe-core (vendored in `tests/testdata/`, see `scripts/vendor-dashboard.sh`)
/// finds no WCAG 2 A/AA or best-practice violation on any page, each page
/// showing data. First it must find one that is planted, so the check can fail.
async fn accessibility(b: &Browser, base: &str) {
    let axe = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/axe.min.js"))
        .expect("tests/testdata/axe.min.js (scripts/vendor-dashboard.sh --update)");
    let run = "const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'best-practice']})
           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
           .catch(e => done('axe failed: ' + e));";
    let axe = &axe;
    let violations = |page: &'static str| async move {
        b.goto(&format!("{base}/#/{page}")).await;
        b.wait_visible(&format!("#page-{page}")).await;
        if b.js("return typeof axe;", vec![]).await != json!("object") {
            b.js(axe, vec![]).await;
        }
        b.client.execute_async(run, vec![]).await.unwrap_or_else(|e| panic!("axe on {page}: {e}"))
    };
    // The planted mistake: an input with no label.
    b.goto(&format!("{base}/#/scan")).await;
    b.wait_visible("#page-scan").await;
    b.js(
        "document.getElementById('scan-form').append(Object.assign(document.createElement('input'), {id: 'planted'}));",
        vec![],
    )
    .await;
    let planted = violations("scan").await;
    assert!(planted.to_string().contains("#planted"), "axe missed an unlabelled input: {planted}");
    b.js("document.getElementById('planted').remove();", vec![]).await;

    for page in ["scan", "batch", "analytics", "results", "devices"] {
        let v = violations(page).await;
        assert_eq!(v, json!([]), "accessibility violations on {page}");
    }
}

async fn phone(b: &Browser, base: &str, shots: &Path) {
    b.client.set_window_size(390, 844).await.unwrap();
    for page in ["scan", "results"] {
        b.goto(&format!("{base}/#/{page}")).await;
        b.wait_visible(&format!("#page-{page}")).await;
        // Readable on a phone: the page itself never scrolls sideways (wide
        // tables scroll inside their own box).
        let overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth;", vec![]).await;
        assert!(overflow.as_i64().unwrap() <= 0, "{page} overflows a phone screen by {overflow}px");
    }
    b.goto(&format!("{base}/#/scan")).await;
    b.wait_visible("#page-scan").await;
    b.screenshot(shots, "scan-phone").await;
}

async fn keyboard_navigation(b: &Browser, base: &str) {
    b.goto(&format!("{base}/")).await;
    b.wait_visible("#page-scan").await;
    // The first page needs only the HTML, the stylesheet and app.js: the chart
    // library loads when the analytics page is first opened.
    let loaded = b
        .js("return performance.getEntriesByType('resource').map(e => new URL(e.name).pathname).sort();", vec![])
        .await;
    // ... and who is logged in.
    assert_eq!(
        loaded,
        json!(["/api/session", "/assets/app.js", "/assets/style.css"]),
        "first load fetched more than it needs"
    );
    // Reported, not asserted (timing belongs in benchmarks): see docs/benchmarks.md.
    let paint = b
        .js(
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : null;",
            vec![],
        )
        .await;
    eprintln!("dashboard first contentful paint: {paint} ms");
    // Every page is reachable from its nav link; the current one is marked.
    for page in ["batch", "analytics", "results", "devices", "scan"] {
        b.find(&format!("nav a[data-page={page}]")).await.send_keys("\u{E007}").await.unwrap();
        b.wait_visible(&format!("#page-{page}")).await;
        let current = b.find(&format!("nav a[data-page={page}]")).await.attr("aria-current").await.unwrap();
        assert_eq!(current.as_deref(), Some("page"));
    }
    // Every form control has a label.
    let unlabelled = b
        .js(
            "return [...document.querySelectorAll('input, select, textarea')]
               .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id);",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "controls without a label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    for backend in Backend::ALL {
        dashboard_in_a_real_browser_on(backend).await;
    }
}

async fn dashboard_in_a_real_browser_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let store = backend.fresh();
    let db = store.db();
    let collector = Collector::start(db, &[]);
    let base = collector.url("");
    let api = Api { base: base.clone(), collector: &collector };
    let shots = screenshots_dir();
    support::add_operator(db, "e2e-admin", "admin");
    let b = Browser::start().await;

    b.log_in(&base, "e2e-admin", &support::password_of("e2e-admin")).await;
    keyboard_navigation(&b, &base).await;
    single_scan(&b, &api, &base, &shots).await;
    csv_batch(&b, &api, &base, &shots).await;
    analytics(&b, &api, &base, &shots).await;
    results(&b, &api, &base, &shots).await;
    devices(&b, &api, &base).await;
    // A device is registered over the API (an administrator's token) and reports.
    let (status, added) = api.post_json("/api/devices", &json!({"name": "pi-lab"}));
    assert_eq!(status, 201, "{added}");
    fleet(&b, &api, &base, added["token"].as_str().unwrap(), &shots).await;
    accessibility(&b, &base).await;
    phone(&b, &base, &shots).await;

    b.close().await;
    drop(collector);
}

/// The dashboard's own endpoints: bad input is a 4xx JSON error like the rest
/// of the API, and the original CSV answer is unchanged unless `?ids=1`.
#[test]
fn dashboard_endpoints_answer_json_errors_and_keep_the_original_csv_answer() {
    for backend in Backend::ALL {
        dashboard_endpoints_answer_json_errors_and_keep_the_original_csv_answer_on(backend);
    }
}

fn dashboard_endpoints_answer_json_errors_and_keep_the_original_csv_answer_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let store = backend.fresh();
    let c = Collector::start(store.db(), &[]);
    for path in [
        "/api/insights?bucket=week",
        "/api/results?from=yesterday",
        "/api/results?to=2026-02-30%2025:00",
        "/api/results?min_id=-x",
        "/api/export.csv?prediction=maybe",
        "/api/export.csv?from=2026/01/01",
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], "Invalid or missing input data", "{path}");
        assert!(r.json()["detail"].as_str().is_some_and(|d| !d.is_empty()), "{path}: {}", r.body);
    }
    let doc = support::get(&c.url("/api/openapi.json")).json();
    for path in ["/api/insights", "/api/export.csv"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing from the OpenAPI document");
    }
    let r = support::get(&c.url("/assets/nope.js"));
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("Not found")));
    let r = support::get(&c.url("/"));
    assert_eq!((r.status, r.content_type.as_deref()), (200, Some("text/html; charset=utf-8")));
    assert!(r.body.contains("<title>") && r.body.contains("/assets/app.js?v="));

    let csv = std::fs::read(support::shared_data().join("seed/test.csv")).unwrap();
    let plain = support::upload(&c.url("/api/predict-csv"), "file", &csv);
    assert_eq!(plain.json(), json!({"total_records": 3, "normal_users": 2, "suspicious_users": 1}));
    let with_ids = support::upload(&c.url("/api/predict-csv?ids=1"), "file", &csv);
    assert_eq!(
        with_ids.json(),
        json!({"total_records": 3, "normal_users": 2, "suspicious_users": 1, "first_id": 4, "last_id": 6})
    );
    let r = support::get(&c.url("/api/results?min_id=4&max_id=6"));
    assert_eq!(r.json()["count"], 3);
    // Empty store windows are fine; here the two uploads fill one hour.
    let i = c.get("/api/insights").json();
    let hours = i["over_time"].as_array().unwrap();
    assert_eq!(hours.iter().map(|h| h["normal"].as_u64().unwrap() + h["suspicious"].as_u64().unwrap()).sum::<u64>(), 6);
    let export = c.get("/api/export.csv?min_id=4&max_id=6");
    assert_eq!(export.status, 200);
    assert_eq!(export.header("content-disposition"), Some("attachment; filename=\"bfp-scored.csv\""));
    assert_eq!(export.body.lines().count(), 4, "{}", export.body);
}
