//! Reads for the status board (`crate::server::board`): many jobs' health histories and last
//! failure contexts in one query each (a page of the board shows up to a few hundred jobs),
//! one job's snapshot history and deliveries, and the event log across jobs. Read-only: the
//! board never writes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::contexts::parse_context;
use super::db::{Dialect, Result, Store, attempts, from_json, from_ms, sql};
use super::observations::EventRow;
use super::outbox::DeliveryRow;
use crate::codearts::{JobId, JobInfo};
use crate::domain::context::Context;
use crate::domain::event::Event;

/// One row of a job's snapshot history: what a poll saw when something changed.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub observed_at: DateTime<Utc>,
    /// `present`, `not_found` or `forbidden`.
    pub presence: String,
    pub info: Option<JobInfo>,
}

/// An event with its id (the cursor of `/api/v1/events`) and why it was not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub id: i64,
    pub event: Event,
    pub suppressed: Option<String>,
}

/// A delivery of one job's event, with when it went out.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDelivery {
    pub row: DeliveryRow,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct LoggedEventRow {
    id: i64,
    #[sqlx(flatten)]
    event: EventRow,
    suppressed: Option<String>,
}

#[derive(sqlx::FromRow)]
struct JobDeliveryRow {
    id: String,
    channel: String,
    status: String,
    attempts: i64,
    created_at: i64,
    sent_at: Option<i64>,
    last_error: Option<String>,
    kind: String,
    job_id: String,
    summary: String,
}

/// `jobs` as a JSON array, which the queries read as a table (`json_each` on SQLite).
fn id_array(jobs: &[&str]) -> String {
    serde_json::Value::from(jobs).to_string()
}

