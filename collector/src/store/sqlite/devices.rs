//! Devices and ingest in SQLite: the `devices` table, and agents' batches
//! grouped into the writer's transactions, each in its own savepoint.

use bfp_common::wire::{Batch, Heartbeat};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::writer::{insert_rows, CounterDelta, RollupDelta};
use crate::error::{Error, Result};
use crate::store::devices::{check_name, new_token, token_hash, DeviceId, DeviceInfo, IngestOutcome};

/// Creates device `name` (or gives a revoked one a new token) and returns
/// its token, which is not stored anywhere.
pub(super) fn add_device(conn: &Connection, name: &str) -> Result<String> {
    check_name(name)?;
    let token = new_token()?;
    let hash = token_hash(&token);
    let revoked: Option<Option<String>> =
        conn.query_row("SELECT revoked_at FROM devices WHERE name = ?1", [name], |r| r.get(0)).optional()?;
    match revoked {
        None => {
            conn.execute("INSERT INTO devices (name, token_hash) VALUES (?1, ?2)", params![name, hash])?;
        }
        // Re-adding a revoked device keeps its history and its `last_seq`, so
        // the same agent can resume with the new token.
        Some(Some(_)) => {
            conn.execute("UPDATE devices SET token_hash = ?2, revoked_at = NULL WHERE name = ?1", params![name, hash])?;
        }
        Some(None) => return Err(Error::Conflict(format!("device {name:?} already exists (revoke it first)"))),
    }
    Ok(token)
}

/// Revokes device `name`: its token stops working at once.
pub(super) fn revoke_device(conn: &Connection, name: &str) -> Result<()> {
    let n =
        conn.execute("UPDATE devices SET revoked_at = datetime('now') WHERE name = ?1 AND revoked_at IS NULL", [name])?;
    if n == 0 {
        return Err(Error::NotFound(format!("no active device named {name:?}")));
    }
    Ok(())
}

/// Every device, by name.
pub(super) fn list_devices(conn: &Connection) -> Result<Vec<DeviceInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, created_at, revoked_at, last_seen, agent_version, model_version, spool_depth, dropped,
                lines_read, last_error, last_seq, batches, records, device_group
         FROM devices ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(DeviceInfo {
            name: r.get(0)?,
            created: r.get(1)?,
            revoked: r.get(2)?,
            last_seen: r.get(3)?,
            agent_version: r.get(4)?,
            model_version: r.get(5)?,
            spool_depth: r.get::<_, i64>(6)? as u64,
            dropped: r.get::<_, i64>(7)? as u64,
            lines_read: r.get::<_, i64>(8)? as u64,
            last_error: r.get(9)?,
            last_seq: r.get::<_, i64>(10)? as u64,
            batches: r.get::<_, i64>(11)? as u64,
            records: r.get::<_, i64>(12)? as u64,
            group: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The active device holding `token`, if any.
pub(super) fn authenticate(conn: &Connection, token: &str) -> Result<Option<DeviceId>> {
    let hash = token_hash(token);
    Ok(conn
        .prepare_cached("SELECT id, name FROM devices WHERE token_hash = ?1 AND revoked_at IS NULL")?
        .query_row([hash], |r| Ok(DeviceId { id: r.get(0)?, name: r.get(1)? }))
        .optional()?)
}

pub(super) struct IngestOp {
    pub(super) device: DeviceId,
    pub(super) batch: Batch,
    pub(super) reply: oneshot::Sender<Result<IngestOutcome>>,
}

impl IngestOp {
    /// Records in the batch (for the writer's group size).
    pub(super) fn records(&self) -> usize {
        self.batch.records.len().max(1)
    }
}

/// Runs a group of ingests in one transaction (on the writer thread), each
/// in its own savepoint so one refused batch does not undo the others;
/// returns the rows stored, or `Err` if the transaction failed.
pub(super) fn run_ingests(
    conn: &mut Connection,
    ops: Vec<IngestOp>,
    tail: &std::sync::Mutex<super::alerts::AlertTail>,
) -> std::result::Result<u64, ()> {
    let mut answers = Vec::with_capacity(ops.len());
    // The stored rows, handed to the alert evaluation once committed.
    let mut stored: Vec<(Vec<i64>, Vec<crate::store::NewPrediction>)> = Vec::new();
    let mut stamp = String::new();
    let committed = (|| -> rusqlite::Result<()> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        stamp = super::writer::stamp(&tx)?;
        for IngestOp { device, batch, reply } in ops {
            let mut sp = tx.savepoint()?;
            let mut rows = None;
            let result = ingest_in(&mut sp, &device, batch, &stamp, &mut rows);
            if result.is_ok() {
                sp.commit()?;
                stored.extend(rows);
            } else {
                sp.rollback()?;
                sp.finish()?;
            }
            answers.push((reply, result));
        }
        tx.commit()
    })();
    match committed {
        Ok(()) => {
            if !stored.is_empty() {
                let seen = super::alerts::unix_seconds(&stamp);
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                for (ids, rows) in stored {
                    for (id, row) in ids.into_iter().zip(rows) {
                        tail.feed(id, seen, row);
                    }
                }
            }
            let mut rows = 0;
            for (reply, result) in answers {
                rows += result.as_ref().map_or(0, |o| o.stored);
                let _ = reply.send(result.map_err(Error::into_store));
            }
            Ok(rows)
        }
        Err(e) => {
            tracing::error!(error = %e, "ingest group rolled back");
            for (reply, _) in answers {
                let _ = reply.send(Err(Error::Store(e.to_string())));
            }
            Err(())
        }
    }
}

fn update_heartbeat(tx: &rusqlite::Connection, id: i64, hb: &Heartbeat) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE devices SET last_seen = datetime('now'), agent_version = ?2, model_version = ?3, spool_depth = ?4,
             dropped = ?5, lines_read = ?6, last_error = ?7 WHERE id = ?1",
    )?
    .execute(params![
        id,
        hb.agent_version,
        hb.model_version,
        hb.spool_depth.min(i64::MAX as u64) as i64,
        hb.dropped.min(i64::MAX as u64) as i64,
        hb.lines_read.min(i64::MAX as u64) as i64,
        hb.last_error,
    ])?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    super::decisions::record_response(tx, id, hb.response.as_ref(), now)?;
    Ok(())
}

