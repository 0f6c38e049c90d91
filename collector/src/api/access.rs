//! Who may call what: the one table of every route and the access it
//! requires ([`ROUTE_ACCESS`]), and the extractors that identify the caller
//! ([`Caller`]) and demand a role ([`RequireRole`]).
//!
//! A bearer token names its kind by its prefix: `bfpu_` an operator's API
//! token (the role of its user), `bfp_` a device's token (ingest, heartbeat
//! and the agents' model only: a device never reads results). A token that
//! is unknown, revoked or expired is refused (401), never taken as no
//! credential, and no peer address is an identity.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::extract::{bearer, mime};
use super::{AppState, ConnInfo};
use crate::error::{Error, Result};
use crate::store::console::{csrf_token, SessionPolicy, SESSION_PREFIX};
use crate::store::devices::TOKEN_PREFIX;
use crate::store::users::API_TOKEN_PREFIX;
use crate::store::{DeviceId, Operator, Role};

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the dashboard's page and assets, the OpenAPI document, the
    /// login itself).
    Public,
    /// The original system's contract: open where the operator keeps it
    /// open (a trusted legacy listener, or `--open-legacy-api`), else this
    /// role.
    Legacy(Role),
    /// A device's token.
    Device,
    /// A device's token, or an operator of this role.
    DeviceOr(Role),
    /// An operator of at least this role.
    Operator(Role),
}

/// Every route of the service (method, path as the router spells it) and
/// its access: the one place that says who may call what. A route missing
/// here answers 500 to everyone (see [`enforce`]), so forgetting it fails
/// closed.
pub const ROUTE_ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/", Access::Public),
    ("GET", "/assets/{*path}", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("POST", "/api/login", Access::Public),
    ("POST", "/api/logout", Access::Operator(Role::Viewer)),
    ("GET", "/api/session", Access::Operator(Role::Viewer)),
    ("GET", "/health", Access::Legacy(Role::Viewer)),
    // Ready or not, nothing more: load balancers and orchestrators probe it
    // without a secret. Its writer round trip is shared, one a second at
    // most, so unauthenticated probes cannot crowd the writer.
    ("GET", "/health/ready", Access::Public),
    ("POST", "/api/predict", Access::Legacy(Role::Analyst)),
    ("POST", "/api/predict-csv", Access::Legacy(Role::Analyst)),
    ("GET", "/api/analytics", Access::Legacy(Role::Viewer)),
    ("GET", "/api/results", Access::Legacy(Role::Viewer)),
    ("POST", "/api/results/{id}/feedback", Access::Operator(Role::Analyst)),
    ("GET", "/api/export/labelled.csv", Access::Operator(Role::Analyst)),
    ("GET", "/api/insights", Access::Operator(Role::Viewer)),
    ("GET", "/api/export.csv", Access::Operator(Role::Viewer)),
    ("POST", "/api/ingest", Access::Device),
    ("GET", "/api/devices", Access::Operator(Role::Viewer)),
    ("POST", "/api/devices", Access::Operator(Role::Admin)),
    ("DELETE", "/api/devices/{name}", Access::Operator(Role::Admin)),
    ("GET", "/api/devices/{name}/blocks", Access::Operator(Role::Viewer)),
    ("GET", "/api/decisions", Access::Operator(Role::Analyst)),
    ("POST", "/api/decisions", Access::Operator(Role::Admin)),
    ("DELETE", "/api/decisions/{id}", Access::Operator(Role::Admin)),
    ("GET", "/api/agent/decisions", Access::Device),
    ("GET", "/api/model", Access::DeviceOr(Role::Admin)),
    ("GET", "/api/model/version", Access::DeviceOr(Role::Viewer)),
    ("GET", "/api/alerts", Access::Operator(Role::Viewer)),
    ("POST", "/api/alerts/{id}/ack", Access::Operator(Role::Analyst)),
    ("POST", "/api/alerts/{id}/resolve", Access::Operator(Role::Analyst)),
    ("GET", "/api/destinations", Access::Operator(Role::Analyst)),
    ("POST", "/api/destinations/{name}/test", Access::Operator(Role::Admin)),
    ("GET", "/api/audit", Access::Operator(Role::Admin)),
    ("GET", "/api/audit.csv", Access::Operator(Role::Admin)),
    // Counters only (no result, address or name): open where the legacy
    // routes are, so a Prometheus on the same host scrapes without a secret;
    // elsewhere a viewer's token (Prometheus' `authorization` setting).
    ("GET", "/metrics", Access::Legacy(Role::Viewer)),
];

