//! Failure context: after a cycle stores a `build_failed` or `build_still_failing` (or a
//! `job_disabled`, `job_not_found`), ask CodeArts why, in the background, and save the
//! answer so the held alert can go (docs/events.md, "Failure context").
//!
//! Never late, never expensive: an alert waits at most `context.wait_ms` (its deliveries are
//! held in the store, released when the context is saved or the wait runs out); at most
//! `context.max_per_cycle` events of a cycle ask; every call goes through the poll's rate
//! limiter and has the poll's timeout; a failing call leaves its part out and never fails the
//! cycle or the alert. A build asked about once is answered from the store ever after.

use chrono::{TimeZone, Utc};
use tracing::{debug, info, warn};

use crate::codearts::{self, JobId};
use crate::domain::context::{BuildAnswers, Context, ContextKey, ContextRequest};
use crate::domain::event::{Event, EventKind};
use crate::engine::Ctx;
use crate::store::ContextState;

/// Most recycle-bin pages read to find a vanished job (100 jobs each, searched by its name).
const RECYCLE_PAGES: u32 = 3;

/// The context an event of a cycle should show, if it should ask for one: a failure with a
/// known build time, a disable, a disappearance, while `context.enabled` and the cycle's
/// allowance last. Events that go to no channel ask for nothing (nobody waits for them).
pub fn key_for(ctx: &Ctx, event: &Event, routed: bool) -> Option<ContextKey> {
    if !ctx.config.context.enabled || !routed {
        return None;
    }
    let key = match event.kind {
        EventKind::BuildFailed | EventKind::BuildStillFailing => ContextKey::Build {
            build_time: event.current.as_ref()?.last_build_time?,
        },
        EventKind::JobDisabled | EventKind::JobNotFound => ContextKey::Why {
            at: event.detected_at.timestamp_millis(),
        },
        _ => return None,
    };
    ctx.context_fetches.take().then_some(key)
}

/// Starts a background fetch for each request.
pub fn fetch_all(ctx: &Ctx, requests: Vec<ContextRequest>) {
    for request in requests {
        let ctx2 = ctx.clone();
        ctx.context_fetches
            .spawn(async move { fetch_and_save(&ctx2, request).await });
    }
}

/// `run --once`, the demo and the tests: waits up to `context.wait_ms` for the fetches in
/// flight, then lets every held delivery go (the process is about to deliver and stop).
pub async fn settle(ctx: &Ctx) {
    ctx.context_fetches.wait(ctx.config.context.wait()).await;
    if let Err(e) = ctx.store.release_context_holds(Utc::now()).await {
        warn!(error = %e, "could not release the deliveries waiting for a context");
    }
}

async fn fetch_and_save(ctx: &Ctx, request: ContextRequest) {
    let Ok(job) = JobId::parse(&request.job_id) else {
        return;
    };
    let (context, state) = match request.key {
        ContextKey::Build { .. } => fetch_build(ctx, &job).await,
        ContextKey::Why { .. } => fetch_why(ctx, &job, &request.job_name, request.kind).await,
    };
    let outcome = match state {
        ContextState::Done => "done",
        ContextState::Partial => "partial",
        ContextState::Failed => "failed",
    };
    ctx.metrics
        .inc("codearts_bot_contexts_total", &[("outcome", outcome)]);
    let editing: Vec<String> = ctx
        .sinks
        .iter()
        .filter(|(_, sink)| sink.edits_messages())
        .map(|(name, _)| name.clone())
        .collect();
    match ctx
        .store
        .save_context(
            &request.job_id,
            request.key,
            &context,
            state,
            &editing,
            Utc::now(),
        )
        .await
    {
        Ok(saved) => {
            info!(job_id = %request.job_id, outcome, released = saved.released, edits = saved.edits, "failure context saved");
            if saved.released + saved.edits > 0 {
                ctx.dispatch_wake.notify_one();
            }
        }
        Err(e) => {
            warn!(job_id = %request.job_id, error = %e, "could not save the failure context; the alert goes without it")
        }
    }
}

/// One call through the poll's rate limiter; a failure is logged and becomes `None`.
async fn call<T>(
    ctx: &Ctx,
    what: &'static str,
    job: &JobId,
    call: impl Future<Output = Result<T, codearts::Error>>,
) -> Option<T> {
    ctx.limiter.acquire().await;
    match call.await {
        Ok(answer) => Some(answer),
        Err(e) => {
            debug!(job_id = %job, call = what, error = %e, kind = e.kind(), "a context call failed; that part is left out");
            None
        }
    }
}

