//! The API's OpenAPI 3.1 document, generated from the code: each handler's
//! `#[utoipa::path]` (operation id, tag, parameters, request body, its own
//! answers), the types it answers (`ToSchema`, the wire types of
//! `bfp-common` under its `openapi` feature), and [`ROUTE_ACCESS`](super::access::ROUTE_ACCESS) for what
//! every route shares: its credentials (`security`) and the refusals the
//! access layer and the edge service give before or around the handler.
//! Built once, on first request of `GET /api/openapi.json`.

use std::sync::LazyLock;

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::access::{access_of, Access, ROUTE_BODIES, SESSION_COOKIE};
use crate::store::Role;

/// Every JSON error: `error` names the category (`Invalid or missing input
/// data`, `Unauthorized`, ...), `detail` says what exactly was wrong.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(as = Error, example = json!({"error": "Invalid or missing input data", "detail": "limit must be a non-negative integer, got \"x\""}))]
pub struct ErrorBody {
    /// The category, stable for clients to match.
    pub error: &'static str,
    /// What was wrong, for a person.
    pub detail: String,
}

/// A verdict or an analyst's true class.
#[derive(ToSchema)]
pub enum Verdict {
    /// Benign.
    Normal,
    /// Worth an analyst's look.
    Suspicious,
}

/// How a stored prediction arrived.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ResultSource {
    /// `POST /api/predict`.
    Single,
    /// `POST /api/predict-csv`.
    Csv,
    /// An agent's batch (`POST /api/ingest`).
    Agent,
}

/// A decision's state now.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DecisionState {
    /// In force.
    Active,
    /// Past its end.
    Expired,
    /// Deleted (revoked) by an operator.
    Deleted,
}

/// A notification destination's kind.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum DestinationType {
    /// HTTP POST, signed.
    Webhook,
    /// RFC 5424 syslog over TCP or TLS.
    Syslog,
    /// E-mail over SMTP.
    Email,
}

/// An operator's role.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RoleName {
    /// Reads.
    Viewer,
    /// Reads, labels, acknowledges.
    Analyst,
    /// Everything.
    Admin,
}

/// A body of bytes that is not JSON (a postcard batch, a model artifact).
#[allow(dead_code)] // Documents bodies read and written as bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(Vec<u8>);

/// The document's description: what holds for every route.
const DESCRIPTION: &str = "Behavioral Fingerprinting collector. Compatible with the original Flask API \
(health, predict, predict-csv, analytics, results), which stays open without a credential on loopback \
listeners (or everywhere with --open-legacy-api); every other route needs the credential its `security` \
names and the role its description names (ROUTE_ACCESS in collector/src/api/access.rs, docs/security.md). \
Every error is JSON: {\"error\": ..., \"detail\": ...}; each operation lists the statuses it may answer, \
those of the access layer and the edge service (400 without a Host header, 408, 421 for a Host this collector \
does not answer to, 500, 503 while shutting down) included.";

/// The document's root: every route's operation and the types they use.
#[derive(OpenApi)]
#[openapi(
    info(title = "bfp-collector", description = DESCRIPTION, license(name = "Apache-2.0")),
    servers((url = "http://127.0.0.1:5000", description = "the default listener")),
    paths(
        super::health::health,
        super::health::ready,
        super::health::openapi,
        super::predict::predict,
        super::predict_csv::predict_csv,
        super::analytics::analytics,
        super::results::results,
        super::feedback::feedback,
        super::feedback::export_labelled,
        super::insights::insights,
        super::insights::export_csv,
        super::ingest::ingest,
        super::devices::list_devices,
        super::devices::add_device,
        super::devices::revoke_device,
        super::decisions::device_blocks,
        super::decisions::list,
        super::decisions::add,
        super::decisions::delete,
        super::decisions::for_agent,
        super::models::model,
        super::models::model_version,
        super::alerts::list,
        super::alerts::ack,
        super::alerts::resolve,
        super::destinations::list,
        super::destinations::test,
        super::metrics::metrics,
        super::session::login,
        super::session::logout,
        super::session::session,
        super::audit::list,
        super::audit::export_csv,
    ),
    // The schemas that parameters name by `value_type` (utoipa collects those of bodies itself).
    components(schemas(
        ErrorBody,
        Verdict,
        ResultSource,
        DecisionState,
        DestinationType,
        RoleName,
        super::results::TimeFieldName,
        super::results::OrderName,
        super::insights::BucketName,
        crate::store::alerts::AlertState,
        bfp_common::wire::RecordKind,
    )),
    modifiers(&FromAccessTable),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "predictions", description = "The original contract: score, store and read predictions"),
        (name = "triage", description = "The console's read models, exports and analyst feedback"),
        (name = "agents", description = "What devices call: ingest, decisions and the agents' model"),
        (name = "fleet", description = "Devices and their tokens"),
        (name = "decisions", description = "Blocks pushed to device groups"),
        (name = "alerts", description = "Alerts and their notification destinations"),
        (name = "console", description = "Operators' sessions and the audit trail"),
        (name = "service", description = "Metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The security scheme names.
const DEVICE_TOKEN: &str = "deviceToken";
const API_TOKEN: &str = "apiToken";
const SESSION: &str = "session";

/// Adds what [`ROUTE_ACCESS`](super::access::ROUTE_ACCESS) and [`ROUTE_BODIES`] say of every route: its
/// security requirements, its role, and the refusals of the access layer.
struct FromAccessTable;

impl Modify for FromAccessTable {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            DEVICE_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bfp_...")
                    .description(Some(
                        "A device's token (`bfp-collector device add`, or POST /api/devices): ingest, \
                         its group's decisions and the agents' model only",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bfpu_...")
                    .description(Some(
                        "An operator's API token (`bfp-collector token add`), with its user's role; or \
                         --admin-token, an administrator",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The console's session (POST /api/login), with its user's role; state-changing requests \
                 also send its CSRF token as X-CSRF-Token",
            ))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("GET", &mut item.get),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("PUT", &mut item.put),
                ("PATCH", &mut item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                // A route the table does not know answers 500 to everyone;
                // a unit test of `access` makes both lists the same.
                let Some(access) = access_of(method, path) else { continue };
                let with_body = ROUTE_BODIES.iter().any(|(m, p, _)| *m == method && p == path);
                apply(op, access, with_body);
            }
        }
    }
}

fn requirement(scheme: &str) -> SecurityRequirement {
    SecurityRequirement::new(scheme, Vec::<String>::new())
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "a viewer or above",
        Role::Analyst => "an analyst or above",
        Role::Admin => "an administrator",
    }
}

