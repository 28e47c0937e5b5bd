//! [`SendError`]: why a send failed, and whether the dispatcher should try again. Reasons are
//! scrubbed of credentials before they get here (see [`super::http`]).

use std::time::Duration;

/// Why a send failed, and what the dispatcher must do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Worth trying again (timeout, refused connection, 429, 5xx); `after` is the delay the
    /// service asked for, when it said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (the webhook was deleted, the payload refused, no URL).
    Permanent { reason: String },
}

impl SendError {
    /// The human-readable reason, free of URLs and secrets.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Retry { reason, .. } | SendError::Permanent { reason } => reason,
        }
    }

    /// Whether the dispatcher should try again.
    pub fn is_retry(&self) -> bool {
        matches!(self, SendError::Retry { .. })
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry {
                reason,
                after: Some(after),
            } => write!(f, "{reason} (retry after {after:?})"),
            SendError::Retry {
                reason,
                after: None,
            } => write!(f, "{reason} (will retry)"),
            SendError::Permanent { reason } => write!(f, "{reason} (giving up)"),
        }
    }
}

impl std::error::Error for SendError {}
