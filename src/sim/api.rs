//! The CloudBuild API surface: ShowJobInfo (`GET /v1/job/{job_id}/info`), the job listings
//! ([`super::listing`]), and the gateway's answer to any other path. Each call is counted
//! (per operation too), then passes, in order: the armed fault (delay, replacement answer or
//! dropped connection), the gateway's credentials check (AK/SK signature, issued IAM token or
//! static token: [`super::iam`]), then the operation itself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::fault;
use super::iam::Call;
use super::listing;
use super::reply::{self, Documented};
use super::shared::{Sim, set_request_id};
use super::state::Lookup;
use super::stats::Api;

/// ShowJobInfo.
pub(crate) async fn job_info(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let id = path.ok().map(|Path(id)| id);
    let call = Call {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    serve(&sim, Some(Api::ShowJobInfo), &call, |sim, request_id| {
        show_job_info(sim, id.as_deref(), request_id)
    })
    .await
}

/// ShowJobListByProjectId: `GET /v3/{project_id}/jobs?page_index&page_size`.
pub(crate) async fn project_jobs(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let project = path.ok().map(|Path(id)| id);
    let call = Call {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    serve(
        &sim,
        Some(Api::ShowJobListByProjectId),
        &call,
        |sim, request_id| {
            listing::show_job_list_by_project_id(sim, project.as_deref(), uri.query(), request_id)
        },
    )
    .await
}

/// ListProjectJobs: `GET /v1/job/{project_id}/list?page_index&page_size`.
pub(crate) async fn list_project_jobs(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let project = path.ok().map(|Path(id)| id);
    let call = Call {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    serve(
        &sim,
        Some(Api::ListProjectJobs),
        &call,
        |sim, request_id| {
            listing::list_project_jobs(sim, project.as_deref(), uri.query(), request_id)
        },
    )
    .await
}

/// ListJob: `GET /v1/job/list?page_index&page_size`.
pub(crate) async fn list_job(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    serve(&sim, Some(Api::ListJob), &call, |sim, request_id| {
        listing::list_job(sim, uri.query(), request_id)
    })
    .await
}

/// Any path or method the API does not have.
pub(crate) async fn unknown(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    serve(&sim, None, &call, |_, request_id| {
        reply::API_NOT_EXIST.response(request_id)
    })
    .await
}

/// Counts the call, applies the armed fault, checks the credentials, then answers.
pub(crate) async fn serve(
    sim: &Sim,
    api: Option<Api>,
    call: &Call<'_>,
    answer: impl FnOnce(&Sim, &str) -> Response,
) -> Response {
    sim.stats.request(api);
    let request_id = sim.next_request_id();
    let mut replaced = None;
    if let Some(fault) = sim.faults.next(api.map(Api::name), call.uri.path()) {
        if let Some(delay) = fault.delay() {
            tokio::time::sleep(delay).await;
        }
        if fault.drops() {
            sim.stats.dropped();
            return fault::dropped_connection();
        }
        replaced = fault.response(&request_id);
    }
    let mut response = match replaced {
        Some(response) => response,
        None => match sim.authorize_call(call) {
            Err(refused) => refused.response(&request_id),
            Ok(()) => answer(sim, &request_id),
        },
    };
    sim.stats.answered(response.status());
    set_request_id(&mut response, request_id);
    response
}

fn show_job_info(sim: &Sim, id: Option<&str>, request_id: &str) -> Response {
    let Some(id) = id.filter(|id| is_job_id(id)) else {
        return reply::INVALID_TASK_ID.response(request_id);
    };
    let refused: Documented = match sim.jobs.lookup(id) {
        Lookup::Found(body) => return reply::json_bytes(StatusCode::OK, body),
        Lookup::Forbidden => reply::NO_PERMISSION,
        Lookup::Missing => reply::URL_NOT_FOUND,
    };
    refused.response(request_id)
}

/// The documented id rule: exactly 32 ASCII letters or digits (as [`crate::codearts::JobId`]),
/// checked without allocating.
pub(crate) fn is_job_id(id: &str) -> bool {
    id.len() == crate::codearts::JobId::LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}
