//! The simulator's error answers: the documented body `{"error_code", "error_msg"}` (plus
//! `request_id` for gateway errors, as the API gateway adds it), with the code and message the
//! real service uses for each situation.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// `Content-Type` of every JSON answer.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A documented error: who answers it (the gateway or CodeArts Build), its code and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Documented {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: &'static str,
    /// Gateway (APIG) errors carry `request_id` in the body too.
    pub(crate) gateway: bool,
}

const fn build(status: StatusCode, code: &'static str, message: &'static str) -> Documented {
    Documented {
        status,
        code,
        message,
        gateway: false,
    }
}

pub(crate) const fn gateway(
    status: StatusCode,
    code: &'static str,
    message: &'static str,
) -> Documented {
    Documented {
        status,
        code,
        message,
        gateway: true,
    }
}

/// 400: the id in the URL is not 32 ASCII letters or digits.
pub(crate) const INVALID_TASK_ID: Documented =
    build(StatusCode::BAD_REQUEST, "CB.00060201", "invalid task id");
/// 400: a body or parameter the service cannot use.
pub(crate) const INVALID_PARAMETER: Documented =
    build(StatusCode::BAD_REQUEST, "CB.00060200", "invalid parameter");
/// 404: no job with this id.
pub(crate) const URL_NOT_FOUND: Documented =
    build(StatusCode::NOT_FOUND, "CB.00060214", "URL not found");
/// 403: the job exists, the caller may not see it.
pub(crate) const NO_PERMISSION: Documented =
    build(StatusCode::FORBIDDEN, "CB.00060403", "no permission");
/// 401: no `X-Auth-Token` header.
pub(crate) const TOKEN_MISSING: Documented = gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0301",
    "Incorrect IAM authentication information: x-auth-token not found",
);
/// 401: a token other than the configured one (modelled as an expired token).
pub(crate) const TOKEN_EXPIRED: Documented = gateway(
    StatusCode::UNAUTHORIZED,
    "APIGW.0301",
    "Incorrect IAM authentication information: token expires",
);
/// 404 from the gateway: no such API (unknown path or method).
pub(crate) const API_NOT_EXIST: Documented = gateway(
    StatusCode::NOT_FOUND,
    "APIGW.0101",
    "The API does not exist or has not been published in the environment",
);
/// 429 from the gateway: throttled.
pub(crate) const THROTTLED: Documented = gateway(
    StatusCode::TOO_MANY_REQUESTS,
    "APIG.0308",
    "policy user over ratelimit, limit:100, time:1 second",
);
/// 500: the service failed.
pub(crate) const INTERNAL_ERROR: Documented = build(
    StatusCode::INTERNAL_SERVER_ERROR,
    "CB.00060101",
    "internal error",
);
/// 503: the service is overloaded.
pub(crate) const NETWORK_BUSY: Documented = build(
    StatusCode::SERVICE_UNAVAILABLE,
    "CB.00060100",
    "network busy",
);
/// 502 from the gateway: the backend cannot be reached.
pub(crate) const BACKEND_UNAVAILABLE: Documented =
    gateway(StatusCode::BAD_GATEWAY, "APIG.0202", "Backend unavailable");
/// 504 from the gateway: the backend did not answer in time.
pub(crate) const BACKEND_TIMEOUT: Documented =
    gateway(StatusCode::GATEWAY_TIMEOUT, "APIG.0201", "Backend timeout");

impl Documented {
    /// The documented error for a status a fault asks for; `None` when there is none
    /// (the caller then answers a generic `SIM.<status>` body).
    pub(crate) fn for_status(status: StatusCode) -> Option<Self> {
        Some(match status.as_u16() {
            400 => INVALID_PARAMETER,
            401 => TOKEN_EXPIRED,
            403 => NO_PERMISSION,
            404 => URL_NOT_FOUND,
            429 => THROTTLED,
            500 => INTERNAL_ERROR,
            502 => BACKEND_UNAVAILABLE,
            503 => NETWORK_BUSY,
            504 => BACKEND_TIMEOUT,
            _ => return None,
        })
    }

    /// The answer, with `request_id` in the body when the gateway is the one answering.
    pub(crate) fn response(&self, request_id: &str) -> Response {
        let request_id = self.gateway.then_some(request_id);
        json_error(self.status, self.code, self.message, request_id)
    }
}

/// A refusal whose message is composed per call (the gateway's AK/SK answers quote the
/// signature's date or the access key); [`Documented`] errors convert into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// Gateway (APIG) errors carry `request_id` in the body too.
    pub(crate) gateway: bool,
}

impl Refusal {
    /// A 401 from the API gateway.
    pub(crate) fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
            gateway: true,
        }
    }

    /// The answer, with `request_id` in the body when the gateway is the one answering.
    pub(crate) fn response(&self, request_id: &str) -> Response {
        let request_id = self.gateway.then_some(request_id);
        json_error(self.status, self.code, &self.message, request_id)
    }
}

impl From<Documented> for Refusal {
    fn from(documented: Documented) -> Self {
        Self {
            status: documented.status,
            code: documented.code,
            message: documented.message.to_owned(),
            gateway: documented.gateway,
        }
    }
}

/// An answer for a status with no documented error: `{"error_code": "SIM.<status>", ...}`.
pub(crate) fn generic(status: StatusCode) -> Response {
    let code = format!("SIM.{}", status.as_u16());
    let message = status.canonical_reason().unwrap_or("simulated error");
    json_error(status, &code, message, None)
}

/// An error answer in the documented shape with any code and message (control-API errors use
/// it with their own messages).
pub(crate) fn json_error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: Option<&str>,
) -> Response {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        error_code: &'a str,
        error_msg: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<&'a str>,
    }
    let body = ErrorBody {
        error_code: code,
        error_msg: message,
        request_id,
    };
    json_bytes(status, serde_json::to_vec(&body).unwrap_or_default())
}

/// Any JSON value as an answer.
pub(crate) fn json_value(status: StatusCode, value: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// Ready JSON bytes as an answer.
pub(crate) fn json_bytes(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}
