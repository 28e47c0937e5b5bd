//! The `Config` root: where the file is found, how it is read (parse, `${NAME}` expansion,
//! typed sections, validation), and what the rest of the bot asks of the whole file.
//!
//! Each section checks itself; [`Config::validate`] only calls them in order and hands the
//! cross-section facts (channel names, whether a Discord token is set) to those that need them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::codearts::{JobId, region};
use crate::config::channels::{ChannelConfig, validate_channels};
use crate::config::codearts::CodeArtsConfig;
use crate::config::commands::CommandsConfig;
use crate::config::context::ContextConfig;
use crate::config::delivery::DeliveryConfig;
use crate::config::discord::DiscordConfig;
use crate::config::env::expand_table;
use crate::config::error::{ConfigError, with_line};
use crate::config::ha::HaConfig;
use crate::config::http::HttpConfig;
use crate::config::jobs::{JobConfig, validate_jobs};
use crate::config::jobs_split::split_jobs;
use crate::config::maintenance::MaintenanceWindow;
use crate::config::people::{Person, validate_people};
use crate::config::poll::PollConfig;
use crate::config::rules::RulesConfig;
use crate::config::slack::SlackConfig;
use crate::config::store::StoreConfig;

/// Where the config is looked for when `--config` is not given.
pub const ENV_CONFIG_PATH: &str = "CODEARTS_BOT_CONFIG";
pub const DEFAULT_CONFIG_PATH: &str = "config/codearts-bot.toml";

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub codearts: CodeArtsConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub rules: RulesConfig,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub discord: DiscordConfig,
    #[serde(default)]
    pub slack: SlackConfig,
    #[serde(default)]
    pub commands: CommandsConfig,
    #[serde(default)]
    pub context: ContextConfig,
    #[serde(default)]
    pub ha: HaConfig,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceWindow>,
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub people: Vec<Person>,
}

impl Config {
    /// Resolves the config path: `--config`, then `$CODEARTS_BOT_CONFIG`, then the default.
    pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf)
            .or_else(|| std::env::var_os(ENV_CONFIG_PATH).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Reads, expands and validates a config file, taking `${NAME}` from the process
    /// environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            problems: vec![format!(
                "cannot read the file ({e}); pass --config PATH or set {ENV_CONFIG_PATH} \
                 (start from config/codearts-bot.example.toml)"
            )],
        })?;
        Self::from_toml(&text, &origin, &|name| std::env::var(name).ok())
    }

    /// Parses, expands and validates config text; `env` answers `${NAME}` look-ups.
    ///
    /// Expansion runs on the parsed TOML tree, so every string is expanded, whatever key it
    /// sits under. A type or unknown-key error is reported before expansion problems, and
    /// expansion problems before validation, as each makes the next step's findings moot.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            origin: origin.to_owned(),
            problems,
        };
        let invalid = |mut e: toml::de::Error| {
            // Spans point into `text`: the message quotes the line as written, before
            // expansion, so no expanded secret can reach it.
            e.set_input(Some(text));
            fail(vec![
                e.to_string()
                    .trim_end()
                    .replace("TOML parse error", "invalid TOML"),
            ])
        };
        let mut problems = Vec::new();
        let mut config = match Self::with_jobs_apart(text, env) {
            Some(config) => config,
            None => Self::whole_file(text, env, &mut problems).map_err(invalid)?,
        };
        config.codearts.auth.fill_from_sdk_env(env);
        if problems.is_empty() {
            config.validate(&mut problems);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(
                problems.into_iter().map(|p| with_line(text, p)).collect(),
            ))
        }
    }

    /// The whole file as one TOML tree, expanded (problems added to `problems`), deserialised.
    pub(super) fn whole_file(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        problems: &mut Vec<String>,
    ) -> Result<Self, toml::de::Error> {
        let mut root = toml::de::DeTable::parse(text)?;
        expand_table(root.get_mut(), env, problems);
        Config::deserialize(toml::de::Deserializer::from(root))
    }

    /// The file read with its `[[jobs]]` parsed one table at a time ([`split_jobs`]), so a
    /// long job list never exists as one TOML tree; `None` when the whole-file parse must
    /// decide (any problem at all: its messages are the reference).
    pub(super) fn with_jobs_apart(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Self> {
        let split = split_jobs(text, env)?;
        let mut root = toml::de::DeTable::parse(&split.rest).ok()?;
        if root
            .get_ref()
            .iter()
            .any(|(key, _)| key.get_ref() == "jobs")
        {
            return None; // `jobs` written another way too: an error the whole parse words
        }
        let mut problems = Vec::new();
        expand_table(root.get_mut(), env, &mut problems);
        if !problems.is_empty() {
            return None;
        }
        let mut config = Config::deserialize(toml::de::Deserializer::from(root)).ok()?;
        config.jobs = split.jobs;
        Some(config)
    }

    /// The configuration in effect (defaults filled in, `${NAME}` expanded), as TOML, with
    /// every secret shown as `***`.
    pub fn effective_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Every section's own checks, in the order their problems are reported.
    fn validate(&self, problems: &mut Vec<String>) {
        self.codearts.validate(problems);
        self.poll.validate(problems);
        self.http.validate(problems);
        self.store.validate(problems);
        self.rules.validate(problems);
        self.delivery.validate(problems);
        self.discord.validate(problems);
        self.commands.validate(problems);
        self.context.validate(problems);
        self.ha.validate(problems);
        validate_people(&self.people, problems);
        for (i, window) in self.maintenance.iter().enumerate() {
            window.validate(&format!("maintenance[{i}]"), problems);
        }
        let names = validate_channels(&self.channels, self.discord.token.is_some(), problems);
        validate_jobs(&self.jobs, &names, problems);
    }

    /// The API endpoint: the override, or the region's.
    pub fn endpoint(&self) -> String {
        self.codearts
            .endpoint
            .clone()
            .or_else(|| region::endpoint(&self.codearts.region))
            .unwrap_or_default()
    }

    /// Every secret value of the file (tokens, passwords, secret keys, webhook URLs, signing
    /// secrets): what text fetched from builds is scrubbed of before it is stored or shown.
    pub fn secrets(&self) -> Vec<String> {
        let auth = &self.codearts.auth;
        [
            &auth.token,
            &auth.password,
            &auth.sk,
            &auth.security_token,
            &self.discord.token,
            &self.slack.signing_secret,
            &self.http.board_token,
            &self.store.url,
        ]
        .into_iter()
        .chain(self.channels.iter().flat_map(|c| [&c.url, &c.secret]))
        .flatten()
        .map(|s| s.expose().to_owned())
        .collect()
    }

    /// The watched jobs, validated.
    pub fn job_ids(&self) -> Vec<JobId> {
        self.jobs
            .iter()
            .filter_map(|j| JobId::parse(&j.id).ok())
            .collect()
    }
}
