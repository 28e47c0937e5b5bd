//! `codearts-bot bench --context`: what the failure context costs and whether it ever holds
//! an alert back (docs/benchmarks.md, "Failure context").
//!
//! The simulator runs as a child process; the bot runs in this process with its dispatcher,
//! delivering to a loopback receiver that plays a generic webhook and a Discord webhook (it
//! answers `?wait=true` with a message id and accepts edits). Two passes over `samples` jobs
//! each, every job given a failed build through the simulator's control API:
//!
//! 1. **Prompt**: the context APIs answer at once. Reported: the time from the end of the
//!    cycle that saw the failures to each alert's arrival, whether it carried its context,
//!    the context calls per failed build, and the calls of a second cycle over the same builds.
//! 2. **Slow**: ShowRunningStatus (the first context call) answers after 10 s. Reported: the
//!    alerts' arrival (they must not wait past `context.wait_ms`), and when the Discord
//!    incident messages were edited with the context.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::Method;
use axum::routing::{patch, post};
use serde_json::{Value, json};

use crate::app;
use crate::bench::process::SimProcess;
use crate::config::Config;
use crate::engine::{Ctx, poller};
use crate::sim::{self, Control};

/// The operations a failed build's context may call.
const CONTEXT_APIS: [&str; 6] = [
    "ShowRunningStatus",
    "ShowJobBuildRecordDetail",
    "ShowBuildInfoRecord",
    "ShowBuildRecordFullStages",
    "DownloadBuildRealTimeLog",
    "ShowReportSummary",
];

/// The slow pass's delay of the first context call.
const SLOW_API: Duration = Duration::from_secs(10);

/// The stage every benchmark build fails in: how the receiver tells a card with context.
const FAILED_STAGE: &str = "Integration tests";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Arrival {
    at: Instant,
    method: Method,
    /// `webhook` or `discord`.
    channel: &'static str,
    with_context: bool,
    /// The body, to find the job in.
    body: String,
}

impl Arrival {
    /// Whether the request is about job `id`.
    fn about(&self, id: &str) -> bool {
        self.body.contains(id)
    }
}

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Arrival>>>);

impl Seen {
    fn push(&self, arrival: Arrival) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(arrival);
    }

    fn all(&self) -> Vec<Arrival> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The loopback receiver: `/hook` (the webhook contract) and a Discord webhook.
async fn receiver() -> anyhow::Result<(String, Seen)> {
    let seen = Seen::default();
    let app = Router::new()
        .route("/hook", post(webhook))
        .route("/api/webhooks/1/tok", post(discord_post))
        .route("/api/webhooks/1/tok/messages/{id}", patch(discord_patch))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}"), seen))
}

