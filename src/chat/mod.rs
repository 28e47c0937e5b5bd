//! Chat commands: one implementation of each command ([`commands`], with its one table),
//! reached by three transports: the Discord gateway ([`gateway`]), Discord's HTTP interactions
//! endpoint ([`discord`]) and Slack slash commands ([`slack`]).
//!
//! A transport turns its request into a [`Command`] and an [`Invoker`], checks its own
//! allow-lists, lets the [`Chat`] handler run it, and renders the platform-neutral [`Reply`].

pub mod buttons;
pub mod commands;
pub mod discord;
pub mod discord_buttons;
pub mod discord_http;
pub mod gateway;
mod handler;
mod invoker;
mod late;
pub mod limits;
mod reply;
pub mod signed;
pub mod slack;
pub mod slack_actions;
mod tail;

pub use commands::Command;
pub use handler::Chat;
pub use invoker::Invoker;
pub use reply::{JobCard, Line, LogExcerpt, MAX_LIST, Reply, sparkline};
