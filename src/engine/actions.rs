//! Acting on CodeArts from chat: re-run a job's last build (its commit and parameters, or the
//! branch head) and stop a running build (docs/actions.md).
//!
//! Exactly once: the action is recorded in the store before CodeArts is called and settled
//! after; a second request for the same target (two people, a double click) finds the first
//! and makes no call, and an action a crash left unsettled is never repeated.

use chrono::Utc;
use tracing::{info, warn};

use crate::codearts::{self, ExecuteRequest, JobId, JobInfo};
use crate::engine::Ctx;
use crate::store::{ActionRow, Begun, NewAction, Settled};

/// Who asks, and where.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// As stored and logged: `discord:<user id>`, `slack:<user id>`.
    pub label: &'a str,
    /// How answers name them (`@alice`).
    pub shown_as: &'a str,
    pub platform: &'a str,
    pub channel: Option<&'a str>,
}

/// Re-runs the job's last build: with its commit and parameters, or (`latest`) its parameters
/// on the branch head. `info` is the job's ShowJobInfo answer. `Ok` is what the channel is
/// told; `Err` why nothing was done.
pub async fn rerun(
    ctx: &Ctx,
    job: &JobId,
    info: &JobInfo,
    latest: bool,
    actor: Actor<'_>,
) -> Result<String, String> {
    let name = info.job_name.as_deref().unwrap_or(job.as_str());
    if info.is_execute == Some(false) {
        return refused(
            ctx,
            "rerun",
            format!(
                "The bot's CodeArts account may not run {name} (the job's execute permission is off): ask a project admin to grant it."
            ),
        );
    }
    let status = ask(ctx, job, ctx.client.running_status(job)).await?;
    let Some(build_no) = status.last_build_no else {
        return refused(ctx, "rerun", format!("{name} has no build to re-run yet."));
    };
    if status.is_running == Some(true) {
        // The running build may be the re-run someone already asked for: say so.
        if let Some(row) = rerun_that_started(ctx, job, build_no).await? {
            return Ok(already(ctx, &row, name));
        }
        return refused(
            ctx,
            "rerun",
            format!("Build #{build_no} of {name} is running now: wait for it, or /stop it first."),
        );
    }
    let started = match begin(ctx, "rerun", job, build_no, actor).await? {
        Begun::Started(id) => id,
        Begun::Already(row) => return Ok(already(ctx, &row, name)),
    };
    let request = match rerun_request(ctx, job, build_no, latest).await {
        Ok(request) => request,
        Err(why) => return settle_failed(ctx, "rerun", started, why, None).await,
    };
    ctx.limiter.acquire().await;
    match ctx.client.execute_job(job, &request).await {
        Ok(executed) => {
            let what = match (&request.commit_id, executed.build_no) {
                (Some(commit), Some(n)) => format!(
                    "build #{n} started from build #{build_no}'s commit {}",
                    commit.get(..8).unwrap_or(commit)
                ),
                (None, Some(n)) => format!("build #{n} started on the branch head"),
                (_, None) => "a build started".to_owned(),
            };
            let answer = format!("Re-run of {name} by {}: {what}.", actor.shown_as);
            settle(
                ctx,
                "rerun",
                started,
                Settled::Done {
                    new_build: executed.build_no,
                    answer: &answer,
                    request_id: None,
                },
            )
            .await?;
            info!(job_id = %job, who = actor.label, build = ?executed.build_no, "re-run started");
            Ok(answer)
        }
        Err(e) => {
            let why = action_failure(name, "run", &e);
            settle_failed(ctx, "rerun", started, why, e.request_id()).await
        }
    }
}

/// Stops the job's running build.
pub async fn stop(
    ctx: &Ctx,
    job: &JobId,
    info: &JobInfo,
    actor: Actor<'_>,
) -> Result<String, String> {
    let name = info.job_name.as_deref().unwrap_or(job.as_str());
    let status = ask(ctx, job, ctx.client.running_status(job)).await?;
    let (Some(build_no), Some(true)) = (status.last_build_no, status.is_running) else {
        return refused(ctx, "stop", format!("Nothing of {name} is running now."));
    };
    let started = match begin(ctx, "stop", job, build_no, actor).await? {
        Begun::Started(id) => id,
        Begun::Already(row) => return Ok(already(ctx, &row, name)),
    };
    ctx.limiter.acquire().await;
    match ctx.client.stop_build(job, build_no).await {
        Ok(()) => {
            let answer = format!("Build #{build_no} of {name} stopped by {}.", actor.shown_as);
            settle(
                ctx,
                "stop",
                started,
                Settled::Done {
                    new_build: None,
                    answer: &answer,
                    request_id: None,
                },
            )
            .await?;
            info!(job_id = %job, who = actor.label, build = build_no, "build stopped");
            Ok(answer)
        }
        Err(e) => {
            let why = action_failure(name, "stop", &e);
            settle_failed(ctx, "stop", started, why, e.request_id()).await
        }
    }
}

/// The recorded re-run that started build `build_no` of the job, if one did.
async fn rerun_that_started(
    ctx: &Ctx,
    job: &JobId,
    build_no: u32,
) -> Result<Option<ActionRow>, String> {
    let recent = ctx
        .store
        .actions(Some(job.as_str()), 20)
        .await
        .map_err(|e| database(&e))?;
    Ok(recent
        .into_iter()
        .find(|row| row.kind == "rerun" && row.new_build == Some(i64::from(build_no))))
}

