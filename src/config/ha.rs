//! `[ha]`: leadership among the `run` processes sharing one database (docs/ha.md).

use serde::{Deserialize, Serialize};

/// `[ha]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaConfig {
    /// Seconds the leader's lease lasts after each renewal; it renews every third of it. A
    /// replica takes over a lost leader within this plus one poll interval.
    pub lease_secs: u64,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self { lease_secs: 15 }
    }
}

impl HaConfig {
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_secs)
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if !(3..=600).contains(&self.lease_secs) {
            problems.push(format!(
                "ha.lease_secs: {} is out of range (3 to 600)",
                self.lease_secs
            ));
        }
    }
}
