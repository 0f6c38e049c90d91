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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// The operator's name.
    user: String,
    /// Their password.
    #[schema(format = Password)]
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

/// Who is calling.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionView<'a> {
    /// The operator.
    #[schema(value_type = String)]
    user: &'a str,
    /// Their role.
    #[schema(value_type = super::openapi::RoleName)]
    role: &'static str,
    /// With the session cookie: the CSRF token to send as X-CSRF-Token on every state-changing
    /// request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    csrf_token: Option<String>,
}

fn session_json<'a>(op: &'a Operator, session: &str) -> SessionView<'a> {
    SessionView { user: &op.name, role: op.role.as_str(), csrf_token: Some(csrf_token(session)) }
}

/// A logout's outcome.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LoggedOut {
    /// A session was ended (false: the call came with a token, not a session).
    logged_out: bool,
}

fn cookie_header(value: String, secure: bool, remove: bool) -> Result<HeaderValue> {
    let mut c =
        Cookie::build((SESSION_COOKIE, value)).http_only(true).same_site(SameSite::Strict).path("/").secure(secure);
    if remove {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&c.build().to_string()).map_err(|e| Error::Internal(format!("cookie: {e}")))
}

#[utoipa::path(post, path = "/api/login", operation_id = "login", tag = "console",
    summary = "Console login: checks the password, sets the HttpOnly SameSite=Strict session cookie (Secure under TLS) and answers the user, role and CSRF token",
    description = "Five wrong passwords in a row lock the account for 15 minutes; 10 attempts a minute per client address.",
    request_body(content = LoginBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Logged in; Set-Cookie carries the session", body = SessionView),
        (status = 400, description = "A bad body", body = super::openapi::ErrorBody),
        (status = 401, description = "Wrong user name or password", body = super::openapi::ErrorBody),
        (status = 423, description = "The account is locked after too many wrong passwords", body = super::openapi::ErrorBody),
        (status = 429, description = "More than 10 attempts a minute from this client", body = super::openapi::ErrorBody),
    ))]
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

#[utoipa::path(get, path = "/api/session", operation_id = "session", tag = "console",
    summary = "Who is calling: user and role (and the CSRF token when called with the session cookie)",
    responses((status = 200, description = "The caller", body = SessionView)))]
pub(super) async fn session(who: Identified) -> Result<Response> {
    let Caller::Operator(op) = &who.caller else { return Err(Error::Unauthorized("not logged in".into())) };
    let mut body = SessionView { user: &op.name, role: op.role.as_str(), csrf_token: None };
    if let Some(id) = &who.session {
        body = session_json(op, id);
    }
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(post, path = "/api/logout", operation_id = "logout", tag = "console",
    summary = "End the session of the cookie and clear it",
    request_body(content = Option<Object>, content_type = "application/json", description = "None, or {}"),
    responses((status = 200, description = "Logged out", body = LoggedOut)))]
pub(super) async fn logout(State(s): State<AppState>, who: Identified) -> Result<Response> {
    if let Some(id) = who.session.clone() {
        s.store.end_session(id).await?;
        s.store.audit(audit_entry(&who.caller.name(), "logout", "", who.client)).await?;
    }
    let mut response = Json(LoggedOut { logged_out: who.session.is_some() }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie_header(String::new(), s.console.secure_cookie, true)?);
    Ok(response)
}
