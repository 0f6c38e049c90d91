//! The notification outbox in PostgreSQL: the same rows and rules as
//! SQLite's (`store::sqlite::outbox`), plus what several collectors on one
//! database need so that a message is never sent twice at once.
//!
//! Each destination has one sender at a time, chosen by a session-level
//! advisory lock per destination (`pg_try_advisory_lock(OUTBOX_LOCKS,
//! hashtext(name))`), not by `FOR UPDATE SKIP LOCKED`: skipping locked rows
//! would let a second collector send a destination's later messages while
//! the first still sends its earlier ones, and a destination's messages go
//! out in order. The collector that takes the lock keeps it on a connection
//! of its own (outside the pool) for as long as it runs, and reads the head
//! through that very connection, so a head is only ever read while the lock
//! is held; the other collectors' heads of that destination are empty. When
//! the holder stops or its connection breaks, the server releases the lock
//! and another collector takes the destination over at its next tick. As
//! with a crash, a message whose delivered mark had not committed is then
//! sent again, with the same id (at-least-once).

use std::collections::HashMap;

use deadpool_postgres::{ClientWrapper, Transaction};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::store::alerts::Alert;
use crate::store::outbox::{AlertEvent, DestinationCounts, Notification, OutboxMessage};

/// The first key of every destination's advisory lock (the second is the
/// hash of its name); the two-key form never meets the one-key locks of
/// migrations and id reservations.
const OUTBOX_LOCKS: i32 = 0x6266_6f62; // "bfob"

/// What a pass did to one alert, as the outbox needs it (as SQLite's).
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

/// Tells `destinations` of what happened to the alerts a pass touched, in
/// the pass's transaction: a new alert is raised, an existing one escalates
/// when its count reaches twice the count last told; a resolved alert says
/// nothing. Returns the rows written.
pub(super) async fn enqueue(
    tx: &Transaction<'_>,
    touched: &[(i64, Touched)],
    destinations: &[String],
    now: i64,
) -> Result<u64> {
    let mut written = 0;
    for &(id, t) in touched {
        let event = if t.opened {
            AlertEvent::Raised
        } else if t.told > 0 && t.count >= t.told.saturating_mul(2) && !t.resolved {
            AlertEvent::Escalated
        } else {
            if t.told == 0 {
                // An alert from before notifications: start counting here.
                tx.execute("UPDATE alerts SET notified_count = $2 WHERE id = $1", &[&id, &t.count]).await?;
            }
            continue;
        };
        tx.execute("UPDATE alerts SET notified_count = $2 WHERE id = $1", &[&id, &t.count]).await?;
        if !destinations.is_empty() {
            let alert = super::resources::get_alert(tx, id).await?;
            written += write_rows(tx, event, &alert, destinations, now).await?;
        }
    }
    Ok(written)
}

async fn write_rows(
    tx: &Transaction<'_>,
    event: AlertEvent,
    alert: &Alert,
    destinations: &[String],
    now: i64,
) -> Result<u64> {
    let notification = Notification { id: Notification::id_of(event, alert), event, alert: alert.clone() };
    let payload = serde_json::to_string(&notification).map_err(|e| Error::Internal(e.to_string()))?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (destination, event_id, alert_id, payload, created_at, next_attempt)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (destination, event_id) DO NOTHING",
        )
        .await?;
    let mut written = 0;
    for d in destinations {
        written += tx.execute(&stmt, &[d, &notification.id, &alert.id, &payload, &now]).await?;
    }
    Ok(written)
}

/// The destinations this collector sends, each with the connection holding
/// its advisory lock.
#[derive(Default)]
pub(super) struct Senders {
    held: tokio::sync::Mutex<HashMap<String, Client>>,
}

impl Senders {
    /// Drops every lock (their connections close).
    pub(super) async fn release(&self) {
        self.held.lock().await.clear();
    }
}

