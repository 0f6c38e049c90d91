//! Devices, analyst feedback, users, the console (sessions, lock-outs,
//! audit), decisions and alerts in PostgreSQL: the same rules as SQLite's
//! modules, each write one statement or one transaction. Times a collector
//! compares (sessions, lock-outs, token expiry) come from the database's
//! clock, so collectors with drifting clocks agree.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use bfp_common::wire::{PushedDecision, PushedDecisions, MAX_PUSHED_DECISIONS};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::error::SqlState;

use super::outbox::Touched;
use super::reads::ts;
use crate::alerts::AlertConfig;
use crate::error::{Error, Result};
use crate::store::alerts::{Alert, AlertQuery, AlertState, EvaluationPass};
use crate::store::console::{new_session_id, AuditEntry, LockState, NewAuditEntry, SessionPolicy};
use crate::store::decisions::{
    check_group, Decision, DecisionQuery, DeviceBlock, DeviceBlocks, DeviceRefusal, NewDecision,
};
use crate::store::devices::{check_name, format_unix, new_token, token_hash, DeviceId, DeviceInfo};
use crate::store::feedback::{AnalystLabel, Feedback, FeedbackOutcome, LABELLED_HEADER};
use crate::store::model::label;
use crate::store::users::{check_user_name, new_api_token, ApiTokenInfo, NewApiToken, Operator, Role, UserInfo};

const NOW: &str = "extract(epoch FROM now())::int8";

fn unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn role_of(text: &str) -> Result<Role> {
    Role::parse(text).map_err(|e| Error::Internal(format!("stored role: {e}")))
}

// ---------------------------------------------------------------- devices ---

pub(super) async fn add_device(c: &mut ClientWrapper, name: &str) -> Result<String> {
    check_name(name)?;
    let token = new_token()?;
    let hash = token_hash(&token);
    let tx = c.transaction().await?;
    let revoked =
        tx.query_opt("SELECT revoked_at IS NOT NULL FROM devices WHERE name = $1 FOR UPDATE", &[&name]).await?;
    match revoked.map(|r| r.get::<_, bool>(0)) {
        None => {
            if let Err(e) = tx.execute("INSERT INTO devices (name, token_hash) VALUES ($1, $2)", &[&name, &hash]).await
            {
                if unique_violation(&e) {
                    return Err(Error::Conflict(format!("device {name:?} already exists (revoke it first)")));
                }
                return Err(e.into());
            }
        }
        // Re-adding a revoked device keeps its history and its `last_seq`.
        Some(true) => {
            tx.execute("UPDATE devices SET token_hash = $2, revoked_at = NULL WHERE name = $1", &[&name, &hash])
                .await?;
        }
        Some(false) => return Err(Error::Conflict(format!("device {name:?} already exists (revoke it first)"))),
    }
    tx.commit().await?;
    Ok(token)
}

pub(super) async fn revoke_device(c: &ClientWrapper, name: &str) -> Result<()> {
    let n = c.execute("UPDATE devices SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", &[&name]).await?;
    if n == 0 {
        return Err(Error::NotFound(format!("no active device named {name:?}")));
    }
    Ok(())
}

pub(super) async fn list_devices(c: &ClientWrapper) -> Result<Vec<DeviceInfo>> {
    let sql = format!(
        "SELECT name, {}, {}, {}, agent_version, model_version, spool_depth, dropped, lines_read, last_error,
                last_seq, batches, records, device_group
         FROM devices ORDER BY name",
        ts("created_at"),
        ts("revoked_at"),
        ts("last_seen")
    );
    let n = |r: &tokio_postgres::Row, i: usize| r.get::<_, i64>(i).max(0) as u64;
    Ok(c.query(&sql, &[])
        .await?
        .iter()
        .map(|r| DeviceInfo {
            name: r.get(0),
            created: r.get(1),
            revoked: r.get(2),
            last_seen: r.get(3),
            agent_version: r.get(4),
            model_version: r.get(5),
            spool_depth: n(r, 6),
            dropped: n(r, 7),
            lines_read: n(r, 8),
            last_error: r.get(9),
            last_seq: n(r, 10),
            batches: n(r, 11),
            records: n(r, 12),
            group: r.get(13),
        })
        .collect())
}

