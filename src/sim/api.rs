//! The CloudBuild API surface: `GET /v1/job/{job_id}/info`, and the gateway's answer to any
//! other path. Each call passes, in order: the armed fault (delay, replacement answer or
//! dropped connection), the gateway's credentials check (AK/SK signature, issued IAM token or
//! static token: [`super::iam`]), then the job lookup.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use super::fault;
use super::iam::Call;
use super::reply::{self, Documented};
use super::shared::{Sim, set_request_id};
use super::state::Lookup;

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
    serve(&sim, &call, |sim, request_id| {
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
    serve(&sim, &call, |sim, request_id| {
        list_project_jobs(sim, project.as_deref(), uri.query(), request_id)
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
    serve(&sim, &call, |_, request_id| {
        reply::API_NOT_EXIST.response(request_id)
    })
    .await
}

/// Counts the call, applies the armed fault, checks the credentials, then answers.
async fn serve(
    sim: &Sim,
    call: &Call<'_>,
    answer: impl FnOnce(&Sim, &str) -> Response,
) -> Response {
    sim.stats.request();
    let request_id = sim.next_request_id();
    let mut replaced = None;
    if let Some(fault) = sim.faults.next() {
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

fn list_project_jobs(
    sim: &Sim,
    project: Option<&str>,
    query: Option<&str>,
    request_id: &str,
) -> Response {
    let Some(project) = project.filter(|p| crate::codearts::listing::check_project_id(p).is_ok())
    else {
        return reply::INVALID_PARAMETER.response(request_id);
    };
    let mut index = 0usize;
    let mut size = 10usize;
    for (key, value) in query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
    {
        let parsed = value.parse::<usize>();
        match (key, parsed) {
            ("page_index", Ok(n)) => index = n,
            ("page_size", Ok(n)) if (1..=100).contains(&n) => size = n,
            ("page_index" | "page_size", _) => {
                return reply::INVALID_PARAMETER.response(request_id);
            }
            _ => {}
        }
    }
    let (jobs, total) = sim.jobs.project_page(project, index, size);
    reply::json_value(
        StatusCode::OK,
        &serde_json::json!({ "jobs": jobs, "total": total }),
    )
}

/// The documented id rule: exactly 32 ASCII letters or digits (as [`crate::codearts::JobId`]),
/// checked without allocating.
pub(crate) fn is_job_id(id: &str) -> bool {
    id.len() == crate::codearts::JobId::LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}
