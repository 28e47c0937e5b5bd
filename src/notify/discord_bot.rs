//! The `discord_bot` sink: posts to a channel as the bot, through serenity's HTTP client (the
//! same client the chat commands use), so Discord's per-route rate limits are tracked by
//! serenity's ratelimiter. The message is the `discord` webhook's payload (embeds,
//! `allowed_mentions: {"parse": []}`), minus what only webhooks may set. Facts and sources:
//! `docs/platforms.md#discord-bot`.

use std::sync::Arc;

use serenity::http::{Http, HttpError, LightMethod, Request, Route};
use serenity::model::id::ChannelId;

use super::discord;
use super::error::SendError;
use super::http;
use super::outgoing::Outgoing;
use super::platform::{Platform, PlatformFacts, Signing, Window};
use crate::config::ChannelConfig;

/// The bot's facts: a message is the `discord` webhook's payload, so the same batch size and
/// size limit. serenity's ratelimiter follows Discord's headers per route; the pacing here only
/// keeps a burst to a channel's documented pace.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "discord_bot",
    max_batch: discord::MAX_BATCH,
    pacing: &[Window::per_secs(5, 5)],
    signing: Signing::None,
    edits_messages: true,
    buttons: true,
    size_limit: discord::FACTS.size_limit,
    link_max: discord::FACTS.link_max,
};

/// A Discord channel the bot posts to.
pub struct DiscordBotSink {
    http: Arc<Http>,
    channel: ChannelId,
}

impl std::fmt::Debug for DiscordBotSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordBotSink")
            .field("channel", &self.channel.get())
            .field("token", &"***")
            .finish()
    }
}

impl DiscordBotSink {
    pub fn new(http: Arc<Http>, channel: ChannelId) -> Self {
        Self { http, channel }
    }

    /// The same bot client (its connection pool and rate limits) in another channel.
    pub fn in_channel(&self, channel: ChannelId) -> Self {
        Self::new(Arc::clone(&self.http), channel)
    }

    /// Edits a message the bot posted in the channel.
    pub async fn edit(
        &self,
        message_id: &str,
        payload: &serde_json::Value,
    ) -> Result<(), SendError> {
        let id: u64 = message_id
            .parse()
            .map_err(|_| SendError::permanent("not a Discord message id"))?;
        let body = http::encode(payload)?;
        let request = Request::new(
            Route::ChannelMessage {
                channel_id: self.channel,
                message_id: serenity::model::id::MessageId::new(id.max(1)),
            },
            LightMethod::Patch,
        )
        .body(Some(body));
        self.http
            .request(request)
            .await
            .map(|_| ())
            .map_err(|e| self.refusal(e))
    }

    /// What a failed request means for the delivery.
    fn refusal(&self, error: serenity::Error) -> SendError {
        match error {
            serenity::Error::Http(HttpError::UnsuccessfulRequest(e)) => {
                let status = e.status_code.as_u16();
                let reason = format!(
                    "Discord answered {status} (code {}: {})",
                    e.error.code, e.error.message
                );
                match status {
                    429 | 408 | 425 | 500..=599 => SendError::Retry {
                        reason,
                        after: None,
                    },
                    404 => SendError::permanent(format!(
                        "{reason}: the channel does not exist or the bot cannot see it"
                    )),
                    401 | 403 => SendError::permanent(format!(
                        "{reason}: check [discord] token and the bot's permission to send messages in channel {}",
                        self.channel.get()
                    )),
                    _ => SendError::permanent(reason),
                }
            }
            // Transport failures (connection, timeout): the message may not have arrived.
            e => SendError::Retry {
                reason: format!("could not reach Discord: {}", strip_token(&e.to_string())),
                after: None,
            },
        }
    }
}

impl Platform for DiscordBotSink {
    /// A `channel_id` that is missing or not a number becomes channel 1, which Discord refuses
    /// (config validation normally prevents that); without a bot client the sink gets one with
    /// no token, which Discord refuses too.
    fn from_config(
        channel: &ChannelConfig,
        _http: reqwest::Client,
        discord: Option<&Arc<Http>>,
    ) -> Self {
        let channel_id = channel
            .channel_id
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| *id > 0)
            .unwrap_or(1);
        let http = discord.cloned().unwrap_or_else(|| Arc::new(Http::new("")));
        Self::new(http, ChannelId::new(channel_id))
    }

    /// One message carrying the batch; `Ok` once Discord answered 2xx.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        self.post_for_id(batch).await.map(|_| ())
    }

    /// Posts the batch and returns the new message's id.
    async fn post_for_id(&self, batch: &[Outgoing<'_>]) -> Result<Option<String>, SendError> {
        let body = http::encode(&payload(batch))?;
        let request = Request::new(
            Route::ChannelMessages {
                channel_id: self.channel,
            },
            LightMethod::Post,
        )
        .body(Some(body));
        match self.http.request(request).await {
            Ok(response) => Ok(response
                .bytes()
                .await
                .ok()
                .and_then(|body| discord::message_id(&body))),
            Err(e) => Err(self.refusal(e)),
        }
    }

    async fn edit_incident(
        &self,
        message_id: &str,
        out: &Outgoing<'_>,
        incident: &crate::domain::incident::Incident,
    ) -> Result<(), SendError> {
        let payload = discord::render_incident(out, incident, chrono::Utc::now());
        self.edit(message_id, &payload).await
    }
}

/// The message the bot posts: the webhook's payload (embeds, the failure context, the
/// author's mention with `allowed_mentions` naming exactly them) without what only webhooks
/// may set.
pub fn payload(batch: &[Outgoing<'_>]) -> serde_json::Value {
    let mut payload = discord::render_batch(batch);
    if let Some(map) = payload.as_object_mut() {
        // A bot speaks under its own name and avatar.
        map.remove("username");
        map.remove("avatar_url");
    }
    payload
}

/// serenity's errors carry URLs (which hold no token) but never headers; be safe anyway.
fn strip_token(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::context_text::tests::{alice, failed_context};
    use crate::notify::outgoing::test_event;

    #[test]
    fn the_bot_posts_the_context_and_allows_exactly_the_authors_mention() {
        let event = test_event("web");
        let (context, person) = (failed_context(), alice());
        let with = |mention| {
            payload(&[Outgoing {
                delivery_id: "d",
                event: &event,
                link: None,
                context: Some(&context),
                mention,
                buttons: None,
                board: None,
            }])
        };
        let msg = with(Some(&person));
        assert!(msg.get("username").is_none());
        assert_eq!(msg["content"], "<@123456789012345678>");
        assert_eq!(
            msg["allowed_mentions"],
            serde_json::json!({"parse": [], "users": ["123456789012345678"]})
        );
        let fields = msg["embeds"][0]["fields"].to_string();
        assert!(fields.contains("Failed stage"), "{fields}");
        // Without a mapped person a bot message still parses nothing: no role, no @everyone.
        let msg = with(None);
        assert_eq!(msg["allowed_mentions"], serde_json::json!({"parse": []}));
        assert!(msg.get("content").is_none());
    }
}
