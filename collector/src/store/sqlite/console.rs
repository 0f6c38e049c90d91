//! Sessions, lock-outs and the audit trail in SQLite: the `sessions`,
//! `login_lockouts` and `audit_log` tables. Times are unix seconds from
//! SQLite's clock, so every collector on one file agrees on expiry.

use rusqlite::{params, Connection, OptionalExtension};

use super::users::role_of;
use crate::error::Result;
use crate::store::console::{new_session_id, AuditEntry, LockState, NewAuditEntry, SessionPolicy};
use crate::store::devices::token_hash;
use crate::store::users::Operator;

const NOW: &str = "CAST(strftime('%s', 'now') AS INTEGER)";

/// A used session's `last_used` is rewritten at most this often: the idle
/// limit is minutes, and a write per dashboard request would be waste.
const TOUCH_EVERY_SECS: i64 = 30;

fn now(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(&format!("SELECT {NOW}"), [], |r| r.get(0))
}

/// Drops expired sessions and starts one for `user_id`.
pub(super) fn create_session(conn: &Connection, user_id: i64, policy: SessionPolicy) -> Result<String> {
    let now = now(conn)?;
    conn.execute(
        "DELETE FROM sessions WHERE last_used <= ?1 - ?2 OR created_at <= ?1 - ?3",
        params![now, policy.idle_secs, policy.absolute_secs],
    )?;
    let id = new_session_id()?;
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_used) VALUES (?1, ?2, ?3, ?3)",
        params![token_hash(&id), user_id, now],
    )?;
    Ok(id)
}

/// The live session `id`: its operator, and whether `last_used` is stale.
pub(super) fn session(conn: &Connection, id: &str, policy: SessionPolicy) -> Result<Option<(Operator, bool)>> {
    let now = now(conn)?;
    let row = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.role, s.last_used FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ?1 AND s.last_used > ?2 - ?3 AND s.created_at > ?2 - ?4",
        )?
        .query_row(params![token_hash(id), now, policy.idle_secs, policy.absolute_secs], |r| {
            let op = Operator { id: r.get(0)?, name: r.get(1)?, role: role_of(r.get(2)?)? };
            let last_used: i64 = r.get(3)?;
            Ok((op, now - last_used >= TOUCH_EVERY_SECS))
        })
        .optional()?;
    Ok(row)
}

/// Marks session `id` used now.
pub(super) fn touch_session(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(&format!("UPDATE sessions SET last_used = {NOW} WHERE id_hash = ?1"), [token_hash(id)])?;
    Ok(())
}

/// Ends session `id`.
pub(super) fn end_session(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [token_hash(id)])?;
    Ok(())
}

/// Whether `name` is locked now.
pub(super) fn lock_state(conn: &Connection, name: &str) -> Result<LockState> {
    let until: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT locked_until FROM login_lockouts WHERE user_name = ?1 AND locked_until > {NOW}"
        ))?
        .query_row([name], |r| r.get(0))
        .optional()?;
    Ok(until.map_or(LockState::Open, LockState::LockedUntil))
}

/// Counts a wrong password; locks at the policy's count. A lock that has
/// run out starts the count again.
pub(super) fn login_failed(conn: &Connection, name: &str, policy: SessionPolicy) -> Result<LockState> {
    let now = now(conn)?;
    conn.execute(
        "INSERT INTO login_lockouts (user_name, failures, locked_until) VALUES (?1, 1, NULL)
         ON CONFLICT (user_name) DO UPDATE SET
           failures = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2 THEN 1 ELSE failures + 1 END,
           locked_until = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2 THEN NULL ELSE locked_until END",
        params![name, now],
    )?;
    conn.execute(
        "UPDATE login_lockouts SET locked_until = ?2 + ?3, failures = 0
         WHERE user_name = ?1 AND failures >= ?4 AND locked_until IS NULL",
        params![name, now, policy.lockout_secs, policy.max_failures],
    )?;
    lock_state(conn, name)
}