pub(super) async fn authenticate_device(c: &ClientWrapper, token: &str) -> Result<Option<DeviceId>> {
    let stmt = c.prepare_cached("SELECT id, name FROM devices WHERE token_hash = $1 AND revoked_at IS NULL").await?;
    Ok(c.query_opt(&stmt, &[&token_hash(token)]).await?.map(|r| DeviceId { id: r.get(0), name: r.get(1) }))
}

// --------------------------------------------------------------- feedback ---

pub(super) async fn set_feedback(
    c: &mut ClientWrapper,
    id: i64,
    feedback: Feedback,
    note: Option<&str>,
) -> Result<FeedbackOutcome> {
    let tx = c.transaction().await?;
    let Some(row) = tx.query_opt("SELECT prediction FROM predictions WHERE id = $1", &[&id]).await? else {
        return Err(Error::NotFound(format!("no stored result with id {id}")));
    };
    let suspicious = row.get::<_, &str>(0) == "Suspicious";
    match feedback.true_class(suspicious) {
        Some(class) => {
            tx.execute(
                "INSERT INTO feedback (prediction_id, analyst_label, note) VALUES ($1, $2, $3)
                 ON CONFLICT (prediction_id) DO UPDATE SET analyst_label = excluded.analyst_label,
                     labelled_at = excluded.labelled_at, note = excluded.note",
                &[&id, &label(class), &note],
            )
            .await?;
        }
        None => {
            tx.execute("DELETE FROM feedback WHERE prediction_id = $1", &[&id]).await?;
        }
    }
    let analyst = tx
        .query_opt(
            &format!("SELECT analyst_label, {}, note FROM feedback WHERE prediction_id = $1", ts("labelled_at")),
            &[&id],
        )
        .await?
        .map(|r| AnalystLabel {
            suspicious: r.get::<_, &str>(0) == "Suspicious",
            labelled_at: r.get(1),
            note: r.get(2),
        });
    tx.commit().await?;
    Ok(FeedbackOutcome { id, suspicious, analyst })
}

