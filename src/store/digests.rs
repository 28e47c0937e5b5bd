//! Scheduled digests (`digests`): the last cron instant each channel's digest was handled
//! for, claimed in the same transaction that queues the digest, so an instant is handled once
//! however many times (and by however many processes) it is looked at; and the reads a digest
//! is made of: the builds the snapshot history saw start in a period, and the failed stages
//! of the failure contexts of that period.

use chrono::{DateTime, Utc};

use super::db::{Dialect, Result, Store, from_ms, sql, to_ms};
use super::observations::{Recorded, insert_event};
use crate::domain::event::Event;

/// One build as the snapshot history last saw it (every field as CodeArts gave it).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredBuild {
    pub job_id: String,
    pub job_name: Option<String>,
    pub project_id: Option<String>,
    pub status: Option<String>,
    /// `build_time`: seconds, as decimal text.
    pub build_time: Option<String>,
}

impl StoredBuild {
    /// How long it ran, when the stored text is a number.
    pub fn seconds(&self) -> Option<f64> {
        self.build_time.as_deref()?.trim().parse().ok()
    }
}

impl Store {
    /// The last cron instant `channel`'s digest was handled for, if any.
    pub async fn digest_instant(&self, channel: &str) -> Result<Option<DateTime<Utc>>> {
        let at: Option<i64> = sqlx::query_scalar("SELECT instant FROM digests WHERE channel = $1")
            .bind(channel)
            .fetch_optional(&self.pool)
            .await?;
        Ok(at.map(from_ms))
    }

    /// Claims `instant` for `channel` (only when it is later than the instant stored) and, in
    /// the same transaction, queues `event` (if any) to the channel. `None`: the instant was
    /// already handled, nothing was written.
    pub async fn claim_digest(
        &self,
        channel: &str,
        instant: DateTime<Utc>,
        outcome: &str,
        event: Option<&Event>,
    ) -> Result<Option<Recorded>> {
        let mut tx = self.write().await?;
        let now = to_ms(Utc::now());
        let claimed = sqlx::query(
            "INSERT INTO digests (channel, instant, outcome, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel) DO UPDATE SET instant = excluded.instant,
                 outcome = excluded.outcome, updated_at = excluded.updated_at
             WHERE excluded.instant > digests.instant",
        )
        .bind(channel)
        .bind(to_ms(instant))
        .bind(outcome)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut recorded = Recorded::default();
        if let Some(event) = event {
            recorded.deliveries =
                insert_event(&mut tx, event, &[channel.to_owned()], None, now).await?;
            recorded.events = 1;
        }
        tx.commit().await?;
        Ok(Some(recorded))
    }

    /// The builds that started (`last_build_time`) between `from` and `to`, each as the latest
    /// history row up to `to` shows it (its final status, when it finished by then).
    pub async fn builds_started_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredBuild>> {
        let (from, to) = (to_ms(from), to_ms(to));
        // A build that started at `from` or later was observed at `from` or later, which
        // bounds the scan.
        Ok(sqlx::query_as::<_, StoredBuild>(match self.dialect {
            Dialect::Sqlite => {
                "SELECT job_id,
                        json_extract(info, '$.job_name') AS job_name,
                        json_extract(info, '$.project_id') AS project_id,
                        json_extract(info, '$.last_build_status') AS status,
                        CAST(json_extract(info, '$.build_time') AS TEXT) AS build_time
                 FROM snapshot_history
                 WHERE id IN (
                     SELECT MAX(id) FROM snapshot_history
                     WHERE observed_at >= $1 AND observed_at <= $2 AND info IS NOT NULL
                       AND json_valid(info)
                       AND json_extract(info, '$.last_build_time') >= $3
                       AND json_extract(info, '$.last_build_time') <= $4
                     GROUP BY job_id, json_extract(info, '$.last_build_time'))
                 ORDER BY id"
            }
            // The stored JSON is the bot's own (`to_json`), so it is valid; `->>` answers text
            // for every type, as the CAST does on SQLite.
            Dialect::Postgres => {
                "SELECT job_id,
                        info::json ->> 'job_name' AS job_name,
                        info::json ->> 'project_id' AS project_id,
                        info::json ->> 'last_build_status' AS status,
                        info::json ->> 'build_time' AS build_time
                 FROM snapshot_history
                 WHERE id IN (
                     SELECT MAX(id) FROM snapshot_history
                     WHERE observed_at >= $1 AND observed_at <= $2 AND info IS NOT NULL
                       AND json_typeof(info::json -> 'last_build_time') = 'number'
                       AND (info::json ->> 'last_build_time')::numeric >= $3
                       AND (info::json ->> 'last_build_time')::numeric <= $4
                     GROUP BY job_id, info::json ->> 'last_build_time')
                 ORDER BY id"
            }
        })
        .bind(from)
        .bind(to)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// `(job id, failed stage)` of every failed build that started between `from` and `to`
    /// and whose context names its failed stage.
    pub async fn failed_stages_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as::<_, (String, String)>(sql!(self.dialect;
            "SELECT job_id, ", { "json_extract(context, '$.failed_stage')" | "context::json ->> 'failed_stage'" },
            " AS stage FROM contexts WHERE kind = 'build' AND key >= $1 AND key <= $2 AND context IS NOT NULL AND ",
            { "json_valid(context) AND json_type(context, '$.failed_stage') = 'text'"
            | "json_typeof(context::json -> 'failed_stage') = 'string'" }))
        .bind(to_ms(from))
        .bind(to_ms(to))
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventKind;
    use chrono::TimeZone;

    #[tokio::test]
    async fn an_instant_is_claimed_once_with_its_digest() {
        for backend in
            crate::store::testing::backends("an_instant_is_claimed_once_with_its_digest").await
        {
            let store = backend.store.clone();
            let at = |h| Utc.with_ymd_and_hms(2026, 12, 2, h, 0, 0).unwrap();
            assert_eq!(store.digest_instant("ops").await.unwrap(), None);
            let start = store
                .claim_digest("ops", at(8), "start", None)
                .await
                .unwrap();
            assert_eq!(start, Some(Recorded::default()));
            let event = Event {
                kind: EventKind::Digest,
                job_id: String::new(),
                job_name: "all green".into(),
                detected_at: at(9),
                previous: None,
                current: None,
                summary: "Failing now: none".into(),
            };
            let queued = store
                .claim_digest("ops", at(9), "queued", Some(&event))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((queued.events, queued.deliveries), (1, 1));
            // The same instant again (a restart, a second caller), or an older one: nothing.
            for h in [9, 8] {
                assert_eq!(
                    store
                        .claim_digest("ops", at(h), "queued", Some(&event))
                        .await
                        .unwrap(),
                    None
                );
            }
            assert_eq!(store.digest_instant("ops").await.unwrap(), Some(at(9)));
            assert_eq!(store.outbox_counts().await.unwrap().pending, 1);
        }
    }
}
