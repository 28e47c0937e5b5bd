//! Copying a whole store from a SQLite file into an empty PostgreSQL database: what
//! `codearts-bot store migrate` does when a single-machine deployment moves to PostgreSQL
//! (docs/postgres.md).
//!
//! Both stores are opened with [`Store::connect`] first, so both carry this version's schema
//! (an older SQLite file is brought up to date). The copy refuses a target whose applied
//! migrations differ from the source's, or that holds any row in a table it copies: it never
//! merges into, or overwrites, another deployment's data. It then reads each table of
//! [`TABLES`] in foreign-key order from one read transaction of the source (one consistent
//! state), and writes it in chunks of [`CHUNK`] rows inside **one** transaction of the
//! target, so a failure anywhere leaves the target as empty as it was. Ids are kept as they
//! are; each identity column's sequence is then set past the highest id SQLite ever gave (its
//! `sqlite_sequence`, which may be above the highest id still stored), so the next insert
//! neither collides nor reuses an id. Each table's rows are counted on both sides before the
//! commit. Leases are not copied: a lease is a live term of a running replica.
//!
//! Rows are read generically from the constant column lists below, each column with its kind
//! (SQLite and PostgreSQL tables have the same columns: the migrations are twins), and
//! written as one multi-row `VALUES` per chunk with a bound parameter per value: for 100,000
//! history rows that measured faster than one JSON array per chunk unpacked by PostgreSQL's
//! `json_populate_recordset` (see [`insert_chunk`]). Every SQL string here is built from
//! these constants only, never from input.

use futures_util::TryStreamExt;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::db::{Dialect, Error, Store, Tx, corrupt, count};

/// Rows per INSERT.
const CHUNK: usize = 1_000;

/// How a column's values are read and written. Every column of the store is one of these
/// (times are Unix milliseconds, JSON is text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `INTEGER` in SQLite, `BIGINT` in PostgreSQL.
    Int,
    Text,
}

use Kind::{Int, Text};

/// A table the copy moves, as the migrations define it.
struct Table {
    name: &'static str,
    /// Every column, in the migrations' order.
    columns: &'static [(&'static str, Kind)],
    /// The order rows are read and written in: the primary key.
    key: &'static str,
    /// Whether `id` is an identity column (AUTOINCREMENT in SQLite), whose sequence must
    /// continue past the copied ids.
    identity: bool,
}