/// Stores one batch inside `tx`, its rows stamped `stamp`; the rows it
/// stored and their ids are left in `stored`.
fn ingest_in(
    tx: &mut rusqlite::Savepoint<'_>,
    device: &DeviceId,
    batch: Batch,
    stamp: &str,
    stored: &mut Option<(Vec<i64>, Vec<crate::store::NewPrediction>)>,
) -> Result<IngestOutcome> {
    // Checked again inside the transaction: a revocation between the
    // request's authentication and now wins.
    let row: Option<(i64, Option<String>)> = tx
        .prepare_cached("SELECT last_seq, revoked_at FROM devices WHERE id = ?1")?
        .query_row([device.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((last_seq, None)) = row else {
        return Err(Error::Unauthorized("the device was revoked".into()));
    };
    let last_seq = last_seq as u64;
    let seq = batch.seq;
    // A batch without records is a heartbeat: it never consumes a sequence
    // number, so it cannot make a later record batch look like a retry.
    if !batch.records.is_empty() && seq <= last_seq {
        // A retry of something stored: refresh the device's state only.
        update_heartbeat(tx, device.id, &batch.heartbeat)?;
        return Ok(IngestOutcome { duplicate: true, stored: 0, last_seq });
    }
    update_heartbeat(tx, device.id, &batch.heartbeat)?;
    if batch.records.is_empty() {
        return Ok(IngestOutcome { duplicate: false, stored: 0, last_seq });
    }
    let rows = crate::store::devices::batch_predictions(device, batch);
    let count = rows.len() as u64;
    let mut delta = CounterDelta::default();
    let mut rollup = RollupDelta::default();
    let ids = insert_rows(tx, &rows, stamp, &mut delta, &mut rollup)?;
    delta.apply(tx)?;
    rollup.apply_at(tx, stamp)?;
    tx.prepare_cached("UPDATE devices SET last_seq = ?2, batches = batches + 1, records = records + ?3 WHERE id = ?1")?
        .execute(params![device.id, seq.min(i64::MAX as u64) as i64, count as i64])?;
    *stored = Some((ids, rows));
    Ok(IngestOutcome { duplicate: false, stored: count, last_seq: seq })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::devices::TOKEN_PREFIX;
    use crate::store::ResultsQuery;
    use crate::store::Source;
    use bfp_common::wire::Record;

    fn record(user: &str) -> Record {
        crate::store::devices::tests::session_record(user)
    }

    fn batch(seq: u64, n: usize) -> Batch {
        Batch {
            seq,
            heartbeat: Heartbeat { agent_version: "0.1.0".into(), model_version: "m".into(), ..Default::default() },
            records: (0..n).map(|i| record(&format!("u{i}"))).collect(),
        }
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("a.db")).unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        let t1 = add_device(&conn, "pi-1").unwrap();
        let t2 = add_device(&conn, "pi-2").unwrap();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), TOKEN_PREFIX.len() + 64);
        let stored: String =
            conn.query_row("SELECT token_hash FROM devices WHERE name='pi-1'", [], |r| r.get(0)).unwrap();
        assert_ne!(stored, t1);
        assert_eq!(authenticate(&conn, &t1).unwrap().unwrap().name, "pi-1");
        assert_eq!(authenticate(&conn, "bfp_wrong").unwrap(), None);
        assert!(matches!(add_device(&conn, "pi-1"), Err(Error::Conflict(_))));
        assert!(matches!(add_device(&conn, "bad name"), Err(Error::BadInput(_))));
        revoke_device(&conn, "pi-1").unwrap();
        assert_eq!(authenticate(&conn, &t1).unwrap(), None);
        assert!(matches!(revoke_device(&conn, "pi-1"), Err(Error::NotFound(_))));
        let t3 = add_device(&conn, "pi-1").unwrap();
        assert_eq!(authenticate(&conn, &t3).unwrap().unwrap().name, "pi-1");
        assert_eq!(authenticate(&conn, &t1).unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_stored_once_and_heartbeats_update_the_fleet() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            let token = store.add_device("pi-1".into()).await.unwrap();
            let dev = store.authenticate(token).await.unwrap().unwrap();
            let first = store.ingest(dev.clone(), batch(1, 3)).await.unwrap();
            assert_eq!(first, IngestOutcome { duplicate: false, stored: 3, last_seq: 1 });
            let again = store.ingest(dev.clone(), batch(1, 3)).await.unwrap();
            assert_eq!(again, IngestOutcome { duplicate: true, stored: 0, last_seq: 1 });
            let mut hb = batch(0, 0);
            hb.heartbeat.dropped = 5;
            hb.heartbeat.spool_depth = 2;
            assert!(!store.ingest(dev.clone(), hb).await.unwrap().duplicate);
            assert_eq!(store.ingest(dev.clone(), batch(2, 2)).await.unwrap().stored, 2);

            let page = store.results(ResultsQuery { limit: 100, ..Default::default() }).await.unwrap();
            assert_eq!(page.count, 5);
            let r = &page.results[0];
            assert_eq!(r.source, Source::Agent);
            assert_eq!(r.device.as_deref(), Some("pi-1"));
            assert_eq!(r.agent.kind.as_deref(), Some("session"));
            assert_eq!(r.agent.started_at.as_deref(), Some("2023-11-14 22:13:20"));
            let fleet = store.devices().await.unwrap();
            assert_eq!(fleet.len(), 1);
            assert_eq!((fleet[0].records, fleet[0].batches, fleet[0].last_seq), (5, 2, 2));
            assert_eq!(fleet[0].agent_version.as_deref(), Some("0.1.0"));
            assert!(fleet[0].last_seen.is_some());

            store.revoke_device("pi-1".into()).await.unwrap();
            assert!(matches!(store.ingest(dev, batch(3, 1)).await, Err(Error::Unauthorized(_))));
            assert_eq!(store.totals().await.unwrap().total(), 5);
            store.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_are_grouped_without_mixing_their_fates() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            let mut devices = Vec::new();
            for i in 0..5 {
                let token = store.add_device(format!("d{i}")).await.unwrap();
                devices.push(store.authenticate(token).await.unwrap().unwrap());
            }
            store.revoke_device("d4".into()).await.unwrap();
            let mut tasks = Vec::new();
            for (i, dev) in devices.iter().enumerate() {
                for seq in 1..=10u64 {
                    // Every batch twice, at once: one is stored, one is a retry.
                    for _ in 0..2 {
                        let (store, dev) = (store.clone(), dev.clone());
                        tasks.push(tokio::spawn(async move { (i, store.ingest(dev, batch(seq, 3)).await) }));
                    }
                }
            }
            let mut stored = [0u64; 5];
            let mut duplicates = [0u64; 5];
            for t in tasks {
                let (i, r) = t.await.unwrap();
                match r {
                    Ok(o) if o.duplicate => duplicates[i] += 1,
                    Ok(o) => stored[i] += o.stored,
                    Err(e) => assert!(i == 4 && matches!(e, Error::Unauthorized(_)), "{e}"),
                }
            }
            // Batches of one device may arrive out of order here (no real agent
            // does that): a lower seq after a higher one counts as a retry.
            for i in 0..4 {
                assert!(stored[i] >= 3 && stored[i] % 3 == 0 && stored[i] / 3 + duplicates[i] == 20, "device {i}");
            }
            assert_eq!(stored[4], 0);
            let total: u64 = stored.iter().sum();
            assert_eq!(store.totals().await.unwrap().total(), total);
            let fleet = store.devices().await.unwrap();
            assert_eq!(fleet.iter().map(|d| d.records).sum::<u64>(), total);
            assert!(fleet.iter().take(4).all(|d| d.last_seq == 10));
            store.shutdown().await;
        }
    }
}
