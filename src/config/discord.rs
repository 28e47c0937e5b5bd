//! `[discord]`: the bot token, the interactions endpoint's public key, and who may use the
//! chat commands on Discord.

use serde::{Deserialize, Serialize};

use crate::util::secret::Secret;

/// `[discord]`: the bot, shared by `discord_bot` channels and the chat commands.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The bot token (Developer Portal, Bot, Reset Token).
    pub token: Option<Secret>,
    /// Discord's API base, `https://discord.com` by default; tests point it at loopback.
    pub api_base: Option<String>,
    /// The application's public key (hex, Developer Portal, General Information): turns on
    /// `POST /discord/interactions`, whose requests are verified with it.
    pub public_key: Option<String>,
    /// Connect to the gateway for slash commands when `token` is set (default true).
    pub gateway: bool,
    /// Guilds allowed to use the commands (empty: any). The gateway registers the commands in
    /// these guilds (instantly) or, when empty, globally.
    pub guilds: Vec<String>,
    /// Channels allowed to use the commands (empty: any).
    pub channels: Vec<String>,
    /// Roles allowed to use the commands: a member needs one of them (empty: anyone).
    pub roles: Vec<String>,
    /// Roles allowed to change the watch list (`/watch`, `/unwatch`); empty: whoever may use
    /// the commands.
    pub manage_roles: Vec<String>,
    /// Roles allowed to act on CodeArts (`/rerun`, `/stop`); empty: `manage_roles`. With
    /// both empty nobody may (acting on CodeArts is never open to everyone by default).
    pub actions_roles: Vec<String>,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            api_base: None,
            public_key: None,
            gateway: true,
            guilds: Vec::new(),
            channels: Vec::new(),
            roles: Vec::new(),
            manage_roles: Vec::new(),
            actions_roles: Vec::new(),
        }
    }
}

impl DiscordConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if let Some(key) = &self.public_key
            && parse_discord_public_key(key).is_err()
        {
            problems.push(
                "discord.public_key: not an Ed25519 public key: expected 64 hex digits \
                 (Developer Portal, General Information, Public Key)"
                    .to_owned(),
            );
        }
        let snowflakes = [
            ("discord.guilds", &self.guilds),
            ("discord.channels", &self.channels),
            ("discord.roles", &self.roles),
            ("discord.manage_roles", &self.manage_roles),
            ("discord.actions_roles", &self.actions_roles),
        ];
        for (key, ids) in snowflakes {
            for (i, id) in ids.iter().enumerate() {
                if id.parse::<u64>().map_or(true, |n| n == 0) {
                    problems.push(format!(
                        "{key}[{i}]: {id:?} is not a Discord id (digits; Developer Mode, Copy ID)"
                    ));
                }
            }
        }
    }
}

/// Parses a Discord application's public key (64 hex digits), as `[discord] public_key`
/// gives it.
pub fn parse_discord_public_key(hex_key: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .map_err(|e| e.to_string())?
        .try_into()
        .map_err(|_| "not 32 bytes".to_owned())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}
