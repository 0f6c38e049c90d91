//! `bfp-collector migrate-store`: copies a SQLite store into PostgreSQL,
//! table by table, row for row (the two ladders have the same tables and
//! columns), then verifies every table by its row count and a SHA-256 over
//! its rows in key order, read back from both databases.
//!
//! Resumable: a table with an integer key is copied in key order, a chunk
//! per transaction, and the same transaction records the last key copied in
//! `migrate_store_progress`; the other tables (counters, roll-ups, blocks:
//! small) are copied whole in one transaction. A copy killed at any moment
//! re-runs from the last committed chunk.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::OpenFlags;
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::migrations::csv_uploads_of_rows;
use crate::error::{Error, Result};

/// How a column is moved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Real,
    Text,
    /// SQLite text `YYYY-MM-DD HH:MM:SS` (UTC) into `timestamptz`.
    Time,
}

use Kind::{Int, Real, Text, Time};

struct Table {
    name: &'static str,
    /// An integer key to copy in chunks by, or `None`: copied whole.
    key: Option<&'static str>,
    /// Ordering for the checksum (the primary key).
    order: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Has an identity column `id` whose sequence must follow the copy.
    identity: bool,
}

/// Parents before children (foreign keys), as the ladders create them.
const TABLES: &[Table] = &[
    Table {
        name: "predictions",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("created_at", Time),
            ("source", Text),
            ("prediction", Text),
            ("confidence", Real),
            ("login_hour", Int),
            ("session_duration", Real),
            ("commands_count", Int),
            ("failed_logins", Int),
            ("protocol", Text),
            ("typing_speed", Real),
            ("risky_commands", Int),
            ("commands", Text),
            ("model_version", Text),
            ("reasons", Text),
            ("device", Text),
            ("kind", Text),
            ("source_ip", Text),
            ("user", Text),
            ("started_at", Text),
            ("ended_at", Text),
            ("event_at", Time),
            ("evidence", Text),
        ],
        identity: true,
    },
    Table {
        name: "counters",
        key: None,
        order: "source, device, prediction",
        columns: &[("source", Text), ("device", Text), ("prediction", Text), ("n", Int)],
        identity: false,
    },
    Table {
        name: "rollup_hourly",
        key: None,
        order: "hour, source, protocol, prediction",
        columns: &[("hour", Time), ("source", Text), ("protocol", Text), ("prediction", Text), ("n", Int)],
        identity: false,
    },
    Table {
        name: "source_ips",
        key: None,
        order: "source_ip",
        columns: &[("source_ip", Text), ("suspicious", Int), ("total", Int)],
        identity: false,
    },
    Table {
        name: "id_blocks",
        key: None,
        order: "block, source, prediction",
        columns: &[("block", Int), ("source", Text), ("prediction", Text), ("n", Int)],
        identity: false,
    },
    Table {
        name: "devices",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("token_hash", Text),
            ("created_at", Time),
            ("revoked_at", Time),
            ("last_seen", Time),
            ("agent_version", Text),
            ("model_version", Text),
            ("spool_depth", Int),
            ("dropped", Int),
            ("lines_read", Int),
            ("last_error", Text),
            ("last_seq", Int),
            ("batches", Int),
            ("records", Int),
            ("device_group", Text),
        ],
        identity: true,
    },
    Table {
        name: "feedback",
        key: Some("prediction_id"),
        order: "prediction_id",
        columns: &[("prediction_id", Int), ("analyst_label", Text), ("labelled_at", Time), ("note", Text)],
        identity: false,
    },
    Table {
        name: "alerts",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("rule", Text),
            ("group_key", Text),
            ("state", Text),
            ("count", Int),
            ("first_result_id", Int),
            ("last_result_id", Int),
            ("first_seen", Int),
            ("last_seen", Int),
            ("source_ip", Text),
            ("user", Text),
            ("device", Text),
            ("created_at", Time),
            ("acknowledged_by", Text),
            ("acknowledged_at", Time),
            ("resolved_by", Text),
            ("resolved_at", Time),
            ("resolved_unix", Int),
            ("notified_count", Int),
        ],
        identity: true,
    },
    Table {
        name: "alert_cursor",
        key: None,
        order: "id",
        columns: &[("id", Int), ("last_result_id", Int)],
        identity: false,
    },
    Table {
        name: "users",
        key: Some("id"),
        order: "id",
        columns: &[("id", Int), ("name", Text), ("role", Text), ("password_hash", Text), ("created_at", Time)],
        identity: true,
    },
    Table {
        name: "api_tokens",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("token_hash", Text),
            ("created_at", Time),
            ("expires_at", Int),
            ("revoked_at", Time),
        ],
        identity: true,
    },
    Table {
        name: "decisions",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("device_group", Text),
            ("address", Text),
            ("reason", Text),
            ("created_by", Text),
            ("created_at", Int),
            ("until", Int),
            ("deleted_at", Int),
            ("deleted_by", Text),
            ("alert_id", Int),
        ],
        identity: true,
    },
    Table {
        name: "device_responses",
        key: Some("device_id"),
        order: "device_id",
        columns: &[("device_id", Int), ("backend", Text), ("reported_at", Int)],
        identity: false,
    },
    Table {
        name: "device_blocks",
        key: None,
        order: "device_id, address",
        columns: &[
            ("device_id", Int),
            ("address", Text),
            ("since", Int),
            ("until", Int),
            ("reason", Text),
            ("origin", Text),
            ("decision_id", Int),
        ],
        identity: false,
    },
    Table {
        name: "device_refusals",
        key: None,
        order: "device_id, decision_id",
        columns: &[("device_id", Int), ("decision_id", Int), ("address", Text), ("reason", Text)],
        identity: false,
    },
    Table {
        name: "sessions",
        key: None,
        order: "id_hash",
        columns: &[("id_hash", Text), ("user_id", Int), ("created_at", Int), ("last_used", Int)],
        identity: false,
    },
    Table {
        name: "login_lockouts",
        key: None,
        order: "user_name",
        columns: &[("user_name", Text), ("failures", Int), ("locked_until", Int)],
        identity: false,
    },
    Table {
        name: "audit_log",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("at", Time),
            ("actor", Text),
            ("action", Text),
            ("target", Text),
            ("detail", Text),
            ("client", Text),
        ],
        identity: true,
    },
    Table {
        name: "outbox",
        key: Some("id"),
        order: "id",
        columns: &[
            ("id", Int),
            ("destination", Text),
            ("event_id", Text),
            ("alert_id", Int),
            ("payload", Text),
            ("created_at", Int),
            ("attempts", Int),
            ("next_attempt", Int),
            ("last_error", Text),
            ("delivered_at", Int),
        ],
        identity: true,
    },
    Table {
        name: "destination_status",
        key: None,
        order: "name",
        columns: &[
            ("name", Text),
            ("delivered", Int),
            ("failed", Int),
            ("last_success_at", Int),
            ("last_error", Text),
            ("last_error_at", Int),
        ],
        identity: false,
    },
];

