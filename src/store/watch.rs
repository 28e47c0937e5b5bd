//! The watch list (`watched_jobs`): which jobs the poller looks at, where each came from
//! (config file, chat command, project discovery) and which channels hear about it.

use chrono::Utc;

use super::bulk_read::{Col, read_all};
use super::db::{Dialect, Result, Store, Tx, corrupt, sql, to_ms};
use super::watch_diff::{StoredWatch, StoredWatches, WatchDiff, config_diff, project_diff};
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
    /// channels (a chat-added or discovered job pinned in the file becomes `config`, keeping
    /// its `added_at`), and removes config jobs no longer in the file. Chat-added jobs not in
    /// the file are untouched. Reads the list once and writes only what differs: an unchanged
    /// config writes nothing.
    pub async fn sync_config_jobs(&self, jobs: &[(JobId, Option<Vec<String>>)]) -> Result<()> {
        let mut tx = self.write().await?;
        let stored = stored_watches(&mut tx, self.dialect).await?;
        let diff = config_diff(&stored, jobs);
        apply(
            tx,
            &diff,
            sql!(self.dialect; "DELETE FROM watched_jobs WHERE source = 'config' AND job_id IN \
                 (SELECT value FROM ", { "json_each($1)" | "json_array_elements_text($1::json)" }, ")"),
            // `WHERE true` lets SQLite parse the upsert after a SELECT.
            sql!(self.dialect; "INSERT INTO watched_jobs (job_id, source, channels, added_at) \
                 SELECT value ->> 0, 'config', value ->> 1, $2 FROM ",
                 { "json_each($1)" | "json_array_elements($1::json)" },
                 " WHERE true ON CONFLICT (job_id) DO UPDATE SET source = excluded.source, \
                 channels = excluded.channels"),
        )
        .await
    }

    /// Makes `listed` the discovered part of the watch list, each job with the channels of the
    /// projects that list it, and removes the discovered jobs in `dropped` (before adding, so
    /// a job in both comes back as a new row). A job the config or a chat command already
    /// watches keeps its source and channels. Writes only what differs.
    pub async fn sync_project_jobs(
        &self,
        listed: &[(JobId, Vec<String>)],
        dropped: &[JobId],
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let stored = stored_watches(&mut tx, self.dialect).await?;
        let diff = project_diff(&stored, listed, dropped);
        apply(
            tx,
            &diff,
            sql!(self.dialect; "DELETE FROM watched_jobs WHERE source = 'project' AND job_id IN \
                 (SELECT value FROM ", { "json_each($1)" | "json_array_elements_text($1::json)" }, ")"),
            sql!(self.dialect; "INSERT INTO watched_jobs (job_id, source, channels, added_at) \
                 SELECT value ->> 0, 'project', value ->> 1, $2 FROM ",
                 { "json_each($1)" | "json_array_elements($1::json)" },
                 " WHERE true ON CONFLICT (job_id) DO UPDATE SET channels = excluded.channels \
                 WHERE watched_jobs.source = 'project'"),
        )
        .await
    }

    /// Whether one job is on the watch list (one indexed lookup, not the whole list).
    pub async fn is_watched(&self, job: &JobId) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM watched_jobs WHERE job_id = $1")
            .bind(job.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Whether any job on the watch list came from a project subscription (one indexed probe
    /// at most, not the whole list).
    pub async fn has_discovered_jobs(&self) -> Result<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM watched_jobs WHERE source = 'project' LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Every watched job, in a stable order (by id), read in a few round trips
    /// ([`super::bulk_read`]).
    pub async fn watched_jobs(&self) -> Result<Vec<WatchedJob>> {
        let mut watched = self.watched_jobs_in_any_order().await?;
        watched.sort_unstable_by(|a, b| a.job_id.as_str().cmp(b.job_id.as_str()));
        Ok(watched)
    }

    /// [`Self::watched_jobs`] in the order the database gives them (the table's own on
    /// SQLite): for the poll cycle, which has no use for an order and would pay a sort of
    /// the whole list on every cycle.
    pub async fn watched_jobs_in_any_order(&self) -> Result<Vec<WatchedJob>> {
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<(String, String, Option<String>)> = read_all(
            &mut conn,
            self.dialect,
            "watched_jobs",
            "job_id",
            &WATCH_COLUMNS,
        )
        .await?;
        rows.into_iter()
            .map(|(job_id, source, channels)| {
                WatchedJob::try_from(WatchedJobRow {
                    job_id,
                    source,
                    channels,
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
            sqlx::query_scalar("SELECT source FROM watched_jobs WHERE job_id = $1")
                .bind(job.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(source) = existing {
            return Ok(Some(WatchSource::parse(&source)));
        }
        sqlx::query(
            "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES ($1, 'chat', $2, $3)",
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
            sqlx::query_scalar("SELECT source FROM watched_jobs WHERE job_id = $1")
                .bind(job.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let source = existing.as_deref().map(WatchSource::parse);
        if source == Some(WatchSource::Chat) {
            sqlx::query("DELETE FROM watched_jobs WHERE job_id = $1 AND source = 'chat'")
                .bind(job.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        Ok(source)
    }
}

/// The columns a watch-list row is read with.
const WATCH_COLUMNS: [Col; 3] = [
    Col::Text("job_id"),
    Col::Text("source"),
    Col::Text("channels"),
];

/// The whole stored watch list, in one streamed query, keyed for the diff.
async fn stored_watches(tx: &mut Tx, dialect: Dialect) -> Result<StoredWatches> {
    let rows: Vec<(String, String, Option<String>)> =
        read_all(&mut *tx, dialect, "watched_jobs", "job_id", &WATCH_COLUMNS).await?;
    Ok(rows
        .into_iter()
        .map(|(job_id, source, channels)| (job_id, StoredWatch { source, channels }))
        .collect())
}

/// Writes `diff` with two set-based statements (each takes its rows as one JSON array
/// parameter, `?1`, so no bound-parameter limit applies) and commits; an empty diff rolls back
/// without writing. `delete` removes the ids of `removed`; `upsert` takes `[job_id, channels]`
/// pairs for `added` and `changed` and `added_at` as `?2`.
async fn apply(
    mut tx: Tx,
    diff: &WatchDiff,
    delete: &'static str,
    upsert: &'static str,
) -> Result<()> {
    if diff.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    if !diff.removed.is_empty() {
        sqlx::query(delete)
            .bind(serde_json::json!(diff.removed).to_string())
            .execute(&mut *tx)
            .await?;
    }
    if !diff.added.is_empty() || !diff.changed.is_empty() {
        let rows: Vec<_> = diff.added.iter().chain(&diff.changed).collect();
        sqlx::query(upsert)
            .bind(serde_json::json!(rows).to_string())
            .bind(to_ms(Utc::now()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The syncs against a real database on one connection, so SQLite's `total_changes()`
    //! counts exactly the rows they write.

    use super::*;

    /// A migrated store whose pool has a single connection: every query, the syncs' included,
    /// runs on it, so its change counter is theirs.
    async fn single_connection_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = crate::store::Location::Sqlite(dir.path().join("bot.db"));
        let store = Store::connect_with(&at, Some(1)).await.expect("open");
        (dir, store)
    }

    async fn total_changes(store: &Store) -> i64 {
        sqlx::query_scalar("SELECT total_changes()")
            .fetch_one(&store.pool)
            .await
            .expect("total_changes")
    }

    async fn added_at(store: &Store, job: &JobId) -> i64 {
        sqlx::query_scalar("SELECT added_at FROM watched_jobs WHERE job_id = $1")
            .bind(job.as_str())
            .fetch_one(&store.pool)
            .await
            .expect("added_at")
    }

    fn id(n: u32) -> JobId {
        JobId::parse(&format!("{n:032x}")).expect("job id")
    }

    #[tokio::test]
    async fn an_unchanged_config_of_10000_jobs_writes_no_rows() {
        let (_dir, store) = single_connection_store().await;
        let jobs: Vec<_> = (0..10_000)
            .map(|n| (id(n), (n % 3 == 0).then(|| vec![format!("ch{}", n % 7)])))
            .collect();
        let before = total_changes(&store).await;
        store.sync_config_jobs(&jobs).await.expect("first sync");
        let first = total_changes(&store).await;
        assert_eq!(first - before, 10_000);
        store.sync_config_jobs(&jobs).await.expect("second sync");
        assert_eq!(
            total_changes(&store).await,
            first,
            "the second sync wrote rows"
        );
        let watched = store.watched_jobs().await.expect("watched");
        assert_eq!(watched.len(), 10_000);
        assert_eq!(watched[3].channels, Some(vec!["ch3".to_owned()]));
        assert_eq!(watched[1].channels, None);
        assert!(watched.iter().all(|w| w.source == WatchSource::Config));

        // One job's channels change and one job leaves the file: two rows written.
        let mut edited = jobs[..9_999].to_vec();
        edited[1].1 = Some(vec!["ops".to_owned()]);
        store.sync_config_jobs(&edited).await.expect("third sync");
        assert_eq!(total_changes(&store).await - first, 2);
        let watched = store.watched_jobs().await.expect("watched");
        assert_eq!(watched.len(), 9_999);
        assert_eq!(watched[1].channels, Some(vec!["ops".to_owned()]));
    }

    #[tokio::test]
    async fn config_pins_chat_and_project_jobs_keeping_added_at() {
        for backend in
            crate::store::testing::backends("config_pins_chat_and_project_jobs_keeping_added_at")
                .await
        {
            let store = backend.store.clone();
            let dev = vec!["dev".to_owned()];
            store
                .watch_from_chat(&id(1), Some(&dev))
                .await
                .expect("chat");
            store.watch_from_chat(&id(2), None).await.expect("chat");
            store
                .sync_project_jobs(&[(id(3), vec!["ci".to_owned()]), (id(4), vec![])], &[])
                .await
                .expect("projects");
            let chat_added = added_at(&store, &id(1)).await;
            let project_added = added_at(&store, &id(3)).await;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;

            store
                .sync_config_jobs(&[(id(1), None), (id(3), Some(dev.clone())), (id(5), None)])
                .await
                .expect("config");
            let watched = store.watched_jobs().await.expect("watched");
            let found = |n: u32| watched.iter().find(|w| w.job_id == id(n)).cloned();
            let pinned = found(1).expect("job 1");
            assert_eq!(
                (pinned.source, pinned.channels),
                (WatchSource::Config, None)
            );
            assert_eq!(added_at(&store, &id(1)).await, chat_added);
            let pinned = found(3).expect("job 3");
            assert_eq!(pinned.source, WatchSource::Config);
            assert_eq!(pinned.channels, Some(dev.clone()));
            assert_eq!(added_at(&store, &id(3)).await, project_added);
            assert_eq!(found(2).expect("job 2").source, WatchSource::Chat);
            assert_eq!(found(4).expect("job 4").source, WatchSource::Project);
            assert_eq!(found(5).expect("job 5").source, WatchSource::Config);

            // A discovery listing a pinned job leaves it alone; dropping it does not remove it.
            let before = rows(&store).await;
            store
                .sync_project_jobs(&[(id(3), vec!["ci".to_owned()]), (id(4), vec![])], &[id(1)])
                .await
                .expect("projects again");
            assert_eq!(rows(&store).await, before);

            // An empty config removes the config rows, chat-pinned ones included.
            store.sync_config_jobs(&[]).await.expect("empty config");
            let left: Vec<_> = store
                .watched_jobs()
                .await
                .expect("watched")
                .into_iter()
                .map(|w| (w.job_id, w.source))
                .collect();
            assert_eq!(
                left,
                vec![(id(2), WatchSource::Chat), (id(4), WatchSource::Project)]
            );
        }
    }

    /// The syncs as they were before the diff (one statement per row), kept as the reference
    /// the differential test below compares against.
    async fn old_sync_config(store: &Store, jobs: &[(JobId, Option<Vec<String>>)]) {
        let mut tx = store.write().await.expect("tx");
        let now = to_ms(Utc::now());
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT job_id FROM watched_jobs WHERE source = 'config'")
                .fetch_all(&mut *tx)
                .await
                .expect("existing");
        for id in existing {
            if !jobs.iter().any(|(j, _)| j.as_str() == id) {
                sqlx::query("DELETE FROM watched_jobs WHERE job_id = $1 AND source = 'config'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .expect("delete");
            }
        }
        for (job, channels) in jobs {
            let channels = channels.as_ref().map(|c| serde_json::json!(c).to_string());
            sqlx::query(
                "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job_id) DO UPDATE SET source = excluded.source,
                                                    channels = excluded.channels",
            )
            .bind(job.as_str())
            .bind("config")
            .bind(channels)
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("upsert");
        }
        tx.commit().await.expect("commit");
    }

    async fn old_sync_project(store: &Store, listed: &[(JobId, Vec<String>)], dropped: &[JobId]) {
        let mut tx = store.write().await.expect("tx");
        let now = to_ms(Utc::now());
        for job in dropped {
            sqlx::query("DELETE FROM watched_jobs WHERE job_id = $1 AND source = 'project'")
                .bind(job.as_str())
                .execute(&mut *tx)
                .await
                .expect("delete");
        }
        for (job, channels) in listed {
            sqlx::query(
                "INSERT INTO watched_jobs (job_id, source, channels, added_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job_id) DO UPDATE SET channels = excluded.channels
                 WHERE watched_jobs.source = 'project'",
            )
            .bind(job.as_str())
            .bind("project")
            .bind(serde_json::json!(channels).to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .expect("upsert");
        }
        tx.commit().await.expect("commit");
    }

    type Rows = Vec<(String, String, Option<String>, i64)>;

    async fn rows(store: &Store) -> Rows {
        sqlx::query_as(
            "SELECT job_id, source, channels, added_at FROM watched_jobs ORDER BY job_id",
        )
        .fetch_all(&store.pool)
        .await
        .expect("rows")
    }

    /// Which rows a step created or re-created (a new `added_at`), and the rest of each row.
    fn shape(before: &Rows, after: &Rows) -> Vec<(String, String, Option<String>, bool)> {
        after
            .iter()
            .map(|(id, source, channels, added)| {
                let kept = before.iter().any(|(b, _, _, a)| b == id && a == added);
                (id.clone(), source.clone(), channels.clone(), !kept)
            })
            .collect()
    }

    #[tokio::test]
    async fn random_syncs_match_the_old_per_row_code() {
        let (_dir_new, new) = single_connection_store().await;
        let (_dir_old, old) = single_connection_store().await;
        // A small deterministic generator: the same steps on every run.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let names = ["a", "b", "c"];
        for step in 0..40 {
            let mut pick = |k: u64| -> Vec<u32> { (0..k).map(|_| next(12) as u32).collect() };
            let ids = pick(8);
            let (before_new, before_old) = (rows(&new).await, rows(&old).await);
            match step % 3 {
                0 => {
                    let jobs: Vec<_> = ids
                        .iter()
                        .map(|&n| {
                            let c = (n % 3 != 0).then(|| vec![names[(n % 3) as usize].to_owned()]);
                            (id(n), c)
                        })
                        .collect();
                    new.sync_config_jobs(&jobs).await.expect("new config");
                    old_sync_config(&old, &jobs).await;
                }
                1 => {
                    let dropped: Vec<_> = pick(3).into_iter().map(id).collect();
                    let listed: Vec<_> = ids
                        .iter()
                        .take(5)
                        .map(|&n| (id(n), vec![names[((n + step) % 3) as usize].to_owned()]))
                        .collect();
                    new.sync_project_jobs(&listed, &dropped)
                        .await
                        .expect("new projects");
                    old_sync_project(&old, &listed, &dropped).await;
                }
                _ => {
                    let job = id(ids[0]);
                    new.watch_from_chat(&job, None).await.expect("chat");
                    old.watch_from_chat(&job, None).await.expect("chat");
                }
            }
            assert_eq!(
                shape(&before_new, &rows(&new).await),
                shape(&before_old, &rows(&old).await),
                "step {step}"
            );
            // Ensures a re-created row gets a different `added_at` from the one it replaced.
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    }
}
