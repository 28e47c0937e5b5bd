//! The status board (`[http] board = true`, docs/board.md): server-rendered pages of the
//! watched jobs and a JSON API, on the bot's own listener.
//!
//! - `GET /` ([`pages`]): every watched job, failing first, grouped by project, paged.
//! - `GET /jobs/{id}` ([`job_page`]): one job's history.
//! - `GET /api/v1/jobs`, `/api/v1/jobs/{id}`, `/api/v1/events`, `/api/v1/incidents` ([`api`]).
//! - `GET|POST /login`, `POST /logout` ([`auth`]), `GET /assets/board.css|js`.
//!
//! Every answer carries a Content-Security-Policy without `unsafe-inline` (the CSS and the
//! optional refresh script are files of their own), `nosniff` and `no-referrer`, and a
//! `Server-Timing` header with the time spent serving it (what `bench --board` reads).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::engine::Ctx;

pub mod access;
mod api;
mod auth;
mod job_page;
pub mod model;
mod pages;
mod state;
pub mod svg;
mod views;

use state::Board;

/// The policy of every board answer: only this origin's files, no inline script or style.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../../assets/board.css");
const JS: &str = include_str!("../../../assets/board.js");

/// The board's routes, to merge into the server's router.
pub fn routes(ctx: Ctx) -> Router {
    let board = Board {
        access: Arc::new(access::Access::from_config(&ctx.config.http)),
        ctx,
    };
    let guarded = Router::new()
        .route("/", get(pages::index))
        .route("/jobs/{id}", get(job_page::page))
        .route("/api/v1/jobs", get(api::jobs))
        .route("/api/v1/jobs/{id}", get(api::job))
        .route("/api/v1/events", get(api::events))
        .route("/api/v1/incidents", get(api::incidents))
        .route_layer(middleware::from_fn_with_state(board.clone(), auth::guard));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/board.css", get(css))
        .route("/assets/board.js", get(js))
        .merge(guarded)
        .layer(middleware::from_fn(headers))
        .with_state(board)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The security headers, and how long the answer took (`Server-Timing: app;dur=<ms>`).
async fn headers(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert(HeaderName::from_static("server-timing"), v);
    }
    response
}