/// The media types each state-changing route documents for its body. A
/// body of any other type is refused (400) before the handler runs, so a
/// foreign page's "simple" `text/plain` or form POST, which a browser sends
/// without asking, never reaches one. A request without a body (a
/// `DELETE`, an alert action without a note) needs no type.
pub const ROUTE_BODIES: &[(&str, &str, &[&str])] = &[
    ("POST", "/api/login", &["application/json"]),
    ("POST", "/api/logout", &["application/json"]),
    ("POST", "/api/predict", &["application/json"]),
    ("POST", "/api/predict-csv", &["multipart/form-data"]),
    ("POST", "/api/results/{id}/feedback", &["application/json"]),
    ("POST", "/api/ingest", &["application/x-bfp-batch", "application/json"]),
    ("POST", "/api/devices", &["application/json"]),
    ("DELETE", "/api/devices/{name}", &["application/json"]),
    ("POST", "/api/decisions", &["application/json"]),
    ("DELETE", "/api/decisions/{id}", &["application/json"]),
    ("POST", "/api/alerts/{id}/ack", &["application/json"]),
    ("POST", "/api/alerts/{id}/resolve", &["application/json"]),
    ("POST", "/api/destinations/{name}/test", &["application/json"]),
];

/// `path` as [`ROUTE_ACCESS`] spells it (for counters keyed by route).
pub(crate) fn static_path(path: &str) -> &'static str {
    ROUTE_ACCESS.iter().find(|(_, p, _)| *p == path).map_or("unmatched", |(_, p, _)| p)
}

/// The access `method path` requires, if it is a route.
pub fn access_of(method: &str, path: &str) -> Option<Access> {
    ROUTE_ACCESS.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path).map(|(_, _, a)| *a)
}

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "bfp_session";
/// The header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may reach the original system's routes without a credential, and
/// which names the service answers to.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// `--open-legacy-api`: the legacy routes are open on every listener.
    /// Default: false (open only on trusted legacy listeners).
    pub open_legacy_api: bool,
    /// `--legacy-listener IP` (repeatable): the local addresses on which the
    /// legacy routes are open without a credential. Default (empty): every
    /// loopback address (127.0.0.0/8, ::1).
    pub legacy_listeners: Vec<IpAddr>,
    /// `--allowed-host NAME` (repeatable), lower case, without port, plus
    /// `localhost` and the machine's name added at start. An IP address is
    /// allowed when it is the address the connection reached.
    pub allowed_hosts: BTreeSet<String>,
    /// Session lifetimes and the account lock-out.
    pub sessions: SessionPolicy,
    /// Set `Secure` on the session cookie (the collector serves TLS).
    pub secure_cookie: bool,
    /// `--cors-origin` values: origins allowed to send state-changing
    /// requests from a browser, besides the collector's own.
    pub cors_origins: Vec<String>,
}

impl ConsoleConfig {
    /// Whether the legacy routes are open on a connection that reached
    /// `local`. Decided by the listener's address, never the peer's: the
    /// peer's is whatever a proxy or a spoofed route makes it.
    pub fn legacy_open_on(&self, local: Option<IpAddr>) -> bool {
        if self.open_legacy_api {
            return true;
        }
        let Some(local) = local else { return false };
        if self.legacy_listeners.is_empty() {
            local.is_loopback() || local.to_canonical().is_loopback()
        } else {
            self.legacy_listeners.contains(&local)
        }
    }

    /// Whether `host` (a `Host` header value) names this service on a
    /// connection that reached `local`.
    pub fn host_allowed(&self, host: &str, local: Option<IpAddr>) -> bool {
        let name = host_name(host);
        if let Ok(ip) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            // An address cannot be rebound to another site by DNS; it must
            // be the one this connection reached (any, if unknown).
            return local.is_none_or(|l| l.to_canonical() == ip.to_canonical() || l.is_unspecified());
        }
        self.allowed_hosts.contains(&name)
    }
}

/// The host part of a `Host` value, lower case, without the port.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default()
    } else {
        host.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .into()
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Who is calling, from its bearer token or session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credential.
    Anonymous,
    /// An active device.
    Device(DeviceId),
    /// An operator (an API token of a user, a dashboard session, or
    /// `--admin-token`).
    Operator(Operator),
}

