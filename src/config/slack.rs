//! `[slack]`: the slash-command endpoint's signing secret and who may use it.

use serde::{Deserialize, Serialize};

use crate::util::secret::Secret;

/// `[slack]`: slash commands at `POST /slack/commands`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    /// The app's signing secret (Basic Information, App Credentials): turns the endpoint on.
    pub signing_secret: Option<Secret>,
    /// Workspaces (team ids, `T...`) allowed to use the commands (empty: any).
    pub teams: Vec<String>,
    /// Channels (`C...`) allowed to use the commands (empty: any).
    pub channels: Vec<String>,
    /// Users (`U...`) allowed to change the watch list (empty: whoever may use the commands).
    /// Slash command requests carry no roles, so users are listed instead.
    pub manage_users: Vec<String>,
    /// Users allowed to act on CodeArts (`/rerun`, `/stop`); empty: `manage_users`. With both
    /// empty nobody may.
    pub actions_users: Vec<String>,
}
