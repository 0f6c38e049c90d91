//! The SQLite schema as one numbered ladder of migrations, applied in order
//! at open, each in the same transaction as the new `user_version`.
//!
//! To change the schema, append a step (never edit one that has shipped):
//! its number is the next integer, its SQL moves the previous version to
//! the new one, and [`SCHEMA_VERSION`] follows from the ladder's length. A
//! database from a newer collector (a higher `user_version`) is refused
//! rather than written with the wrong shape.
//!
//! Steps 2-5 use `IF NOT EXISTS` and back-fill only tables they create:
//! collectors before this ladder created those tables at every start while
//! leaving `user_version` at 1, so a database at version 1 may hold any of
//! them already (`testdata/store-v1.sql` is one, made by that collector).

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// One step of the ladder.
struct Migration {
    /// The `user_version` the step leaves.
    version: i64,
    /// What it adds, for the log.
    what: &'static str,
    /// The step itself, inside the migration's transaction.
    apply: fn(&Transaction<'_>) -> rusqlite::Result<()>,
}

/// The ladder, in order; `MIGRATIONS[i].version == i + 1`.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, what: "predictions, counters and their indexes", apply: predictions },
    Migration { version: 2, what: "hourly roll-ups and per-source-address counts", apply: rollups },
    Migration { version: 3, what: "per-4096-id block counts", apply: id_blocks },
    Migration { version: 4, what: "devices", apply: devices },
    Migration { version: 5, what: "analyst feedback", apply: feedback },
    Migration { version: 6, what: "per-source id indexes without CSV rows", apply: source_indexes },
    Migration { version: 7, what: "alerts and their evaluation cursor", apply: alerts },
    Migration { version: 8, what: "operators and their API tokens", apply: users },
    Migration { version: 9, what: "device groups, decisions and the blocks devices report", apply: decisions },
    Migration { version: 10, what: "dashboard sessions, login lock-outs and the audit trail", apply: console },
    Migration { version: 11, what: "the notification outbox and destinations' status", apply: outbox },
    Migration { version: 12, what: "event time of predictions and the console's filter indexes", apply: event_time },
    Migration { version: 13, what: "the evidence agents send with each record", apply: evidence },
    Migration { version: 14, what: "predictions' source check without a temporary table per row", apply: source_check },
    Migration { version: 15, what: "CSV rows out of the event-time index, each upload one row", apply: csv_uploads },
];

/// The schema version this collector writes (the last step of the ladder).
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Brings the database up to [`SCHEMA_VERSION`]: every step above its
/// `user_version`, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Config(format!(
            "database schema version {version} is newer than this collector's ({SCHEMA_VERSION})"
        )));
    }
    for step in MIGRATIONS.iter().filter(|m| m.version > version) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        (step.apply)(&tx)?;
        tx.pragma_update(None, "user_version", step.version)?;
        tx.commit()?;
        if version > 0 {
            tracing::info!(version = step.version, what = step.what, "database schema upgraded");
        }
    }
    Ok(())
}

fn table_exists(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
        .optional()?
        .is_some())
}

fn predictions(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS predictions (
    id               INTEGER PRIMARY KEY,
    created_at       TEXT NOT NULL DEFAULT (datetime('now')),
    source           TEXT NOT NULL CHECK (source IN ('single', 'csv', 'agent')),
    prediction       TEXT NOT NULL CHECK (prediction IN ('Normal', 'Suspicious')),
    confidence       REAL NOT NULL,
    login_hour       INTEGER NOT NULL,
    session_duration REAL NOT NULL,
    commands_count   INTEGER NOT NULL,
    failed_logins    INTEGER NOT NULL,
    protocol         TEXT NOT NULL,
    typing_speed     REAL,
    risky_commands   INTEGER,
    commands         TEXT,
    model_version    TEXT NOT NULL,
    reasons          TEXT NOT NULL, -- JSON list: feature index (worded at read time) or text
    device           TEXT,
    kind             TEXT,
    source_ip        TEXT,
    user             TEXT,
    started_at       TEXT,
    ended_at         TEXT
);
-- Filtered pages walk these in id order, so a page costs the same at any
-- depth however rare the filtered value is. The device index is partial
-- since single and CSV rows have no device and should not pay for it. Only
-- Suspicious rows are indexed by label: the alert view must stay fast when
-- they are rare; a Normal filter walks ids (Normal is the common label), and a
-- full label index would cost every insert about half as much again.
CREATE INDEX IF NOT EXISTS predictions_source_id ON predictions (source, id);
CREATE INDEX IF NOT EXISTS predictions_suspicious_id ON predictions (id) WHERE prediction = 'Suspicious';
CREATE INDEX IF NOT EXISTS predictions_device_id ON predictions (device, id) WHERE device IS NOT NULL;
-- Kept in the same transactions as the rows: analytics and filtered counts
-- read a handful of counter rows instead of counting millions.
CREATE TABLE IF NOT EXISTS counters (
    source     TEXT NOT NULL,
    device     TEXT NOT NULL DEFAULT '',
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (source, device, prediction)
) WITHOUT ROWID;",
    )
}

