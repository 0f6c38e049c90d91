//! Alerts in SQLite: the `alerts` table and the evaluation cursor. A pass
//! runs on the writer's connection between group commits, takes the results
//! stored after the cursor (at most `max_rows_per_pass`), and writes the
//! alerts and the new cursor in one transaction, so a crash re-evaluates a
//! pass whole or not at all. The results come from the writer itself, in
//! memory, as it committed them ([`AlertTail`]); only what it does not hold
//! (after a start, a CSV upload, another process's writes) is read back
//! from the database.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::alerts::AlertConfig;
use crate::error::{Error, Result};
use crate::store::alerts::{Alert, AlertQuery, AlertState, EvaluationPass};

/// A group's latest alert, as the writer keeps it between passes.
#[derive(Debug, Clone, Copy)]
struct Group {
    id: i64,
    last_seen: i64,
    resolved_at: Option<i64>,
    /// Its stored count, the count last told to destinations, and
    /// whether it is resolved.
    count: i64,
    told: i64,
    resolved: bool,
    /// Matches this pass added, not yet written.
    added: i64,
    /// The last of them.
    last_id: i64,
}

/// Most groups the writer remembers (about 100 bytes each, so a few MB at
/// most); past it the memory starts over (the database is the truth, the
/// memory only saves a lookup per group and pass).
const CACHE_GROUPS: usize = 20_000;

/// What the writer remembers of the alerts between passes, so a pass does
/// not look up each group's latest alert again: per rule, per group key,
/// that alert. Only the writer's connection writes alerts in this process;
/// a state change made through it ([`transition`]) clears the cache, and
/// one made by another process (the `alerts` command) shows as a new
/// `PRAGMA data_version`, which clears it too. A pass that fails leaves it
/// empty.
#[derive(Default)]
pub(super) struct AlertCache {
    data_version: i64,
    /// The rule names it was built for (index = rule's place in the config).
    rules: Vec<String>,
    groups: Vec<HashMap<String, Group>>,
    len: usize,
}

impl AlertCache {
    /// Empties it.
    pub(super) fn clear(&mut self) {
        *self = AlertCache::default();
    }

    /// Makes it fit `config` and the database at `version` (its `PRAGMA
    /// data_version` now).
    fn validate(&mut self, version: i64, config: &AlertConfig) {
        let same_rules =
            self.rules.len() == config.rules.len() && self.rules.iter().zip(&config.rules).all(|(a, b)| *a == b.name);
        if version != self.data_version || !same_rules || self.len > CACHE_GROUPS {
            *self = AlertCache {
                data_version: version,
                rules: config.rules.iter().map(|r| r.name.clone()).collect(),
                groups: config.rules.iter().map(|_| HashMap::new()).collect(),
                len: 0,
            };
        }
    }
}

/// The rows the writer committed, handed to the evaluation in memory after
/// each commit, so a pass need not read back what was just written. It
/// holds every row this process committed from `from` on (less those
/// evaluated), in id order; the database read stays for what it does not
/// hold: rows from before it began (a start, a restart), CSV uploads
/// (which do not feed it), rows past its size limit, and anything another
/// process wrote or changed (seen as a new `PRAGMA data_version`, which
/// empties it). Only the writer thread touches it: it feeds it after its
/// commits and evaluates from it in [`evaluate_from_memory`].
#[derive(Default)]
pub(super) struct AlertTail {
    /// Fed at all: the first pass with rules turns it on (without rules
    /// nothing is kept).
    enabled: bool,
    /// Reasons are kept (some rule reads them).
    reasons: bool,
    /// Most rows held; past it the tail starts over and passes read the
    /// gap back from the database.
    limit: usize,
    /// `PRAGMA data_version` when last checked.
    data_version: i64,
    /// The id from which on every committed row is held or evaluated;
    /// `None` until the first commit after it (re)started.
    from: Option<i64>,
    /// The rows, ids contiguous and ascending.
    rows: Vec<crate::alerts::AlertRow>,
    /// The last id fed.
    last: i64,
}