pub(super) async fn export_labelled(c: &ClientWrapper) -> Result<String> {
    let sql = format!(
        "SELECT p.login_hour, p.session_duration, p.commands_count, p.failed_logins, p.protocol, p.typing_speed,
                f.analyst_label, p.risky_commands, p.id, p.prediction, {}, f.note
         FROM feedback f JOIN predictions p ON p.id = f.prediction_id ORDER BY f.prediction_id",
        ts("f.labelled_at")
    );
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Internal(format!("labelled export: {e}"));
    w.write_record(LABELLED_HEADER.split(',')).map_err(csv_err)?;
    for r in c.query(&sql, &[]).await? {
        let typing: Option<f64> = r.get(5);
        let risky: Option<i64> = r.get(7);
        w.write_record([
            r.get::<_, i32>(0).to_string(),
            (r.get::<_, f64>(1) as f32).to_string(),
            r.get::<_, i64>(2).to_string(),
            r.get::<_, i64>(3).to_string(),
            r.get::<_, String>(4),
            typing.map(|t| (t as f32).to_string()).unwrap_or_else(|| "-1".into()),
            r.get::<_, String>(6),
            risky.map(|n| n.to_string()).unwrap_or_default(),
            r.get::<_, i64>(8).to_string(),
            r.get::<_, String>(9),
            r.get::<_, String>(10),
            crate::store::insights::spreadsheet_safe(r.get::<_, Option<String>>(11).unwrap_or_default()),
        ])
        .map_err(csv_err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::Internal(format!("labelled export: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Internal(format!("labelled export: {e}")))
}

// ------------------------------------------------------------------ users ---

pub(super) async fn add_user(c: &ClientWrapper, name: &str, role: Role, password_hash: &str) -> Result<()> {
    check_user_name(name)?;
    let inserted = c
        .execute(
            "INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &role.as_str(), &password_hash],
        )
        .await?;
    if inserted == 0 {
        return Err(Error::Conflict(format!("user {name:?} already exists")));
    }
    Ok(())
}

pub(super) async fn list_users(c: &ClientWrapper) -> Result<Vec<UserInfo>> {
    let sql = format!("SELECT name, role, {} FROM users ORDER BY name", ts("created_at"));
    c.query(&sql, &[])
        .await?
        .iter()
        .map(|r| Ok(UserInfo { name: r.get(0), role: role_of(r.get(1))?, created: r.get(2) }))
        .collect()
}

pub(super) async fn delete_user(c: &mut ClientWrapper, name: &str) -> Result<()> {
    let tx = c.transaction().await?;
    tx.execute("DELETE FROM api_tokens WHERE user_id = (SELECT id FROM users WHERE name = $1)", &[&name]).await?;
    tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = $1)", &[&name]).await?;
    if tx.execute("DELETE FROM users WHERE name = $1", &[&name]).await? == 0 {
        return Err(Error::NotFound(format!("no user named {name:?}")));
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn set_password(c: &mut ClientWrapper, name: &str, password_hash: &str) -> Result<()> {
    let tx = c.transaction().await?;
    if tx.execute("UPDATE users SET password_hash = $2 WHERE name = $1", &[&name, &password_hash]).await? == 0 {
        return Err(Error::NotFound(format!("no user named {name:?}")));
    }
    // A new password is often a response to a stolen one: its sessions end.
    tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = $1)", &[&name]).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn credentials(c: &ClientWrapper, name: &str) -> Result<Option<(Operator, String)>> {
    let stmt = c.prepare_cached("SELECT id, name, role, password_hash FROM users WHERE name = $1").await?;
    match c.query_opt(&stmt, &[&name]).await? {
        Some(r) => Ok(Some((Operator { id: r.get(0), name: r.get(1), role: role_of(r.get(2))? }, r.get(3)))),
        None => Ok(None),
    }
}

pub(super) async fn add_api_token(c: &ClientWrapper, user: &str, expires_at: Option<i64>) -> Result<NewApiToken> {
    let token = new_api_token()?;
    let row = c
        .query_opt(
            "INSERT INTO api_tokens (user_id, token_hash, expires_at)
             SELECT id, $2, $3 FROM users WHERE name = $1 RETURNING id",
            &[&user, &token_hash(&token), &expires_at],
        )
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user named {user:?}")))?;
    Ok(NewApiToken { id: row.get(0), token })
}

pub(super) async fn list_api_tokens(c: &ClientWrapper) -> Result<Vec<ApiTokenInfo>> {
    let sql = format!(
        "SELECT t.id, u.name, u.role, {}, t.expires_at, {}
         FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
        ts("t.created_at"),
        ts("t.revoked_at")
    );
    c.query(&sql, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(ApiTokenInfo {
                id: r.get(0),
                user: r.get(1),
                role: role_of(r.get(2))?,
                created: r.get(3),
                expires: r.get::<_, Option<i64>>(4).map(format_unix),
                revoked: r.get(5),
            })
        })
        .collect()
}

pub(super) async fn revoke_api_token(c: &ClientWrapper, id: i64) -> Result<()> {
    let n = c.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", &[&id]).await?;
    if n == 0 {
        return Err(Error::NotFound(format!("no active API token with id {id}")));
    }
    Ok(())
}

pub(super) async fn authenticate_operator(c: &ClientWrapper, token: &str) -> Result<Option<Operator>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT u.id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > {NOW})"
        ))
        .await?;
    match c.query_opt(&stmt, &[&token_hash(token)]).await? {
        Some(r) => Ok(Some(Operator { id: r.get(0), name: r.get(1), role: role_of(r.get(2))? })),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------- console ---

/// A used session's `last_used` is rewritten at most this often (as SQLite).
const TOUCH_EVERY_SECS: i64 = 30;

pub(super) async fn create_session(c: &ClientWrapper, user_id: i64, policy: SessionPolicy) -> Result<String> {
    c.execute(
        &format!("DELETE FROM sessions WHERE last_used <= {NOW} - $1 OR created_at <= {NOW} - $2"),
        &[&policy.idle_secs, &policy.absolute_secs],
    )
    .await?;
    let id = new_session_id()?;
    c.execute(
        &format!("INSERT INTO sessions (id_hash, user_id, created_at, last_used) VALUES ($1, $2, {NOW}, {NOW})"),
        &[&token_hash(&id), &user_id],
    )
    .await?;
    Ok(id)
}

pub(super) async fn session(c: &ClientWrapper, id: &str, policy: SessionPolicy) -> Result<Option<Operator>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT u.id, u.name, u.role, {NOW} - s.last_used FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = $1 AND s.last_used > {NOW} - $2 AND s.created_at > {NOW} - $3"
        ))
        .await?;
    let hash = token_hash(id);
    let Some(r) = c.query_opt(&stmt, &[&hash, &policy.idle_secs, &policy.absolute_secs]).await? else {
        return Ok(None);
    };
    let op = Operator { id: r.get(0), name: r.get(1), role: role_of(r.get(2))? };
    if r.get::<_, i64>(3) >= TOUCH_EVERY_SECS {
        c.execute(&format!("UPDATE sessions SET last_used = {NOW} WHERE id_hash = $1"), &[&hash]).await?;
    }
    Ok(Some(op))
}

