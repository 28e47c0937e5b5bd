//! The state every simulator handler shares ([`Sim`]): the static token and identity checks,
//! the jobs, the armed faults, the call counters and request ids.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use super::fault::Faults;
use super::iam::{Call, Identity, Verdict};
use super::reply::{self, Documented, Refusal};
use super::state::Jobs;
use super::stats::Stats;

/// `X-Request-Id`, set on every answer.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Everything the handlers share: built once in [`super::spawn`].
pub(crate) struct Sim {
    token: String,
    pub(crate) identity: Identity,
    pub(crate) jobs: Jobs,
    pub(crate) faults: Faults,
    pub(crate) stats: Stats,
    /// Random per simulator, so ids from two runs differ.
    request_prefix: u64,
    request_counter: AtomicU64,
}

impl Sim {
    pub(crate) fn new(token: String, identity: Identity) -> Self {
        Self {
            token,
            identity,
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

    /// Checks an API call's credentials as the gateway does: an AK/SK signature, an issued
    /// IAM token, or the static token.
    pub(crate) fn authorize_call(&self, call: &Call<'_>) -> Result<(), Refusal> {
        match self.identity.verify(call) {
            Verdict::Accepted => Ok(()),
            Verdict::Refused(refused) => Err(refused),
            Verdict::NotMine => self.authorize(call.headers).map_err(Refusal::from),
        }
    }

    /// Checks `X-Auth-Token` against the static token; the error says what is wrong.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<(), Documented> {
        match headers.get("x-auth-token") {
            None => Err(reply::TOKEN_MISSING),
            Some(token) if token.as_bytes() == self.token.as_bytes() => Ok(()),
            Some(_) => Err(reply::TOKEN_EXPIRED),
        }
    }
}

/// Sets the `X-Request-Id` header.
pub(crate) fn set_request_id(response: &mut Response, request_id: String) {
    if let Ok(value) = HeaderValue::try_from(request_id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
}
