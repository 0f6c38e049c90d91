//! What every request passes before routing and every reply after, in one
//! service around the router: the connection's addresses, the `Host`
//! check, the whole-request timeout, request counting and the security
//! headers.
//!
//! One hand-written service rather than a stack of `from_fn` layers: each
//! such layer, applied to a router, wraps every route and clones a boxed
//! service and boxes a future per request, and together they cost more
//! than the prediction itself (measured on `/api/predict`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::{access, AppState, ConnInfo};
use crate::error::Error;

/// The collector's HTTP service: the router behind the checks every request
/// passes. Cheap to clone (one reference count).
#[derive(Clone)]
pub struct Api(Arc<Inner>);

struct Inner {
    router: Router,
    state: AppState,
    /// The listener's address, for connections whose local address the
    /// server does not report.
    bound: Option<SocketAddr>,
    request_timeout: Duration,
}

impl Api {
    pub(super) fn new(router: Router, state: AppState, bound: Option<SocketAddr>, request_timeout: Duration) -> Self {
        Api(Arc::new(Inner { router, state, bound, request_timeout }))
    }
}

impl tower::Service<Request> for Api {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { Ok(inner.handle(req).await) })
    }
}

impl Inner {
    async fn handle(&self, mut req: Request) -> Response {
        self.fill_addresses(&mut req);
        // Refused before routing, on every path (404s included), and not
        // counted as a route's request.
        if let Some(refusal) = access::host_refusal(&self.state, &req) {
            return with_security_headers(refusal.into_response());
        }
        let started = std::time::Instant::now();
        let routed = tower::ServiceExt::<Request>::oneshot(self.router.clone(), req);
        let response = match tokio::time::timeout(self.request_timeout, routed).await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                self.state.net.timeouts_request.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Error::Timeout(format!("the request took longer than {} s", self.request_timeout.as_secs_f64()))
                    .into_response()
            }
        };
        let route = response.extensions().get::<access::RouteLabel>().map_or("unmatched", |r| r.0);
        self.state.metrics.record(route, response.status().as_u16(), started.elapsed().as_secs_f64());
        with_security_headers(response)
    }

    /// Fills in the bound address where the server gives only the peer, and
    /// offers the peer as `ConnectInfo<SocketAddr>` too, for the rate limits
    /// that key on it.
    fn fill_addresses(&self, req: &mut Request) {
        if let Some(ConnectInfo(mut conn)) = req.extensions().get::<ConnectInfo<ConnInfo>>().copied() {
            if conn.local.is_none() {
                conn.local = self.bound.filter(|b| !b.ip().is_unspecified());
                req.extensions_mut().insert(ConnectInfo(conn));
            }
            req.extensions_mut().insert(ConnectInfo(conn.peer));
        }
    }
}

/// Headers on every reply, API and dashboard alike: no MIME sniffing (an
/// API reply is never run as a script or page), no framing, and no
/// `Referer` carrying the console's URLs (filters, ids) to other sites.
/// The dashboard's own CSP, set by its routes, is kept.
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    response
}
