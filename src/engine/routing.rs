//! Where an event goes, and how it is queued: the channels whose filters take it, minus what
//! silences and maintenance windows hold back; then one transaction records the event with a
//! delivery per channel ([`enqueue`]) and the dispatcher is woken.

use crate::config::ChannelConfig;
use crate::domain::event::Event;
use crate::engine::Ctx;
use crate::store::{self, Recorded, WatchedJob};

impl Ctx {
    /// The channels an event of `job` goes to: the job's channels (or all), keeping only the
    /// channels whose filters let it through (`events`, `min_severity`, `projects`).
    pub fn route(&self, job: &WatchedJob, event: &Event) -> Vec<String> {
        let project = event
            .current
            .as_ref()
            .or(event.previous.as_ref())
            .and_then(|info| info.project_id.as_deref());
        self.config
            .channels
            .iter()
            .filter(|c| {
                job.channels
                    .as_ref()
                    .is_none_or(|names| names.contains(&c.name))
            })
            .filter(|c| takes_kind(c, event))
            .filter(|c| c.takes_project(project))
            .map(|c| c.name.clone())
            .collect()
    }

    /// The channels a source event (`source_unreachable`, `source_recovered`) goes to: those
    /// that opted in with `source_alerts = true` and whose `events`/`min_severity` let it pass.
    pub fn route_source(&self, event: &Event) -> Vec<String> {
        self.config
            .channels
            .iter()
            .filter(|c| c.source_alerts)
            .filter(|c| takes_kind(c, event))
            .map(|c| c.name.clone())
            .collect()
    }

    /// [`Ctx::route`], then the silences and maintenance windows in force at `now`: a
    /// suppressed event goes nowhere, and the reason is stored with it. A flip of a `flaky`
    /// job skips the channels that take the daily digest instead.
    pub fn route_now(
        &self,
        job: &WatchedJob,
        event: &Event,
        now: chrono::DateTime<chrono::Utc>,
        flaky: bool,
    ) -> (Vec<String>, Option<String>) {
        let mut channels = self.route(job, event);
        if let Some(reason) = self.suppression(event, now) {
            return (Vec::new(), Some(reason));
        }
        if flaky && event.kind.is_flip() {
            let before = channels.len();
            channels.retain(|name| {
                !self
                    .config
                    .channels
                    .iter()
                    .any(|c| c.name == *name && c.flaky_digest)
            });
            if channels.is_empty() && before > 0 {
                return (channels, Some("flaky job: in the daily digest".to_owned()));
            }
        }
        (channels, None)
    }

    /// Why an event must not be sent right now, if it must not.
    pub fn suppression(&self, event: &Event, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        if let Some(window) = self.config.maintenance.iter().find(|w| w.contains(now)) {
            return Some(format!("maintenance window {}", window.name));
        }
        self.silences.suppressing(event, now)
    }
}

/// Whether a channel's `events` and `min_severity` let this event's kind through.
fn takes_kind(channel: &ChannelConfig, event: &Event) -> bool {
    channel
        .events
        .as_ref()
        .is_none_or(|kinds| kinds.iter().any(|k| k == event.kind.as_str()))
        && channel
            .min_severity
            .is_none_or(|min| event.kind.severity() >= min.severity())
}

/// Records what a service queued (its own transaction, through `write`) and wakes the
/// dispatcher when any delivery was queued: the one way an event reaches the outbox.
pub(crate) async fn enqueue<F>(ctx: &Ctx, write: F) -> store::Result<Recorded>
where
    F: AsyncFnOnce(&store::Store) -> store::Result<Recorded>,
{
    let recorded = write(&ctx.store).await?;
    if recorded.deliveries > 0 {
        ctx.dispatch_wake.notify_one();
    }
    Ok(recorded)
}
