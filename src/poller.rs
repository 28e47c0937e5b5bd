//! The poller: one cycle asks CodeArts about every watched job, runs the detector against the
//! stored snapshot, and records the outcome; the scheduler runs cycles on a cron schedule and
//! never lets two overlap.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::app::App;
use crate::codearts::{self, JobId};
use crate::detect::{self, Observation, Snapshot};
use crate::store::{self, WatchedJob};

/// Counters of the scheduler, shared with whoever reports on it (logs, metrics, tests).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Cycles that ran to the end.
    pub cycles: AtomicU64,
    /// Ticks skipped because the previous cycle was still running.
    pub skipped: AtomicU64,
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub jobs: usize,
    /// Polls answered with the job's info.
    pub ok: usize,
    pub not_found: usize,
    pub forbidden: usize,
    /// Polls that failed for reasons that say nothing about the job, by error kind.
    pub failed: BTreeMap<&'static str, usize>,
    pub events: usize,
    pub deliveries: usize,
    pub duration: Duration,
}

impl CycleReport {
    pub fn failed_total(&self) -> usize {
        self.failed.values().sum()
    }

    /// Every poll failed: CodeArts could not be seen at all this cycle.
    pub fn source_unreachable(&self) -> bool {
        self.jobs > 0 && self.failed_total() == self.jobs
    }
}

/// The outcome of polling one job.
struct Polled {
    job: WatchedJob,
    observation: Observation,
    error: Option<codearts::Error>,
}

