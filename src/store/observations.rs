//! Observations: the latest snapshot of each job (`job_state`) and its history
//! (`snapshot_history`), the events the detector found (`events`), and the deliveries each
//! event queues. One observation's snapshot, events and deliveries commit together or not at
//! all (docs/codearts.md, "Invariants the store keeps", rule 1); an event moves its job's
//! incident in the same transaction.
//!
//! The event insert lives here, not in `outbox`, because every writer of events (observations,
//! reminders, digests, the source state) goes through it; `alerts` and `outbox` build on this
//! file, and this file needs neither, so the store has no import circle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::bulk_read::{Col, read_chunks};
use super::contexts::claim_context;
use super::db::{
    Result, Store, Tx, corrupt, count, counter, from_json, from_ms, new_delivery_id, to_json, to_ms,
};
use crate::codearts::{JobId, JobInfo};
use crate::domain::context::{ContextKey, ContextRequest};
use crate::domain::detect::Detection;
use crate::domain::event::{Event, EventKind};
use crate::domain::incident;
use crate::domain::snapshot::{Presence, Snapshot};

/// What one recorded observation wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub events: usize,
    pub deliveries: usize,
    /// Contexts asked for for the first time (or again, after a fetch that never finished):
    /// the caller fetches them ([`Store::save_context`] stores the answer).
    pub requested: Vec<ContextRequest>,
}

impl Recorded {
    pub fn add(&mut self, other: Recorded) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.requested.extend(other.requested);
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
    /// `contexts[i]`: the context `detection.events[i]` shows, if it asks for one. Its
    /// deliveries wait up to `hold_ms` for a context that is not there yet.
    pub contexts: &'a [Option<ContextKey>],
    pub hold_ms: i64,
    pub now: DateTime<Utc>,
}

/// An `events` row as stored (the columns every event query selects; `outbox` flattens it
/// into its delivery rows).
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    kind: String,
    job_id: String,
    job_name: String,
    detected_at: i64,
    previous: Option<String>,
    current: Option<String>,
    summary: String,
}

impl EventRow {
    pub(super) fn into_event(self) -> Result<Event> {
        Ok(Event {
            kind: EventKind::parse(&self.kind)
                .ok_or_else(|| corrupt("events", format!("unknown kind {:?}", self.kind)))?,
            job_id: self.job_id,
            job_name: self.job_name,
            detected_at: from_ms(self.detected_at),
            previous: from_json("events", self.previous)?,
            current: from_json("events", self.current)?,
            summary: self.summary,
        })
    }
}

/// An event with why it was not sent, for [`Store::events_for`].
#[derive(sqlx::FromRow)]
struct LoggedEventRow {
    #[sqlx(flatten)]
    event: EventRow,
    suppressed: Option<String>,
}

impl Store {
    /// The latest snapshot of every job that has one, by job id, read in a few round trips
    /// ([`super::bulk_read`]; the stored `info` JSON is parsed in the same pass as the row).
    pub async fn snapshots(&self) -> Result<HashMap<String, Snapshot>> {
        let mut all = HashMap::new();
        self.each_snapshot(|job_id, snapshot| {
            all.insert(job_id, snapshot);
        })
        .await?;
        Ok(all)
    }

    /// Hands every stored snapshot to `each`, a chunk of rows at a time (at most one chunk is
    /// held in full), so a caller keeping a smaller form never holds them all as they are here.
    pub async fn each_snapshot(&self, mut each: impl FnMut(String, Snapshot)) -> Result<()> {
        type Row = (String, Option<JobInfo>, String, Option<String>, i64, String);
        let mut conn = self.pool.acquire().await?;
        read_chunks(
            &mut conn,
            self.dialect,
            "job_state",
            "job_id",
            &[
                Col::Text("job_id"),
                Col::Json("info"),
                Col::Text("presence"),
                Col::Text("settled_status"),
                Col::Int("missing_polls"),
                Col::Text("outcomes"),
            ],
            |rows: Vec<Row>| {
                for (job_id, info, presence, settled_status, missing_polls, outcomes) in rows {
                    let snapshot = Snapshot {
                        info,
                        presence: Presence::parse(&presence).ok_or_else(|| {
                            corrupt("job_state", format!("unknown presence {presence:?}"))
                        })?,
                        settled_status,
                        missing_polls: counter(missing_polls),
                        outcomes,
                    };
                    each(job_id, snapshot);
                }
                Ok(())
            },
        )
        .await
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
            contexts: &[],
            hold_ms: 0,
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
            recorded.add(write_observation(&mut tx, observed).await?);
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
            requested: Vec::new(),
        })
    }

    /// The last `n` events of a job, newest first, each with why it was not sent (if it was
    /// suppressed by a silence or a maintenance window).
    pub async fn events_for(&self, job: &JobId, n: u32) -> Result<Vec<(Event, Option<String>)>> {
        sqlx::query_as::<_, LoggedEventRow>(
            "SELECT kind, job_id, job_name, detected_at, previous, current, summary, suppressed
             FROM events WHERE job_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(job.as_str())
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|row| Ok((row.event.into_event()?, row.suppressed)))
        .collect()
    }

    /// The job's last `n` stored health scores, oldest first (from the snapshot history, which
    /// holds a row per change).
    pub async fn health_trend(&self, job: &JobId, n: u32) -> Result<Vec<i64>> {
        let rows: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT info FROM snapshot_history WHERE job_id = $1 AND info IS NOT NULL
             ORDER BY id DESC LIMIT $2",
        )
        .bind(job.as_str())
        .bind(i64::from(n))
        .fetch_all(&self.pool)
        .await?;
        // A history row that does not parse is skipped: a trend is a hint, not a record.
        let mut scores: Vec<i64> = rows
            .iter()
            .flatten()
            .filter_map(|raw| serde_json::from_str::<JobInfo>(raw).ok()?.health_score)
            .collect();
        scores.reverse();
        Ok(scores)
    }

    /// Number of stored events (all jobs).
    pub async fn event_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(count(n))
    }
}

