//! `POST /api/ingest`: an agent's batch of scored fingerprints.
//!
//! The device's bearer token is checked before the body is read; every
//! refusal (401 for the token, 400 for the body, 413 above the limit)
//! happens before anything is written, and an accepted batch is stored in
//! one transaction, once per `(device, seq)` however often it is re-sent.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use bfp_common::wire::{self, Batch};

use super::extract::{mime, DeviceAuth, RawBody};
use super::AppState;
use crate::error::{Error, Result};
use crate::store::devices;

/// Largest ingest body: `MAX_RECORDS_PER_BATCH` records of a few hundred
/// bytes each, with room for long command lists.
pub const MAX_INGEST_BYTES: usize = 16 * 1024 * 1024;

/// Decodes a batch body by its media type: postcard, or JSON for debugging.
pub fn decode_body(content_type: &str, body: &[u8]) -> Result<Batch> {
    let batch = match content_type {
        wire::CONTENT_TYPE => Batch::decode(body).map_err(|e| Error::BadInput(format!("batch: {e}")))?,
        "application/json" => {
            let batch: Batch =
                serde_json::from_slice(body).map_err(|e| Error::BadInput(format!("batch is not valid JSON: {e}")))?;
            if batch.records.len() > wire::MAX_RECORDS_PER_BATCH {
                return Err(Error::BadInput(format!("at most {} records per batch", wire::MAX_RECORDS_PER_BATCH)));
            }
            batch
        }
        other => {
            return Err(Error::BadInput(format!(
                "Content-Type must be {} or application/json, got {other:?}",
                wire::CONTENT_TYPE
            )))
        }
    };
    devices::validate_batch(&batch)?;
    Ok(batch)
}

/// What an ingest did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IngestReply {
    /// The batch's seq was not above the device's last stored seq: a retry, nothing stored.
    duplicate: bool,
    /// Records stored.
    stored: u64,
    /// Records in the batch.
    records: usize,
    /// The device's highest stored seq now.
    last_seq: u64,
}

#[utoipa::path(post, path = "/api/ingest", operation_id = "ingest", tag = "agents",
    summary = "An agent's batch of scored fingerprints and its heartbeat (idempotent per device and seq)",
    description = "Body: a versioned postcard `Batch` (application/x-bfp-batch, what agents send: a \
        version prefix, then the batch; versions 1-4 are read) or its JSON form (application/json, for \
        debugging). A batch without records is a heartbeat. A batch whose seq is not above the device's \
        last stored seq is a retry: 200 with duplicate=true, nothing stored.",
    request_body(content(
        (bfp_common::wire::Batch = "application/json"),
        (super::openapi::Binary = "application/x-bfp-batch"),
    )),
    responses(
        (status = 200, description = "Stored, or recognised as a retry", body = IngestReply),
        (status = 400, description = "A body that does not decode or validate (named in detail)", body = super::openapi::ErrorBody),
        (status = 408, description = "The body stalled (--body-read-timeout)", body = super::openapi::ErrorBody),
        (status = 429, description = "More than --ingest-rate batches a second from this device, or more than --auth-failure-rate wrong tokens a minute from this client; see Retry-After", body = super::openapi::ErrorBody),
    ))]
pub(super) async fn ingest(
    State(s): State<AppState>,
    DeviceAuth(device): DeviceAuth,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<IngestReply>> {
    let batch = decode_body(&mime(&headers), &body)?;
    let records = batch.records.len();
    let outcome = s.store.ingest(device, batch).await?;
    Ok(Json(IngestReply { duplicate: outcome.duplicate, stored: outcome.stored, records, last_seq: outcome.last_seq }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_decoded_strictly() {
        assert!(decode_body(wire::CONTENT_TYPE, b"\x01\xff\xff").is_err());
        assert!(decode_body("text/plain", b"{}").is_err());
        let empty = Batch { seq: 1, heartbeat: Default::default(), records: vec![] };
        assert_eq!(decode_body(wire::CONTENT_TYPE, &empty.encode().unwrap()).unwrap(), empty);
        assert_eq!(decode_body("application/json", &serde_json::to_vec(&empty).unwrap()).unwrap(), empty);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever the bytes, decoding answers Ok or a 400, never panics.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            for ct in [wire::CONTENT_TYPE, "application/json"] {
                if let Err(e) = decode_body(ct, &body) {
                    proptest::prop_assert!(matches!(e, Error::BadInput(_)));
                }
            }
        }

        /// A valid body with one byte changed or cut short decodes to a
        /// valid batch or is refused; it is never accepted half-read.
        #[test]
        fn corrupted_valid_bodies_are_refused_or_whole(
            n in 0usize..20, at in proptest::num::usize::ANY, flip in 1u8..=255, cut in proptest::num::usize::ANY
        ) {
            let mut batch = Batch { seq: 3, heartbeat: Default::default(), records: vec![] };
            for i in 0..n {
                batch.records.push(wire::Record {
                    kind: wire::RecordKind::Source,
                    source_ip: Some(format!("198.51.100.{i}")),
                    user: None,
                    start: 1_700_000_000,
                    end: Some(1_700_003_600),
                    fingerprint: bfp_common::Fingerprint {
                        login_hour: 3,
                        session_duration_min: 0.0,
                        commands: 0,
                        failed_logins: 40,
                        protocol: bfp_common::Protocol::Ssh,
                        typing_speed_wpm: None,
                        risky_commands: None,
                    },
                    commands: vec![],
                    suspicious: true,
                    confidence: 0.9,
                    reasons: vec!["40 failed logins".into()],
                    evidence: None,
                });
            }
            let bytes = batch.encode().unwrap();
            let mut flipped = bytes.clone();
            let i = at % flipped.len();
            flipped[i] ^= flip;
            if let Ok(b) = decode_body(wire::CONTENT_TYPE, &flipped) {
                proptest::prop_assert!(devices::validate_batch(&b).is_ok());
            }
            let cut = cut % bytes.len();
            proptest::prop_assert!(decode_body(wire::CONTENT_TYPE, &bytes[..cut]).is_err());
        }
    }
}
