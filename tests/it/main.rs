//! The crate's integration tests, as one test binary (`cargo test --test it`): each module
//! below was once a binary of its own; together they link serenity, sqlx and axum once and
//! share one harness (`support`). All modules run in one process, concurrently, so none of
//! them sets the process environment, binds a fixed port or writes outside its own temp dir.

mod support;

mod actions;
mod alerts;
mod auth;
mod board;
mod board_links;
mod browser;
mod builds;
mod buttons;
mod chat;
mod chat_context;
mod cli;
mod context;
mod digests;
mod faults;
mod ha;
mod http_limits;
mod layers;
mod list_poll;
mod ops;
mod pipeline;
mod projects;
mod restart;
mod sinks;
mod store_migrate;
mod storms;
