//! Who may call what: the one table of every route and the access it
//! requires ([`ROUTE_ACCESS`]), and the extractors that identify the caller
//! ([`Caller`]) and demand a role ([`RequireRole`]).
//!
//! A bearer token names its kind by its prefix: `bfpu_` an operator's API
//! token (the role of its user), `bfp_` a device's token (ingest, heartbeat
//! and the agents' model only: a device never reads results). A token that
//! is unknown, revoked or expired is refused (401), never taken as no
//! credential, and no peer address is an identity.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::extract::bearer;
use super::AppState;
use crate::error::{Error, Result};
use crate::store::devices::TOKEN_PREFIX;
use crate::store::users::API_TOKEN_PREFIX;
use crate::store::{DeviceId, Operator, Role};

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the dashboard's page and assets, the OpenAPI document).
    Public,
    /// The original system's contract: open where the operator keeps it
    /// open (a loopback listener, or `--open-legacy-api`), else this role.
    Legacy(Role),
    /// A device's token.
    Device,
    /// A device's token, or an operator of this role.
    DeviceOr(Role),
    /// An operator of at least this role.
    Operator(Role),
}

/// Every route of the service (method, path as the router spells it) and
/// its access: the one place that says who may call what.
pub const ROUTE_ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/", Access::Public),
    ("GET", "/assets/{*path}", Access::Public),
    ("GET", "/api/openapi.json", Access::Public),
    ("GET", "/health", Access::Legacy(Role::Viewer)),
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
    ("GET", "/api/model/version", Access::DeviceOr(Role::Admin)),
    ("GET", "/metrics", Access::Operator(Role::Viewer)),
];

/// The access `method path` requires, if it is a route.
pub fn access_of(method: &str, path: &str) -> Option<Access> {
    ROUTE_ACCESS.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path).map(|(_, _, a)| *a)
}

/// Who is calling, from its bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credential.
    Anonymous,
    /// An active device.
    Device(DeviceId),
    /// An operator (an API token of a user, or `--admin-token`).
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
                Err(Error::Unauthorized(format!("this needs an operator token of role {}", role.as_str())))
            }
        }
    }
}

/// The operator `--admin-token` stands for.
pub const ADMIN_TOKEN_OPERATOR: &str = "admin-token";

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self> {
        let Some(token) = bearer(&parts.headers) else { return Ok(Caller::Anonymous) };
        if let Some(expected) = &s.admin_token {
            // Compared as hashes so the time taken does not leak a prefix.
            if Sha256::digest(expected.as_bytes()) == Sha256::digest(token.as_bytes()) {
                return Ok(Caller::Operator(Operator { id: 0, name: ADMIN_TOKEN_OPERATOR.into(), role: Role::Admin }));
            }
        }
        let known = if token.starts_with(API_TOKEN_PREFIX) {
            s.store.authenticate_operator(token.to_string()).await?.map(Caller::Operator)
        } else if token.starts_with(TOKEN_PREFIX) {
            s.store.authenticate(token.to_string()).await?.map(Caller::Device)
        } else {
            None
        };
        known.ok_or_else(|| Error::Unauthorized("unknown, revoked or expired token".into()))
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
        let doc: serde_json::Value = serde_json::from_str(super::super::health::OPENAPI).unwrap();
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

    /// The router over a real SQLite file, with `--admin-token` set; requests
    /// carry no peer address, as from another machine.
    async fn service(dir: &tempfile::TempDir) -> (axum::Router, std::sync::Arc<dyn crate::store::Store>) {
        let store = crate::store::open(&crate::store::sqlite::SqliteConfig::new(dir.path().join("a.db"))).unwrap();
        let model = crate::load_model(None).unwrap();
        let state = AppState {
            store: store.clone(),
            model_version: std::sync::Arc::from(model.model_version.as_str()),
            model: std::sync::Arc::new(model),
            agent_model: std::sync::Arc::new(crate::load_agent_model(None).unwrap()),
            metrics: std::sync::Arc::default(),
            admin_token: Some(std::sync::Arc::from("the-admin-token")),
        };
        let config = super::super::ApiConfig { max_body_bytes: 65536, max_upload_bytes: 65536, cors_origins: vec![] };
        (super::super::router(state, &config).unwrap(), store)
    }

    async fn add_device(app: &axum::Router, token: Option<&str>, name: &str) -> u16 {
        use tower::ServiceExt;
        let mut req = axum::http::Request::post("/api/devices").header("content-type", "application/json");
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
    async fn api_replies_and_errors_carry_the_security_headers() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let (app, store) = service(&dir).await;
        for path in ["/health", "/api/results", "/api/nothing", "/"] {
            let req = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
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
}
