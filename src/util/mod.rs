//! Small building blocks with no knowledge of CodeArts or chat: secrets that cannot leak, text
//! truncation and durations, Prometheus metrics, the API rate limiter, the bot's own health,
//! the redaction of fetched text.

pub mod health;
pub mod http;
pub mod metrics;
pub mod ratelimit;
pub mod redact;
pub mod secret;
pub mod text;