pub(super) async fn end_session(c: &ClientWrapper, id: &str) -> Result<()> {
    c.execute("DELETE FROM sessions WHERE id_hash = $1", &[&token_hash(id)]).await?;
    Ok(())
}

pub(super) async fn lock_state(c: &ClientWrapper, name: &str) -> Result<LockState> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT locked_until FROM login_lockouts WHERE user_name = $1 AND locked_until > {NOW}"
        ))
        .await?;
    let until: Option<i64> = c.query_opt(&stmt, &[&name]).await?.map(|r| r.get(0));
    Ok(until.map_or(LockState::Open, LockState::LockedUntil))
}

/// Counts a wrong password; locks at the policy's count. One transaction:
/// two collectors counting failures of one name at once add up.
pub(super) async fn login_failed(c: &mut ClientWrapper, name: &str, policy: SessionPolicy) -> Result<LockState> {
    let tx = c.transaction().await?;
    tx.execute(
        &format!(
            "INSERT INTO login_lockouts (user_name, failures, locked_until) VALUES ($1, 1, NULL)
             ON CONFLICT (user_name) DO UPDATE SET
               failures = CASE WHEN login_lockouts.locked_until IS NOT NULL AND login_lockouts.locked_until <= {NOW}
                               THEN 1 ELSE login_lockouts.failures + 1 END,
               locked_until = CASE WHEN login_lockouts.locked_until IS NOT NULL
                                    AND login_lockouts.locked_until <= {NOW}
                               THEN NULL ELSE login_lockouts.locked_until END"
        ),
        &[&name],
    )
    .await?;
    tx.execute(
        &format!(
            "UPDATE login_lockouts SET locked_until = {NOW} + $2, failures = 0
             WHERE user_name = $1 AND failures >= $3 AND locked_until IS NULL"
        ),
        &[&name, &policy.lockout_secs, &i64::from(policy.max_failures)],
    )
    .await?;
    let until: Option<i64> = tx
        .query_opt(
            &format!("SELECT locked_until FROM login_lockouts WHERE user_name = $1 AND locked_until > {NOW}"),
            &[&name],
        )
        .await?
        .map(|r| r.get(0));
    tx.commit().await?;
    Ok(until.map_or(LockState::Open, LockState::LockedUntil))
}

pub(super) async fn login_succeeded(c: &ClientWrapper, name: &str) -> Result<()> {
    c.execute("DELETE FROM login_lockouts WHERE user_name = $1", &[&name]).await?;
    Ok(())
}

pub(super) async fn audit(c: &ClientWrapper, e: &NewAuditEntry) -> Result<()> {
    c.execute(
        "INSERT INTO audit_log (actor, action, target, detail, client) VALUES ($1, $2, $3, $4, $5)",
        &[&e.actor, &e.action, &e.target, &e.detail, &e.client],
    )
    .await?;
    Ok(())
}