impl Caller {
    /// The operator of at least `role`: 401 without a credential, 403 for a
    /// device or a lesser role.
    pub fn require(self, role: Role) -> Result<Operator> {
        match self {
            Caller::Operator(op) if op.role >= role => Ok(op),
            Caller::Operator(op) => {
                Err(Error::Forbidden(format!("{} is {} and this needs {}", op.name, op.role.as_str(), role.as_str())))
            }
            Caller::Device(_) => Err(Error::Forbidden("a device token may only ingest and fetch the model".into())),
            Caller::Anonymous => {
                Err(Error::Unauthorized(format!("this needs an operator token or login of role {}", role.as_str())))
            }
        }
    }

    /// What the audit trail calls this caller.
    pub fn name(&self) -> String {
        match self {
            Caller::Anonymous => "anonymous".into(),
            Caller::Device(d) => format!("device:{}", d.name),
            Caller::Operator(op) => op.name.clone(),
        }
    }
}

/// The operator `--admin-token` stands for.
pub const ADMIN_TOKEN_OPERATOR: &str = "admin-token";

/// The caller [`enforce`] identified, kept in the request's extensions for
/// the handler.
#[derive(Debug, Clone)]
pub struct Identified {
    /// Who.
    pub caller: Caller,
    /// The session id when the caller came with the session cookie.
    pub session: Option<String>,
    /// The client's address, for the audit trail.
    pub client: Option<IpAddr>,
}

/// The session id in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(std::result::Result::ok)
        .find(|c| c.name() == SESSION_COOKIE && c.value().starts_with(SESSION_PREFIX))
        .map(|c| c.value().to_string())
}

/// Identifies the caller: a bearer token first (an unknown, revoked or
/// expired one is a 401, never taken as no credential), else the session
/// cookie (a stale one is no credential: the caller is anonymous).
async fn identify(headers: &HeaderMap, s: &AppState) -> Result<(Caller, Option<String>)> {
    if let Some(token) = bearer(headers) {
        if let Some(expected) = &s.admin_token {
            // Compared as hashes so the time taken does not leak a prefix.
            if Sha256::digest(expected.as_bytes()) == Sha256::digest(token.as_bytes()) {
                let op = Operator { id: 0, name: ADMIN_TOKEN_OPERATOR.into(), role: Role::Admin };
                return Ok((Caller::Operator(op), None));
            }
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(caller) = s.tokens.get(&key) {
            return Ok((caller, None));
        }
        let known = if token.starts_with(API_TOKEN_PREFIX) {
            s.store.authenticate_operator(token.to_string()).await?.map(Caller::Operator)
        } else if token.starts_with(TOKEN_PREFIX) {
            s.store.authenticate(token.to_string()).await?.map(Caller::Device)
        } else {
            None
        };
        let caller = known.ok_or_else(|| Error::Unauthorized("unknown, revoked or expired token".into()))?;
        s.tokens.put(key, caller.clone());
        return Ok((caller, None));
    }
    if let Some(id) = session_cookie(headers) {
        if let Some(op) = s.store.session(id.clone(), s.console.sessions).await? {
            return Ok((Caller::Operator(op), Some(id)));
        }
    }
    Ok((Caller::Anonymous, None))
}

/// How long a verified bearer token is taken as verified without asking the
/// database again: a token revoked, expired or whose user changed role
/// stops working (or changes) within this time. One database read a second
/// per token instead of one per request keeps authenticated requests as
/// fast as open ones.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Above this many tokens remembered, the cache starts over (many distinct
/// valid tokens within a second only happen with a fleet that large).
const TOKEN_CACHE_MAX: usize = 10_000;

/// Bearer tokens verified in the last [`TOKEN_CACHE_TTL`], by their SHA-256
/// (never the token itself); only tokens the database accepted.
#[derive(Debug, Default)]
pub struct TokenCache {
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Caller, std::time::Instant)>>,
}

impl TokenCache {
    fn get(&self, key: &[u8; 32]) -> Option<Caller> {
        let map = self.verified.lock().ok()?;
        let (caller, at) = map.get(key)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| caller.clone())
    }

    fn put(&self, key: [u8; 32], caller: Caller) {
        if let Ok(mut map) = self.verified.lock() {
            if map.len() >= TOKEN_CACHE_MAX {
                map.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
                if map.len() >= TOKEN_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(key, (caller, std::time::Instant::now()));
        }
    }
}

