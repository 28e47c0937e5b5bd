//! Delivering events to chat: the seam between the dispatcher and the platforms.
//!
//! - [`Sink`]: one configured destination (enum dispatch over the platform modules);
//!   [`Sink::send_batch`] renders several events of one channel as one message and reports
//!   [`SendError::Retry`] or [`SendError::Permanent`] so the dispatcher knows whether to try
//!   again; [`Sink::max_batch`] and [`Sink::pacing`] tell it how much and how fast to send.
//! - [`discord`], [`slack`], [`feishu`], [`dingtalk`], [`wecom`], [`webhook`], [`stdout`]: one
//!   module per platform, each owning its renderer, its limits and its success check.
//! - [`text`]: truncation, escaping, wording and fitting shared by the renderers.
//! - [`dispatcher`]: claims due deliveries, sends them through a [`Sink`], records outcomes.
//!
//! A webhook URL is a credential (Discord's, Slack's and Feishu's embed the token, DingTalk's
//! and WeCom's carry it in the query), and so is a signing secret: no error, log line or
//! `Debug` output here ever contains one.

pub mod dingtalk;
pub mod discord;
pub mod discord_bot;
pub mod dispatcher;
pub mod feishu;
pub mod slack;
pub mod stdout;
pub mod text;
pub mod webhook;
pub mod wecom;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::codearts::client::without_url;
use crate::config::{ChannelConfig, ChannelType};
use crate::domain::detect::Event;
use crate::util::secret::Secret;

/// Error bodies are read up to this size; the rest is not needed to explain a failure.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A failure reason is cut to this many characters.
pub const MAX_REASON_CHARS: usize = 200;

/// The `User-Agent` every sink sends, so a receiver can tell our requests apart.
pub const USER_AGENT: &str = concat!("codearts-bot/", env!("CARGO_PKG_VERSION"));

/// The words of the link button or line on every card.
pub const LINK_LABEL: &str = "Open in CodeArts";

/// One message to send: a stored event, its delivery's stable id (the same on every retry,
/// so a receiver can de-duplicate) and the link the card carries.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub event: &'a Event,
    /// The rendered `codearts.link_template` (see [`render_link`]), or `None` for no link.
    /// A link that is not an http(s) URL is left out of the card.
    pub link: Option<&'a str>,
}

/// Fills in a `codearts.link_template`: `{job_id}` and `{project_id}` (empty when unknown)
/// are replaced by the ids, percent-encoded where they hold anything but `A-Z a-z 0-9 - . _ ~`
/// (real ids never do); the rest of the template is used exactly as written.
pub fn render_link(template: &str, job_id: &str, project_id: Option<&str>) -> String {
    template
        .replace("{job_id}", &encode_component(job_id))
        .replace("{project_id}", &encode_component(project_id.unwrap_or("")))
}

/// RFC 3986 percent-encoding of everything outside the unreserved characters.
fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
    DiscordBot(discord_bot::DiscordBotSink),
    Slack(slack::SlackSink),
    Feishu(feishu::FeishuSink),
    Dingtalk(dingtalk::DingtalkSink),
    Wecom(wecom::WecomSink),
    Webhook(webhook::WebhookSink),
    Stdout(stdout::StdoutSink),
}

impl Sink {
    /// Builds the sink a channel describes. `http` is shared by every sink and already carries
    /// the delivery timeout. A channel without a usable URL still builds; its sends fail
    /// permanently with a reason saying so (config validation normally prevents that).
    ///
    /// `discord` is the bot's HTTP client (from `[discord] token`), needed by `discord_bot`
    /// channels only.
    pub fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Sink {
        let url = channel.url.clone().unwrap_or_default();
        let secret = channel.secret.clone();
        match channel.kind {
            ChannelType::Discord => Sink::Discord(discord::DiscordSink::new(url, http)),
            ChannelType::DiscordBot => {
                let channel_id = channel
                    .channel_id
                    .as_deref()
                    .and_then(|id| id.parse::<u64>().ok())
                    .filter(|id| *id > 0)
                    .unwrap_or(1);
                let http = discord
                    .cloned()
                    .unwrap_or_else(|| std::sync::Arc::new(serenity::http::Http::new("")));
                Sink::DiscordBot(discord_bot::DiscordBotSink::new(
                    http,
                    serenity::model::id::ChannelId::new(channel_id),
                ))
            }
            ChannelType::Slack => Sink::Slack(slack::SlackSink::new(url, http)),
            ChannelType::Feishu => Sink::Feishu(feishu::FeishuSink::new(url, secret, http)),
            ChannelType::Dingtalk => Sink::Dingtalk(dingtalk::DingtalkSink::new(url, secret, http)),
            ChannelType::Wecom => Sink::Wecom(wecom::WecomSink::new(url, http)),
            ChannelType::Webhook => Sink::Webhook(webhook::WebhookSink::new(url, secret, http)),
            ChannelType::Stdout => Sink::Stdout(stdout::StdoutSink::new()),
        }
    }