/// What ExecuteJob runs: the build's parameters, and its commit unless `latest`. A re-run
/// never silently falls back to the job's defaults: when the build's parameters or commit
/// cannot be read, it is refused.
async fn rerun_request(
    ctx: &Ctx,
    job: &JobId,
    build_no: u32,
    latest: bool,
) -> Result<ExecuteRequest, String> {
    let cannot = |what: &str, e: &codearts::Error| {
        format!(
            "Could not read build #{build_no}'s {what} ({}): nothing was re-run; try again.",
            e.kind().replace('_', " ")
        )
    };
    ctx.limiter.acquire().await;
    let parameters = ctx
        .client
        .build_parameters(job, build_no)
        .await
        .map_err(|e| cannot("parameters", &e))?
        .into_iter()
        .filter_map(|p| Some((p.name?, p.value.unwrap_or_default())))
        .collect();
    let commit_id = if latest {
        None
    } else {
        ctx.limiter.acquire().await;
        let record = ctx
            .client
            .build_record(job, build_no)
            .await
            .map_err(|e| cannot("commit", &e))?;
        record.commit.filter(|c| !c.trim().is_empty())
    };
    Ok(ExecuteRequest {
        parameters,
        commit_id,
        tag: None,
    })
}

/// One CodeArts read before the action, through the limiter.
async fn ask<T>(
    ctx: &Ctx,
    job: &JobId,
    call: impl Future<Output = Result<T, codearts::Error>>,
) -> Result<T, String> {
    ctx.limiter.acquire().await;
    call.await.map_err(|e| {
        warn!(job_id = %job, error = %e, "an action could not read the job's state");
        format!(
            "Could not read the job's state from CodeArts ({}): nothing was done; try again.",
            e.kind().replace('_', " ")
        )
    })
}

async fn begin(
    ctx: &Ctx,
    kind: &str,
    job: &JobId,
    build_no: u32,
    actor: Actor<'_>,
) -> Result<Begun, String> {
    let action = NewAction {
        kind,
        job_id: job.as_str(),
        build_no: Some(build_no),
        who: actor.label,
        shown_as: actor.shown_as,
        platform: actor.platform,
        channel: actor.channel,
    };
    ctx.store
        .begin_action(&action, Utc::now())
        .await
        .map_err(|e| database(&e))
}

/// The answer to a second request for a target already acted on: who did it, and how it went.
fn already(ctx: &Ctx, row: &ActionRow, name: &str) -> String {
    count(ctx, &row.kind, "already");
    let who = &row.shown_as;
    let build = row.build_no.map_or(String::new(), |n| format!(" #{n}"));
    match (row.kind.as_str(), row.state.as_str(), row.new_build) {
        ("rerun", "done", Some(n)) => {
            format!("Build{build} of {name} was already re-run by {who} as build #{n}.")
        }
        ("stop", "done", _) => format!("Build{build} of {name} was already stopped by {who}."),
        (_, "started", _) => format!(
            "{who} already asked for this at {} (build{build} of {name}); it is not repeated. \
             If the bot stopped before CodeArts answered, check the job in CodeArts.",
            row.created().format("%H:%M:%S UTC")
        ),
        _ => format!("Build{build} of {name} was already acted on by {who}."),
    }
}

async fn settle(ctx: &Ctx, kind: &str, id: i64, outcome: Settled<'_>) -> Result<(), String> {
    let label = match outcome {
        Settled::Done { .. } => "done",
        Settled::Failed { .. } => "failed",
    };
    count(ctx, kind, label);
    ctx.store
        .settle_action(id, outcome, Utc::now())
        .await
        .map_err(|e| database(&e))
}

async fn settle_failed(
    ctx: &Ctx,
    kind: &str,
    id: i64,
    why: String,
    request_id: Option<&str>,
) -> Result<String, String> {
    settle(
        ctx,
        kind,
        id,
        Settled::Failed {
            answer: &why,
            request_id,
        },
    )
    .await?;
    Err(why)
}

fn refused(ctx: &Ctx, kind: &str, why: String) -> Result<String, String> {
    count(ctx, kind, "refused");
    Err(why)
}

fn count(ctx: &Ctx, action: &str, outcome: &str) {
    ctx.metrics.inc(
        "codearts_bot_actions_total",
        &[("action", action), ("outcome", outcome)],
    );
}

fn database(e: &crate::store::Error) -> String {
    warn!(error = %e, "an action could not be recorded");
    "The bot's database failed, so nothing was done: try again.".to_owned()
}

/// What the channel is told when CodeArts refused an action, naming the missing permission.
fn action_failure(name: &str, verb: &str, e: &codearts::Error) -> String {
    warn!(error = %e, kind = e.kind(), request_id = e.request_id().unwrap_or("-"), "CodeArts refused an action");
    match e {
        codearts::Error::Forbidden(_) => format!(
            "CodeArts refused to {verb} {name} (403): the bot's account needs the execute permission on this job."
        ),
        codearts::Error::NotFound(_) => format!("CodeArts no longer has {name} (404)."),
        codearts::Error::BadRequest(_) => format!(
            "CodeArts refused to {verb} {name} (400): the build may have finished or changed; look at the job."
        ),
        _ => format!(
            "CodeArts could not be asked to {verb} {name} ({}): nothing was done; try again.",
            e.kind().replace('_', " ")
        ),
    }
}
