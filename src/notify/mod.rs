//! Delivering events to chat: the seam between the dispatcher and the platforms. Only module
//! declarations and re-exports live here.
//!
//! - [`sink`]: [`Sink`], one configured destination, and the one registry of platforms;
//!   [`Sink::send_batch`] renders several events of one channel as one message and reports
//!   [`SendError::Retry`] or [`SendError::Permanent`] so the dispatcher knows whether to try
//!   again; [`Sink::max_batch`] and [`Sink::pacing`] tell it how much and how fast to send.
//! - [`platform`]: [`PlatformFacts`], what each platform module declares in its `FACTS`.
//! - [`discord`], [`discord_bot`], [`slack`], [`feishu`], [`dingtalk`], [`wecom`], [`webhook`],
//!   [`stdout`]: one module per platform, each owning its facts, renderer and success check.
//! - [`outgoing`], [`error`], [`http`]: what is sent, why it failed, and the HTTP shared by
//!   the webhook sinks.
//! - [`wording`], [`fit`], [`escape`]: the words of a card, fitting it to a size limit, and
//!   each platform's escaping of untrusted text.
//! - [`context_text`]: the failure context's facts, its log tail as a block that fits, and the
//!   checked ids of the person to mention, shared by every platform.
//! - [`dispatcher`]: claims due deliveries, sends them through a [`Sink`], records outcomes.
//!
//! The platforms' limits, pacing, signatures and answers, with their sources, are in
//! `docs/platforms.md`. A webhook URL is a credential (Discord's, Slack's and Feishu's embed
//! the token, DingTalk's and WeCom's carry it in the query), and so is a signing secret: no
//! error, log line or `Debug` output here ever contains one.

pub mod buttons;
pub(crate) mod context_text;
pub mod dingtalk;
pub mod discord;
pub mod discord_bot;
pub mod dispatcher;
pub mod error;
pub(crate) mod escape;
pub mod feishu;
pub(crate) mod fit;
pub(crate) mod http;
pub mod mention;
pub mod outgoing;
pub mod platform;
pub mod sink;
pub mod slack;
pub mod stdout;
pub mod storm;
pub mod webhook;
pub mod wecom;
pub(crate) mod wording;

pub use error::SendError;
pub use http::{MAX_REASON_CHARS, MAX_RESPONSE_BYTES, USER_AGENT};
pub use outgoing::{BOARD_LABEL, LINK_LABEL, Outgoing, render_link};
pub use platform::PlatformFacts;
pub use sink::Sink;
