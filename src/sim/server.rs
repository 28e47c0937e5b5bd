//! The simulator's HTTP router: the CloudBuild API surface ([`super::api`]) and the control
//! API under `/_sim/` ([`super::control`]), with an `X-Request-Id` on every answer.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::middleware;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post};

use super::shared::{Sim, X_REQUEST_ID, set_request_id};
use super::{api, build_api, control, execute};

/// The whole simulator as one router.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        // One parameter name for the segment after /v1/job/: the router refuses two names
        // at the same place.
        .route(
            "/v1/job/{id}/info",
            get(api::job_info).fallback(api::unknown),
        )
        .route(
            "/v1/job/{id}/list",
            get(api::list_project_jobs).fallback(api::unknown),
        )
        .route("/v1/job/list", get(api::list_job).fallback(api::unknown))
        .route(
            "/v1/job/recycling-jobs",
            get(build_api::recycling_jobs).fallback(api::unknown),
        )
        .route(
            "/v1/job/execute",
            post(execute::execute_job).fallback(api::unknown),
        )
        .route(
            "/v1/job/{id}/running-status",
            get(build_api::running_status).fallback(api::unknown),
        )
        .route(
            "/v1/job/{id}/check/disable",
            get(build_api::check_disable).fallback(api::unknown),
        )
        .route(
            "/v1/job/{id}/stop",
            post(execute::stop_the_job).fallback(api::unknown),
        )
        .route(
            "/v1/job/{id}/{build_no}/history-parameters",
            get(build_api::history_parameters).fallback(api::unknown),
        )
        // The segment after /v1/record/ is a job id or a record id: one name for both.
        .route(
            "/v1/record/{id}/{build_no}/record-info",
            get(build_api::record_info).fallback(api::unknown),
        )
        .route(
            "/v1/record/{id}/{build_no}/build-info-record",
            get(build_api::build_info_record).fallback(api::unknown),
        )
        .route(
            "/v1/record/{id}/full-stages",
            get(build_api::full_stages).fallback(api::unknown),
        )
        .route(
            "/v1/log/{id}/{build_no}/real-time-log",
            get(build_api::real_time_log).fallback(api::unknown),
        )
        .route(
            "/v1/report/{id}/summary",
            get(build_api::report_summary).fallback(api::unknown),
        )
        .route(
            "/v3/{project_id}/jobs",
            get(api::project_jobs).fallback(api::unknown),
        )
        .route("/v3/auth/tokens", post(issue_token))
        .nest("/_sim", control::router(Arc::clone(&sim)))
        .fallback(api::unknown)
        .with_state(Arc::clone(&sim))
        .layer(middleware::map_response_with_state(sim, ensure_request_id))
}

/// IAM's `POST /v3/auth/tokens` (faults do not apply: IAM is another service).
async fn issue_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let (status, token, json) = sim.identity.issue(&body);
    let mut response = (status, axum::Json(json)).into_response();
    if let Some(token) = token
        && let Ok(value) = HeaderValue::try_from(token)
    {
        response.headers_mut().insert("x-subject-token", value);
    }
    response
}

/// Adds an `X-Request-Id` to answers whose handler did not set one (control API, rejections).
async fn ensure_request_id(State(sim): State<Arc<Sim>>, mut response: Response) -> Response {
    if !response.headers().contains_key(X_REQUEST_ID) {
        set_request_id(&mut response, sim.next_request_id());
    }
    response
}
