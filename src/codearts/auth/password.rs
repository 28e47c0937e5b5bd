//! IAM password authentication: project-scoped tokens obtained with a user's password
//! (`POST /v3/auth/tokens`), renewed in the background before they expire, and backed off when
//! IAM or CodeArts refuses them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::{error, info, warn};

use super::ticket::{CachedToken, TokenFailure};
use crate::codearts::error::{ApiError, AuthError};
use crate::util::http::without_url;
use crate::util::secret::Secret;

/// After a token obtained because CodeArts refused the previous one is refused too (before any
/// call succeeded with it), no new token is requested on a 401 for this long: IAM keeps issuing
/// tokens that CodeArts refuses (a project of another region, say), and asking again on every
/// poll would be a storm of token requests.
const REFUSED_HOLD: Duration = Duration::from_secs(60);

/// Where the IAM token is scoped: CodeArts Build refuses account-global tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    Id(String),
    Name(String),
}

/// The settings of password authentication.
#[derive(Debug, Clone)]
pub struct PasswordSettings {
    /// IAM base URL, e.g. `https://iam.cn-north-4.myhuaweicloud.com`.
    pub iam_endpoint: String,
    /// The account (domain) name.
    pub domain: String,
    pub user: String,
    pub password: Secret,
    pub scope: ProjectScope,
    /// Renew this long before expiry.
    pub refresh_margin: Duration,
    pub timeout: Duration,
}

#[derive(Default)]
struct TokenState {
    current: Option<CachedToken>,
    /// Set after a failed request for a token: no new request before `retry_at`.
    failure: Option<TokenFailure>,
}