    /// Renders and sends one message. `Ok` only once the service accepted it.
    pub async fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        self.send_batch(std::slice::from_ref(out)).await
    }

    /// Sends several events of one channel as ONE message, in order: one Discord message of
    /// up to 10 embeds, one Slack message, one Feishu card, one DingTalk or WeCom markdown
    /// message, the cards one after another on stdout. `Ok` only once the service accepted
    /// the message, so every event in it is delivered or none is.
    ///
    /// The dispatcher passes at most [`Sink::max_batch`] events; more are still sent within
    /// the platform's limits (the surplus summarised, never a rejected payload). `webhook` is
    /// one POST per event by contract: a batch is posted event by event and the first failure
    /// is returned (receivers de-duplicate retried ones on the delivery id). An empty batch
    /// sends nothing.
    pub async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Sink::Discord(s) => s.send_batch(batch).await,
            Sink::DiscordBot(s) => s.send_batch(batch).await,
            Sink::Slack(s) => s.send_batch(batch).await,
            Sink::Feishu(s) => s.send_batch(batch).await,
            Sink::Dingtalk(s) => s.send_batch(batch).await,
            Sink::Wecom(s) => s.send_batch(batch).await,
            Sink::Webhook(s) => {
                for out in batch {
                    s.send(out).await?;
                }
                Ok(())
            }
            Sink::Stdout(s) => s.send_batch(batch),
        }
    }

    /// Whether the platform lets the bot edit a message it posted (Discord webhook and bot):
    /// incidents are then edited in place.
    pub fn edits_messages(&self) -> bool {
        matches!(self, Sink::Discord(_) | Sink::DiscordBot(_))
    }

    /// [`Sink::send_batch`], returning the posted message's id where the platform gives one
    /// back (Discord).
    pub async fn send_batch_for_id(
        &self,
        batch: &[Outgoing<'_>],
    ) -> Result<Option<String>, SendError> {
        match self {
            Sink::Discord(s) if !batch.is_empty() => s.post_for_id(batch).await,
            Sink::DiscordBot(s) if !batch.is_empty() => s.post_for_id(batch).await,
            _ => self.send_batch(batch).await.map(|()| None),
        }
    }

    /// Replaces a posted message with the incident's card for `out` (its latest event).
    /// Only for sinks that [`Sink::edits_messages`].
    pub async fn edit_incident(
        &self,
        message_id: &str,
        out: &Outgoing<'_>,
        incident: &crate::domain::incident::Incident,
    ) -> Result<(), SendError> {
        if message_id.is_empty() || !message_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SendError::permanent(format!(
                "{message_id:?} is not a Discord message id"
            )));
        }
        let payload = discord::render_incident(out, incident, chrono::Utc::now());
        match self {
            Sink::Discord(s) => s.edit(message_id, &payload).await,
            Sink::DiscordBot(s) => s.edit(message_id, &payload).await,
            _ => Err(SendError::permanent("this platform cannot edit messages")),
        }
    }

    /// The most events one message may carry on this platform: `webhook` 1 (one POST per
    /// event), `discord` 25 (9 full embeds and a 10th listing the rest), `stdout` 50, `slack`,
    /// `feishu` and `dingtalk` 20, `wecom` 10 (its 4096-byte limit leaves about 400 bytes per
    /// card).
    pub fn max_batch(&self) -> usize {
        match self {
            Sink::Discord(_) | Sink::DiscordBot(_) => discord::MAX_BATCH,
            Sink::Slack(_) => slack::MAX_BATCH,
            Sink::Feishu(_) => feishu::MAX_BATCH,
            Sink::Dingtalk(_) => dingtalk::MAX_BATCH,
            Sink::Wecom(_) => wecom::MAX_BATCH,
            Sink::Webhook(_) => 1,
            Sink::Stdout(_) => stdout::MAX_BATCH,
        }
    }

    /// How fast this destination may be sent to, as windows of (at most this many messages,
    /// per this long), every one of which must hold; empty means unlimited. From the
    /// platforms' published (or, for Discord's webhooks, community) figures in
    /// `shared/chat/FACTS.md`: Discord 5 per 2 s and 30 per minute, Slack 1 per second,
    /// Feishu 5 per second and 100 per minute, DingTalk and WeCom 20 per minute, the generic
    /// webhook 10 per second.
    pub fn pacing(&self) -> Vec<(u32, Duration)> {
        let secs = Duration::from_secs;
        match self {
            Sink::Discord(_) => vec![(5, secs(2)), (30, secs(60))],
            // serenity's ratelimiter follows Discord's headers per route; this only keeps a
            // burst to a channel's documented pace.
            Sink::DiscordBot(_) => vec![(5, secs(5))],
            Sink::Slack(_) => vec![(1, secs(1))],
            Sink::Feishu(_) => vec![(5, secs(1)), (100, secs(60))],
            Sink::Dingtalk(_) | Sink::Wecom(_) => vec![(20, secs(60))],
            Sink::Webhook(_) => vec![(10, secs(1))],
            Sink::Stdout(_) => Vec::new(),
        }
    }

    /// The platform's name, as in the config's `type`: for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Discord(_) => ChannelType::Discord.as_str(),
            Sink::DiscordBot(_) => ChannelType::DiscordBot.as_str(),
            Sink::Slack(_) => ChannelType::Slack.as_str(),
            Sink::Feishu(_) => ChannelType::Feishu.as_str(),
            Sink::Dingtalk(_) => ChannelType::Dingtalk.as_str(),
            Sink::Wecom(_) => ChannelType::Wecom.as_str(),
            Sink::Webhook(_) => ChannelType::Webhook.as_str(),
            Sink::Stdout(_) => ChannelType::Stdout.as_str(),
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Discord(s) => f.debug_tuple("Discord").field(s).finish(),
            Sink::DiscordBot(s) => f.debug_tuple("DiscordBot").field(s).finish(),
            Sink::Slack(s) => f.debug_tuple("Slack").field(s).finish(),
            Sink::Feishu(s) => f.debug_tuple("Feishu").field(s).finish(),
            Sink::Dingtalk(s) => f.debug_tuple("Dingtalk").field(s).finish(),
            Sink::Wecom(s) => f.debug_tuple("Wecom").field(s).finish(),
            Sink::Webhook(s) => f.debug_tuple("Webhook").field(s).finish(),
            Sink::Stdout(s) => f.debug_tuple("Stdout").field(s).finish(),
        }
    }
}