pub(super) async fn audit_trail(c: &ClientWrapper, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
    let sql = format!(
        "SELECT id, {}, actor, action, target, detail, client FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        ts("at")
    );
    Ok(c.query(&sql, &[&before_id.unwrap_or(i64::MAX), &i64::from(limit)])
        .await?
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            target: r.get(4),
            detail: r.get(5),
            client: r.get(6),
        })
        .collect())
}

// -------------------------------------------------------------- decisions ---

const DECISION_COLUMNS: &str =
    "id, device_group, address, reason, created_by, created_at, until, deleted_at, deleted_by";

fn decision_of(r: &tokio_postgres::Row, now: i64) -> Decision {
    let until: i64 = r.get(6);
    let deleted_at: Option<i64> = r.get(7);
    Decision {
        id: r.get(0),
        group: r.get(1),
        address: r.get(2),
        reason: r.get(3),
        created_by: r.get(4),
        created_at: r.get(5),
        until,
        deleted_at,
        deleted_by: r.get(8),
        state: Decision::state_at(deleted_at, until, now),
    }
}

pub(super) async fn add_decision(c: &ClientWrapper, new: &NewDecision, now: i64) -> Result<Decision> {
    let until = now.saturating_add(new.secs.min(i64::MAX as u64) as i64);
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO decisions (device_group, address, reason, created_by, created_at, until, alert_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (alert_id) DO NOTHING RETURNING {DECISION_COLUMNS}"
            ),
            &[&new.group, &new.address(), &new.reason, &new.created_by, &now, &until, &new.alert],
        )
        .await?;
    match row {
        Some(r) => Ok(decision_of(&r, now)),
        None => Err(Error::Conflict(format!("alert {} has made a decision already", new.alert.unwrap_or_default()))),
    }
}

pub(super) async fn list_decisions(c: &ClientWrapper, q: &DecisionQuery, now: i64) -> Result<Vec<Decision>> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE ($1::text IS NULL OR device_group = $1)
             AND ($4 OR (deleted_at IS NULL AND until > $2)) ORDER BY id DESC LIMIT $3"
    );
    let limit = i64::from(q.limit.max(1));
    Ok(c.query(&sql, &[&q.group, &now, &limit, &q.all]).await?.iter().map(|r| decision_of(r, now)).collect())
}

pub(super) async fn delete_decision(c: &ClientWrapper, id: i64, by: &str, now: i64) -> Result<Decision> {
    let updated = c
        .query_opt(
            &format!(
                "UPDATE decisions SET deleted_at = $2, deleted_by = $3 WHERE id = $1 AND deleted_at IS NULL
                 RETURNING {DECISION_COLUMNS}"
            ),
            &[&id, &now, &by],
        )
        .await?;
    if let Some(r) = updated {
        return Ok(decision_of(&r, now));
    }
    let exists = c.query_opt("SELECT 1 FROM decisions WHERE id = $1", &[&id]).await?.is_some();
    Err(if exists {
        Error::Conflict(format!("decision {id} was deleted already"))
    } else {
        Error::NotFound(format!("no decision {id}"))
    })
}

pub(super) async fn pushed_decisions(c: &ClientWrapper, device: &DeviceId, now: i64) -> Result<PushedDecisions> {
    let group: String = c
        .query_opt("SELECT device_group FROM devices WHERE id = $1", &[&device.id])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| Error::Unauthorized("the device was revoked".into()))?;
    let stmt = c
        .prepare_cached(
            "SELECT id, address, until, reason FROM decisions
             WHERE device_group = $1 AND deleted_at IS NULL AND until > $2 ORDER BY id DESC LIMIT $3",
        )
        .await?;
    let decisions = c
        .query(&stmt, &[&group, &now, &(MAX_PUSHED_DECISIONS as i64)])
        .await?
        .iter()
        .map(|r| PushedDecision { id: r.get(0), address: r.get(1), until: r.get(2), reason: r.get(3) })
        .collect();
    Ok(PushedDecisions { group, decisions })
}

pub(super) async fn set_group(c: &ClientWrapper, name: &str, group: &str) -> Result<()> {
    check_group(group)?;
    if c.execute("UPDATE devices SET device_group = $2 WHERE name = $1", &[&name, &group]).await? == 0 {
        return Err(Error::NotFound(format!("no device named {name:?}")));
    }
    Ok(())
}

