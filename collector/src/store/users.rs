//! Operators as the store keeps them: named users with a role and an
//! Argon2id password hash, and their API tokens. As with device tokens, an
//! API token is shown once and only its SHA-256 is kept; a password is
//! hashed above the seam (see [`crate::auth::password`]), so no backend
//! ever sees one in clear.

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Prefix of every operator API token; device tokens start with
/// [`super::devices::TOKEN_PREFIX`] instead, so a leaked token says which
/// kind it is.
pub const API_TOKEN_PREFIX: &str = "bfpu_";

/// What an operator may do. Each role may do everything the roles before it
/// may (the order of the variants is the order of privilege).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads results, analytics and the fleet.
    Viewer,
    /// A viewer who also labels verdicts and manages alerts.
    Analyst,
    /// An analyst who also manages devices, tokens, models, users and
    /// settings.
    Admin,
}

impl Role {
    /// The name stored and shown (`viewer`, `analyst`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    /// The role stored as `s`.
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "analyst" => Ok(Role::Analyst),
            "admin" => Ok(Role::Admin),
            other => Err(Error::BadInput(format!("role must be viewer, analyst or admin, got {other:?}"))),
        }
    }
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// User row id.
    pub id: i64,
    /// User name.
    pub name: String,
    /// What the operator may do.
    pub role: Role,
}

/// A user as `user list` shows it (never its password hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created: String,
}

/// An API token as `token list` shows it (never the token).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiTokenInfo {
    /// Token id (what `token revoke` takes).
    pub id: i64,
    /// Owner.
    pub user: String,
    /// The owner's role, which the token carries.
    pub role: Role,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created: String,
    /// When it stops working, if ever.
    pub expires: Option<String>,
    /// When it was revoked, if it was.
    pub revoked: Option<String>,
}

/// A newly created API token: its id and the token itself, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Token id.
    pub id: i64,
    /// The bearer token (not stored).
    pub token: String,
}

/// Checks a user name: 1–64 characters of letters, digits, `.`, `_`, `-`,
/// `@` (so an e-mail address fits).
pub fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!("user name must be 1-64 letters, digits, '.', '_', '-' or '@', got {name:?}")))
    }
}

/// A fresh operator API token: 32 bytes from the OS's generator, hex.
pub fn new_api_token() -> Result<String> {
    let device_form = super::devices::new_token()?;
    let random = &device_form[super::devices::TOKEN_PREFIX.len()..];
    Ok(format!("{API_TOKEN_PREFIX}{random}"))
}

/// Operators and their API tokens.
#[async_trait]
pub trait Users: Send + Sync {
    /// Creates user `name`; [`Error::Conflict`] if the name is taken.
    async fn add_user(&self, name: String, role: Role, password_hash: String) -> Result<()>;

    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserInfo>>;

    /// Deletes user `name` and its API tokens; [`Error::NotFound`] if none.
    async fn delete_user(&self, name: String) -> Result<()>;

    /// Replaces user `name`'s password hash; [`Error::NotFound`] if none.
    async fn set_password(&self, name: String, password_hash: String) -> Result<()>;

    /// The user named `name` and its password hash, for a login.
    async fn user_credentials(&self, name: String) -> Result<Option<(Operator, String)>>;

    /// Creates an API token for user `name`, expiring at `expires_at` (unix
    /// seconds) if given; the token is returned once and not kept.
    async fn add_api_token(&self, user: String, expires_at: Option<i64>) -> Result<NewApiToken>;

    /// Every API token, newest first.
    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>>;

    /// Revokes API token `id`: it stops working at once.
    async fn revoke_api_token(&self, id: i64) -> Result<()>;