fn rollups(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let existed = table_exists(tx, "rollup_hourly")?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS rollup_hourly (
    hour       TEXT NOT NULL,  -- 'YYYY-MM-DD HH:00:00', UTC
    source     TEXT NOT NULL,
    protocol   TEXT NOT NULL,
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (hour, source, protocol, prediction)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS source_ips (
    source_ip  TEXT PRIMARY KEY,
    suspicious INTEGER NOT NULL,
    total      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS source_ips_suspicious ON source_ips (suspicious);",
    )?;
    if !existed {
        // Rows stored before the roll-ups existed are counted once, here.
        tx.execute_batch(
            "INSERT INTO rollup_hourly (hour, source, protocol, prediction, n)
                SELECT substr(created_at, 1, 13) || ':00:00', source, protocol, prediction, COUNT(*)
                FROM predictions GROUP BY 1, 2, 3, 4;
             INSERT INTO source_ips (source_ip, suspicious, total)
                SELECT source_ip, SUM(prediction = 'Suspicious'), COUNT(*)
                FROM predictions WHERE source_ip IS NOT NULL GROUP BY 1;",
        )?;
    }
    Ok(())
}

/// Counts per block of 4,096 ids (`id >> 12`), so a filtered count over an
/// id (or time) range adds up whole blocks and walks only the two partial
/// blocks at its ends, and an `offset` is found by walking block counts,
/// not rows. Kept by the writer in the rows' transactions, like the counters.
fn id_blocks(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let existed = table_exists(tx, "id_blocks")?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS id_blocks (
    block      INTEGER NOT NULL,  -- id >> 12
    source     TEXT NOT NULL,
    prediction TEXT NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (block, source, prediction)
) WITHOUT ROWID;",
    )?;
    if !existed {
        tx.execute_batch(
            "INSERT INTO id_blocks (block, source, prediction, n)
                SELECT id >> 12, source, prediction, COUNT(*) FROM predictions GROUP BY 1, 2, 3;",
        )?;
    }
    Ok(())
}

fn devices(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS devices (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL DEFAULT (datetime('now')),
    revoked_at    TEXT,
    last_seen     TEXT,
    agent_version TEXT,
    model_version TEXT,
    spool_depth   INTEGER NOT NULL DEFAULT 0,
    dropped       INTEGER NOT NULL DEFAULT 0,
    lines_read    INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    batches       INTEGER NOT NULL DEFAULT 0,
    records       INTEGER NOT NULL DEFAULT 0
);",
    )
}

fn feedback(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS feedback (
    prediction_id INTEGER PRIMARY KEY REFERENCES predictions (id),
    analyst_label TEXT NOT NULL CHECK (analyst_label IN ('Normal', 'Suspicious')),
    labelled_at   TEXT NOT NULL DEFAULT (datetime('now')),
    note          TEXT
);",
    )
}

/// Single and agent rows are interleaved, so a page of one source needs an
/// index of its ids; CSV rows are contiguous (one upload is one transaction
/// of the only writer), so a CSV page walks ids from the first block holding
/// CSV rows and needs none. The `(source, id)` index this replaces put every
/// CSV row in the middle of the index, before the single rows: a 1,000,000-row
/// upload cost the writer about 30% more CPU than into a store without single
/// rows (docs/benchmarks.md). Building the two indexes reads the table once.
fn source_indexes(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "DROP INDEX IF EXISTS predictions_source_id;
         CREATE INDEX IF NOT EXISTS predictions_single_id ON predictions (id) WHERE source = 'single';
         CREATE INDEX IF NOT EXISTS predictions_agent_id ON predictions (id) WHERE source = 'agent';",
    )
}

