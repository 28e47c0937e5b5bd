//! `[store]`: where the state lives (a SQLite file, or a PostgreSQL server shared by several
//! replicas) and how long its history is kept.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::Location;
use crate::util::secret::Secret;

/// The SQLite file when `[store]` names none.
const DEFAULT_PATH: &str = "codearts-bot.db";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The SQLite file; created with its folder when missing. The default store.
    pub path: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://user:${PGPASSWORD}@host:5432/db`, TLS with `sslmode`):
    /// the store of several replicas (docs/ha.md). A secret: it usually holds a password.
    pub url: Option<Secret>,
    /// Snapshot history and finished deliveries older than this are pruned.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            url: None,
            retention_days: 30,
        }
    }
}

impl StoreConfig {
    /// Where the store is: the PostgreSQL URL when set, else the SQLite file.
    pub fn location(&self) -> Location {
        match &self.url {
            Some(url) => Location::Postgres(url.clone()),
            None => Location::Sqlite(
                self.path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH)),
            ),
        }
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.retention_days == 0 {
            problems.push("store.retention_days: must be at least 1".to_owned());
        }
        if self.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            problems.push("store.path: is empty".to_owned());
        }
        if let Some(url) = &self.url {
            if self.path.is_some() {
                problems.push(
                    "store: set either path (a SQLite file) or url (PostgreSQL), not both"
                        .to_owned(),
                );
            }
            let url = url.expose();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // The value may hold a password: name the key, never echo it.
                problems.push(
                    "store.url: must be a PostgreSQL URL, postgres://user:${PGPASSWORD}@host:5432/db"
                        .to_owned(),
                );
            }
        }
    }
}
