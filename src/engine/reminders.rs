//! Incident reminders: an open incident is repeated to each channel with
//! `remind_every_mins`, held by silences, acks and maintenance windows like any alert.

use chrono::{DateTime, Utc};

use crate::domain::event::{Event, EventKind};
use crate::engine::{Ctx, routing};
use crate::store;

/// Queues the reminders that are due: for every open incident, each channel that gets the
/// job's alerts and has `remind_every_mins`, when it last heard about the incident (or, if
/// never, since it opened) that long ago. Silences, acks and maintenance windows hold
/// reminders like any alert. Returns how many were queued.
pub async fn send_reminders(ctx: &Ctx, now: DateTime<Utc>) -> Result<usize, store::Error> {
    if ctx
        .config
        .channels
        .iter()
        .all(|c| c.remind_every_mins.is_none())
    {
        return Ok(0);
    }
    let watched = ctx.store.watched_jobs().await?;
    let mut queued = 0;
    for (incident, noticed) in ctx.store.open_incidents().await? {
        let Some(job) = watched
            .iter()
            .find(|w| w.job_id.as_str() == incident.job_id)
        else {
            continue; // no longer watched
        };
        let info = ctx.snapshots.get(&job.job_id).and_then(|s| s.info.clone());
        let event = Event {
            kind: EventKind::IncidentReminder,
            job_id: incident.job_id.clone(),
            job_name: incident.job_name.clone(),
            detected_at: now,
            previous: None,
            current: info,
            summary: format!(
                "Still broken: {} ({})",
                incident.job_name,
                incident.status_line(now)
            ),
        };
        if ctx.suppression(&event, now).is_some() {
            continue;
        }
        for channel in ctx.route(job, &event) {
            let Some(every) = ctx
                .config
                .channels
                .iter()
                .find(|c| c.name == channel)
                .and_then(|c| c.remind_every_mins)
            else {
                continue;
            };
            let last = noticed.get(&channel).copied().unwrap_or(incident.opened_at);
            if now - last >= chrono::Duration::minutes(i64::from(every)) {
                routing::enqueue(ctx, async |store| {
                    store
                        .record_reminder(incident.id, &event, &channel, now)
                        .await
                })
                .await?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}