/// Alerts raised by the rules, and how far the rules have read. Times of
/// matches are seconds since the epoch (a window is a subtraction); the
/// people's actions keep SQLite's text times, as the other tables do.
fn alerts(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS alerts (
    id               INTEGER PRIMARY KEY,
    rule             TEXT NOT NULL,
    group_key        TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    count            INTEGER NOT NULL,
    first_result_id  INTEGER NOT NULL,
    last_result_id   INTEGER NOT NULL,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    source_ip        TEXT,
    user             TEXT,
    device           TEXT,
    created_at       TEXT NOT NULL DEFAULT (datetime('now')),
    acknowledged_by  TEXT,
    acknowledged_at  TEXT,
    resolved_by      TEXT,
    resolved_at      TEXT,
    resolved_unix    INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_rule_group ON alerts (rule, group_key, id);
CREATE INDEX IF NOT EXISTS alerts_state_id ON alerts (state, id);
CREATE TABLE IF NOT EXISTS alert_cursor (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_result_id  INTEGER NOT NULL
);",
    )
}

/// Operators (Argon2id PHC strings) and their API tokens (SHA-256 only).
/// `expires_at` is unix seconds, compared with the clock at each request.
/// `IF NOT EXISTS` as the steps before it: tests (and an operator) may set
/// `user_version` back and re-run the ladder.
fn users(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    expires_at INTEGER,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id);",
    )
}

fn decisions(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // Idempotent like the steps before it: a database rewound to an older
    // `user_version` (as the back-fill tests do) passes here again.
    let has_group: bool =
        tx.query_row("SELECT count(*) > 0 FROM pragma_table_info('devices') WHERE name = 'device_group'", [], |r| {
            r.get(0)
        })?;
    if !has_group {
        tx.execute_batch("ALTER TABLE devices ADD COLUMN device_group TEXT NOT NULL DEFAULT 'default'")?;
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS decisions (
    id           INTEGER PRIMARY KEY,
    device_group TEXT NOT NULL,
    address      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    until        INTEGER NOT NULL,
    deleted_at   INTEGER,
    deleted_by   TEXT,
    alert_id     INTEGER UNIQUE
);
CREATE INDEX IF NOT EXISTS decisions_active ON decisions (device_group, until) WHERE deleted_at IS NULL;
CREATE TABLE IF NOT EXISTS device_responses (
    device_id   INTEGER PRIMARY KEY REFERENCES devices (id),
    backend     TEXT NOT NULL,
    reported_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_blocks (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    address     TEXT NOT NULL,
    since       INTEGER NOT NULL,
    until       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    origin      TEXT NOT NULL,
    decision_id INTEGER,
    PRIMARY KEY (device_id, address)
);
CREATE TABLE IF NOT EXISTS device_refusals (
    device_id   INTEGER NOT NULL REFERENCES devices (id),
    decision_id INTEGER NOT NULL,
    address     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (device_id, decision_id)
);",
    )
}

/// Dashboard sessions (only the SHA-256 of each id), wrong-password counts
/// per user name, and the audit trail, which triggers keep append-only:
/// nothing the service runs can edit or delete a line.
fn console(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS login_lockouts (
    user_name    TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER
);
CREATE TABLE IF NOT EXISTS audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL DEFAULT (datetime('now')),
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    client TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
    )
}

fn outbox(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // Safe to run again over its own tables (a database whose version was
    // set back, as the back-fill tests do).
    let has_column =
        tx.prepare("SELECT 1 FROM pragma_table_info('alerts') WHERE name = 'notified_count'")?.exists([])?;
    if !has_column {
        // The count last told to destinations: an alert escalates when its
        // count reaches twice this. Alerts made before this step start at
        // their count (no message for what happened before notifications).
        tx.execute_batch(
            "ALTER TABLE alerts ADD COLUMN notified_count INTEGER NOT NULL DEFAULT 0;
             UPDATE alerts SET notified_count = count;",
        )?;
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS outbox (
    id           INTEGER PRIMARY KEY,
    destination  TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    alert_id     INTEGER NOT NULL,
    payload      TEXT NOT NULL, -- JSON: the notification, alert as it was
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT,
    delivered_at INTEGER,
    UNIQUE (destination, event_id)
);
-- Each destination's queue in order; delivered rows leave the index.
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, id) WHERE delivered_at IS NULL;
CREATE TABLE IF NOT EXISTS destination_status (
    name            TEXT PRIMARY KEY,
    delivered       INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    last_success_at INTEGER,
    last_error      TEXT,
    last_error_at   INTEGER
) WITHOUT ROWID;",
    )
}