/// Parses a sink's URL, with an error that does not repeat it.
/// A message as JSON bytes; a value that cannot be encoded is a permanent failure.
fn encode(message: &impl serde::Serialize) -> Result<Vec<u8>, SendError> {
    serde_json::to_vec(message)
        .map_err(|e| SendError::permanent(format!("could not encode the message: {e}")))
}

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

/// What a chat service answered: enough to decide whether it took the message.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// POSTs a JSON body and classifies the outcome by HTTP status alone. Every reason is
/// scrubbed of `secret_url`.
async fn post_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<(), SendError> {
    let answer = post(http, url, secret_url, body, headers).await?;
    classify_http(answer.status, &answer.headers, &answer.body).map_err(|e| e.scrubbed(secret_url))
}

/// POSTs a JSON body and returns whatever came back; only a request that got no answer is an
/// error (a retry, scrubbed of `secret_url`).
async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<Answer, SendError> {
    send_json(http, reqwest::Method::POST, url, secret_url, body, headers).await
}

/// Sends a JSON body with `method` and returns whatever came back (see [`post`]).
async fn send_json(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    secret_url: &Secret,
    body: Vec<u8>,
    headers: HeaderMap,
) -> Result<Answer, SendError> {
    let response = http
        .request(method, url)
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
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// How a platform that answers HTTP 200 to refused messages says what happened: the JSON key
/// of its result code (0 is success) and which codes mean "slow down" or "never".
pub(crate) struct CodedAnswers {
    /// The platform's name, for reasons.
    pub platform: &'static str,
    /// Keys that may hold the code, the first present wins (`code`, `StatusCode`, `errcode`).
    pub keys: &'static [&'static str],
    /// Rate-limit codes: retried after `throttle_wait` (or the `Retry-After` header).
    pub throttled: &'static [i64],
    pub throttle_wait: Duration,
    /// Codes that no retry can fix (bad signature, keyword check, deleted or disabled bot,
    /// payload refused).
    pub permanent: &'static [i64],
}

