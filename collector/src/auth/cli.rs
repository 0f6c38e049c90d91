//! `bfp-collector user add|list|delete|passwd` and
//! `bfp-collector token add|list|revoke`: operators and their API tokens,
//! managed on the database file through the store seam (beside a running
//! service or without one, as `device`).

use std::io::{BufRead, IsTerminal, Write};

use crate::config::{TokenAction, TokenArgs, UserAction, UserArgs};
use crate::error::{Error, Result};
use crate::store;

use super::password::hash_password;

/// Appends a command-line change to the audit trail, in the name of the
/// account that ran it (`cli:USER`).
pub async fn audit_cli(store: &dyn store::Store, action: &'static str, target: String, detail: String) -> Result<()> {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let actor = format!("cli:{user}");
    store.audit(store::console::NewAuditEntry { actor, action, target, detail, client: None }).await
}

/// Runs `bfp-collector user ...`.
pub async fn user(args: &UserArgs) -> Result<()> {
    // Read (and hash) the password before opening the store, so a refused
    // password leaves no trace in the database.
    let hash = match &args.action {
        UserAction::Add { name, .. } | UserAction::Passwd { name } => Some(hash_password(&read_password(name)?)?),
        _ => None,
    };
    let store = store::open_db(&args.db).await?;
    let done = match (&args.action, hash) {
        (UserAction::Add { name, role }, Some(hash)) => match store.add_user(name.clone(), *role, hash).await {
            Ok(()) => audit_cli(&*store, "user.add", name.clone(), role.as_str().into())
                .await
                .map(|()| eprintln!("user {name:?} created with role {}", role.as_str())),
            Err(e) => Err(e),
        },
        (UserAction::Passwd { name }, Some(hash)) => match store.set_password(name.clone(), hash).await {
            Ok(()) => audit_cli(&*store, "user.passwd", name.clone(), String::new())
                .await
                .map(|()| eprintln!("password of {name:?} changed; its sessions ended")),
            Err(e) => Err(e),
        },
        (UserAction::Delete { name }, _) => match store.delete_user(name.clone()).await {
            Ok(()) => audit_cli(&*store, "user.delete", name.clone(), String::new())
                .await
                .map(|()| eprintln!("user {name:?} and its API tokens deleted")),
            Err(e) => Err(e),
        },
        (UserAction::List, _) => store.users().await.and_then(|list| print_json(&list)),
        _ => Err(Error::Internal("a password was not read".into())),
    };
    store.shutdown().await;
    done
}

/// Runs `bfp-collector token ...`.
pub async fn token(args: &TokenArgs) -> Result<()> {
    let store = store::open_db(&args.db).await?;
    let done = match &args.action {
        TokenAction::Add { user, expires_days } => {
            let expires_at = match expires_days {
                Some(days) => Some(expiry(*days)?),
                None => None,
            };
            match store.add_api_token(user.clone(), expires_at).await {
                Ok(new) => audit_cli(&*store, "token.add", user.clone(), format!("token {}", new.id)).await.map(|()| {
                    eprintln!("API token {} created for {user:?}; it is shown only this once:", new.id);
                    println!("{}", new.token);
                }),
                Err(e) => Err(e),
            }
        }
        TokenAction::List => store.api_tokens().await.and_then(|list| print_json(&list)),
        TokenAction::Revoke { id } => match store.revoke_api_token(*id).await {
            Ok(()) => audit_cli(&*store, "token.revoke", format!("token {id}"), String::new())
                .await
                .map(|()| eprintln!("API token {id} revoked")),
            Err(e) => Err(e),
        },
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
