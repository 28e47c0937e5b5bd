//! What Discord's and Slack's request signatures share: a signature header and a timestamp
//! header that must be present and fresh, a bounded body, and a bare 401 for anything else.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;

/// Why a request was refused (logged; the answer is a bare 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    MissingHeaders,
    BadTimestamp,
    Stale,
    BadSignature,
    TooLarge,
}

/// The signature and timestamp headers' values, once both are present and the timestamp
/// (Unix seconds) is within `max_skew_secs` of `now_secs` either way.
pub fn fresh_headers<'a>(
    headers: &'a HeaderMap,
    signature_header: &str,
    timestamp_header: &str,
    now_secs: i64,
    max_skew_secs: i64,
) -> Result<(&'a str, &'a str), Rejected> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (header(signature_header), header(timestamp_header))
    else {
        return Err(Rejected::MissingHeaders);
    };
    let sent: i64 = timestamp.parse().map_err(|_| Rejected::BadTimestamp)?;
    if (now_secs - sent).abs() > max_skew_secs {
        return Err(Rejected::Stale);
    }
    Ok((signature, timestamp))
}

/// The raw body, refused when larger than `max` bytes.
pub async fn read_body(body: Body, max: usize) -> Result<Bytes, Rejected> {
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| Rejected::TooLarge)
}

/// The answer to a refused request: 401, with the reason in the log only.
pub fn unauthorized(platform: &'static str, why: Rejected) -> Response {
    warn!(platform, reason = ?why, "chat request refused with 401");
    (StatusCode::UNAUTHORIZED, "invalid request signature").into_response()
}
