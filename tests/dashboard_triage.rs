//! Triage in a real headless Chromium: the real `bfp-agent run` forwards a
//! real auth log whose events happened weeks before ingest into the real
//! `bfp-collector` (each backend); the results page lists them at their
//! event time, newest first, with user, address, kind and reason; filtering
//! by a user and by an address shows exactly the matching rows, checked
//! against the agent's own `scan` of the same file; a source's detail shows
//! the user names it tried; the daily chart puts the events on their days.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use bfp_e2e::agent::{agent, consumed, json_lines, real_log, wait_until, RunningAgent};
use bfp_e2e::browser::{screenshots_dir, Browser};
use bfp_e2e::forward::{
    agent_config, agent_rows, device_add, format_unix, key_of_row, key_of_scan, multiset, utc_now, wait_drained,
};
use bfp_e2e::{self as support, Backend, Collector};
use serde_json::Value;

/// What the results table shows: (id, event time, user, address, kind cell,
/// top reason), in page order.
async fn shown_rows(b: &Browser) -> Vec<(u64, String, String, String, String, String)> {
    let script = "return [...document.querySelectorAll('#results-table tbody tr[data-id]')].map(r => [
        Number(r.dataset.id), r.querySelector('td.time').textContent, r.querySelector('td.user').textContent,
        r.querySelector('td.addr').textContent, r.querySelector('td.kind').textContent,
        r.querySelector('td.reason').textContent]);";
    let rows = b.js(script, vec![]).await;
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().unwrap().to_string();
            (r[0].as_u64().unwrap(), s(1), s(2), s(3), s(4), s(5))
        })
        .collect()
}

/// Every stored row matching `filter`, newest first, through the cursor.
fn api_newest(c: &Collector, filter: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = c.get(&format!("/api/results?order=newest&limit=1000{filter}{cursor}")).json();
        let results = page["results"].as_array().unwrap_or_else(|| panic!("{page}")).clone();
        rows.extend(results);
        match page["next_before_id"].as_i64() {
            Some(id) => cursor = format!("&before_id={id}"),
            None => return rows,
        }
    }
}