/// The failed build's context: its number (ShowRunningStatus), then its record, runner,
/// log tail and tests together, then its stages (they need the record id). Six calls at
/// most.
async fn fetch_build(ctx: &Ctx, job: &JobId) -> (Context, ContextState) {
    let client = &ctx.client;
    let Some(status) = call(ctx, "running-status", job, client.running_status(job)).await else {
        return (Context::default(), ContextState::Failed);
    };
    // While a newer build runs, the failed one is the build before it.
    let running = status.is_running == Some(true);
    let Some(build_no) = status
        .last_build_no
        .map(|n| if running { n.saturating_sub(1) } else { n })
        .filter(|n| *n > 0)
    else {
        return (Context::default(), ContextState::Failed);
    };
    let lines = ctx.config.context.log_lines;
    let (record, info, tail, tests) = tokio::join!(
        call(ctx, "record-info", job, client.build_record(job, build_no)),
        call(
            ctx,
            "build-info-record",
            job,
            client.build_info(job, build_no)
        ),
        call(
            ctx,
            "real-time-log",
            job,
            client.log_tail(job, build_no, lines)
        ),
        call(
            ctx,
            "report-summary",
            job,
            client.test_summary(job, build_no)
        ),
    );
    let record_id = record
        .as_ref()
        .and_then(|r| r.build_record_id.clone())
        .filter(|id| !id.is_empty());
    let stages = match &record_id {
        Some(id) => call(ctx, "full-stages", job, client.build_stages(id)).await,
        None => None,
    };
    let all_answered =
        record.is_some() && info.is_some() && tail.is_some() && tests.is_some() && stages.is_some();
    let answers = BuildAnswers {
        build_no: Some(build_no),
        record,
        info,
        stages,
        tail,
        tests,
        all_answered,
    };
    let rules = &ctx.rules;
    let context = Context::from_build(&answers, &ctx.redactor, |s| rules.is_failure(s));
    let state = if all_answered {
        ContextState::Done
    } else {
        ContextState::Partial
    };
    (context, state)
}

/// Why a job was disabled (ShowDisable) or vanished (the recycle bin, ListRecyclingJob).
async fn fetch_why(
    ctx: &Ctx,
    job: &JobId,
    job_name: &str,
    kind: EventKind,
) -> (Context, ContextState) {
    let client = &ctx.client;
    let line = |text: String| ctx.redactor.line(&text);
    if kind == EventKind::JobDisabled {
        let Some(info) = call(ctx, "check-disable", job, client.disable_info(job)).await else {
            return (Context::default(), ContextState::Failed);
        };
        let mut why = "disabled".to_owned();
        if let Some(by) = info.by.as_deref().filter(|b| !b.trim().is_empty()) {
            why.push_str(&format!(" by {}", by.trim()));
        }
        if let Some(at) = info.at.and_then(when) {
            why.push_str(&format!(" at {at}"));
        }
        if let Some(reason) = info.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            why.push_str(&format!(": {}", reason.trim()));
        }
        return (Context::why(line(why), true), ContextState::Done);
    }
    // The bin is searched by the job's name (usually one page); the id decides.
    let search = Some(job_name).filter(|n| !n.trim().is_empty());
    for page in 1..=RECYCLE_PAGES {
        let listed = client.recycled_jobs_matching(search, page, 100);
        let Some(bin) = call(ctx, "recycling-jobs", job, listed).await else {
            return (Context::default(), ContextState::Failed);
        };
        if let Some(found) = bin
            .jobs
            .iter()
            .find(|j| j.job_id.as_deref() == Some(job.as_str()))
        {
            let mut why = "deleted: in the recycle bin".to_owned();
            if let Some(at) = found.deleted_at.and_then(when) {
                why.push_str(&format!(" since {at}"));
            }
            if let Some(creator) = found.creator_name.as_deref().filter(|c| !c.is_empty()) {
                why.push_str(&format!(" (created by {creator})"));
            }
            return (Context::why(line(why), true), ContextState::Done);
        }
        let seen = u64::from(page) * 100;
        if bin.jobs.len() < 100 || bin.total.is_some_and(|t| t <= seen) {
            break;
        }
    }
    let why = "not visible to the bot: not in the recycle bin (deleted for good, or the \
               credentials lost access)";
    (Context::why(why.to_owned(), true), ContextState::Done)
}

/// A Unix-ms time as cards show it.
fn when(ms: i64) -> Option<String> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}