impl AlertTail {
    /// Hands over row `id`, committed at `seen` (seconds since the epoch).
    /// A row that does not follow the last one (another process wrote in
    /// between) starts the tail over from it.
    pub(super) fn feed(&mut self, id: i64, seen: i64, p: crate::store::NewPrediction) {
        if !self.enabled {
            return;
        }
        if self.from.is_none() || id != self.last + 1 || self.rows.len() >= self.limit {
            self.rows.clear();
            self.from = Some(id);
        }
        self.rows.push(crate::alerts::AlertRow::from_new(id, seen, p, self.reasons));
        self.last = id;
    }

    /// Rows were committed that the tail does not hold (a CSV upload): it
    /// starts over at the next commit.
    pub(super) fn interrupt(&mut self) {
        self.rows = Vec::new();
        self.from = None;
    }

    /// Drops the rows up to `cursor` (evaluated).
    fn evaluated(&mut self, cursor: i64) {
        let n = self.rows.partition_point(|r| r.id <= cursor);
        self.rows.drain(..n);
    }
}

/// The results a pass reads back from the database: those stored after the
/// cursor (at most `max_rows_per_pass`), read on a read connection so the
/// writer does not spend its time decoding them.
pub(super) struct Page {
    /// The cursor the page was read after.
    cursor: i64,
    /// The results, in id order.
    rows: Vec<crate::alerts::AlertRow>,
}

/// The columns rules look at (no commands, model, event time or labels).
const PAGE_SQL: &str = "SELECT id, created_at, prediction, confidence, login_hour, session_duration,
    commands_count, failed_logins, protocol, typing_speed, risky_commands, reasons, device, kind, source_ip, user
    FROM predictions WHERE id > ?1 ORDER BY id LIMIT ?2";

pub(super) fn read_page(c: &Connection, config: &AlertConfig) -> Result<Page> {
    if config.rules.is_empty() {
        return Ok(Page { cursor: 0, rows: Vec::new() });
    }
    let tx = c.unchecked_transaction()?;
    let cursor = cursor_of(&tx)?;
    let reasons = config.reads_reasons();
    let mut stmt = tx.prepare_cached(PAGE_SQL)?;
    let rows = stmt.query_map(params![cursor, config.max_rows_per_pass], |r| page_row(r, reasons))?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    drop(stmt);
    tx.finish()?;
    Ok(Page { cursor, rows })
}

/// One row of [`PAGE_SQL`]; its reasons are decoded only if `reasons`
/// (some rule matches on them).
fn page_row(r: &rusqlite::Row<'_>, reasons: bool) -> rusqlite::Result<crate::alerts::AlertRow> {
    use crate::store::Reason;
    let bad =
        |i: usize, what: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into());
    let text = |i: usize| r.get_ref(i).and_then(|v| v.as_str().map_err(rusqlite::Error::from));
    let fingerprint = bfp_common::Fingerprint {
        login_hour: r.get(4)?,
        session_duration_min: r.get::<_, f64>(5)? as f32,
        commands: r.get(6)?,
        failed_logins: r.get(7)?,
        protocol: bfp_common::Protocol::parse(text(8)?).map_err(|e| bad(8, e.to_string()))?,
        typing_speed_wpm: r.get::<_, Option<f64>>(9)?.map(|v| v as f32),
        risky_commands: r.get(10)?,
    };
    let reasons: Vec<Reason> =
        if reasons { serde_json::from_str(text(11)?).map_err(|e| bad(11, e.to_string()))? } else { Vec::new() };
    Ok(crate::alerts::AlertRow {
        id: r.get(0)?,
        seen: unix_seconds(text(1)?),
        suspicious: text(2)? == "Suspicious",
        confidence: r.get(3)?,
        kind: r.get(13)?,
        device: r.get(12)?,
        source_ip: r.get(14)?,
        user: r.get(15)?,
        reasons,
        fingerprint,
    })
}

