//! Whether the bot can see CodeArts: each cycle advances the "monitoring blind" state
//! ([`crate::domain::source_state`]) and queues `source_unreachable` / `source_recovered`.

use chrono::Utc;
use tracing::warn;

use crate::domain::source_state::{self, CycleOutcome};
use crate::engine::poller::CycleReport;
use crate::engine::{Ctx, routing};
use crate::store;

/// Advances the "monitoring blind" state with this cycle ([`crate::domain::source_state`]), sending
/// `source_unreachable` / `source_recovered` to the channels with `source_alerts = true`.
pub async fn track_source(ctx: &Ctx, report: &CycleReport) -> Result<(), store::Error> {
    let outcome = if report.jobs == 0 {
        CycleOutcome::Idle
    } else if report.source_unreachable() {
        // A failed list counts like the failed polls it caused: its jobs were then asked
        // one by one, and those failures are in `failed`.
        let kinds: Vec<String> = report
            .failed
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .chain(
                report
                    .list_failed
                    .iter()
                    .map(|(k, n)| format!("{k}: {n} job list(s)")),
            )
            .collect();
        CycleOutcome::Unreachable {
            cause: kinds.join(", "),
        }
    } else {
        CycleOutcome::Reached
    };
    let state = ctx.store.source_state().await?;
    let now = Utc::now();
    let (next, event) = source_state::step(&state, &outcome, ctx.config.rules.blind_after, now);
    if next == state && event.is_none() {
        return Ok(());
    }
    let channels: Vec<String> = match &event {
        Some(event) => ctx.route_source(event),
        None => Vec::new(),
    };
    routing::enqueue(ctx, async |store| {
        store.record_source(&next, event.as_ref(), &channels).await
    })
    .await?;
    if let Some(event) = &event {
        ctx.metrics.inc(
            "codearts_bot_events_total",
            &[("kind", event.kind.as_str())],
        );
        warn!(event = %event.kind, summary = %event.summary, channels = channels.len(), "source event");
    }
    Ok(())
}
