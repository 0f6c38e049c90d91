//! The console's login against the real collector: in headless Chromium
//! (log in, the pages and buttons of the role, log out and the old cookie
//! is nobody's, five wrong passwords lock the account for 15 minutes), and
//! over plain HTTP the browser-borne attacks it refuses (a cookie request
//! without its CSRF token, a `text/plain` POST from a foreign origin, a
//! foreign `Host`, no credential from loopback on a non-legacy route).

use bfp_e2e::browser::Browser;
use bfp_e2e::{self as support, add_operator, password_of, send, Backend, Collector, Reply};
use serde_json::json;

/// The documented lock-out: five wrong passwords, 15 minutes.
const LOCK_AFTER: usize = 5;
const LOCK_SECS: i64 = 15 * 60;

/// `POST /api/login` as `user` with `password`.
fn login(c: &Collector, user: &str, password: &str) -> Reply {
    let body = json!({"user": user, "password": password}).to_string();
    send("POST", &c.url("/api/login"), &[("Content-Type", "application/json")], Some(body.as_bytes()))
}

/// The session cookie (`bfp_session=...`) a login reply sets.
fn session_cookie(r: &Reply) -> String {
    let set = r.header("set-cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_string()
}

async fn nav_pages(b: &Browser) -> Vec<String> {
    let pages = b
        .js("return [...document.querySelectorAll('nav a[data-page]')].filter(a => a.getClientRects().length > 0).map(a => a.dataset.page);", vec![])
        .await;
    pages.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_log_in_see_their_roles_pages_log_out_and_lock_after_five_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    for (name, role) in [("vera", "viewer"), ("ana", "analyst"), ("root", "admin")] {
        add_operator(&db, name, role);
    }
    let c = Collector::start(&db, &[]);
    let base = c.url("");
    let example = json!({"login_time":"03:00","session_duration":5,"commands":["ls","sudo","chmod"],"failed_logins":4,"protocol":"TOR","typing_speed":120});
    assert_eq!(support::post_json(&c.url("/api/predict"), &example).status, 200);
    let b = Browser::start().await;

    // Not logged in: the login page, and nothing else.
    b.goto(&format!("{base}/#/results")).await;
    b.wait_visible("#login-form").await;
    assert!(!b.visible("#page-results").await && !b.visible("nav").await);

    // A viewer: results, analytics, devices, alerts; no scan, batch or audit;
    // a result's detail without the label buttons.
    b.log_in(&base, "vera", &password_of("vera")).await;
    assert_eq!(b.text("#whoami-role").await, "viewer");
    b.wait_visible("#page-analytics").await;
    assert_eq!(nav_pages(&b).await, ["analytics", "results", "devices", "alerts"]);
    b.goto(&format!("{base}/#/scan")).await;
    b.wait_visible("#page-analytics").await;
    b.goto(&format!("{base}/#/results")).await;
    b.wait_visible("#results-table tbody tr[data-id] button.details").await;
    b.click("#results-table tbody tr[data-id] button.details").await;
    b.wait_visible("#detail[open]").await;
    assert_eq!(b.text("#detail-label").await, "Not labelled by an analyst.");
    assert!(!b.visible("#detail-fp").await && !b.visible("#detail-confirm").await, "a viewer sees label buttons");
    b.click("#detail button[value=close]").await;

    // Log out: back to the login page, and the old cookie is nobody's.
    let cookie = b.client.get_named_cookie("bfp_session").await.expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    let old = format!("bfp_session={}", cookie.value());
    assert_eq!(send("GET", &c.url("/api/session"), &[("Cookie", &old)], None).status, 200);
    b.goto(&format!("{base}/#/analytics")).await;
    b.wait_visible("#logout").await;
    b.click("#logout").await;
    b.wait_visible("#login-form").await;
    assert!(!b.visible("#whoami").await);
    let after = send("GET", &c.url("/api/session"), &[("Cookie", &old)], None);
    assert_eq!(after.status, 401, "{}", after.body);
    assert_eq!(send("GET", &c.url("/api/insights"), &[("Cookie", &old)], None).status, 401);

    // An administrator: every page, the audit trail with the logins.
    b.log_in(&base, "root", &password_of("root")).await;
    assert_eq!(nav_pages(&b).await, ["scan", "batch", "analytics", "results", "devices", "alerts", "audit"]);
    b.goto(&format!("{base}/#/audit")).await;
    b.wait_text("#audit-table tbody", "the viewer's logout", |t| t.contains("logout")).await;
    let trail = b.text("#audit-table tbody").await;
    assert!(trail.contains("vera") && trail.contains("login.ok") && trail.contains("root"), "{trail}");
    b.click("#logout").await;
    b.wait_visible("#login-form").await;

    // Five wrong passwords lock the account: the right one is refused too,
    // with the documented time.
    for attempt in 1..=LOCK_AFTER {
        b.fill("#login-user", "ana").await;
        b.fill("#login-password", &format!("wrong guess {attempt}")).await;
        b.click("#login-submit").await;
        b.wait_text("#login-error", "the refusal", |t| t.contains("wrong user name or password")).await;
        b.js("document.getElementById('login-error').textContent = '';", vec![]).await;
    }
    b.fill("#login-user", "ana").await;
    b.fill("#login-password", &password_of("ana")).await;
    b.click("#login-submit").await;
    let shown = b.wait_text("#login-error", "the lock", |t| t.contains("Locked")).await;
    assert!(shown.contains("15 minutes"), "{shown}");
    assert!(!b.visible("#whoami").await);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (until, now): (i64, i64) = conn
        .query_row(
            "SELECT locked_until, CAST(strftime('%s', 'now') AS INTEGER) FROM login_lockouts WHERE user_name = 'ana'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!((until - now - LOCK_SECS).abs() <= 30, "locked for {} s", until - now);
    // Once the lock has run out (aged in the file), the right password works.
    conn.execute("UPDATE login_lockouts SET locked_until = locked_until - ?1", [LOCK_SECS]).unwrap();
    b.log_in(&base, "ana", &password_of("ana")).await;
    assert_eq!(b.text("#whoami-role").await, "analyst");
    b.close().await;

    let trail = c.get("/api/audit?limit=100").json();
    let failures = trail["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "login.failed").count();
    assert_eq!(failures, LOCK_AFTER);
    c.stop();
}

#[test]
fn cookie_requests_need_their_csrf_token_and_browser_borne_requests_are_refused() {
    for backend in Backend::ALL {
        cookie_requests_need_their_csrf_token_and_browser_borne_requests_are_refused_on(backend);
    }
}

fn cookie_requests_need_their_csrf_token_and_browser_borne_requests_are_refused_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();
    add_operator(&db, "ana", "analyst");
    let c = Collector::start(&db, &[]);
    let example = json!({"login_time":"03:00","session_duration":5,"commands":["ls"],"failed_logins":4,"protocol":"TOR","typing_speed":120});
    let id = support::post_json(&c.url("/api/predict"), &example).json()["id"].as_i64().unwrap();

    let r = login(&c, "ana", &password_of("ana"));
    assert_eq!(r.status, 200, "{}", r.body);
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"), "{set}");
    let cookie = session_cookie(&r);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let label = json!({"label": "true_positive"}).to_string();
    let url = c.url(&format!("/api/results/{id}/feedback"));
    let json_ct = ("Content-Type", "application/json");

    // With the cookie and no (or a wrong) CSRF token: refused, nothing stored.
    let r = send("POST", &url, &[("Cookie", &cookie), json_ct], Some(label.as_bytes()));
    assert_eq!((r.status, r.json()["error"].as_str()), (403, Some("Forbidden")), "{}", r.body);
    let r = send("POST", &url, &[("Cookie", &cookie), json_ct, ("X-CSRF-Token", "f00d")], Some(label.as_bytes()));
    assert_eq!(r.status, 403);
    let labelled = send("GET", &c.url("/api/results?labelled=true"), &[("Cookie", &cookie)], None).json();
    assert_eq!(labelled["count"], 0);
    // With it: stored, under the analyst's name.
    let r = send("POST", &url, &[("Cookie", &cookie), json_ct, ("X-CSRF-Token", &csrf)], Some(label.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.body);
    let trail = c.get("/api/audit").json();
    assert!(
        trail["entries"].as_array().unwrap().iter().any(|e| e["actor"] == "ana" && e["action"] == "feedback.set"),
        "{trail}"
    );

    // A foreign page's form-like POST (text/plain, foreign Origin), with and
    // without the cookie: refused before any device exists.
    let forged = br#"{"name": "planted"}"#;
    for headers in [
        vec![("Content-Type", "text/plain"), ("Origin", "http://evil.example")],
        vec![("Content-Type", "text/plain"), ("Origin", "http://evil.example"), ("Cookie", cookie.as_str())],
        vec![
            ("Content-Type", "text/plain"),
            ("Origin", "http://evil.example"),
            ("Cookie", &cookie),
            ("X-CSRF-Token", &csrf),
        ],
    ] {
        let r = send("POST", &c.url("/api/devices"), &headers, Some(forged));
        assert!(matches!(r.status, 400 | 401 | 403), "{headers:?}: {} {}", r.status, r.body);
    }
    let admin = format!("Bearer {}", c.admin_token());
    let r = send(
        "POST",
        &c.url("/api/devices"),
        &[("Authorization", &admin), ("Content-Type", "text/plain"), ("Origin", "http://evil.example")],
        Some(forged),
    );
    assert_eq!(r.status, 403, "even an administrator's token from a foreign origin: {}", r.body);
    let r = send(
        "POST",
        &c.url("/api/devices"),
        &[("Authorization", &admin), ("Content-Type", "text/plain")],
        Some(forged),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["detail"].as_str().unwrap().contains("application/json"), "{}", r.body);
    assert_eq!(c.get("/api/devices").json()["count"], 0, "a device was planted");

    // DNS rebinding: a foreign name in Host is refused on every path.
    for path in ["/api/results", "/", "/health", "/api/nothing"] {
        let r = send("GET", &c.url(path), &[("Host", "evil.example")], None);
        assert_eq!((r.status, r.json()["error"].as_str()), (421, Some("Misdirected request")), "{path}: {}", r.body);
    }
    let port = c.addr.port().to_string();
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(send("GET", &c.url("/health"), &[("Host", &host)], None).status, 200, "{host}");
    }

    // Loopback is no identity: without a credential, only the original routes answer.
    for path in ["/api/insights", "/api/export.csv", "/api/devices", "/api/alerts", "/api/export/labelled.csv"] {
        let r = support::get(&c.url(path));
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = support::post_json(&c.url("/api/devices"), &json!({"name": "from-loopback"}));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(support::get(&c.url("/api/results")).status, 200);

    // Logged out, the cookie is refused even with its CSRF token.
    let r = send("POST", &c.url("/api/logout"), &[("Cookie", &cookie), ("X-CSRF-Token", &csrf), json_ct], Some(b"{}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send("POST", &url, &[("Cookie", &cookie), json_ct, ("X-CSRF-Token", &csrf)], Some(label.as_bytes()));
    assert_eq!(r.status, 401);
    c.stop();
}