fn cursor_of(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("SELECT last_result_id FROM alert_cursor WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn data_version(c: &Connection) -> Result<i64> {
    Ok(c.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?)
}

/// A pass over the rows the writer handed over ([`AlertTail`]), if it holds
/// every row after the cursor; `None` (nothing done) if not, and the pass
/// must read the rows back ([`read_page`], [`evaluate_page`]).
pub(super) fn evaluate_from_memory(
    conn: &mut Connection,
    config: &AlertConfig,
    cache: &Mutex<AlertCache>,
    tail: &Mutex<AlertTail>,
) -> Result<Option<EvaluationPass>> {
    if config.rules.is_empty() {
        return Ok(Some(EvaluationPass::default()));
    }
    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = data_version(&tx)?;
    if !tail.enabled || tail.data_version != version || tail.reasons != config.reads_reasons() {
        // From now on the writer hands its rows over; what it committed
        // before, or what another process changed, is read back.
        tail.interrupt();
        tail.enabled = true;
        tail.reasons = config.reads_reasons();
        tail.data_version = version;
    }
    tail.limit = (config.max_rows_per_pass as usize).saturating_mul(4);
    let cursor = cursor_of(&tx)?;
    tail.evaluated(cursor);
    if tail.from.is_none_or(|from| from > cursor + 1) {
        return Ok(None);
    }
    let n = tail.rows.len().min(config.max_rows_per_pass as usize);
    if n == 0 {
        return Ok(Some(EvaluationPass::default()));
    }
    let mut known = std::mem::take(&mut *cache.lock().unwrap_or_else(|e| e.into_inner()));
    known.validate(version, config);
    let pass = pass_over(&tx, config, &mut known, &tail.rows[..n])?;
    tx.commit()?;
    *cache.lock().unwrap_or_else(|e| e.into_inner()) = known;
    tail.rows.drain(..n);
    Ok(Some(pass))
}

/// Groups `page` (read back from the database) into alerts and moves the
/// cursor, in one transaction on the writer's connection. A page read
/// after another cursor than the one stored now (a pass ran in between) is
/// dropped: the next pass reads anew. `cache` is what the previous passes
/// left (see [`AlertCache`]).
pub(super) fn evaluate_page(
    conn: &mut Connection,
    config: &AlertConfig,
    page: Page,
    cache: &Mutex<AlertCache>,
) -> Result<EvaluationPass> {
    if page.rows.is_empty() {
        return Ok(EvaluationPass::default());
    }
    if cursor_of(conn)? != page.cursor {
        return Ok(EvaluationPass::default());
    }
    // Taken out while the pass runs: a pass that fails leaves it empty.
    let mut known = std::mem::take(&mut *cache.lock().unwrap_or_else(|e| e.into_inner()));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    known.validate(data_version(&tx)?, config);
    let mut pass = pass_over(&tx, config, &mut known, &page.rows)?;
    pass.caught_up = pass.results;
    tx.commit()?;
    *cache.lock().unwrap_or_else(|e| e.into_inner()) = known;
    Ok(pass)
}

/// Groups `rows` (ids ascending, all after the cursor) into alerts, writes
/// the outbox rows and moves the cursor to the last, inside `tx`.
fn pass_over(
    tx: &rusqlite::Transaction<'_>,
    config: &AlertConfig,
    known: &mut AlertCache,
    rows: &[crate::alerts::AlertRow],
) -> Result<EvaluationPass> {
    let mut pass = EvaluationPass::default();
    let Some(last) = rows.last().map(|r| r.id) else { return Ok(pass) };
    // Alerts this pass changed, with what the outbox needs to know of them.
    let mut touched: HashMap<i64, Touched> = HashMap::new();
    for result in rows {
        pass.results += 1;
        let seen = result.seen;
        for (i, rule) in config.rules.iter().enumerate() {
            if !rule.matches_row(result) {
                continue;
            }
            let key = rule.group_by.key_in(result);
            let groups = &mut known.groups[i];
            if !groups.contains_key(key) {
                // Cached statements: a pass runs these once per group it
                // has not seen before.
                let latest = tx
                    .prepare_cached(
                        "SELECT id, last_seen, resolved_unix, count, notified_count, state = 'resolved' FROM alerts
                         WHERE rule = ?1 AND group_key = ?2 ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row(params![rule.name, key], |r| {
                        Ok(Group {
                            id: r.get(0)?,
                            last_seen: r.get(1)?,
                            resolved_at: r.get(2)?,
                            count: r.get(3)?,
                            told: r.get(4)?,
                            resolved: r.get(5)?,
                            added: 0,
                            last_id: 0,
                        })
                    })
                    .optional()?;
                if let Some(g) = latest {
                    groups.insert(key.to_string(), g);
                    known.len += 1;
                }
            }
            let joins = groups.get(key).is_some_and(|g| match g.resolved_at {
                None => seen - g.last_seen <= rule.window_secs as i64,
                Some(resolved) => seen - resolved <= rule.cooldown_secs as i64,
            });
            if joins {
                let g = groups.get_mut(key).expect("checked above");
                g.added += 1;
                g.last_id = result.id;
                g.last_seen = g.last_seen.max(seen);
                pass.grouped += 1;
            } else {
                if let Some(g) = groups.get_mut(key) {
                    flush(tx, g, &mut touched)?;
                }
                tx.prepare_cached(
                    "INSERT INTO alerts (rule, group_key, count, first_result_id, last_result_id,
                         first_seen, last_seen, source_ip, user, device)
                     VALUES (?1, ?2, 1, ?3, ?3, ?4, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    rule.name,
                    key,
                    result.id,
                    seen,
                    result.source_ip,
                    result.user,
                    result.device
                ])?;
                let id = tx.last_insert_rowid();
                touched.insert(id, Touched { opened: true, count: 1, told: 0, resolved: false });
                let fresh = Group {
                    id,
                    last_seen: seen,
                    resolved_at: None,
                    count: 1,
                    told: 0,
                    resolved: false,
                    added: 0,
                    last_id: 0,
                };
                match groups.get_mut(key) {
                    Some(g) => *g = fresh,
                    None => {
                        groups.insert(key.to_string(), fresh);
                        known.len += 1;
                    }
                }
                pass.opened += 1;
            }
        }
    }
    for groups in &mut known.groups {
        for g in groups.values_mut() {
            flush(tx, g, &mut touched)?;
        }
    }
    let mut told: Vec<(i64, Touched)> = touched.iter().map(|(id, t)| (*id, *t)).collect();
    told.sort_unstable();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    pass.notifications = super::outbox::enqueue(tx, &told, &config.notify, now)?;
    // Remember what the outbox now holds as told.
    for groups in &mut known.groups {
        for g in groups.values_mut() {
            if let Some(t) = touched.get(&g.id) {
                g.told = super::outbox::told_after(*t);
            }
        }
    }
    tx.prepare_cached(
        "INSERT INTO alert_cursor (id, last_result_id) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET last_result_id = excluded.last_result_id",
    )?
    .execute([last])?;
    Ok(pass)
}

/// What a pass did to one alert, as the outbox needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Touched {
    /// The pass opened it.
    pub opened: bool,
    /// Its count after the pass.
    pub count: i64,
    /// The count last told to destinations.
    pub told: i64,
    /// It is resolved.
    pub resolved: bool,
}

