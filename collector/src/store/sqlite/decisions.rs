//! Decisions, device groups and the blocks devices report, in SQLite.

use bfp_common::wire::{PushedDecision, PushedDecisions, ResponseReport, MAX_PUSHED_DECISIONS};
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::store::decisions::{
    check_group, Decision, DecisionQuery, DeviceBlock, DeviceBlocks, DeviceRefusal, NewDecision,
};
use crate::store::DeviceId;

const COLUMNS: &str = "id, device_group, address, reason, created_by, created_at, until, deleted_at, deleted_by";

fn decision_of(r: &rusqlite::Row<'_>, now: i64) -> rusqlite::Result<Decision> {
    let until: i64 = r.get(6)?;
    let deleted_at: Option<i64> = r.get(7)?;
    Ok(Decision {
        id: r.get(0)?,
        group: r.get(1)?,
        address: r.get(2)?,
        reason: r.get(3)?,
        created_by: r.get(4)?,
        created_at: r.get(5)?,
        until,
        deleted_at,
        deleted_by: r.get(8)?,
        state: Decision::state_at(deleted_at, until, now),
    })
}

fn get(conn: &Connection, id: i64, now: i64) -> Result<Option<Decision>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM decisions WHERE id = ?1"))?
        .query_row([id], |r| decision_of(r, now))
        .optional()?)
}

/// Stores a new decision and returns it; [`Error::Conflict`] when its
/// alert has made one already.
pub(super) fn add(conn: &Connection, new: &NewDecision, now: i64) -> Result<Decision> {
    let until = now.saturating_add(new.secs as i64);
    let n = conn
        .prepare_cached(
            "INSERT INTO decisions (device_group, address, reason, created_by, created_at, until, alert_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (alert_id) DO NOTHING",
        )?
        .execute(params![new.group, new.address(), new.reason, new.created_by, now, until, new.alert])?;
    if n == 0 {
        return Err(Error::Conflict(format!("alert {} has made a decision already", new.alert.unwrap_or_default())));
    }
    let id = conn.last_insert_rowid();
    get(conn, id, now)?.ok_or_else(|| Error::Internal(format!("decision {id} vanished after its insert")))
}

/// Decisions, newest first: those in force, or (`all`) every one.
pub(super) fn list(conn: &Connection, q: &DecisionQuery, now: i64) -> Result<Vec<Decision>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM decisions WHERE (?1 IS NULL OR device_group = ?1)
             AND (?4 OR (deleted_at IS NULL AND until > ?2)) ORDER BY id DESC LIMIT ?3"
    );
    let limit = i64::from(q.limit.max(1));
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params![q.group, now, limit, q.all], |r| decision_of(r, now))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Revokes decision `id` on behalf of `by`: agents lift it at their next
/// fetch. An unknown id is [`Error::NotFound`], a second delete
/// [`Error::Conflict`].
pub(super) fn delete(conn: &Connection, id: i64, by: &str, now: i64) -> Result<Decision> {
    let Some(decision) = get(conn, id, now)? else {
        return Err(Error::NotFound(format!("no decision {id}")));
    };
    if decision.deleted_at.is_some() {
        return Err(Error::Conflict(format!("decision {id} was deleted already")));
    }
    conn.prepare_cached("UPDATE decisions SET deleted_at = ?2, deleted_by = ?3 WHERE id = ?1")?
        .execute(params![id, now, by])?;
    get(conn, id, now)?.ok_or_else(|| Error::Internal(format!("decision {id} vanished after its delete")))
}

