//! The simulator's shared state and its HTTP router: the CloudBuild API surface ([`super::api`])
//! and the control API under `/_sim/` ([`super::control`]), with an `X-Request-Id` on every
//! answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;

use super::fault::Faults;
use super::reply::{self, Documented};
use super::state::Jobs;
use super::stats::Stats;
use super::{api, control};

/// `X-Request-Id`, set on every answer.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything the handlers share: built once in [`super::spawn`].
pub(crate) struct Sim {
    token: String,
    pub(crate) jobs: Jobs,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
    /// Random per simulator, so ids from two runs differ.
    request_prefix: u64,
    request_counter: AtomicU64,
}

impl Sim {
    pub(crate) fn new(token: String) -> Self {
        Self {
            token,
            jobs: Jobs::default(),
            faults: Faults::default(),
            stats: Stats::default(),
            request_prefix: rand::random(),
            request_counter: AtomicU64::new(0),
        }
    }

    /// A fresh request id: 32 lowercase hex characters, like the gateway's.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:016x}", self.request_prefix)
    }

    /// Checks `X-Auth-Token` as the gateway does; the error says what is wrong.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), Documented> {
        match headers.get("x-auth-token") {
            None => Err(reply::TOKEN_MISSING),
            Some(token) if token.as_bytes() == self.token.as_bytes() => Ok(()),
            Some(_) => Err(reply::TOKEN_EXPIRED),
        }
    }
}

/// The whole simulator as one router.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/v1/job/{job_id}/info",
            get(api::job_info).fallback(api::unknown),
        )
        .nest("/_sim", control::router(Arc::clone(&sim)))
        .fallback(api::unknown)
        .with_state(Arc::clone(&sim))
        .layer(middleware::map_response_with_state(sim, ensure_request_id))
}

/// Adds an `X-Request-Id` to answers whose handler did not set one (control API, rejections).
async fn ensure_request_id(State(sim): State<Arc<Sim>>, mut response: Response) -> Response {
    if !response.headers().contains_key(X_REQUEST_ID) {
        set_request_id(&mut response, sim.next_request_id());
    }
    response
}

/// Sets the `X-Request-Id` header.
pub(crate) fn set_request_id(response: &mut Response, request_id: String) {
    if let Ok(value) = HeaderValue::try_from(request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
}
