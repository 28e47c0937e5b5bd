//! The board's JSON API (`/api/v1/...`, docs/board.md): the same data as the pages, for
//! integrations. Times are RFC 3339 UTC; absent values are `null`; lists are newest first
//! unless said otherwise.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::job_page::{self, JobDetail};
use super::model::{self, Filter, JobRow};
use super::state::Board;
use crate::domain::incident::Incident;
use crate::util::text::rfc3339;

/// Most events one `/api/v1/events` answer holds.
const MAX_EVENTS: u32 = 500;

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

fn incident_json(i: &Incident, now: DateTime<Utc>) -> Value {
    json!({
        "id": i.id,
        "job_id": i.job_id,
        "job_name": i.job_name,
        "opened_at": rfc3339(i.opened_at),
        "open_secs": i.duration(now).as_secs(),
        "failed_builds": i.failed_builds,
        "last_status": i.last_status,
    })
}

fn job_json(board: &Board, r: &JobRow, now: DateTime<Utc>) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "project_id": r.project,
        "state": r.state.as_str(),
        "last_build_status": r.status,
        "running": r.running,
        "last_build_at": time(r.last_build_at),
        "health": r.health,
        "flaky": r.flaky,
        "incident": r.incident.as_ref().map(|i| incident_json(i, now)),
        "silence": r.silence.as_ref().map(|s| json!({
            "id": s.id,
            "kind": s.kind.as_str(),
            "scope": s.scope.describe(),
            "by": s.created_by,
            "reason": s.reason,
            "expires_at": rfc3339(s.expires_at),
        })),
        "board_url": board.ctx.config.http.board_job_url(&r.id),
    })
}

/// `GET /api/v1/jobs`: a page of watched jobs, failing first (the order of `/`).
pub async fn jobs(State(board): State<Board>, Query(filter): Query<Filter>) -> Response {
    if let Err(e) = filter.check() {
        return error(StatusCode::BAD_REQUEST, e);
    }
    let rows = match model::all_rows(&board.ctx).await {
        Ok(rows) => rows,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let page = model::page(rows, &filter);
    let now = Utc::now();
    let counts: serde_json::Map<String, Value> = page
        .counts
        .by_state
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    Json(json!({
        "page": page.page,
        "pages": page.pages,
        "per_page": page.per_page,
        "matched": page.matched,
        "total": page.counts.total,
        "counts": counts,
        "jobs": page.rows.iter().map(|r| job_json(&board, r, now)).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// `GET /api/v1/jobs/{id}`: one job with its history.
pub async fn job(State(board): State<Board>, Path(id): Path<String>) -> Response {
    let d: JobDetail = match job_page::detail(&board.ctx, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no watched job with this id"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let now = Utc::now();
    Json(json!({
        "job": job_json(&board, &d.row, now),
        "codearts_url": d.codearts_link,
        "health": d.health.iter().map(|(at, score)| json!({"at": rfc3339(*at), "score": score})).collect::<Vec<_>>(),
        "builds": d.builds.iter().map(|b| json!({
            "at": rfc3339(b.at),
            "status": b.status,
            "state": b.state.as_str(),
            "duration_secs": b.duration,
        })).collect::<Vec<_>>(),
        "events": d.events.iter().map(event_json).collect::<Vec<_>>(),
        "deliveries": d.deliveries.iter().map(|x| json!({
            "id": x.row.id,
            "channel": x.row.channel,
            "kind": x.row.kind,
            "status": x.row.status,
            "attempts": x.row.attempts,
            "created_at": rfc3339(x.row.created_at),
            "sent_at": time(x.sent_at),
            "last_error": x.row.last_error,
        })).collect::<Vec<_>>(),
        "failure_context": d.context,
    }))
    .into_response()
}

fn event_json(e: &crate::store::LoggedEvent) -> Value {
    json!({
        "id": e.id,
        "kind": e.event.kind.as_str(),
        "job_id": e.event.job_id,
        "job_name": e.event.job_name,
        "detected_at": rfc3339(e.event.detected_at),
        "summary": e.event.summary,
        "suppressed": e.suppressed,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EventsQuery {
    job: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/events?job=&before=&limit=`: the event log, newest first; `next_before` is
/// the cursor of the next (older) page.
pub async fn events(State(board): State<Board>, Query(q): Query<EventsQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_EVENTS);
    let job = q.job.as_deref().filter(|j| !j.is_empty());
    match board.ctx.store.event_log(job, q.before, limit).await {
        Ok(events) => {
            let next = (events.len() == limit as usize)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            Json(json!({
                "events": events.iter().map(event_json).collect::<Vec<_>>(),
                "next_before": next,
            }))
            .into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /api/v1/incidents`: every open incident, longest open first, with the last failure's
/// context of its job.
pub async fn incidents(State(board): State<Board>) -> Response {
    let store = &board.ctx.store;
    let mut open: Vec<Incident> = match store.open_incidents().await {
        Ok(open) => open.into_iter().map(|(i, _)| i).collect(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    open.sort_by_key(|i| i.opened_at);
    let ids: Vec<&str> = open.iter().map(|i| i.job_id.as_str()).collect();
    let contexts = match store.last_failure_contexts(&ids).await {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let now = Utc::now();
    let http = &board.ctx.config.http;
    Json(json!({
        "incidents": open.iter().map(|i| {
            let mut v = incident_json(i, now);
            v["context"] = json!(contexts.get(&i.job_id));
            v["board_url"] = json!(http.board_job_url(&i.job_id));
            v
        }).collect::<Vec<_>>(),
    }))
    .into_response()
}
