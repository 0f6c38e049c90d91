//! `POST /api/predict-csv`: a CSV upload (multipart field `file`) scored
//! and stored whole or not at all.
//!
//! The upload is staged in an anonymous file next to the database while it
//! streams in (memory stays flat whatever its size, and a slow client never
//! holds the writer); a parser thread then scores it row by row into the
//! store's open transaction, which commits only if every row was valid.

use std::io::{Read, Seek};

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::Json;
use bfp_common::{CompactModel, Fingerprint};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;

use super::extract::{body_error, ApiQuery};
use super::{AppState, MAX_REASONS};
use crate::error::{Error, Result};
use crate::store::{CsvChunk, CsvRow, CsvSender, Reason};

fn multipart_error(e: MultipartError) -> Error {
    body_error(e.status(), format!("upload failed: {}", e.body_text()))
}

/// `?ids=1` on `/api/predict-csv` adds `first_id`/`last_id` (the stored
/// rows' ids, for the dashboard); without it the answer is the original's.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CsvParams {
    /// `1` or `true`: add `first_id` and `last_id`.
    #[param(value_type = Option<String>, example = "1")]
    ids: Option<String>,
}

/// What an upload stored.
#[derive(Serialize, ToSchema)]
pub struct CsvSummary {
    /// Rows scored and stored.
    total_records: u64,
    /// Of which Normal.
    normal_users: u64,
    /// Of which Suspicious.
    suspicious_users: u64,
    /// With `ids=1`: the first stored row's id (its rows are
    /// `first_id..=last_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    first_id: Option<Option<i64>>,
    /// With `ids=1`: the last stored row's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    last_id: Option<Option<i64>>,
}

/// The multipart form of an upload.
#[allow(dead_code)] // Read field by field from the stream; this type documents it.
#[derive(ToSchema)]
pub struct CsvUpload {
    /// The CSV file: header `LoginHour,SessionDuration,CommandsCount,FailedLogins,Protocol,TypingSpeed`
    /// (the original's columns), one fingerprint a row.
    #[schema(value_type = String, format = Binary, content_media_type = "text/csv")]
    file: Vec<u8>,
}