impl Store {
    /// The last `per_job` stored health scores of each of `jobs`, oldest first (jobs without
    /// any are left out). One query whatever the number of jobs.
    pub async fn health_histories(
        &self,
        jobs: &[&str],
        per_job: u32,
    ) -> Result<HashMap<String, Vec<i64>>> {
        if jobs.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as(match self.dialect {
            Dialect::Sqlite => {
                "SELECT job_id, json_group_array(score) FROM (
                     SELECT job_id, score FROM (
                         SELECT job_id, id, info ->> 'health_score' AS score,
                                row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS rn
                         FROM snapshot_history
                         WHERE job_id IN (SELECT value FROM json_each($1)) AND info IS NOT NULL
                     ) WHERE rn <= $2 AND typeof(score) = 'integer' ORDER BY job_id, id
                 ) GROUP BY job_id"
            }
            Dialect::Postgres => {
                "SELECT job_id, json_agg(score ORDER BY id)::text FROM (
                     SELECT job_id, id, info::json -> 'health_score' AS score,
                            row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS rn
                     FROM snapshot_history
                     WHERE job_id IN (SELECT value FROM json_array_elements_text($1::json))
                       AND info IS NOT NULL
                 ) AS recent WHERE rn <= $2 AND json_typeof(score) = 'number' GROUP BY job_id"
            }
        })
        .bind(id_array(jobs))
        .bind(i64::from(per_job))
        .fetch_all(&self.pool)
        .await?;
        // A history that does not parse is left out: a sparkline is a hint, not a record.
        Ok(rows
            .into_iter()
            .filter_map(|(job, scores)| Some((job, serde_json::from_str(&scores).ok()?)))
            .collect())
    }

    /// The context of the most recent failed build of each of `jobs` the bot knows about
    /// (jobs without one are left out).
    pub async fn last_failure_contexts(&self, jobs: &[&str]) -> Result<HashMap<String, Context>> {
        if jobs.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(sql!(self.dialect;
            "SELECT job_id, context FROM (
                 SELECT job_id, context,
                        row_number() OVER (PARTITION BY job_id ORDER BY key DESC) AS rn
                 FROM contexts
                 WHERE kind = 'build' AND state <> 'pending'
                   AND job_id IN (SELECT value FROM ", { "json_each($1)" | "json_array_elements_text($1::json)" }, ")
             ) AS latest WHERE rn = 1"),
        )
        .bind(id_array(jobs))
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::new();
        for (job, raw) in rows {
            if let Some(context) = parse_context(raw)? {
                out.insert(job, context);
            }
        }
        Ok(out)
    }

    /// The job's last `n` snapshot history rows, oldest first.
    pub async fn job_history(&self, job: &JobId, n: u32) -> Result<Vec<HistoryPoint>> {
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT observed_at, presence, info FROM snapshot_history
             WHERE job_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(job.as_str())
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        let mut points = rows
            .into_iter()
            .map(|(at, presence, info)| {
                Ok(HistoryPoint {
                    observed_at: from_ms(at),
                    presence,
                    info: from_json("snapshot_history", info)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        points.reverse();
        Ok(points)
    }

    /// Events newest first: of one job or of all, older than the event `before` (a cursor),
    /// at most `limit`.
    pub async fn event_log(
        &self,
        job: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LoggedEvent>> {
        sqlx::query_as::<_, LoggedEventRow>(
            "SELECT id, kind, job_id, job_name, detected_at, previous, current, summary,
                    suppressed
             FROM events WHERE ($1 IS NULL OR job_id = $1) AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(job)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| {
            Ok(LoggedEvent {
                id: row.id,
                event: row.event.into_event()?,
                suppressed: row.suppressed,
            })
        })
        .collect()
    }

    /// The last `limit` deliveries of one job's events, newest first.
    pub async fn job_deliveries(&self, job: &JobId, limit: u32) -> Result<Vec<JobDelivery>> {
        let rows = sqlx::query_as::<_, JobDeliveryRow>(
            "SELECT d.id, d.channel, d.status, d.attempts, d.created_at, d.sent_at, d.last_error,
                    e.kind, e.job_id, e.summary
             FROM events e JOIN deliveries d ON d.event_id = e.id
             WHERE e.job_id = $1 ORDER BY d.seq DESC LIMIT $2",
        )
        .bind(job.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| JobDelivery {
                row: DeliveryRow {
                    id: r.id,
                    channel: r.channel,
                    status: r.status,
                    attempts: attempts(r.attempts),
                    kind: r.kind,
                    job_id: r.job_id,
                    summary: r.summary,
                    created_at: from_ms(r.created_at),
                    last_error: r.last_error,
                },
                sent_at: r.sent_at.map(from_ms),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::detect::Detection;
    use crate::domain::event::EventKind;
    use crate::domain::snapshot::{Presence, Snapshot};

    const JOB: &str = "0123456789abcdef0123456789abcdef";

    fn info(health: i64, status: &str) -> JobInfo {
        JobInfo {
            health_score: Some(health),
            last_build_status: Some(status.to_owned()),
            ..JobInfo::default()
        }
    }

    #[tokio::test]
    async fn histories_events_and_deliveries_read_back() {
        for backend in
            crate::store::testing::backends("histories_events_and_deliveries_read_back").await
        {
            let store = backend.store.clone();
            let job = JobId::parse(JOB).expect("id");
            for (i, (health, status)) in [(90, "success"), (70, "failed"), (60, "failed")]
                .into_iter()
                .enumerate()
            {
                let now = Utc
                    .timestamp_millis_opt(1_700_000_000_000 + i as i64)
                    .unwrap();
                let detection = Detection {
                    next: Some(Snapshot {
                        info: Some(info(health, status)),
                        presence: Presence::Present,
                        settled_status: Some(status.to_owned()),
                        missing_polls: 0,
                        outcomes: String::new(),
                    }),
                    events: vec![Event {
                        kind: EventKind::HealthDropped,
                        job_id: JOB.to_owned(),
                        job_name: "api".to_owned(),
                        detected_at: now,
                        previous: None,
                        current: Some(info(health, status)),
                        summary: format!("health {health}"),
                    }],
                };
                store
                    .record(&job, &detection, &[vec!["ops".to_owned()]], now)
                    .await
                    .expect("record");
            }
            let histories = store.health_histories(&[JOB], 2).await.expect("health");
            assert_eq!(histories[JOB], vec![70, 60]);
            let history = store.job_history(&job, 10).await.expect("history");
            assert_eq!(history.len(), 3);
            assert_eq!(history[0].info.as_ref().unwrap().health_score, Some(90));
            let events = store.event_log(Some(JOB), None, 2).await.expect("events");
            assert_eq!(events.len(), 2);
            assert_eq!(events[0].event.summary, "health 60");
            let older = store
                .event_log(None, Some(events[1].id), 10)
                .await
                .expect("older");
            assert_eq!(older.len(), 1);
            assert_eq!(older[0].event.summary, "health 90");
            let deliveries = store.job_deliveries(&job, 10).await.expect("deliveries");
            assert_eq!(deliveries.len(), 3);
            assert_eq!(deliveries[0].row.channel, "ops");
            assert!(
                store
                    .last_failure_contexts(&[JOB])
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}