/// Applies the results page's filters (after clearing them) and waits for
/// the count the API gives for the same filter.
async fn filter(b: &Browser, field: &str, value: &str, want: usize, total: usize) {
    b.click("#results-filters button[type=reset]").await;
    b.wait_text("#results-status", "every row again", |t| t.ends_with(&format!(" of {total} predictions."))).await;
    b.select("#r-limit", "100").await;
    b.fill(field, value).await;
    b.click("#results-filters button[type=submit]").await;
    b.wait_text("#results-status", "the filtered rows", |t| t.ends_with(&format!(" of {want} predictions."))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_of_a_real_log_by_event_time_user_and_address() {
    let source = real_log("elastic/auth.log");
    // The agent's own account of the file: what each row must match.
    let scan = json_lines(&agent(&["scan", "--format", "jsonl", source.to_str().unwrap()]).stdout);
    let scanned: Vec<&Value> = scan.iter().filter(|o| o["kind"] != "summary").collect();
    let b = Browser::start().await;
    for backend in Backend::ALL {
        let store = backend.fresh();
        let dir = store.path();
        let token = device_add(store.db(), "pi-triage");
        let c = Collector::start(store.db(), &[]);
        support::add_operator(store.db(), "triage-admin", "admin");
        let log = dir.join("auth.log");
        let state = dir.join("state");
        let config = agent_config(dir, &c.url(""), &token, &log, &state, 16 << 20);
        fs::write(&log, fs::read(&source).unwrap()).unwrap();
        let running = RunningAgent::start(&["--config", config.to_str().unwrap()], None);
        wait_until(60, "the whole log", || consumed(&state, &log));
        wait_drained(&c, "pi-triage", 60);
        running.stop();
        let ingest_day = utc_now()[..10].to_string();

        // Every stored row happened weeks before it was stored, at the time
        // the agent's scan gives it, and is one scan reports.
        let rows = agent_rows(&c.url(""));
        let scan_keys = multiset(scanned.iter().map(|o| key_of_scan(o, false)));
        assert!(rows.len() > 300, "{backend:?}: {} rows", rows.len());
        for r in &rows {
            assert!(scan_keys.contains_key(&key_of_row(r, false)), "{backend:?}: a row scan does not report: {r}");
            assert_eq!(r["event_at"], r["started_at"], "{backend:?}: {r}");
            assert!(r["event_at"].as_str().unwrap() < "2026-05-01", "{backend:?}: {r}");
            assert!(r["created_at"].as_str().unwrap() >= ingest_day.as_str(), "{backend:?}: {r}");
        }
        // A user with many sessions and an address with sessions and source
        // windows, both chosen from the scan.
        let count_by = |field: &str| -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            for o in &scanned {
                if let Some(v) = o[field].as_str() {
                    *m.entry(v.to_string()).or_default() += 1;
                }
            }
            m
        };
        let user = count_by("user").into_iter().filter(|(_, n)| *n <= 90).max_by_key(|(_, n)| *n).unwrap().0;
        let address = count_by("source_ip")
            .into_iter()
            .filter(|(ip, n)| {
                *n <= 90 && scanned.iter().any(|o| o["source_ip"] == ip.as_str() && o["kind"] == "source")
            })
            .max_by_key(|(_, n)| *n)
            .unwrap()
            .0;

        let base = c.url("");
        b.log_in(&base, "triage-admin", &support::password_of("triage-admin")).await;
        b.goto(&format!("{base}/#/results")).await;
        b.wait_visible("#results-filters").await;
        b.select("#r-limit", "25").await;
        b.click("#results-filters button[type=submit]").await;
        let total = rows.len();
        b.wait_text("#results-status", "the first page", |t| t == format!("Showing 1–25 of {total} predictions."))
            .await;

        // Newest event first, as the API orders them; each row with its
        // event time, user, address, kind and top reason.
        let newest = api_newest(&c, "");
        let page = shown_rows(&b).await;
        assert_eq!(page.len(), 25);
        for (shown, api) in page.iter().zip(&newest) {
            assert_eq!(shown.0, api["id"].as_u64().unwrap(), "{backend:?}");
            assert_eq!(shown.1, api["event_at"].as_str().unwrap());
            assert_eq!(shown.2, api["user"].as_str().unwrap_or(""));
            assert_eq!(shown.3, api["source_ip"].as_str().unwrap_or(""));
            assert!(!shown.4.is_empty() && !shown.5.is_empty(), "{shown:?}");
            assert_eq!(shown.5, api["reasons"][0].as_str().unwrap());
        }
        let times: Vec<&str> = page.iter().map(|r| r.1.as_str()).collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{backend:?}: not newest first: {times:?}");
        let latest = rows.iter().map(|r| r["event_at"].as_str().unwrap()).max().unwrap();
        assert_eq!(times[0], latest, "{backend:?}");
        // The next page continues the order (the cursor).
        b.click("#results-next").await;
        b.wait_text("#results-status", "the second page", |t| t.starts_with("Showing 26–50")).await;
        let second: Vec<u64> = shown_rows(&b).await.iter().map(|r| r.0).collect();
        let want: Vec<u64> = newest[25..50].iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(second, want, "{backend:?}");

        // Filter by user: exactly the scan's closed sessions of that user.
        let want_user: BTreeMap<String, usize> = multiset(
            scanned.iter().filter(|o| o["user"] == user.as_str() && o["open"] == false).map(|o| key_of_scan(o, false)),
        );
        let n: usize = want_user.values().sum();
        filter(&b, "#r-user", &user, n, total).await;
        let shown = shown_rows(&b).await;
        let by_id: BTreeMap<u64, &Value> = rows.iter().map(|r| (r["id"].as_u64().unwrap(), r)).collect();
        let got = multiset(shown.iter().map(|r| key_of_row(by_id[&r.0], false)));
        assert_eq!(got, want_user, "{backend:?}: the rows of user {user}");
        assert!(shown.iter().all(|r| r.2 == user), "{backend:?}: {shown:?}");
        b.screenshot(&screenshots_dir(), "triage-user").await;

        // Filter by address: the scan's closed sessions from it exactly, and
        // its source windows, each one scan reports (a window still open at
        // the end of the file is reported by scan only).
        let from_address: Vec<&&Value> =
            scanned.iter().filter(|o| o["source_ip"] == address.as_str() && o["open"] == false).collect();
        let stored_here: Vec<&Value> = rows.iter().filter(|r| r["source_ip"] == address.as_str()).collect();
        filter(&b, "#r-ip", &address, stored_here.len(), total).await;
        let shown = shown_rows(&b).await;
        assert!(shown.iter().all(|r| r.3 == address), "{backend:?}: {shown:?}");
        let got = multiset(shown.iter().map(|r| key_of_row(by_id[&r.0], false)));
        let sessions = |m: &BTreeMap<String, usize>| -> BTreeMap<String, usize> {
            m.iter().filter(|(k, _)| k.starts_with("\"session\"")).map(|(k, v)| (k.clone(), *v)).collect()
        };
        let want_address = multiset(from_address.iter().map(|o| key_of_scan(o, false)));
        assert_eq!(sessions(&got), sessions(&want_address), "{backend:?}: sessions from {address}");
        assert!(got.keys().all(|k| want_address.contains_key(k)), "{backend:?}: {got:?} vs {want_address:?}");
        assert!(shown.iter().any(|r| r.4 == "source address"), "{backend:?}: no source window of {address}");

        // A source window's detail: the user names the address tried, as the
        // agent found them.
        let window = shown.iter().find(|r| r.4 == "source address").unwrap();
        let scan_window = from_address
            .iter()
            .find(|o| o["kind"] == "source" && format_unix(o["start"].as_i64().unwrap()) == window.1)
            .expect("the window in the scan");
        let tried: Vec<&str> =
            scan_window["details"]["users_sample"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
        assert!(!tried.is_empty());
        b.click(&format!("#results-table tbody tr[data-id='{}'] button.details", window.0)).await;
        b.wait_visible("#detail[open]").await;
        let detail = b.text("#detail-body").await;
        assert!(detail.contains("User names tried"), "{detail}");
        for name in &tried {
            assert!(detail.contains(name), "{backend:?}: {name} missing from {detail:?}");
        }
        assert!(detail.contains(log.to_str().unwrap()), "the log file in {detail:?}");
        b.screenshot(&screenshots_dir(), "triage-detail").await;
        // Related records one click away: everything from the address.
        b.click("#detail-body a.related").await;
        b.wait_text("#results-status", "the address's rows", |t| {
            t.ends_with(&format!(" of {} predictions.", stored_here.len()))
        })
        .await;
        assert_eq!(b.find("#r-ip").await.prop("value").await.unwrap().as_deref(), Some(address.as_str()));

        // The daily chart puts every event on its own day: its data table
        // equals the stored rows counted by event day, and nothing is on the
        // day of ingest.
        b.goto(&format!("{base}/#/analytics")).await;
        b.click(".segmented button[data-bucket=day]").await;
        b.wait_text("#table-time", "the daily counts", |t| t.contains("2026-03-")).await;
        let table = b
            .js(
                "return [...document.querySelectorAll('#table-time tbody tr')].map(r =>
                   [...r.querySelectorAll('td')].map(td => td.textContent));",
                vec![],
            )
            .await;
        let mut charted = BTreeMap::new();
        for r in table.as_array().unwrap() {
            let n = |i: usize| r[i].as_str().unwrap().replace(',', "").parse::<usize>().unwrap();
            if n(1) + n(2) > 0 {
                charted.insert(r[0].as_str().unwrap().to_string(), n(1) + n(2));
            }
        }
        let mut by_day = BTreeMap::new();
        for r in &rows {
            *by_day.entry(r["event_at"].as_str().unwrap()[..10].to_string()).or_insert(0usize) += 1;
        }
        assert_eq!(charted, by_day, "{backend:?}");
        assert!(!charted.contains_key(&ingest_day));
        let scan_days: BTreeSet<String> =
            scanned.iter().map(|o| format_unix(o["start"].as_i64().unwrap())[..10].to_string()).collect();
        assert!(charted.keys().all(|d| scan_days.contains(d)), "{backend:?}: {charted:?}");
        b.screenshot(&screenshots_dir(), "triage-chart").await;
        c.stop();
    }
    b.close().await;
}