/// Every table but `leases`, parents before the tables that refer to them (`events` before
/// `deliveries`, `incidents` before `incident_messages`).
const TABLES: &[Table] = &[
    Table {
        name: "watched_jobs",
        columns: &[
            ("job_id", Text),
            ("source", Text),
            ("channels", Text),
            ("added_at", Int),
        ],
        key: "job_id",
        identity: false,
    },
    Table {
        name: "job_state",
        columns: &[
            ("job_id", Text),
            ("info", Text),
            ("presence", Text),
            ("settled_status", Text),
            ("observed_at", Int),
            ("missing_polls", Int),
            ("outcomes", Text),
        ],
        key: "job_id",
        identity: false,
    },
    Table {
        name: "snapshot_history",
        columns: &[
            ("id", Int),
            ("job_id", Text),
            ("observed_at", Int),
            ("presence", Text),
            ("info", Text),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("job_id", Text),
            ("kind", Text),
            ("job_name", Text),
            ("detected_at", Int),
            ("previous", Text),
            ("current", Text),
            ("summary", Text),
            ("suppressed", Text),
            ("incident_id", Int),
            ("context_kind", Text),
            ("context_key", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "deliveries",
        columns: &[
            ("id", Text),
            ("seq", Int),
            ("event_id", Int),
            ("channel", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("last_error", Text),
            ("created_at", Int),
            ("sent_at", Int),
            ("purpose", Text),
            ("claimed_token", Int),
        ],
        key: "seq",
        identity: false,
    },
    Table {
        name: "incidents",
        columns: &[
            ("id", Int),
            ("job_id", Text),
            ("job_name", Text),
            ("opened_at", Int),
            ("closed_at", Int),
            ("failed_builds", Int),
            ("last_status", Text),
            ("updated_at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "incident_messages",
        columns: &[
            ("incident_id", Int),
            ("channel", Text),
            ("message_id", Text),
            ("noticed_at", Int),
        ],
        key: "incident_id, channel",
        identity: false,
    },
    Table {
        name: "silences",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("scope", Text),
            ("target", Text),
            ("created_by", Text),
            ("reason", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("ended_at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "source_state",
        columns: &[
            ("id", Int),
            ("failed_cycles", Int),
            ("blind_since", Int),
            ("alerted", Int),
            ("cause", Text),
        ],
        key: "id",
        identity: false,
    },
    Table {
        name: "contexts",
        columns: &[
            ("job_id", Text),
            ("kind", Text),
            ("key", Int),
            ("state", Text),
            ("build_no", Int),
            ("context", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: "job_id, kind, key",
        identity: false,
    },
    Table {
        name: "actions",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("job_id", Text),
            ("build_no", Int),
            ("once_key", Text),
            ("who", Text),
            ("shown_as", Text),
            ("platform", Text),
            ("channel", Text),
            ("state", Text),
            ("new_build", Int),
            ("answer", Text),
            ("request_id", Text),
            ("created_at", Int),
            ("finished_at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "buttons",
        columns: &[
            ("id", Text),
            ("action", Text),
            ("job_id", Text),
            ("channel", Text),
            ("card", Text),
            ("for_user", Text),
            ("origin", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        key: "id",
        identity: false,
    },
    Table {
        name: "digests",
        columns: &[
            ("channel", Text),
            ("instant", Int),
            ("outcome", Text),
            ("updated_at", Int),
        ],
        key: "channel",
        identity: false,
    },
    Table {
        name: "flaky_digests",
        columns: &[("channel", Text), ("sent_at", Int)],
        key: "channel",
        identity: false,
    },
];

/// One table's outcome: how many rows were copied (and counted on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub rows: u64,
}

/// Why the copy did not happen. Nothing was written to the target in any case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the copy goes from a SQLite file into a PostgreSQL database, not from {from:?} into {to:?}"
    )]
    Backends { from: Dialect, to: Dialect },
    #[error(
        "the databases are at different schema versions (migrations applied only to the SQLite \
         file: {only_source}; only to the PostgreSQL database: {only_target}): use the same \
         version of codearts-bot on both"
    )]
    Versions {
        only_source: String,
        only_target: String,
    },
    #[error(
        "the target database is not empty: table {table} holds rows. Nothing was copied; point \
         the copy at an empty database (CREATE DATABASE ... OWNER ...)"
    )]
    NotEmpty { table: &'static str },
    #[error(
        "a bot is still running on the SQLite file ({holder} holds its leader's lease for \
         another {left_s} s): stop it first, so that nothing it alerts after the copy is lost"
    )]
    Running { holder: String, left_s: i64 },
    #[error(
        "{table}: the SQLite file counts {expected} rows, {read} were read and the PostgreSQL \
         database counts {written}; nothing was copied"
    )]
    Count {
        table: &'static str,
        expected: u64,
        read: u64,
        written: u64,
    },
    #[error("{0}")]
    Store(#[from] Error),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Error::Sql(e))
    }
}

impl CopyError {
    /// Whether the copy was refused as asked (wrong databases), rather than failed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Backends { .. }
                | Self::Versions { .. }
                | Self::NotEmpty { .. }
                | Self::Running { .. }
        )
    }
}

