//! Contexts (`contexts`): why a build failed or a job was disabled or vanished, cached by job
//! and key so each build is asked about once. An event that asks for a context holds its
//! deliveries until the context is saved or `context.wait_ms` passes; a context saved after
//! its alert went out queues an edit of the incident's message on channels that edit.

use chrono::{DateTime, Utc};

use super::db::{Result, Store, Tx, corrupt, new_delivery_id, to_ms};
use crate::codearts::JobId;
use crate::domain::context::{Context, ContextKey};

/// A pending context older than this is asked for again (its fetch never finished: the
/// process stopped, or the task was lost).
const STALE_PENDING_MS: i64 = 10 * 60 * 1000;

/// How a fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextState {
    /// Every call answered.
    Done,
    /// Some calls did not answer: what did is kept.
    Partial,
    /// No call answered.
    Failed,
}

impl ContextState {
    fn as_str(self) -> &'static str {
        match self {
            ContextState::Done => "done",
            ContextState::Partial => "partial",
            ContextState::Failed => "failed",
        }
    }
}

/// What saving a context set going.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Deliveries that were waiting for it and may go now.
    pub released: usize,
    /// Edits queued for messages that went out without it.
    pub edits: usize,
}

/// What an event found when it asked for a context.
pub(super) struct Claim {
    /// The context is not there yet: hold the deliveries.
    pub wait: bool,
    /// Nobody is fetching it: the caller should.
    pub fetch: bool,
}

/// Claims the context `key` of `job_id` for an event being stored: a new row (state
/// `pending`) when there is none, so the caller fetches it; a row already there is used
/// as it is, unless it has been pending for so long that its fetch must have been lost.
pub(super) async fn claim_context(
    tx: &mut Tx,
    job_id: &str,
    key: ContextKey,
    now_ms: i64,
) -> Result<Claim> {
    let (kind, k) = key.parts();
    let inserted = sqlx::query(
        "INSERT INTO contexts (job_id, kind, key, state, created_at, updated_at)
         VALUES ($1, $2, $3, 'pending', $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(job_id)
    .bind(kind)
    .bind(k)
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim {
            wait: true,
            fetch: true,
        });
    }
    let (state, updated_at): (String, i64) = sqlx::query_as(
        "SELECT state, updated_at FROM contexts WHERE job_id = $1 AND kind = $2 AND key = $3",
    )
    .bind(job_id)
    .bind(kind)
    .bind(k)
    .fetch_one(&mut **tx)
    .await?;
    if state != "pending" {
        return Ok(Claim {
            wait: false,
            fetch: false,
        });
    }
    let stale = now_ms - updated_at > STALE_PENDING_MS;
    if stale {
        sqlx::query(
            "UPDATE contexts SET updated_at = $1 WHERE job_id = $2 AND kind = $3 AND key = $4",
        )
        .bind(now_ms)
        .bind(job_id)
        .bind(kind)
        .bind(k)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Claim {
        wait: true,
        fetch: stale,
    })
}

/// Reads a stored context's JSON.
pub(super) fn parse_context(raw: Option<String>) -> Result<Option<Context>> {
    raw.map(|raw| {
        serde_json::from_str(&raw).map_err(|e| corrupt("contexts", format!("context: {e}")))
    })
    .transpose()
}