/// Writes one observation inside the caller's transaction: the snapshot and its history row,
/// then each event (moving the job's incident) with its deliveries.
async fn write_observation(tx: &mut Tx, observed: &Observed<'_>) -> Result<Recorded> {
    let Observed {
        job,
        detection,
        routes,
        suppressed,
        contexts,
        hold_ms,
        now,
    } = *observed;
    let now_ms = to_ms(now);
    let mut recorded = Recorded::default();
    if let Some(next) = &detection.next {
        let info = next.info.as_ref().map(to_json);
        sqlx::query(
            "INSERT INTO job_state (job_id, info, presence, settled_status, observed_at,
                                    missing_polls, outcomes)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
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
             VALUES ($1, $2, $3, $4)",
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
        let context = contexts.get(i).copied().flatten();
        let mut release_at = now_ms;
        if let Some(key) = context {
            let claim = claim_context(tx, &event.job_id, key, now_ms).await?;
            if claim.wait {
                release_at = now_ms.saturating_add(hold_ms.max(0));
            }
            if claim.fetch {
                recorded.requested.push(ContextRequest {
                    job_id: event.job_id.clone(),
                    job_name: event.job_name.clone(),
                    key,
                    kind: event.kind,
                });
            }
        }
        let stored = NewEvent {
            suppressed,
            incident_id,
            context,
            release_at,
        };
        recorded.deliveries += insert_event_full(tx, event, channels, &stored, now_ms).await?;
        recorded.events += 1;
    }
    Ok(recorded)
}

/// Opens, updates or closes the job's incident for this event ([`incident::step`]); returns
/// the incident the event belongs to.
///
/// It sits with the observation write, not in `alerts`, because it must run inside the
/// observation's transaction and `alerts` already builds on this file.
async fn advance_incident(tx: &mut Tx, event: &Event, now_ms: i64) -> Result<Option<i64>> {
    let open: Option<i64> =
        sqlx::query_scalar("SELECT id FROM incidents WHERE job_id = $1 AND closed_at IS NULL")
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
                 VALUES ($1, $2, $3, 1, $4, $5) RETURNING id",
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
                "UPDATE incidents SET failed_builds = failed_builds + 1, last_status = $1,
                                      job_name = $2, updated_at = $3 WHERE id = $4",
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
                "UPDATE incidents SET closed_at = $1, last_status = $2, updated_at = $3 WHERE id = $4",
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
pub(super) async fn insert_event(
    tx: &mut Tx,
    event: &Event,
    channels: &[String],
    suppressed: Option<&str>,
    now_ms: i64,
) -> Result<usize> {
    insert_event_with(tx, event, channels, suppressed, None, now_ms).await
}

/// [`insert_event`] for an event that belongs to an incident.
pub(super) async fn insert_event_with(
    tx: &mut Tx,
    event: &Event,
    channels: &[String],
    suppressed: Option<&str>,
    incident_id: Option<i64>,
    now_ms: i64,
) -> Result<usize> {
    let stored = NewEvent {
        suppressed,
        incident_id,
        context: None,
        release_at: now_ms,
    };
    insert_event_full(tx, event, channels, &stored, now_ms).await
}

/// What an event row carries besides the event.
struct NewEvent<'a> {
    suppressed: Option<&'a str>,
    incident_id: Option<i64>,
    context: Option<ContextKey>,
    /// When its deliveries may first go (later than now while they wait for the context).
    release_at: i64,
}

async fn insert_event_full(
    tx: &mut Tx,
    event: &Event,
    channels: &[String],
    stored: &NewEvent<'_>,
    now_ms: i64,
) -> Result<usize> {
    let (context_kind, context_key) = stored.context.map(ContextKey::parts).unzip();
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO events (job_id, kind, job_name, detected_at, previous, current, summary,
                             suppressed, incident_id, context_kind, context_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&event.job_id)
    .bind(event.kind.as_str())
    .bind(&event.job_name)
    .bind(to_ms(event.detected_at))
    .bind(event.previous.as_ref().map(to_json))
    .bind(event.current.as_ref().map(to_json))
    .bind(&event.summary)
    .bind(stored.suppressed)
    .bind(stored.incident_id)
    .bind(context_kind)
    .bind(context_key)
    .fetch_one(&mut **tx)
    .await?;
    for channel in channels {
        // `seq` orders a channel's deliveries: the dispatcher sends them in this order.
        sqlx::query(
            "INSERT INTO deliveries (id, seq, event_id, channel, status, attempts,
                                     next_attempt_at, created_at)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries), $2, $3,
                     'pending', 0, $4, $5)",
        )
        .bind(new_delivery_id())
        .bind(event_id)
        .bind(channel)
        .bind(stored.release_at)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(channels.len())
}