#[utoipa::path(post, path = "/api/predict-csv", operation_id = "predictCsv", tag = "predictions",
    summary = "Score every row of an uploaded CSV and store them in one transaction (all or nothing)",
    params(CsvParams),
    request_body(content = CsvUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Every row stored", body = CsvSummary),
        (status = 400, description = "No `file` field, an empty file, or a bad row (named in detail); nothing stored", body = super::openapi::ErrorBody),
        (status = 413, description = "Larger than --max-upload-mb", body = super::openapi::ErrorBody),
        (status = 429, description = "More than --predict-csv-rate uploads a minute from this client", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn predict_csv(
    State(s): State<AppState>,
    ApiQuery(csv_params): ApiQuery<CsvParams>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Json<CsvSummary>> {
    let mut multipart = multipart.map_err(|r| {
        Error::BadInput(format!("expected a multipart/form-data upload with a field `file`: {}", r.body_text()))
    })?;
    let mut field = loop {
        match multipart.next_field().await.map_err(multipart_error)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => return Err(Error::BadInput("missing multipart field `file`".into())),
        }
    };

    // Stage the upload in an anonymous temp file next to the database (not in
    // memory, not in a tmpfs): memory stays flat whatever the file's size,
    // and a slow client never holds the writer.
    let started = std::time::Instant::now();
    let mut staged = tokio::fs::File::from_std(tempfile::tempfile_in(s.store.staging_dir())?);
    let mut size = 0usize;
    let mut lines = LineEnds::default();
    while let Some(bytes) = field.chunk().await.map_err(multipart_error)? {
        size += bytes.len();
        lines.count(&bytes);
        staged.write_all(&bytes).await?;
    }
    if size == 0 {
        return Err(Error::BadInput("the uploaded file is empty".into()));
    }
    staged.flush().await?;
    let mut staged = staged.into_std().await;
    staged.rewind()?;

    // Parse, score and insert in one pass: the parser (a blocking task) feeds
    // the writer's open transaction, which commits only if every row is valid.
    let staged_in = started.elapsed();
    let (rows, committed) = s.store.begin_csv(s.model_version.clone(), lines.rows_at_most()).await?;
    let model = s.model.clone();
    let parsed = tokio::task::spawn_blocking(move || parse_csv(std::io::BufReader::new(staged), rows, &model))
        .await
        .map_err(|e| Error::Internal(format!("CSV parser: {e}")))?;
    let parsed_in = started.elapsed();
    let committed = committed.await;
    tracing::info!(
        bytes = size,
        ok = committed.is_ok(),
        staged_ms = staged_in.as_millis() as u64,
        parsed_ms = parsed_in.as_millis() as u64,
        committed_ms = started.elapsed().as_millis() as u64,
        "CSV upload"
    );
    let summary = match (parsed, committed) {
        (Ok(()), committed) => committed?,
        // The client's mistake is the answer; the writer rolled back.
        (Err(e @ Error::BadInput(_)), _) => return Err(e),
        // The parser stopped because the writer failed: the writer says why.
        (Err(_), Err(e)) => return Err(e),
        (Err(e), Ok(_)) => return Err(e),
    };
    let ids = matches!(csv_params.ids.as_deref(), Some("1" | "true"));
    Ok(Json(CsvSummary {
        total_records: summary.total,
        normal_users: summary.normal,
        suspicious_users: summary.suspicious,
        first_id: ids.then_some(summary.first_id),
        last_id: ids.then_some(summary.last_id),
    }))
}

/// Counts a file's line ends as it streams by, chunk by chunk: `\n`, `\r\n`
/// and a lone `\r` each end a CSV record (the `csv` crate's default), so the
/// file's data rows (after its header) are at most the line ends counted:
/// one line more than the ends, one less for the header.
#[derive(Debug, Default)]
struct LineEnds {
    ends: u64,
    /// The last chunk ended in `\r`: a `\n` opening the next belongs to it.
    after_cr: bool,
}

impl LineEnds {
    fn count(&mut self, bytes: &[u8]) {
        for at in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            // `\r\n` is one end, counted at its `\r`.
            let joined = bytes[at] == b'\n' && if at == 0 { self.after_cr } else { bytes[at - 1] == b'\r' };
            self.ends += u64::from(!joined);
        }
        if let Some(&last) = bytes.last() {
            self.after_cr = last == b'\r';
        }
    }

    fn rows_at_most(&self) -> u64 {
        self.ends
    }
}

/// Rows per message from the CSV parser to the writer.
const PARSE_CHUNK: usize = 1024;

fn parse_csv(input: impl Read, rows: CsvSender, model: &CompactModel) -> Result<()> {
    let csv_error = |e: csv::Error, row: u64| match e.kind() {
        csv::ErrorKind::Utf8 { .. } => Error::BadInput(format!("CSV row {row}: not valid UTF-8")),
        csv::ErrorKind::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        _ => Error::BadInput(format!("CSV row {row}: {e}")),
    };
    let writer_gone = || Error::Store("the writer stopped during the upload".into());
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
    let header = reader.headers().map_err(|e| csv_error(e, 0))?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(Error::BadInput("the uploaded file is empty".into()));
    }
    Fingerprint::check_csv_header(&header).map_err(|e| Error::BadInput(e.to_string()))?;
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    let mut batch = Vec::with_capacity(PARSE_CHUNK);
    while reader.read_record(&mut record).map_err(|e| csv_error(e, row + 1))? {
        row += 1;
        let fp = Fingerprint::from_csv_record(&record, row).map_err(|e| Error::BadInput(e.to_string()))?;
        let verdict = model.score(&fp.features());
        let reasons = Reason::from_verdict(&fp, &verdict, MAX_REASONS);
        batch.push(CsvRow::new(&fp, verdict.suspicious, verdict.confidence, &reasons));
        if batch.len() == PARSE_CHUNK {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(PARSE_CHUNK));
            rows.send(CsvChunk::Rows(full)).map_err(|_| writer_gone())?;
        }
    }
    if row == 0 {
        return Err(Error::BadInput("the CSV file has a header but no data rows".into()));
    }
    if !batch.is_empty() {
        rows.send(CsvChunk::Rows(batch)).map_err(|_| writer_gone())?;
    }
    rows.send(CsvChunk::Done).map_err(|_| writer_gone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data rows the `csv` crate reads from `file`, as the parser does.
    fn records(file: &[u8]) -> u64 {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
        reader.records().count() as u64
    }

    #[test]
    fn line_ends_bound_the_rows_in_any_chunking() {
        let files: &[&[u8]] = &[
            b"h\n1\n2\n3\n",
            b"h\n1\n2\n3",
            b"h\r\n1\r\n2\r\n",
            b"h\r1\r2\r3",
            b"h\n1\r2\r\n3\n\n\n4",
            b"h\n\"a\nb\"\n2\n",
            b"h\r\n",
            b"h",
            b"\r\n\r\n\r\n",
        ];
        for file in files {
            let rows = records(file);
            for cut in 0..=file.len() {
                let mut lines = LineEnds::default();
                lines.count(&file[..cut]);
                lines.count(&file[cut..]);
                let bound = lines.rows_at_most();
                assert!(rows <= bound, "{:?} cut at {cut}: {rows} rows, bound {bound}", String::from_utf8_lossy(file));
            }
            let mut bytewise = LineEnds::default();
            file.chunks(1).for_each(|b| bytewise.count(b));
            let mut whole = LineEnds::default();
            whole.count(file);
            assert_eq!(bytewise.rows_at_most(), whole.rows_at_most());
        }
        // Exact for the usual files: one id left over for a final line end.
        let mut lines = LineEnds::default();
        lines.count(b"h\r\n1\r\n2\r\n3\r\n");
        assert_eq!(lines.rows_at_most(), 4);
    }
}