/// The connection's addresses, as the listener recorded them.
fn conn_info(req: &Request) -> Option<ConnInfo> {
    req.extensions().get::<ConnectInfo<ConnInfo>>().map(|ConnectInfo(c)| *c)
}

/// The refusal of a request whose `Host` names another site (DNS rebinding:
/// a foreign name resolving to this machine); checked on every path, 404s
/// included, before routing.
pub(crate) fn host_refusal(s: &AppState, req: &Request) -> Option<Error> {
    let local = conn_info(req).and_then(|c| c.local).map(|a| a.ip());
    match req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).or(req.uri().host()) {
        None => Some(Error::BadInput("the request has no Host header".into())),
        Some(h) if !s.console.host_allowed(h, local) => Some(Error::MisdirectedHost(format!(
            "this collector does not answer to Host {h:?} (add it with --allowed-host)"
        ))),
        Some(_) => None,
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn has_body(req: &Request) -> bool {
    use axum::body::HttpBody;
    let headers = req.headers();
    req.body().size_hint().lower() > 0
        || headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().parse::<u64>().map_or(true, |n| n > 0))
}

/// Applies [`ROUTE_ACCESS`] to every routed request, before its handler:
/// identifies the caller, admits it or answers 401/403, demands the CSRF
/// token of a cookie-authenticated state-changing request, refuses a body
/// of an undocumented media type and a state-changing request from a
/// foreign browser origin. The caller is left in the extensions
/// ([`Identified`]) for the handler, and the route on the reply
/// ([`RouteLabel`]).
///
/// A hand-written layer rather than `from_fn`, which boxes the route once
/// more and allocates twice more on every request.
#[derive(Clone)]
pub struct EnforceLayer(pub AppState);

impl<S> tower::Layer<S> for EnforceLayer {
    type Service = Enforce<S>;

    fn layer(&self, inner: S) -> Enforce<S> {
        Enforce { inner, state: self.0.clone() }
    }
}

/// The service [`EnforceLayer`] puts in front of each route.
#[derive(Clone)]
pub struct Enforce<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for Enforce<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The service polled ready is the one called; a fresh clone waits
        // for the next request.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let state = self.state.clone();
        Box::pin(async move {
            let matched = req.extensions().get::<MatchedPath>().cloned();
            let route = RouteLabel(matched.as_ref().map_or("unmatched", |m| static_path(m.as_str())));
            let mut response = match admit(&state, matched, &mut req).await {
                Ok(()) => inner.call(req).await?,
                Err(e) => axum::response::IntoResponse::into_response(e),
            };
            response.extensions_mut().insert(route);
            Ok(response)
        })
    }
}

/// The route a reply answered, as [`ROUTE_ACCESS`] names it: left on the
/// reply for the request counters, which run outside the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLabel(pub &'static str);

async fn admit(s: &AppState, matched: Option<MatchedPath>, req: &mut Request) -> Result<()> {
    let path = matched.as_ref().map(MatchedPath::as_str).unwrap_or_default();
    let method = if req.method() == Method::HEAD { "GET" } else { req.method().as_str() };
    let access = match access_of(method, path) {
        Some(a) => a,
        None if ROUTE_ACCESS.iter().any(|(_, p, _)| *p == path) => return Err(Error::MethodNotAllowed),
        None => return Err(Error::Internal(format!("route {method} {path} has no access rule"))),
    };
    let conn = conn_info(req);
    let client = conn.map(|c| c.peer.ip());
    if access == Access::Public {
        req.extensions_mut().insert(Identified { caller: Caller::Anonymous, session: None, client });
        return check_body(req, path, s);
    }
    let (caller, session) = match identify(req.headers(), s).await {
        Ok(found) => found,
        Err(e @ Error::Unauthorized(_)) => return Err(s.rate_limits.auth_failed(static_path(path), client, e)),
        Err(e) => return Err(e),
    };
    match access {
        Access::Public => {}
        Access::Legacy(role) => {
            if !s.console.legacy_open_on(conn.and_then(|c| c.local).map(|a| a.ip())) {
                caller.clone().require(role)?;
            }
        }
        Access::Device => match &caller {
            Caller::Device(_) => {}
            Caller::Anonymous => return Err(Error::Unauthorized("this needs a device token".into())),
            Caller::Operator(op) => {
                return Err(Error::Forbidden(format!("{} is an operator; only a device token ingests", op.name)))
            }
        },
        Access::DeviceOr(role) => {
            if !matches!(caller, Caller::Device(_)) {
                caller.clone().require(role)?;
            }
        }
        Access::Operator(role) => {
            caller.clone().require(role)?;
        }
    }
    if let Some(id) = &session {
        if is_state_changing(req.method()) {
            let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let expected = csrf_token(id);
            // Compared as hashes so the time taken does not leak a prefix.
            if Sha256::digest(sent.as_bytes()) != Sha256::digest(expected.as_bytes()) {
                return Err(Error::Forbidden(format!(
                    "a request made with the session cookie needs its {CSRF_HEADER}"
                )));
            }
        }
    }
    check_body(req, path, s)?;
    let device = match &caller {
        Caller::Device(d) => Some(d.id),
        _ => None,
    };
    s.rate_limits.check_route(path, client, device)?;
    req.extensions_mut().insert(Identified { caller, session, client });
    Ok(())
}

