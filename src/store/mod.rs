//! The SQLite store: watched jobs, snapshots, events and the delivery outbox.
//!
//! All SQL of the crate lives here. Writes run in `BEGIN IMMEDIATE` transactions, so a writer
//! takes the lock up front instead of failing half-way, and one observation's snapshot, events
//! and deliveries commit together or not at all (DESIGN.md invariant 2).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::codearts::{JobId, JobInfo};
use crate::domain::detect::{Detection, Event, EventKind, Presence, Snapshot};
use crate::domain::incident::{self, Incident};

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

/// Where a watched job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchSource {
    /// The config file: pinned, re-synced at every start.
    Config,
    /// A chat command (`/watch`).
    Chat,
    /// Found in the job list of a project a channel subscribes to (`projects = [...]`).
    Project,
}

impl WatchSource {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchSource::Config => "config",
            WatchSource::Chat => "chat",
            WatchSource::Project => "project",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "chat" => WatchSource::Chat,
            "project" => WatchSource::Project,
            _ => WatchSource::Config,
        }
    }
}

/// A job the poller looks at each cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedJob {
    pub job_id: JobId,
    /// Channel names, or `None` for every channel.
    pub channels: Option<Vec<String>>,
    pub source: WatchSource,
}

/// A delivery the dispatcher should attempt now, with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub id: String,
    pub channel: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub event: Event,
    /// The incident the event belongs to (its current state), and the message that shows it
    /// on this channel, if one was recorded.
    pub incident: Option<(Incident, Option<String>)>,
}

/// What one recorded observation wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub events: usize,
    pub deliveries: usize,
}

/// Delivery counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

/// A channel's oldest pending delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHead {
    pub channel: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub attempts: u32,
}

/// What happened to the deliveries a message carried.
#[derive(Debug, Clone, Copy)]
pub enum Settle<'a> {
    Sent(DateTime<Utc>),
    Retry { at: DateTime<Utc>, error: &'a str },
    Failed(&'a str),
}

/// The outbox's backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingSummary {
    pub pending: u64,
    /// When the oldest pending delivery was queued.
    pub oldest: Option<DateTime<Utc>>,
}

/// Rows removed by one retention pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub history: u64,
    pub deliveries: u64,
    pub events: u64,
}