/// The head of `destination`'s queue if this collector is (or now becomes)
/// its sender; empty while another collector holds it.
pub(super) async fn head(
    senders: &Senders,
    url: &str,
    destination: &str,
    limit: u32,
    max_attempts: u32,
) -> Result<Vec<OutboxMessage>> {
    let mut held = senders.held.lock().await;
    if !held.contains_key(destination) {
        let client = super::connect(url).await?;
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1, hashtext($2))", &[&OUTBOX_LOCKS, &destination])
            .await?
            .get(0);
        if !locked {
            return Ok(Vec::new()); // another collector sends it
        }
        tracing::info!(destination, "this collector now sends the destination's notifications");
        held.insert(destination.to_string(), client);
    }
    let client = held.get(destination).expect("inserted above");
    let rows = match client
        .query(
            "SELECT id, payload, attempts, next_attempt FROM outbox
             WHERE destination = $1 AND delivered_at IS NULL AND attempts < $3 ORDER BY id LIMIT $2",
            &[&destination, &i64::from(limit), &i64::from(max_attempts)],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            // The session (and with it the lock) may be gone: take it anew
            // at the next tick.
            held.remove(destination);
            return Err(e.into());
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let row: i64 = r.get(0);
        let payload: String = r.get(1);
        let notification: Notification = serde_json::from_str(&payload)
            .map_err(|e| Error::Internal(format!("outbox row {row} holds a bad payload: {e}")))?;
        out.push(OutboxMessage {
            row,
            destination: destination.to_string(),
            notification,
            attempts: r.get::<_, i64>(2).clamp(0, i64::from(u32::MAX)) as u32,
            next_attempt: r.get(3),
        });
    }
    Ok(out)
}