/// Obtains project-scoped IAM tokens with a user's password and keeps one valid.
///
/// At most one request for a token is in flight; a token close to expiry is renewed in the
/// background while polls keep using it; failures back off (a refused password for minutes,
/// not seconds) so a wrong password is one loud error, not a storm.
pub struct IamPassword {
    settings: PasswordSettings,
    http: reqwest::Client,
    state: Mutex<TokenState>,
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// Counts tokens obtained (for metrics and tests).
    obtained: std::sync::atomic::AtomicU64,
    /// Counts requests for a token that failed.
    failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for IamPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamPassword")
            .field("iam_endpoint", &self.settings.iam_endpoint)
            .field("domain", &self.settings.domain)
            .field("user", &self.settings.user)
            .field("password", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: String,
}

impl IamPassword {
    pub fn new(settings: PasswordSettings) -> Result<Arc<Self>, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("codearts-bot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AuthError::Config(format!("cannot build the IAM HTTP client: {e}")))?;
        Ok(Arc::new(Self {
            settings,
            http,
            state: Mutex::new(TokenState::default()),
            refresh: Arc::new(tokio::sync::Mutex::new(())),
            obtained: std::sync::atomic::AtomicU64::new(0),
            failures: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// How many tokens have been obtained since start.
    pub fn tokens_obtained(&self) -> u64 {
        self.obtained.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many requests for a token failed since start.
    pub fn token_failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn current(&self) -> Option<CachedToken> {
        self.state.lock().ok()?.current.clone()
    }

    fn usable(token: &CachedToken, now: DateTime<Utc>) -> bool {
        token.expires_at - now > chrono::Duration::from_std(token.slack()).unwrap_or_default()
    }

    /// A valid token: the cached one, or a new one when there is none.
    pub(super) async fn token(self: &Arc<Self>) -> Result<CachedToken, AuthError> {
        if let Some(cached) = self.current()
            && Self::usable(&cached, Utc::now())
        {
            return Ok(cached);
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have renewed it while we waited.
        if let Some(cached) = self.current()
            && Self::usable(&cached, Utc::now())
        {
            return Ok(cached);
        }
        self.request_token(false).await
    }

    /// After a 401: renew, unless someone renewed since this request's token was taken (then
    /// just retry with the new one), and say whether to retry. When the token obtained after a
    /// refusal is refused too, a new one would be as well: no token request for
    /// [`REFUSED_HOLD`], no retry.
    pub(super) async fn renew_after_unauthorized(
        self: &Arc<Self>,
        used: Option<&CachedToken>,
        error: &ApiError,
    ) -> bool {
        let _guard = self.refresh.lock().await;
        if let Some(current) = self.current() {
            let same = used.is_some_and(|u| u.token == current.token);
            if !same && Self::usable(&current, Utc::now()) {
                return true;
            }
            if same
                && current.after_refusal
                && !current.accepted.load(Ordering::Relaxed)
                && current.obtained.elapsed() < REFUSED_HOLD
            {
                if !current.reported.swap(true, Ordering::Relaxed) {
                    error!(
                        code = error.code.as_deref().unwrap_or("-"),
                        message = error.message.as_deref().unwrap_or("-"),
                        user = %self.settings.user,
                        retry_in_s = REFUSED_HOLD.as_secs(),
                        "CodeArts refused a freshly obtained IAM token too: check that the token's project (codearts.auth.project_name or project_id) is this region's and that the user may use CodeArts Build; not asking IAM again until then"
                    );
                }
                return false;
            }
        }
        warn!(
            code = error.code.as_deref().unwrap_or("-"),
            message = error.message.as_deref().unwrap_or("-"),
            "CodeArts refused the IAM token; obtaining a new one"
        );
        if let Ok(mut state) = self.state.lock() {
            state.current = None;
        }
        self.request_token(true).await.is_ok()
    }

    /// Renews ahead of expiry so polls never wait for IAM.
    pub(super) fn spawn_refresher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(iam) = weak.upgrade() else { return };
                let wait = iam.time_until_refresh();
                drop(iam);
                tokio::time::sleep(wait).await;
                let Some(iam) = weak.upgrade() else { return };
                let _guard = iam.refresh.lock().await;
                if iam.time_until_refresh().is_zero() {
                    // Failures are logged and backed off inside; the next loop waits.
                    let _ = iam.request_token(false).await;
                }
            }
        });
    }

    /// Zero when a renewal is due now (no token, close to expiry, or a back-off elapsed).
    fn time_until_refresh(&self) -> Duration {
        let Ok(state) = self.state.lock() else {
            return Duration::from_secs(1);
        };
        if let Some(failure) = &state.failure {
            return failure.retry_at.saturating_duration_since(Instant::now());
        }
        match &state.current {
            None => Duration::ZERO,
            Some(c) => {
                // The margin, but never more than half the lifetime (short-lived tokens).
                let margin = self.settings.refresh_margin.min(c.lifetime / 2);
                let renew_at =
                    c.expires_at - chrono::Duration::from_std(margin).unwrap_or_default();
                let floor = c.fresh().saturating_sub(c.obtained.elapsed());
                (renew_at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(floor)
            }
        }
    }

    /// Asks IAM for a token; the caller holds the refresh lock. `after_refusal`: CodeArts has
    /// just refused the previous token.
    async fn request_token(&self, after_refusal: bool) -> Result<CachedToken, AuthError> {
        if let Ok(state) = self.state.lock()
            && let Some(failure) = &state.failure
            && Instant::now() < failure.retry_at
        {
            return Err(AuthError::Unavailable(format!(
                "{} (next attempt in {}s)",
                failure.message,
                failure
                    .retry_at
                    .saturating_duration_since(Instant::now())
                    .as_secs()
            )));
        }
        match self.fetch().await {
            Ok(mut token) => {
                self.obtained
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(expires_at = %token.expires_at, user = %self.settings.user, "obtained an IAM token");
                token.after_refusal = after_refusal;
                if let Ok(mut state) = self.state.lock() {
                    if state.failure.is_some() {
                        info!("IAM tokens can be obtained again");
                    }
                    state.current = Some(token.clone());
                    state.failure = None;
                }
                Ok(token)
            }
            Err((message, refused)) => {
                self.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut state = self
                    .state
                    .lock()
                    .map_err(|_| AuthError::Unavailable(message.clone()))?;
                let consecutive = state.failure.as_ref().map_or(0, |f| f.consecutive) + 1;
                // A refused password will not start working by asking again soon: minutes, not
                // seconds, and never more often than IAM's own lockout would tolerate.
                let (base, cap) = if refused { (60, 1800) } else { (2, 300) };
                let backoff = Duration::from_secs((base << (consecutive - 1).min(10)).min(cap));
                if consecutive == 1 {
                    error!(%message, retry_in_s = backoff.as_secs(), "cannot obtain an IAM token: CodeArts cannot be polled until this is fixed");
                } else {
                    warn!(%message, consecutive, retry_in_s = backoff.as_secs(), "still cannot obtain an IAM token");
                }
                state.failure = Some(TokenFailure {
                    message: message.clone(),
                    retry_at: Instant::now() + backoff,
                    consecutive,
                });
                Err(AuthError::Unavailable(message))
            }
        }
    }

    /// One `POST /v3/auth/tokens`; on failure, the message and whether IAM refused the
    /// credentials themselves.
    async fn fetch(&self) -> Result<CachedToken, (String, bool)> {
        let s = &self.settings;
        let scope = match &s.scope {
            ProjectScope::Id(id) => serde_json::json!({"project": {"id": id}}),
            ProjectScope::Name(name) => serde_json::json!({"project": {"name": name}}),
        };
        let body = serde_json::json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {
                        "name": s.user,
                        "password": s.password.expose(),
                        "domain": {"name": s.domain},
                    }},
                },
                "scope": scope,
            }
        });
        let url = format!(
            "{}/v3/auth/tokens?nocatalog=true",
            s.iam_endpoint.trim_end_matches('/')
        );
        let response = self.http.post(&url).json(&body).send().await.map_err(|e| {
            (
                format!(
                    "IAM at {} could not be reached: {}",
                    s.iam_endpoint,
                    without_url(&e)
                ),
                false,
            )
        })?;
        let status = response.status();
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let detail: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
            let detail = detail.map(ApiErrorBody::describe).unwrap_or_default();
            let refused = status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN;
            let what = if refused {
                format!(
                    "IAM refused the password of user {:?} in account {:?} (HTTP {}{detail}): check codearts.auth.domain, user and password",
                    s.user,
                    s.domain,
                    status.as_u16()
                )
            } else {
                format!("IAM answered HTTP {}{detail}", status.as_u16())
            };
            return Err((what, refused));
        }
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            (
                "IAM answered without an X-Subject-Token header".to_owned(),
                false,
            )
        })?;
        let parsed: TokenBody = serde_json::from_slice(&bytes)
            .map_err(|e| (format!("IAM's answer has no token.expires_at: {e}"), false))?;
        let expires_at = DateTime::parse_from_rfc3339(&parsed.token.expires_at)
            .map_err(|e| {
                (
                    format!(
                        "IAM's expires_at {:?} is not a date: {e}",
                        parsed.token.expires_at
                    ),
                    false,
                )
            })?
            .with_timezone(&Utc);
        Ok(CachedToken {
            token: Secret::new(token),
            lifetime: (expires_at - Utc::now()).to_std().unwrap_or_default(),
            expires_at,
            obtained: Instant::now(),
            after_refusal: false,
            accepted: Arc::new(AtomicBool::new(false)),
            reported: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// IAM's error bodies: `{"error": {"code", "message"}}` or the gateway's `{"error_code", "error_msg"}`.
#[derive(Deserialize)]
struct ApiErrorBody {
    error: Option<IamError>,
    error_code: Option<String>,
    error_msg: Option<String>,
}

#[derive(Deserialize)]
struct IamError {
    code: Option<serde_json::Value>,
    message: Option<String>,
}

impl ApiErrorBody {
    fn describe(self) -> String {
        let (code, msg) = match self.error {
            Some(e) => (
                e.code.map(|c| c.to_string().trim_matches('"').to_owned()),
                e.message,
            ),
            None => (self.error_code, self.error_msg),
        };
        let mut out = String::new();
        if let Some(code) = code {
            out.push_str(", ");
            out.push_str(&code);
        }
        if let Some(msg) = msg {
            out.push_str(": ");
            out.push_str(&msg);
        }
        out
    }
}