/// When each prediction happened (`event_at`, the `created_at` form): an
/// agent record's start, else the time of ingest. Rows stored before this
/// step get their ingest time, which is what the roll-ups already filed
/// them under. Indexed with the id for newest-first pages and event-time
/// ranges, and per user and per address (partial: single and CSV rows have
/// neither and do not pay for them) for the console's filters.
fn event_time(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let has_column = tx.prepare("SELECT 1 FROM pragma_table_info('predictions') WHERE name = 'event_at'")?.exists([])?;
    if !has_column {
        tx.execute_batch("ALTER TABLE predictions ADD COLUMN event_at TEXT")?;
    }
    tx.execute_batch(
        "UPDATE predictions SET event_at = created_at WHERE event_at IS NULL;
CREATE INDEX IF NOT EXISTS predictions_event ON predictions (event_at, id);
CREATE INDEX IF NOT EXISTS predictions_user_event ON predictions (user, event_at, id) WHERE user IS NOT NULL;
CREATE INDEX IF NOT EXISTS predictions_ip_event ON predictions (source_ip, event_at, id) WHERE source_ip IS NOT NULL;",
    )
}

/// An agent record's evidence (a JSON object; see
/// `store::AgentContext::evidence`); older rows have none.
fn evidence(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let has_column = tx.prepare("SELECT 1 FROM pragma_table_info('predictions') WHERE name = 'evidence'")?.exists([])?;
    if !has_column {
        tx.execute_batch("ALTER TABLE predictions ADD COLUMN evidence TEXT")?;
    }
    Ok(())
}

/// An upload's rows share one event time (its stamp) and one id range, so
/// one row of `csv_uploads` stands for all of them in event-time order,
/// and `predictions_event` leaves them out: an entry per row cost about a
/// sixth of an upload's time (docs/benchmarks.md). Every id of a range is a
/// CSV row with that time or no row at all. Uploads already stored are
/// found in the rows: each run of CSV rows with one event time and no other
/// row between them (in id order).
fn csv_uploads(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS csv_uploads (
    first_id    INTEGER PRIMARY KEY,
    last_id     INTEGER NOT NULL,
    uploaded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS csv_uploads_time ON csv_uploads (uploaded_at, first_id);
DELETE FROM csv_uploads;
INSERT INTO csv_uploads (first_id, last_id, uploaded_at)
SELECT MIN(id), MAX(id), event_at FROM (
    SELECT id, source, event_at,
           ROW_NUMBER() OVER (ORDER BY id) - ROW_NUMBER() OVER (PARTITION BY source, event_at ORDER BY id) AS run
    FROM predictions) r
WHERE source = 'csv'
GROUP BY event_at, run;
DROP INDEX IF EXISTS predictions_event;
CREATE INDEX predictions_event ON predictions (event_at, id) WHERE source <> 'csv';",
    )
}

/// Step 1's check on `predictions.source`, and the same check as SQLite
/// runs it cheaply.
const SOURCE_CHECK_IN: &str = "CHECK (source IN ('single', 'csv', 'agent'))";
const SOURCE_CHECK_OR: &str = "CHECK (source = 'single' OR source = 'csv' OR source = 'agent')";

