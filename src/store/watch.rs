//! The watch list (`watched_jobs`): which jobs the poller looks at, where each came from
//! (config file, chat command, project discovery) and which channels hear about it.

use chrono::Utc;

use super::db::{Result, Store, corrupt, to_ms};
use crate::codearts::JobId;

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

/// A `watched_jobs` row as stored.
#[derive(sqlx::FromRow)]
struct WatchedJobRow {
    job_id: String,
    source: String,
    /// A JSON array of channel names, or NULL for every channel.
    channels: Option<String>,
}

impl TryFrom<WatchedJobRow> for WatchedJob {
    type Error = super::db::Error;

    fn try_from(row: WatchedJobRow) -> Result<Self> {
        Ok(WatchedJob {
            job_id: JobId::parse(&row.job_id).map_err(|e| corrupt("watched_jobs", e))?,
            channels: row
                .channels
                .map(|c| serde_json::from_str(&c).map_err(|e| corrupt("watched_jobs", e)))
                .transpose()?,
            source: WatchSource::parse(&row.source),
        })
    }
}

impl Store {
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
        sqlx::query_as::<_, WatchedJobRow>(
            "SELECT job_id, source, channels FROM watched_jobs ORDER BY job_id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(WatchedJob::try_from)
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
}
