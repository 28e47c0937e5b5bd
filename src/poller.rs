//! The poller: one cycle asks CodeArts about every watched job, runs the detector against the
//! stored snapshot, and records the outcome; the scheduler runs cycles on a cron schedule and
//! never lets two overlap.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::app::App;
use crate::codearts::{self, JobId};
use crate::detect::{self, Detection, Observation, Snapshot};
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

/// What a worker counted.
#[derive(Default)]
struct Tally {
    ok: usize,
    not_found: usize,
    forbidden: usize,
    failed: BTreeMap<&'static str, usize>,
}

/// An observation on its way to the writer.
struct Pending {
    job: JobId,
    detection: Detection,
    routes: Vec<Vec<String>>,
    suppressed: Vec<Option<String>>,
    now: chrono::DateTime<Utc>,
}

/// The last snapshot of every job, kept in memory so a cycle does not re-read and re-parse
/// them all from SQLite. Loaded from the database at the first cycle; updated only after a
/// write committed, so it never runs ahead of the database.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    map: std::sync::Mutex<Option<HashMap<String, Arc<Snapshot>>>>,
}

impl SnapshotCache {
    pub(crate) async fn ensure_loaded(&self, store: &store::Store) -> Result<(), store::Error> {
        if self.map.lock().is_ok_and(|m| m.is_some()) {
            return Ok(());
        }
        let loaded = store.snapshots().await?;
        if let Ok(mut map) = self.map.lock()
            && map.is_none()
        {
            *map = Some(loaded.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
        }
        Ok(())
    }

    pub(crate) fn get(&self, job: &JobId) -> Option<Arc<Snapshot>> {
        self.map.lock().ok()?.as_ref()?.get(job.as_str()).cloned()
    }

    fn put(&self, job: &JobId, snapshot: Snapshot) {
        if let Ok(mut map) = self.map.lock()
            && let Some(map) = map.as_mut()
        {
            map.insert(job.as_str().to_owned(), Arc::new(snapshot));
        }
    }
}

/// Most observations one transaction carries.
const WRITE_BATCH: usize = 256;

/// Runs one poll cycle over every watched job (reading subscribed projects' job lists first
/// when that is due: [`crate::discover`]). Fails only when the store fails; API failures
/// are counted in the report.
///
/// `poll.concurrency` workers take jobs from a shared list (so memory does not grow with the
/// number of jobs), run the detector, and hand what must be stored to one writer, which
/// commits whatever has queued up in a single transaction.
pub async fn run_cycle(app: &App) -> Result<CycleReport, store::Error> {
    let started = Instant::now();
    crate::discover::refresh_if_due(app).await?;
    crate::silence::sweep(app, Utc::now()).await?;
    let jobs = Arc::new(app.store.watched_jobs().await?);
    app.snapshots.ensure_loaded(&app.store).await?;
    let (to_writer, from_workers) = tokio::sync::mpsc::channel::<Pending>(WRITE_BATCH * 4);
    let writer = tokio::spawn(write_loop(app.clone(), from_workers));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..app.config.poll.concurrency.clamp(1, jobs.len().max(1)) {
        let (app, jobs, next, to_writer) = (
            app.clone(),
            Arc::clone(&jobs),
            Arc::clone(&next),
            to_writer.clone(),
        );
        workers.spawn(async move { work(&app, &jobs, &next, &to_writer).await });
    }
    drop(to_writer);
    let mut report = CycleReport {
        jobs: jobs.len(),
        ..CycleReport::default()
    };
    while let Some(joined) = workers.join_next().await {
        let Ok(tally) = joined else {
            continue; // a panicking worker is a bug; the runtime has reported it
        };
        report.ok += tally.ok;
        report.not_found += tally.not_found;
        report.forbidden += tally.forbidden;
        for (kind, n) in tally.failed {
            *report.failed.entry(kind).or_default() += n;
        }
    }
    let written = writer.await.unwrap_or_else(|_| {
        Err(store::Error::Corrupt {
            table: "-",
            detail: "the writer task panicked".to_owned(),
        })
    });
    report.duration = started.elapsed();
    let recorded = written?;
    report.events = recorded.events;
    report.deliveries = recorded.deliveries;
    Ok(report)
}

/// One worker: polls jobs from the shared list until it is exhausted.
async fn work(
    app: &App,
    jobs: &[WatchedJob],
    next: &AtomicUsize,
    to_writer: &tokio::sync::mpsc::Sender<Pending>,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else {
            return tally;
        };
        app.limiter.acquire().await;
        let polled = poll_one(app, job.clone()).await;
        match (&polled.observation, &polled.error) {
            (Observation::Found(_), _) => tally.ok += 1,
            (Observation::NotFound, _) => tally.not_found += 1,
            (Observation::Forbidden, _) => tally.forbidden += 1,
            (Observation::Unavailable, error) => {
                let kind = error.as_ref().map_or("unknown", codearts::Error::kind);
                *tally.failed.entry(kind).or_default() += 1;
            }
        }
        match &polled.error {
            Some(codearts::Error::RateLimited { retry_after, .. }) => {
                let observed = jobs.len() as f64 / app.health.interval.as_secs_f64().max(1.0);
                app.limiter.throttled(*retry_after, observed);
                warn!(rps = ?app.limiter.current_rps(), "CodeArts throttled us: slowing down");
            }
            Some(codearts::Error::NotFound(_) | codearts::Error::Forbidden(_)) | None => {
                app.limiter.succeeded();
            }
            Some(_) => {}
        }
        let previous = app.snapshots.get(&polled.job.job_id);
        let now = Utc::now();
        let detection = detect::detect(
            &polled.job.job_id,
            previous.as_deref(),
            &polled.observation,
            &app.rules,
            now,
        );
        if detection.next.is_none() && detection.events.is_empty() {
            continue;
        }
        for event in &detection.events {
            app.metrics.inc(
                "codearts_bot_events_total",
                &[("kind", event.kind.as_str())],
            );
            info!(job_id = %event.job_id, event = %event.kind, summary = %event.summary, "job event");
        }
        let flaky = detection
            .next
            .as_ref()
            .or(previous.as_deref())
            .is_some_and(|s| s.is_flaky(&app.rules));
        let (routes, suppressed) = detection
            .events
            .iter()
            .map(|event| app.route_now(&polled.job, event, now, flaky))
            .unzip();
        let pending = Pending {
            job: polled.job.job_id,
            detection,
            routes,
            suppressed,
            now,
        };
        if to_writer.send(pending).await.is_err() {
            return tally; // the writer failed; the cycle reports its error
        }
    }
}

