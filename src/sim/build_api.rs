//! The per-build operations and the recycle bin, served like every API call
//! ([`super::api::serve`]: counted under the SDK's operation name, the armed fault, the
//! credentials), then checked as the job operations are: the job id (400 `CB.00060201`), the
//! job (404 `CB.00060214`, 403 `CB.00060403` for `_sim_forbidden`, a 200 `"status": "fail"`
//! envelope for `_sim_fail`), the build number (a positive integer, else 400
//! `CB.00060200`; no such build: 404 `CB.00060214`). The answers are built by
//! [`super::records`] and [`super::build_log`] and wrapped in `{"result", "error",
//! "status"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::api::{is_job_id, serve};
use super::build_log::Window;
use super::builds::Build;
use super::iam::Call;
use super::records;
use super::recycle;
use super::reply::{self, Documented};
use super::shared::Sim;
use super::state::{Access, Job};
use super::stats::Api;

/// The largest request body read (the API's bodies are far smaller).
const MAX_BODY: usize = 1024 * 1024;

/// The path parameters of a route, by name.
type Params = Result<Path<HashMap<String, String>>, PathRejection>;

/// What a handler answers once the call passed the gateway.
type Answer = Result<Value, Documented>;

/// ShowRunningStatus: `GET /v1/job/{job_id}/running-status`.
pub(crate) async fn running_status(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(sim, Api::ShowRunningStatus, path, request, |sim, p, _| {
        job_result(sim, p, |id, job| Ok(records::running_status(id, job)))
    })
    .await
}

/// ShowDisable: `GET /v1/job/{job_id}/check/disable`.
pub(crate) async fn check_disable(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(sim, Api::ShowDisable, path, request, |sim, p, _| {
        job_result(sim, p, |id, job| Ok(records::check_disable(id, job)))
    })
    .await
}

/// ListBuildParameter: `GET /v1/job/{job_id}/{build_no}/history-parameters`.
pub(crate) async fn history_parameters(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(sim, Api::ListBuildParameter, path, request, |sim, p, _| {
        job_result(sim, p, |_, job| {
            build_of(job, p.get("build_no")).map(records::parameters)
        })
    })
    .await
}

/// ShowJobBuildRecordDetail: `GET /v1/record/{job_id}/{build_no}/record-info`.
pub(crate) async fn record_info(sim: State<Arc<Sim>>, path: Params, request: Request) -> Response {
    gateway(
        sim,
        Api::ShowJobBuildRecordDetail,
        path,
        request,
        |sim, p, _| {
            job_result(sim, p, |_, job| {
                build_of(job, p.get("build_no")).map(|build| records::record_info(job, build))
            })
        },
    )
    .await
}

/// ShowBuildInfoRecord: `GET /v1/record/{job_id}/{build_no}/build-info-record`.
pub(crate) async fn build_info_record(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(sim, Api::ShowBuildInfoRecord, path, request, |sim, p, _| {
        job_result(sim, p, |_, job| {
            build_of(job, p.get("build_no")).map(|build| records::build_info_record(job, build))
        })
    })
    .await
}

/// ShowBuildRecordFullStages: `GET /v1/record/{record_id}/full-stages?cascade` (`cascade`
/// is accepted and ignored).
pub(crate) async fn full_stages(sim: State<Arc<Sim>>, path: Params, request: Request) -> Response {
    gateway(
        sim,
        Api::ShowBuildRecordFullStages,
        path,
        request,
        |sim, p, _| {
            let Some(record) = p.get("id").filter(|r| is_record_id(r)) else {
                return Err(Gate::Refused(reply::INVALID_PARAMETER));
            };
            let found = sim.jobs.with_record(record, |job, build_no| {
                let answer = job
                    .build(build_no)
                    .map(records::full_stages)
                    .ok_or(reply::URL_NOT_FOUND);
                gate(job, || answer)
            });
            found.unwrap_or(Err(Gate::Refused(reply::URL_NOT_FOUND)))
        },
    )
    .await
}

/// DownloadBuildRealTimeLog: `GET /v1/log/{job_id}/{build_no}/real-time-log?start_offset&
/// end_offset&sort&size` (see [`super::build_log`]).
pub(crate) async fn real_time_log(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(
        sim,
        Api::DownloadBuildRealTimeLog,
        path,
        request,
        |sim, p, query| {
            let window = Window::parse(query).map_err(Gate::Refused)?;
            job_result(sim, p, |_, job| {
                build_of(job, p.get("build_no")).map(|build| window.result(&build.log))
            })
        },
    )
    .await
}

