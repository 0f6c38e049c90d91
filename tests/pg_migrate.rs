//! `bfp-collector migrate` against a throw-away PostgreSQL cluster and a
//! SQLite file: the real binary, the real servers.

use std::process::{Command, Output};

use bfp_e2e::binary;
use bfp_testkit::pg::PgCluster;

fn migrate(db: &str) -> Output {
    Command::new(binary("bfp-collector")).args(["migrate", "--database-url", db]).output().expect("run migrate")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn migrate_builds_a_postgres_schema_once_and_then_changes_nothing() {
    let cluster = PgCluster::start();
    let first = stdout(&migrate(&cluster.url()));
    assert!(
        first.starts_with(
            "PostgreSQL schema version 17 (was 0; steps applied now: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17])"
        ),
        "{first}"
    );
    let tables =
        cluster.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'");
    assert_eq!(
        tables,
        "alert_cursor,alerts,api_tokens,audit_log,counters,csv_uploads,decisions,destination_status,device_blocks,device_refusals,\
         device_responses,devices,feedback,id_blocks,id_chunks,ingested_batches,login_lockouts,outbox,predictions,\
         rollup_hourly,\
         schema_migrations,sessions,source_ips,users"
    );
    let again = stdout(&migrate(&cluster.url()));
    assert_eq!(again, "PostgreSQL schema version 17 (was 17; steps applied now: [])");
}

#[test]
fn migrate_names_an_unreachable_database_without_its_password() {
    let port = bfp_e2e::free_port();
    let out = migrate(&format!("postgres://bfp:s3cret@127.0.0.1:{port}/bfp"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect") && err.contains(&port.to_string()) && !err.contains("s3cret"), "{err}");
}

#[test]
fn migrate_creates_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("instance").join("app.db");
    let out = stdout(&migrate(db.to_str().unwrap()));
    assert!(out.starts_with("SQLite schema version "), "{out}");
    assert!(db.is_file());
}
