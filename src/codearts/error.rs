//! How a CodeArts call can fail: [`Error`] classifies every failure by what the caller must do
//! about it, [`ApiError`] carries the documented error body, [`AuthError`] says why
//! credentials could not be attached. Shared by the client and the auth methods.

use std::time::Duration;

/// A failed ShowJobInfo call, classified by what the caller must do about it.
///
/// Only [`Error::NotFound`] and [`Error::Forbidden`] say something about the job itself; every
/// other variant is about the path to the API and never becomes a job event.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("job not found (404{})", api_suffix(.0))]
    NotFound(ApiError),
    #[error("access to the job is forbidden (403{})", api_suffix(.0))]
    Forbidden(ApiError),
    #[error("credentials were refused (401{}): check the token or key", api_suffix(.0))]
    Unauthorized(ApiError),
    #[error("the API rejected the request (400{})", api_suffix(.0))]
    BadRequest(ApiError),
    #[error("rate limited ({status}{}){}", api_suffix(.error), retry_suffix(*.retry_after))]
    RateLimited {
        status: u16,
        retry_after: Option<Duration>,
        error: ApiError,
    },
    #[error("server error ({status}{})", api_suffix(.error))]
    Server { status: u16, error: ApiError },
    #[error("unexpected HTTP status {status}{}", api_suffix(.error))]
    UnexpectedStatus { status: u16, error: ApiError },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl Error {
    /// The API's `X-Request-Id`, when the answer carried one (log it with the failure).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::NotFound(e)
            | Error::Forbidden(e)
            | Error::Unauthorized(e)
            | Error::BadRequest(e)
            | Error::RateLimited { error: e, .. }
            | Error::Server { error: e, .. }
            | Error::UnexpectedStatus { error: e, .. } => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// A short machine-friendly name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::Forbidden(_) => "forbidden",
            Error::Unauthorized(_) => "unauthorized",
            Error::BadRequest(_) => "bad_request",
            Error::RateLimited { .. } => "rate_limited",
            Error::Server { .. } => "server_error",
            Error::UnexpectedStatus { .. } => "unexpected_status",
            Error::Timeout(_) => "timeout",
            Error::Connect(_) => "connect",
            Error::Malformed(_) => "malformed",
            Error::Failed(_) => "api_failed",
            Error::Auth(_) => "auth",
        }
    }
}

/// The documented error body `{"error_code", "error_msg"}` plus the call's request id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

fn api_suffix(e: &ApiError) -> String {
    let mut out = String::new();
    if let Some(code) = &e.code {
        out.push_str(", ");
        out.push_str(code);
    }
    if let Some(msg) = &e.message {
        out.push_str(": ");
        out.push_str(msg);
    }
    if let Some(id) = &e.request_id {
        out.push_str(", request id ");
        out.push_str(id);
    }
    out
}

fn retry_suffix(after: Option<Duration>) -> String {
    after.map_or_else(String::new, |d| {
        format!(", retry after {}s", d.as_secs_f64())
    })
}

/// Why credentials could not be attached to a request. Never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("authentication is misconfigured: {0}")]
    Config(String),
    /// Credentials cannot be had now (IAM down, or refused); polls fail until they can.
    #[error("no valid credentials: {0}")]
    Unavailable(String),
}
