//! The scheduler: runs poll cycles on the cron schedule (never two at once), logs each
//! cycle's report, feeds `/readyz` and the metrics, and runs what follows every cycle.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::engine::poller::{CycleReport, run_cycle};
use crate::engine::{Ctx, digests, reminders, source};
use crate::store;

/// Runs cycles on the configured cron schedule until `shutdown` resolves.
///
/// tokio-cron-scheduler does not stop runs from overlapping, so a tick that finds the previous
/// cycle still running is skipped and logged.
pub async fn run_scheduled(
    ctx: Ctx,
    first_cycle_now: bool,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio_cron_scheduler::{Job, JobScheduler};

    let running = Arc::new(AtomicBool::new(false));
    let mut scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let schedule = ctx.config.poll.schedule.clone();
    let job = {
        let ctx = ctx.clone();
        let running = Arc::clone(&running);
        Job::new_async(schedule.as_str(), move |_id, _lock| {
            Box::pin(guarded_cycle(ctx.clone(), Arc::clone(&running)))
        })
        .with_context(|| format!("poll.schedule {schedule:?} cannot be scheduled"))?
    };
    if first_cycle_now {
        // A replica taking over from another: the jobs may not have been polled for a lease
        // and more, so the first cycle runs now rather than at the next tick.
        tokio::spawn(guarded_cycle(ctx.clone(), Arc::clone(&running)));
    }
    scheduler
        .add(job)
        .await
        .context("cannot add the poll job")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    info!(schedule = %ctx.config.poll.schedule, "poller started");
    shutdown.await;
    scheduler
        .shutdown()
        .await
        .context("cannot stop the scheduler")?;
    // Let a cycle in flight finish its writes (bounded: each poll has its own timeout).
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.load(Ordering::Acquire) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// One cycle, unless the previous one is still running (then the tick is counted as
/// skipped): cycles never overlap.
async fn guarded_cycle(ctx: Ctx, running: Arc<AtomicBool>) {
    if running.swap(true, Ordering::AcqRel) {
        ctx.scheduler_stats.skipped.fetch_add(1, Ordering::Relaxed);
        ctx.metrics.inc("codearts_bot_cycle_skips_total", &[]);
        warn!(
            "poll cycle skipped: the previous cycle is still running (consider a longer poll.schedule or a higher poll.concurrency)"
        );
        return;
    }
    let _reset = ResetOnDrop(&running);
    cycle_and_log(&ctx).await;
    ctx.scheduler_stats.cycles.fetch_add(1, Ordering::Relaxed);
}

/// Runs one cycle and logs its report.
pub async fn cycle_and_log(ctx: &Ctx) -> Option<CycleReport> {
    let span = info_span!("cycle");
    async {
        let result = run_cycle(ctx).await;
        record_cycle(ctx, &result);
        if let Ok(report) = &result {
            after_cycle(ctx, report).await;
        }
        match result {
            Ok(report) => {
                let failed: HashMap<_, _> = report.failed.iter().collect();
                if report.source_unreachable() {
                    warn!(
                        jobs = report.jobs,
                        ?failed,
                        "CodeArts could not be reached for any job this cycle"
                    );
                } else {
                    debug!(?failed, "cycle failures");
                }
                info!(
                    jobs = report.jobs,
                    ok = report.ok,
                    listed = report.listed,
                    list_pages = report.list_pages,
                    not_found = report.not_found,
                    forbidden = report.forbidden,
                    failed = report.failed_total(),
                    events = report.events,
                    deliveries = report.deliveries,
                    ms = report.duration.as_millis() as u64,
                    "poll cycle done"
                );
                Some(report)
            }
            Err(e) => {
                warn!(error = %e, "poll cycle failed: the database could not be used");
                None
            }
        }
    }
    .instrument(span)
    .await
}

/// What follows every cycle, scheduled or `run --once`: the "monitoring blind" state, incident
/// reminders and the flaky-jobs digest. Failures are logged; the next cycle tries again.
pub async fn after_cycle(ctx: &Ctx, report: &CycleReport) {
    if let Err(e) = source::track_source(ctx, report).await {
        warn!(error = %e, "cannot record whether CodeArts could be reached");
    }
    // While CodeArts cannot be seen, "still broken" would be a guess.
    if report.source_unreachable() {
        return;
    }
    if let Err(e) = reminders::send_reminders(ctx, Utc::now()).await {
        warn!(error = %e, "cannot queue incident reminders");
    }
    if let Err(e) = digests::send_digests(ctx, Utc::now()).await {
        warn!(error = %e, "cannot queue the flaky-jobs digest");
    }
}

/// Feeds a cycle's outcome to the metrics and to `/readyz`.
fn record_cycle(ctx: &Ctx, result: &Result<CycleReport, store::Error>) {
    let outcome = match result {
        Ok(report) if report.source_unreachable() => {
            let kinds: Vec<String> = report
                .failed
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            ctx.health.cycle_failed(format!(
                "CodeArts could not be polled for any of the {} jobs ({})",
                report.jobs,
                kinds.join(", ")
            ));
            "source_unreachable"
        }
        Ok(_) => {
            let now = Utc::now();
            ctx.health.cycle_succeeded(now);
            ctx.metrics.set(
                "codearts_bot_last_cycle_success_timestamp_seconds",
                &[],
                now.timestamp_millis() as f64 / 1000.0,
            );
            "ok"
        }
        Err(e) => {
            ctx.health.cycle_failed(format!("the database failed: {e}"));
            "store_error"
        }
    };
    ctx.metrics
        .inc("codearts_bot_cycles_total", &[("result", outcome)]);
    if let Ok(report) = result {
        ctx.metrics
            .observe("codearts_bot_cycle_duration_seconds", &[], report.duration);
        ctx.metrics
            .set("codearts_bot_watched_jobs", &[], report.jobs as f64);
    }
}

struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
