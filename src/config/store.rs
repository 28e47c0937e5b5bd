//! `[store]`: the SQLite file and how long its history is kept.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file; created with its folder when missing.
    pub path: PathBuf,
    /// Snapshot history and finished deliveries older than this are pruned.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("codearts-bot.db"),
            retention_days: 30,
        }
    }
}

impl StoreConfig {
    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.retention_days == 0 {
            problems.push("store.retention_days: must be at least 1".to_owned());
        }
        if self.path.as_os_str().is_empty() {
            problems.push("store.path: is empty".to_owned());
        }
    }
}
