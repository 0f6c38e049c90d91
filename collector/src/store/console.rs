//! The operators' console as the store keeps it: dashboard sessions, the
//! lock-out after wrong passwords, and the append-only audit trail.
//!
//! A session id is a secret like a token: the browser holds it in a cookie,
//! the store keeps only its SHA-256, so a copy of the database logs nobody
//! in. Expiry is decided by the store's clock at each use (idle and
//! absolute), never by the cookie's own lifetime.

use async_trait::async_trait;

use super::users::Operator;
use crate::error::Result;

/// Prefix of every session id (so a leaked cookie value says what it is).
pub const SESSION_PREFIX: &str = "bfps_";

/// How long sessions live and when an account locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused for this long ends. Default: 1,800 s (30 min).
    pub idle_secs: i64,
    /// A session ends this long after its login, however busy. Default:
    /// 43,200 s (12 h).
    pub absolute_secs: i64,
    /// Wrong passwords in a row that lock an account. Default: 5.
    pub max_failures: u32,
    /// How long a locked account refuses every password, the right one
    /// included. Default: 900 s (15 min).
    pub lockout_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { idle_secs: 30 * 60, absolute_secs: 12 * 3600, max_failures: 5, lockout_secs: 15 * 60 }
    }
}

/// What a login attempt's password check leads to, as the store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The account may try.
    Open,
    /// The account is locked until this unix second.
    LockedUntil(i64),
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub at: String,
    /// Who: an operator's name, `cli:USER` for the command line, or the name
    /// tried at a failed login.
    pub actor: String,
    /// What, as a dotted word (`login.failed`, `feedback.set`, `device.add`).
    pub action: String,
    /// On what (a result id, a device or user name, an alert id).
    pub target: String,
    /// Anything else worth keeping (the label, the new state, the reason).
    pub detail: String,
    /// The client's address, where the request came over the network.
    pub client: Option<String>,
}

/// An audit line to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// See [`AuditEntry::actor`].
    pub actor: String,
    /// See [`AuditEntry::action`].
    pub action: &'static str,
    /// See [`AuditEntry::target`].
    pub target: String,
    /// See [`AuditEntry::detail`].
    pub detail: String,
    /// See [`AuditEntry::client`].
    pub client: Option<String>,
}

/// Sessions, lock-outs and the audit trail.
#[async_trait]
pub trait Console: Send + Sync {
    /// Starts a session for user `user_id` (dropping sessions that `policy`
    /// has expired); returns the session id (shown once, in the cookie; only
    /// its SHA-256 is kept).
    async fn create_session(&self, user_id: i64, policy: SessionPolicy) -> Result<String>;

    /// The operator of session `id` if it exists and has neither idled out
    /// nor passed its absolute lifetime under `policy`; marks it used.
    async fn session(&self, id: String, policy: SessionPolicy) -> Result<Option<Operator>>;

    /// Ends session `id` (logout); no error if it is already gone.
    async fn end_session(&self, id: String) -> Result<()>;

    /// Whether user `name` is locked now.
    async fn lock_state(&self, name: String) -> Result<LockState>;

    /// Counts a wrong password for `name`; locks it at `policy.max_failures`
    /// in a row. Returns the state after this failure.
    async fn login_failed(&self, name: String, policy: SessionPolicy) -> Result<LockState>;

    /// Clears `name`'s count of wrong passwords (a successful login).
    async fn login_succeeded(&self, name: String) -> Result<()>;

    /// Appends a line to the audit trail.
    async fn audit(&self, entry: NewAuditEntry) -> Result<()>;

    /// The newest `limit` audit lines with an id below `before_id` (if
    /// given), newest first.
    async fn audit_trail(&self, before_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>>;
}

/// A fresh session id: 32 bytes from the OS's generator, hex.
pub fn new_session_id() -> Result<String> {
    let device_form = super::devices::new_token()?;
    Ok(format!("{SESSION_PREFIX}{}", &device_form[super::devices::TOKEN_PREFIX.len()..]))
}

/// The CSRF token of session `id`: derived from the session's secret, so a
/// page can only know it from the login reply or `GET /api/session` (which
/// a foreign site cannot read), and nothing more is stored.
pub fn csrf_token(session_id: &str) -> String {
    super::devices::token_hash(&format!("bfp-csrf\0{session_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_random_and_their_csrf_tokens_differ_from_their_hash() {
        let a = new_session_id().unwrap();
        assert!(a.starts_with(SESSION_PREFIX) && a.len() == SESSION_PREFIX.len() + 64, "{a}");
        assert_ne!(a, new_session_id().unwrap());
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), super::super::devices::token_hash(&a));
        assert_ne!(csrf_token(&a), csrf_token(&new_session_id().unwrap()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn five_wrong_passwords_lock_for_the_lockout_and_a_success_clears_the_count() {
        use crate::store::users::Role;
        for fresh in crate::store::backends::each().await {
            let (name, s) = (fresh.name, &fresh.store);
            s.add_user("ana".into(), Role::Analyst, "h".into()).await.unwrap();
            let policy = SessionPolicy::default();
            for _ in 0..policy.max_failures - 1 {
                assert_eq!(s.login_failed("ana".into(), policy).await.unwrap(), LockState::Open, "{name}");
            }
            s.login_succeeded("ana".into()).await.unwrap();
            for _ in 0..policy.max_failures - 1 {
                assert_eq!(s.login_failed("ana".into(), policy).await.unwrap(), LockState::Open, "{name}");
            }
            let LockState::LockedUntil(until) = s.login_failed("ana".into(), policy).await.unwrap() else {
                panic!("{name}: locked")
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            assert!((now + policy.lockout_secs - until).abs() <= 2, "{name}: {until} vs {now}");
            assert_eq!(s.lock_state("ana".into()).await.unwrap(), LockState::LockedUntil(until), "{name}");
            assert_eq!(s.lock_state("bob".into()).await.unwrap(), LockState::Open, "{name}");
            // Once the lock has run out, one more wrong password counts from one.
            fresh.execute(&format!("UPDATE login_lockouts SET locked_until = {}", now - 10)).await;
            assert_eq!(s.lock_state("ana".into()).await.unwrap(), LockState::Open, "{name}");
            assert_eq!(s.login_failed("ana".into(), policy).await.unwrap(), LockState::Open, "{name}");
            assert_eq!(fresh.count("SELECT failures FROM login_lockouts").await, 1, "{name}");
            s.shutdown().await;
        }
    }
}