impl Store {
    /// Copies every table but `leases` from this store (a SQLite file) into `target` (an
    /// empty PostgreSQL database), in one transaction of the target; returns each table's row
    /// count, in the order copied. See the module's documentation.
    pub async fn copy_into(&self, target: &Store) -> Result<Vec<CopiedTable>, CopyError> {
        if (self.dialect, target.dialect) != (Dialect::Sqlite, Dialect::Postgres) {
            return Err(CopyError::Backends {
                from: self.dialect,
                to: target.dialect,
            });
        }
        same_migrations(self, target).await?;
        // `run` holds the lease while it runs (and gives it up when it stops cleanly).
        if let Some(lease) = self.lease_holder(super::LEADER_LEASE).await?
            && lease.left_ms > 0
        {
            return Err(CopyError::Running {
                holder: lease.holder,
                left_s: (lease.left_ms + 999) / 1000,
            });
        }
        // The write lock: a bot started on the target by mistake waits instead of interleaving.
        let mut to = target.write().await?;
        if let Some(table) = first_non_empty(&mut to).await? {
            return Err(CopyError::NotEmpty { table });
        }
        // One read transaction: every table as of the same moment.
        let mut from = self.pool.begin().await?;
        let mut copied = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let read = copy_table(table, &mut from, &mut to).await?;
            let expected = count_rows(table, &mut from).await?;
            let written = count_rows(table, &mut to).await?;
            if read != expected || written != expected {
                return Err(CopyError::Count {
                    table: table.name,
                    expected,
                    read,
                    written,
                });
            }
            if table.identity {
                continue_sequence(table, &mut from, &mut to).await?;
            }
            tracing::debug!(
                table = table.name,
                rows = read,
                "copied (committed with the rest)"
            );
            copied.push(CopiedTable {
                table: table.name,
                rows: read,
            });
        }
        to.commit().await?;
        from.rollback().await?;
        Ok(copied)
    }
}

/// Refuses stores whose applied migrations differ.
async fn same_migrations(from: &Store, to: &Store) -> Result<(), CopyError> {
    let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
    let source: Vec<i64> = sqlx::query_scalar(sql).fetch_all(&from.pool).await?;
    let target: Vec<i64> = sqlx::query_scalar(sql).fetch_all(&to.pool).await?;
    if source == target {
        return Ok(());
    }
    let only = |a: &[i64], b: &[i64]| {
        let list: Vec<String> = a
            .iter()
            .filter(|v| !b.contains(v))
            .map(i64::to_string)
            .collect();
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    };
    Err(CopyError::Versions {
        only_source: only(&source, &target),
        only_target: only(&target, &source),
    })
}

/// The first copied table that holds a row, in copy order.
async fn first_non_empty(to: &mut Tx) -> sqlx::Result<Option<&'static str>> {
    for table in TABLES {
        let sql = format!("SELECT 1 FROM {} LIMIT 1", table.name);
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&mut **to)
            .await?;
        if found.is_some() {
            return Ok(Some(table.name));
        }
    }
    Ok(None)
}

async fn count_rows(table: &Table, conn: &mut Tx) -> sqlx::Result<u64> {
    let sql = format!("SELECT COUNT(*) FROM {}", table.name);
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut **conn)
        .await?;
    Ok(count(n))
}

/// The table's column names, comma-separated.
fn column_list(table: &Table) -> String {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// Streams the table's rows from `from` and inserts them into `to` in chunks; returns how
/// many rows were copied.
async fn copy_table(table: &Table, from: &mut Tx, to: &mut Tx) -> Result<u64, CopyError> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        column_list(table),
        table.name,
        table.key
    );
    let full = insert_sql(table, CHUNK);
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut **from);
    let mut chunk: Vec<Vec<Value>> = Vec::with_capacity(CHUNK);
    let mut copied = 0u64;
    while let Some(row) = rows.try_next().await? {
        chunk.push(read_row(table, &row)?);
        if chunk.len() == CHUNK {
            insert_chunk(&full, &chunk, to).await?;
            copied += CHUNK as u64;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        insert_chunk(&insert_sql(table, chunk.len()), &chunk, to).await?;
        copied += chunk.len() as u64;
    }
    Ok(copied)
}

/// One stored value, as its column's kind reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

/// A row's values in the table's column order; a value of another kind than its column's
/// (SQLite stores what it is given) is a corrupt row naming the table and column.
fn read_row(table: &Table, row: &AnyRow) -> Result<Vec<Value>, CopyError> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind))| {
            let value = match kind {
                Int => row.try_get(i).map(Value::Int),
                Text => row.try_get(i).map(Value::Text),
            };
            value.map_err(|e| CopyError::Store(corrupt(table.name, format!("column {name}: {e}"))))
        })
        .collect()
}