impl Store {
    /// Stores a fetched context and, in the same transaction, lets the deliveries that wait
    /// for it go, and queues an edit of the incident's message on each of `editing` (the
    /// channels whose platform edits messages) that already showed the event without it.
    pub async fn save_context(
        &self,
        job_id: &str,
        key: ContextKey,
        context: &Context,
        state: ContextState,
        editing: &[String],
        now: DateTime<Utc>,
    ) -> Result<Saved> {
        let (kind, k) = key.parts();
        let now_ms = to_ms(now);
        let json = serde_json::to_string(context)
            .map_err(|e| corrupt("contexts", format!("cannot serialise: {e}")))?;
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO contexts (job_id, kind, key, state, build_no, context, created_at,
                                   updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (job_id, kind, key) DO UPDATE SET state = excluded.state,
                 build_no = excluded.build_no, context = excluded.context,
                 updated_at = excluded.updated_at",
        )
        .bind(job_id)
        .bind(kind)
        .bind(k)
        .bind(state.as_str())
        .bind(context.build_no.map(i64::from))
        .bind(&json)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let released = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1
             WHERE status = 'pending' AND attempts = 0 AND next_attempt_at > $1
               AND event_id IN (SELECT id FROM events WHERE job_id = $2 AND context_kind = $3
                                                        AND context_key = $4)",
        )
        .bind(now_ms)
        .bind(job_id)
        .bind(kind)
        .bind(k)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let edits = if context.is_empty() {
            0
        } else {
            queue_edits(&mut tx, job_id, kind, k, editing, now_ms).await?
        };
        tx.commit().await?;
        Ok(Saved {
            released: usize::try_from(released).unwrap_or(usize::MAX),
            edits,
        })
    }

    /// The context `key` of a job, unless it is still being fetched.
    pub async fn context(&self, job: &JobId, key: ContextKey) -> Result<Option<Context>> {
        let (kind, k) = key.parts();
        let raw: Option<Option<String>> = sqlx::query_scalar(
            "SELECT context FROM contexts WHERE job_id = $1 AND kind = $2 AND key = $3
                                          AND state <> 'pending'",
        )
        .bind(job.as_str())
        .bind(kind)
        .bind(k)
        .fetch_optional(&self.pool)
        .await?;
        parse_context(raw.flatten())
    }

    /// The context of the job's most recent failed build the bot knows about.
    pub async fn last_failure_context(&self, job: &JobId) -> Result<Option<Context>> {
        let raw: Option<Option<String>> = sqlx::query_scalar(
            "SELECT context FROM contexts WHERE job_id = $1 AND kind = 'build'
                                          AND state <> 'pending'
             ORDER BY key DESC LIMIT 1",
        )
        .bind(job.as_str())
        .fetch_optional(&self.pool)
        .await?;
        parse_context(raw.flatten())
    }

    /// Lets every delivery that waits for a context go now (`run --once`, before it drains
    /// the outbox and exits). Returns how many were waiting.
    pub async fn release_context_holds(&self, now: DateTime<Utc>) -> Result<usize> {
        let now_ms = to_ms(now);
        let released = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1
             WHERE status = 'pending' AND attempts = 0 AND next_attempt_at > $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(usize::try_from(released).unwrap_or(usize::MAX))
    }
}