/// Clears `name`'s failures.
pub(super) fn login_succeeded(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM login_lockouts WHERE user_name = ?1", [name])?;
    Ok(())
}

/// Appends an audit line.
pub(super) fn audit(conn: &Connection, e: &NewAuditEntry) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (actor, action, target, detail, client) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![e.actor, e.action, e.target, e.detail, e.client],
    )?;
    Ok(())
}

/// The newest audit lines below `before_id`.
pub(super) fn audit_trail(conn: &Connection, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor, action, target, detail, client FROM audit_log
         WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![before_id.unwrap_or(i64::MAX), limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            detail: r.get(5)?,
            client: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::Role;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("c.db")).unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        super::super::users::add_user(&conn, "ana", Role::Analyst, "h").unwrap();
        (dir, conn)
    }

    fn age_session(conn: &Connection, id: &str, created_ago: i64, used_ago: i64) {
        conn.execute(
            &format!("UPDATE sessions SET created_at = {NOW} - ?2, last_used = {NOW} - ?3 WHERE id_hash = ?1"),
            params![token_hash(id), created_ago, used_ago],
        )
        .unwrap();
    }

    #[test]
    fn sessions_end_when_idle_past_their_lifetime_or_logged_out() {
        let (_dir, conn) = db();
        let policy = SessionPolicy::default();
        let user_id: i64 = conn.query_row("SELECT id FROM users WHERE name = 'ana'", [], |r| r.get(0)).unwrap();
        let id = create_session(&conn, user_id, policy).unwrap();
        let stored: String = conn.query_row("SELECT id_hash FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, token_hash(&id), "only the hash is kept");
        let (op, stale) = session(&conn, &id, policy).unwrap().unwrap();
        assert_eq!((op.name.as_str(), op.role, stale), ("ana", Role::Analyst, false));
        assert!(session(&conn, "bfps_nothing", policy).unwrap().is_none());

        // Used a minute ago: alive, due a touch; idle past the limit: gone.
        age_session(&conn, &id, 120, 60);
        assert!(session(&conn, &id, policy).unwrap().unwrap().1);
        touch_session(&conn, &id).unwrap();
        assert!(!session(&conn, &id, policy).unwrap().unwrap().1);
        age_session(&conn, &id, policy.idle_secs + 10, policy.idle_secs);
        assert!(session(&conn, &id, policy).unwrap().is_none());
        // Busy but past the absolute lifetime: gone.
        age_session(&conn, &id, policy.absolute_secs, 1);
        assert!(session(&conn, &id, policy).unwrap().is_none());
        // A new login sweeps the expired one away.
        let fresh = create_session(&conn, user_id, policy).unwrap();
        let count: i64 = conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 1);
        end_session(&conn, &fresh).unwrap();
        assert!(session(&conn, &fresh, policy).unwrap().is_none());
    }

    // The lock-out after wrong passwords is tested on every backend in
    // `store::console`.

    #[test]
    fn the_audit_trail_is_append_only() {
        let (_dir, conn) = db();
        for (i, action) in ["login.ok", "feedback.set", "device.add"].into_iter().enumerate() {
            let e = NewAuditEntry {
                actor: "ana".into(),
                action,
                target: format!("t{i}"),
                detail: String::new(),
                client: Some("127.0.0.1".into()),
            };
            audit(&conn, &e).unwrap();
        }
        let all = audit_trail(&conn, None, 10).unwrap();
        assert_eq!(
            all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["device.add", "feedback.set", "login.ok"]
        );
        let older = audit_trail(&conn, Some(all[0].id), 1).unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].action, "feedback.set");
        let edit = conn.execute("UPDATE audit_log SET actor = 'mallory'", []);
        assert!(edit.unwrap_err().to_string().contains("append-only"));
        let wipe = conn.execute("DELETE FROM audit_log", []);
        assert!(wipe.unwrap_err().to_string().contains("append-only"));
        assert_eq!(audit_trail(&conn, None, 10).unwrap().len(), 3);
    }
}
