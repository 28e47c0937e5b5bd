//! The database handle and what every aggregate of the store shares: opening the SQLite file
//! and applying migrations, the `BEGIN IMMEDIATE` write transaction, the error type, and the
//! helpers that turn stored columns (milliseconds, JSON, integers) back into domain values.
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, so a writer takes the lock up front instead of
//! failing half-way. This file imports no aggregate file: they all build on it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::codearts::JobInfo;

/// A store failure. The message names the file or the row, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("corrupt row in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Applies the migrations. Replicas starting together on one database race for them: each
/// migration is its own transaction, so the loser's fails whole ("table already exists") and
/// a second look finds it applied. A migration that fails for any other reason fails the same
/// way every time, and is reported after the last attempt.
async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut attempt = 0;
    loop {
        match sqlx::migrate!("./migrations").run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::info!(error = %e, attempt, "migrations raced another process; looking again");
                tokio::time::sleep(Duration::from_millis(100 + 50 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A write transaction, as [`Store::write`] opens it.
pub(super) type Tx = Transaction<'static, Sqlite>;

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Shared with the aggregate files of `store`, which hold the queries.
    pub(super) pool: SqlitePool,
}

impl Store {
    /// Opens (creating when missing) the SQLite file, in WAL mode, and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Open {
                path: shown.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| Error::Open {
                path: shown.clone(),
                source: e,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Lets retention give pages back without a blocking VACUUM (applies to new files).
            .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| Error::Open {
                path: shown,
                source: e,
            })?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Answers when the database can be read.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so two
    /// writers queue on the busy timeout instead of one failing at its first write.
    pub(super) async fn write(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// The error for a stored value that cannot be read back.
pub(super) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

/// A job's answer as stored (JSON text).
pub(super) fn to_json(info: &JobInfo) -> String {
    // Serialising a plain struct of strings, numbers and booleans cannot fail.
    serde_json::to_string(info).unwrap_or_else(|_| "{}".to_owned())
}

/// Reads back a JSON column written by [`to_json`]; unreadable JSON is a corrupt row of `table`.
pub(super) fn from_json(table: &'static str, raw: Option<String>) -> Result<Option<JobInfo>> {
    raw.map(|r| serde_json::from_str(&r).map_err(|e| corrupt(table, e)))
        .transpose()
}

/// A stored attempt count; a value that does not fit reads as "tried very often".
pub(super) fn attempts(raw: i64) -> u32 {
    raw.try_into().unwrap_or(u32::MAX)
}

/// A stored small counter (missing polls, failed builds, failed cycles); a negative or
/// oversized value reads as 0.
pub(super) fn counter(raw: i64) -> u32 {
    raw.try_into().unwrap_or(0)
}

/// A SQL `COUNT(*)`, which is never negative.
pub(super) fn count(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Reads back a time written by [`to_ms`]; an out-of-range value reads as the epoch.
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// A delivery's stable id, sent to receivers so they can drop a re-sent message.
pub(super) fn new_delivery_id() -> String {
    format!("dlv_{}", uuid::Uuid::new_v4().simple())
}