/// The media type and origin checks of a state-changing request.
fn check_body(req: &Request, path: &str, s: &AppState) -> Result<()> {
    let (method, headers) = (req.method(), req.headers());
    if !is_state_changing(method) {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let own = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)));
        let listed = s.console.cors_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
        if !own && !listed {
            return Err(Error::Forbidden(format!("state-changing requests from origin {origin:?} are not allowed")));
        }
    }
    if has_body(req) {
        let allowed =
            ROUTE_BODIES.iter().find(|(m, p, _)| *m == method.as_str() && *p == path).map_or(&[][..], |r| r.2);
        let sent = mime(headers);
        let json_like = sent.starts_with("application/") && sent.ends_with("+json");
        let ok = allowed.iter().any(|t| *t == sent || (*t == "application/json" && json_like));
        if !ok {
            return Err(Error::BadInput(format!(
                "Content-Type {sent:?} is not accepted here; send {}",
                if allowed.is_empty() { "no body".to_string() } else { allowed.join(" or ") }
            )));
        }
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self> {
        if let Some(found) = parts.extensions.get::<Identified>() {
            return Ok(found.caller.clone());
        }
        Ok(identify(&parts.headers, s).await?.0)
    }
}

/// The caller as [`enforce`] identified it (anonymous on a public route).
impl FromRequestParts<AppState> for Identified {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self> {
        parts
            .extensions
            .get::<Identified>()
            .cloned()
            .ok_or_else(|| Error::Internal("the route was not passed through the access check".into()))
    }
}

/// A role an extractor can demand.
pub trait RoleMarker: Send + Sync {
    /// The least role allowed.
    const ROLE: Role;
}

/// Marker: at least a viewer.
#[derive(Debug)]
pub struct Viewer;
/// Marker: at least an analyst.
#[derive(Debug)]
pub struct Analyst;
/// Marker: an administrator.
#[derive(Debug)]
pub struct Admin;

impl RoleMarker for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl RoleMarker for Analyst {
    const ROLE: Role = Role::Analyst;
}
impl RoleMarker for Admin {
    const ROLE: Role = Role::Admin;
}

/// The calling operator, of at least role `R`; 401 or 403 otherwise.
#[derive(Debug)]
pub struct RequireRole<R: RoleMarker>(pub Operator, PhantomData<R>);

