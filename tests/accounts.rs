//! Operators and their API tokens through the real `bfp-collector user` and
//! `bfp-collector token` commands on a database file: passwords from stdin,
//! tokens shown once, listings without secrets, refusals without traces.

use bfp_e2e::Backend;
use serde_json::Value;

fn ok(db: &std::ffi::OsStr, args: &[&str], stdin: &str) -> String {
    bfp_e2e::collector_cli(db, args, stdin)
}

fn refused(db: &std::ffi::OsStr, args: &[&str], stdin: &str) -> String {
    let out = bfp_e2e::collector_output(db, args, stdin);
    assert!(!out.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(text: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(text).expect("JSON listing").as_array().expect("a JSON list").clone()
}

#[test]
fn users_and_api_tokens_are_managed_on_the_database_file() {
    for backend in Backend::ALL {
        users_and_api_tokens_are_managed_on_the_database_file_on(backend);
    }
}

fn users_and_api_tokens_are_managed_on_the_database_file_on(backend: Backend) {
    eprintln!("backend: {backend:?}");
    let dir = backend.fresh();
    let db = dir.db().to_os_string();

    ok(&db, &["user", "add", "root-admin", "--role", "admin"], "first admin password\n");
    ok(&db, &["user", "add", "vera", "--role", "viewer"], "viewer password 1\n");
    let err = refused(&db, &["user", "add", "vera", "--role", "analyst"], "another password\n");
    assert!(err.contains("already exists"), "{err}");
    let err = refused(&db, &["user", "add", "shorty", "--role", "analyst"], "short\n");
    assert!(err.contains("at least 10 characters"), "{err}");
    let err = refused(&db, &["user", "add", "x", "--role", "root"], "long enough pass\n");
    assert!(err.contains("root"), "{err}");

    let users = json(&ok(&db, &["user", "list"], ""));
    let names: Vec<(&str, &str)> =
        users.iter().map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap())).collect();
    assert_eq!(names, [("root-admin", "admin"), ("vera", "viewer")]);
    let listing = serde_json::to_string(&users).unwrap();
    assert!(!listing.contains("argon2") && !listing.contains("password"), "{listing}");

    let token = ok(&db, &["token", "add", "--user", "vera", "--expires-days", "30"], "");
    let token = token.trim();
    assert!(token.starts_with("bfpu_") && token.len() == 5 + 64, "{token}");
    let other = ok(&db, &["token", "add", "--user", "root-admin"], "");
    assert_ne!(token, other.trim());
    let err = refused(&db, &["token", "add", "--user", "nobody"], "");
    assert!(err.contains("no user named"), "{err}");
    let err = refused(&db, &["token", "add", "--user", "vera", "--expires-days", "0"], "");
    assert!(err.contains("at least 1"), "{err}");

    let tokens = json(&ok(&db, &["token", "list"], ""));
    assert_eq!(tokens.len(), 2);
    let vera = tokens.iter().find(|t| t["user"] == "vera").expect("vera's token listed");
    assert_eq!(vera["role"], "viewer");
    assert!(vera["expires"].is_string() && vera["revoked"].is_null(), "{vera}");
    let admin = tokens.iter().find(|t| t["user"] == "root-admin").expect("admin's token listed");
    assert!(admin["expires"].is_null(), "{admin}");
    let listing = serde_json::to_string(&tokens).unwrap();
    assert!(!listing.contains(token) && !listing.contains(other.trim()), "tokens are never listed");

    let id = vera["id"].as_i64().unwrap().to_string();
    ok(&db, &["token", "revoke", &id], "");
    let err = refused(&db, &["token", "revoke", &id], "");
    assert!(err.contains("no active API token"), "{err}");
    let tokens = json(&ok(&db, &["token", "list"], ""));
    assert!(tokens.iter().find(|t| t["user"] == "vera").unwrap()["revoked"].is_string());

    ok(&db, &["user", "passwd", "vera"], "a new viewer password\n");
    let err = refused(&db, &["user", "passwd", "nobody"], "a new viewer password\n");
    assert!(err.contains("no user named"), "{err}");
    ok(&db, &["user", "delete", "vera"], "");
    let users = json(&ok(&db, &["user", "list"], ""));
    assert_eq!(users.len(), 1);
    let tokens = json(&ok(&db, &["token", "list"], ""));
    assert!(tokens.iter().all(|t| t["user"] == "root-admin"), "a deleted user's tokens go with it");
}