/// Runs one poll cycle over every watched job. Fails only when the store fails; API failures
/// are counted in the report.
pub async fn run_cycle(app: &App) -> Result<CycleReport, store::Error> {
    let started = Instant::now();
    let jobs = app.store.watched_jobs().await?;
    let snapshots = Arc::new(app.store.snapshots().await?);
    let mut report = CycleReport {
        jobs: jobs.len(),
        ..CycleReport::default()
    };
    let limit = Arc::new(Semaphore::new(app.config.poll.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for job in jobs {
        let app = app.clone();
        let limit = Arc::clone(&limit);
        let snapshots = Arc::clone(&snapshots);
        tasks.spawn(async move {
            let polled = {
                let _permit = limit.acquire_owned().await;
                poll_one(&app, job).await
            };
            let previous = snapshots.get(polled.job.job_id.as_str());
            let recorded = record(&app, &polled, previous).await;
            (polled, recorded)
        });
    }
    let mut store_error = None;
    while let Some(joined) = tasks.join_next().await {
        let Ok((polled, recorded)) = joined else {
            continue; // a panicking task is a bug; it has been reported by the runtime
        };
        match (&polled.observation, &polled.error) {
            (Observation::Found(_), _) => report.ok += 1,
            (Observation::NotFound, _) => report.not_found += 1,
            (Observation::Forbidden, _) => report.forbidden += 1,
            (Observation::Unavailable, Some(e)) => *report.failed.entry(e.kind()).or_default() += 1,
            (Observation::Unavailable, None) => *report.failed.entry("unknown").or_default() += 1,
        }
        match recorded {
            Ok(r) => {
                report.events += r.events;
                report.deliveries += r.deliveries;
            }
            Err(e) => {
                warn!(job_id = %polled.job.job_id, error = %e, "could not record the observation; it will be made again next cycle");
                store_error.get_or_insert(e);
            }
        }
    }
    report.duration = started.elapsed();
    match store_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn poll_one(app: &App, job: WatchedJob) -> Polled {
    let span = info_span!("poll", job_id = %job.job_id);
    let started = Instant::now();
    let result = app.client.job_info(&job.job_id).instrument(span).await;
    app.metrics
        .observe("codearts_bot_poll_duration_seconds", &[], started.elapsed());
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    app.metrics
        .inc("codearts_bot_polls_total", &[("outcome", outcome)]);
    let (observation, error) = match result {
        Ok(info) => (Observation::Found(info), None),
        Err(codearts::Error::NotFound(e)) => {
            (Observation::NotFound, Some(codearts::Error::NotFound(e)))
        }
        Err(codearts::Error::Forbidden(e)) => {
            (Observation::Forbidden, Some(codearts::Error::Forbidden(e)))
        }
        Err(e) => {
            warn!(
                job_id = %job.job_id,
                error = %e,
                kind = e.kind(),
                request_id = e.request_id().unwrap_or("-"),
                "poll failed; no job event is derived from a failed poll"
            );
            (Observation::Unavailable, Some(e))
        }
    };
    Polled {
        job,
        observation,
        error,
    }
}

async fn record(
    app: &App,
    polled: &Polled,
    previous: Option<&Snapshot>,
) -> Result<store::Recorded, store::Error> {
    let now = Utc::now();
    let detection = detect::detect(
        &polled.job.job_id,
        previous,
        &polled.observation,
        &app.rules,
        now,
    );
    for event in &detection.events {
        app.metrics.inc(
            "codearts_bot_events_total",
            &[("kind", event.kind.as_str())],
        );
        info!(job_id = %event.job_id, event = %event.kind, summary = %event.summary, "job event");
    }
    let routes: Vec<Vec<String>> = detection
        .events
        .iter()
        .map(|event| app.route(&polled.job, event))
        .collect();
    let recorded = app
        .store
        .record(&polled.job.job_id, &detection, &routes, now)
        .await?;
    if recorded.deliveries > 0 {
        app.dispatch_wake.notify_one();
    }
    Ok(recorded)
}

/// Polls one job once, outside the schedule (the `check` command and chat queries).
pub async fn query(app: &App, job: &JobId) -> Result<codearts::JobInfo, codearts::Error> {
    app.client.job_info(job).await
}

/// Runs cycles on the configured cron schedule until `shutdown` resolves.
///
/// tokio-cron-scheduler does not stop runs from overlapping, so a tick that finds the previous
/// cycle still running is skipped and logged.
pub async fn run_scheduled(
    app: App,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio_cron_scheduler::{Job, JobScheduler};

    let running = Arc::new(AtomicBool::new(false));
    let mut scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let schedule = app.config.poll.schedule.clone();
    let job = {
        let app = app.clone();
        let running = Arc::clone(&running);
        Job::new_async(schedule.as_str(), move |_id, _lock| {
            let app = app.clone();
            let running = Arc::clone(&running);
            Box::pin(async move {
                if running.swap(true, Ordering::AcqRel) {
                    app.scheduler_stats.skipped.fetch_add(1, Ordering::Relaxed);
                    app.metrics.inc("codearts_bot_cycle_skips_total", &[]);
                    warn!("poll cycle skipped: the previous cycle is still running (consider a longer poll.schedule or a higher poll.concurrency)");
                    return;
                }
                let _reset = ResetOnDrop(&running);
                cycle_and_log(&app).await;
                app.scheduler_stats.cycles.fetch_add(1, Ordering::Relaxed);
            })
        })
        .with_context(|| format!("poll.schedule {schedule:?} cannot be scheduled"))?
    };
    scheduler
        .add(job)
        .await
        .context("cannot add the poll job")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    info!(schedule = %app.config.poll.schedule, "poller started");
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

/// Runs one cycle and logs its report.
pub async fn cycle_and_log(app: &App) -> Option<CycleReport> {
    let span = info_span!("cycle");
    async {
        let result = run_cycle(app).await;
        record_cycle(app, &result);
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

/// Feeds a cycle's outcome to the metrics and to `/readyz`.
fn record_cycle(app: &App, result: &Result<CycleReport, store::Error>) {
    let outcome = match result {
        Ok(report) if report.source_unreachable() => {
            let kinds: Vec<String> = report
                .failed
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            app.health.cycle_failed(format!(
                "CodeArts could not be polled for any of the {} jobs ({})",
                report.jobs,
                kinds.join(", ")
            ));
            "source_unreachable"
        }
        Ok(_) => {
            let now = Utc::now();
            app.health.cycle_succeeded(now);
            app.metrics.set(
                "codearts_bot_last_cycle_success_timestamp_seconds",
                &[],
                now.timestamp_millis() as f64 / 1000.0,
            );
            "ok"
        }
        Err(e) => {
            app.health.cycle_failed(format!("the database failed: {e}"));
            "store_error"
        }
    };
    app.metrics
        .inc("codearts_bot_cycles_total", &[("result", outcome)]);
    if let Ok(report) = result {
        app.metrics
            .observe("codearts_bot_cycle_duration_seconds", &[], report.duration);
        app.metrics
            .set("codearts_bot_watched_jobs", &[], report.jobs as f64);
    }
}

struct ResetOnDrop<'a>(&'a AtomicBool);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
