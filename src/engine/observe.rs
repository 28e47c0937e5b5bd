//! What both halves of a cycle share (the job lists, [`crate::engine::cycle_lists`], and
//! the per-job polls, [`crate::engine::poller`]): an observation of a job is checked by the
//! detector against the job's snapshot, its events routed, and the result handed to the
//! cycle's one writer, which commits whatever has queued up in a single transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::mpsc::{Receiver, Sender};
use tracing::{info, warn};

use crate::codearts;
use crate::codearts::JobId;
use crate::domain::context::ContextKey;
use crate::domain::detect::{self, Detection};
use crate::domain::snapshot::{Observation, Snapshot};
use crate::engine::{Ctx, context, routing};
use crate::store::{self, WatchedJob};

/// Most observations one transaction carries.
pub const WRITE_BATCH: usize = 256;

/// One observation of a job, and the error behind it when the poll failed. The job is
/// borrowed from the cycle's watch list: most observations change nothing, and copying
/// the job for each of them was a measurable part of a 100,000-job cycle.
pub struct Polled<'w> {
    pub job: &'w WatchedJob,
    pub observation: Observation,
    pub error: Option<codearts::Error>,
}

/// What a worker or a list read counted.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: usize,
    /// Of `ok`, the jobs a list showed.
    pub listed: usize,
    pub not_found: usize,
    pub forbidden: usize,
    /// Polls that failed for reasons that say nothing about the job, by error kind.
    pub failed: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn count(&mut self, polled: &Polled<'_>) {
        match (&polled.observation, &polled.error) {
            (Observation::Found(_), _) => self.ok += 1,
            (Observation::NotFound, _) => self.not_found += 1,
            (Observation::Forbidden, _) => self.forbidden += 1,
            (Observation::Unavailable, error) => {
                let kind = error.as_ref().map_or("unknown", codearts::Error::kind);
                *self.failed.entry(kind).or_default() += 1;
            }
        }
    }

    pub fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.listed += other.listed;
        self.not_found += other.not_found;
        self.forbidden += other.forbidden;
        for (kind, n) in other.failed {
            *self.failed.entry(kind).or_default() += n;
        }
    }
}

/// An observation on its way to the writer.
pub struct Pending {
    job: JobId,
    detection: Detection,
    routes: Vec<Vec<String>>,
    suppressed: Vec<Option<String>>,
    contexts: Vec<Option<ContextKey>>,
    now: chrono::DateTime<Utc>,
}

/// Counts `polled`, runs the detector against `previous` (the job's snapshot, which the
/// caller has looked up: a list entry needs it before this, and each lookup unpacks a copy)
/// and sends what must be stored to the writer. `false` when the writer is gone (it failed;
/// the cycle reports its error).
pub async fn observe(
    ctx: &Ctx,
    polled: Polled<'_>,
    previous: Option<Arc<Snapshot>>,
    tally: &mut Tally,
    to_writer: &Sender<Pending>,
) -> bool {
    tally.count(&polled);
    let now = Utc::now();
    let detection = detect::detect_owned(
        &polled.job.job_id,
        previous.as_deref(),
        polled.observation,
        &ctx.rules,
        now,
    );
    if detection.next.is_none() && detection.events.is_empty() {
        return true;
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
    let (routes, suppressed): (Vec<Vec<String>>, Vec<Option<String>>) = detection
        .events
        .iter()
        .map(|event| ctx.route_now(polled.job, event, now, flaky))
        .unzip();
    let contexts = detection
        .events
        .iter()
        .zip(&routes)
        .map(|(event, channels)| context::key_for(ctx, event, !channels.is_empty()))
        .collect();
    let pending = Pending {
        job: polled.job.job_id.clone(),
        detection,
        routes,
        suppressed,
        contexts,
        now,
    };
    to_writer.send(pending).await.is_ok()
}

/// The writer: commits observations in batches until every sender is gone. After a failed
/// write it keeps draining (so senders never block) but stores nothing more: the unrecorded
/// observations are made again next cycle, and the cache still matches the database.
pub async fn write_loop(
    ctx: Ctx,
    mut from_workers: Receiver<Pending>,
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
                    contexts: &p.contexts,
                    hold_ms: i64::try_from(ctx.config.context.wait_ms).unwrap_or(i64::MAX),
                    now: p.now,
                })
                .collect();
            match routing::enqueue(&ctx, async |store| store.record_batch(&observed).await).await {
                Ok(mut recorded) => {
                    context::fetch_all(&ctx, std::mem::take(&mut recorded.requested));
                    total.add(recorded);
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
