//! codearts-bot: watches Huawei Cloud CodeArts Build jobs and tells chat when something changes.
//!
//! # Layout
//!
//! Layers, highest first; a module imports only from the layers below it (checked by
//! `tests/it/layers.rs`):
//! ```text
//!  cli       the command line, `check`'s card, the demo            (main.rs calls cli::main)
//!  bench     the `bench` command: poll, chat and delivery passes
//!  app       the composition root: builds the context, runs the services, ordered shutdown
//!  server    axum: /healthz, /readyz, /metrics; mounts the chat routes
//!  chat      inbound chat: commands (one table), Discord, Slack, the gateway
//!  engine    the service layer: Ctx, routing + enqueue, poller, scheduler, discovery,
//!            silences, reminders, digests, source (blind) tracking, retention
//!  notify    outbound: sinks per platform, the dispatcher, wording and card fitting
//!  config    the TOML file by section, `${VAR}` expansion, validation, the clients it describes
//!  store     SQLite (sqlx) by aggregate, migrations in `migrations/`
//!  domain    pure types and rules: events and the detector, incidents, silences, source state
//!  sim       the CodeArts Build simulator used by `demo`, tests and benchmarks
//!  codearts  the API client (jobs, lists, build records, stages, logs), typed answers,
//!            errors, auth, signing, regions
//!  util      text, secrets, redaction of fetched text, metrics, rate limiter, health
//! ```
//!
//! The pipeline:
//! ```text
//!  cron tick ─> engine::poller ─> codearts::Client ─> JobInfo | codearts::Error
//!                             │
//!  store (previous snapshot) ─> domain::detect (pure) ─> events
//!                             │
//!  engine::routing ─> store: one transaction = snapshot + events + one delivery per channel
//!                             │
//!  notify::dispatcher ─> notify::<platform> (render + send) ─> chat
//! ```

pub mod app;
pub mod bench;
pub mod chat;
pub mod cli;
pub mod codearts;
pub mod config;
pub mod domain;
pub mod engine;
pub mod notify;
pub mod server;
pub mod sim;
pub mod store;
pub mod util;