async fn webhook(State(seen): State<Seen>, body: Bytes) -> &'static str {
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    seen.push(Arrival {
        at: Instant::now(),
        method: Method::POST,
        channel: "webhook",
        with_context: json["context"]["failed_stage"] == FAILED_STAGE,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    "ok"
}

static MESSAGE_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn discord_post(State(seen): State<Seen>, body: Bytes) -> axum::Json<Value> {
    discord_seen(&seen, Method::POST, &body);
    let id = MESSAGE_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    axum::Json(json!({"id": id.to_string(), "channel_id": "1"}))
}

async fn discord_patch(
    State(seen): State<Seen>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> axum::Json<Value> {
    discord_seen(&seen, Method::PATCH, &body);
    axum::Json(json!({"id": id, "channel_id": "1"}))
}

fn discord_seen(seen: &Seen, method: Method, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    seen.push(Arrival {
        at: Instant::now(),
        method,
        channel: "discord",
        with_context: text.contains(FAILED_STAGE),
        body: text.into_owned(),
    });
}

/// What one pass measured.
struct PassResult {
    name: &'static str,
    failures: usize,
    /// Seconds from the end of the cycle to each webhook alert.
    alert_secs: Vec<f64>,
    alerts_with_context: usize,
    /// Seconds from the end of the cycle to each Discord edit that carried the context.
    edit_secs: Vec<f64>,
    calls_per_build: f64,
    calls_second_cycle: u64,
}

pub async fn run(samples: usize) -> anyhow::Result<()> {
    if samples == 0 {
        bail!("--samples must be at least 1");
    }
    let sim = SimProcess::start(samples * 2)?;
    let control = Control::new(&sim.url, sim::DEFAULT_TOKEN);
    let (base, seen) = receiver().await?;
    let dir = std::env::temp_dir().join(format!("codearts-bot-bench-ctx-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ids: Vec<String> = (0..samples * 2)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let ctx = bot(&sim.url, &base, &dir, &ids).await?;
    let wait_ms = ctx.config.context.wait_ms;
    println!(
        "codearts-bot bench --context: {samples} failed builds per pass, context.wait_ms = {wait_ms}, simulator {} (child process), release={}",
        sim.url,
        !cfg!(debug_assertions)
    );
    poller::run_cycle(&ctx).await?; // the baseline

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dispatcher = ctx.dispatcher();
    let wake = Arc::clone(&ctx.dispatch_wake);
    let dispatching = tokio::spawn(async move { dispatcher.run(wake, stop_rx).await });

    let prompt = pass(&ctx, &control, &seen, &ids[..samples], "prompt", None).await?;
    control
        .set_fault(json!({"delay_ms": SLOW_API.as_millis() as u64, "api": "ShowRunningStatus"}))
        .await
        .map_err(|e| anyhow::anyhow!("cannot arm the slow fault: {e}"))?;
    let slow = pass(
        &ctx,
        &control,
        &seen,
        &ids[samples..],
        "slow",
        Some(SLOW_API),
    )
    .await?;
    let _ = stop_tx.send(true);
    let _ = dispatching.await;
    let _ = std::fs::remove_dir_all(&dir);
    report(&[prompt, slow], wait_ms);
    Ok(())
}

/// The bot: the jobs, a webhook and a Discord channel on the receiver, a 30 s poll timeout
/// (so the slow pass's 10 s answer arrives), default `[context]`, and no grouping wait
/// (`delivery.group_wait_ms = 0`: grouping is measured by the delivery passes; here it would
/// only add its own wait to the context's).
async fn bot(
    sim_url: &str,
    base: &str,
    dir: &std::path::Path,
    ids: &[String],
) -> anyhow::Result<Ctx> {
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{sim_url}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\ntimeout_secs = 30\n[store]\npath = \"{}\"\n[delivery]\ngroup_wait_ms = 0\n\
         [[channels]]\nname = \"webhook\"\ntype = \"webhook\"\nurl = \"{base}/hook\"\n\
         [[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{base}/api/webhooks/1/tok\"\n",
        sim::DEFAULT_TOKEN,
        dir.join("context.db").display()
    );
    for id in ids {
        text.push_str(&format!("[[jobs]]\nid = \"{id}\"\n"));
    }
    let config = Config::from_toml(&text, "bench context config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    app::start(config).await
}

/// Fails the jobs with a new build each and runs a cycle: all at once (`slow` is `None`),
/// or one job per cycle, a cycle every `context.wait_ms` + 1 s (`slow`: the context APIs are
/// that slow, and each alert must be its own Discord message for its edit to be measured:
/// alerts that leave together share one message, which is never edited). Then waits for the
/// alerts, and with `slow` for the Discord edits that bring the context.
async fn pass(
    ctx: &Ctx,
    control: &Control,
    seen: &Seen,
    jobs: &[String],
    name: &'static str,
    slow: Option<Duration>,
) -> anyhow::Result<PassResult> {
    control
        .reset_stats()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reset the simulator's counters: {e}"))?;
    let before = seen.all().len();
    let rounds: Vec<&[String]> = match slow {
        Some(_) => jobs.chunks(1).collect(),
        None => vec![jobs],
    };
    let spacing = ctx.config.context.wait() + Duration::from_secs(1);
    let mut cycle_ends = Vec::new();
    for round in rounds {
        for id in round {
            control
                .create_build(id, failed_build())
                .await
                .map_err(|e| anyhow::anyhow!("cannot make a failed build of {id}: {e}"))?;
        }
        let report = poller::run_cycle(ctx).await?;
        let end = Instant::now();
        if report.events < round.len() {
            bail!("{name}: {} failures seen of {}", report.events, round.len());
        }
        cycle_ends.extend(round.iter().map(|id| (id.clone(), end)));
        if slow.is_some() {
            tokio::time::sleep(spacing).await;
        }
    }
    let deadline = Instant::now() + slow.unwrap_or_default() + Duration::from_secs(20);
    let arrivals = loop {
        let all: Vec<Arrival> = seen.all().into_iter().skip(before).collect();
        let alerts = all.iter().filter(|a| a.channel == "webhook").count();
        let edits = all
            .iter()
            .filter(|a| a.channel == "discord" && a.method == Method::PATCH && a.with_context)
            .count();
        let done = alerts >= jobs.len() && (slow.is_none() || edits >= jobs.len());
        if done || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    ctx.context_fetches.wait(Duration::from_secs(1)).await;
    let calls = context_calls(control).await?;
    control
        .reset_stats()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    poller::run_cycle(ctx).await?;
    ctx.context_fetches.wait(Duration::from_secs(1)).await;
    let calls_second_cycle = context_calls(control).await?;
    // Seconds from the end of the job's cycle to the first arrival that `matches`.
    let after = |matches: &dyn Fn(&Arrival) -> bool| -> Vec<f64> {
        cycle_ends
            .iter()
            .filter_map(|(id, end)| {
                let a = arrivals.iter().find(|a| a.about(id) && matches(a))?;
                Some(a.at.saturating_duration_since(*end).as_secs_f64())
            })
            .collect()
    };
    let alert_secs = after(&|a| a.channel == "webhook");
    let alerts_with_context = cycle_ends
        .iter()
        .filter(|(id, _)| {
            arrivals
                .iter()
                .any(|a| a.channel == "webhook" && a.about(id) && a.with_context)
        })
        .count();
    let edit_secs =
        after(&|a| a.channel == "discord" && a.method == Method::PATCH && a.with_context);
    Ok(PassResult {
        name,
        failures: jobs.len(),
        alert_secs,
        alerts_with_context,
        edit_secs,
        calls_per_build: calls as f64 / jobs.len() as f64,
        calls_second_cycle,
    })
}

fn failed_build() -> Value {
    json!({
        "status": "failed",
        "branch": "main",
        "commit": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        "commit_message": "payments: retry on 503",
        "user": "alice",
        "trigger_type": "Push",
        "stages": [
            {"name": "Build", "status": "success", "duration_ms": 40_000},
            {"name": FAILED_STAGE, "status": "failed", "duration_ms": 95_000}
        ],
        "log": (1..=40).map(|i| format!("[INFO] step {i} DB_PASSWORD=hunter2")).collect::<Vec<_>>().join("\n"),
        "tests": {"total": 310, "failures": 4, "errors": 1},
        "err_msg": "exit code 1"
    })
}

async fn context_calls(control: &Control) -> anyhow::Result<u64> {
    let by_api: BTreeMap<String, u64> = control
        .by_api()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the simulator's counters: {e}"))
        .context("context calls")?;
    Ok(CONTEXT_APIS
        .iter()
        .map(|api| by_api.get(*api).copied().unwrap_or(0))
        .sum())
}

fn report(passes: &[PassResult], wait_ms: u64) {
    println!(
        "\n| pass | failed builds | alerts | with context | alert after cycle p50 / max | context edits | edit after cycle p50 / max | context calls per build | calls on the next cycle |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in passes {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            p.name,
            p.failures,
            p.alert_secs.len(),
            p.alerts_with_context,
            spread(&p.alert_secs),
            p.edit_secs.len(),
            spread(&p.edit_secs),
            p.calls_per_build,
            p.calls_second_cycle
        );
    }
    println!(
        "\nTarget: every alert within context.wait_ms + 1 s = {:.1} s of its cycle; at most 6 calls per failed build; 0 on the next cycle.",
        wait_ms as f64 / 1000.0 + 1.0
    );
}

/// "0.012 s / 0.031 s", or "-" when empty.
fn spread(secs: &[f64]) -> String {
    if secs.is_empty() {
        return "-".to_owned();
    }
    let mut sorted = secs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted[sorted.len() / 2];
    let max = sorted[sorted.len() - 1];
    format!("{p50:.3} s / {max:.3} s")
}