pub(super) async fn device_blocks(c: &ClientWrapper, name: &str) -> Result<DeviceBlocks> {
    let (id, group): (i64, String) = c
        .query_opt("SELECT id, device_group FROM devices WHERE name = $1", &[&name])
        .await?
        .map(|r| (r.get(0), r.get(1)))
        .ok_or_else(|| Error::NotFound(format!("no device named {name:?}")))?;
    let response: Option<(String, i64)> = c
        .query_opt("SELECT backend, reported_at FROM device_responses WHERE device_id = $1", &[&id])
        .await?
        .map(|r| (r.get(0), r.get(1)));
    let blocks = c
        .query(
            "SELECT address, since, until, reason, origin, decision_id FROM device_blocks WHERE device_id = $1
             ORDER BY since DESC, address",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| DeviceBlock {
            address: r.get(0),
            since: r.get(1),
            until: r.get(2),
            reason: r.get(3),
            origin: r.get(4),
            decision: r.get(5),
        })
        .collect();
    let refused = c
        .query(
            "SELECT decision_id, address, reason FROM device_refusals WHERE device_id = $1 ORDER BY decision_id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| DeviceRefusal { decision: r.get(0), address: r.get(1), reason: r.get(2) })
        .collect();
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

// ----------------------------------------------------------------- alerts ---

/// Whether a transaction holding [`super::writer::WRITE_BARRIER`] began
/// more than 100 ms ago (a group commit takes milliseconds; a CSV upload
/// holds it while its rows stream in). Sessions of another role show no
/// start here: then the pass's lock timeout decides, as before.
async fn long_write_running(c: &ClientWrapper) -> Result<bool> {
    // A bigint advisory key shows in `pg_locks` as its high and low halves.
    let key = super::writer::WRITE_BARRIER as u64;
    let (high, low) = ((key >> 32) as u32, key as u32);
    let stmt = c
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2
                     AND l.objsubid = 1 AND a.xact_start < clock_timestamp() - interval '100 milliseconds')",
        )
        .await?;
    Ok(c.query_one(&stmt, &[&high, &low]).await?.get(0))
}

struct Grouped {
    id: i64,
    last_seen: i64,
    resolved_at: Option<i64>,
    added: i64,
    last_id: i64,
}

