//! What every platform module declares about itself, in one place: [`PlatformFacts`] (a
//! `pub const FACTS` in each platform's file) and the [`Platform`] trait its sink implements.
//! [`super::sink::Sink`] and the dispatcher read these instead of matching on the platform, so
//! a platform's batch size, pacing, signing, editing and size limit are stated once, next to
//! the code that relies on them. Every figure is sourced in `docs/platforms.md`
//! (`#summary` lists them side by side).

use std::sync::Arc;
use std::time::Duration;

use super::error::SendError;
use super::outgoing::Outgoing;
use crate::config::ChannelConfig;
use crate::domain::incident::Incident;

/// One pacing window: at most `messages` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub messages: u32,
    pub per: Duration,
}

impl Window {
    /// At most `messages` every `secs` seconds.
    pub const fn per_secs(messages: u32, secs: u64) -> Self {
        Self {
            messages,
            per: Duration::from_secs(secs),
        }
    }
}

/// How a platform counts its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Characters, counted as UTF-16 units (never fewer than the platform counts).
    Utf16,
    /// UTF-8 bytes of the text.
    Utf8Bytes,
    /// Bytes of the text once JSON-escaped (the limit is on the request body).
    JsonBytes,
}

/// The one size limit that decides how much of a batch fits in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    /// What the limit applies to, for humans (`"embeds of one message"`, `"request body"`).
    pub applies_to: &'static str,
    pub max: usize,
    pub unit: Unit,
}

/// How a platform proves a message came from us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// No signature: the URL (or the bot token) is the credential.
    None,
    /// Signed when the channel has a `secret`, in the request body (Feishu).
    SecretInBody,
    /// Signed when the channel has a `secret`, in the URL's query (DingTalk).
    SecretInQuery,
    /// Signed when the channel has a `secret`, in a header (the generic webhook).
    SecretInHeader,
}

/// The facts of one platform, as its module declares them in `pub const FACTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformFacts {
    /// The config's `type` for this platform (`[[channels]] type = "…"`).
    pub name: &'static str,
    /// The most events one message may carry; the dispatcher claims at most this many.
    pub max_batch: usize,
    /// Pacing windows, every one of which must hold; empty means unlimited.
    pub pacing: &'static [Window],
    /// Whether and where a channel `secret` signs the message.
    pub signing: Signing,
    /// Whether a posted message can be edited later (incidents are then edited in place).
    pub edits_messages: bool,
    /// Whether a card can carry buttons whose clicks come back to the bot (Discord messages
    /// the application posts, Slack apps); the rest carry only the link.
    pub buttons: bool,
    /// The size limit that bounds a message, when there is one.
    pub size_limit: Option<SizeLimit>,
    /// The longest link a card carries (a link button's URL limit where there is one, else
    /// [`PORTABLE_URL_MAX`]): a storm summary whose filtered board link would be longer links
    /// the board's problems view instead (docs/board.md, "`public_url`").
    pub link_max: usize,
}

/// The longest URL sent where a platform states no limit: beyond about 2000 characters,
/// proxies, link previews and address bars start to cut or refuse URLs.
pub const PORTABLE_URL_MAX: usize = 2000;

/// What the dispatcher needs a platform's sink to do. Crate-private: the set of sinks is closed
/// and registered in [`super::sink`], which dispatches statically (no trait objects).
pub(crate) trait Platform: Sized + std::fmt::Debug {
    /// Builds the sink a channel describes. `http` is shared by every sink and carries the
    /// delivery timeout; `discord` is the bot's client (only `discord_bot` uses it). A channel
    /// without a usable URL still builds: its sends fail permanently, saying why.
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        discord: Option<&Arc<serenity::http::Http>>,
    ) -> Self;

    /// Sends a non-empty batch as one message (the generic webhook: one POST per event, or
    /// one array with `batch = true`). `Ok` only once the service accepted it.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError>;

    /// This channel's own batch size, when its config changes the platform's
    /// `FACTS.max_batch` (a `webhook` channel with `batch = true`).
    fn max_batch(&self) -> Option<usize> {
        None
    }

    /// [`Platform::send_batch`], returning the posted message's id where the platform gives
    /// one back (only platforms that edit messages do).
    async fn post_for_id(&self, batch: &[Outgoing<'_>]) -> Result<Option<String>, SendError> {
        self.send_batch(batch).await.map(|()| None)
    }

    /// Replaces a posted message with the incident's card for `out` (its latest event).
    /// `message_id` has been checked to be a message id already.
    async fn edit_incident(
        &self,
        _message_id: &str,
        _out: &Outgoing<'_>,
        _incident: &Incident,
    ) -> Result<(), SendError> {
        Err(SendError::permanent("this platform cannot edit messages"))
    }
}
