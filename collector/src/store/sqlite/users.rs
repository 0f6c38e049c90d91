//! Users and their API tokens in SQLite: the `users` and `api_tokens`
//! tables. Writes go through the writer's connection, reads through the
//! read pool, like devices.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{Error, Result};
use crate::store::devices::{format_unix, token_hash};
use crate::store::users::{check_user_name, new_api_token, ApiTokenInfo, NewApiToken, Operator, Role, UserInfo};

pub(super) fn role_of(text: String) -> rusqlite::Result<Role> {
    Role::parse(&text).map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

/// Creates user `name`.
pub(super) fn add_user(conn: &Connection, name: &str, role: Role, password_hash: &str) -> Result<()> {
    check_user_name(name)?;
    let taken = conn.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(())).optional()?.is_some();
    if taken {
        return Err(Error::Conflict(format!("user {name:?} already exists")));
    }
    conn.execute(
        "INSERT INTO users (name, role, password_hash) VALUES (?1, ?2, ?3)",
        params![name, role.as_str(), password_hash],
    )?;
    Ok(())
}

/// Every user, by name.
pub(super) fn list_users(conn: &Connection) -> Result<Vec<UserInfo>> {
    let mut stmt = conn.prepare_cached("SELECT name, role, created_at FROM users ORDER BY name")?;
    let rows =
        stmt.query_map([], |r| Ok(UserInfo { name: r.get(0)?, role: role_of(r.get(1)?)?, created: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes user `name` with its tokens, in one transaction.
pub(super) fn delete_user(conn: &mut Connection, name: &str) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM api_tokens WHERE user_id = (SELECT id FROM users WHERE name = ?1)", [name])?;
    tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)", [name])?;
    if tx.execute("DELETE FROM users WHERE name = ?1", [name])? == 0 {
        return Err(Error::NotFound(format!("no user named {name:?}")));
    }
    tx.commit()?;
    Ok(())
}

/// Replaces user `name`'s password hash and ends its sessions (a new
/// password is often a response to a stolen one).
pub(super) fn set_password(conn: &Connection, name: &str, password_hash: &str) -> Result<()> {
    if conn.execute("UPDATE users SET password_hash = ?2 WHERE name = ?1", params![name, password_hash])? == 0 {
        return Err(Error::NotFound(format!("no user named {name:?}")));
    }
    conn.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?1)", [name])?;
    Ok(())
}

/// User `name` and its password hash.
pub(super) fn credentials(conn: &Connection, name: &str) -> Result<Option<(Operator, String)>> {
    let row = conn
        .prepare_cached("SELECT id, name, role, password_hash FROM users WHERE name = ?1")?
        .query_row([name], |r| Ok((Operator { id: r.get(0)?, name: r.get(1)?, role: role_of(r.get(2)?)? }, r.get(3)?)))
        .optional()?;
    Ok(row)
}

/// Creates an API token for user `name`.
pub(super) fn add_api_token(conn: &Connection, user: &str, expires_at: Option<i64>) -> Result<NewApiToken> {
    let user_id: i64 = conn
        .query_row("SELECT id FROM users WHERE name = ?1", [user], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("no user named {user:?}")))?;
    let token = new_api_token()?;
    conn.execute(
        "INSERT INTO api_tokens (user_id, token_hash, expires_at) VALUES (?1, ?2, ?3)",
        params![user_id, token_hash(&token), expires_at],
    )?;
    Ok(NewApiToken { id: conn.last_insert_rowid(), token })
}

/// Every API token, newest first.
pub(super) fn list_api_tokens(conn: &Connection) -> Result<Vec<ApiTokenInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, u.name, u.role, t.created_at, t.expires_at, t.revoked_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(ApiTokenInfo {
            id: r.get(0)?,
            user: r.get(1)?,
            role: role_of(r.get(2)?)?,
            created: r.get(3)?,
            expires: r.get::<_, Option<i64>>(4)?.map(format_unix),
            revoked: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes API token `id`.
pub(super) fn revoke_api_token(conn: &Connection, id: i64) -> Result<()> {
    let n =
        conn.execute("UPDATE api_tokens SET revoked_at = datetime('now') WHERE id = ?1 AND revoked_at IS NULL", [id])?;
    if n == 0 {
        return Err(Error::NotFound(format!("no active API token with id {id}")));
    }
    Ok(())
}

/// The operator holding `token`, if it is active and unexpired.
pub(super) fn authenticate(conn: &Connection, token: &str) -> Result<Option<Operator>> {
    let row = conn
        .prepare_cached(
            "SELECT u.id, u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ?1 AND t.revoked_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > CAST(strftime('%s', 'now') AS INTEGER))",
        )?
        .query_row([token_hash(token)], |r| Ok(Operator { id: r.get(0)?, name: r.get(1)?, role: role_of(r.get(2)?)? }))
        .optional()?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("u.db")).unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        (dir, conn)
    }

    // The behaviour (unique names, tokens revoked, expired or orphaned) is
    // tested on every backend in `store::users`; this is SQLite's storage.
    #[test]
    fn only_an_api_tokens_hash_is_stored() {
        let (_dir, conn) = db();
        add_user(&conn, "ana", Role::Analyst, "h").unwrap();
        let live = add_api_token(&conn, "ana", None).unwrap();
        let stored: String =
            conn.query_row("SELECT token_hash FROM api_tokens WHERE id = ?1", [live.id], |r| r.get(0)).unwrap();
        assert_ne!(stored, live.token);
        assert!(authenticate(&conn, &live.token).unwrap().is_some());
    }
}
