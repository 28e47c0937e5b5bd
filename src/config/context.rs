//! `[context]`: how the bot learns why a build failed (docs/events.md, "Failure context"):
//! whether it asks, how long an alert waits for the answer, how many failures of one cycle
//! get it, and how much of the log it keeps.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most log lines a context keeps (and `/log` answers).
pub const MAX_LOG_LINES: usize = 50;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    /// `false`: no build calls; alerts carry what ShowJobInfo said.
    pub enabled: bool,
    /// How long an alert waits for its context before it is sent without (and edited where
    /// the platform can edit, once the context arrives).
    pub wait_ms: u64,
    /// At most this many failures of one cycle get context; the rest of a storm goes without.
    pub max_per_cycle: usize,
    /// How many of the log's last lines a context keeps.
    pub log_lines: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            wait_ms: 3000,
            max_per_cycle: 50,
            log_lines: 20,
        }
    }
}

impl ContextConfig {
    pub fn wait(&self) -> Duration {
        Duration::from_millis(self.wait_ms)
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.wait_ms > 60_000 {
            problems.push(format!(
                "context.wait_ms: {} is out of range (0 to 60000: an alert should not wait a minute for its context)",
                self.wait_ms
            ));
        }
        if self.max_per_cycle > 10_000 {
            problems.push(format!(
                "context.max_per_cycle: {} is out of range (0 to 10000)",
                self.max_per_cycle
            ));
        }
        if !(1..=MAX_LOG_LINES).contains(&self.log_lines) {
            problems.push(format!(
                "context.log_lines: {} is out of range (1 to {MAX_LOG_LINES})",
                self.log_lines
            ));
        }
    }
}