/// What one table's copy came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Rows in it, in both databases.
    pub rows: u64,
    /// SHA-256 (hex) of its rows in key order, equal in both databases.
    pub checksum: String,
}

/// What [`migrate_store`] did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Rows copied by this run (a resumed run copies only what was left).
    pub copied: u64,
    /// Every table, verified.
    pub tables: Vec<TableReport>,
}

/// What progress is reported while copying: rows done of rows in all.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn quoted(columns: &[(&str, Kind)]) -> String {
    columns.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

/// Copies the SQLite store at `from` into the PostgreSQL database at `to`
/// (migrated first), resuming an interrupted copy, and verifies it.
pub async fn migrate_store(from: &Path, to: &str, chunk: usize, progress: Progress<'_>) -> Result<CopyReport> {
    if !from.is_file() {
        return Err(Error::Config(format!("no SQLite store at {}", from.display())));
    }
    // Brings the source to this collector's schema (the copy expects its columns).
    crate::store::sqlite::upgrade_file(from)?;
    let src = rusqlite::Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut pg = super::connect(to).await?;
    super::migrate(&mut pg).await?;
    pg.batch_execute(
        "CREATE TABLE IF NOT EXISTS migrate_store_progress (
             table_name TEXT PRIMARY KEY,
             last_key   BIGINT NOT NULL,
             done       BOOLEAN NOT NULL DEFAULT false
         )",
    )
    .await?;
    let started: i64 = pg.query_one("SELECT count(*) FROM migrate_store_progress", &[]).await?.get(0);
    if started == 0 {
        for t in ["predictions", "devices", "users"] {
            let n: i64 = pg.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await?.get(0);
            if n > 0 {
                return Err(Error::Config(format!(
                    "{} already holds {t} that no migrate-store copied: copy into an empty database",
                    super::redact(to)
                )));
            }
        }
    }
    let mut total = 0u64;
    for t in TABLES {
        let n: i64 = src.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| r.get(0))?;
        total += n as u64;
    }
    let mut done = 0u64;
    let mut copied = 0u64;
    for t in TABLES {
        let state =
            pg.query_opt("SELECT last_key, done FROM migrate_store_progress WHERE table_name = $1", &[&t.name]).await?;
        let (mut last, finished) = state.map_or((i64::MIN, false), |r| (r.get(0), r.get(1)));
        let rows_in: i64 = src.query_row(&format!("SELECT count(*) FROM {}", t.name), [], |r| r.get(0))?;
        if finished {
            done += rows_in as u64;
            progress(done, total);
            continue;
        }
        let cols = quoted(t.columns);
        match t.key {
            Some(key) => {
                if last > i64::MIN {
                    let before: i64 =
                        src.query_row(&format!("SELECT count(*) FROM {} WHERE {key} <= ?1", t.name), [last], |r| {
                            r.get(0)
                        })?;
                    done += before as u64;
                }
                let mut stmt = src.prepare(&format!(
                    "SELECT {cols} FROM {} WHERE {key} > ?1 ORDER BY {key} LIMIT {}",
                    t.name,
                    chunk.max(1)
                ))?;
                loop {
                    let rows = read_rows(&mut stmt, t, last)?;
                    if rows.is_empty() {
                        break;
                    }
                    let key_at = t.columns.iter().position(|(c, _)| c == &key).expect("the key is a column");
                    let Value::Integer(next) = rows[rows.len() - 1][key_at] else {
                        return Err(Error::Internal(format!("{}.{key} is not an integer", t.name)));
                    };
                    let tx = pg.transaction().await?;
                    insert(&tx, t, &rows).await?;
                    tx.execute(
                        "INSERT INTO migrate_store_progress (table_name, last_key) VALUES ($1, $2)
                         ON CONFLICT (table_name) DO UPDATE SET last_key = excluded.last_key",
                        &[&t.name, &next],
                    )
                    .await?;
                    tx.commit().await?;
                    last = next;
                    done += rows.len() as u64;
                    copied += rows.len() as u64;
                    progress(done, total);
                }
            }
            None => {
                let mut stmt = src.prepare(&format!("SELECT {cols} FROM {}", t.name))?;
                let rows = read_rows(&mut stmt, t, i64::MIN)?;
                let tx = pg.transaction().await?;
                // Whole or nothing: a table the ladder seeded (the alert
                // cursor) or a half-copied one is replaced.
                tx.execute(&format!("DELETE FROM {}", t.name), &[]).await?;
                for part in rows.chunks(chunk.max(1)) {
                    insert(&tx, t, part).await?;
                }
                tx.execute(
                    "INSERT INTO migrate_store_progress (table_name, last_key) VALUES ($1, 0)
                     ON CONFLICT (table_name) DO NOTHING",
                    &[&t.name],
                )
                .await?;
                tx.commit().await?;
                done += rows.len() as u64;
                copied += rows.len() as u64;
                progress(done, total);
            }
        }
        if t.identity {
            pg.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST((SELECT max(id) FROM {0}), 1),
                         (SELECT max(id) FROM {0}) IS NOT NULL)",
                    t.name
                ),
                &[],
            )
            .await?;
        }
        if t.name == "predictions" {
            // The copied uploads' rows in event-time order (CSV rows have no
            // entry in `predictions_event`): found in the rows, once all are in.
            pg.batch_execute(concat!("BEGIN; DELETE FROM csv_uploads; ", csv_uploads_of_rows!(), "; COMMIT")).await?;
        }
        pg.execute("UPDATE migrate_store_progress SET done = true WHERE table_name = $1", &[&t.name]).await?;
        pg.execute(
            "INSERT INTO migrate_store_progress (table_name, last_key, done) VALUES ($1, 0, true)
             ON CONFLICT (table_name) DO NOTHING",
            &[&t.name],
        )
        .await?;
    }
    let mut tables = Vec::new();
    for t in TABLES {
        tables.push(verify(&src, &pg, t).await?);
    }
    Ok(CopyReport { copied, tables })
}

