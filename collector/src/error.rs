//! The one error type of `bfp-collector`. Every variant knows its HTTP status,
//! so a handler returns `Result<_, Error>` and the client always gets a JSON
//! body `{"error": ..., "detail": ...}`, never an HTML page or a bare 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The `error` value the original Flask system answered for bad input; its
/// clients match on it, so it stays word for word.
pub const INVALID_INPUT: &str = "Invalid or missing input data";

/// Everything that can go wrong in the collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client sent something unusable (bad JSON, bad field, bad CSV, bad
    /// query parameter). `detail` says what, precisely.
    #[error("invalid input: {0}")]
    BadInput(String),
    /// The body exceeds the configured limit.
    #[error("payload too large: {0}")]
    TooLarge(String),
    /// Missing, unknown or revoked device token (or admin credentials).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// A known caller whose role (or kind: a device) does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request names a host this collector does not serve (a `Host`
    /// header outside `--allowed-host`: DNS rebinding).
    #[error("misdirected request: {0}")]
    MisdirectedHost(String),
    /// The account is locked after too many wrong passwords.
    #[error("locked: {0}")]
    Locked(String),
    /// The client tries too often (login attempts, predictions, uploads or
    /// batches per client, failed authentications).
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    /// The request took too long: its body stalled, or the whole request
    /// passed the request timeout.
    #[error("request timeout: {0}")]
    Timeout(String),
    /// The request clashes with what exists (a device name taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// No such route.
    #[error("not found: {0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The store is shutting down and takes no more writes.
    #[error("the collector is shutting down")]
    ShuttingDown,
    /// The database failed (disk full, I/O error, corruption). Boxed so no
    /// driver's type shows above the store seam.
    #[error("database: {0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
    /// A write batch failed in the database; every request of the batch
    /// gets this (the batch was rolled back as a whole).
    #[error("database write failed: {0}")]
    Store(String),
    /// A file could not be read or written (CSV spool, database directory).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The model artifact could not be loaded.
    #[error("model: {0}")]
    Model(#[from] bfp_common::Error),
    /// Bad command-line or environment configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A background task died (a bug, reported rather than hidden).
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias for the collector.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Db(Box::new(e))
    }
}

impl Error {
    /// A database failure inside a write becomes [`Error::Store`] (the
    /// write was rolled back); the client's own mistakes stay what they are.
    pub fn into_store(self) -> Error {
        match self {
            Error::Db(e) => Error::Store(e.to_string()),
            other => other,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadInput(_) => StatusCode::BAD_REQUEST,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Error::Locked(_) => StatusCode::LOCKED,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let (error, detail) = match &self {
            Error::BadInput(d) => (INVALID_INPUT, d.clone()),
            Error::TooLarge(d) => ("Payload too large", d.clone()),
            Error::NotFound(d) => ("Not found", d.clone()),
            Error::Unauthorized(d) => ("Unauthorized", d.clone()),
            Error::Forbidden(d) => ("Forbidden", d.clone()),
            Error::Conflict(d) => ("Conflict", d.clone()),
            Error::MisdirectedHost(d) => ("Misdirected request", d.clone()),
            Error::Locked(d) => ("Locked", d.clone()),
            Error::TooManyRequests(d) => ("Too many requests", d.clone()),
            Error::Timeout(d) => ("Request timeout", d.clone()),
            Error::MethodNotAllowed => ("Method not allowed", "this route does not accept this method".into()),
            Error::ShuttingDown => ("Service unavailable", self.to_string()),
            other => {
                // Server-side failures are logged in full; the client gets the
                // category, not internals such as file paths.
                tracing::error!(error = %other, "request failed");
                ("Internal server error", other.to_string().split(':').next().unwrap_or_default().to_string())
            }
        };
        let mut response = (status, Json(crate::api::openapi::ErrorBody { error, detail })).into_response();
        if let Error::TooManyRequests(d) = &self {
            if let Some(secs) = crate::api::limits::retry_after(d) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme is expected.
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_with_the_original_error_key() {
        assert_eq!(Error::BadInput("x".into()).status(), StatusCode::BAD_REQUEST);
        assert_eq!(Error::TooLarge("x".into()).status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(Error::from(rusqlite::Error::InvalidQuery).status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
