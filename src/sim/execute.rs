//! The two actions: ExecuteJob (`POST /v1/job/execute`) starts the job's next build, running,
//! and ends it after a while as the job's execution flags say (`run_flags.rs`: by default a
//! success after 2000 ms); StopTheJob (`POST /v1/job/{job_id}/stop?build_no`) ends a running
//! build as `aborted`. Served and checked like the other job operations (`build_api.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{is_job_id, serve};
use super::build_api;
use super::builds::{BuildSpec, Parameter, StageSpec};
use super::iam::Call;
use super::reply;
use super::run_flags::RunFlags;
use super::shared::Sim;
use super::stats::Api;

/// The status a stopped build ends with.
const STOPPED: &str = "aborted";

/// The SDK's `RunJobRequestBody` (unknown keys ignored, as a service would).
#[derive(Debug, Deserialize)]
struct RunJob {
    job_id: Option<String>,
    #[serde(default)]
    parameter: Vec<Parameter>,
    #[serde(default)]
    scm: Option<Scm>,
}

#[derive(Debug, Default, Deserialize)]
struct Scm {
    build_commit_id: Option<String>,
    build_tag: Option<String>,
}

/// ExecuteJob: answers `{"octopus_job_name", "actual_build_number", "daily_build_number"}`
/// (no envelope, as the SDK models it).
pub(crate) async fn execute_job(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let call = Call {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    let timer = Arc::clone(&sim);
    serve(&sim, Some(Api::ExecuteJob), &call, |sim, request_id| {
        let Ok(run) = serde_json::from_slice::<RunJob>(&body) else {
            return reply::INVALID_PARAMETER.response(request_id);
        };
        let Some(id) = run.job_id.clone().filter(|id| is_job_id(id)) else {
            return reply::INVALID_TASK_ID.response(request_id);
        };
        let params = HashMap::from([("id".to_owned(), id.clone())]);
        let mut flags = RunFlags::default();
        let checked = build_api::job_result(sim, &params, |_, job| {
            flags = job.run.clone();
            Ok(Value::Null)
        });
        if let Err(refused) = checked {
            return build_api::envelope(Err(refused), request_id);
        }
        let (run_ms, finish) = flags.outcome();
        let now = chrono::Utc::now().timestamp_millis();
        let Some((build_no, _)) = sim.jobs.add_build(&id, running(&finish, run), now) else {
            return reply::URL_NOT_FOUND.response(request_id);
        };
        let daily = daily_number(sim, &id, build_no);
        settle_later(timer, id.clone(), build_no, finish, run_ms);
        tracing::debug!(job = %id, build_no, run_ms, "simulator build executed");
        reply::json_value(
            StatusCode::OK,
            &json!({
                "octopus_job_name": format!("codeci-{id}"),
                "actual_build_number": build_no.to_string(),
                "daily_build_number": daily,
            }),
        )
    })
    .await
}

/// The build as it starts, running: who, what and where from now (the request's commit, tag
/// and parameters first); stages, log, tests and outcome only when it ends.
fn running(outcome: &BuildSpec, run: RunJob) -> BuildSpec {
    let scm = run.scm.unwrap_or_default();
    BuildSpec {
        status: Some("running".to_owned()),
        branch: outcome.branch.clone(),
        commit: scm
            .build_commit_id
            .filter(|c| !c.is_empty())
            .or(outcome.commit.clone()),
        tag: scm
            .build_tag
            .filter(|t| !t.is_empty())
            .or(outcome.tag.clone()),
        commit_message: outcome.commit_message.clone(),
        user: outcome.user.clone(),
        trigger_type: outcome.trigger_type.clone(),
        parameters: Some(run.parameter)
            .filter(|p| !p.is_empty())
            .or(outcome.parameters.clone()),
        stages: outcome.stages.as_ref().map(|stages| {
            stages
                .iter()
                .map(|s| StageSpec {
                    name: s.name.clone(),
                    status: None,
                    duration_ms: None,
                })
                .collect()
        }),
        ..BuildSpec::default()
    }
}

/// The new build's place among the job's builds that day (`""` if the job went meanwhile).
fn daily_number(sim: &Sim, id: &str, build_no: u32) -> String {
    sim.jobs
        .with_job(id, |job| {
            let before = usize::try_from(build_no.saturating_sub(1)).unwrap_or(0);
            let earlier = job.builds.get(..before).unwrap_or_default();
            job.build(build_no).map(|b| b.daily_number(earlier))
        })
        .flatten()
        .unwrap_or_default()
}

/// Ends the build as `finish` says after `run_ms`, unless it was stopped (or the job
/// deleted) by then: `settle_build` only touches a build still running.
fn settle_later(sim: Arc<Sim>, job: String, build_no: u32, finish: BuildSpec, run_ms: u64) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(run_ms)).await;
        let now = chrono::Utc::now().timestamp_millis();
        sim.jobs.settle_build(&job, build_no, finish, now);
    });
}

/// StopTheJob: `{"status": "success"}` once the build is stopped; 400 `CB.00060200` when
/// `build_no` is missing or the build is not running, 404 when there is no such build.
pub(crate) async fn stop_the_job(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
) -> Response {
    let params = path.map(|Path(p)| p).unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let call = Call {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    serve(&sim, Some(Api::StopTheJob), &call, |sim, request_id| {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
        let build_no = pairs
            .into_iter()
            .find(|(k, _)| k == "build_no")
            .map(|(_, v)| v);
        let checked = build_api::job_result(sim, &params, |_, job| {
            let build = build_api::build_of(job, build_no.as_ref())?;
            if build.running() {
                Ok(Value::from(build.build_no))
            } else {
                Err(reply::INVALID_PARAMETER)
            }
        });
        let build_no = match checked {
            Ok(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            Err(refused) => return build_api::envelope(Err(refused), request_id),
        };
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        let now = chrono::Utc::now().timestamp_millis();
        if sim.jobs.finish_build(id, build_no, STOPPED, now) {
            tracing::debug!(job = %id, build_no, "simulator build stopped");
            reply::json_value(StatusCode::OK, &json!({"status": "success"}))
        } else {
            reply::INVALID_PARAMETER.response(request_id)
        }
    })
    .await
}