/// One evaluation pass, in one transaction that first locks the cursor row
/// (`FOR UPDATE`): with several collectors, one evaluates at a time and
/// the next one starts after its cursor, so a result is evaluated once.
///
/// Ids are taken before their rows commit, so a row may become visible
/// after a higher id did; the pass first waits (briefly) for every writer
/// that took ids before it, under [`super::writer::WRITE_BARRIER`], and reads
/// only ids up to the last one taken by then. If a long write (a large CSV
/// upload) holds the barrier, the pass is left to the next tick without
/// asking for it: a waiting exclusive request would queue every writer
/// behind it until it times out.
pub(super) async fn evaluate_alerts(c: &mut ClientWrapper, config: &AlertConfig) -> Result<EvaluationPass> {
    let mut pass = EvaluationPass::default();
    if config.rules.is_empty() {
        return Ok(pass);
    }
    if long_write_running(c).await? {
        return Ok(pass);
    }
    let upto: i64 = {
        let barrier = c.transaction().await?;
        barrier.batch_execute("SET LOCAL lock_timeout = '200ms'").await?;
        match barrier.execute("SELECT pg_advisory_xact_lock($1)", &[&super::writer::WRITE_BARRIER]).await {
            Ok(_) => {}
            Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => return Ok(pass),
            Err(e) => return Err(e.into()),
        }
        let last: Option<i64> = barrier
            .query_one("SELECT pg_sequence_last_value(pg_get_serial_sequence('predictions', 'id')::regclass)", &[])
            .await?
            .get(0);
        barrier.commit().await?;
        last.unwrap_or(0)
    };
    let tx = c.transaction().await?;
    let cursor: i64 =
        tx.query_one("SELECT last_result_id FROM alert_cursor WHERE id = 1 FOR UPDATE", &[]).await?.get(0);
    let page = super::reads::page_after(&tx, cursor, upto, i64::from(config.max_rows_per_pass)).await?;
    let Some(last) = page.last().map(|r| r.id) else {
        tx.commit().await?;
        return Ok(pass);
    };
    let mut open: HashMap<(usize, String), Grouped> = HashMap::new();
    // Alerts this pass changed, with what the outbox needs to know of them.
    let mut touched: HashMap<i64, Touched> = HashMap::new();
    for result in &page {
        pass.results += 1;
        pass.caught_up += 1;
        let seen = unix_seconds(&result.created_at);
        for (i, rule) in config.rules.iter().enumerate() {
            if !rule.matches(result) {
                continue;
            }
            let key = rule.group_by.key_of(result);
            if let Entry::Vacant(slot) = open.entry((i, key.clone())) {
                let latest = tx
                    .query_opt(
                        "SELECT id, last_seen, resolved_unix FROM alerts
                         WHERE rule = $1 AND group_key = $2 ORDER BY id DESC LIMIT 1",
                        &[&rule.name, &key],
                    )
                    .await?;
                if let Some(r) = latest {
                    slot.insert(Grouped {
                        id: r.get(0),
                        last_seen: r.get(1),
                        resolved_at: r.get(2),
                        added: 0,
                        last_id: 0,
                    });
                }
            }
            let joins = open.get(&(i, key.clone())).is_some_and(|g| match g.resolved_at {
                None => seen - g.last_seen <= rule.window_secs as i64,
                Some(resolved) => seen - resolved <= rule.cooldown_secs as i64,
            });
            if joins {
                let g = open.get_mut(&(i, key)).expect("checked above");
                g.added += 1;
                g.last_id = result.id;
                g.last_seen = g.last_seen.max(seen);
                pass.grouped += 1;
            } else {
                flush(&tx, open.remove(&(i, key.clone())), &mut touched).await?;
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO alerts (rule, group_key, count, first_result_id, last_result_id,
                             first_seen, last_seen, source_ip, \"user\", device)
                         VALUES ($1, $2, 1, $3, $3, $4, $4, $5, $6, $7) RETURNING id",
                        &[
                            &rule.name,
                            &key,
                            &result.id,
                            &seen,
                            &result.agent.source_ip,
                            &result.agent.user,
                            &result.device,
                        ],
                    )
                    .await?
                    .get(0);
                touched.insert(id, Touched { opened: true, count: 1, told: 0, resolved: false });
                open.insert((i, key), Grouped { id, last_seen: seen, resolved_at: None, added: 0, last_id: 0 });
                pass.opened += 1;
            }
        }
    }
    for (_, g) in open.drain() {
        flush(&tx, Some(g), &mut touched).await?;
    }
    let mut touched: Vec<(i64, Touched)> = touched.into_iter().collect();
    touched.sort_unstable();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    pass.notifications = super::outbox::enqueue(&tx, &touched, &config.notify, now).await?;
    tx.execute("UPDATE alert_cursor SET last_result_id = $1 WHERE id = 1", &[&last]).await?;
    tx.commit().await?;
    Ok(pass)
}

/// Writes what a pass added to an alert and notes it in `touched`.
async fn flush(
    tx: &deadpool_postgres::Transaction<'_>,
    g: Option<Grouped>,
    touched: &mut HashMap<i64, Touched>,
) -> Result<()> {
    let Some(g) = g.filter(|g| g.added > 0) else { return Ok(()) };
    let r = tx
        .query_one(
            "UPDATE alerts SET count = count + $2, last_result_id = GREATEST(last_result_id, $3),
                 last_seen = GREATEST(last_seen, $4) WHERE id = $1
             RETURNING count, notified_count, state = 'resolved'",
            &[&g.id, &g.added, &g.last_id, &g.last_seen],
        )
        .await?;
    let (count, told, resolved): (i64, i64, bool) = (r.get(0), r.get(1), r.get(2));
    touched.entry(g.id).and_modify(|t| t.count = count).or_insert(Touched { opened: false, count, told, resolved });
    Ok(())
}