fn read_rows(stmt: &mut rusqlite::Statement<'_>, t: &Table, after: i64) -> Result<Vec<Vec<Value>>> {
    let n = t.columns.len();
    let map = |r: &rusqlite::Row<'_>| (0..n).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<Vec<_>>>();
    let rows = if t.key.is_some() { stmt.query_map([after], map)? } else { stmt.query_map([], map)? };
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One multi-row insert (`unnest` of one typed array per column).
async fn insert(tx: &tokio_postgres::Transaction<'_>, t: &Table, rows: &[Vec<Value>]) -> Result<()> {
    let mut arrays: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut select = Vec::new();
    let mut types = Vec::new();
    for (i, (name, kind)) in t.columns.iter().enumerate() {
        let bad = |v: &Value| Error::Internal(format!("{}.{name}: unexpected value {v:?}", t.name));
        match kind {
            Int => {
                let col = rows
                    .iter()
                    .map(|r| match &r[i] {
                        Value::Null => Ok(None),
                        Value::Integer(v) => Ok(Some(*v)),
                        other => Err(bad(other)),
                    })
                    .collect::<Result<Vec<Option<i64>>>>()?;
                arrays.push(Box::new(col));
                types.push("int8[]");
            }
            Real => {
                let col = rows
                    .iter()
                    .map(|r| match &r[i] {
                        Value::Null => Ok(None),
                        Value::Real(v) => Ok(Some(*v)),
                        Value::Integer(v) => Ok(Some(*v as f64)),
                        other => Err(bad(other)),
                    })
                    .collect::<Result<Vec<Option<f64>>>>()?;
                arrays.push(Box::new(col));
                types.push("float8[]");
            }
            Text | Time => {
                let col = rows
                    .iter()
                    .map(|r| match &r[i] {
                        Value::Null => Ok(None),
                        Value::Text(v) => Ok(Some(v.clone())),
                        other => Err(bad(other)),
                    })
                    .collect::<Result<Vec<Option<String>>>>()?;
                arrays.push(Box::new(col));
                types.push("text[]");
            }
        }
        select.push(match kind {
            Time => format!("(c{i}::timestamp AT TIME ZONE 'UTC')"),
            _ => format!("c{i}"),
        });
    }
    let args: Vec<String> = types.iter().enumerate().map(|(i, ty)| format!("${}::{ty}", i + 1)).collect();
    let aliases: Vec<String> = (0..t.columns.len()).map(|i| format!("c{i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({})",
        t.name,
        quoted(t.columns),
        select.join(", "),
        args.join(", "),
        aliases.join(", ")
    );
    let refs: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(|a| &**a as &(dyn ToSql + Sync)).collect();
    tx.execute(&sql, &refs).await?;
    Ok(())
}

/// One value as both sides hash it.
fn canonical(out: &mut Vec<u8>, v: Option<String>) {
    match v {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&u64::MAX.to_le_bytes()),
    }
}

/// Counts and hashes `t` in both databases; an error if they differ.
async fn verify(src: &rusqlite::Connection, pg: &Client, t: &Table) -> Result<TableReport> {
    let mut hash_src = Sha256::new();
    let mut rows_src = 0u64;
    {
        let mut stmt = src.prepare(&format!("SELECT {} FROM {} ORDER BY {}", quoted(t.columns), t.name, t.order))?;
        let mut rows = stmt.query([])?;
        let mut buf = Vec::new();
        while let Some(r) = rows.next()? {
            buf.clear();
            for (i, (_, kind)) in t.columns.iter().enumerate() {
                let v = match (r.get::<_, Value>(i)?, kind) {
                    (Value::Null, _) => None,
                    (Value::Integer(n), Real) => Some(format!("{:?}", n as f64)),
                    (Value::Integer(n), _) => Some(n.to_string()),
                    (Value::Real(x), _) => Some(format!("{x:?}")),
                    (Value::Text(s), _) => Some(s),
                    (Value::Blob(b), _) => Some(format!("{b:?}")),
                };
                canonical(&mut buf, v);
            }
            hash_src.update(&buf);
            rows_src += 1;
        }
    }
    let select: Vec<String> = t
        .columns
        .iter()
        .map(|(c, kind)| match kind {
            Time => format!("to_char(\"{c}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"),
            Int => format!("\"{c}\"::int8"),
            _ => format!("\"{c}\""),
        })
        .collect();
    let sql = format!("SELECT {} FROM {} ORDER BY {}", select.join(", "), t.name, t.order);
    let mut hash_pg = Sha256::new();
    let mut rows_pg = 0u64;
    let mut buf = Vec::new();
    // Read in one pass; `query` holds the table's rows (the copy is done and
    // verification is a one-off).
    for r in pg.query(&sql, &[]).await? {
        buf.clear();
        for (i, (_, kind)) in t.columns.iter().enumerate() {
            let v = match kind {
                Int => r.get::<_, Option<i64>>(i).map(|n| n.to_string()),
                Real => r.get::<_, Option<f64>>(i).map(|x| format!("{x:?}")),
                Text | Time => r.get::<_, Option<String>>(i),
            };
            canonical(&mut buf, v);
        }
        hash_pg.update(&buf);
        rows_pg += 1;
    }
    let (a, b) = (hex(&hash_src.finalize()), hex(&hash_pg.finalize()));
    if rows_src != rows_pg || a != b {
        return Err(Error::Store(format!(
            "{}: the copy differs ({rows_src} rows, checksum {a} in SQLite; {rows_pg} rows, checksum {b} in PostgreSQL)",
            t.name
        )));
    }
    Ok(TableReport { table: t.name, rows: rows_src, checksum: a })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
