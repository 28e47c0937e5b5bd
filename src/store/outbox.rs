//! The delivery outbox (`deliveries`): what the dispatcher should send to each channel and
//! when, how each attempt ended, and the counts and listings operators read.
//!
//! Deliveries are queued by the event insert in `observations`, in the transaction that stores
//! their event; this file reads and settles them.

use chrono::{DateTime, Utc};

use super::contexts::parse_context;
use super::db::{Result, Store, attempts, corrupt, count, counter, from_ms, to_ms};
use super::observations::EventRow;
use crate::domain::context::Context;
use crate::domain::event::Event;
use crate::domain::incident::Incident;

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
    /// Why the event happened, when the bot knows (not while it is being fetched).
    pub context: Option<Context>,
    /// What the delivery is for.
    pub purpose: Purpose,
}

/// What a delivery is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The event's message.
    Post,
    /// An edit of the incident's message, adding a context that arrived after the event's
    /// message went out. Never posted as a message of its own.
    ContextEdit,
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

/// A [`PendingHead`] as stored.
#[derive(sqlx::FromRow)]
struct PendingHeadRow {
    channel: String,
    created_at: i64,
    next_attempt_at: i64,
    attempts: i64,
}

impl From<PendingHeadRow> for PendingHead {
    fn from(row: PendingHeadRow) -> Self {
        PendingHead {
            channel: row.channel,
            created_at: from_ms(row.created_at),
            next_attempt_at: from_ms(row.next_attempt_at),
            attempts: attempts(row.attempts),
        }
    }
}

/// A pending delivery joined with its event and, through the event, its incident and the
/// incident's message on the delivery's channel.
#[derive(sqlx::FromRow)]
struct DueRow {
    id: String,
    channel: String,
    attempts: i64,
    created_at: i64,
    next_attempt_at: i64,
    #[sqlx(flatten)]
    event: EventRow,
    #[sqlx(flatten)]
    incident: DueIncidentRow,
    purpose: String,
    context_state: Option<String>,
    context: Option<String>,
}

/// The incident columns of [`DueRow`]: all NULL when the event belongs to no incident (they
/// come from LEFT JOINs).
#[derive(sqlx::FromRow)]
struct DueIncidentRow {
    incident_id: Option<i64>,
    incident_opened_at: Option<i64>,
    incident_closed_at: Option<i64>,
    incident_failed_builds: Option<i64>,
    incident_last_status: Option<String>,
    incident_message_id: Option<String>,
}

impl DueIncidentRow {
    /// The incident, named after the event's job (the event carries its current name).
    fn into_incident(self, event: &Event) -> Result<Option<(Incident, Option<String>)>> {
        let Some(id) = self.incident_id else {
            return Ok(None);
        };
        // Both are NOT NULL in `incidents`: missing only if the row was damaged.
        let missing = |column: &str| corrupt("incidents", format!("incident {id}: no {column}"));
        let incident = Incident {
            id,
            job_id: event.job_id.clone(),
            job_name: event.job_name.clone(),
            opened_at: from_ms(
                self.incident_opened_at
                    .ok_or_else(|| missing("opened_at"))?,
            ),
            closed_at: self.incident_closed_at.map(from_ms),
            failed_builds: counter(
                self.incident_failed_builds
                    .ok_or_else(|| missing("failed_builds"))?,
            ),
            last_status: self.incident_last_status,
        };
        Ok(Some((incident, self.incident_message_id)))
    }
}

/// One status's delivery count.
#[derive(sqlx::FromRow)]
struct StatusCountRow {
    status: String,
    n: i64,
}

/// The pending deliveries' count and oldest creation time.
#[derive(sqlx::FromRow)]
struct PendingSummaryRow {
    n: i64,
    oldest: Option<i64>,
}

/// A [`DeliveryRow`] as stored.
#[derive(sqlx::FromRow)]
struct DeliveryListRow {
    id: String,
    channel: String,
    status: String,
    attempts: i64,
    created_at: i64,
    last_error: Option<String>,
    kind: String,
    job_id: String,
    summary: String,
}

impl From<DeliveryListRow> for DeliveryRow {
    fn from(row: DeliveryListRow) -> Self {
        DeliveryRow {
            id: row.id,
            channel: row.channel,
            status: row.status,
            attempts: attempts(row.attempts),
            kind: row.kind,
            job_id: row.job_id,
            summary: row.summary,
            created_at: from_ms(row.created_at),
            last_error: row.last_error,
        }
    }
}