/// SQLite codes a CHECK's `IN` list of three values as a temporary b-tree
/// it builds for every row inserted (a fresh page, zeroed, and its
/// teardown: about a sixth of an insert's instructions); the same check as
/// comparisons costs a few. A check's text changes nothing stored and every
/// row satisfies both forms, so the step rewrites the table's definition in
/// place (SQLite's documented procedure for changing a CHECK constraint,
/// "ALTER TABLE", section 7) rather than copying the table. A definition
/// that does not hold step 1's exact text is left as it is.
fn source_check(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let sql: String =
        tx.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'predictions'", [], |r| r.get(0))?;
    if !sql.contains(SOURCE_CHECK_IN) {
        return Ok(());
    }
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.execute_batch("PRAGMA writable_schema = ON")?;
    let rewritten = tx.execute(
        "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = 'predictions'",
        [sql.replace(SOURCE_CHECK_IN, SOURCE_CHECK_OR)],
    );
    // Bumped so every other connection reads the definition anew; `RESET`
    // (off, and the schema reloaded) makes this one do so too.
    let bumped = tx.execute_batch(&format!("PRAGMA schema_version = {}", version + 1));
    tx.execute_batch("PRAGMA writable_schema = RESET")?;
    rewritten?;
    bumped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_a_prediction_builds_no_temporary_table_and_a_bad_source_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn).unwrap();
        let insert = "INSERT INTO predictions (source, prediction, confidence, login_hour, session_duration,
            commands_count, failed_logins, protocol, model_version, reasons) VALUES (?1, 'Normal', 0.5, 1, 1.0, 0, 0,
            'ssh', 'm', '[]')";
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN {insert}"))
            .unwrap()
            .query_map(["agent"], |r| r.get(1))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(plan.iter().any(|op| op == "Insert"), "{plan:?}");
        assert!(!plan.iter().any(|op| op == "OpenEphemeral"), "{plan:?}");
        for source in ["single", "csv", "agent"] {
            conn.execute(insert, [source]).unwrap();
        }
        let err = conn.execute(insert, ["bogus"]).unwrap_err().to_string();
        assert!(err.contains("CHECK constraint failed"), "{err}");
        // The file stays sound and another connection reads the new definition.
        drop(conn);
        let other = Connection::open(&path).unwrap();
        let check: String = other.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
        let sql: String =
            other.query_row("SELECT sql FROM sqlite_master WHERE name = 'predictions'", [], |r| r.get(0)).unwrap();
        assert!(sql.contains(SOURCE_CHECK_OR) && !sql.contains(SOURCE_CHECK_IN), "{sql}");
        assert!(other.execute(insert, ["bogus"]).is_err());
    }

    #[test]
    fn the_ladder_is_numbered_one_by_one() {
        for (i, step) in MIGRATIONS.iter().enumerate() {
            assert_eq!(step.version, i as i64 + 1, "{}", step.what);
        }
    }

    #[test]
    fn a_new_database_gets_every_table_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let schema = |c: &Connection| -> Vec<String> {
            let mut stmt = c.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        let first = schema(&conn);
        for table in [
            "predictions",
            "counters",
            "rollup_hourly",
            "source_ips",
            "id_blocks",
            "devices",
            "feedback",
            "alerts",
            "users",
            "api_tokens",
            "decisions",
            "device_blocks",
            "device_refusals",
            "sessions",
            "login_lockouts",
            "audit_log",
            "outbox",
            "destination_status",
        ] {
            assert!(first.iter().any(|sql| sql.starts_with(&format!("CREATE TABLE {table} "))), "{table}");
        }
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(schema(&conn), first);
    }

    #[test]
    fn rows_from_before_event_time_get_their_ingest_time() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        // A store of version 11: no event_at column, two rows.
        conn.execute_batch(
            "DROP INDEX predictions_event; DROP INDEX predictions_user_event; DROP INDEX predictions_ip_event;
             ALTER TABLE predictions DROP COLUMN event_at; ALTER TABLE predictions DROP COLUMN evidence;
             INSERT INTO predictions (created_at, source, prediction, confidence, login_hour, session_duration,
                 commands_count, failed_logins, protocol, model_version, reasons, started_at)
             VALUES ('2026-01-02 03:04:05', 'single', 'Normal', 0.9, 3, 1, 0, 0, 'SSH', 'm', '[]', NULL),
                    ('2026-01-03 04:05:06', 'agent', 'Normal', 0.9, 3, 1, 0, 0, 'SSH', 'm', '[]', '2025-12-01 00:00:00');
             PRAGMA user_version = 11;",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare("SELECT event_at FROM predictions ORDER BY id").unwrap();
        let times: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(|t| t.unwrap()).collect();
        assert_eq!(times, ["2026-01-02 03:04:05", "2026-01-03 04:05:06"]);
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT id FROM predictions WHERE source <> 'csv' ORDER BY event_at DESC, id DESC LIMIT 5",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("predictions_event"), "{plan}");
    }
}
