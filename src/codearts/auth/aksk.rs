//! Access key authentication: every request signed with SDK-HMAC-SHA256 as the official SDKs
//! sign it ([`crate::codearts::signer`]), one call at a time until the gateway has accepted
//! the key once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
use tracing::error;

use super::ticket::{Ticket, TokenFailure};
use crate::codearts::error::{ApiError, AuthError};
use crate::codearts::signer::{self, SignableRequest};
use crate::util::secret::Secret;

/// Access key credentials.
#[derive(Debug, Clone)]
pub struct AkSkSettings {
    pub ak: String,
    pub sk: Secret,
    pub project_id: String,
    /// For temporary credentials; sent as `X-Security-Token` (and signed).
    pub security_token: Option<Secret>,
}

/// Signs each request with SDK-HMAC-SHA256, and stops calling after the gateway refuses the
/// signature, because five consecutive failures lock the key for five minutes.
pub struct AkSk {
    settings: AkSkSettings,
    /// `true` once the gateway accepted a signature; until then calls go one at a time.
    verified: std::sync::atomic::AtomicBool,
    probe: Arc<tokio::sync::Mutex<()>>,
    refused: Mutex<Option<TokenFailure>>,
}

impl std::fmt::Debug for AkSk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AkSk")
            .field("ak", &self.settings.ak)
            .field("sk", &"***")
            .field("project_id", &self.settings.project_id)
            .finish_non_exhaustive()
    }
}

impl AkSk {
    pub fn new(settings: AkSkSettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            verified: std::sync::atomic::AtomicBool::new(false),
            probe: Arc::new(tokio::sync::Mutex::new(())),
            refused: Mutex::new(None),
        })
    }

    fn refusal(&self) -> Option<AuthError> {
        let guard = self.refused.lock().ok()?;
        let failure = guard.as_ref()?;
        let left = failure.retry_at.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| {
            AuthError::Unavailable(format!(
                "{} (not calling again for {}s: the gateway locks a key after 5 consecutive signature failures)",
                failure.message,
                left.as_secs()
            ))
        })
    }

    pub(super) async fn sign(
        &self,
        request: &mut reqwest::Request,
        now: DateTime<Utc>,
    ) -> Result<Ticket, AuthError> {
        if let Some(refused) = self.refusal() {
            return Err(refused);
        }
        let mut ticket = Ticket::default();
        if !self.verified.load(std::sync::atomic::Ordering::Acquire) {
            ticket._probe = Some(Arc::clone(&self.probe).lock_owned().await);
            // The probe before us may have been refused while we waited.
            if let Some(refused) = self.refusal() {
                return Err(refused);
            }
        }
        let url = request.url().clone();
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(AuthError::Config("the endpoint URL has no host".to_owned())),
        };
        let date = now.format(signer::DATE_FORMAT).to_string();
        let mut signed: Vec<(String, String)> = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("host".to_owned(), host),
            ("x-sdk-date".to_owned(), date.clone()),
        ];
        if !self.settings.project_id.is_empty() {
            signed.push(("x-project-id".to_owned(), self.settings.project_id.clone()));
        }
        if let Some(token) = &self.settings.security_token {
            signed.push(("x-security-token".to_owned(), token.expose().to_owned()));
        }
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let body = request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .unwrap_or_default()
            .to_vec();
        let authorization = signer::authorization(
            &self.settings.ak,
            self.settings.sk.expose(),
            &SignableRequest {
                method: request.method().as_str(),
                // The SDKs sign the decoded path and encode each segment themselves.
                path: &signer::percent_decode(url.path(), false),
                query: &query,
                headers: &signed,
                body: &body,
            },
        );
        let headers = request.headers_mut();
        for (name, value) in &signed {
            if name == "host" {
                continue; // reqwest sends Host from the URL, exactly as signed
            }
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| AuthError::Config(e.to_string()))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                AuthError::Config(format!(
                    "the {name} value contains characters not allowed in an HTTP header"
                ))
            })?;
            headers.insert(name, value);
        }
        if let Some(token) = headers.get_mut("x-security-token") {
            token.set_sensitive(true);
        }
        let mut value = HeaderValue::from_str(&authorization).map_err(|_| {
            AuthError::Config(
                "the access key contains characters not allowed in an HTTP header".to_owned(),
            )
        })?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Ok(ticket)
    }

    pub(super) fn settle(&self, unauthorized: Option<&ApiError>) {
        let Some(error) = unauthorized else {
            self.verified
                .store(true, std::sync::atomic::Ordering::Release);
            if let Ok(mut refused) = self.refused.lock() {
                *refused = None;
            }
            return;
        };
        self.verified
            .store(false, std::sync::atomic::Ordering::Release);
        let Ok(mut refused) = self.refused.lock() else {
            return;
        };
        let consecutive = refused.as_ref().map_or(0, |f| f.consecutive) + 1;
        // Longer than the gateway's 5-minute lock, doubling while the key stays refused.
        let backoff = Duration::from_secs((360_u64 << (consecutive - 1).min(4)).min(3600));
        let message = format!(
            "the API gateway refused the AK/SK signature for access key {} ({}: {}): check codearts.auth.ak/sk (or CLOUD_SDK_AK/CLOUD_SDK_SK) and the machine's clock",
            self.settings.ak,
            error.code.as_deref().unwrap_or("401"),
            error.message.as_deref().unwrap_or("no message"),
        );
        error!(%message, retry_in_s = backoff.as_secs(), "AK/SK refused; polling paused to avoid locking the key");
        *refused = Some(TokenFailure {
            message,
            retry_at: Instant::now() + backoff,
            consecutive,
        });
    }
}
