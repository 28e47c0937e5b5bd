//! codearts-bot: watches Huawei Cloud CodeArts Build jobs and tells chat when something changes.
//!
//! The pipeline, and the module that owns each step:
//! ```text
//!  cron tick ─> poller ─> codearts::Client ─> JobInfo | codearts::Error
//!                             │
//!  store (previous snapshot) ─> detect (pure) ─> events
//!                             │
//!  store: one transaction = new snapshot + events + one delivery per channel
//!                             │
//!  notify::Dispatcher ─> notify::<platform> (render + send) ─> chat
//! ```
//! - [`codearts`]: the API client, typed answers, auth, regions.
//! - [`detect`]: the pure transition rules.
//! - [`store`]: SQLite (sqlx), migrations in `migrations/`.
//! - [`poller`]: one poll cycle, and the scheduler that runs cycles.
//! - [`discover`]: channels' project subscriptions turned into watched jobs.
//! - [`blind`], [`silence`]: the "cannot see CodeArts" state; mutes, acks and their summaries.
//! - [`notify`]: the dispatcher and one module per sink.
//! - [`sim`]: the CodeArts Build simulator used by `demo`, tests and benchmarks.
//! - [`config`]: the TOML file, `${NAME}` expansion, validation.
//! - [`server`]: `/healthz`, `/readyz`, `/metrics` ([`metrics`], [`health`]).
//! - [`chat`]: `/job` and the other chat commands, on Discord and Slack.
//! - [`app`]: wires the pieces into what `run`, `check` and `demo` start.

pub mod app;
pub mod bench;
pub mod bench_chat;
pub mod bench_delivery;
pub mod blind;
pub mod card;
pub mod chat;
pub mod cli;
pub mod codearts;
pub mod config;
pub mod demo;
pub mod detect;
pub mod discover;
pub mod flaky;
pub mod health;
pub mod incident;
pub mod metrics;
pub mod notify;
pub mod poller;
pub mod ratelimit;
pub mod secret;
pub mod server;
pub mod silence;
pub mod sim;
pub mod store;