/// One row of the outbox, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: String,
    pub channel: String,
    pub status: String,
    pub attempts: u32,
    pub kind: String,
    pub job_id: String,
    pub summary: String,
    pub created_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
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
        sqlx::migrate!("./migrations").run(&pool).await?;
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

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Makes the config file's jobs the `config` watch list: adds new ones, updates their
    /// channels, and removes config jobs no longer in the file. Chat-added jobs are untouched.
    pub async fn sync_config_jobs(&self, jobs: &[(JobId, Option<Vec<String>>)]) -> Result<()> {
        let mut tx = self.write().await?;
        let now = to_ms(Utc::now());
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT job_id FROM watched_jobs WHERE source = 'config'")
                .fetch_all(&mut *tx)
                .await?;
        for id in existing {
            if !jobs.iter().any(|(j, _)| j.as_str() == id) {
                sqlx::query("DELETE FROM watched_jobs WHERE job_id = ? AND source = 'config'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for (job, channels) in jobs {
            let channels = channels.as_ref().map(|c| serde_json::json!(c).to_string());
            sqlx::query(
                "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (job_id) DO UPDATE SET source = excluded.source,
                                                    channels = excluded.channels",
            )
            .bind(job.as_str())
            .bind(WatchSource::Config.as_str())
            .bind(channels)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes `listed` the discovered part of the watch list, each job with the channels of the
    /// projects that list it, and removes the discovered jobs in `dropped`. A job the config
    /// or a chat command already watches keeps its source and channels.
    pub async fn sync_project_jobs(
        &self,
        listed: &[(JobId, Vec<String>)],
        dropped: &[JobId],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let now = to_ms(Utc::now());
        for job in dropped {
            sqlx::query("DELETE FROM watched_jobs WHERE job_id = ? AND source = 'project'")
                .bind(job.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for (job, channels) in listed {
            sqlx::query(
                "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (job_id) DO UPDATE SET channels = excluded.channels
                 WHERE watched_jobs.source = 'project'",
            )
            .bind(job.as_str())
            .bind(WatchSource::Project.as_str())
            .bind(serde_json::json!(channels).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether one job is on the watch list (one indexed lookup, not the whole list).
    pub async fn is_watched(&self, job: &JobId) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM watched_jobs WHERE job_id = ?")
            .bind(job.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Every watched job, in a stable order.
    pub async fn watched_jobs(&self) -> Result<Vec<WatchedJob>> {
        let rows = sqlx::query("SELECT job_id, source, channels FROM watched_jobs ORDER BY job_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let raw: String = row.try_get("job_id")?;
                let job_id = JobId::parse(&raw).map_err(|e| corrupt("watched_jobs", e))?;
                let channels: Option<String> = row.try_get("channels")?;
                let channels = channels
                    .map(|c| serde_json::from_str(&c).map_err(|e| corrupt("watched_jobs", e)))
                    .transpose()?;
                let source: String = row.try_get("source")?;
                let source = WatchSource::parse(&source);
                Ok(WatchedJob {
                    job_id,
                    channels,
                    source,
                })
            })
            .collect()
    }

    /// The latest snapshot of every job that has one, by job id.
    pub async fn snapshots(&self) -> Result<HashMap<String, Snapshot>> {
        let rows = sqlx::query(
            "SELECT job_id, info, presence, settled_status, missing_polls, outcomes FROM job_state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("job_id")?, snapshot_from_row(row)?)))
            .collect()
    }

    /// Stores one observation's outcome in one transaction: the new snapshot (with a history
    /// row), its events, and one delivery per channel in `routes[i]` for `detection.events[i]`.
    /// Writes nothing when the detector found nothing to store.
    pub async fn record(
        &self,
        job: &JobId,
        detection: &Detection,
        routes: &[Vec<String>],
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        self.record_batch(&[Observed {
            job,
            detection,
            routes,
            suppressed: &[],
            now,
        }])
        .await
    }

    /// Stores several observations in one transaction. Each observation's snapshot, events
    /// and deliveries still commit together or not at all (they share the transaction); one
    /// commit for many observations is what makes a 10,000-job baseline take seconds, not
    /// minutes.
    pub async fn record_batch(&self, batch: &[Observed<'_>]) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        if batch
            .iter()
            .all(|o| o.detection.next.is_none() && o.detection.events.is_empty())
        {
            return Ok(recorded);
        }
        let mut tx = self.write().await?;
        for observed in batch {
            let one = write_observation(&mut tx, observed).await?;
            recorded.events += one.events;
            recorded.deliveries += one.deliveries;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Each channel's oldest pending delivery: when it was queued, when it may next be tried,
    /// and how often it was tried.
    pub async fn pending_heads(&self) -> Result<Vec<PendingHead>> {
        let rows = sqlx::query(
            "SELECT channel, created_at, next_attempt_at, attempts FROM deliveries
             WHERE seq IN (SELECT MIN(seq) FROM deliveries WHERE status = 'pending'
                           GROUP BY channel)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingHead {
                    channel: row.try_get("channel")?,
                    created_at: from_ms(row.try_get("created_at")?),
                    next_attempt_at: from_ms(row.try_get("next_attempt_at")?),
                    attempts: row
                        .try_get::<i64, _>("attempts")?
                        .try_into()
                        .unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Up to `limit` pending deliveries of one channel, oldest first, stopping at the first
    /// one not yet due (so a message never overtakes an older one).
    pub async fn due_for_channel(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.channel, d.attempts, d.created_at, d.next_attempt_at,
                    e.job_id, e.kind, e.job_name, e.detected_at, e.previous, e.current, e.summary,
                    i.id AS incident_id, i.opened_at AS incident_opened_at,
                    i.closed_at AS incident_closed_at, i.failed_builds AS incident_failed_builds,
                    i.last_status AS incident_last_status, m.message_id AS incident_message_id
             FROM deliveries d JOIN events e ON e.id = d.event_id
             LEFT JOIN incidents i ON i.id = e.incident_id
             LEFT JOIN incident_messages m ON m.incident_id = e.incident_id
                                           AND m.channel = d.channel
             WHERE d.status = 'pending' AND d.channel = ?
             ORDER BY d.seq LIMIT ?",
        )
        .bind(channel)
        .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let now_ms = to_ms(now);
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<i64, _>("next_attempt_at")? > now_ms {
                break;
            }
            out.push(DueDelivery {
                id: row.try_get("id")?,
                channel: row.try_get("channel")?,
                attempts: row
                    .try_get::<i64, _>("attempts")?
                    .try_into()
                    .unwrap_or(u32::MAX),
                created_at: from_ms(row.try_get("created_at")?),
                event: event_from_row(row)?,
                incident: incident_from_row(row)?,
            });
        }
        Ok(out)
    }

    /// Marks several deliveries with one outcome, in one transaction: the messages that carried
    /// them were accepted, refused or will be retried together.
    pub async fn settle_many(&self, ids: &[&str], outcome: Settle<'_>) -> Result<()> {
        let mut tx = self.write().await?;
        for id in ids {
            let query = match outcome {
                Settle::Sent(at) => sqlx::query(
                    "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?,
                                           last_error = NULL
                     WHERE id = ? AND status = 'pending'",
                )
                .bind(to_ms(at)),
                Settle::Retry { at, error } => sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?,
                                           last_error = ?
                     WHERE id = ? AND status = 'pending'",
                )
                .bind(to_ms(at))
                .bind(error),
                Settle::Failed(error) => sqlx::query(
                    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1,
                                           last_error = ?
                     WHERE id = ? AND status = 'pending'",
                )
                .bind(error),
            };
            query.bind(*id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many deliveries are pending, sent and failed.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let n: i64 = row.try_get("n")?;
            let n = u64::try_from(n).unwrap_or(0);
            match row.try_get::<String, _>("status")?.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }

    /// How many deliveries wait, and since when.
    pub async fn outbox_pending_summary(&self) -> Result<PendingSummary> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok(PendingSummary {
            pending: u64::try_from(n).unwrap_or(0),
            oldest: oldest.map(from_ms),
        })
    }

    /// Removes, in batches of `batch` rows each in its own short transaction, snapshot history
    /// and finished deliveries older than `before`, then events no delivery needs any more.
    /// Latest snapshots and pending deliveries are never touched. Freed pages are returned to
    /// the file system a few at a time (incremental vacuum), never with a blocking `VACUUM`.
    pub async fn prune(&self, before: DateTime<Utc>, batch: u32) -> Result<Pruned> {
        let cutoff = to_ms(before);
        let history = self
            .delete_in_batches(
                "DELETE FROM snapshot_history WHERE id IN
                   (SELECT id FROM snapshot_history WHERE observed_at < ? LIMIT ?)",
                cutoff,
                batch,
            )
            .await?;
        let deliveries = self
            .delete_in_batches(
                "DELETE FROM deliveries WHERE id IN
                   (SELECT id FROM deliveries WHERE status != 'pending' AND created_at < ? LIMIT ?)",
                cutoff,
                batch,
            )
            .await?;
        let events = self
            .delete_in_batches(
                "DELETE FROM events WHERE id IN
                   (SELECT e.id FROM events e WHERE e.detected_at < ?
                      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                    LIMIT ?)",
                cutoff,
                batch,
            )
            .await?;
        sqlx::query("PRAGMA incremental_vacuum(2000)")
            .execute(&self.pool)
            .await?;
        Ok(Pruned {
            history,
            deliveries,
            events,
        })
    }

    async fn delete_in_batches(&self, sql: &'static str, cutoff: i64, batch: u32) -> Result<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.write().await?;
            let done = sqlx::query(sql)
                .bind(cutoff)
                .bind(i64::from(batch.max(1)))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            total += done;
            if done < u64::from(batch.max(1)) {
                return Ok(total);
            }
            // Let pollers and the dispatcher take the write lock between batches.
            tokio::task::yield_now().await;
        }
    }

    /// Counts rows per table (for tests and the operator's curiosity).
    pub async fn row_counts(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for (table, sql) in [
            ("snapshot_history", "SELECT COUNT(*) FROM snapshot_history"),
            ("events", "SELECT COUNT(*) FROM events"),
            ("deliveries", "SELECT COUNT(*) FROM deliveries"),
            ("job_state", "SELECT COUNT(*) FROM job_state"),
        ] {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
            out.push((table, u64::try_from(n).unwrap_or(0)));
        }
        Ok(out)
    }

    /// The most recent deliveries, newest first, optionally only those with `status`.
    pub async fn deliveries(&self, status: Option<&str>, limit: u32) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT d.id, d.channel, d.status, d.attempts, d.created_at, d.last_error,
                    e.kind, e.job_id, e.summary
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE (?1 IS NULL OR d.status = ?1)
             ORDER BY d.seq DESC LIMIT ?2",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRow {
                    id: row.try_get("id")?,
                    channel: row.try_get("channel")?,
                    status: row.try_get("status")?,
                    attempts: row
                        .try_get::<i64, _>("attempts")?
                        .try_into()
                        .unwrap_or(u32::MAX),
                    kind: row.try_get("kind")?,
                    job_id: row.try_get("job_id")?,
                    summary: row.try_get("summary")?,
                    created_at: from_ms(row.try_get("created_at")?),
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }

    /// Adds `job` to the watch list as a chat-added job sending to `channels` (`None`: every
    /// channel). A job already watched is left as it is, and its source returned.
    pub async fn watch_from_chat(
        &self,
        job: &JobId,
        channels: Option<&[String]>,
    ) -> Result<Option<WatchSource>> {
        let mut tx = self.write().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT source FROM watched_jobs WHERE job_id = ?")
                .bind(job.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(source) = existing {
            return Ok(Some(WatchSource::parse(&source)));
        }
        sqlx::query(
            "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES (?, 'chat', ?, ?)",
        )
        .bind(job.as_str())
        .bind(channels.map(|c| serde_json::json!(c).to_string()))
        .bind(to_ms(Utc::now()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    /// Removes a chat-added job from the watch list. Returns the job's source before the call
    /// (`None`: not watched); only a `Chat` job is removed.
    pub async fn unwatch_from_chat(&self, job: &JobId) -> Result<Option<WatchSource>> {
        let mut tx = self.write().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT source FROM watched_jobs WHERE job_id = ?")
                .bind(job.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let source = existing.as_deref().map(WatchSource::parse);
        if source == Some(WatchSource::Chat) {
            sqlx::query("DELETE FROM watched_jobs WHERE job_id = ? AND source = 'chat'")
                .bind(job.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(source)
    }

    /// The last `n` events of a job, newest first, each with why it was not sent (if it was
    /// suppressed by a silence or a maintenance window).
    pub async fn events_for(&self, job: &JobId, n: u32) -> Result<Vec<(Event, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT kind, job_id, job_name, detected_at, previous, current, summary, suppressed
             FROM events WHERE job_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(job.as_str())
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((event_from_row(row)?, row.try_get("suppressed")?)))
            .collect()
    }

    /// The job's last `n` stored health scores, oldest first (from the snapshot history, which
    /// holds a row per change).
    pub async fn health_trend(&self, job: &JobId, n: u32) -> Result<Vec<i64>> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT info FROM snapshot_history WHERE job_id = ? AND info IS NOT NULL
             ORDER BY id DESC LIMIT ?",
        )
        .bind(job.as_str())
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        let mut scores: Vec<i64> = rows
            .iter()
            .flatten()
            .filter_map(|raw| serde_json::from_str::<JobInfo>(raw).ok()?.health_score)
            .collect();
        scores.reverse();
        Ok(scores)
    }

    /// Whether CodeArts as a whole could be seen lately ([`crate::domain::source_state`]).
    pub async fn source_state(&self) -> Result<crate::domain::source_state::SourceState> {
        let row = sqlx::query(
            "SELECT failed_cycles, blind_since, alerted, cause FROM source_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(crate::domain::source_state::SourceState::default());
        };
        Ok(crate::domain::source_state::SourceState {
            failed_cycles: row
                .try_get::<i64, _>("failed_cycles")?
                .try_into()
                .unwrap_or(0),
            blind_since: row.try_get::<Option<i64>, _>("blind_since")?.map(from_ms),
            alerted: row.try_get::<i64, _>("alerted")? != 0,
            cause: row.try_get("cause")?,
        })
    }

    /// Stores the new source state and, in the same transaction, its event (if any) with one
    /// delivery per channel.
    pub async fn record_source(
        &self,
        state: &crate::domain::source_state::SourceState,
        event: Option<&Event>,
        channels: &[String],
    ) -> Result<Recorded> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO source_state (id, failed_cycles, blind_since, alerted, cause)
             VALUES (1, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET failed_cycles = excluded.failed_cycles,
                 blind_since = excluded.blind_since, alerted = excluded.alerted,
                 cause = excluded.cause",
        )
        .bind(i64::from(state.failed_cycles))
        .bind(state.blind_since.map(to_ms))
        .bind(i64::from(state.alerted))
        .bind(&state.cause)
        .execute(&mut *tx)
        .await?;
        let mut recorded = Recorded::default();
        if let Some(event) = event {
            recorded.deliveries =
                insert_event(&mut tx, event, channels, None, to_ms(Utc::now())).await?;
            recorded.events = 1;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Stores one event that is not about a job's snapshot (a silence's summary) with one
    /// delivery per channel, in one transaction.
    pub async fn record_event(&self, event: &Event, channels: &[String]) -> Result<Recorded> {
        let mut tx = self.write().await?;
        let deliveries = insert_event(&mut tx, event, channels, None, to_ms(Utc::now())).await?;
        tx.commit().await?;
        Ok(Recorded {
            events: 1,
            deliveries,
        })
    }

    /// Stores a new silence and returns it with its id.
    pub async fn add_silence(
        &self,
        kind: crate::domain::silence::Kind,
        scope: &crate::domain::silence::Scope,
        created_by: &str,
        reason: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<crate::domain::silence::Silence> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO silences (kind, scope, target, created_by, reason, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(scope.kind())
        .bind(scope.target())
        .bind(created_by)
        .bind(reason)
        .bind(to_ms(now))
        .bind(to_ms(expires_at))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(crate::domain::silence::Silence {
            id,
            kind,
            scope: scope.clone(),
            created_by: created_by.to_owned(),
            reason: reason.to_owned(),
            created_at: now,
            expires_at,
        })
    }

    /// Silences not ended yet (expired ones included, until the sweep ends them), oldest first.
    pub async fn open_silences(&self) -> Result<Vec<crate::domain::silence::Silence>> {
        let rows = sqlx::query(
            "SELECT id, kind, scope, target, created_by, reason, created_at, expires_at
             FROM silences WHERE ended_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let scope: String = row.try_get("scope")?;
                let target: String = row.try_get("target")?;
                Ok(crate::domain::silence::Silence {
                    id: row.try_get("id")?,
                    kind: crate::domain::silence::Kind::parse(&row.try_get::<String, _>("kind")?),
                    scope: crate::domain::silence::Scope::from_parts(&scope, &target).ok_or_else(
                        || corrupt("silences", format!("unknown scope {scope:?} {target:?}")),
                    )?,
                    created_by: row.try_get("created_by")?,
                    reason: row.try_get("reason")?,
                    created_at: from_ms(row.try_get("created_at")?),
                    expires_at: from_ms(row.try_get("expires_at")?),
                })
            })
            .collect()
    }

    /// Ends a silence; `false` when it had already ended (or never existed).
    pub async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE silences SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
                .bind(to_ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Open incidents, each with when every channel last heard about it (two queries, however
    /// many incidents are open).
    pub async fn open_incidents(&self) -> Result<Vec<(Incident, HashMap<String, DateTime<Utc>>)>> {
        let rows = sqlx::query(
            "SELECT id, job_id, job_name, opened_at, failed_builds, last_status
             FROM incidents WHERE closed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut noticed: HashMap<i64, HashMap<String, DateTime<Utc>>> = HashMap::new();
        for row in sqlx::query(
            "SELECT m.incident_id, m.channel, m.noticed_at
             FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
             WHERE i.closed_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?
        {
            noticed
                .entry(row.try_get("incident_id")?)
                .or_default()
                .insert(row.try_get("channel")?, from_ms(row.try_get("noticed_at")?));
        }
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                let incident = Incident {
                    id,
                    job_id: row.try_get("job_id")?,
                    job_name: row.try_get("job_name")?,
                    opened_at: from_ms(row.try_get("opened_at")?),
                    closed_at: None,
                    failed_builds: row
                        .try_get::<i64, _>("failed_builds")?
                        .try_into()
                        .unwrap_or(0),
                    last_status: row.try_get("last_status")?,
                };
                Ok((incident, noticed.remove(&id).unwrap_or_default()))
            })
            .collect()
    }

    /// Queues a reminder of an incident to one channel, and notes that the channel heard about
    /// it now, in one transaction (so a crash cannot send it twice or forget it was sent).
    pub async fn record_reminder(
        &self,
        incident_id: i64,
        event: &Event,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        let mut tx = self.write().await?;
        let now_ms = to_ms(now);
        // The delivery is due at once, whatever clock the caller reasons with.
        insert_event_with(
            &mut tx,
            event,
            &[channel.to_owned()],
            None,
            Some(incident_id),
            to_ms(Utc::now()),
        )
        .await?;
        sqlx::query(
            "INSERT INTO incident_messages (incident_id, channel, message_id, noticed_at)
             VALUES (?, ?, NULL, ?)
             ON CONFLICT (incident_id, channel) DO UPDATE SET noticed_at = excluded.noticed_at",
        )
        .bind(incident_id)
        .bind(channel)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Recorded {
            events: 1,
            deliveries: 1,
        })
    }

    /// When `channel` last got the flaky-jobs digest; starts the clock (and returns `None`) the
    /// first time.
    pub async fn flaky_digest_sent_at(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let sent: Option<i64> =
            sqlx::query_scalar("SELECT sent_at FROM flaky_digests WHERE channel = ?")
                .bind(channel)
                .fetch_optional(&self.pool)
                .await?;
        if sent.is_none() {
            self.note_flaky_digest(channel, None, now).await?;
        }
        Ok(sent.map(from_ms))
    }

    /// Queues a digest (if any) to `channel` and notes it was sent now, in one transaction.
    pub async fn note_flaky_digest(
        &self,
        channel: &str,
        event: Option<&Event>,
        now: DateTime<Utc>,
    ) -> Result<Recorded> {
        let mut tx = self.write().await?;
        if let Some(event) = event {
            insert_event(
                &mut tx,
                event,
                &[channel.to_owned()],
                None,
                to_ms(Utc::now()),
            )
            .await?;
        }
        sqlx::query(
            "INSERT INTO flaky_digests (channel, sent_at) VALUES (?, ?)
             ON CONFLICT (channel) DO UPDATE SET sent_at = excluded.sent_at",
        )
        .bind(channel)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let queued = usize::from(event.is_some());
        Ok(Recorded {
            events: queued,
            deliveries: queued,
        })
    }

    /// Records that `channel` heard about an incident now, and the message that shows it
    /// (kept when `message_id` is `None`).
    pub async fn note_incident_message(
        &self,
        incident_id: i64,
        channel: &str,
        message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO incident_messages (incident_id, channel, message_id, noticed_at)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (incident_id, channel) DO UPDATE SET
                 message_id = COALESCE(excluded.message_id, incident_messages.message_id),
                 noticed_at = MAX(excluded.noticed_at, incident_messages.noticed_at)",
        )
        .bind(incident_id)
        .bind(channel)
        .bind(message_id)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number of stored events (all jobs).
    pub async fn event_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// One observation to store: the job, what the detector decided, the channels of each event.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub job: &'a JobId,
    pub detection: &'a Detection,
    /// `routes[i]`: the channels of `detection.events[i]`.
    pub routes: &'a [Vec<String>],
    /// `suppressed[i]`: why `detection.events[i]` is recorded but not sent (a silence, a
    /// maintenance window), if it is.
    pub suppressed: &'a [Option<String>],
    pub now: DateTime<Utc>,
}

async fn write_observation(
    tx: &mut Transaction<'static, Sqlite>,
    observed: &Observed<'_>,
) -> Result<Recorded> {
    let Observed {
        job,
        detection,
        routes,
        suppressed,
        now,
    } = *observed;
    let now_ms = to_ms(now);
    let mut recorded = Recorded::default();
    if let Some(next) = &detection.next {
        let info = next.info.as_ref().map(to_json);
        sqlx::query(
            "INSERT INTO job_state (job_id, info, presence, settled_status, observed_at,
                                    missing_polls, outcomes)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (job_id) DO UPDATE SET info = excluded.info,
                 presence = excluded.presence, settled_status = excluded.settled_status,
                 observed_at = excluded.observed_at, missing_polls = excluded.missing_polls,
                 outcomes = excluded.outcomes",
        )
        .bind(job.as_str())
        .bind(&info)
        .bind(next.presence.as_str())
        .bind(&next.settled_status)
        .bind(now_ms)
        .bind(i64::from(next.missing_polls))
        .bind(&next.outcomes)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO snapshot_history (job_id, observed_at, presence, info)
             VALUES (?, ?, ?, ?)",
        )
        .bind(job.as_str())
        .bind(now_ms)
        .bind(next.presence.as_str())
        .bind(&info)
        .execute(&mut **tx)
        .await?;
    }
    for (i, event) in detection.events.iter().enumerate() {
        let suppressed = suppressed.get(i).and_then(Option::as_deref);
        let channels = routes.get(i).map_or(&[][..], Vec::as_slice);
        let incident_id = advance_incident(tx, event, now_ms).await?;
        recorded.deliveries +=
            insert_event_with(tx, event, channels, suppressed, incident_id, now_ms).await?;
        recorded.events += 1;
    }
    Ok(recorded)
}

/// Opens, updates or closes the job's incident for this event ([`incident::step`]); returns
/// the incident the event belongs to.
async fn advance_incident(
    tx: &mut Transaction<'static, Sqlite>,
    event: &Event,
    now_ms: i64,
) -> Result<Option<i64>> {
    let open: Option<i64> =
        sqlx::query_scalar("SELECT id FROM incidents WHERE job_id = ? AND closed_at IS NULL")
            .bind(&event.job_id)
            .fetch_optional(&mut **tx)
            .await?;
    let status = event
        .current
        .as_ref()
        .and_then(|i| i.last_build_status.clone());
    Ok(match (incident::step(open.is_some(), event.kind), open) {
        (incident::Step::Open, _) => Some(
            sqlx::query_scalar(
                "INSERT INTO incidents (job_id, job_name, opened_at, failed_builds, last_status,
                                        updated_at)
                 VALUES (?, ?, ?, 1, ?, ?) RETURNING id",
            )
            .bind(&event.job_id)
            .bind(&event.job_name)
            .bind(to_ms(event.detected_at))
            .bind(&status)
            .bind(now_ms)
            .fetch_one(&mut **tx)
            .await?,
        ),
        (incident::Step::Failed, Some(id)) => {
            sqlx::query(
                "UPDATE incidents SET failed_builds = failed_builds + 1, last_status = ?,
                                      job_name = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&status)
            .bind(&event.job_name)
            .bind(now_ms)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Some(id)
        }
        (incident::Step::Close, Some(id)) => {
            sqlx::query(
                "UPDATE incidents SET closed_at = ?, last_status = ?, updated_at = ? WHERE id = ?",
            )
            .bind(to_ms(event.detected_at))
            .bind(&status)
            .bind(now_ms)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Some(id)
        }
        _ => None,
    })
}

/// Stores one event and queues one delivery per channel; returns the deliveries queued.
/// `suppressed` says why it is recorded but not sent (then `channels` should be empty).
async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    event: &Event,
    channels: &[String],
    suppressed: Option<&str>,
    now_ms: i64,
) -> Result<usize> {
    insert_event_with(tx, event, channels, suppressed, None, now_ms).await
}

async fn insert_event_with(
    tx: &mut Transaction<'static, Sqlite>,
    event: &Event,
    channels: &[String],
    suppressed: Option<&str>,
    incident_id: Option<i64>,
    now_ms: i64,
) -> Result<usize> {
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO events (job_id, kind, job_name, detected_at, previous, current, summary,
                             suppressed, incident_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&event.job_id)
    .bind(event.kind.as_str())
    .bind(&event.job_name)
    .bind(to_ms(event.detected_at))
    .bind(event.previous.as_ref().map(to_json))
    .bind(event.current.as_ref().map(to_json))
    .bind(&event.summary)
    .bind(suppressed)
    .bind(incident_id)
    .fetch_one(&mut **tx)
    .await?;
    for channel in channels {
        sqlx::query(
            "INSERT INTO deliveries (id, seq, event_id, channel, status, attempts,
                                     next_attempt_at, created_at)
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries), ?, ?,
                     'pending', 0, ?, ?)",
        )
        .bind(new_delivery_id())
        .bind(event_id)
        .bind(channel)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(channels.len())
}

fn incident_from_row(row: &SqliteRow) -> Result<Option<(Incident, Option<String>)>> {
    let Some(id) = row.try_get::<Option<i64>, _>("incident_id")? else {
        return Ok(None);
    };
    let incident = Incident {
        id,
        job_id: row.try_get("job_id")?,
        job_name: row.try_get("job_name")?,
        opened_at: from_ms(row.try_get("incident_opened_at")?),
        closed_at: row
            .try_get::<Option<i64>, _>("incident_closed_at")?
            .map(from_ms),
        failed_builds: row
            .try_get::<i64, _>("incident_failed_builds")?
            .try_into()
            .unwrap_or(0),
        last_status: row.try_get("incident_last_status")?,
    };
    Ok(Some((incident, row.try_get("incident_message_id")?)))
}

fn snapshot_from_row(row: &SqliteRow) -> Result<Snapshot> {
    let info: Option<String> = row.try_get("info")?;
    let presence: String = row.try_get("presence")?;
    Ok(Snapshot {
        info: info
            .map(|i| serde_json::from_str(&i).map_err(|e| corrupt("job_state", e)))
            .transpose()?,
        presence: Presence::parse(&presence)
            .ok_or_else(|| corrupt("job_state", format!("unknown presence {presence:?}")))?,
        settled_status: row.try_get("settled_status")?,
        missing_polls: row
            .try_get::<i64, _>("missing_polls")?
            .try_into()
            .unwrap_or(0),
        outcomes: row.try_get("outcomes")?,
    })
}

fn event_from_row(row: &SqliteRow) -> Result<Event> {
    let kind: String = row.try_get("kind")?;
    let info = |col: &str| -> Result<Option<JobInfo>> {
        let raw: Option<String> = row.try_get(col)?;
        raw.map(|r| serde_json::from_str(&r).map_err(|e| corrupt("events", e)))
            .transpose()
    };
    Ok(Event {
        kind: EventKind::parse(&kind)
            .ok_or_else(|| corrupt("events", format!("unknown kind {kind:?}")))?,
        job_id: row.try_get("job_id")?,
        job_name: row.try_get("job_name")?,
        detected_at: from_ms(row.try_get("detected_at")?),
        previous: info("previous")?,
        current: info("current")?,
        summary: row.try_get("summary")?,
    })
}

fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

fn to_json(info: &JobInfo) -> String {
    // Serialising a plain struct of strings, numbers and booleans cannot fail.
    serde_json::to_string(info).unwrap_or_else(|_| "{}".to_owned())
}

fn new_delivery_id() -> String {
    format!("dlv_{}", uuid::Uuid::new_v4().simple())
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