impl CodedAnswers {
    /// `Ok` only for a 2xx whose JSON code is 0. A known throttling code is a retry after the
    /// platform's window, a known permanent code a permanent failure (whatever the HTTP
    /// status); other non-2xx answers are classified by [`classify_http`]; any other code, or
    /// a 2xx without one, is retried with backoff: the message may not have been taken.
    pub(crate) fn classify(&self, answer: &Answer) -> Result<(), SendError> {
        let code = result_code(&answer.body, self.keys);
        let reason = || {
            let said = platform_message(&answer.body).unwrap_or_else(|| "no explanation".into());
            truncate_reason(&format!(
                "{} refused the message (HTTP {}): {said}",
                self.platform,
                answer.status.as_u16()
            ))
        };
        if let Some(code) = code {
            if self.throttled.contains(&code) {
                return Err(SendError::Retry {
                    reason: reason(),
                    after: Some(
                        crate::codearts::client::retry_after(&answer.headers)
                            .unwrap_or(self.throttle_wait),
                    ),
                });
            }
            if self.permanent.contains(&code) {
                return Err(SendError::Permanent { reason: reason() });
            }
        }
        classify_http(answer.status, &answer.headers, &answer.body)?;
        match code {
            Some(0) => Ok(()),
            Some(_) => Err(SendError::Retry {
                reason: reason(),
                after: None,
            }),
            None => Err(SendError::Retry {
                reason: truncate_reason(&format!(
                    "{} answered HTTP {} without a result code, so the message may not have been taken",
                    self.platform,
                    answer.status.as_u16()
                )),
                after: None,
            }),
        }
    }
}

/// The first of `keys` in a JSON object body holding an integer (or an integer as text).
fn result_code(body: &[u8], keys: &[&str]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    keys.iter().find_map(|k| match value.get(*k)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
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
            "StatusMessage",
            "error",
            "description",
        ]
        .iter()
        .find_map(|k| match map.get(*k) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        });
        let code = ["code", "error_code", "errcode", "StatusCode"]
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

