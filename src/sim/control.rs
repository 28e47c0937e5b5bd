//! The control API under `/_sim/` (server side): create, change, list and delete jobs, add and
//! list a job's builds, arm and clear faults, read and reset the call counters. Every route needs the same `X-Auth-Token`
//! as the API; every error is a JSON body in the API's `{error_code, error_msg}` shape.
//! The reference is in the module documentation of [`crate::sim`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::api::is_job_id;
use super::builds::BuildSpec;
use super::fault;
use super::patch::Patch;
use super::reply::{self, json_error, json_value};
use super::shared::Sim;

/// The `/_sim` routes (nested by [`super::server::router`]).
pub(crate) fn router(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route("/jobs", get(list_jobs).fallback(wrong_method))
        .route(
            "/jobs/{id}",
            get(get_job)
                .put(put_job)
                .delete(delete_job)
                .fallback(wrong_method),
        )
        .route(
            "/jobs/{id}/builds",
            get(list_builds).post(create_build).fallback(wrong_method),
        )
        .route(
            "/faults",
            get(list_faults)
                .put(put_faults)
                .delete(clear_faults)
                .fallback(wrong_method),
        )
        .route(
            "/tokens",
            get(list_tokens)
                .delete(revoke_tokens)
                .fallback(wrong_method),
        )
        .route(
            "/stats",
            get(stats).delete(reset_stats).fallback(wrong_method),
        )
        .route_layer(middleware::from_fn_with_state(sim, require_token))
        .fallback(unknown)
}

/// The control API accepts the API's token, checked the same way.
async fn require_token(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    match sim.authorize(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => json_error(refused.status, refused.code, refused.message, None),
    }
}

/// `GET /_sim/tokens`: the issued IAM tokens that still work.
async fn list_tokens(State(sim): State<Arc<Sim>>) -> Response {
    json_value(StatusCode::OK, &sim.identity.tokens())
}

/// `DELETE /_sim/tokens`: revokes every issued IAM token now.
async fn revoke_tokens(State(sim): State<Arc<Sim>>) -> Response {
    let revoked = sim.identity.revoke_all();
    json_value(StatusCode::OK, &json!({ "revoked": revoked }))
}

async fn unknown() -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        "SIM.0404",
        "no such control route: see the simulator documentation (docs/simulator.md)",
        None,
    )
}

async fn wrong_method() -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "SIM.0405",
        "this control route does not take that method: see docs/simulator.md",
        None,
    )
}

/// The id from the path, when it is a valid job id.
fn job_id(path: Result<Path<String>, PathRejection>) -> Option<String> {
    match path {
        Ok(Path(id)) if is_job_id(&id) => Some(id),
        _ => None,
    }
}

fn invalid_id() -> Response {
    reply::INVALID_TASK_ID.response("")
}

fn invalid_body(detail: &str) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        reply::INVALID_PARAMETER.code,
        &format!("invalid parameter: {detail}"),
        None,
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn list_jobs(State(sim): State<Arc<Sim>>) -> Response {
    let jobs = sim.jobs.list();
    json_value(StatusCode::OK, &json!({"total": jobs.len(), "jobs": jobs}))
}

async fn get_job(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = job_id(path) else {
        return invalid_id();
    };
    match sim.jobs.get(&id) {
        Some(job) => json_value(StatusCode::OK, &job),
        None => reply::URL_NOT_FOUND.response(""),
    }
}

async fn put_job(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Some(id) = job_id(path) else {
        return invalid_id();
    };
    let fields = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => return invalid_body(&format!("the body is not JSON: {e}")),
        }
    };
    let patch = match Patch::parse(fields) {
        Ok(patch) => patch,
        Err(e) => return invalid_body(&e.to_string()),
    };
    let (job, created) = sim.jobs.put(&id, patch, now_ms());
    tracing::debug!(job = %id, created, "simulator job changed");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    json_value(status, &job)
}

async fn delete_job(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = job_id(path) else {
        return invalid_id();
    };
    if sim.jobs.delete(&id, now_ms()) {
        tracing::debug!(job = %id, "simulator job deleted (into the recycle bin)");
        json_value(StatusCode::OK, &json!({"deleted": id}))
    } else {
        reply::URL_NOT_FOUND.response("")
    }
}

/// `POST /_sim/jobs/{id}/builds`: the job's next build from the body (every key optional),
/// `201 {"build_no", "record_id"}`.
async fn create_build(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let Some(id) = job_id(path) else {
        return invalid_id();
    };
    let spec = match BuildSpec::parse(&body) {
        Ok(spec) => spec,
        Err(e) => return invalid_body(&e),
    };
    match sim.jobs.add_build(&id, spec, now_ms()) {
        Some((build_no, record_id)) => {
            tracing::debug!(job = %id, build_no, "simulator build created");
            json_value(
                StatusCode::CREATED,
                &json!({"build_no": build_no, "record_id": record_id}),
            )
        }
        None => reply::URL_NOT_FOUND.response(""),
    }
}

/// `GET /_sim/jobs/{id}/builds`: `{"total": n, "builds": [...]}`, oldest first.
async fn list_builds(
    State(sim): State<Arc<Sim>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(id) = job_id(path) else {
        return invalid_id();
    };
    match sim.jobs.builds(&id) {
        Some(builds) => json_value(
            StatusCode::OK,
            &json!({"total": builds.len(), "builds": builds}),
        ),
        None => reply::URL_NOT_FOUND.response(""),
    }
}

async fn list_faults(State(sim): State<Arc<Sim>>) -> Response {
    json_value(StatusCode::OK, &json!({"faults": sim.faults.view()}))
}

async fn put_faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    match fault::parse(&body) {
        Ok(faults) => {
            sim.faults.set(faults);
            tracing::debug!("simulator faults armed");
            json_value(StatusCode::OK, &json!({"faults": sim.faults.view()}))
        }
        Err(e) => invalid_body(&e),
    }
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Response {
    sim.faults.clear();
    tracing::debug!("simulator faults cleared");
    json_value(StatusCode::OK, &json!({"faults": []}))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let mut stats = sim.stats.snapshot();
    if let (Value::Object(map), Value::Object(identity)) = (&mut stats, sim.identity.snapshot()) {
        map.extend(identity);
    }
    if let Value::Object(map) = &mut stats {
        map.insert("jobs".to_owned(), Value::from(sim.jobs.len()));
        map.insert(
            "faults_armed".to_owned(),
            Value::from(sim.faults.view().len()),
        );
    }
    json_value(StatusCode::OK, &stats)
}

async fn reset_stats(State(sim): State<Arc<Sim>>) -> Response {
    sim.stats.reset();
    sim.identity.reset();
    json_value(StatusCode::OK, &sim.stats.snapshot())
}
