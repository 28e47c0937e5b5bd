//! Delivering events to chat: the seam between the dispatcher and the platforms.
//!
//! - [`Sink`]: one configured destination (enum dispatch over the platform modules);
//!   [`Sink::send`] renders one [`Outgoing`] and reports [`SendError::Retry`] or
//!   [`SendError::Permanent`] so the dispatcher knows whether to try again.
//! - [`discord`], [`webhook`], [`stdout`]: one module per platform, each owning its renderer.
//! - [`text`]: truncation, escaping and wording shared by the renderers.
//! - [`dispatcher`]: claims due deliveries, sends them through a [`Sink`], records outcomes.
//!
//! A webhook URL is a credential (Discord's and Slack's embed the token), so no error, log line
//! or `Debug` output here ever contains one.

pub mod discord;
pub mod dispatcher;
pub mod stdout;
pub mod text;
pub mod webhook;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::codearts::client::without_url;
use crate::config::{ChannelConfig, ChannelType};
use crate::detect::Event;
use crate::secret::Secret;

/// Error bodies are read up to this size; the rest is not needed to explain a failure.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A failure reason is cut to this many characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The `User-Agent` every sink sends, so a receiver can tell our requests apart.
pub const USER_AGENT: &str = concat!("codearts-bot/", env!("CARGO_PKG_VERSION"));

/// One message to send: a stored event and its delivery's stable id (the same on every retry,
/// so a receiver can de-duplicate).
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub event: &'a Event,
}

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

    fn permanent(reason: impl Into<String>) -> Self {
        SendError::Permanent {
            reason: reason.into(),
        }
    }

    /// The same error with `secret` (and the parts of it that carry the credential) removed
    /// from its reason.
    fn scrubbed(self, url: &Secret) -> Self {
        match self {
            SendError::Retry { reason, after } => SendError::Retry {
                reason: scrub(&reason, url),
                after,
            },
            SendError::Permanent { reason } => SendError::Permanent {
                reason: scrub(&reason, url),
            },
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

/// A configured destination. Enum dispatch over the platform sinks: the set is closed and
/// known from the config, so no trait object is needed.
pub enum Sink {
    Discord(discord::DiscordSink),
    Webhook(webhook::WebhookSink),
    Stdout(stdout::StdoutSink),
}

impl Sink {
    /// Builds the sink a channel describes. `http` is shared by every sink and already carries
    /// the delivery timeout. A channel without a usable URL still builds; its sends fail
    /// permanently with a reason saying so (config validation normally prevents that).
    pub fn from_config(channel: &ChannelConfig, http: reqwest::Client) -> Sink {
        let url = channel.url.clone().unwrap_or_default();
        match channel.kind {
            ChannelType::Discord => Sink::Discord(discord::DiscordSink::new(url, http)),
            ChannelType::Webhook => {
                Sink::Webhook(webhook::WebhookSink::new(url, channel.secret.clone(), http))
            }
            ChannelType::Stdout => Sink::Stdout(stdout::StdoutSink::new()),
        }
    }

    /// Renders and sends one message. `Ok` only once the service accepted it.
    pub async fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        match self {
            Sink::Discord(s) => s.send(out).await,
            Sink::Webhook(s) => s.send(out).await,
            Sink::Stdout(s) => s.send(out),
        }
    }

    /// The platform's name, as in the config's `type`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Discord(_) => ChannelType::Discord.as_str(),
            Sink::Webhook(_) => ChannelType::Webhook.as_str(),
            Sink::Stdout(_) => ChannelType::Stdout.as_str(),
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Discord(s) => f.debug_tuple("Discord").field(s).finish(),
            Sink::Webhook(s) => f.debug_tuple("Webhook").field(s).finish(),
            Sink::Stdout(s) => f.debug_tuple("Stdout").field(s).finish(),
        }
    }
}

/// Parses a sink's URL, with an error that does not repeat it.
fn parse_url(url: &Secret) -> Result<reqwest::Url, SendError> {
    if url.is_empty() {
        return Err(SendError::permanent("the channel has no url configured"));
    }
    let parsed = reqwest::Url::parse(url.expose())
        .map_err(|e| SendError::permanent(format!("the channel's url is not valid ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(SendError::permanent(format!(
            "the channel's url has scheme {other:?}, not http or https"
        ))),
    }
}