    /// The operator holding `token` if it is known, not revoked and not
    /// expired.
    async fn authenticate_operator(&self, token: String) -> Result<Option<Operator>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_privilege_and_round_trip() {
        assert!(Role::Viewer < Role::Analyst && Role::Analyst < Role::Admin);
        for role in [Role::Viewer, Role::Analyst, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(matches!(Role::parse("root"), Err(Error::BadInput(_))));
    }

    #[test]
    fn names_are_checked_and_api_tokens_differ_from_device_tokens() {
        assert!(check_user_name("ana.lyst@example.org").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(matches!(check_user_name(bad), Err(Error::BadInput(_))), "{bad:?}");
        }
        let t = new_api_token().unwrap();
        assert!(t.starts_with(API_TOKEN_PREFIX));
        assert_eq!(t.len(), API_TOKEN_PREFIX.len() + 64);
        assert_ne!(t, new_api_token().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_are_unique_and_their_hash_is_kept_as_given() {
        for fresh in crate::store::backends::each().await {
            let (name, s) = (fresh.name, &fresh.store);
            let add = |n: &str, role, hash: &str| s.add_user(n.into(), role, hash.into());
            add("alice", Role::Admin, "$argon2id$h1").await.unwrap();
            add("bob", Role::Viewer, "$argon2id$h2").await.unwrap();
            assert!(matches!(add("alice", Role::Viewer, "x").await, Err(Error::Conflict(_))), "{name}");
            assert!(matches!(add("bad name", Role::Viewer, "x").await, Err(Error::BadInput(_))), "{name}");
            let list = s.users().await.unwrap();
            assert_eq!(
                list.iter().map(|u| (u.name.as_str(), u.role)).collect::<Vec<_>>(),
                [("alice", Role::Admin), ("bob", Role::Viewer)],
                "{name}"
            );
            let (op, hash) = s.user_credentials("alice".into()).await.unwrap().unwrap();
            assert_eq!((op.name.as_str(), op.role, hash.as_str()), ("alice", Role::Admin, "$argon2id$h1"), "{name}");
            s.set_password("alice".into(), "$argon2id$h3".into()).await.unwrap();
            assert_eq!(s.user_credentials("alice".into()).await.unwrap().unwrap().1, "$argon2id$h3", "{name}");
            assert!(matches!(s.set_password("carol".into(), "x".into()).await, Err(Error::NotFound(_))), "{name}");
            s.delete_user("bob".into()).await.unwrap();
            assert!(s.user_credentials("bob".into()).await.unwrap().is_none(), "{name}");
            assert!(matches!(s.delete_user("bob".into()).await, Err(Error::NotFound(_))), "{name}");
            s.shutdown().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_tokens_work_until_revoked_expired_or_their_user_deleted() {
        for fresh in crate::store::backends::each().await {
            let (name, s) = (fresh.name, &fresh.store);
            s.add_user("ana".into(), Role::Analyst, "h".into()).await.unwrap();
            let live = s.add_api_token("ana".into(), None).await.unwrap();
            let later = s.add_api_token("ana".into(), Some(4_000_000_000)).await.unwrap();
            let expired = s.add_api_token("ana".into(), Some(1_000_000_000)).await.unwrap();
            assert!(matches!(s.add_api_token("nobody".into(), None).await, Err(Error::NotFound(_))), "{name}");
            let ana = s.authenticate_operator(live.token.clone()).await.unwrap().unwrap();
            assert_eq!((ana.name.as_str(), ana.role), ("ana", Role::Analyst), "{name}");
            assert!(s.authenticate_operator(later.token.clone()).await.unwrap().is_some(), "{name}");
            assert_eq!(s.authenticate_operator(expired.token.clone()).await.unwrap(), None, "{name}");
            assert_eq!(s.authenticate_operator("bfpu_wrong".into()).await.unwrap(), None, "{name}");
            s.revoke_api_token(live.id).await.unwrap();
            assert_eq!(s.authenticate_operator(live.token.clone()).await.unwrap(), None, "{name}");
            assert!(matches!(s.revoke_api_token(live.id).await, Err(Error::NotFound(_))), "{name}");
            let list = s.api_tokens().await.unwrap();
            assert_eq!(list.len(), 3, "{name}");
            assert_eq!(list[0].expires.as_deref(), Some("2001-09-09 01:46:40"), "{name}");
            assert!(list[2].revoked.is_some() && list[1].revoked.is_none(), "{name}");
            s.delete_user("ana".into()).await.unwrap();
            assert_eq!(s.authenticate_operator(later.token.clone()).await.unwrap(), None, "{name}");
            assert!(s.api_tokens().await.unwrap().is_empty(), "{name}");
            s.shutdown().await;
        }
    }
}