/// ShowReportSummary: `GET /v1/report/{job_id}/summary?build_no` (without `build_no`, the
/// latest build).
pub(crate) async fn report_summary(
    sim: State<Arc<Sim>>,
    path: Params,
    request: Request,
) -> Response {
    gateway(
        sim,
        Api::ShowReportSummary,
        path,
        request,
        |sim, p, query| {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(query.unwrap_or_default())
                    .map_err(|_| Gate::Refused(reply::INVALID_PARAMETER))?;
            let build_no = pairs
                .into_iter()
                .find(|(key, _)| key == "build_no")
                .map(|(_, value)| value);
            job_result(sim, p, |_, job| match &build_no {
                None => Ok(records::report_summary(job.builds.last())),
                Some(n) => build_of(job, Some(n)).map(|b| records::report_summary(Some(b))),
            })
        },
    )
    .await
}

/// ListRecyclingJob: `GET /v1/job/recycling-jobs?page_no&page_size&search`.
pub(crate) async fn recycling_jobs(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let call = Call {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    serve(
        &sim,
        Some(Api::ListRecyclingJob),
        &call,
        |sim, request_id| match recycle::Query::parse(parts.uri.query()) {
            Ok(query) => reply::json_value(
                StatusCode::OK,
                &recycle::answer(sim.jobs.recycled(), &query),
            ),
            Err(refused) => refused.response(request_id),
        },
    )
    .await
}

/// Why a per-job call gets no result: a documented error, or the job's `_sim_fail`.
pub(crate) enum Gate {
    Refused(Documented),
    Failed(String),
}

/// Serves one API call of `api`: reads it, passes the gateway ([`serve`]), then answers
/// `answer(sim, path parameters, query)` in the envelope.
pub(crate) async fn gateway(
    State(sim): State<Arc<Sim>>,
    api: Api,
    path: Params,
    request: Request,
    answer: impl FnOnce(&Sim, &HashMap<String, String>, Option<&str>) -> Result<Value, Gate>,
) -> Response {
    let params = path.map(|Path(p)| p).unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let call = Call {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    serve(&sim, Some(api), &call, |sim, request_id| {
        envelope(answer(sim, &params, parts.uri.query()), request_id)
    })
    .await
}

/// `{"result", "error": null, "status": "success"}`, the `fail` envelope, or the error.
pub(crate) fn envelope(result: Result<Value, Gate>, request_id: &str) -> Response {
    match result {
        Ok(result) => reply::json_value(
            StatusCode::OK,
            &json!({"result": result, "error": null, "status": "success"}),
        ),
        Err(Gate::Failed(reason)) => reply::json_value(
            StatusCode::OK,
            &json!({"result": null, "error": reason, "status": "fail"}),
        ),
        Err(Gate::Refused(refused)) => refused.response(request_id),
    }
}

/// The job of the path's `id`, checked, then `f` of it.
pub(crate) fn job_result(
    sim: &Sim,
    params: &HashMap<String, String>,
    f: impl FnOnce(&str, &Job) -> Answer,
) -> Result<Value, Gate> {
    let Some(id) = params.get("id").filter(|id| is_job_id(id)) else {
        return Err(Gate::Refused(reply::INVALID_TASK_ID));
    };
    sim.jobs
        .with_job(id, |job| gate(job, || f(id, job)))
        .unwrap_or(Err(Gate::Refused(reply::URL_NOT_FOUND)))
}

/// The job's own refusals (forbidden, failing) before `f`.
pub(crate) fn gate(job: &Job, f: impl FnOnce() -> Answer) -> Result<Value, Gate> {
    match job.access() {
        Access::Forbidden => Err(Gate::Refused(reply::NO_PERMISSION)),
        Access::Failed(reason) => Err(Gate::Failed(reason)),
        Access::Open => f().map_err(Gate::Refused),
    }
}

/// The build a path or query names: a positive integer (else 400), that exists (else 404).
pub(crate) fn build_of<'a>(
    job: &'a Job,
    build_no: Option<&String>,
) -> Result<&'a Build, Documented> {
    let build_no = parse_build_no(build_no.map(String::as_str))?;
    job.build(build_no).ok_or(reply::URL_NOT_FOUND)
}

/// A build number: a positive integer.
pub(crate) fn parse_build_no(raw: Option<&str>) -> Result<u32, Documented> {
    raw.and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or(reply::INVALID_PARAMETER)
}

/// A record id as the simulator makes them (and a little wider): 1 to 64 ASCII letters,
/// digits or `-`.
fn is_record_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
