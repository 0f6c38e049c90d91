//! The operator dashboard's static assets, embedded in the binary.
//!
//! The files live in `collector/dashboard/` (the chart library is vendored
//! there from npm, see `scripts/vendor-dashboard.sh`) and are compiled in with
//! `include_str!`/`include_bytes!`, so the collector serves its dashboard with
//! no separate web server, no CDN and no network.
//!
//! Caching: `index.html` refers to every asset as `/assets/NAME?v=HASH`, where
//! HASH changes whenever any asset changes. Assets can therefore be cached for
//! a year (`immutable`), while `/` itself is revalidated on every load
//! (`no-cache` plus an `ETag`), so an upgraded collector is seen at once.
//! Responses are gzipped for clients that accept it (the chart library goes
//! from 210 KB to 71 KB, which matters on a phone, not on loopback).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// One embedded file.
struct Asset {
    /// Path below `/assets/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../dashboard/app.js"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../dashboard/style.css"),
    },
    Asset {
        path: "vendor/chart.umd.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../dashboard/vendor/chart.umd.min.js"),
    },
    Asset {
        path: "vendor/chart.js.LICENSE.md",
        content_type: "text/markdown; charset=utf-8",
        body: include_bytes!("../dashboard/vendor/chart.js.LICENSE.md"),
    },
];

const INDEX_TEMPLATE: &str = include_str!("../dashboard/index.html");

/// Scripts and styles only from the collector itself. Chart.js sets inline
/// styles on its canvases, hence `'unsafe-inline'` for styles (not scripts).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// `index.html` with the asset version filled in, and its ETag.
struct Index {
    html: String,
    etag: String,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let version = format!("{:016x}", hash_of(ASSETS.iter().map(|a| a.body)));
    let html = INDEX_TEMPLATE.replace("{{v}}", &version);
    let etag = format!("\"{:016x}\"", hash_of([html.as_bytes()]));
    Index { html, etag }
});

static ASSET_ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| format!("\"{:016x}\"", hash_of([a.body]))).collect());

/// A content hash for cache validation; it only has to change when the bytes
/// do, within one build, so the standard library's hasher is enough.
fn hash_of<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// The dashboard's routes: `GET /` (the single-page app) and
/// `GET /assets/{path}`. Generic over the state so the collector can merge it
/// into its own router as it is.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
}

async fn index(headers: HeaderMap) -> Response {
    let index = &*INDEX;
    respond(&headers, "text/html; charset=utf-8", index.html.as_bytes(), &index.etag, "no-cache", true)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|a| a.path == path) {
        Some(i) => {
            let a = &ASSETS[i];
            respond(&headers, a.content_type, a.body, &ASSET_ETAGS[i], "public, max-age=31536000, immutable", false)
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "Not found", "detail": format!("no dashboard asset {path:?}")})),
        )
            .into_response(),
    }
}

fn respond(
    request: &HeaderMap,
    content_type: &'static str,
    body: &'static [u8],
    etag: &str,
    cache: &'static str,
    document: bool,
) -> Response {
    let matches = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches { StatusCode::NOT_MODIFIED.into_response() } else { body.into_response() };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(ETAG, v);
    }
    if document {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(IF_NONE_MATCH, tag);
        }
        let res = router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn index_is_html_revalidated_and_versions_its_assets() {
        let (status, headers, body) = get("/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[CACHE_CONTROL], "no-cache");
        assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
        let html = String::from_utf8(body).unwrap();
        assert!(!html.contains("{{v}}"), "asset version placeholder left in index.html");
        let version = &INDEX.html[INDEX.html.find("app.js?v=").unwrap() + 9..][..16];
        assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
        assert!(html.contains(&format!("/assets/style.css?v={version}")));
    }

    #[tokio::test]
    async fn assets_have_their_content_types_and_long_caching() {
        for (path, ty) in [
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/style.css", "text/css; charset=utf-8"),
            ("/assets/vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
        ] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[CONTENT_TYPE], ty, "{path}");
            assert_eq!(headers[CACHE_CONTROL], "public, max-age=31536000, immutable", "{path}");
            assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert!(!body.is_empty(), "{path}");
        }
        // The vendored file is the real library, not a placeholder.
        let (_, _, chart) = get("/assets/vendor/chart.umd.min.js", None).await;
        assert!(chart.len() > 100_000 && String::from_utf8_lossy(&chart[..400]).contains("Chart.js"));
    }

    #[tokio::test]
    async fn etag_match_gives_not_modified_and_a_stale_one_the_body() {
        let (_, headers, _) = get("/assets/app.js", None).await;
        let tag = headers[ETAG].to_str().unwrap().to_owned();
        let (status, _, body) = get("/assets/app.js", Some(&tag)).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, _, body) = get("/assets/app.js", Some("\"0000000000000000\"")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!body.is_empty());
        let (_, headers, _) = get("/", None).await;
        let (status, _, _) = get("/", Some(headers[ETAG].to_str().unwrap())).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn gzip_when_accepted_identity_otherwise() {
        let req = |enc: Option<&str>| {
            let mut r = Request::get("/assets/vendor/chart.umd.min.js");
            if let Some(e) = enc {
                r = r.header(axum::http::header::ACCEPT_ENCODING, e);
            }
            r.body(Body::empty()).unwrap()
        };
        let res = router::<()>().oneshot(req(Some("gzip, deflate"))).await.unwrap();
        assert_eq!(res.headers()[axum::http::header::CONTENT_ENCODING], "gzip");
        let gz = to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let chart = ASSETS.iter().find(|a| a.path == "vendor/chart.umd.min.js").unwrap().body;
        assert!(gz.len() < chart.len() / 2, "{} of {}", gz.len(), chart.len());
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "not a gzip stream");
        let res = router::<()>().oneshot(req(None)).await.unwrap();
        assert!(!res.headers().contains_key(axum::http::header::CONTENT_ENCODING));
        assert_eq!(to_bytes(res.into_body(), usize::MAX).await.unwrap(), chart);
    }

    #[tokio::test]
    async fn unknown_asset_is_a_json_404() {
        for path in ["/assets/nope.js", "/assets/../Cargo.toml", "/assets/vendor/"] {
            let (status, headers, body) = get(path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            if !body.is_empty() {
                assert_eq!(headers[CONTENT_TYPE], "application/json", "{path}");
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["error"], "Not found");
            }
        }
    }
}
