//! The notification outbox in SQLite: rows written by the alert pass (in
//! its transaction), read in order per destination, and marked delivered or
//! failed by the delivery task on the writer's connection.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::{Error, Result};
use crate::store::alerts::Alert;
use crate::store::outbox::{AlertEvent, DestinationCounts, Notification, OutboxMessage};

/// Tells `destinations` of what happened to the alerts a pass touched: a
/// new alert is raised, an existing one escalates when its count reaches
/// twice the count last told; a resolved alert says nothing (its rule's
/// cool-down is meant to keep it quiet). Only an event reads the alert
/// whole. Returns the rows written.
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    touched: &[(i64, super::alerts::Touched)],
    destinations: &[String],
    now: i64,
) -> Result<u64> {
    let mut written = 0;
    for &(id, t) in touched {
        let Some(event) = event_of(t) else {
            if t.told == 0 {
                // An alert from before notifications: start counting here.
                tx.prepare_cached("UPDATE alerts SET notified_count = ?2 WHERE id = ?1")?
                    .execute(params![id, t.count])?;
            }
            continue;
        };
        tx.prepare_cached("UPDATE alerts SET notified_count = ?2 WHERE id = ?1")?.execute(params![id, t.count])?;
        if !destinations.is_empty() {
            let alert = super::alerts::get(tx, id)?;
            written += write_rows(tx, event, &alert, destinations, now)?;
        }
    }
    Ok(written)
}

/// What is worth telling of an alert a pass touched, if anything.
fn event_of(t: super::alerts::Touched) -> Option<AlertEvent> {
    if t.opened {
        Some(AlertEvent::Raised)
    } else if t.told > 0 && t.count >= t.told.saturating_mul(2) && !t.resolved {
        Some(AlertEvent::Escalated)
    } else {
        None
    }
}

/// The count last told of an alert after [`enqueue`] saw it.
pub(super) fn told_after(t: super::alerts::Touched) -> i64 {
    if t.told == 0 || event_of(t).is_some() {
        t.count
    } else {
        t.told
    }
}

fn write_rows(tx: &Connection, event: AlertEvent, alert: &Alert, destinations: &[String], now: i64) -> Result<u64> {
    let notification = Notification { id: Notification::id_of(event, alert), event, alert: alert.clone() };
    let payload = serde_json::to_string(&notification).map_err(|e| Error::Internal(e.to_string()))?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO outbox (destination, event_id, alert_id, payload, created_at, next_attempt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (destination, event_id) DO NOTHING",
    )?;
    let mut written = 0;
    for d in destinations {
        written += stmt.execute(params![d, notification.id, alert.id, payload, now])? as u64;
    }
    Ok(written)
}

pub(super) fn head(c: &Connection, destination: &str, limit: u32, max_attempts: u32) -> Result<Vec<OutboxMessage>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, payload, attempts, next_attempt FROM outbox
         WHERE destination = ?1 AND delivered_at IS NULL AND attempts < ?3 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![destination, limit, max_attempts], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (row, payload, attempts, next_attempt) = row?;
        let notification: Notification = serde_json::from_str(&payload)
            .map_err(|e| Error::Internal(format!("outbox row {row} holds a bad payload: {e}")))?;
        out.push(OutboxMessage {
            row,
            destination: destination.to_string(),
            notification,
            attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt,
        });
    }
    Ok(out)
}

