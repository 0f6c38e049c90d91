//! The dashboard's login:
//!
//! - `POST /api/login` `{"user": "...", "password": "..."}`: checks the
//!   password (Argon2id), starts a session and sets its cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Secure` under TLS, `Path=/`); answers
//!   the user, the role and the session's CSRF token, which every
//!   state-changing request made with the cookie must carry in
//!   `X-CSRF-Token`. 401 for a wrong name or password (the same answer for
//!   both), 423 while the account is locked (five wrong passwords in a row
//!   lock it for 15 minutes), 429 when one client address tries too often.
//! - `GET /api/session`: who is logged in (and the CSRF token again, for a
//!   reloaded page).
//! - `POST /api/logout`: ends the session and clears the cookie.
//!
//! Every login, failure and logout is written to the audit trail.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cookie::{Cookie, SameSite};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::json;

use super::access::{Caller, Identified, SESSION_COOKIE};
use super::extract::{JsonBody, RequestBody};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::console::{csrf_token, LockState, NewAuditEntry};
use crate::store::Operator;

/// Login attempts one client address may make per minute (right or wrong);
/// a burst of this many, then one more every `60 / n` seconds.
pub const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 10;

/// Above this many addresses tracked, the limiter drops the idle ones.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Login attempts per client address, in memory (a restart forgets them;
/// the per-account lock-out is in the store and survives it).
pub type LoginLimiter = Arc<DefaultKeyedRateLimiter<IpAddr>>;

/// A limiter allowing [`LOGIN_ATTEMPTS_PER_MINUTE`] per address.
pub fn login_limiter() -> LoginLimiter {
    let n = NonZeroU32::new(LOGIN_ATTEMPTS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
}

/// The body of `POST /api/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    user: String,
    password: String,
}

impl RequestBody for LoginBody {
    const WHAT: &'static str = "login";
}

fn audit_entry(actor: &str, action: &'static str, detail: &str, client: Option<IpAddr>) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.chars().take(128).collect(),
        action,
        target: String::new(),
        detail: detail.into(),
        client: client.map(|c| c.to_string()),
    }
}

fn session_json(op: &Operator, session: &str) -> serde_json::Value {
    json!({ "user": op.name, "role": op.role.as_str(), "csrf_token": csrf_token(session) })
}

fn cookie_header(value: String, secure: bool, remove: bool) -> Result<HeaderValue> {
    let mut c =
        Cookie::build((SESSION_COOKIE, value)).http_only(true).same_site(SameSite::Strict).path("/").secure(secure);
    if remove {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&c.build().to_string()).map_err(|e| Error::Internal(format!("cookie: {e}")))
}

pub(super) async fn login(
    State(s): State<AppState>,
    who: Identified,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response> {
    if let Some(client) = who.client {
        // Addresses whose attempts have all aged out are forgotten, so many
        // one-time addresses cannot grow the table without bound.
        if s.login_limiter.len() > MAX_TRACKED_ADDRESSES {
            s.login_limiter.retain_recent();
        }
        if s.login_limiter.check_key(&client).is_err() {
            s.rate_limits.count("/api/login");
            return Err(Error::TooManyRequests(format!(
                "more than {LOGIN_ATTEMPTS_PER_MINUTE} login attempts a minute from {client}; wait and try again"
            )));
        }
    }
    let name = body.user.trim().to_string();
    let policy = s.console.sessions;
    if let LockState::LockedUntil(_) = s.store.lock_state(name.clone()).await? {
        s.store.audit(audit_entry(&name, "login.locked", "refused: account locked", who.client)).await?;
        return Err(locked(policy.lockout_secs));
    }
    let credentials = s.store.user_credentials(name.clone()).await?;
    // An unknown name is checked against a stand-in hash, so the time taken
    // does not tell which names exist.
    let hash = credentials.as_ref().map_or_else(|| STAND_IN_HASH.clone(), |(_, h)| h.clone());
    let password = body.password;
    // Argon2id takes tens of milliseconds of CPU: off the async workers.
    let verified = tokio::task::spawn_blocking(move || crate::auth::password::verify_password(&password, &hash))
        .await
        .map_err(|e| Error::Internal(format!("password check: {e}")))?
        && credentials.is_some();
    let Some((op, _)) = credentials.filter(|_| verified) else {
        let state = s.store.login_failed(name.clone(), policy).await?;
        let detail = if matches!(state, LockState::LockedUntil(_)) {
            "wrong password; account locked"
        } else {
            "wrong user or password"
        };
        s.store.audit(audit_entry(&name, "login.failed", detail, who.client)).await?;
        return Err(Error::Unauthorized("wrong user name or password".into()));
    };
    s.store.login_succeeded(name).await?;
    let session = s.store.create_session(op.id, policy).await?;
    s.store.audit(audit_entry(&op.name, "login.ok", op.role.as_str(), who.client)).await?;
    let mut response = Json(session_json(&op, &session)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie_header(session, s.console.secure_cookie, false)?);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

static STAND_IN_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| crate::auth::password::hash_password("no user has this password").unwrap_or_default());

fn locked(lockout_secs: i64) -> Error {
    Error::Locked(format!(
        "too many wrong passwords: the account is locked for {} minutes after the last one",
        lockout_secs / 60
    ))
}

pub(super) async fn session(who: Identified) -> Result<Response> {
    let Caller::Operator(op) = &who.caller else { return Err(Error::Unauthorized("not logged in".into())) };
    let mut body = json!({ "user": op.name, "role": op.role.as_str() });
    if let Some(id) = &who.session {
        body = session_json(op, id);
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub(super) async fn logout(State(s): State<AppState>, who: Identified) -> Result<Response> {
    if let Some(id) = who.session.clone() {
        s.store.end_session(id).await?;
        s.store.audit(audit_entry(&who.caller.name(), "logout", "", who.client)).await?;
    }
    let mut response = Json(json!({ "logged_out": who.session.is_some() })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie_header(String::new(), s.console.secure_cookie, true)?);
    Ok(response)
}