async fn status_row(tx: &Transaction<'_>, name: &str) -> Result<()> {
    tx.execute("INSERT INTO destination_status (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[&name]).await?;
    Ok(())
}

pub(super) async fn delivered(c: &mut ClientWrapper, row: i64, now: i64) -> Result<()> {
    let tx = c.transaction().await?;
    let name = tx
        .query_opt(
            "UPDATE outbox SET delivered_at = $2, attempts = attempts + 1 WHERE id = $1 AND delivered_at IS NULL
             RETURNING destination",
            &[&row, &now],
        )
        .await?
        .map(|r| r.get::<_, String>(0));
    if let Some(name) = name {
        status_row(&tx, &name).await?;
        tx.execute(
            "UPDATE destination_status SET delivered = delivered + 1, last_success_at = $2 WHERE name = $1",
            &[&name, &now],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn failed(c: &mut ClientWrapper, row: i64, error: &str, next_attempt: i64, now: i64) -> Result<()> {
    let tx = c.transaction().await?;
    let name = tx
        .query_opt(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt = $3
             WHERE id = $1 AND delivered_at IS NULL RETURNING destination",
            &[&row, &error, &next_attempt],
        )
        .await?
        .map(|r| r.get::<_, String>(0));
    if let Some(name) = name {
        record_failure(&tx, &name, error, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn record_failure(tx: &Transaction<'_>, name: &str, error: &str, now: i64) -> Result<()> {
    status_row(tx, name).await?;
    tx.execute(
        "UPDATE destination_status SET failed = failed + 1, last_error = $2, last_error_at = $3 WHERE name = $1",
        &[&name, &error, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn tested(
    c: &mut ClientWrapper,
    name: &str,
    outcome: &std::result::Result<(), String>,
    now: i64,
) -> Result<()> {
    let tx = c.transaction().await?;
    match outcome {
        Ok(()) => {
            status_row(&tx, name).await?;
            tx.execute("UPDATE destination_status SET last_success_at = $2 WHERE name = $1", &[&name, &now]).await?;
        }
        Err(e) => record_failure(&tx, name, e, now).await?,
    }
    tx.commit().await?;
    Ok(())
}

fn utc(column: &str) -> String {
    format!("to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
}

/// Deletes delivered rows delivered before `before` and dead rows (tried
/// `max_attempts` times) written before it.
pub(super) async fn prune(c: &ClientWrapper, before: i64, max_attempts: u32) -> Result<u64> {
    Ok(c.execute(
        "DELETE FROM outbox WHERE (delivered_at IS NOT NULL AND delivered_at < $1)
             OR (delivered_at IS NULL AND attempts >= $2 AND created_at < $1)",
        &[&before, &i64::from(max_attempts)],
    )
    .await?)
}

pub(super) async fn counts(c: &ClientWrapper, max_attempts: u32) -> Result<Vec<DestinationCounts>> {
    let sql = format!(
        "SELECT n.name, COALESCE(s.delivered, 0), COALESCE(s.failed, 0),
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts < $1),
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts > 0 AND o.attempts < $1),
                (SELECT COALESCE(SUM(o.attempts), 0)::int8 FROM outbox o
                     WHERE o.destination = n.name AND o.delivered_at IS NULL AND o.attempts < $1),
                {}, s.last_error, {},
                (SELECT COUNT(*) FROM outbox o WHERE o.destination = n.name AND o.delivered_at IS NULL
                     AND o.attempts >= $1)
         FROM (SELECT name FROM destination_status
               UNION SELECT DISTINCT destination FROM outbox WHERE delivered_at IS NULL) n
         LEFT JOIN destination_status s ON s.name = n.name ORDER BY n.name COLLATE \"C\"",
        utc("s.last_success_at"),
        utc("s.last_error_at")
    );
    let n = |v: i64| v.max(0) as u64;
    Ok(c.query(&sql, &[&i64::from(max_attempts)])
        .await?
        .iter()
        .map(|r| DestinationCounts {
            name: r.get(0),
            delivered: n(r.get(1)),
            failed: n(r.get(2)),
            pending: n(r.get(3)),
            retrying: n(r.get(4)),
            retries_pending: n(r.get(5)),
            last_success_at: r.get(6),
            last_error: r.get(7),
            last_error_at: r.get(8),
            dead: n(r.get(9)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bfp_testkit::pg::PgCluster;

    use crate::alerts::{AlertConfig, CollectorConfig};
    use crate::store::outbox::OutboxMessage;
    use crate::store::postgres::{PgConfig, PgStore};
    use crate::store::{Alerts, Outbox, Predictions, Store};

    use crate::store::backends::failed_login_attempt as attempt;

    fn config() -> Arc<AlertConfig> {
        Arc::new(
            CollectorConfig::parse(
                "[[alert.rule]]\nname = \"brute\"\n\
                 [[destinations]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n\
                 [[destinations]]\nname = \"b\"\ntype = \"syslog\"\naddress = \"127.0.0.1:9\"\n",
            )
            .unwrap()
            .alert,
        )
    }

    fn ids(heads: &[OutboxMessage]) -> Vec<String> {
        heads.iter().map(|m| m.notification.id.clone()).collect()
    }

    // Raised and doubled alerts' rows are tested on every backend in
    // `store::sqlite::outbox`; these are the several-collector cases.

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_collector_at_a_time_reads_a_destination_and_another_takes_over_when_it_stops() {
        let cluster = PgCluster::start();
        let first = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let second = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        first.insert(vec![attempt("203.0.113.7"), attempt("198.51.100.2")]).await.unwrap();
        assert_eq!(second.evaluate_alerts(config()).await.unwrap().notifications, 4);

        // Each destination goes to whichever collector asks first, and
        // stays there: the other one's head is empty.
        assert_eq!(ids(&first.outbox_head("a".into(), 10, 20).await.unwrap()), ["alert-1-raised", "alert-2-raised"]);
        assert_eq!(ids(&second.outbox_head("b".into(), 10, 20).await.unwrap()), ["alert-1-raised", "alert-2-raised"]);
        for _ in 0..3 {
            assert!(second.outbox_head("a".into(), 10, 20).await.unwrap().is_empty());
            assert!(first.outbox_head("b".into(), 10, 20).await.unwrap().is_empty());
        }
        // Many concurrent asks from both: still only one of them gets rows.
        let (one, two) = (Arc::new(first), Arc::new(second));
        let asks: Vec<_> = (0..8)
            .map(|i| {
                let s = if i % 2 == 0 { one.clone() } else { two.clone() };
                tokio::spawn(async move { (i % 2, s.outbox_head("a".into(), 10, 20).await.unwrap().len()) })
            })
            .collect();
        for ask in asks {
            let (who, n) = ask.await.unwrap();
            assert_eq!(n, if who == 0 { 2 } else { 0 }, "collector {who}");
        }
        // The holder stops (or its session breaks): the other takes over.
        one.shutdown().await;
        let head = two.outbox_head("a".into(), 10, 20).await.unwrap();
        assert_eq!(ids(&head), ["alert-1-raised", "alert-2-raised"]);
        two.outbox_delivered(head[0].row, 100).await.unwrap();
        assert_eq!(ids(&two.outbox_head("a".into(), 10, 20).await.unwrap()), ["alert-2-raised"]);
        two.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_session_frees_its_destinations() {
        let cluster = PgCluster::start();
        let first = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        let second = PgStore::open(&PgConfig::new(cluster.url())).await.unwrap();
        first.insert(vec![attempt("203.0.113.7")]).await.unwrap();
        first.evaluate_alerts(config()).await.unwrap();
        assert_eq!(first.outbox_head("a".into(), 10, 20).await.unwrap().len(), 1);
        assert!(second.outbox_head("a".into(), 10, 20).await.unwrap().is_empty());
        // The server ends the lock holder's session (a collector killed, a
        // network cut): the lock goes with it.
        cluster.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND classid = x'62666f62'::int::oid",
        );
        let mut taken = false;
        for _ in 0..50 {
            if second.outbox_head("a".into(), 10, 20).await.unwrap().len() == 1 {
                taken = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(taken, "the second collector takes the destination over");
        // The first one's next read fails once (its session is gone), then
        // finds the destination taken.
        let _ = first.outbox_head("a".into(), 10, 20).await;
        assert!(first.outbox_head("a".into(), 10, 20).await.unwrap().is_empty());
        first.shutdown().await;
        second.shutdown().await;
    }
}