/// Queues an edit on each editing channel whose incident message showed the event of this
/// context without it: only for the incident's latest event (an older one's edit would undo a
/// newer card) and only while the incident is open.
async fn queue_edits(
    tx: &mut Tx,
    job_id: &str,
    kind: &str,
    key: i64,
    editing: &[String],
    now_ms: i64,
) -> Result<usize> {
    let shown: Vec<(i64, String)> = sqlx::query_as(
        "SELECT d.event_id, d.channel FROM deliveries d
         JOIN events e ON e.id = d.event_id
         JOIN incidents i ON i.id = e.incident_id AND i.closed_at IS NULL
         JOIN incident_messages m ON m.incident_id = e.incident_id AND m.channel = d.channel
                                  AND m.message_id IS NOT NULL
         WHERE e.job_id = $1 AND e.context_kind = $2 AND e.context_key = $3
           AND d.purpose = 'post' AND d.status = 'sent'
           AND e.id = (SELECT MAX(id) FROM events WHERE incident_id = e.incident_id)
           AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.event_id = d.event_id
                             AND x.channel = d.channel AND x.purpose = 'context')",
    )
    .bind(job_id)
    .bind(kind)
    .bind(key)
    .fetch_all(&mut **tx)
    .await?;
    let mut queued = 0;
    for (event_id, channel) in shown.iter().filter(|(_, c)| editing.contains(c)) {
        sqlx::query(
            "INSERT INTO deliveries (id, seq, event_id, channel, status, attempts,
                                     next_attempt_at, created_at, purpose)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries), $2, $3,
                     'pending', 0, $4, $5, 'context')",
        )
        .bind(new_delivery_id())
        .bind(event_id)
        .bind(channel)
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        queued += 1;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    //! The claim, the hold and its release, and the late edit, against a real database.

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::codearts::JobInfo;
    use crate::domain::detect::Detection;
    use crate::domain::event::{Event, EventKind};
    use crate::store::Observed;

    const JOB: &str = "0123456789abcdef0123456789abcdef";
    const BUILD: ContextKey = ContextKey::Build {
        build_time: 1_700_000_000_000,
    };

    fn failure(at_ms: i64) -> (Detection, chrono::DateTime<Utc>) {
        let now = Utc.timestamp_millis_opt(at_ms).unwrap();
        let info = JobInfo {
            last_build_status: Some("failed".to_owned()),
            last_build_time: Some(1_700_000_000_000),
            ..JobInfo::default()
        };
        let event = Event {
            kind: EventKind::BuildFailed,
            job_id: JOB.to_owned(),
            job_name: "api".to_owned(),
            detected_at: now,
            previous: None,
            current: Some(info),
            summary: "api failed".to_owned(),
        };
        (
            Detection {
                next: None,
                events: vec![event],
            },
            now,
        )
    }

    async fn record(store: &Store, at_ms: i64) -> crate::store::Recorded {
        let (detection, now) = failure(at_ms);
        let job = JobId::parse(JOB).unwrap();
        let routes = [vec!["discord".to_owned()]];
        store
            .record_batch(&[Observed {
                job: &job,
                detection: &detection,
                routes: &routes,
                suppressed: &[],
                contexts: &[Some(BUILD)],
                hold_ms: 3000,
                now,
            }])
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_context_is_fetched_once_holds_its_alert_and_releases_it() {
        for backend in crate::store::testing::backends(
            "a_context_is_fetched_once_holds_its_alert_and_releases_it",
        )
        .await
        {
            let store = backend.store.clone();
            let t0 = 1_800_000_000_000;
            let first = record(&store, t0).await;
            assert_eq!(first.requested.len(), 1, "the first event asks");
            let now = Utc.timestamp_millis_opt(t0).unwrap();
            assert!(
                store
                    .due_for_channel("discord", now, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "held while the context is fetched"
            );
            // Another event of the same build while it is fetched: it waits, nobody fetches twice.
            assert!(record(&store, t0 + 10).await.requested.is_empty());

            let context = Context {
                failed_stage: Some("compile".to_owned()),
                complete: true,
                ..Context::default()
            };
            let saved = store
                .save_context(JOB, BUILD, &context, ContextState::Done, &[], now)
                .await
                .unwrap();
            assert_eq!(
                saved,
                Saved {
                    released: 2,
                    edits: 0
                }
            );
            let due = store.due_for_channel("discord", now, 10).await.unwrap();
            assert_eq!(due.len(), 2);
            assert_eq!(due[0].context.as_ref(), Some(&context));

            // Later events of the build find it stored: no fetch, no wait.
            let later = record(&store, t0 + 20).await;
            assert!(later.requested.is_empty());
            let job = JobId::parse(JOB).unwrap();
            assert_eq!(
                store.last_failure_context(&job).await.unwrap(),
                Some(context)
            );
        }
    }

    #[tokio::test]
    async fn a_fetch_that_never_finished_is_asked_again_after_ten_minutes() {
        for backend in crate::store::testing::backends(
            "a_fetch_that_never_finished_is_asked_again_after_ten_minutes",
        )
        .await
        {
            let store = backend.store.clone();
            let t0 = 1_800_000_000_000;
            assert_eq!(record(&store, t0).await.requested.len(), 1);
            assert!(record(&store, t0 + 60_000).await.requested.is_empty());
            assert_eq!(
                record(&store, t0 + STALE_PENDING_MS + 1)
                    .await
                    .requested
                    .len(),
                1
            );
            // The holds run out by themselves: nothing waits past its hold.
            let after = Utc.timestamp_millis_opt(t0 + 3000).unwrap();
            assert_eq!(
                store
                    .due_for_channel("discord", after, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            assert_eq!(store.release_context_holds(after).await.unwrap(), 2);
        }
    }
}
