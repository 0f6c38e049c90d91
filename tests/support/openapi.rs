//! Every answer a test gets from a real collector, checked against the
//! OpenAPI document that collector serves: the method and path matched to
//! one of the document's path templates, the status among the operation's
//! responses, the content type among the response's, and a JSON body
//! validated against the response's schema (OpenAPI 3.1 schemas are JSON
//! Schema 2020-12; `#/components/schemas/...` resolved in the document).
//!
//! The support's HTTP helpers ([`crate::get`], [`crate::send`], the
//! [`crate::Collector`] methods, ...) call [`check`] on every reply from an
//! address a [`crate::Collector`] listens on, and fail the test on an answer
//! the document does not describe. Answers of the console's page and assets
//! (not API) and CORS preflights are not checked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use crate::Reply;

/// A loaded document and the validators made from it, by JSON pointer.
pub struct Contract {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// Addresses (`host:port`) of the collectors the tests started.
static COLLECTORS: Mutex<Option<HashSet<String>>> = Mutex::new(None);
/// The document, fetched once from the first plain-HTTP collector (every
/// collector of a test run is the same binary).
static CONTRACT: OnceLock<Contract> = OnceLock::new();

/// Answers checked so far in this process.
static CHECKED: AtomicU64 = AtomicU64::new(0);

/// How many answers [`check`] has checked in this test process (set
/// `BFP_E2E_OPENAPI_STATS=1` to have each collector's drop print it).
pub fn checked() -> u64 {
    CHECKED.load(Ordering::Relaxed)
}

/// Notes that `addr` is a collector's, so answers from it are checked, and
/// loads the document from it if it is the first (over plain HTTP).
pub fn register(addr: std::net::SocketAddr, https: bool) {
    COLLECTORS.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(HashSet::new).insert(addr.to_string());
    if !https && CONTRACT.get().is_none() {
        let r = crate::agent_unchecked().get(&format!("http://{addr}/api/openapi.json")).call();
        let reply = crate::read_reply(r);
        assert_eq!(reply.status, 200, "GET /api/openapi.json: {}", reply.body);
        let _ = CONTRACT.set(Contract::new(reply.json()));
    }
}

/// Checks `reply` to `method url` if `url` is a collector's; panics with
/// what is wrong when the document does not describe it.
pub fn check(method: &str, url: &str, reply: &Reply) {
    let Some((authority, path)) = split_url(url) else { return };
    let known = COLLECTORS.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|s| s.contains(authority));
    if !known {
        return;
    }
    let Some(contract) = CONTRACT.get() else { return };
    if let Err(e) = contract.check(method, path, reply) {
        panic!("{method} {url} answered what the OpenAPI document does not say: {e}");
    }
    CHECKED.fetch_add(1, Ordering::Relaxed);
}

/// `host:port` and the path (without query) of an `http(s)://` URL.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    Some((authority, if path.is_empty() { "/" } else { path }))
}

impl Contract {
    /// A contract of `doc` (an OpenAPI 3.1 document).
    pub fn new(doc: Value) -> Contract {
        Contract { doc, validators: Mutex::default() }
    }

    /// The document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// The document's path template that `path` matches: the one with the
    /// most literal segments, so `/api/model/version` is not `{name}`.
    pub fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<&str> = path.split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        paths
            .keys()
            .filter_map(|template| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (t, s) in parts.iter().zip(&segments) {
                    if t.starts_with('{') && t.ends_with('}') {
                        if s.is_empty() {
                            return None;
                        }
                    } else if t == s {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, template.as_str()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, t)| t)
    }