fn apply(op: &mut Operation, access: Access, with_body: bool) {
    let operator = [requirement(API_TOKEN), requirement(SESSION)];
    let (security, who): (Vec<SecurityRequirement>, String) = match access {
        Access::Public => (vec![], "Open to anyone.".into()),
        Access::Legacy(role) => (
            [SecurityRequirement::default()].into_iter().chain(operator).collect(),
            format!(
                "Open without a credential on a trusted legacy listener (loopback, or --open-legacy-api); \
                 elsewhere {}.",
                role_name(role)
            ),
        ),
        Access::Device => (vec![requirement(DEVICE_TOKEN)], "A device's token.".into()),
        Access::DeviceOr(role) => (
            [requirement(DEVICE_TOKEN)].into_iter().chain(operator).collect(),
            format!("A device's token, or {}.", role_name(role)),
        ),
        Access::Operator(role) => (operator.to_vec(), format!("Operators: {}.", role_name(role))),
    };
    op.security = Some(security);
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\nAccess: {who}"),
        _ => format!("Access: {who}"),
    });
    // What the edge service and the error type may answer on any route.
    let mut refusals: Vec<(&str, &str)> = vec![
        ("400", "A request without a Host header (or a bad parameter or body, where the route takes one)"),
        ("408", "The request took longer than --request-timeout (or its body stalled past --body-read-timeout)"),
        ("421", "A Host this collector does not answer to (--allowed-host)"),
        ("500", "A server-side failure (details in the collector's log, not here)"),
        ("503", "Shutting down: the writer takes no more work"),
    ];
    if access != Access::Public {
        refusals.push(("401", "No credential, or an unknown, revoked or expired one"));
        refusals.push(("403", "The credential's role is below the route's, or a session's CSRF token is missing"));
        refusals.push(("429", "Too many requests from this client (see Retry-After)"));
    }
    if with_body {
        refusals.push(("400", "A bad body, or a Content-Type the route does not take"));
        refusals.push(("413", "The body is larger than the route takes"));
    }
    for (status, description) in refusals {
        if !op.responses.responses.contains_key(status) {
            op.responses.responses.insert(status.to_string(), error_response(description));
        }
    }
}

/// A response with the [`ErrorBody`] schema.
pub fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("Error"))))
            .build(),
    )
}

/// The document as JSON, generated once.
pub static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_security_from_the_table() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        let ingest = &doc["paths"]["/api/ingest"]["post"];
        assert_eq!(ingest["security"], serde_json::json!([{"deviceToken": []}]));
        assert_eq!(ingest["operationId"], "ingest");
        assert_eq!(doc["paths"]["/health/ready"]["get"]["security"], serde_json::json!([]));
        let devices = &doc["paths"]["/api/devices"]["post"];
        assert_eq!(devices["security"], serde_json::json!([{"apiToken": []}, {"session": []}]));
        assert_eq!(
            devices["responses"]["403"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        let legacy = &doc["paths"]["/api/results"]["get"]["security"];
        assert_eq!(legacy, &serde_json::json!([{}, {"apiToken": []}, {"session": []}]));
        // Every operation has an id and a tag, and every id is unique.
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
                assert!(ids.insert(id.to_string()), "{id} twice");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path}: no tag");
            }
        }
    }
}