/// Writes what a pass added to an alert (if anything), notes it in
/// `touched`, and starts the group's count for this pass over. The count,
/// the count told and the state come from the group's memory, which holds
/// the stored values (see [`AlertCache`]): no `RETURNING`, which costs
/// SQLite a temporary table per statement.
fn flush(tx: &Connection, g: &mut Group, touched: &mut HashMap<i64, Touched>) -> Result<()> {
    if g.added == 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE alerts SET count = count + ?2, last_result_id = MAX(last_result_id, ?3),
             last_seen = MAX(last_seen, ?4) WHERE id = ?1",
    )?
    .execute(params![g.id, g.added, g.last_id, g.last_seen])?;
    g.count += g.added;
    g.added = 0;
    let (count, told, resolved) = (g.count, g.told, g.resolved);
    touched.entry(g.id).and_modify(|t| t.count = count).or_insert(Touched { opened: false, count, told, resolved });
    Ok(())
}

/// Seconds since the epoch of a stored `YYYY-MM-DD HH:MM:SS` (UTC); 0 if it
/// does not parse (then every match of the pass shares one time).
pub(super) fn unix_seconds(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<i64>().ok());
    let (Some(y), Some(m), Some(d), Some(hh), Some(mm), Some(ss)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
    else {
        return 0;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

const ALERT_COLUMNS: &str = "id, rule, group_key, state, count, first_result_id, last_result_id,
    datetime(first_seen, 'unixepoch'), datetime(last_seen, 'unixepoch'), source_ip, user, device,
    acknowledged_by, acknowledged_at, resolved_by, resolved_at";

fn alert_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let state: String = r.get(3)?;
    Ok(Alert {
        id: r.get(0)?,
        rule: r.get(1)?,
        group_key: r.get(2)?,
        state: AlertState::parse(&state).unwrap_or(AlertState::Open),
        count: r.get::<_, i64>(4)?.max(0) as u64,
        first_result_id: r.get(5)?,
        last_result_id: r.get(6)?,
        first_seen: r.get(7)?,
        last_seen: r.get(8)?,
        source_ip: r.get(9)?,
        user: r.get(10)?,
        device: r.get(11)?,
        acknowledged_by: r.get(12)?,
        acknowledged_at: r.get(13)?,
        resolved_by: r.get(14)?,
        resolved_at: r.get(15)?,
    })
}

pub(super) fn list(c: &Connection, q: &AlertQuery) -> Result<Vec<Alert>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR rule = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![q.state.map(AlertState::as_str), q.rule, q.before_id, q.limit], alert_of)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn get(c: &Connection, id: i64) -> Result<Alert> {
    c.prepare_cached(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"))?
        .query_row([id], alert_of)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no alert with id {id}")))
}

/// Moves alert `id` to `to` on behalf of `by`: open to acknowledged, open or
/// acknowledged to resolved. Repeating the same move changes nothing.
pub(super) fn transition(conn: &mut Connection, id: i64, to: AlertState, by: &str) -> Result<Alert> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = get(&tx, id)?;
    match (now.state, to) {
        (a, b) if a == b => {}
        (AlertState::Open, AlertState::Acknowledged) => {
            tx.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?2, acknowledged_at = datetime('now')
                 WHERE id = ?1",
                params![id, by],
            )?;
        }
        (_, AlertState::Resolved) => {
            tx.execute(
                "UPDATE alerts SET state = 'resolved', resolved_by = ?2, resolved_at = datetime('now'),
                     resolved_unix = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = ?1",
                params![id, by],
            )?;
        }
        (from, to) => {
            return Err(Error::Conflict(format!("alert {id} is {}; it cannot become {}", from.as_str(), to.as_str())))
        }
    }
    let alert = get(&tx, id)?;
    tx.commit()?;
    Ok(alert)
}

