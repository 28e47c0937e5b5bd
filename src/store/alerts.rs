//! Alert state beyond single events: silences, incidents with the message each channel shows
//! for them and the reminders about them, the flaky-jobs digest clock of each channel, and the
//! state of CodeArts as a whole (`source_state`).
//!
//! Incidents are opened, updated and closed by the observation write (`observations`), inside
//! its transaction; this file reads them and records what channels were told.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::db::{Result, Store, corrupt, counter, from_ms, to_ms};
use super::observations::{Recorded, insert_event, insert_event_with};
use crate::domain::event::Event;
use crate::domain::incident::Incident;
use crate::domain::silence::{Kind, Scope, Silence};
use crate::domain::source_state::SourceState;

/// A `silences` row as stored.
#[derive(sqlx::FromRow)]
struct SilenceRow {
    id: i64,
    kind: String,
    scope: String,
    target: String,
    created_by: String,
    reason: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<SilenceRow> for Silence {
    type Error = super::db::Error;

    fn try_from(row: SilenceRow) -> Result<Self> {
        Ok(Silence {
            id: row.id,
            kind: Kind::parse(&row.kind),
            scope: Scope::from_parts(&row.scope, &row.target).ok_or_else(|| {
                corrupt(
                    "silences",
                    format!("unknown scope {:?} {:?}", row.scope, row.target),
                )
            })?,
            created_by: row.created_by,
            reason: row.reason,
            created_at: from_ms(row.created_at),
            expires_at: from_ms(row.expires_at),
        })
    }
}

/// An open `incidents` row.
#[derive(sqlx::FromRow)]
struct OpenIncidentRow {
    id: i64,
    job_id: String,
    job_name: String,
    opened_at: i64,
    failed_builds: i64,
    last_status: Option<String>,
}

impl From<OpenIncidentRow> for Incident {
    fn from(row: OpenIncidentRow) -> Self {
        Incident {
            id: row.id,
            job_id: row.job_id,
            job_name: row.job_name,
            opened_at: from_ms(row.opened_at),
            closed_at: None,
            failed_builds: counter(row.failed_builds),
            last_status: row.last_status,
        }
    }
}

/// When one channel last heard about one incident (`incident_messages`).
#[derive(sqlx::FromRow)]
struct NoticeRow {
    incident_id: i64,
    channel: String,
    noticed_at: i64,
}

/// The single `source_state` row.
#[derive(sqlx::FromRow)]
struct SourceStateRow {
    failed_cycles: i64,
    blind_since: Option<i64>,
    alerted: i64,
    cause: Option<String>,
}

impl From<SourceStateRow> for SourceState {
    fn from(row: SourceStateRow) -> Self {
        SourceState {
            failed_cycles: counter(row.failed_cycles),
            blind_since: row.blind_since.map(from_ms),
            alerted: row.alerted != 0,
            cause: row.cause,
        }
    }
}

impl Store {
    /// Stores a new silence and returns it with its id.
    pub async fn add_silence(
        &self,
        kind: Kind,
        scope: &Scope,
        created_by: &str,
        reason: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Silence> {
        let mut tx = self.write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO silences (kind, scope, target, created_by, reason, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
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
        Ok(Silence {
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
    pub async fn open_silences(&self) -> Result<Vec<Silence>> {
        sqlx::query_as::<_, SilenceRow>(
            "SELECT id, kind, scope, target, created_by, reason, created_at, expires_at
             FROM silences WHERE ended_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Silence::try_from)
        .collect()
    }

    /// Ends a silence; `false` when it had already ended (or never existed).
    pub async fn end_silence(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.write().await?;
        let done =
            sqlx::query("UPDATE silences SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
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
        let rows = sqlx::query_as::<_, OpenIncidentRow>(
            "SELECT id, job_id, job_name, opened_at, failed_builds, last_status
             FROM incidents WHERE closed_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut noticed: HashMap<i64, HashMap<String, DateTime<Utc>>> = HashMap::new();
        for row in sqlx::query_as::<_, NoticeRow>(
            "SELECT m.incident_id, m.channel, m.noticed_at
             FROM incident_messages m JOIN incidents i ON i.id = m.incident_id
             WHERE i.closed_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?
        {
            noticed
                .entry(row.incident_id)
                .or_default()
                .insert(row.channel, from_ms(row.noticed_at));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let notices = noticed.remove(&row.id).unwrap_or_default();
                (Incident::from(row), notices)
            })
            .collect())
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
             VALUES ($1, $2, NULL, $3)
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
            requested: Vec::new(),
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
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (incident_id, channel) DO UPDATE SET
                 message_id = COALESCE(excluded.message_id, incident_messages.message_id),
                 noticed_at = CASE WHEN excluded.noticed_at > incident_messages.noticed_at
                                   THEN excluded.noticed_at ELSE incident_messages.noticed_at END",
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

    /// When `channel` last got the flaky-jobs digest; starts the clock (and returns `None`) the
    /// first time.
    pub async fn flaky_digest_sent_at(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let sent: Option<i64> =
            sqlx::query_scalar("SELECT sent_at FROM flaky_digests WHERE channel = $1")
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
            "INSERT INTO flaky_digests (channel, sent_at) VALUES ($1, $2)
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
            requested: Vec::new(),
        })
    }

    /// Whether CodeArts as a whole could be seen lately ([`crate::domain::source_state`]).
    pub async fn source_state(&self) -> Result<SourceState> {
        let row = sqlx::query_as::<_, SourceStateRow>(
            "SELECT failed_cycles, blind_since, alerted, cause FROM source_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(SourceState::from).unwrap_or_default())
    }

    /// Stores the new source state and, in the same transaction, its event (if any) with one
    /// delivery per channel.
    pub async fn record_source(
        &self,
        state: &SourceState,
        event: Option<&Event>,
        channels: &[String],
    ) -> Result<Recorded> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO source_state (id, failed_cycles, blind_since, alerted, cause)
             VALUES (1, $1, $2, $3, $4)
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
}
