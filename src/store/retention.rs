//! Retention: removing old snapshot history, finished deliveries, the events no delivery
//! needs and old failure contexts, in short batches so pollers and the dispatcher keep the write lock moving; and the
//! per-table row counts that show what retention left.

use chrono::{DateTime, Utc};

use super::db::{Dialect, Result, Store, count, to_ms};

/// Rows removed by one retention pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub history: u64,
    pub deliveries: u64,
    pub events: u64,
    /// Failure contexts not updated since the cutoff.
    pub contexts: u64,
    /// Card buttons that expired before the cutoff.
    pub buttons: u64,
}

impl Store {
    /// Removes, in batches of `batch` rows each in its own short transaction, snapshot history
    /// and finished deliveries older than `before`, then events no delivery needs any more.
    /// Latest snapshots and pending deliveries are never touched. Freed pages are returned to
    /// the file system a few at a time (incremental vacuum), never with a blocking `VACUUM`.
    pub async fn prune(&self, before: DateTime<Utc>, batch: u32) -> Result<Pruned> {
        let cutoff = to_ms(before);
        let history = self
            .delete_in_batches(
                "DELETE FROM snapshot_history WHERE id IN
                   (SELECT id FROM snapshot_history WHERE observed_at < $1 LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        let deliveries = self
            .delete_in_batches(
                "DELETE FROM deliveries WHERE id IN
                   (SELECT id FROM deliveries WHERE status != 'pending' AND created_at < $1 LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        let events = self
            .delete_in_batches(
                "DELETE FROM events WHERE id IN
                   (SELECT e.id FROM events e WHERE e.detected_at < $1
                      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
                    LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        // A context older than the cutoff describes a build that long ago failed; `/job`
        // then shows the job without it, and a new failure fetches a new one.
        let contexts = self
            .delete_in_batches(
                "DELETE FROM contexts WHERE (job_id, kind, key) IN
                   (SELECT job_id, kind, key FROM contexts WHERE updated_at < $1 LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        let buttons = self
            .delete_in_batches(
                "DELETE FROM buttons WHERE id IN
                   (SELECT id FROM buttons WHERE expires_at < $1 LIMIT $2)",
                cutoff,
                batch,
            )
            .await?;
        // SQLite gives freed pages back a slice at a time; PostgreSQL's autovacuum does it.
        if self.dialect == Dialect::Sqlite {
            sqlx::query("PRAGMA incremental_vacuum(2000)")
                .execute(&self.pool)
                .await?;
        }
        Ok(Pruned {
            history,
            deliveries,
            events,
            contexts,
            buttons,
        })
    }

    /// Runs `sql` (bound to `cutoff` and the batch size) until it deletes less than a batch.
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
            ("contexts", "SELECT COUNT(*) FROM contexts"),
        ] {
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
            out.push((table, count(n)));
        }
        Ok(out)
    }
}
