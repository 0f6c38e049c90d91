//! The PostgreSQL side of the store seam, for fleets: several collectors
//! writing to one database, each holding no state another would miss.
//!
//! - [`migrations`]: the schema ladder, applied at open under an advisory
//!   lock (also `bfp-collector migrate --db postgres://...`);
//! - `writer`: each collector's group commit for predictions and ingest (a
//!   task batching queued requests into one transaction, replying after
//!   its commit), with counters, roll-ups and id blocks upserted
//!   (`n = n + excluded.n`) in the rows' transaction, so several collectors
//!   writing at once add up exactly;
//! - `csv`: an upload as one transaction, streamed by binary `COPY`
//!   straight into `predictions` (each row written once), recorded as one
//!   row of `csv_uploads`, which places its rows in event-time order (they
//!   share their transaction's time and are not in `predictions_event`);
//! - `reads`: counters, pages at any offset (walking `id_blocks`) or cursor,
//!   the roll-ups and the export;
//! - `resources`: devices, feedback, users, the console, decisions, alerts;
//! - `outbox`: the notification outbox, one sender per destination among
//!   collectors (an advisory lock each);
//! - [`copy`]: `bfp-collector migrate-store`, a SQLite store copied in.
//!
//! Ids come from [`migrations`]' `bfp_reserve_ids`: every transaction takes
//! one contiguous range, so a CSV upload's rows are contiguous and ids grow
//! in the order ranges are taken (an upload takes its range as it starts,
//! one id per line of its file, and gives back what it did not use when no
//! other writer took ids since). Ranges commit in any order, so a cursor
//! page (`after_id`) stops below the lowest range still open
//! (`bfp_ids_settled`, schema step 16). An agent's `(device, seq)` is the primary
//! key of `ingested_batches` and the device's row is locked in the ingest's
//! transaction, so a batch re-sent to another collector is stored once.

pub mod copy;
mod csv;
pub mod migrations;
mod outbox;
mod reads;
mod resources;
mod store;
mod writer;

pub use migrations::{migrate, MigrationReport, SCHEMA_VERSION};
pub use store::{PgConfig, PgStore};

use crate::error::{Error, Result};

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(Box::new(e))
    }
}

/// True when `db` names a PostgreSQL database (`postgres://` or
/// `postgresql://` URL) rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Opens one connection to `url` (no TLS: loopback or a private network)
/// and drives it on the runtime until the client is dropped.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config =
        url.parse().map_err(|e| Error::Config(format!("database URL {}: {e}", redact(url))))?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| Error::Config(format!("cannot connect to {}: {e}", redact(url))))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths_and_passwords_never_shown() {
        assert!(is_postgres_url("postgres://bfp@127.0.0.1/bfp"));
        assert!(is_postgres_url("postgresql://bfp@db/bfp"));
        assert!(!is_postgres_url("instance/app.db"));
        assert_eq!(redact("postgres://bfp:s3cret@db:5432/bfp"), "postgres://bfp:***@db:5432/bfp");
        assert_eq!(redact("postgres://bfp@db/bfp"), "postgres://bfp@db/bfp");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_configuration_error_naming_it_without_its_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://bfp:s3cret@127.0.0.1:{port}/bfp");
        let err = connect(&url).await.expect_err("nothing listens there");
        let text = err.to_string();
        assert!(matches!(err, Error::Config(_)), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")) && !text.contains("s3cret"), "{text}");
    }
}
