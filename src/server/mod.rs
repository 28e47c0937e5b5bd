//! The bot's HTTP server (axum): liveness, readiness, Prometheus metrics, and the chat
//! endpoints when configured.
//!
//! - `POST /discord/interactions` (with `[discord] public_key`): [`crate::chat::discord_http`].
//! - `POST /slack/commands` (with `[slack] signing_secret`): [`crate::chat::slack`].
//! - `POST /slack/interactions` (the same): button clicks, [`crate::chat::slack_actions`].
//! - `GET /healthz`: 200 `ok` while the process runs.
//! - `GET /readyz`: 200 when the database answers and the last poll cycle that reached
//!   CodeArts is at most three schedule intervals old (or the bot started less than three
//!   intervals ago); 503 otherwise. The JSON body says what is wrong.
//! - `GET /metrics`: the Prometheus text format; see `src/metrics.rs` for the families.
//! - With `[http] board = true`: the status board and its JSON API ([`board`],
//!   docs/board.md), behind `[http] board_token` when one is set.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;
use tokio::net::TcpListener;

use crate::engine::Ctx;

pub mod board;
mod listener;

/// Binds the configured address (port 0 allowed) and reports the bound address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((listener, bound))
}

pub fn router(ctx: Ctx) -> Router {
    let chat = crate::chat::Chat::new(ctx.clone());
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ctx.clone());
    if let Some(key) = ctx
        .config
        .discord
        .public_key
        .as_deref()
        .and_then(|k| crate::config::parse_discord_public_key(k).ok())
    {
        router = router.merge(crate::chat::discord_http::routes(chat.clone(), key));
    }
    if let Some(secret) = &ctx.config.slack.signing_secret {
        router = router.merge(crate::chat::slack::routes(chat.clone(), secret.clone()));
        router = router.merge(crate::chat::slack_actions::routes(chat, secret.clone()));
    }
    if ctx.config.http.board {
        router = router.merge(board::routes(ctx.clone()));
    }
    // Every route reads at most this much body (chat payloads are a few kilobytes).
    router.layer(axum::extract::DefaultBodyLimit::max(
        ctx.config.http.max_body_bytes,
    ))
}

/// Serves until `shutdown` resolves, under `[http]`'s limits ([`listener`]).
pub async fn serve(
    listener: TcpListener,
    ctx: Ctx,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = listener::Limits::from_config(&ctx.config.http);
    let metrics = std::sync::Arc::clone(&ctx.metrics);
    listener::serve(listener, router(ctx), limits, metrics, shutdown).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: what an orchestrator and an operator need to know, in one JSON answer.
async fn readyz(State(ctx): State<Ctx>) -> Response {
    let mut problems: Vec<String> = Vec::new();
    let database = match tokio::time::timeout(Duration::from_secs(2), ctx.store.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(e)) => {
            problems.push(format!("database: {e}"));
            "error".to_owned()
        }
        Err(_) => {
            problems.push("database: no answer within 2 s".to_owned());
            "timeout".to_owned()
        }
    };
    let interval = ctx.health.interval;
    let allowed = interval * 3;
    let last = ctx.health.last_success();
    let since_start = ctx.health.started.elapsed();
    let leads = ctx.lead.may_act();
    // Without the database there is no lease to read, and asking would hold the answer for
    // the pool's acquire timeout.
    let holder = if leads || database != "ok" {
        None
    } else {
        match ctx
            .store
            .lease_holder(crate::engine::leadership::LEADER)
            .await
        {
            Ok(holder) => holder,
            Err(e) => {
                problems.push(format!("database: cannot read the leader's lease: {e}"));
                None
            }
        }
    };
    // A follower does not poll: its readiness is the database's (it answers chat), and the
    // leader's polls are the leader's to report.
    match last.filter(|_| leads) {
        Some(at) => {
            let age = (Utc::now() - at).to_std().unwrap_or_default();
            if age > allowed {
                problems.push(format!(
                    "the last poll cycle that reached CodeArts was {}s ago (more than 3 intervals of {}s)",
                    age.as_secs(),
                    interval.as_secs()
                ));
            }
        }
        None if leads && since_start > allowed => problems.push(format!(
            "no poll cycle has reached CodeArts since start {}s ago",
            since_start.as_secs()
        )),
        None => {}
    }
    if let Some(why) = ctx.health.last_failure()
        && !problems.is_empty()
    {
        problems.push(format!("last cycle: {why}"));
    }
    let mut warnings: Vec<String> = Vec::new();
    if let Some(rps) = ctx.config.poll.max_rps {
        let watched = ctx
            .metrics
            .value("codearts_bot_watched_jobs", &[])
            .max(ctx.config.jobs.len() as f64);
        let needed = watched / rps;
        if needed > interval.as_secs_f64() {
            warnings.push(format!(
                "a cycle over {watched} jobs needs {needed:.0}s at poll.max_rps = {rps}, but the schedule ticks every {}s: ticks are skipped",
                interval.as_secs()
            ));
        }
    }
    let ready = problems.is_empty();
    let body = json!({
        "ready": ready,
        "role": if leads { "leader" } else { "follower" },
        "leader": holder.map(|h| json!({"holder": h.holder, "token": h.token, "lease_left_ms": h.left_ms})),
        "database": database,
        "last_cycle_success_at": last.map(|t| t.to_rfc3339()),
        "poll_interval_secs": interval.as_secs(),
        "problems": problems,
        "warnings": warnings,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    // Gauges that are cheaper to read at scrape time than to keep up to date.
    if let Ok(outbox) = ctx.store.outbox_pending_summary().await {
        ctx.metrics
            .set("codearts_bot_outbox_pending", &[], outbox.pending as f64);
        let age = outbox
            .oldest
            .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        ctx.metrics
            .set("codearts_bot_outbox_oldest_age_seconds", &[], age);
    }
    if let Some((ok, failed)) = ctx.client.auth().token_requests() {
        ctx.metrics.set_counter(
            "codearts_bot_token_refreshes_total",
            &[("outcome", "ok")],
            ok as f64,
        );
        ctx.metrics.set_counter(
            "codearts_bot_token_refreshes_total",
            &[("outcome", "failed")],
            failed as f64,
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ctx.metrics.render(),
    )
        .into_response()
}
