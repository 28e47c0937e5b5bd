//! What every authentication method shares: the [`Ticket`] a request carries from
//! `authorize` to `settle`, cached IAM tokens, remembered refusals, and setting a credential
//! header.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use tokio::sync::OwnedMutexGuard;

use crate::codearts::error::AuthError;
use crate::util::secret::Secret;

/// A token is treated as expired this long before its `expires_at` (at most a tenth of its
/// lifetime), so no call races the expiry.
pub(super) const EXPIRY_SLACK: Duration = Duration::from_secs(60);
/// The background renewal never runs more often than this (at most a quarter of a token's
/// lifetime), whatever the margin says.
pub(super) const FRESH: Duration = Duration::from_secs(10);

/// What [`Auth::authorize`] hands back; returned to [`Auth::settle`] with the answer.
#[derive(Debug, Default)]
pub struct Ticket {
    /// Held while an AK/SK pair that has not yet been accepted makes its first call, so a wrong
    /// key fails once instead of once per concurrent poll (the gateway locks a key after five
    /// consecutive failures).
    pub(super) _probe: Option<OwnedMutexGuard<()>>,
    /// The IAM token the request carried, so a 401 renews only if nobody renewed since.
    pub(super) used_token: Option<CachedToken>,
}

#[derive(Debug, Clone)]
pub(super) struct CachedToken {
    pub(super) token: Secret,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) obtained: Instant,
    /// From when it was obtained to `expires_at`.
    pub(super) lifetime: Duration,
    /// Obtained because CodeArts refused the token before it (a 401).
    pub(super) after_refusal: bool,
    /// Set once a call made with it was not refused (shared by every clone).
    pub(super) accepted: Arc<AtomicBool>,
    /// Set once the refusal of this token, too, has been logged as an error.
    pub(super) reported: Arc<AtomicBool>,
}

impl CachedToken {
    pub(super) fn slack(&self) -> Duration {
        EXPIRY_SLACK.min(self.lifetime / 10)
    }

    pub(super) fn fresh(&self) -> Duration {
        FRESH.min(self.lifetime / 4)
    }
}

#[derive(Clone)]
pub(super) struct TokenFailure {
    pub(super) message: String,
    pub(super) retry_at: Instant,
    pub(super) consecutive: u32,
}

/// Sets a credential header, marked sensitive so it never shows in debug output.
pub(super) fn set_secret_header(
    request: &mut reqwest::Request,
    name: &'static str,
    value: &str,
) -> Result<(), AuthError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        AuthError::Config(format!(
            "the {name} value contains characters not allowed in an HTTP header"
        ))
    })?;
    value.set_sensitive(true);
    request
        .headers_mut()
        .insert(HeaderName::from_static(name), value);
    Ok(())
}