/// The decisions in force for `device`'s group, newest first, at most
/// [`MAX_PUSHED_DECISIONS`].
pub(super) fn pushed(conn: &Connection, device: &DeviceId, now: i64) -> Result<PushedDecisions> {
    let group: String = conn
        .prepare_cached("SELECT device_group FROM devices WHERE id = ?1")?
        .query_row([device.id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::Unauthorized("the device was revoked".into()))?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, address, until, reason FROM decisions
         WHERE device_group = ?1 AND deleted_at IS NULL AND until > ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let decisions = stmt
        .query_map(params![group, now, MAX_PUSHED_DECISIONS as i64], |r| {
            Ok(PushedDecision { id: r.get(0)?, address: r.get(1)?, until: r.get(2)?, reason: r.get(3)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(PushedDecisions { group, decisions })
}

/// Puts device `name` in `group`.
pub(super) fn set_group(conn: &Connection, name: &str, group: &str) -> Result<()> {
    check_group(group)?;
    let n =
        conn.prepare_cached("UPDATE devices SET device_group = ?2 WHERE name = ?1")?.execute(params![name, group])?;
    if n == 0 {
        return Err(Error::NotFound(format!("no device named {name:?}")));
    }
    Ok(())
}

/// Replaces what `device` reported of its response with `report` (inside
/// the ingest's transaction): the heartbeat is the device's whole state, so
/// a block it no longer lists has ended. No report: the response is off.
pub(super) fn record_response(
    tx: &Connection,
    device: i64,
    report: Option<&ResponseReport>,
    now: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM device_blocks WHERE device_id = ?1")?.execute([device])?;
    tx.prepare_cached("DELETE FROM device_refusals WHERE device_id = ?1")?.execute([device])?;
    let Some(report) = report else {
        tx.prepare_cached("DELETE FROM device_responses WHERE device_id = ?1")?.execute([device])?;
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO device_responses (device_id, backend, reported_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE SET backend = excluded.backend, reported_at = excluded.reported_at",
    )?
    .execute(params![device, report.firewall, now])?;
    let mut block = tx.prepare_cached(
        "INSERT OR REPLACE INTO device_blocks (device_id, address, since, until, reason, origin, decision_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for b in &report.active {
        block.execute(params![device, b.address, b.since, b.until, b.reason, b.origin.as_str(), b.decision])?;
    }
    let mut refusal = tx.prepare_cached(
        "INSERT OR REPLACE INTO device_refusals (device_id, decision_id, address, reason) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for r in &report.refused {
        refusal.execute(params![device, r.decision, r.address, r.reason])?;
    }
    Ok(())
}

/// What device `name` last reported of its response.
pub(super) fn device_blocks(conn: &Connection, name: &str) -> Result<DeviceBlocks> {
    let (id, group): (i64, String) = conn
        .prepare_cached("SELECT id, device_group FROM devices WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no device named {name:?}")))?;
    let response: Option<(String, i64)> = conn
        .prepare_cached("SELECT backend, reported_at FROM device_responses WHERE device_id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let blocks = conn
        .prepare_cached(
            "SELECT address, since, until, reason, origin, decision_id FROM device_blocks WHERE device_id = ?1
             ORDER BY since DESC, address",
        )?
        .query_map([id], |r| {
            Ok(DeviceBlock {
                address: r.get(0)?,
                since: r.get(1)?,
                until: r.get(2)?,
                reason: r.get(3)?,
                origin: r.get(4)?,
                decision: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let refused = conn
        .prepare_cached(
            "SELECT decision_id, address, reason FROM device_refusals WHERE device_id = ?1 ORDER BY decision_id",
        )?
        .query_map([id], |r| Ok(DeviceRefusal { decision: r.get(0)?, address: r.get(1)?, reason: r.get(2)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(DeviceBlocks {
        device: name.to_string(),
        group,
        dry_run: response.as_ref().is_some_and(|(b, _)| b == "dry-run"),
        backend: response.as_ref().map(|(b, _)| b.clone()),
        reported_at: response.map(|(_, at)| at),
        blocks,
        refused,
    })
}

#[cfg(test)]
mod tests {
    use crate::store::decisions::{DecisionQuery, NewDecision};
    use bfp_common::wire::{ActiveBlock, Batch, BlockOrigin, Heartbeat, RefusedDecision, ResponseReport};

    fn new(address: &str, group: &str) -> NewDecision {
        NewDecision::parse(address, "1h", group, "seen on pi-1", "root").unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_gets_its_decisions_in_force_and_a_delete_revokes() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            store.add_device("pi-1".into()).await.unwrap();
            store.add_device("pi-2".into()).await.unwrap();
            store.set_device_group("pi-2".into(), "edge".into()).await.unwrap();
            let a = store.add_decision(new("198.51.100.66", "default")).await.unwrap();
            let b = store.add_decision(new("203.0.113.0/24", "edge")).await.unwrap();
            assert_eq!((a.state, a.until - a.created_at), ("active", 3600));
            let token1 = store.devices().await.unwrap();
            assert_eq!(token1.iter().map(|d| d.group.as_str()).collect::<Vec<_>>(), ["default", "edge"]);

            let pi1 = crate::store::DeviceId { id: 1, name: "pi-1".into() };
            let pi2 = crate::store::DeviceId { id: 2, name: "pi-2".into() };
            let pushed = store.pushed_decisions(pi2.clone()).await.unwrap();
            assert_eq!(pushed.group, "edge");
            assert_eq!(pushed.decisions.iter().map(|d| d.address.as_str()).collect::<Vec<_>>(), ["203.0.113.0/24"]);
            assert_eq!(store.pushed_decisions(pi1).await.unwrap().decisions[0].id, a.id);

            let deleted = store.delete_decision(b.id, "root".into()).await.unwrap();
            assert_eq!((deleted.state, deleted.deleted_by.as_deref()), ("deleted", Some("root")));
            assert!(store.pushed_decisions(pi2).await.unwrap().decisions.is_empty());
            assert!(matches!(store.delete_decision(b.id, "root".into()).await, Err(crate::Error::Conflict(_))));
            assert!(matches!(store.delete_decision(99, "root".into()).await, Err(crate::Error::NotFound(_))));

            let active = store.decisions(DecisionQuery { limit: 10, ..Default::default() }).await.unwrap();
            assert_eq!(active.iter().map(|d| d.id).collect::<Vec<_>>(), [a.id]);
            let all = store.decisions(DecisionQuery { all: true, limit: 10, ..Default::default() }).await.unwrap();
            assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), [b.id, a.id]);
            let edge =
                store.decisions(DecisionQuery { group: Some("edge".into()), all: true, limit: 10 }).await.unwrap();
            assert_eq!(edge.len(), 1);
            assert!(matches!(
                store.set_device_group("nobody".into(), "edge".into()).await,
                Err(crate::Error::NotFound(_))
            ));
            assert!(matches!(
                store.set_device_group("pi-1".into(), "a b".into()).await,
                Err(crate::Error::BadInput(_))
            ));
            store.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_heartbeat_replaces_the_blocks_a_device_reported() {
        for fresh in crate::store::backends::each().await {
            eprintln!("backend: {}", fresh.name);
            let store = fresh.store.clone();
            store.add_device("pi-1".into()).await.unwrap();
            let pi1 = crate::store::DeviceId { id: 1, name: "pi-1".into() };
            let block = |address: &str, origin, decision| ActiveBlock {
                address: address.into(),
                since: 1_700_000_000,
                until: 1_700_003_600,
                reason: "287 failed logins".into(),
                origin,
                decision,
            };
            let beat = |response: Option<ResponseReport>| Batch {
                seq: 0,
                heartbeat: Heartbeat { response, ..Heartbeat::default() },
                records: vec![],
            };
            let none = store.device_blocks("pi-1".into()).await.unwrap();
            assert_eq!((none.backend, none.blocks.len()), (None, 0));

            let report = ResponseReport {
                firewall: "nftables".into(),
                active: vec![
                    block("198.51.100.66", BlockOrigin::Agent, None),
                    block("203.0.113.0/24", BlockOrigin::Collector, Some(4)),
                ],
                refused: vec![RefusedDecision {
                    decision: 5,
                    address: "192.0.2.0/24".into(),
                    reason: "allow-list 192.0.2.0/24 covers it".into(),
                }],
                ..ResponseReport::default()
            };
            store.ingest(pi1.clone(), beat(Some(report))).await.unwrap();
            let got = store.device_blocks("pi-1".into()).await.unwrap();
            assert_eq!((got.backend.as_deref(), got.dry_run, got.group.as_str()), (Some("nftables"), false, "default"));
            assert_eq!(got.blocks.len(), 2);
            let decided = got.blocks.iter().find(|b| b.origin == "collector").unwrap();
            assert_eq!((decided.address.as_str(), decided.decision), ("203.0.113.0/24", Some(4)));
            assert_eq!(got.refused[0].decision, 5);

            // The next heartbeat lists one block: the other has ended.
            let report = ResponseReport {
                firewall: "dry-run".into(),
                active: vec![block("198.51.100.66", BlockOrigin::Agent, None)],
                ..ResponseReport::default()
            };
            store.ingest(pi1.clone(), beat(Some(report))).await.unwrap();
            let got = store.device_blocks("pi-1".into()).await.unwrap();
            assert_eq!((got.blocks.len(), got.refused.len(), got.dry_run), (1, 0, true));
            // An agent with its response off reports nothing: nothing is blocked.
            store.ingest(pi1, beat(None)).await.unwrap();
            let got = store.device_blocks("pi-1".into()).await.unwrap();
            assert_eq!((got.backend, got.blocks.len()), (None, 0));
            assert!(matches!(store.device_blocks("nobody".into()).await, Err(crate::Error::NotFound(_))));
            store.shutdown().await;
        }
    }
}
