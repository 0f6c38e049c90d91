//! `bfp-collector user add|list|delete|passwd` and
//! `bfp-collector token add|list|revoke`: operators and their API tokens,
//! managed on the database file through the store seam (beside a running
//! service or without one, as `device`).

use std::io::{BufRead, IsTerminal, Write};

use crate::config::{TokenAction, TokenArgs, UserAction, UserArgs};
use crate::error::{Error, Result};
use crate::store::{self, sqlite::SqliteConfig};

use super::password::hash_password;

/// Runs `bfp-collector user ...`.
pub async fn user(args: &UserArgs) -> Result<()> {
    // Read (and hash) the password before opening the store, so a refused
    // password leaves no trace in the database.
    let hash = match &args.action {
        UserAction::Add { name, .. } | UserAction::Passwd { name } => Some(hash_password(&read_password(name)?)?),
        _ => None,
    };
    let store = store::open(&SqliteConfig::new(&args.db))?;
    let done = match (&args.action, hash) {
        (UserAction::Add { name, role }, Some(hash)) => store
            .add_user(name.clone(), *role, hash)
            .await
            .map(|()| eprintln!("user {name:?} created with role {}", role.as_str())),
        (UserAction::Passwd { name }, Some(hash)) => {
            store.set_password(name.clone(), hash).await.map(|()| eprintln!("password of {name:?} changed"))
        }
        (UserAction::Delete { name }, _) => {
            store.delete_user(name.clone()).await.map(|()| eprintln!("user {name:?} and its API tokens deleted"))
        }
        (UserAction::List, _) => store.users().await.and_then(|list| print_json(&list)),
        _ => Err(Error::Internal("a password was not read".into())),
    };
    store.shutdown().await;
    done
}

/// Runs `bfp-collector token ...`.
pub async fn token(args: &TokenArgs) -> Result<()> {
    let store = store::open(&SqliteConfig::new(&args.db))?;
    let done = match &args.action {
        TokenAction::Add { user, expires_days } => {
            let expires_at = match expires_days {
                Some(days) => Some(expiry(*days)?),
                None => None,
            };
            store.add_api_token(user.clone(), expires_at).await.map(|new| {
                eprintln!("API token {} created for {user:?}; it is shown only this once:", new.id);
                println!("{}", new.token);
            })
        }
        TokenAction::List => store.api_tokens().await.and_then(|list| print_json(&list)),
        TokenAction::Revoke { id } => store.revoke_api_token(*id).await.map(|()| eprintln!("API token {id} revoked")),
    };
    store.shutdown().await;
    done
}

/// Unix seconds `days` days from now.
fn expiry(days: u32) -> Result<i64> {
    if days == 0 {
        return Err(Error::BadInput("--expires-days must be at least 1".into()));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| Error::Internal(format!("clock before 1970: {e}")))?
        .as_secs() as i64;
    Ok(now + i64::from(days) * 86_400)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// A password typed twice at a terminal (not echoed), or the first line of
/// stdin when it is not a terminal (scripts, provisioning).
fn read_password(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            return Err(Error::BadInput("the two passwords differ".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let _ = std::io::stderr().flush();
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
