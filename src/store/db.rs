//! The database handle and what every aggregate of the store shares: opening the database
//! (a SQLite file, or a PostgreSQL server for several replicas) and applying its migrations,
//! the write transaction, the error type, and the helpers that turn stored columns
//! (milliseconds, JSON, integers) back into domain values.
//!
//! Both backends go through sqlx's `Any` driver, so every query is written once. Where the
//! dialects differ (JSON functions, the clock, upsert details), [`sql!`] picks the backend's
//! spelling at compile time: each query stays a static string. docs/postgres.md lists the
//! differences and why each spelling was chosen.
//!
//! Writes are serialised on both backends: SQLite's `BEGIN IMMEDIATE` takes the write lock up
//! front, and on PostgreSQL a write transaction first takes one transaction-scoped advisory
//! lock. The aggregates were written for one writer at a time (a delivery's `seq` is
//! `MAX(seq) + 1`, an incident is opened after a look for an open one), and keeping that model
//! on PostgreSQL costs little: the leader does almost all the writing. This file imports no
//! aggregate file: they all build on it.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

use crate::codearts::JobInfo;
use crate::util::secret::Secret;

/// A store failure. The message names the file or the server, never a secret.
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
    #[error(
        "this replica's term (token {token}) no longer holds the leader's lease: it writes nothing until it leads again"
    )]
    Fenced { token: i64 },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file, created with its folder when missing: one machine.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:password@host:5432/db?sslmode=require`): several
    /// replicas. A secret, since it usually holds the password.
    Postgres(Secret),
}

impl Location {
    /// The location as logs and errors may show it: a PostgreSQL URL without its user and
    /// password (and without its query, which may hold `password=`).
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_url(url.expose()),
        }
    }
}

/// `postgres://user:pw@host:5432/db?x=y` as `postgres://host:5432/db`.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let host_and_db = rest.rsplit_once('@').map_or(rest, |(_, tail)| tail);
    format!("{scheme}://{host_and_db}")
}

/// Which SQL the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One static SQL string per dialect, from shared text, `{ "sqlite" | "postgres" }`
/// alternatives and `[fragment]` macros (`fragment!(sqlite)` / `fragment!(postgres)`):
/// `sql!(self.dialect; "SELECT ", { "json_each($1)" | "json_array_elements_text($1::json)" })`.
macro_rules! sql {
    ($dialect:expr; $($part:tt),+ $(,)?) => {
        match $dialect {
            $crate::store::db::Dialect::Sqlite => concat!($($crate::store::db::sql!(@sqlite $part)),+),
            $crate::store::db::Dialect::Postgres => concat!($($crate::store::db::sql!(@postgres $part)),+),
        }
    };
    (@sqlite { $a:literal | $b:literal }) => { $a };
    (@postgres { $a:literal | $b:literal }) => { $b };
    (@sqlite [ $m:ident ]) => { $m!(sqlite) };
    (@postgres [ $m:ident ]) => { $m!(postgres) };
    (@sqlite $a:literal) => { $a };
    (@postgres $a:literal) => { $a };
}
pub(crate) use sql;

/// The database's clock in milliseconds, as SQL (for `[db_now_ms]` in [`sql!`]): every SQLite
/// version has `julianday`; on PostgreSQL `clock_timestamp()`, the time of the statement
/// (`now()` would be the start of the transaction).
macro_rules! db_now_ms {
    (sqlite) => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
    (postgres) => {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    };
}
pub(crate) use db_now_ms;

/// The advisory lock a PostgreSQL write transaction holds (any constant; ASCII "cabt").
const WRITE_LOCK: i64 = 0x6361_6274;

