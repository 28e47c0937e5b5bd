//! The configuration file: one TOML file, `${NAME}` replaced from the environment in every
//! string, unknown keys refused, and every problem reported with the key it is about.
//!
//! The annotated example is `config/codearts-bot.example.toml`; the reference is the README.
//! One file per section, each with its own checks; `load` holds the root and the reading
//! steps, `env` the expansion, `error` the error and its line numbers. This file only names
//! them, so that `crate::config::X` stays the one path the rest of the crate uses.

mod channels;
mod clients;
mod codearts;
mod commands;
mod context;
mod delivery;
mod digest;
mod discord;
mod env;
mod error;
mod ha;
mod http;
mod jobs;
mod jobs_split;
mod load;
mod maintenance;
mod people;
mod poll;
mod rules;
mod schedule;
mod slack;
mod store;
mod url;

#[cfg(test)]
mod tests;

pub use channels::{ChannelConfig, ChannelType, EVERY_PROJECT, Mention, SeverityName};
pub use codearts::{AuthConfig, AuthMethod, CodeArtsConfig};
pub use commands::CommandsConfig;
pub use context::{ContextConfig, MAX_LOG_LINES};
pub use delivery::DeliveryConfig;
pub use digest::DigestSchedule;
pub use discord::{DiscordConfig, parse_discord_public_key};
pub use error::ConfigError;
pub use ha::HaConfig;
pub use http::HttpConfig;
pub use jobs::JobConfig;
pub use load::{Config, DEFAULT_CONFIG_PATH, ENV_CONFIG_PATH};
pub use maintenance::MaintenanceWindow;
pub use people::{Person, find as find_person};
pub use poll::PollConfig;
pub use rules::RulesConfig;
pub use schedule::schedule_interval;
pub use slack::SlackConfig;
pub use store::StoreConfig;