/// The INSERT of `rows` rows: one multi-row `VALUES`, a parameter per value (at most
/// [`CHUNK`] × 15 columns, well under PostgreSQL's 65,535 parameters).
fn insert_sql(table: &Table, rows: usize) -> String {
    let width = table.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        table.name,
        column_list(table)
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", row * width + column + 1));
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` with `insert` (from [`insert_sql`] for as many rows). Measured against one
/// JSON array per chunk unpacked by `json_populate_recordset` (100,000 `snapshot_history` rows
/// of 600-byte snapshots, 1,000 rows per statement, PostgreSQL 15 on loopback, release build,
/// 2 cores): 1.8-2.5 s against 2.9-3.5 s over six rounds; the whole copy of those rows took
/// 4.2 s. The `copy_speed` test measures both.
async fn insert_chunk(insert: &str, rows: &[Vec<Value>], to: &mut Tx) -> sqlx::Result<()> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
    for value in rows.iter().flatten() {
        query = match value {
            Value::Int(v) => query.bind(*v),
            Value::Text(v) => query.bind(v.as_deref()),
        };
    }
    query.execute(&mut **to).await?;
    Ok(())
}

/// Sets the table's identity sequence so the next id is past every id SQLite gave: the
/// highest copied id, or SQLite's own counter when rows with higher ids were deleted.
async fn continue_sequence(table: &Table, from: &mut Tx, to: &mut Tx) -> sqlx::Result<()> {
    let given: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
        .bind(table.name)
        .fetch_optional(&mut **from)
        .await?;
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence('{name}', 'id'), \
           GREATEST(COALESCE(MAX(id), 0), $1) + 1, false) FROM {name}",
        name = table.name
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(given.unwrap_or(0))
        .execute(&mut **to)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use chrono::Utc;

    use super::*;
    use crate::domain::event::{Event, EventKind};
    use crate::domain::silence::{Kind as SilenceKind, Scope};
    use crate::store::Location;
    use crate::store::scratch::ScratchDb;

    /// The tables of the schema that are deliberately not copied.
    const NOT_COPIED: &[&str] = &["leases"];

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let store = Store::connect(&Location::Sqlite(dir.path().join("bot.db")))
            .await
            .expect("open SQLite");
        (dir, store)
    }

    /// A store on a new scratch PostgreSQL database, or `None` (skipped) without a server.
    async fn postgres(test: &str) -> Option<(ScratchDb, Store)> {
        let server = ScratchDb::server_or_skip(test)?;
        let db = ScratchDb::create(&server).await.expect("scratch database");
        let store = Store::connect(&db.location())
            .await
            .expect("open PostgreSQL");
        Some((db, store))
    }

    async fn exec(store: &Store, sql: &'static str) {
        sqlx::query(sql)
            .execute(&store.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Every row of `table`, in key order, as the copy reads it.
    async fn rows(store: &Store, table: &Table) -> Vec<Vec<Value>> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            column_list(table),
            table.name,
            table.key
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&store.pool)
            .await
            .expect("rows");
        rows.iter()
            .map(|row| read_row(table, row).expect("readable"))
            .collect()
    }

    fn table(name: &str) -> &'static Table {
        TABLES
            .iter()
            .find(|t| t.name == name)
            .expect("a copied table")
    }

    /// At least one row in every copied table, with NULLs, awkward text and extreme numbers;
    /// enough history, events and deliveries to cross chunk boundaries; and a deleted newest
    /// silence, so SQLite's id counter is above the highest id stored.
    async fn fill(store: &Store) {
        for sql in [
            "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES
               ('job-a', 'config', NULL, 1), ('job-b', 'chat', '[\"ops\",\"team\"]', -5)",
            "INSERT INTO job_state (job_id, info, presence, settled_status, observed_at,
                                    missing_polls, outcomes) VALUES
               ('job-a', '{\"job_name\":\"web \\\"front\\\"\",\"n\":1}', 'visible', 'failed', 10, 0, 'FSF'),
               ('job-b', NULL, 'missing', NULL, 11, 2, '')",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
             INSERT INTO snapshot_history (job_id, observed_at, presence, info)
             SELECT 'job-a', i, 'visible', CASE WHEN i % 7 = 0 THEN NULL
               ELSE json_object('i', i, 'text', 'línea ' || i || char(10) || '''ok'' \\ 🚀') END FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
             INSERT INTO events (job_id, kind, job_name, detected_at, previous, current, summary,
                                 suppressed, incident_id, context_kind, context_key)
             SELECT 'job-a', 'build_failed', 'web', i, NULL, '{}', 'failed #' || i,
                    CASE WHEN i % 2 = 0 THEN 'silence 1 by alice' END, 1, 'build', i FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
             INSERT INTO deliveries (id, seq, event_id, channel, status, attempts,
                                     next_attempt_at, last_error, created_at, sent_at, purpose)
             SELECT 'dlv_' || i, i, i, 'ops', CASE WHEN i < 1500 THEN 'sent' ELSE 'pending' END,
                    i % 3, i, CASE WHEN i % 3 = 1 THEN 'HTTP 503' END, i, i, 'post' FROM n",
            "INSERT INTO incidents (job_id, job_name, opened_at, closed_at, failed_builds,
                                    last_status, updated_at) VALUES
               ('job-a', 'web', 1, NULL, 3, 'failed', 2), ('job-b', 'api', 1, 5, 1, NULL, 5)",
            "INSERT INTO incident_messages (incident_id, channel, message_id, noticed_at) VALUES
               (1, 'ops', '1234567890', 3), (1, 'team', NULL, 4)",
            "INSERT INTO silences (kind, scope, target, created_by, reason, created_at,
                                   expires_at, ended_at) VALUES
               ('mute', 'job', 'job-a', 'cli:alice', 'deploy', 1, 9223372036854775807, NULL),
               ('ack', 'all', '*', 'discord:1', '', 1, 2, 2),
               ('mute', 'project', 'p1', 'cli:bob', 'gone', 1, 2, NULL)",
            "DELETE FROM silences WHERE id = 3",
            "INSERT INTO source_state (id, failed_cycles, blind_since, alerted, cause)
               VALUES (1, 4, 1000, 1, 'timeout: 12')",
            "INSERT INTO contexts (job_id, kind, key, state, build_no, context, created_at,
                                   updated_at) VALUES
               ('job-a', 'build', 1700000000000, 'done', 42, '{\"stage\":\"test\"}', 1, 2),
               ('job-a', 'why', 5, 'pending', NULL, NULL, 1, 1)",
            "INSERT INTO actions (kind, job_id, build_no, once_key, who, shown_as, platform,
                                  channel, state, new_build, answer, request_id, created_at,
                                  finished_at) VALUES
               ('rerun', 'job-a', 42, 'rerun:job-a:42', 'discord:1', '@alice', 'discord', 'ops',
                'done', 43, 'ok', 'req-1', 1, 2),
               ('stop', 'job-a', -9223372036854775808, NULL, 'cli', 'cli', 'cli', NULL,
                'started', NULL, NULL, NULL, 3, NULL)",
            "INSERT INTO buttons (id, action, job_id, channel, card, for_user, origin, created_at,
                                  expires_at) VALUES
               ('00ff', 'rerun', 'job-a', 'ops', 'dlv_1', NULL, NULL, 1, 2),
               ('01ff', 'confirm_rerun', 'job-a', NULL, NULL, 'discord:1', '{\"m\":1}', 1, 2)",
            "INSERT INTO digests (channel, instant, outcome, updated_at) VALUES ('ops', 1, 'green', 2)",
            "INSERT INTO flaky_digests (channel, sent_at) VALUES ('ops', 1)",
            "INSERT INTO leases (name, holder, token, expires_at) VALUES ('leader', 'h:1:x', 7, 1)",
        ] {
            exec(store, sql).await;
        }
    }

    #[tokio::test]
    async fn the_table_list_is_the_whole_schema_on_both_backends() {
        let expected: BTreeSet<&str> = TABLES
            .iter()
            .map(|t| t.name)
            .chain(NOT_COPIED.iter().copied())
            .collect();
        let (_dir, store) = sqlite().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations'",
        )
        .fetch_all(&store.pool)
        .await
        .expect("tables");
        assert_eq!(
            tables.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            expected
        );
        for table in TABLES {
            let columns: Vec<(String, String)> =
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table.name)
                    .fetch_all(&store.pool)
                    .await
                    .expect("columns");
            let kinds: Vec<(&str, Kind)> = columns
                .iter()
                .map(|(name, ty)| (name.as_str(), if ty == "TEXT" { Text } else { Int }))
                .collect();
            assert_eq!(kinds, table.columns, "{} in SQLite", table.name);
            assert!(
                columns
                    .iter()
                    .all(|(_, ty)| ty == "TEXT" || ty == "INTEGER")
            );
        }

        let Some((_db, pg)) = postgres("copy: the table list is the whole schema").await else {
            return;
        };
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name != '_sqlx_migrations'",
        )
        .fetch_all(&pg.pool)
        .await
        .expect("tables");
        assert_eq!(
            tables.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            expected
        );
        for table in TABLES {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table.name)
            .fetch_all(&pg.pool)
            .await
            .expect("columns");
            let kinds: Vec<(&str, Kind)> = columns
                .iter()
                .map(|(name, ty)| (name.as_str(), if ty == "text" { Text } else { Int }))
                .collect();
            assert_eq!(kinds, table.columns, "{} in PostgreSQL", table.name);
            assert!(columns.iter().all(|(_, ty)| ty == "text" || ty == "bigint"));
            let identity: Option<String> = sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1 AND is_identity = 'YES'",
            )
            .bind(table.name)
            .fetch_optional(&pg.pool)
            .await
            .expect("identity");
            assert_eq!(identity.is_some(), table.identity, "{}", table.name);
        }
    }

    #[tokio::test]
    async fn every_row_is_copied_as_it_is_and_new_ids_continue_past_sqlites() {
        let (_dir, source) = sqlite().await;
        fill(&source).await;
        let Some((_db, target)) = postgres("copy: every row is copied").await else {
            return;
        };
        let copied = source.copy_into(&target).await.expect("copied");

        let names: Vec<&str> = copied.iter().map(|c| c.table).collect();
        let order: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        assert_eq!(names, order, "every table but leases, in foreign-key order");
        for c in &copied {
            let t = table(c.table);
            let (from, to) = (rows(&source, t).await, rows(&target, t).await);
            assert_eq!(c.rows, from.len() as u64, "{}", c.table);
            assert!(!from.is_empty(), "{} has rows to copy", c.table);
            assert_eq!(to, from, "{} is the same on both sides", c.table);
        }
        let by_name = |name: &str| copied.iter().find(|c| c.table == name).unwrap().rows;
        assert_eq!(by_name("snapshot_history"), 2_500);
        assert_eq!(by_name("deliveries"), 1_500);
        let leases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases")
            .fetch_one(&target.pool)
            .await
            .unwrap();
        assert_eq!(leases, 0, "a lease is a live term: not copied");

        // Each identity continues past SQLite's counter (silence 3 was deleted: 4 is next).
        for (name, next) in [
            ("snapshot_history", 2_501),
            ("events", 1_501),
            ("incidents", 3),
            ("silences", 4),
            ("actions", 3),
        ] {
            let sql = format!("SELECT nextval(pg_get_serial_sequence('{name}', 'id'))");
            let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&target.pool)
                .await
                .unwrap();
            assert_eq!(id, next, "{name}");
        }
        // And the store's own inserts go on without a collision.
        let now = Utc::now();
        let silence = target
            .add_silence(SilenceKind::Mute, &Scope::All, "cli:carol", "", now, now)
            .await
            .expect("a new silence");
        assert_eq!(silence.id, 5);
        let event = Event {
            kind: EventKind::BuildFailed,
            job_id: "job-b".to_owned(),
            job_name: "api".to_owned(),
            detected_at: now,
            previous: None,
            current: None,
            summary: "failed".to_owned(),
        };
        let recorded = target
            .record_event(&event, &["ops".to_owned()])
            .await
            .expect("a new event and delivery");
        assert_eq!((recorded.events, recorded.deliveries), (1, 1));
        let seq: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM deliveries")
            .fetch_one(&target.pool)
            .await
            .unwrap();
        assert_eq!(seq, 1_501);
    }

    #[tokio::test]
    async fn a_target_with_any_row_is_refused_and_left_as_it_was() {
        let (_dir, source) = sqlite().await;
        fill(&source).await;
        let Some((_db, target)) = postgres("copy: a non-empty target is refused").await else {
            return;
        };
        // Another deployment's one row, in the last table copied.
        exec(
            &target,
            "INSERT INTO flaky_digests (channel, sent_at) VALUES ('elsewhere', 1)",
        )
        .await;
        let err = source.copy_into(&target).await.unwrap_err();
        assert!(
            matches!(
                err,
                CopyError::NotEmpty {
                    table: "flaky_digests"
                }
            ),
            "{err}"
        );
        assert!(err.is_refusal());
        assert!(
            err.to_string().contains("table flaky_digests holds rows"),
            "{err}"
        );
        let mut conn = target.write().await.unwrap();
        assert_eq!(
            first_non_empty(&mut conn).await.unwrap(),
            Some("flaky_digests")
        );
        drop(conn);
        let t = table("flaky_digests");
        assert_eq!(rows(&target, t).await.len(), 1, "the target is untouched");

        // A second copy into a database that took one is refused on its first table.
        let Some((_db2, target)) = postgres("copy: a non-empty target is refused").await else {
            return;
        };
        source.copy_into(&target).await.expect("the first copy");
        let err = source.copy_into(&target).await.unwrap_err();
        assert!(
            matches!(
                err,
                CopyError::NotEmpty {
                    table: "watched_jobs"
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failure_half_way_leaves_the_target_empty() {
        // A value PostgreSQL refuses (text with a NUL), and a value of the wrong kind (SQLite
        // keeps text in an INTEGER column): both in the last tables, after the others were
        // written in the transaction.
        for (bad, says) in [
            (
                "INSERT INTO digests (channel, instant, outcome, updated_at)
                 VALUES ('team', 1, 'gre' || char(0) || 'en', 2)",
                "database error",
            ),
            (
                "INSERT INTO flaky_digests (channel, sent_at) VALUES ('team', 'yesterday')",
                "corrupt row in flaky_digests: column sent_at",
            ),
        ] {
            let (_dir, source) = sqlite().await;
            fill(&source).await;
            exec(&source, bad).await;
            let Some((_db, target)) = postgres("copy: a failure leaves the target empty").await
            else {
                return;
            };
            let err = source.copy_into(&target).await.unwrap_err();
            assert!(!err.is_refusal());
            assert!(err.to_string().contains(says), "{err}");
            let mut conn = target.write().await.unwrap();
            assert_eq!(first_non_empty(&mut conn).await.unwrap(), None);
            drop(conn);
            // Nothing half-done stays behind either: a clean copy goes through afterwards.
            exec(&source, "DELETE FROM digests WHERE channel = 'team'").await;
            exec(&source, "DELETE FROM flaky_digests WHERE channel = 'team'").await;
            source
                .copy_into(&target)
                .await
                .expect("a copy after the fix");
        }
    }

    #[tokio::test]
    async fn different_migrations_or_backends_are_refused() {
        let (_dir, source) = sqlite().await;
        let (_dir2, other) = sqlite().await;
        let err = source.copy_into(&other).await.unwrap_err();
        assert!(matches!(err, CopyError::Backends { .. }), "{err}");

        let Some((_db, target)) = postgres("copy: different migrations are refused").await else {
            return;
        };
        let last: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&target.pool)
            .await
            .unwrap();
        exec(
            &target,
            "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
        )
        .await;
        let err = source.copy_into(&target).await.unwrap_err();
        match &err {
            CopyError::Versions {
                only_source,
                only_target,
            } => assert_eq!(
                (only_source.as_str(), only_target.as_str()),
                (last.to_string().as_str(), "none")
            ),
            other => panic!("{other}"),
        }
        assert!(err.is_refusal());
    }

    #[tokio::test]
    async fn a_file_a_bot_still_runs_on_is_refused_until_it_stops() {
        let (_dir, source) = sqlite().await;
        let Some((_db, target)) = postgres("copy: a running bot is refused").await else {
            return;
        };
        let token = source
            .take_lease(crate::store::LEADER_LEASE, "host:1:abc", 60_000)
            .await
            .unwrap()
            .unwrap();
        let err = source.copy_into(&target).await.unwrap_err();
        assert!(
            matches!(&err, CopyError::Running { holder, .. } if holder == "host:1:abc"),
            "{err}"
        );
        assert!(err.is_refusal());
        // Stopped cleanly (the lease given up): the copy goes ahead.
        source
            .release_lease(crate::store::LEADER_LEASE, "host:1:abc", token)
            .await
            .unwrap();
        source.copy_into(&target).await.expect("copied");
    }

    /// `cargo test --release --lib store::copy::tests::copy_speed -- --ignored --nocapture`:
    /// 100,000 history rows read, inserted both ways (multi-row VALUES, a JSON array), and
    /// copied whole.
    #[tokio::test(flavor = "multi_thread")]
    #[ignore = "a measurement; run it by name"]
    async fn copy_speed() {
        let (_dir, source) = sqlite().await;
        exec(
            &source,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO snapshot_history (job_id, observed_at, presence, info)
             SELECT printf('%032x', i % 1000), 1700000000000 + i, 'visible',
                    json_object('id', printf('%032x', i % 1000), 'job_name', 'job ' || i,
                                'last_build_status', 'success', 'last_build_time', i,
                                'build_time', '42.5', 'health_score', i % 100,
                                'disabled', json('false'), 'pad', substr(hex(randomblob(200)), 1, 400))
             FROM n",
        )
        .await;
        let Some((_db, target)) = postgres("copy: speed").await else {
            return;
        };
        let t = table("snapshot_history");
        let start = Instant::now();
        let all = rows(&source, t).await;
        eprintln!(
            "read 100,000 history rows from SQLite: {:.2?}",
            start.elapsed()
        );
        for round in 0..3 {
            let mut to = target.write().await.unwrap();
            let insert = insert_sql(t, CHUNK);
            let start = Instant::now();
            for chunk in all.chunks(CHUNK) {
                insert_chunk(&insert, chunk, &mut to).await.unwrap();
            }
            let values = start.elapsed();
            to.rollback().await.unwrap();

            let mut to = target.write().await.unwrap();
            let start = Instant::now();
            for chunk in all.chunks(CHUNK) {
                insert_json(t, chunk, &mut to).await;
            }
            let json = start.elapsed();
            to.rollback().await.unwrap();
            eprintln!("round {round}: multi-row VALUES {values:.2?}, JSON array {json:.2?}");
        }
        let start = Instant::now();
        source.copy_into(&target).await.unwrap();
        eprintln!("copy_into, 100,000 history rows: {:.2?}", start.elapsed());
    }

    /// The alternative measured in [`copy_speed`]: the chunk as one JSON array of row objects
    /// (written straight from the values), turned into rows of the table's type by PostgreSQL.
    async fn insert_json(table: &Table, rows: &[Vec<Value>], to: &mut Tx) {
        let columns = column_list(table);
        let sql = format!(
            "INSERT INTO {name} ({columns}) SELECT {columns} \
             FROM json_populate_recordset(NULL::{name}, $1::json)",
            name = table.name
        );
        let json = serde_json::to_string(&JsonRows { table, rows }).unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(json)
            .execute(&mut **to)
            .await
            .unwrap();
    }

    struct JsonRows<'a> {
        table: &'a Table,
        rows: &'a [Vec<Value>],
    }

    impl serde::Serialize for JsonRows<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{SerializeMap, SerializeSeq};
            struct Row<'a>(&'a Table, &'a [Value]);
            impl serde::Serialize for Row<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    let mut map = s.serialize_map(Some(self.1.len()))?;
                    for ((name, _), value) in self.0.columns.iter().zip(self.1) {
                        match value {
                            Value::Int(v) => map.serialize_entry(name, v)?,
                            Value::Text(v) => map.serialize_entry(name, v)?,
                        }
                    }
                    map.end()
                }
            }
            let mut seq = s.serialize_seq(Some(self.rows.len()))?;
            for row in self.rows {
                seq.serialize_element(&Row(self.table, row))?;
            }
            seq.end()
        }
    }

    #[test]
    fn a_full_chunk_stays_under_postgresqls_parameter_limit() {
        for table in TABLES {
            assert!(table.columns.len() * CHUNK <= 65_535, "{}", table.name);
        }
        let sql = insert_sql(table("digests"), 2);
        assert_eq!(
            sql,
            "INSERT INTO digests (channel, instant, outcome, updated_at) \
             VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)"
        );
    }
}