/// Applies the migrations of the store's dialect. Replicas starting together on one SQLite
/// file race for them: each migration is its own transaction, so the loser's fails whole
/// ("table already exists") and a second look finds it applied. (PostgreSQL's migrator holds
/// an advisory lock instead.) A migration that fails for any other reason fails the same way
/// every time, and is reported after the last attempt.
async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<()> {
    let mut attempt = 0;
    loop {
        let applied = match dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations").run(pool).await,
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres").run(pool).await,
        };
        match applied {
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
pub(super) type Tx = Transaction<'static, Any>;

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Shared with the aggregate files of `store`, which hold the queries.
    pub(super) pool: AnyPool,
    pub(super) dialect: Dialect,
    /// A leader's term: every write transaction of this handle first checks that the term
    /// still holds the lease ([`Store::fenced`]).
    fence: Option<i64>,
}

/// SQLite settings every connection applies: WAL, so readers never wait for the writer;
/// `NORMAL` sync, which in WAL mode loses no committed transaction on a process crash;
/// foreign keys; incremental auto-vacuum, so retention gives pages back without a blocking
/// `VACUUM` (takes effect on a new file); and a busy timeout, so writers queue instead of fail.
const SQLITE_PRAGMAS: &str = "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;";

impl Store {
    /// Opens (creating when missing) the SQLite file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::connect(&Location::Sqlite(path.to_owned())).await
    }

    /// Opens the store at `location` and applies its migrations.
    pub async fn connect(location: &Location) -> Result<Self> {
        Self::connect_with(location, None).await
    }

    /// [`Store::connect`] with at most `connections` pooled connections (tests use 1, so
    /// SQLite's per-connection counters see every statement).
    pub(crate) async fn connect_with(
        location: &Location,
        connections: Option<u32>,
    ) -> Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let shown = location.shown();
        let open_error = |source| Error::Open {
            path: shown.clone(),
            source,
        };
        let (url, dialect) = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| open_error(sqlx::Error::Io(e)))?;
                }
                (sqlite_url(path), Dialect::Sqlite)
            }
            Location::Postgres(url) => (url.expose().to_owned(), Dialect::Postgres),
        };
        let options: AnyConnectOptions = url.parse().map_err(open_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(connections.unwrap_or(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 8,
            }))
            // A database that does not answer fails a query in seconds (and `/readyz` says
            // why) instead of holding it for sqlx's default of 30 s.
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_error)?;
        migrate(&pool, dialect).await?;
        Ok(Self {
            pool,
            dialect,
            fence: None,
        })
    }

    /// This store for the services of a leader's term `token`: each write transaction checks,
    /// under the write lock and on the database's clock, that the term still holds the
    /// `leader` lease, and fails with [`Error::Fenced`] otherwise. A cycle that outlived its
    /// term (stuck on a database that went away, or a process paused past its lease) so
    /// writes nothing on stale snapshots; a lease is only granted under the same lock
    /// ([`Store::take_lease`]), so a new term starts strictly before or after such a write.
    pub fn fenced(&self, token: i64) -> Self {
        Self {
            fence: Some(token),
            ..self.clone()
        }
    }

    /// Which backend this store is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Answers when the database can be read.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (on SQLite, checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a write transaction that holds the store's write lock from its first statement,
    /// so two writers queue instead of one failing (or interleaving) half-way; on a
    /// [`Store::fenced`] handle, only while its term holds the lease.
    pub(super) async fn write(&self) -> Result<Tx> {
        let mut tx = self.lock_writes().await?;
        if let Some(token) = self.fence {
            let holds: Option<i64> = sqlx::query_scalar(sql!(self.dialect;
                "SELECT token FROM leases WHERE name = 'leader' AND token = $1 AND expires_at > ",
                [db_now_ms]))
            .bind(token)
            .fetch_optional(&mut *tx)
            .await?;
            if holds.is_none() {
                tx.rollback().await?;
                return Err(Error::Fenced { token });
            }
        }
        Ok(tx)
    }

    /// A transaction holding the write lock, whatever the lease says (taking the lease itself).
    pub(super) async fn lock_writes(&self) -> Result<Tx> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }
}

/// The sqlx URL of a SQLite file, created when missing: `sqlite:` and the path, every byte
/// but the plainest percent-encoded, so `?`, `#`, `%` and spaces stay part of the name (and a
/// relative path stays relative: no `//`, which would make its first folder a host name).
fn sqlite_url(path: &Path) -> String {
    let mut url = String::from("sqlite:");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url.push_str("?mode=rwc");
    url
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