impl Store {
    /// Each channel's oldest pending delivery: when it was queued, when it may next be tried,
    /// and how often it was tried.
    pub async fn pending_heads(&self) -> Result<Vec<PendingHead>> {
        let rows = sqlx::query_as::<_, PendingHeadRow>(
            "SELECT channel, created_at, next_attempt_at, attempts FROM deliveries
             WHERE seq IN (SELECT MIN(seq) FROM deliveries WHERE status = 'pending'
                           GROUP BY channel)",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(PendingHead::from).collect())
    }

    /// Up to `limit` pending deliveries of one channel, oldest first, stopping at the first
    /// one not yet due (so a message never overtakes an older one).
    pub async fn due_for_channel(
        &self,
        channel: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueDelivery>> {
        let rows = sqlx::query_as::<_, DueRow>(
            "SELECT d.id, d.channel, d.attempts, d.created_at, d.next_attempt_at,
                    e.job_id, e.kind, e.job_name, e.detected_at, e.previous, e.current, e.summary,
                    i.id AS incident_id, i.opened_at AS incident_opened_at,
                    i.closed_at AS incident_closed_at, i.failed_builds AS incident_failed_builds,
                    i.last_status AS incident_last_status, m.message_id AS incident_message_id,
                    d.purpose, c.state AS context_state, c.context
             FROM deliveries d JOIN events e ON e.id = d.event_id
             LEFT JOIN contexts c ON c.job_id = e.job_id AND c.kind = e.context_kind
                                 AND c.key = e.context_key
             LEFT JOIN incidents i ON i.id = e.incident_id
             LEFT JOIN incident_messages m ON m.incident_id = e.incident_id
                                           AND m.channel = d.channel
             WHERE d.status = 'pending' AND d.channel = $1
             ORDER BY d.seq LIMIT $2",
        )
        .bind(channel)
        .bind(i64::try_from(limit.max(1)).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let now_ms = to_ms(now);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            if row.next_attempt_at > now_ms {
                break;
            }
            let event = row.event.into_event()?;
            let incident = row.incident.into_incident(&event)?;
            let context = match row.context_state.as_deref() {
                Some("pending") | None => None,
                Some(_) => parse_context(row.context)?.filter(|c| !c.is_empty()),
            };
            out.push(DueDelivery {
                id: row.id,
                channel: row.channel,
                attempts: attempts(row.attempts),
                created_at: from_ms(row.created_at),
                event,
                incident,
                context,
                purpose: if row.purpose == "context" {
                    Purpose::ContextEdit
                } else {
                    Purpose::Post
                },
            });
        }
        Ok(out)
    }

    /// How many of a channel's pending deliveries may be tried now.
    pub async fn due_count(&self, channel: &str, now: DateTime<Utc>) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries
             WHERE status = 'pending' AND channel = $1 AND next_attempt_at <= $2",
        )
        .bind(channel)
        .bind(to_ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(count(n))
    }

    /// Marks several deliveries with one outcome, in one transaction: the messages that carried
    /// them were accepted, refused or will be retried together.
    pub async fn settle_many(&self, ids: &[&str], outcome: Settle<'_>) -> Result<()> {
        let mut tx = self.write().await?;
        for id in ids {
            let query = match outcome {
                Settle::Sent(at) => sqlx::query(
                    "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $1,
                                           last_error = NULL
                     WHERE id = $2 AND status = 'pending'",
                )
                .bind(to_ms(at)),
                Settle::Retry { at, error } => sqlx::query(
                    "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1,
                                           last_error = $2
                     WHERE id = $3 AND status = 'pending'",
                )
                .bind(to_ms(at))
                .bind(error),
                Settle::Failed(error) => sqlx::query(
                    "UPDATE deliveries SET status = 'failed', attempts = attempts + 1,
                                           last_error = $1
                     WHERE id = $2 AND status = 'pending'",
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
        let rows = sqlx::query_as::<_, StatusCountRow>(
            "SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let n = count(row.n);
            match row.status.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                _ => counts.failed += n,
            }
        }
        Ok(counts)
    }

    /// How many deliveries wait, and since when.
    pub async fn outbox_pending_summary(&self) -> Result<PendingSummary> {
        let row = sqlx::query_as::<_, PendingSummaryRow>(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(PendingSummary {
            pending: count(row.n),
            oldest: row.oldest.map(from_ms),
        })
    }

    /// The most recent deliveries, newest first, optionally only those with `status`.
    pub async fn deliveries(&self, status: Option<&str>, limit: u32) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query_as::<_, DeliveryListRow>(
            "SELECT d.id, d.channel, d.status, d.attempts, d.created_at, d.last_error,
                    e.kind, e.job_id, e.summary
             FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE ($1 IS NULL OR d.status = $1)
             ORDER BY d.seq DESC LIMIT $2",
        )
        .bind(status)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(DeliveryRow::from).collect())
    }
}

#[cfg(test)]
mod tests {
    //! The row structs against a real database: one observation read back through every
    //! query that maps it, and the corruption errors for values that do not parse.

    use chrono::{TimeZone, Utc};

    use super::super::db::{Error, Store};
    use crate::codearts::{JobId, JobInfo};
    use crate::domain::detect::Detection;
    use crate::domain::event::{Event, EventKind};
    use crate::domain::snapshot::{Presence, Snapshot};

    const JOB: &str = "0123456789abcdef0123456789abcdef";

    async fn record_failure(store: &Store) {
        let now = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        let info = JobInfo {
            last_build_status: Some("failed".to_owned()),
            health_score: Some(40),
            ..JobInfo::default()
        };
        let detection = Detection {
            next: Some(Snapshot {
                info: Some(info.clone()),
                presence: Presence::Present,
                settled_status: Some("failed".to_owned()),
                missing_polls: 0,
                outcomes: "F".to_owned(),
            }),
            events: vec![Event {
                kind: EventKind::BuildFailed,
                job_id: JOB.to_owned(),
                job_name: "api".to_owned(),
                detected_at: now,
                previous: None,
                current: Some(info),
                summary: "api failed".to_owned(),
            }],
        };
        let job = JobId::parse(JOB).expect("job id");
        let recorded = store
            .record(&job, &detection, &[vec!["ops".to_owned()]], now)
            .await
            .expect("record");
        assert_eq!((recorded.events, recorded.deliveries), (1, 1));
    }

    #[tokio::test]
    async fn rows_read_back_into_domain_types() {
        for backend in crate::store::testing::backends("rows_read_back_into_domain_types").await {
            let store = backend.store.clone();
            record_failure(&store).await;
            let snapshots = store.snapshots().await.expect("snapshots");
            assert_eq!(snapshots[JOB].outcomes, "F");
            assert_eq!(snapshots[JOB].presence, Presence::Present);

            let due = store
                .due_for_channel("ops", Utc::now(), 10)
                .await
                .expect("due");
            assert_eq!(due.len(), 1);
            assert_eq!(due[0].event.kind, EventKind::BuildFailed);
            let (incident, message) = due[0].incident.clone().expect("an incident was opened");
            assert_eq!(
                (incident.job_name.as_str(), incident.failed_builds),
                ("api", 1)
            );
            assert!(incident.is_open() && message.is_none());

            let heads = store.pending_heads().await.expect("heads");
            assert_eq!((heads.len(), heads[0].attempts), (1, 0));
            assert_eq!(store.outbox_counts().await.expect("counts").pending, 1);
            assert_eq!(
                store
                    .outbox_pending_summary()
                    .await
                    .expect("summary")
                    .pending,
                1
            );
            assert_eq!(
                store.deliveries(None, 5).await.expect("list")[0].kind,
                "build_failed"
            );
            let open = store.open_incidents().await.expect("incidents");
            assert_eq!(open.len(), 1);
            let job = JobId::parse(JOB).expect("job id");
            assert_eq!(store.health_trend(&job, 5).await.expect("trend"), vec![40]);
            assert_eq!(store.events_for(&job, 5).await.expect("events").len(), 1);
        }
    }

    #[tokio::test]
    async fn unparsable_values_are_corrupt_rows() {
        for backend in crate::store::testing::backends("unparsable_values_are_corrupt_rows").await {
            let store = backend.store.clone();
            record_failure(&store).await;
            sqlx::query("UPDATE job_state SET presence = 'elsewhere'")
                .execute(&store.pool)
                .await
                .expect("update");
            assert!(matches!(
                store.snapshots().await,
                Err(Error::Corrupt {
                    table: "job_state",
                    ..
                })
            ));
            sqlx::query("UPDATE events SET kind = 'nonsense'")
                .execute(&store.pool)
                .await
                .expect("update");
            assert!(matches!(
                store.due_for_channel("ops", Utc::now(), 10).await,
                Err(Error::Corrupt {
                    table: "events",
                    ..
                })
            ));
        }
    }
}
