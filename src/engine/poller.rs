//! The poller: one cycle asks CodeArts about every watched job, runs the detector against the
//! stored snapshot, and records the outcome; the scheduler runs cycles on a cron schedule and
//! never lets two overlap.
//!
//! A cycle first reads the job lists `poll.mode` calls for ([`crate::engine::cycle_lists`]);
//! a job a list showed is compared from its entry, and every other watched job (no list
//! planned, its list failed, or absent from it) gets its own ShowJobInfo. Absence from a list
//! is therefore never an event by itself: only ShowJobInfo's 404/403 is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span, warn};

use crate::codearts::{self, JobId, JobInfo};
use crate::domain::detect::{self, Detection};
use crate::domain::list_poll::merge_listed;
use crate::domain::snapshot::Observation;
use crate::engine::{Ctx, cycle_lists, routing};
use crate::store::{self, WatchedJob};

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub jobs: usize,
    /// Jobs observed through a job list (counted in `ok` too).
    pub listed: usize,
    /// Job list pages read (ListProjectJobs, ListJob).
    pub list_pages: usize,
    /// Job lists that could not be read, by error kind (their jobs were asked one by one).
    pub list_failed: BTreeMap<&'static str, usize>,
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

/// One job's turn in a cycle: already shown by a list, or to be asked with ShowJobInfo.
enum Item {
    Listed(WatchedJob, Box<JobInfo>),
    Ask(WatchedJob),
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
    listed: usize,
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

/// Most observations one transaction carries.
const WRITE_BATCH: usize = 256;

/// Runs one poll cycle over every watched job (reading subscribed projects' job lists first
/// when that is due: [`crate::engine::discovery`]). Fails only when the store fails; API failures
/// are counted in the report.
///
/// `poll.concurrency` workers take jobs from a shared list (so memory does not grow with the
/// number of jobs), run the detector, and hand what must be stored to one writer, which
/// commits whatever has queued up in a single transaction.
pub async fn run_cycle(ctx: &Ctx) -> Result<CycleReport, store::Error> {
    let started = Instant::now();
    crate::engine::discovery::refresh_if_due(ctx).await?;
    crate::engine::silences::sweep(ctx, Utc::now()).await?;
    let watched = ctx.store.watched_jobs().await?;
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let mut listed = cycle_lists::read_lists(ctx, &watched).await;
    let jobs: Arc<Vec<Item>> = Arc::new(
        watched
            .into_iter()
            .map(|job| match listed.found.remove(&job.job_id) {
                Some(info) => Item::Listed(job, Box::new(info)),
                None => Item::Ask(job),
            })
            .collect(),
    );
    let (to_writer, from_workers) = tokio::sync::mpsc::channel::<Pending>(WRITE_BATCH * 4);
    let writer = tokio::spawn(write_loop(ctx.clone(), from_workers));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..ctx.config.poll.concurrency.clamp(1, jobs.len().max(1)) {
        let (ctx, jobs, next, to_writer) = (
            ctx.clone(),
            Arc::clone(&jobs),
            Arc::clone(&next),
            to_writer.clone(),
        );
        workers.spawn(async move { work(&ctx, &jobs, &next, &to_writer).await });
    }
    drop(to_writer);
    let mut report = CycleReport {
        jobs: jobs.len(),
        list_pages: listed.pages,
        list_failed: std::mem::take(&mut listed.failed),
        ..CycleReport::default()
    };
    while let Some(joined) = workers.join_next().await {
        let Ok(tally) = joined else {
            continue; // a panicking worker is a bug; the runtime has reported it
        };
        report.ok += tally.ok;
        report.listed += tally.listed;
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
    ctx: &Ctx,
    jobs: &[Item],
    next: &AtomicUsize,
    to_writer: &tokio::sync::mpsc::Sender<Pending>,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let polled = match jobs.get(i) {
            None => return tally,
            Some(Item::Listed(job, info)) => {
                tally.listed += 1;
                let previous = ctx.snapshots.get(&job.job_id);
                let before = previous.as_ref().and_then(|s| s.info.as_ref());
                Polled {
                    job: job.clone(),
                    observation: Observation::Found(merge_listed((**info).clone(), before)),
                    error: None,
                }
            }
            Some(Item::Ask(job)) => {
                ctx.limiter.acquire().await;
                poll_one(ctx, job.clone()).await
            }
        };
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
                let observed = jobs.len() as f64 / ctx.health.interval.as_secs_f64().max(1.0);
                ctx.limiter.throttled(*retry_after, observed);
                warn!(rps = ?ctx.limiter.current_rps(), "CodeArts throttled us: slowing down");
            }
            Some(codearts::Error::NotFound(_) | codearts::Error::Forbidden(_)) => {
                ctx.limiter.succeeded();
            }
            None if matches!(jobs.get(i), Some(Item::Ask(_))) => ctx.limiter.succeeded(),
            _ => {}
        }
        let previous = ctx.snapshots.get(&polled.job.job_id);
        let now = Utc::now();
        let detection = detect::detect(
            &polled.job.job_id,
            previous.as_deref(),
            &polled.observation,
            &ctx.rules,
            now,
        );
        if detection.next.is_none() && detection.events.is_empty() {
            continue;
        }
        for event in &detection.events {
            ctx.metrics.inc(
                "codearts_bot_events_total",
                &[("kind", event.kind.as_str())],
            );
            info!(job_id = %event.job_id, event = %event.kind, summary = %event.summary, "job event");
        }
        let flaky = detection
            .next
            .as_ref()
            .or(previous.as_deref())
            .is_some_and(|s| s.is_flaky(&ctx.rules));
        let (routes, suppressed) = detection
            .events
            .iter()
            .map(|event| ctx.route_now(&polled.job, event, now, flaky))
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
    ctx: Ctx,
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
            match routing::enqueue(&ctx, async |store| store.record_batch(&observed).await).await {
                Ok(recorded) => {
                    total.events += recorded.events;
                    total.deliveries += recorded.deliveries;
                    for p in &batch {
                        if let Some(next) = &p.detection.next {
                            ctx.snapshots.put(&p.job, next.clone());
                        }
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

async fn poll_one(ctx: &Ctx, job: WatchedJob) -> Polled {
    let span = info_span!("poll", job_id = %job.job_id);
    let started = Instant::now();
    let result = ctx.client.job_info(&job.job_id).instrument(span).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    ctx.metrics.poll(outcome, started.elapsed());
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
pub async fn query(ctx: &Ctx, job: &JobId) -> Result<codearts::JobInfo, codearts::Error> {
    ctx.client.job_info(job).await
}