/// A build_failed event of a job with this name, the same in every platform's tests.
#[cfg(test)]
pub(crate) fn test_event(name: &str) -> crate::domain::detect::Event {
    let info = |status: &str, health| crate::codearts::JobInfo {
        job_name: Some(name.to_owned()),
        last_build_status: Some(status.to_owned()),
        last_build_time: Some(1_721_793_407_000),
        health_score: Some(health),
        build_time: Some("27.51".to_owned()),
        ..crate::codearts::JobInfo::default()
    };
    Event {
        kind: crate::domain::detect::EventKind::BuildFailed,
        job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
        job_name: name.to_owned(),
        detected_at: chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 26, 12, 0, 0)
            .unwrap(),
        previous: Some(info("success", 80)),
        current: Some(info("failed", 70)),
        summary: format!("Build failed: {name} (success → failed)"),
    }
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
            min_severity: None,
            projects: None,
            channel_id: None,
            source_alerts: false,
            remind_every_mins: None,
            flaky_digest: false,
        };
        let sink = Sink::from_config(&channel, reqwest::Client::new(), None);
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
            None,
        );
        assert!(!format!("{discord:?}").contains("T0K3N"));
        assert_eq!(discord.kind(), "discord");
        for kind in [
            ChannelType::Slack,
            ChannelType::Feishu,
            ChannelType::Dingtalk,
            ChannelType::Wecom,
        ] {
            let sink = Sink::from_config(
                &ChannelConfig {
                    kind,
                    url: Some(Secret::new("https://hooks.example/send?key=T0K3N")),
                    secret: Some(Secret::new("SEChm4c-key")),
                    ..discord_channel()
                },
                reqwest::Client::new(),
                None,
            );
            let shown = format!("{sink:?}");
            assert!(
                !shown.contains("T0K3N") && !shown.contains("hm4c-key"),
                "{shown}"
            );
            assert_eq!(sink.kind(), kind.as_str());
        }
    }

    fn discord_channel() -> ChannelConfig {
        ChannelConfig {
            name: "ops".to_owned(),
            kind: ChannelType::Discord,
            url: None,
            secret: None,
            events: None,
            min_severity: None,
            projects: None,
            channel_id: None,
            source_alerts: false,
            remind_every_mins: None,
            flaky_digest: false,
        }
    }

    fn sink(kind: ChannelType) -> Sink {
        Sink::from_config(
            &ChannelConfig {
                kind,
                url: Some(Secret::new("https://hooks.example/x")),
                ..discord_channel()
            },
            reqwest::Client::new(),
            None,
        )
    }

    #[test]
    fn batch_sizes_and_pacing_follow_each_platforms_limits() {
        let secs = Duration::from_secs;
        /// (platform, max_batch, pacing windows)
        type Row = (ChannelType, usize, Vec<(u32, Duration)>);
        let table: &[Row] = &[
            (ChannelType::Discord, 25, vec![(5, secs(2)), (30, secs(60))]),
            (ChannelType::Slack, 20, vec![(1, secs(1))]),
            (ChannelType::Feishu, 20, vec![(5, secs(1)), (100, secs(60))]),
            (ChannelType::Dingtalk, 20, vec![(20, secs(60))]),
            (ChannelType::Wecom, 10, vec![(20, secs(60))]),
            (ChannelType::Webhook, 1, vec![(10, secs(1))]),
            (ChannelType::Stdout, 50, vec![]),
        ];
        for (kind, max_batch, pacing) in table {
            let sink = sink(*kind);
            assert_eq!(sink.max_batch(), *max_batch, "{kind:?}");
            assert_eq!(&sink.pacing(), pacing, "{kind:?}");
        }
    }

    #[test]
    fn links_are_filled_in_and_only_the_ids_encoded() {
        let template = "https://console.example/p/{project_id}/job/{job_id}?tab=a%20b&x={job_id}";
        assert_eq!(
            render_link(
                template,
                "f5af662119404ad187437cd272b5099b",
                Some("85ca-52")
            ),
            "https://console.example/p/85ca-52/job/f5af662119404ad187437cd272b5099b?tab=a%20b&x=f5af662119404ad187437cd272b5099b"
        );
        assert_eq!(
            render_link(template, "a b/c", None),
            "https://console.example/p//job/a%20b%2Fc?tab=a%20b&x=a%20b%2Fc"
        );
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    const RULES: CodedAnswers = CodedAnswers {
        platform: "Chat",
        keys: &["code", "StatusCode"],
        throttled: &[11232],
        throttle_wait: Duration::from_secs(60),
        permanent: &[19021],
    };

    #[test]
    fn result_codes_decide_before_and_after_the_http_status() {
        assert_eq!(RULES.classify(&answer(200, r#"{"code":0}"#)), Ok(()));
        assert_eq!(
            RULES.classify(&answer(200, r#"{"StatusCode":"0"}"#)),
            Ok(())
        );
        let throttled = RULES.classify(&answer(200, r#"{"code":11232,"msg":"slow"}"#));
        assert_eq!(
            throttled,
            Err(SendError::Retry {
                reason: "Chat refused the message (HTTP 200): slow (code 11232)".to_owned(),
                after: Some(Duration::from_secs(60)),
            })
        );
        let mut with_header = answer(429, r#"{"code":11232}"#);
        with_header
            .headers
            .insert("retry-after", "5".parse().unwrap());
        assert!(matches!(
            RULES.classify(&with_header),
            Err(SendError::Retry { after: Some(a), .. }) if a == Duration::from_secs(5)
        ));
        assert!(matches!(
            RULES.classify(&answer(400, r#"{"code":19021,"msg":"bad sign"}"#)),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(200, r#"{"code":777}"#)),
            Err(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(200, "<html>proxy</html>")),
            Err(SendError::Retry { after: None, .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(404, "")),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            RULES.classify(&answer(503, r#"{"code":0}"#)),
            Err(SendError::Retry { .. })
        ));
    }
}