/// Alerts per (rule, state), for `/metrics`.
pub(super) fn counts(c: &Connection) -> Result<Vec<(String, String, u64)>> {
    let mut stmt = c.prepare_cached("SELECT rule, state, COUNT(*) FROM alerts GROUP BY rule, state ORDER BY 1, 2")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alerts::CollectorConfig;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::store::{AgentContext, NewPrediction, Reason, Source, Store};
    use crate::store::{Alerts as _, Predictions as _};

    fn attempt(ip: &str, suspicious: bool) -> NewPrediction {
        NewPrediction {
            source: Source::Agent,
            fingerprint: bfp_common::Fingerprint {
                login_hour: 3,
                session_duration_min: 0.0,
                commands: 0,
                failed_logins: 6,
                protocol: bfp_common::Protocol::Ssh,
                typing_speed_wpm: None,
                risky_commands: None,
            },
            suspicious,
            confidence: 0.95,
            commands: None,
            model_version: Arc::from("m1"),
            reasons: vec![Reason::Text("6 failed logins from this address".into())],
            device: Some("pi-1".into()),
            agent: AgentContext {
                kind: Some("session".into()),
                source_ip: Some(ip.into()),
                user: Some("root".into()),
                ..AgentContext::default()
            },
        }
    }

    fn rules(extra: &str) -> Arc<AlertConfig> {
        let text = format!(
            "[alert]\nmax_rows_per_pass = 3000\n[[alert.rule]]\nname = \"brute\"\nreason = \"failed logins\"\n{extra}"
        );
        Arc::new(CollectorConfig::parse(&text).unwrap().alert)
    }

    async fn drain(store: &dyn Store, config: &Arc<AlertConfig>) -> EvaluationPass {
        let mut total = EvaluationPass::default();
        loop {
            let pass = store.evaluate_alerts(config.clone()).await.unwrap();
            total.results += pass.results;
            total.opened += pass.opened;
            total.grouped += pass.grouped;
            total.caught_up += pass.caught_up;
            if pass.results == 0 {
                return total;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_brute_force_of_20000_attempts_is_one_alert_per_source_and_survives_reopening() {
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, fresh.store.clone());
            let mut rows: Vec<NewPrediction> = (0..20_000).map(|_| attempt("203.0.113.7", true)).collect();
            rows.extend((0..30).map(|_| attempt("198.51.100.2", true)));
            rows.extend((0..500).map(|_| attempt("192.0.2.1", false)));
            for chunk in rows.chunks(4096) {
                store.insert(chunk.to_vec()).await.unwrap();
            }
            let config = rules("");
            // Several passes (3000 rows each) still group into one alert.
            let pass = drain(&*store, &config).await;
            assert_eq!((pass.results, pass.opened, pass.grouped), (20_530, 2, 20_028), "{name}");
            let alerts = store.alerts(AlertQuery { limit: 10, ..AlertQuery::default() }).await.unwrap();
            let summary: Vec<_> = alerts.iter().map(|a| (a.group_key.as_str(), a.count, a.state)).collect();
            assert_eq!(
                summary,
                [("198.51.100.2", 30, AlertState::Open), ("203.0.113.7", 20_000, AlertState::Open)],
                "{name}"
            );
            assert_eq!((alerts[1].first_result_id, alerts[1].last_result_id), (1, 20_000), "{name}");
            assert_eq!(alerts[1].user.as_deref(), Some("root"), "{name}");

            // The cursor is durable: a reopened store evaluates nothing twice.
            store.shutdown().await;
            drop(store);
            let store = fresh.reopen().await;
            assert_eq!(drain(&*store, &config).await, EvaluationPass::default(), "{name}");
            store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
            assert_eq!(
                drain(&*store, &config).await,
                EvaluationPass {
                    results: 1,
                    opened: 0,
                    grouped: 1,
                    notifications: 0,
                    // Handed over by SQLite's writer; read back on PostgreSQL.
                    caught_up: u64::from(name != "sqlite"),
                },
                "{name}"
            );
            let counts = store.alert_counts().await.unwrap();
            assert_eq!(counts, [("brute".to_string(), "open".to_string(), 2)], "{name}");
            store.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn states_move_forward_with_who_and_when_and_windows_and_cool_downs_split_alerts() {
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, &fresh.store);
            let config = rules("window_secs = 600\ncooldown_secs = 3600\n");
            store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
            drain(&**store, &config).await;
            let id = store.alerts(AlertQuery { limit: 1, ..AlertQuery::default() }).await.unwrap()[0].id;

            let acked = store.set_alert_state(id, AlertState::Acknowledged, "ana".into()).await.unwrap();
            assert_eq!(
                (acked.state, acked.acknowledged_by.as_deref()),
                (AlertState::Acknowledged, Some("ana")),
                "{name}"
            );
            assert!(acked.acknowledged_at.is_some(), "{name}");
            // Acknowledged alerts still group what follows within the window.
            store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
            drain(&**store, &config).await;
            let resolved = store.set_alert_state(id, AlertState::Resolved, "bo".into()).await.unwrap();
            assert_eq!(
                (resolved.state, resolved.count, resolved.resolved_by.as_deref()),
                (AlertState::Resolved, 2, Some("bo")),
                "{name}"
            );
            assert!(
                matches!(
                    store.set_alert_state(id, AlertState::Acknowledged, "x".into()).await,
                    Err(Error::Conflict(_))
                ),
                "{name}"
            );
            assert!(
                matches!(store.set_alert_state(999, AlertState::Resolved, "x".into()).await, Err(Error::NotFound(_))),
                "{name}"
            );

            // Within the cool-down a match is counted on the resolved alert...
            store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
            assert_eq!(drain(&**store, &config).await.opened, 0, "{name}");
            // ...after it (stored two hours later) it opens a new one.
            let ids = store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
            let later = if name == "sqlite" { "datetime('now', '+2 hours')" } else { "now() + interval '2 hours'" };
            fresh.execute(&format!("UPDATE predictions SET created_at = {later} WHERE id = {}", ids[0])).await;
            assert_eq!(drain(&**store, &config).await.opened, 1, "{name}");
            let open = store
                .alerts(AlertQuery { state: Some(AlertState::Open), limit: 10, ..AlertQuery::default() })
                .await
                .unwrap();
            assert_eq!(open.iter().map(|a| (a.count, a.first_result_id)).collect::<Vec<_>>(), [(1, ids[0])], "{name}");
            store.shutdown().await;
        }
    }

    #[tokio::test]
    async fn a_state_change_by_another_process_is_seen_by_the_next_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let store = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        let config = rules("");
        store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
        assert_eq!(drain(&store, &config).await.opened, 1);
        // The writer now remembers the open alert. Another process (the
        // `alerts resolve` command opens the file itself) resolves it.
        let other = SqliteStore::open(&SqliteConfig::new(&path)).unwrap();
        let id = other.alerts(AlertQuery { limit: 1, ..AlertQuery::default() }).await.unwrap()[0].id;
        other.set_alert_state(id, AlertState::Resolved, "cli".into()).await.unwrap();
        other.shutdown().await;
        let c = Connection::open(&path).unwrap();
        c.execute("UPDATE alerts SET resolved_unix = resolved_unix - 60 WHERE id = ?1", [id]).unwrap();
        // No cool-down: the next match opens a new alert, not one counted
        // on the resolved alert as a stale memory of it would.
        store.insert(vec![attempt("203.0.113.7", true)]).await.unwrap();
        assert_eq!(drain(&store, &config).await.opened, 1);
        let all = store.alerts(AlertQuery { limit: 10, ..AlertQuery::default() }).await.unwrap();
        let summary: Vec<_> = all.iter().map(|a| (a.count, a.state)).collect();
        assert_eq!(summary, [(1, AlertState::Open), (1, AlertState::Resolved)]);
        store.shutdown().await;
    }

    /// Rules of every shape a pass evaluates: by reason (worded model
    /// reasons too), by kind and user, campaign-wide (CSV rows included),
    /// by device; one destination, so escalations are compared too.
    const SAME_RULES: &str = "[alert]\n\
        [[alert.rule]]\nname = \"brute\"\nreason = \"failed logins\"\n\
        [[alert.rule]]\nname = \"per-user\"\nverdict = \"any\"\nkinds = [\"session\"]\ngroup_by = \"user\"\nmin_confidence = 0.6\n\
        [[alert.rule]]\nname = \"campaign\"\ngroup_by = \"rule\"\n\
        [[alert.rule]]\nname = \"by-device\"\nverdict = \"any\"\nreason = \"(?i)fail\"\ngroup_by = \"device\"\n\
        [[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n";

    /// Row `i` of the comparison: three addresses, five users, both kinds,
    /// both verdicts, confidences 0.5..0.95, every seventh with a model's
    /// reason (worded when read) instead of a text one.
    // `is_multiple_of` is newer than the workspace's rust-version (1.85).
    #[allow(clippy::manual_is_multiple_of)]
    fn mixed(i: usize) -> NewPrediction {
        let mut p = attempt(["203.0.113.7", "198.51.100.2", "192.0.2.1"][i % 3], i % 4 != 0);
        p.agent.user = Some(format!("u{}", i % 5));
        p.agent.kind = Some(if i % 2 == 0 { "session" } else { "source" }.into());
        p.confidence = 0.5 + (i % 10) as f32 * 0.05;
        if i % 7 == 0 {
            p.reasons = vec![Reason::Feature(3)];
        }
        p
    }

    type Outcome = (Vec<(String, String, AlertState, u64, i64, i64, Option<String>)>, Vec<String>, u64);

    /// One scenario of inserts, an agent's batch, a CSV upload, a restart
    /// and passes between them. With `catch_up`, another connection writes
    /// before every pass, so no pass may trust the writer's memory: every
    /// pass reads its rows back. Returns the alerts, the outbox's message
    /// ids and the results evaluated.
    async fn same_scenario(fresh: &crate::store::backends::Fresh, catch_up: bool) -> Outcome {
        let name = fresh.name;
        let config = Arc::new(CollectorConfig::parse(SAME_RULES).unwrap().alert);
        let mut store = fresh.store.clone();
        let mut next = 0usize;
        let mut rows = |n: usize| {
            next += n;
            (next - n..next).map(mixed).collect::<Vec<_>>()
        };
        // Each pass evaluates everything pending (both runs cut the same
        // passes); `memory` says whether the writer's memory must have
        // served it (SQLite only: PostgreSQL always reads back).
        let mut total = 0;
        let pass = |store: Arc<dyn Store>, memory: bool| {
            let config = config.clone();
            async move {
                if catch_up {
                    fresh
                        .execute("CREATE TABLE IF NOT EXISTS scratch (n INTEGER); INSERT INTO scratch VALUES (1);")
                        .await;
                }
                let pass = store.evaluate_alerts(config).await.unwrap();
                let from_memory = name == "sqlite" && memory && !catch_up;
                let expected = if from_memory { 0 } else { pass.results };
                assert_eq!(pass.caught_up, expected, "{name} catch_up={catch_up}: {pass:?}");
                pass.results
            }
        };
        total += pass(store.clone(), false).await;
        store.insert(rows(50)).await.unwrap();
        total += pass(store.clone(), true).await;

        let token = store.add_device("pi-9".into()).await.unwrap();
        let device = store.authenticate(token).await.unwrap().unwrap();
        let mut records: Vec<_> =
            (0..20).map(|i| crate::store::devices::tests::session_record(&format!("u{i}"))).collect();
        for (i, r) in records.iter_mut().enumerate() {
            r.suspicious = i % 3 != 0;
            r.fingerprint.failed_logins = 6;
            r.reasons = vec![format!("{i} failed logins")];
        }
        let batch = bfp_common::wire::Batch { seq: 1, heartbeat: Default::default(), records };
        assert_eq!(store.ingest(device, batch).await.unwrap().stored, 20, "{name}");
        total += pass(store.clone(), true).await;

        // A CSV upload between two inserts: its rows are read back.
        store.insert(rows(30)).await.unwrap();
        let csv = (0..40)
            .map(|i| {
                let fp = crate::store::backends::fingerprint(i % 2 == 0);
                crate::store::CsvRow::new(&fp, i % 2 == 0, 0.9, &[Reason::Feature(3)])
            })
            .collect();
        crate::store::backends::commit_csv_rows(&*store, csv).await.unwrap();
        store.insert(rows(10)).await.unwrap();
        total += pass(store.clone(), false).await;
        store.insert(rows(25)).await.unwrap();
        total += pass(store.clone(), true).await;

        // A restart with rows not yet evaluated, then more before the first
        // pass after it: all read back; what follows is handed over.
        store.insert(rows(15)).await.unwrap();
        store.shutdown().await;
        drop(store);
        store = fresh.reopen().await;
        store.insert(rows(15)).await.unwrap();
        total += pass(store.clone(), false).await;
        store.insert(rows(20)).await.unwrap();
        total += pass(store.clone(), true).await;
        assert_eq!(pass(store.clone(), true).await, 0, "{name}");

        let alerts = store.alerts(AlertQuery { limit: 1000, ..AlertQuery::default() }).await.unwrap();
        let alerts = alerts
            .into_iter()
            .map(|a| (a.rule, a.group_key, a.state, a.count, a.first_result_id, a.last_result_id, a.source_ip))
            .collect();
        let outbox = crate::store::Outbox::outbox_head(&*store, "hook".into(), 1000, 20).await.unwrap();
        store.shutdown().await;
        (alerts, outbox.into_iter().map(|m| m.notification.id).collect(), total)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_handed_over_in_memory_raise_the_same_alerts_as_rows_read_back() {
        for (memory, read_back) in
            crate::store::backends::each().await.into_iter().zip(crate::store::backends::each().await)
        {
            let name = memory.name;
            let handed = same_scenario(&memory, false).await;
            let caught = same_scenario(&read_back, true).await;
            assert_eq!(handed.2, 225, "{name}: every stored result evaluated once");
            assert!(handed.0.len() >= 10, "{name}: {:?}", handed.0);
            assert!(handed.1.iter().any(|id| id.contains("escalated")), "{name}: {:?}", handed.1);
            assert_eq!(handed, caught, "{name}");
        }
    }

    #[test]
    fn unix_seconds_of_stored_times() {
        assert_eq!(unix_seconds("1970-01-01 00:00:00"), 0);
        assert_eq!(unix_seconds("2026-12-07 04:33:36"), 1_796_618_016);
        assert_eq!(unix_seconds("2000-03-01 00:00:01"), 951_868_801);
        assert_eq!(unix_seconds("garbage"), 0);
    }
}