/// The writer: commits observations in batches until the workers are done. After a failed
/// write it keeps draining (so workers never block) but stores nothing more: the unrecorded
/// observations are made again next cycle, and the cache still matches the database.
async fn write_loop(
    app: App,
    mut from_workers: tokio::sync::mpsc::Receiver<Pending>,
) -> Result<store::Recorded, store::Error> {
    let mut total = store::Recorded::default();
    let mut failure = None;
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while from_workers.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        if failure.is_none() {
            let observed: Vec<store::Observed<'_>> = batch
                .iter()
                .map(|p| store::Observed {
                    job: &p.job,
                    detection: &p.detection,
                    routes: &p.routes,
                    suppressed: &p.suppressed,
                    now: p.now,
                })
                .collect();
            match app.store.record_batch(&observed).await {
                Ok(recorded) => {
                    total.events += recorded.events;
                    total.deliveries += recorded.deliveries;
                    for p in &batch {
                        if let Some(next) = &p.detection.next {
                            app.snapshots.put(&p.job, next.clone());
                        }
                    }
                    if recorded.deliveries > 0 {
                        app.dispatch_wake.notify_one();
                    }
                }
                Err(e) => {
                    warn!(error = %e, observations = batch.len(), "could not record observations; they will be made again next cycle");
                    failure = Some(e);
                }
            }
        }
        batch.clear();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

async fn poll_one(app: &App, job: WatchedJob) -> Polled {
    let span = info_span!("poll", job_id = %job.job_id);
    let started = Instant::now();
    let result = app.client.job_info(&job.job_id).instrument(span).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    app.metrics.poll(outcome, started.elapsed());
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
        if let Ok(report) = &result {
            after_cycle(app, report).await;
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
pub async fn after_cycle(app: &App, report: &CycleReport) {
    if let Err(e) = track_source(app, report).await {
        warn!(error = %e, "cannot record whether CodeArts could be reached");
    }
    // While CodeArts cannot be seen, "still broken" would be a guess.
    if report.source_unreachable() {
        return;
    }
    if let Err(e) = crate::incident::send_reminders(app, Utc::now()).await {
        warn!(error = %e, "cannot queue incident reminders");
    }
    if let Err(e) = crate::flaky::send_digests(app, Utc::now()).await {
        warn!(error = %e, "cannot queue the flaky-jobs digest");
    }
}

/// Advances the "monitoring blind" state with this cycle ([`crate::blind`]), sending
/// `source_unreachable` / `source_recovered` to the channels with `source_alerts = true`.
pub async fn track_source(app: &App, report: &CycleReport) -> Result<(), store::Error> {
    use crate::blind::{self, CycleOutcome};
    let outcome = if report.jobs == 0 {
        CycleOutcome::Idle
    } else if report.source_unreachable() {
        let kinds: Vec<String> = report
            .failed
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        CycleOutcome::Unreachable {
            cause: kinds.join(", "),
        }
    } else {
        CycleOutcome::Reached
    };
    let state = app.store.source_state().await?;
    let now = Utc::now();
    let (next, event) = blind::step(&state, &outcome, app.config.rules.blind_after, now);
    if next == state && event.is_none() {
        return Ok(());
    }
    let channels: Vec<String> = match &event {
        Some(event) => app.route_source(event),
        None => Vec::new(),
    };
    let recorded = app
        .store
        .record_source(&next, event.as_ref(), &channels)
        .await?;
    if let Some(event) = &event {
        app.metrics.inc(
            "codearts_bot_events_total",
            &[("kind", event.kind.as_str())],
        );
        warn!(event = %event.kind, summary = %event.summary, channels = channels.len(), "source event");
    }
    if recorded.deliveries > 0 {
        app.dispatch_wake.notify_one();
    }
    Ok(())
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
