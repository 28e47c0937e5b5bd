//! `[delivery]`: how the dispatcher times out, retries, gives up and groups messages.

use serde::{Deserialize, Serialize};

/// How the dispatcher retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Per-request timeout towards a chat service.
    pub timeout_secs: u64,
    /// First retry delay; doubles on each failure (with jitter) up to `max_backoff_secs`.
    pub initial_backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// A delivery still failing after this long is abandoned and reported.
    pub max_age_secs: u64,
    /// Grouping: on a channel that sent something in the last `group_wait_ms`, a new event
    /// waits up to this long after it was queued and goes out with the others as one message;
    /// on a quiet channel it goes at once.
    pub group_wait_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 10,
            initial_backoff_secs: 2,
            max_backoff_secs: 300,
            max_age_secs: 24 * 3600,
            group_wait_ms: 5000,
        }
    }
}

impl DeliveryConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if !(1..=300).contains(&self.timeout_secs) {
            problems.push(format!(
                "delivery.timeout_secs: {} is out of range (1 to 300)",
                self.timeout_secs
            ));
        }
        if self.group_wait_ms > 60_000 {
            problems.push(format!(
                "delivery.group_wait_ms: {} is more than a minute",
                self.group_wait_ms
            ));
        }
        if self.initial_backoff_secs == 0 || self.max_backoff_secs < self.initial_backoff_secs {
            problems.push("delivery: need 0 < initial_backoff_secs <= max_backoff_secs".to_owned());
        }
    }
}