    /// Whether the document describes `reply` to `method path`; the error
    /// says what it does not.
    pub fn check(&self, method: &str, path: &str, reply: &Reply) -> Result<(), String> {
        let method = method.to_ascii_lowercase();
        if method == "options" || method == "head" {
            return Ok(());
        }
        let status = reply.status.to_string();
        let Some(template) = self.template(path) else {
            // Not API: the console's page and assets, or the router's 404
            // (the Host check, 400 or 421, comes before routing).
            if path == "/" || path.starts_with("/assets/") {
                return Ok(());
            }
            if [400, 404, 405, 421].contains(&reply.status) {
                return self.check_error_body(reply);
            }
            return Err(format!("{path} is no path of the document, yet it answered {}", reply.status));
        };
        let pointer_of_op = format!("/paths/{}/{method}", escape(template));
        let Some(op) = self.doc.pointer(&pointer_of_op) else {
            // A documented path with another method: the router's 405.
            if reply.status == 405 {
                return self.check_error_body(reply);
            }
            return Err(format!("{method} {template} is not documented, yet it answered {}", reply.status));
        };
        let Some(response) = op["responses"].get(&status).or_else(|| op["responses"].get("default")) else {
            return Err(format!(
                "status {status} is not among {template}'s documented responses {:?}; body {}",
                op["responses"].as_object().map(|r| r.keys().collect::<Vec<_>>()),
                short(&reply.body)
            ));
        };
        let response = self.resolve(response);
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            return if reply.body.is_empty() {
                Ok(())
            } else {
                Err(format!("{status} of {template} documents no body, yet it has one: {}", short(&reply.body)))
            };
        };
        let media = reply.content_type.as_deref().unwrap_or_default();
        let media = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let Some((documented_media, media_type)) = content.iter().find(|(m, _)| **m == media) else {
            return Err(format!(
                "{status} of {template} is {media:?}, not one of the documented {:?}",
                content.keys().collect::<Vec<_>>()
            ));
        };
        if documented_media != "application/json" {
            return Ok(());
        }
        let body: Value =
            serde_json::from_str(&reply.body).map_err(|e| format!("not JSON ({e}): {}", short(&reply.body)))?;
        if media_type.get("schema").is_none() {
            return Ok(());
        }
        let pointer = format!(
            "/paths/{}/{method}/responses/{}/content/application~1json/schema",
            escape(template),
            if op["responses"].get(&status).is_some() { status.as_str() } else { "default" }
        );
        let pointer = match op["responses"].get(&status).and_then(|r| r.get("$ref")).and_then(Value::as_str) {
            // A response by reference: its schema lives under components.
            Some(r) => format!("{}/content/application~1json/schema", r.trim_start_matches('#')),
            None => pointer,
        };
        self.validate(&pointer, &body).map_err(|e| format!("{status} of {method} {template}: {e}"))
    }

    /// `{"$ref": ...}` followed once.
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.doc.pointer(r.trim_start_matches('#')).unwrap_or(v),
            None => v,
        }
    }

    fn check_error_body(&self, reply: &Reply) -> Result<(), String> {
        let body: Value =
            serde_json::from_str(&reply.body).map_err(|e| format!("not JSON ({e}): {}", short(&reply.body)))?;
        self.validate("/components/schemas/Error", &body).map_err(|e| format!("{} body: {e}", reply.status))
    }

    /// Validates `value` against the schema at `pointer` in the document.
    pub fn validate(&self, pointer: &str, value: &Value) -> Result<(), String> {
        let validator = {
            let mut cache = self.validators.lock().unwrap_or_else(|p| p.into_inner());
            match cache.get(pointer) {
                Some(v) => v.clone(),
                None => {
                    // The schema inside a root that holds the document's
                    // components, so their `$ref`s resolve.
                    let schema = self.doc.pointer(pointer).ok_or_else(|| format!("no schema at {pointer}"))?;
                    let root = json!({
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "allOf": [schema],
                        "components": self.doc["components"],
                    });
                    let v = jsonschema::draft202012::new(&root).map_err(|e| format!("schema at {pointer}: {e}"))?;
                    let v = Arc::new(v);
                    cache.insert(pointer.to_string(), v.clone());
                    v
                }
            }
        };
        let errors: Vec<String> =
            validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).take(5).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{} (body {})", errors.join("; "), short(&value.to_string())))
        }
    }
}

/// A JSON pointer token of `s` (RFC 6901).
fn escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn short(s: &str) -> String {
    if s.len() > 600 {
        let mut end = 600;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_string()
    }
}