/// POSTs a JSON body and classifies the outcome. Every reason is scrubbed of `secret_url`.
async fn post_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<(), SendError> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|e| transport_error(&e).scrubbed(secret_url))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = match read_capped(response).await {
        Ok(body) => body,
        // The status already says whether the message was taken; a body cut short changes
        // nothing for a 2xx, and only loses detail for an error.
        Err(e) => {
            tracing::debug!(status = status.as_u16(), error = %scrub(&without_url(&e), secret_url),
                "response body could not be read");
            Vec::new()
        }
    };
    classify_http(status, &headers, &body).map_err(|e| e.scrubbed(secret_url))
}

/// A request that got no HTTP answer: always worth retrying (timeouts, refused or reset
/// connections, DNS failures), described without the URL.
fn transport_error(e: &reqwest::Error) -> SendError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    SendError::Retry {
        reason: truncate_reason(&format!("{what}: {}", without_url(e))),
        after: None,
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of a body; the rest is dropped.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - body.len();
        if chunk.len() >= room {
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Removes a credential URL from a text: the URL as configured, as normalised, and its path and
/// query (where Discord and Slack put the token), in case a library printed only those.
fn scrub(text: &str, url: &Secret) -> String {
    let raw = url.expose();
    if raw.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(raw, "<url>");
    if let Ok(parsed) = reqwest::Url::parse(raw) {
        out = out.replace(parsed.as_str(), "<url>");
        let path = parsed.path();
        if path.len() > 1 {
            out = out.replace(path, "<path>");
        }
        if let Some(query) = parsed.query().filter(|q| !q.is_empty()) {
            out = out.replace(query, "<query>");
        }
    }
    out
}

/// Turns an HTTP answer into `Ok`, `Retry` or `Permanent`.
///
/// 2xx is accepted. 429 is retried after the service's delay: Discord's JSON `retry_after`
/// (float seconds, more precise) wins over the `Retry-After` header. 408, 425 and 5xx are
/// retried (after `Retry-After` when given). Every other status, 3xx and 4xx alike, is
/// permanent, with a reason naming the status and the platform's own message.
pub(crate) fn classify_http(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let message = platform_message(body);
    let reason = truncate_reason(&match &message {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    });
    let header_delay = crate::codearts::client::retry_after(headers);
    match status.as_u16() {
        429 => Err(SendError::Retry {
            reason,
            after: body_retry_after(body).or(header_delay),
        }),
        408 | 425 | 500..=599 => Err(SendError::Retry {
            reason,
            after: header_delay,
        }),
        _ => Err(SendError::Permanent { reason }),
    }
}

/// Discord's `retry_after` (seconds, float) from a 429 body, bounded like the header.
fn body_retry_after(body: &[u8]) -> Option<Duration> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let secs = value.get("retry_after")?.as_f64()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// What the platform said about a failure: Discord's `message` (and `code`), a generic
/// `error`/`error_msg`/`msg`, or the body's text (Slack answers plain `channel_not_found`).
fn platform_message(body: &[u8]) -> Option<String> {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = [
            "message",
            "error_msg",
            "errmsg",
            "msg",
            "error",
            "description",
        ]
        .iter()
        .find_map(|k| match map.get(*k) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        });
        let code = ["code", "error_code", "errcode"]
            .iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()));
        let code = code.map(|c| match c {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        return match (text, code) {
            (Some(t), Some(c)) => Some(format!("{} (code {})", text::printable(&t), c)),
            (Some(t), None) => Some(text::printable(&t)),
            (None, Some(c)) => Some(format!("code {c}")),
            (None, None) => None,
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_REASON_CHARS)]);
    let text = text::printable(&text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

fn truncate_reason(reason: &str) -> String {
    text::truncate_chars(reason, MAX_REASON_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn classify(status: u16, hdrs: &[(&'static str, &str)], body: &str) -> Result<(), SendError> {
        classify_http(
            StatusCode::from_u16(status).unwrap(),
            &headers(hdrs),
            body.as_bytes(),
        )
    }

    #[test]
    fn http_answers_are_classified_as_the_dispatcher_needs() {
        /// What a row expects: accepted, retried after this many seconds, or refused with a
        /// reason containing this text.
        #[derive(Debug)]
        enum Want {
            Ok,
            Retry(Option<f64>),
            Permanent(&'static str),
        }
        let discord_429 =
            r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#;
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let table: &[(u16, Headers, &str, Want)] = &[
            (200, &[], r#"{"id":"1"}"#, Want::Ok),
            (204, &[], "", Want::Ok),
            (
                400,
                &[],
                r#"{"message":"Invalid Form Body","code":50035}"#,
                Want::Permanent("HTTP 400 Bad Request: Invalid Form Body (code 50035)"),
            ),
            (
                401,
                &[],
                r#"{"message":"401: Unauthorized","code":0}"#,
                Want::Permanent("HTTP 401 Unauthorized"),
            ),
            (
                404,
                &[],
                r#"{"message":"Unknown Webhook","code":10015}"#,
                Want::Permanent("HTTP 404 Not Found: Unknown Webhook (code 10015)"),
            ),
            (
                410,
                &[],
                "channel_is_archived",
                Want::Permanent("HTTP 410 Gone: channel_is_archived"),
            ),
            (429, &[("retry-after", "3")], "", Want::Retry(Some(3.0))),
            (
                429,
                &[("retry-after", "2")],
                discord_429,
                Want::Retry(Some(1.5)),
            ),
            (429, &[], discord_429, Want::Retry(Some(1.5))),
            (429, &[], "", Want::Retry(None)),
            (500, &[], "<html>oops</html>", Want::Retry(None)),
            (503, &[("retry-after", "7")], "", Want::Retry(Some(7.0))),
            (408, &[], "", Want::Retry(None)),
            (425, &[], "", Want::Retry(None)),
            (302, &[], "", Want::Permanent("HTTP 302 Found")),
            (418, &[], "", Want::Permanent("HTTP 418")),
        ];
        for (status, hdrs, body, want) in table {
            let got = classify(*status, hdrs, body);
            let ok = match (want, &got) {
                (Want::Ok, Ok(())) => true,
                (Want::Retry(secs), Err(SendError::Retry { after, .. })) => {
                    *after == secs.map(Duration::from_secs_f64)
                }
                (Want::Permanent(needle), Err(SendError::Permanent { reason })) => {
                    reason.contains(needle)
                }
                _ => false,
            };
            assert!(ok, "{status} {hdrs:?} {body:?}: want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn hostile_retry_after_values_do_not_panic() {
        for v in ["-1", "NaN", "inf", "1e400", "soon"] {
            let got = classify(503, &[("retry-after", v)], "");
            assert!(
                matches!(got, Err(SendError::Retry { after: None, .. })),
                "{v}: {got:?}"
            );
        }
        for body in [
            r#"{"retry_after":-4}"#,
            r#"{"retry_after":"x"}"#,
            r#"{"retry_after":1e400}"#,
        ] {
            let got = classify(429, &[], body);
            assert!(
                matches!(got, Err(SendError::Retry { after: None, .. })),
                "{body}: {got:?}"
            );
        }
        let huge = classify(429, &[], r#"{"retry_after":1e12}"#);
        assert!(
            matches!(huge, Err(SendError::Retry { after: Some(d), .. }) if d.as_secs() == 3600)
        );
    }

    #[test]
    fn reasons_are_short_and_single_line() {
        let body = format!("line one\nline two {}", "x".repeat(1000));
        let got = classify(400, &[], &body).unwrap_err();
        assert!(got.reason().chars().count() <= MAX_REASON_CHARS, "{got:?}");
        assert!(!got.reason().contains('\n'));
        assert!(got.reason().ends_with(text::MARKER));
    }

    #[test]
    fn scrub_removes_the_url_and_its_token() {
        let url = Secret::new("https://discord.com/api/webhooks/123/TOKEN?thread_id=9");
        let text = "error sending request for url (https://discord.com/api/webhooks/123/TOKEN?thread_id=9): \
                    also /api/webhooks/123/TOKEN";
        let clean = scrub(text, &url);
        assert!(!clean.contains("TOKEN"), "{clean}");
    }

    #[test]
    fn sink_debug_never_shows_the_url_or_the_secret() {
        let channel = ChannelConfig {
            name: "ops".to_owned(),
            kind: ChannelType::Webhook,
            url: Some(Secret::new("https://hooks.example/T0K3N")),
            secret: Some(Secret::new("hm4c-key")),
            events: None,
        };
        let sink = Sink::from_config(&channel, reqwest::Client::new());
        let shown = format!("{sink:?}");
        assert!(
            !shown.contains("T0K3N") && !shown.contains("hm4c-key"),
            "{shown}"
        );
        assert_eq!(sink.kind(), "webhook");
        let discord = Sink::from_config(
            &ChannelConfig {
                kind: ChannelType::Discord,
                secret: None,
                ..channel
            },
            reqwest::Client::new(),
        );
        assert!(!format!("{discord:?}").contains("T0K3N"));
        assert_eq!(discord.kind(), "discord");
    }
}
