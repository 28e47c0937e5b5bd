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
use tracing::{Instrument, info_span, warn};

use crate::codearts::{self, JobId};
use crate::domain::snapshot::Observation;
use crate::engine::observe::{Pending, Polled, Tally, WRITE_BATCH, observe, write_loop};
use crate::engine::{Ctx, cycle_lists};
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

/// Runs one poll cycle over every watched job (reading subscribed projects' job lists first
/// when that is due: [`crate::engine::discovery`]). Fails only when the store fails; API failures
/// are counted in the report.
///
/// `poll.concurrency` workers take jobs from a shared list (so memory does not grow with the
/// number of jobs), run the detector, and hand what must be stored to one writer, which
/// commits whatever has queued up in a single transaction.
pub async fn run_cycle(ctx: &Ctx) -> Result<CycleReport, store::Error> {
    if !ctx.lead.may_act() {
        // Another replica leads (docs/ha.md): it polls; this one would only alert twice.
        return Ok(CycleReport::default());
    }
    let started = Instant::now();
    // The first cycle of a process loads every stored snapshot (parsing each one's JSON: most
    // of a restart's work before the first request). It runs on its own task, on its own
    // connection, beside the discovery, the silences and the watch list (on another core when
    // there is one); whoever needs the snapshots first waits for this one load.
    let loading = (!ctx.snapshots.is_loaded()).then(|| {
        let (snapshots, store) = (Arc::clone(&ctx.snapshots), ctx.store.clone());
        tokio::spawn(async move { snapshots.ensure_loaded(&store).await })
    });
    ctx.context_fetches
        .new_cycle(ctx.config.context.max_per_cycle);
    crate::engine::discovery::refresh_if_due(ctx).await?;
    crate::engine::silences::sweep(ctx, Utc::now()).await?;
    let watched = ctx.store.watched_jobs_in_any_order().await?;
    if let Some(loading) = loading {
        loading.await.unwrap_or_else(|_| {
            Err(store::Error::Corrupt {
                table: "job_state",
                detail: "the task loading the snapshots panicked".to_owned(),
            })
        })?;
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let (to_writer, from_workers) = tokio::sync::mpsc::channel::<Pending>(WRITE_BATCH * 4);
    let writer = tokio::spawn(write_loop(ctx.clone(), from_workers));
    let listed = cycle_lists::read_lists(ctx, &watched, &to_writer).await;
    let mut report = CycleReport {
        jobs: watched.len(),
        list_pages: listed.pages,
        list_failed: listed.failed,
        ..CycleReport::default()
    };
    let mut tally = listed.tally;
    let unlisted: Vec<bool> = watched
        .iter()
        .map(|job| !listed.seen.contains(&job.job_id))
        .collect();
    drop(listed.seen);
    let mut ask: Vec<WatchedJob> = watched
        .into_iter()
        .zip(unlisted)
        .filter_map(|(job, unlisted)| unlisted.then_some(job))
        .collect();
    // Asked in id order, so their snapshots are written in key order: a first cycle writing
    // 100,000 new rows in the watch list's own order (random ids) spent twice as long in
    // SQLite's index (docs/benchmarks.md, "Start-up"). Usually few are left to ask.
    ask.sort_unstable_by(|a, b| a.job_id.as_str().cmp(b.job_id.as_str()));
    let ask = Arc::new(ask);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..ctx.config.poll.concurrency.clamp(1, ask.len().max(1)) {
        let (ctx, ask, next, to_writer) = (
            ctx.clone(),
            Arc::clone(&ask),
            Arc::clone(&next),
            to_writer.clone(),
        );
        workers.spawn(async move { work(&ctx, &ask, &next, &to_writer).await });
    }
    drop(to_writer);
    while let Some(joined) = workers.join_next().await {
        let Ok(worker) = joined else {
            continue; // a panicking worker is a bug; the runtime has reported it
        };
        tally.add(worker);
    }
    report.ok = tally.ok;
    report.listed = tally.listed;
    report.not_found = tally.not_found;
    report.forbidden = tally.forbidden;
    report.failed = tally.failed;
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

/// One worker: polls jobs from the shared list with ShowJobInfo until it is exhausted.
async fn work(
    ctx: &Ctx,
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
        ctx.limiter.acquire().await;
        let polled = poll_one(ctx, job).await;
        match &polled.error {
            Some(codearts::Error::RateLimited { retry_after, .. }) => {
                let observed = jobs.len() as f64 / ctx.health.interval.as_secs_f64().max(1.0);
                ctx.limiter.throttled(*retry_after, observed);
                warn!(rps = ?ctx.limiter.current_rps(), "CodeArts throttled us: slowing down");
            }
            Some(codearts::Error::NotFound(_) | codearts::Error::Forbidden(_)) | None => {
                ctx.limiter.succeeded();
            }
            Some(_) => {}
        }
        let previous = ctx.snapshots.get(&polled.job.job_id);
        if !observe(ctx, polled, previous, &mut tally, to_writer).await {
            return tally;
        }
    }
}

async fn poll_one<'w>(ctx: &Ctx, job: &'w WatchedJob) -> Polled<'w> {
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
