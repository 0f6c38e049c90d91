//! Request extractors: how a handler gets its body, query, path and caller,
//! with every refusal already the JSON error of [`crate::error`] (400, 401,
//! 413), so handlers only see valid input.
//!
//! - [`JsonBody`]: a JSON body (content type checked, size limited by the
//!   route's `DefaultBodyLimit`, parsed into the handler's type);
//! - [`RawBody`]: the bytes of a body whose format the handler decodes;
//! - [`ApiQuery`], [`ApiPath`]: query string and path parameters;
//! - [`DeviceAuth`]: the device a bearer token belongs to.
//!
//! Operators (API tokens, roles) are identified by the extractors of
//! [`super::access`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::{Error, Result};
use crate::store::DeviceId;

/// What a JSON body is called in its errors (`bad feedback body: ...`).
pub trait RequestBody: DeserializeOwned {
    /// A word or two naming the body.
    const WHAT: &'static str;
}

/// A JSON request body parsed into `T`. Refused with a 400 when the
/// content type is not JSON (`application/json` or `application/*+json`)
/// or the body does not parse, and with a 413 above the route's limit.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: RequestBody, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let json = is_json(req.headers());
        let RawBody(body) = RawBody::from_request(req, state).await?;
        if !json {
            return Err(Error::BadInput("Content-Type must be application/json".into()));
        }
        let value = serde_json::from_slice(&body).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    Error::BadInput(format!("bad {} body: not valid JSON: {e}", T::WHAT))
                }
                Category::Data => Error::BadInput(format!("bad {} body: {e}", T::WHAT)),
            }
        })?;
        Ok(JsonBody(value))
    }
}

/// A body's bytes, within the route's `DefaultBodyLimit` (413 above it).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|r| body_error(r.status(), r.body_text()))
    }
}

/// A query string parsed into `T`; a 400 naming the bad parameter otherwise.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Query(value) =
            Query::<T>::from_request_parts(parts, state).await.map_err(|r| Error::BadInput(r.body_text()))?;
        Ok(ApiQuery(value))
    }
}

/// Path parameters parsed into `T`; a 400 otherwise.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let Path(value) =
            Path::<T>::from_request_parts(parts, state).await.map_err(|r| Error::BadInput(r.body_text()))?;
        Ok(ApiPath(value))
    }
}

/// The active device whose bearer token the request carries; a 401
/// otherwise, before the body is read.
#[derive(Debug)]
pub struct DeviceAuth(pub DeviceId);

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self> {
        // Already identified by the access check: no second lookup.
        if let Some(found) = parts.extensions.get::<super::access::Identified>() {
            return match &found.caller {
                super::access::Caller::Device(d) => Ok(DeviceAuth(d.clone())),
                _ => Err(Error::Unauthorized("this needs a device token".into())),
            };
        }
        let token = bearer(&parts.headers).ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
        let device = s.store.authenticate(token.to_string()).await?;
        device.map(DeviceAuth).ok_or_else(|| Error::Unauthorized("unknown or revoked token".into()))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The media type of the request, lower case, without parameters.
pub fn mime(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(headers: &HeaderMap) -> bool {
    let mime = mime(headers);
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A body that could not be read: 413 above the limit, 400 otherwise.
pub fn body_error(status: StatusCode, text: String) -> Error {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Error::TooLarge(text)
    } else {
        Error::BadInput(text)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn bearer_tokens_and_media_types_are_read_leniently() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        assert!(!is_json(&h));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=utf-8"));
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }
}
