//! Flaky jobs: a job whose last `rules.flaky_window` builds flipped between failure and
//! success at least `rules.flaky_threshold` times. Its alerts say so (the detector adds
//! "flaky: N flips in the last M builds"); channels with `flaky_digest = true` get its flips as
//! one daily digest instead of one message per flip.

use chrono::{DateTime, Utc};

use crate::domain::event::{Event, EventKind};
use crate::domain::snapshot::Snapshot;
use crate::engine::{Ctx, routing};
use crate::store::WatchedJob;

/// How often a channel gets the digest.
pub const DIGEST_EVERY: chrono::Duration = chrono::Duration::hours(24);
/// Most jobs one digest lists by name.
const MAX_LISTED: usize = 20;

/// The job's snapshot when the job is flaky under the rules (the cache must be loaded): what
/// this daily digest and the scheduled digest (`engine::digest`) both list.
pub(crate) fn flaky_snapshot(ctx: &Ctx, job: &WatchedJob) -> Option<std::sync::Arc<Snapshot>> {
    ctx.snapshots
        .get(&job.job_id)
        .filter(|s| s.is_flaky(&ctx.rules))
}

/// Queues the digest to every `flaky_digest` channel whose last one is a day old, when any job
/// routed to it is flaky. The first call starts each channel's clock. Returns digests queued.
pub async fn send_digests(ctx: &Ctx, now: DateTime<Utc>) -> Result<usize, crate::store::Error> {
    let channels: Vec<&str> = ctx
        .config
        .channels
        .iter()
        .filter(|c| c.flaky_digest)
        .map(|c| c.name.as_str())
        .collect();
    if channels.is_empty() {
        return Ok(0);
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let watched = ctx.store.watched_jobs().await?;
    let mut queued = 0;
    for channel in channels {
        let Some(last) = ctx.store.flaky_digest_sent_at(channel, now).await? else {
            continue;
        };
        if now - last < DIGEST_EVERY {
            continue;
        }
        let mut lines = Vec::new();
        for job in &watched {
            let Some(snapshot) = flaky_snapshot(ctx, job) else {
                continue;
            };
            let probe = Event {
                kind: EventKind::FlakyDigest,
                job_id: job.job_id.to_string(),
                job_name: String::new(),
                detected_at: now,
                previous: None,
                current: snapshot.info.clone(),
                summary: String::new(),
            };
            if !ctx.route(job, &probe).iter().any(|c| c == channel) {
                continue;
            }
            let name = snapshot
                .info
                .as_ref()
                .map_or("(unnamed job)", |i| i.display_name())
                .to_owned();
            lines.push(format!(
                "{name}: {} flips in the last {} builds ({}), now {}",
                snapshot.flips(),
                snapshot.outcomes.len(),
                snapshot.outcomes,
                snapshot.settled_status.as_deref().unwrap_or("unknown")
            ));
        }
        let event = (!lines.is_empty()).then(|| {
            let more = lines.len().saturating_sub(MAX_LISTED);
            lines.truncate(MAX_LISTED);
            Event {
                kind: EventKind::FlakyDigest,
                job_id: String::new(),
                job_name: "Flaky jobs".to_owned(),
                detected_at: now,
                previous: None,
                current: None,
                summary: format!(
                    "{} flaky job(s) (F failed, S passed, oldest first): {}{}",
                    lines.len() + more,
                    lines.join("; "),
                    if more > 0 {
                        format!("; and {more} more")
                    } else {
                        String::new()
                    }
                ),
            }
        });
        routing::enqueue(ctx, async |store| {
            store.note_flaky_digest(channel, event.as_ref(), now).await
        })
        .await?;
        if event.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
}
