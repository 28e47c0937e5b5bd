//! `[ha]`: leadership among the `run` processes sharing one database (docs/ha.md).

use serde::{Deserialize, Serialize};

/// `[ha]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaConfig {
    /// Seconds the leader's lease lasts after each renewal; it renews every third of it. A
    /// replica takes over a lost leader within this plus one poll interval.
    pub lease_secs: u64,
    /// This replica's name in the lease (default `<hostname>:<pid>:<random>`). A name that survives a
    /// restart (a Kubernetes pod name, `${HOSTNAME}` of a container) lets a restarted replica
    /// take its own lease back at once instead of waiting for it to expire; two processes
    /// running at the same time must never share one.
    pub replica: Option<String>,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            lease_secs: 15,
            replica: None,
        }
    }
}

impl HaConfig {
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_secs)
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if let Some(name) = &self.replica
            && (name.trim().is_empty() || name.len() > 200)
        {
            problems.push("ha.replica: give a non-empty name of at most 200 characters".to_owned());
        }
        if !(3..=600).contains(&self.lease_secs) {
            problems.push(format!(
                "ha.lease_secs: {} is out of range (3 to 600)",
                self.lease_secs
            ));
        }
    }
}