/// Seconds since the epoch of a stored `YYYY-MM-DD HH:MM:SS` (UTC).
fn unix_seconds(text: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| text.get(range).and_then(|s| s.parse::<i64>().ok());
    let (Some(y), Some(m), Some(d), Some(hh), Some(mm), Some(ss)) =
        (num(0..4), num(5..7), num(8..10), num(11..13), num(14..16), num(17..19))
    else {
        return 0;
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

fn alert_columns() -> String {
    format!(
        "id, rule, group_key, state, count, first_result_id, last_result_id,
         to_char(to_timestamp(first_seen) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
         to_char(to_timestamp(last_seen) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), source_ip, \"user\", device,
         acknowledged_by, {}, resolved_by, {}",
        ts("acknowledged_at"),
        ts("resolved_at")
    )
}

fn alert_of(r: &tokio_postgres::Row) -> Alert {
    Alert {
        id: r.get(0),
        rule: r.get(1),
        group_key: r.get(2),
        state: AlertState::parse(r.get(3)).unwrap_or(AlertState::Open),
        count: r.get::<_, i64>(4).max(0) as u64,
        first_result_id: r.get(5),
        last_result_id: r.get(6),
        first_seen: r.get(7),
        last_seen: r.get(8),
        source_ip: r.get(9),
        user: r.get(10),
        device: r.get(11),
        acknowledged_by: r.get(12),
        acknowledged_at: r.get(13),
        resolved_by: r.get(14),
        resolved_at: r.get(15),
    }
}

/// Alert `id` as it is now (inside `tx`: as the pass left it).
pub(super) async fn get_alert(tx: &deadpool_postgres::Transaction<'_>, id: i64) -> Result<Alert> {
    tx.query_opt(&format!("SELECT {} FROM alerts WHERE id = $1", alert_columns()), &[&id])
        .await?
        .map(|r| alert_of(&r))
        .ok_or_else(|| Error::NotFound(format!("no alert with id {id}")))
}

pub(super) async fn list_alerts(c: &ClientWrapper, q: &AlertQuery) -> Result<Vec<Alert>> {
    let sql = format!(
        "SELECT {} FROM alerts
         WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR rule = $2) AND ($3::int8 IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
        alert_columns()
    );
    let rows = c.query(&sql, &[&q.state.map(AlertState::as_str), &q.rule, &q.before_id, &i64::from(q.limit)]).await?;
    Ok(rows.iter().map(alert_of).collect())
}

/// Moves alert `id` to `to` on behalf of `by` (the row locked meanwhile).
pub(super) async fn set_alert_state(c: &mut ClientWrapper, id: i64, to: AlertState, by: &str) -> Result<Alert> {
    let tx = c.transaction().await?;
    let get = format!("SELECT {} FROM alerts WHERE id = $1", alert_columns());
    let now = tx
        .query_opt(&format!("{get} FOR UPDATE"), &[&id])
        .await?
        .map(|r| alert_of(&r))
        .ok_or_else(|| Error::NotFound(format!("no alert with id {id}")))?;
    match (now.state, to) {
        (a, b) if a == b => {}
        (AlertState::Open, AlertState::Acknowledged) => {
            tx.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = $2, acknowledged_at = now() WHERE id = $1",
                &[&id, &by],
            )
            .await?;
        }
        (_, AlertState::Resolved) => {
            tx.execute(
                &format!(
                    "UPDATE alerts SET state = 'resolved', resolved_by = $2, resolved_at = now(), resolved_unix = {NOW}
                     WHERE id = $1"
                ),
                &[&id, &by],
            )
            .await?;
        }
        (from, to) => {
            return Err(Error::Conflict(format!("alert {id} is {}; it cannot become {}", from.as_str(), to.as_str())))
        }
    }
    let alert = tx.query_one(&get, &[&id]).await.map(|r| alert_of(&r))?;
    tx.commit().await?;
    Ok(alert)
}

pub(super) async fn alert_counts(c: &ClientWrapper) -> Result<Vec<(String, String, u64)>> {
    let rows = c.query("SELECT rule, state, COUNT(*) FROM alerts GROUP BY rule, state ORDER BY 1, 2", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0) as u64)).collect())
}