impl<R: RoleMarker> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, s).await?;
        Ok(RequireRole(caller.require(R::ROLE)?, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route the OpenAPI document declares, plus the dashboard's.
    fn documented_routes() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value = serde_json::from_str(&super::super::openapi::DOCUMENT).unwrap();
        let mut routes: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object().unwrap().keys().map(move |m| (m.to_ascii_uppercase(), path.clone()))
            })
            .collect();
        routes.insert(("GET".into(), "/".into()));
        routes.insert(("GET".into(), "/assets/{*path}".into()));
        routes
    }

    #[test]
    fn the_access_table_lists_every_documented_route_once() {
        let table: Vec<(String, String)> =
            ROUTE_ACCESS.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        let unique: BTreeSet<_> = table.iter().cloned().collect();
        assert_eq!(unique.len(), table.len(), "a route is listed twice");
        let documented = documented_routes();
        let missing: Vec<_> = documented.difference(&unique).collect();
        assert!(missing.is_empty(), "routes without an access rule: {missing:?}");
        let extra: Vec<_> = unique.difference(&documented).collect();
        assert!(extra.is_empty(), "access rules for undocumented routes: {extra:?}");
    }

    #[test]
    fn devices_never_read_results_and_roles_nest() {
        for (method, path, access) in ROUTE_ACCESS {
            let reads_results = path.contains("result") || path.contains("export") || path.contains("insights");
            if reads_results {
                assert!(!matches!(access, Access::Device | Access::DeviceOr(_)), "{method} {path}");
            }
        }
        let device = Caller::Device(DeviceId { id: 1, name: "pi".into() });
        assert!(matches!(device.require(Role::Viewer), Err(Error::Forbidden(_))));
        assert!(matches!(Caller::Anonymous.require(Role::Viewer), Err(Error::Unauthorized(_))));
        let analyst = Caller::Operator(Operator { id: 2, name: "ana".into(), role: Role::Analyst });
        assert!(analyst.clone().require(Role::Viewer).is_ok());
        assert!(analyst.clone().require(Role::Analyst).is_ok());
        assert!(matches!(analyst.require(Role::Admin), Err(Error::Forbidden(_))));
        assert_eq!(access_of("post", "/api/devices"), Some(Access::Operator(Role::Admin)));
        assert_eq!(access_of("GET", "/api/nothing"), None);
    }

    use super::super::test_service as service;

    async fn add_device(app: &crate::api::Api, token: Option<&str>, name: &str) -> u16 {
        use tower::ServiceExt;
        let mut req = axum::http::Request::post("/api/devices")
            .header("content-type", "application/json")
            .header("host", "localhost");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = axum::body::Body::from(format!("{{\"name\": \"{name}\"}}"));
        app.clone().oneshot(req.body(body).unwrap()).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn only_administrators_tokens_administer_devices_from_another_address() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        store.add_user("root".into(), Role::Admin, "h".into()).await.unwrap();
        store.add_user("ana".into(), Role::Analyst, "h".into()).await.unwrap();
        let admin = store.add_api_token("root".into(), None).await.unwrap().token;
        let analyst = store.add_api_token("ana".into(), None).await.unwrap().token;
        let expired = store.add_api_token("root".into(), Some(1_000_000_000)).await.unwrap().token;
        let revoked = store.add_api_token("root".into(), None).await.unwrap();
        store.revoke_api_token(revoked.id).await.unwrap();
        let device = store.add_device("pi-0".into()).await.unwrap();

        assert_eq!(add_device(&app, None, "d1").await, 401);
        assert_eq!(add_device(&app, Some(&device), "d1").await, 403);
        assert_eq!(add_device(&app, Some(&analyst), "d1").await, 403);
        assert_eq!(add_device(&app, Some(&expired), "d1").await, 401);
        assert_eq!(add_device(&app, Some(&revoked.token), "d1").await, 401);
        assert_eq!(add_device(&app, Some("bfpu_0000"), "d1").await, 401);
        assert_eq!(add_device(&app, Some(&admin), "d1").await, 201);
        assert_eq!(add_device(&app, Some("the-admin-token"), "d2").await, 201);
        let names: Vec<String> = store.devices().await.unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["d1", "d2", "pi-0"]);
        store.shutdown().await;
    }

    #[tokio::test]
    async fn a_revoked_token_stops_working_within_the_token_cache_time() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        store.add_user("root".into(), Role::Admin, "h".into()).await.unwrap();
        let made = store.add_api_token("root".into(), None).await.unwrap();
        let auth = format!("Bearer {}", made.token);
        let headers = [("authorization", auth.as_str()), ("host", "localhost")];
        let get = || call(&app, "GET", "/api/devices", "10.0.0.1:5000", &headers, "");
        assert_eq!(get().await.0, 200);
        store.revoke_api_token(made.id).await.unwrap();
        let revoked_at = std::time::Instant::now();
        // Taken as verified for at most the cache time, then refused.
        let mut status = get().await.0;
        while status == 200 {
            assert!(revoked_at.elapsed() < TOKEN_CACHE_TTL, "a revoked token worked past the cache time");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            status = get().await.0;
        }
        assert_eq!(status, 401);
        store.shutdown().await;
    }

    #[tokio::test]
    async fn api_replies_and_errors_carry_the_security_headers() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        for path in ["/health", "/api/results", "/api/nothing", "/"] {
            let req =
                axum::http::Request::get(path).header("host", "localhost").body(axum::body::Body::empty()).unwrap();
            let reply = app.clone().oneshot(req).await.unwrap();
            let h = reply.headers();
            assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
            assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
            assert_eq!(h["x-frame-options"], "DENY", "{path}");
            let csp = h["content-security-policy"].to_str().unwrap();
            let inline_script = csp
                .split(';')
                .map(str::trim)
                .any(|d| (d.starts_with("script-src") || d.starts_with("default-src")) && d.contains("unsafe-inline"));
            assert!(csp.contains("frame-ancestors 'none'") && !inline_script, "{path}: {csp}");
        }
        store.shutdown().await;
    }

    #[test]
    fn every_state_changing_route_documents_its_body_types() {
        for (method, path, _) in ROUTE_ACCESS.iter().filter(|(m, _, _)| *m != "GET") {
            assert!(ROUTE_BODIES.iter().any(|(m, p, _)| m == method && p == path), "{method} {path}");
        }
        for (method, path, _) in ROUTE_BODIES {
            assert!(access_of(method, path).is_some(), "{method} {path} is not a route");
        }
    }

    #[test]
    fn legacy_routes_open_by_the_listeners_address_and_hosts_by_name() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let default = ConsoleConfig::default();
        assert!(default.legacy_open_on(Some(loopback)) && default.legacy_open_on(Some(mapped)));
        assert!(default.legacy_open_on(Some("::1".parse().unwrap())));
        assert!(!default.legacy_open_on(Some(lan)) && !default.legacy_open_on(None));
        let open = ConsoleConfig { open_legacy_api: true, ..ConsoleConfig::default() };
        assert!(open.legacy_open_on(Some(lan)) && open.legacy_open_on(None));
        let only = ConsoleConfig { legacy_listeners: vec!["127.0.0.2".parse().unwrap()], ..ConsoleConfig::default() };
        assert!(!only.legacy_open_on(Some(loopback)) && only.legacy_open_on(Some("127.0.0.2".parse().unwrap())));

        let hosts = ConsoleConfig {
            allowed_hosts: ["localhost".to_string(), "bfp.example.org".to_string()].into(),
            ..ConsoleConfig::default()
        };
        for ok in ["localhost", "LOCALHOST:5000", "bfp.example.org.", "bfp.example.org:443", "127.0.0.1:5000"] {
            assert!(hosts.host_allowed(ok, Some(loopback)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:5000", "10.1.2.3:5000", "[::1]:5000", "localhost.evil.example", ""] {
            assert!(!hosts.host_allowed(bad, Some(loopback)), "{bad}");
        }
        assert!(hosts.host_allowed("[::1]:5000", Some("::1".parse().unwrap())));
        assert!(hosts.host_allowed("10.1.2.3", Some("0.0.0.0".parse().unwrap())));
    }

    async fn call(
        app: &crate::api::Api,
        method: &str,
        path: &str,
        local: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, serde_json::Value) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let mut req = req.body(axum::body::Body::from(body.to_string())).unwrap();
        let conn =
            super::super::ConnInfo { peer: "10.9.9.9:4444".parse().unwrap(), local: Some(local.parse().unwrap()) };
        req.extensions_mut().insert(ConnectInfo(conn));
        let reply = app.clone().oneshot(req).await.unwrap();
        let status = reply.status().as_u16();
        let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn the_listener_decides_the_legacy_routes_and_sessions_need_their_csrf_token() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        let hash = crate::auth::password::hash_password("analyst password").unwrap();
        store.add_user("ana".into(), Role::Analyst, hash).await.unwrap();
        let host = [("host", "localhost")];

        // The same peer: open through the loopback listener, closed through another.
        assert_eq!(call(&app, "GET", "/api/results", "127.0.0.1:5000", &host, "").await.0, 200);
        let (status, body) = call(&app, "GET", "/api/results", "10.0.0.1:5000", &host, "").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(call(&app, "GET", "/api/insights", "127.0.0.1:5000", &host, "").await.0, 401);
        // A foreign name is refused on every path, unknown ones included.
        for path in ["/api/results", "/api/nothing", "/"] {
            let (status, body) = call(&app, "GET", path, "127.0.0.1:5000", &[("host", "evil.example")], "").await;
            assert_eq!((status, body["error"].as_str()), (421, Some("Misdirected request")), "{path}");
        }

        // Log in; the cookie works for reads, and for writes only with its CSRF token.
        use tower::ServiceExt;
        let login = axum::http::Request::post("/api/login")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(r#"{"user": "ana", "password": "analyst password"}"#))
            .unwrap();
        let reply = app.clone().oneshot(login).await.unwrap();
        assert_eq!(reply.status(), 200);
        let set_cookie = reply.headers()["set-cookie"].to_str().unwrap().to_string();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attr), "{set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let bytes = axum::body::to_bytes(reply.into_body(), 1 << 20).await.unwrap();
        let session: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((session["user"].as_str(), session["role"].as_str()), (Some("ana"), Some("analyst")));
        let csrf = session["csrf_token"].as_str().unwrap().to_string();
        let with_cookie = [("host", "localhost"), ("cookie", cookie.as_str())];
        assert_eq!(call(&app, "GET", "/api/insights", "10.0.0.1:5000", &with_cookie, "").await.0, 200);
        assert_eq!(call(&app, "GET", "/api/audit", "10.0.0.1:5000", &with_cookie, "").await.0, 403);
        let ack = |h: Vec<(&'static str, String)>| {
            let app = app.clone();
            async move {
                let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
                call(&app, "POST", "/api/alerts/99/ack", "10.0.0.1:5000", &h, "{}").await
            }
        };
        let base = vec![("host", "localhost".to_string()), ("cookie", cookie.clone())];
        let json = ("content-type", "application/json".to_string());
        let (status, body) = ack([base.clone(), vec![json.clone()]].concat()).await;
        assert_eq!(status, 403, "no CSRF token: {body}");
        let (status, _) = ack([base.clone(), vec![json.clone(), ("x-csrf-token", "0".repeat(64))]].concat()).await;
        assert_eq!(status, 403, "a wrong CSRF token");
        let with_csrf = [base.clone(), vec![("x-csrf-token", csrf.clone())]].concat();
        let (status, body) = ack([with_csrf.clone(), vec![json.clone()]].concat()).await;
        assert_eq!(status, 404, "admitted, and no alert 99: {body}");
        let (status, body) = ack([with_csrf.clone(), vec![("content-type", "text/plain".to_string())]].concat()).await;
        assert_eq!(status, 400, "a text/plain body: {body}");
        let foreign = [with_csrf.clone(), vec![json.clone(), ("origin", "http://evil.example".to_string())]].concat();
        assert_eq!(ack(foreign).await.0, 403, "a foreign origin");
        let own = [with_csrf.clone(), vec![json.clone(), ("origin", "http://localhost".to_string())]].concat();
        assert_eq!(ack(own).await.0, 404, "the page's own origin");

        // Logged out, the cookie is nobody's.
        let h: Vec<(&str, &str)> = with_csrf.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(call(&app, "POST", "/api/logout", "10.0.0.1:5000", &h, "").await.0, 200);
        assert_eq!(call(&app, "GET", "/api/insights", "10.0.0.1:5000", &with_cookie, "").await.0, 401);
        let trail: Vec<String> = store
            .audit_trail(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.actor, e.action))
            .collect();
        assert_eq!(trail, ["ana logout", "ana login.ok"]);
        store.shutdown().await;
    }

    #[tokio::test]
    async fn one_address_gets_ten_login_attempts_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        // A locked account answers without a password check, so the attempts
        // come faster than the limiter refills (one every six seconds).
        let policy = crate::store::console::SessionPolicy::default();
        for _ in 0..policy.max_failures {
            store.login_failed("ana".into(), policy).await.unwrap();
        }
        let host = [("host", "localhost"), ("content-type", "application/json")];
        let body = r#"{"user": "ana", "password": "wrong password"}"#;
        let per_minute = super::super::session::LOGIN_ATTEMPTS_PER_MINUTE;
        for i in 0..per_minute {
            assert_eq!(call(&app, "POST", "/api/login", "127.0.0.1:5000", &host, body).await.0, 423, "attempt {i}");
        }
        let (status, reply) = call(&app, "POST", "/api/login", "127.0.0.1:5000", &host, body).await;
        assert_eq!((status, reply["error"].as_str()), (429, Some("Too many requests")), "{reply}");
        let refused = store.audit_trail(None, 100).await.unwrap().iter().filter(|e| e.action == "login.locked").count();
        assert_eq!(refused, per_minute as usize, "a throttled attempt is not even looked at");
        store.shutdown().await;
    }
}