fn status_row(tx: &Connection, name: &str) -> Result<()> {
    tx.prepare_cached("INSERT INTO destination_status (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?
        .execute([name])?;
    Ok(())
}

pub(super) fn delivered(conn: &mut Connection, row: i64, now: i64) -> Result<()> {
    let tx = conn.transaction()?;
    let name: Option<String> = tx
        .query_row(
            "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE id = ?1 AND delivered_at IS NULL
             RETURNING destination",
            params![row, now],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(name) = name {
        status_row(&tx, &name)?;
        tx.execute(
            "UPDATE destination_status SET delivered = delivered + 1, last_success_at = ?2 WHERE name = ?1",
            params![name, now],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn failed(conn: &mut Connection, row: i64, error: &str, next_attempt: i64, now: i64) -> Result<()> {
    let tx = conn.transaction()?;
    let name: Option<String> = tx
        .query_row(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3
             WHERE id = ?1 AND delivered_at IS NULL RETURNING destination",
            params![row, error, next_attempt],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(name) = name {
        record_failure(&tx, &name, error, now)?;
    }
    tx.commit()?;
    Ok(())
}

fn record_failure(tx: &Connection, name: &str, error: &str, now: i64) -> Result<()> {
    status_row(tx, name)?;
    tx.execute(
        "UPDATE destination_status SET failed = failed + 1, last_error = ?2, last_error_at = ?3 WHERE name = ?1",
        params![name, error, now],
    )?;
    Ok(())
}

pub(super) fn tested(
    conn: &mut Connection,
    name: &str,
    outcome: &std::result::Result<(), String>,
    now: i64,
) -> Result<()> {
    let tx = conn.transaction()?;
    match outcome {
        Ok(()) => {
            status_row(&tx, name)?;
            tx.execute("UPDATE destination_status SET last_success_at = ?2 WHERE name = ?1", params![name, now])?;
        }
        Err(e) => record_failure(&tx, name, e, now)?,
    }
    tx.commit()?;
    Ok(())
}

/// Deletes delivered rows delivered before `before` and dead rows (tried
/// `max_attempts` times) written before it.
pub(super) fn prune(conn: &mut Connection, before: i64, max_attempts: u32) -> Result<u64> {
    let n = conn.execute(
        "DELETE FROM outbox WHERE (delivered_at IS NOT NULL AND delivered_at < ?1)
             OR (delivered_at IS NULL AND attempts >= ?2 AND created_at < ?1)",
        params![before, max_attempts],
    )?;
    Ok(n as u64)
}

pub(super) fn counts(c: &Connection, max_attempts: u32) -> Result<Vec<DestinationCounts>> {
    let mut stmt = c.prepare_cached(
        "SELECT n.name, COALESCE(s.delivered, 0), COALESCE(s.failed, 0),
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts < ?1),
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts > 0 AND o.attempts < ?1),
                (SELECT COALESCE(SUM(o.attempts), 0) FROM outbox o
                     WHERE o.destination = n.name AND o.delivered_at IS NULL AND o.attempts < ?1),
                datetime(s.last_success_at, 'unixepoch'), s.last_error, datetime(s.last_error_at, 'unixepoch'),
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts >= ?1)
         FROM (SELECT name FROM destination_status
               UNION SELECT DISTINCT destination FROM outbox WHERE delivered_at IS NULL) n
         LEFT JOIN destination_status s ON s.name = n.name ORDER BY n.name",
    )?;
    let n = |v: i64| v.max(0) as u64;
    let rows = stmt.query_map([max_attempts], |r| {
        Ok(DestinationCounts {
            name: r.get(0)?,
            delivered: n(r.get(1)?),
            failed: n(r.get(2)?),
            pending: n(r.get(3)?),
            retrying: n(r.get(4)?),
            retries_pending: n(r.get(5)?),
            last_success_at: r.get(6)?,
            last_error: r.get(7)?,
            last_error_at: r.get(8)?,
            dead: n(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::alerts::CollectorConfig;
    use crate::store::outbox::AlertEvent;

    use crate::store::backends::failed_login_attempt as attempt;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raised_and_doubled_alerts_write_one_row_per_destination_in_the_pass() {
        for fresh in crate::store::backends::each().await {
            let (name, store) = (fresh.name, &fresh.store);
            let config = Arc::new(
                CollectorConfig::parse(
                    "[[alert.rule]]\nname = \"brute\"\n\
                     [[destinations]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
                     [[destinations]]\nname = \"b\"\ntype = \"syslog\"\naddress = \"127.0.0.1:9\"\n",
                )
                .unwrap()
                .alert,
            );
            let ids = |heads: &[crate::store::outbox::OutboxMessage]| {
                heads.iter().map(|m| m.notification.id.clone()).collect::<Vec<_>>()
            };
            store.insert(vec![attempt("203.0.113.7"), attempt("203.0.113.7"), attempt("198.51.100.2")]).await.unwrap();
            let pass = store.evaluate_alerts(config.clone()).await.unwrap();
            assert_eq!((pass.opened, pass.notifications), (2, 4), "{name}");
            let head = store.outbox_head("a".into(), 10, 20).await.unwrap();
            assert_eq!(ids(&head), ["alert-1-raised", "alert-2-raised"], "{name}");
            assert_eq!(head[0].notification.alert.count, 2, "{name}");
            assert_eq!(head[0].notification.event, AlertEvent::Raised, "{name}");
            // 2 -> 3: not a doubling; 3 -> 4: twice the count told.
            store.insert(vec![attempt("203.0.113.7")]).await.unwrap();
            assert_eq!(store.evaluate_alerts(config.clone()).await.unwrap().notifications, 0, "{name}");
            store.insert(vec![attempt("203.0.113.7")]).await.unwrap();
            assert_eq!(store.evaluate_alerts(config.clone()).await.unwrap().notifications, 2, "{name}");
            let head = store.outbox_head("b".into(), 10, 20).await.unwrap();
            assert_eq!(ids(&head), ["alert-1-raised", "alert-2-raised", "alert-1-escalated-4"], "{name}");
            assert_eq!(head[2].notification.alert.count, 4, "{name}");

            // Delivered rows leave the head; failures count and wait.
            store.outbox_delivered(head[0].row, 100).await.unwrap();
            store.outbox_delivered(head[0].row, 101).await.unwrap(); // a second mark changes nothing
            store.outbox_failed(head[1].row, "HTTP 500".into(), 200, 150).await.unwrap();
            let head = store.outbox_head("b".into(), 10, 20).await.unwrap();
            assert_eq!(ids(&head), ["alert-2-raised", "alert-1-escalated-4"], "{name}");
            assert_eq!((head[0].attempts, head[0].next_attempt), (1, 200), "{name}");
            let counts = store.destination_counts(20).await.unwrap();
            let b = counts.iter().find(|c| c.name == "b").unwrap();
            assert_eq!((b.delivered, b.failed, b.pending, b.retrying, b.retries_pending), (1, 1, 2, 1, 1), "{name}");
            assert_eq!(b.last_error.as_deref(), Some("HTTP 500"), "{name}");
            assert_eq!(b.last_success_at.as_deref(), Some("1970-01-01 00:01:40"), "{name}");
            assert_eq!(b.last_error_at.as_deref(), Some("1970-01-01 00:02:30"), "{name}");
            let a = counts.iter().find(|c| c.name == "a").unwrap();
            assert_eq!((a.delivered, a.pending), (0, 3), "{name}");

            // A test message's outcome shows on a destination with no rows.
            store.destination_tested("c".into(), Err("connection refused".into()), 300).await.unwrap();
            store.destination_tested("b".into(), Ok(()), 400).await.unwrap();
            let counts = store.destination_counts(20).await.unwrap();
            assert_eq!(counts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c"], "{name}");
            assert_eq!((counts[2].failed, counts[2].last_error.as_deref()), (1, Some("connection refused")), "{name}");
            assert_eq!(
                (counts[1].delivered, counts[1].last_success_at.as_deref()),
                (1, Some("1970-01-01 00:06:40")),
                "{name}"
            );
            // The alert remembers the count last told.
            assert_eq!(fresh.count("SELECT notified_count FROM alerts WHERE id = 1").await, 4, "{name}");

            // With at most 2 attempts a second failure makes a message dead: the
            // head moves past it, and it counts as dead, not pending.
            store.outbox_failed(head[0].row, "HTTP 500".into(), 300, 250).await.unwrap();
            assert_eq!(ids(&store.outbox_head("b".into(), 10, 2).await.unwrap()), ["alert-1-escalated-4"]);
            let b = store.destination_counts(2).await.unwrap().into_iter().find(|c| c.name == "b").unwrap();
            assert_eq!((b.pending, b.dead, b.failed), (1, 1, 2));
            // Pruning deletes delivered rows delivered before the limit (b's
            // first, at 100) and dead rows written before it; pending rows stay.
            assert_eq!(store.outbox_prune(100, 2).await.unwrap(), 0);
            assert_eq!(store.outbox_prune(101, 2).await.unwrap(), 1);
            assert_eq!(store.outbox_prune(i64::MAX, 2).await.unwrap(), 1);
            assert_eq!(ids(&store.outbox_head("b".into(), 10, 2).await.unwrap()), ["alert-1-escalated-4"]);
            let counts = store.destination_counts(2).await.unwrap();
            let pending: Vec<_> = counts.iter().map(|c| (c.name.as_str(), c.pending, c.dead)).collect();
            assert_eq!(&pending[..2], [("a", 3, 0), ("b", 1, 0)]);
            store.shutdown().await;
        }
    }
}
