//! `[commands]`: what every chat transport shares: the projects chat may reach, the per-user
//! rate limit and the answer cache.

use serde::{Deserialize, Serialize};

/// `[commands]`: what every chat transport shares.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// CodeArts projects whose jobs may be queried and watched from chat (empty: any the
    /// credentials can see).
    pub projects: Vec<String>,
    /// Commands one user may run per minute (a burst of this many, then refilled evenly).
    pub per_user_per_minute: u32,
    /// A job's answer is reused for this long by every query of that job.
    pub cache_secs: u64,
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            projects: Vec::new(),
            per_user_per_minute: 10,
            cache_secs: 5,
        }
    }
}

impl CommandsConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        for (i, project) in self.projects.iter().enumerate() {
            if let Err(e) = crate::codearts::listing::check_project_id(project) {
                problems.push(format!("commands.projects[{i}]: {e}"));
            }
        }
        if !(1..=600).contains(&self.per_user_per_minute) {
            problems.push(format!(
                "commands.per_user_per_minute: {} is out of range (1 to 600)",
                self.per_user_per_minute
            ));
        }
        if self.cache_secs > 300 {
            problems.push(format!(
                "commands.cache_secs: {} is more than 300",
                self.cache_secs
            ));
        }
    }
}
