//! The dispatcher's storm path: a channel with more deliveries waiting than its
//! `storm_threshold` gets one summary message for all of them ([`crate::notify::storm`]).

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::{DispatchReport, Dispatcher};
use crate::domain::event::{Event, EventKind};
use crate::notify::error::SendError;
use crate::notify::outgoing::Outgoing;
use crate::notify::sink::Sink;
use crate::notify::storm::summarise;
use crate::store::{self, DueDelivery, Purpose, Settle};

/// Most deliveries one summary settles; a bigger storm gets another summary next pass.
const STORM_MAX: usize = 5_000;

impl Dispatcher {
    /// Sends one summary for the channel's due deliveries (in order, up to the first that is
    /// an edit, too old or a digest, which go their usual way) and settles them all by its
    /// outcome. The summary carries the first delivery's id, so a re-sent summary is
    /// recognisable.
    pub(super) async fn post_storm(
        &self,
        sink: &Sink,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, store::Error> {
        let due = self.store.due_for_channel(channel, now, STORM_MAX).await?;
        let max_age =
            chrono::Duration::seconds(i64::try_from(self.config.max_age_secs).unwrap_or(i64::MAX));
        let cut = due
            .iter()
            .position(|d| {
                d.purpose != Purpose::Post
                    || now - d.created_at > max_age
                    // A digest is a summary already: it goes out as itself.
                    || d.event.kind == EventKind::Digest
            })
            .unwrap_or(due.len());
        let storm: &[DueDelivery] = &due[..cut];
        let Some(first) = storm.first() else {
            return Ok(DispatchReport::default());
        };
        let events: Vec<&Event> = storm.iter().map(|d| &d.event).collect();
        let summary = summarise(&events, now);
        // The board filtered to the storm's jobs, so every one of them is a click away.
        let board = self.storm_board_link(storm, sink.link_max());
        let out = Outgoing {
            delivery_id: &first.id,
            event: &summary,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: board.as_deref(),
        };
        if !self.claim(channel, storm).await? {
            return Ok(DispatchReport::default());
        }
        let mut report = DispatchReport {
            messages: 1,
            ..DispatchReport::default()
        };
        match sink.send(&out).await {
            Ok(()) => {
                info!(%channel, deliveries = storm.len(), "storm summarised in one message");
                report.add(
                    self.settle(channel, storm, Settle::Sent(Utc::now()))
                        .await?,
                );
                // The channel heard about each incident (reminders count from now); a summary
                // is never an incident's own message, so none is edited later.
                for d in storm {
                    if let Some((incident, _)) = &d.incident {
                        self.store
                            .note_incident_message(incident.id, channel, None, Utc::now())
                            .await?;
                    }
                }
            }
            Err(SendError::Permanent { reason }) => {
                error!(%channel, %reason, deliveries = storm.len(), "the chat service refused the storm summary; not retrying (fix the channel config)");
                report.add(self.settle(channel, storm, Settle::Failed(&reason)).await?);
            }
            Err(SendError::Retry { reason, after }) => {
                report.add(self.retry_later(channel, storm, &reason, after).await?);
            }
        }
        Ok(report)
    }
}
