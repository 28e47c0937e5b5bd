//! `codearts-bot bench`: the poll pipeline measured against the loopback ceiling.
//!
//! Starts the simulator as a child process (so its memory and threads are not counted as
//! ours), then in this process: a plain HTTP GET loop over the same ids at the same
//! concurrency (the ceiling), and full poll cycles through the real pipeline (client, detector,
//! SQLite transaction, outbox): the baseline, one where 10% of the jobs changed, and one where
//! nothing changed. Reports jobs per second, wall time, the ratio to the ceiling, and resident
//! memory (idle after start, and peak). Then the delivery passes of [`crate::bench::delivery`]:
//! events per second through the outbox, and messages per event in a 1,000-job burst; and the
//! chat command pass of [`crate::bench::chat`]: `/job` latency through the signed Discord and
//! Slack endpoints. `bench --startup` runs only [`crate::bench::startup`]: what a restart
//! costs with N pinned jobs; `bench --modes` only [`crate::bench::modes`]: the poll modes and
//! the official SDK's loop side by side; `bench --context` only [`crate::bench::context`]: what
//! the failure context costs and whether it holds an alert back; `bench --board` only
//! [`crate::bench::board`]: the status board's pages with many watched jobs; `bench --ha` only
//! [`crate::bench::ha`]: steady cycles on PostgreSQL against SQLite, and the failover of two
//! `run` replicas sharing a PostgreSQL database. Results go to docs/benchmarks.md.

pub mod board;
pub mod chat;
pub mod context;
pub mod delivery;
pub mod ha;
pub mod modes;
pub mod process;
mod receiver;
pub mod startup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::app;
use crate::bench::process::{SimProcess, change_jobs, resident_memory};
use crate::config::Config;
use crate::engine::Ctx;
use crate::engine::poller;
use crate::sim;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub jobs: usize,
    pub concurrency: usize,
    /// Share of jobs changed before the second cycle, in percent.
    pub changed_percent: usize,
}

/// One measured pass.
#[derive(Debug, Clone)]
pub struct Pass {
    pub name: &'static str,
    pub wall: Duration,
    pub jobs: usize,
    pub failed: usize,
    pub events: usize,
}

impl Pass {
    pub fn jobs_per_sec(&self) -> f64 {
        self.jobs as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.1} MB", b as f64 / 1_048_576.0),
    )
}

/// Runs the benchmark and prints its report.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    if options.jobs == 0 || options.concurrency == 0 {
        bail!("--jobs and --concurrency must be at least 1");
    }
    let sim = SimProcess::start(options.jobs)?;
    let dir = std::env::temp_dir().join(format!("codearts-bot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ids: Vec<String> = (0..options.jobs)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let store = format!("path = \"{}\"", dir.join("bench.db").display());
    let config = poll_config(&sim.url, &ids, options.concurrency, &store)?;
    let ctx = app::start(config).await?;
    let (idle_rss, _) = resident_memory();

    println!(
        "codearts-bot bench: {} jobs, concurrency {}, simulator {} (child process), release={}",
        options.jobs,
        options.concurrency,
        sim.url,
        !cfg!(debug_assertions)
    );
    let mut passes = Vec::new();
    // The ceiling: the same calls, nothing done with the answers. Best of two (warm pools).
    let first = plain_get_loop(&sim.url, &ids, options.concurrency).await?;
    let second = plain_get_loop(&sim.url, &ids, options.concurrency).await?;
    let ceiling = if first.wall < second.wall {
        first
    } else {
        second
    };
    passes.push(ceiling.clone());

    passes.push(cycle(&ctx, "cycle 1: baseline (every job stored)").await?);
    let changed = (options.jobs * options.changed_percent / 100).max(1);
    change_jobs(&sim.url, &ids[..changed], options.concurrency).await?;
    passes.push(cycle(&ctx, "cycle 2: 10% of jobs changed").await?);
    passes.push(cycle(&ctx, "cycle 3: nothing changed").await?);

    println!(
        "\n| pass | wall | jobs/s | failed | events | vs GET loop |\n|---|---:|---:|---:|---:|---:|"
    );
    for p in &passes {
        println!(
            "| {} | {:.3} s | {:.0} | {} | {} | {:.2}x |",
            p.name,
            p.wall.as_secs_f64(),
            p.jobs_per_sec(),
            p.failed,
            p.events,
            p.wall.as_secs_f64() / ceiling.wall.as_secs_f64().max(1e-9)
        );
    }
    // Peak before the latency pass, which starts a second bot in this process.
    let (_, peak_rss) = resident_memory();
    let latencies = change_to_chat_latency(&sim.url, &ids, &dir, options.concurrency).await?;
    let outbox = ctx.store.outbox_counts().await?;
    println!(
        "\nresident memory: {} idle after start with {} watched jobs, {} peak (targets: 30 MB idle, 60 MB peak)",
        mb(idle_rss),
        options.jobs,
        mb(peak_rss)
    );
    println!(
        "outbox after the cycles: {} pending deliveries",
        outbox.pending
    );
    let mut sorted = latencies;
    sorted.sort();
    if let (Some(min), Some(max)) = (sorted.first(), sorted.last()) {
        println!(
            "change-to-chat latency, 1-second schedule, {} jobs, {} samples: min {:.2} s, median {:.2} s, max {:.2} s (target 1.5 s)",
            options.jobs,
            sorted.len(),
            min.as_secs_f64(),
            sorted[sorted.len() / 2].as_secs_f64(),
            max.as_secs_f64()
        );
    }
    ctx.store.close().await;
    drop(ctx);
    // The delivery passes start their own simulators.
    drop(sim);
    let rest = async {
        delivery::run(&dir, options.concurrency).await?;
        chat::run(&dir).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    rest
}

/// Runs the bot as `run` does, on a one-second schedule, with a webhook channel pointing at a
/// receiver in this process; changes one job at a time (the last one polled in a cycle, the
/// worst case) and measures how long until the receiver has the alert. The changes are
/// isolated (further apart than `group_wait`); changes that come in bursts are grouped and wait
/// up to `group_wait` by design.
async fn change_to_chat_latency(
    sim_url: &str,
    ids: &[String],
    dir: &std::path::Path,
    concurrency: usize,
) -> anyhow::Result<Vec<Duration>> {
    use axum::routing::post;
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let receiver = axum::Router::new().route(
        "/hook",
        post(move || {
            let arrived_tx = arrived_tx.clone();
            async move {
                let _ = arrived_tx.send(Instant::now());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let receiver_task = tokio::spawn(async move { axum::serve(listener, receiver).await });

    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{sim_url}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nschedule = \"* * * * * *\"\nconcurrency = {concurrency}\ntimeout_secs = 30\n\
         [store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [[channels]]\nname = \"latency\"\ntype = \"webhook\"\nurl = \"{hook}\"\n",
        sim::DEFAULT_TOKEN,
        dir.join("latency.db").display()
    );
    for id in ids {
        text.push_str("[[jobs]]\nid = \"");
        text.push_str(id);
        text.push_str("\"\n");
    }
    let config = Config::from_toml(&text, "bench latency config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;
    // Baseline first, so the scheduled cycles only see the changes we make.
    poller::run_cycle(&ctx).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(crate::app::run(ctx, async {
        let _ = stop_rx.await;
    }));
    let control = sim::Control::new(sim_url, sim::DEFAULT_TOKEN);
    let mut samples = Vec::new();
    for round in 0..5_i64 {
        // A different job each round (seeded jobs start enabled), landing at different points
        // of the schedule, each an isolated change: rounds are further apart than
        // `delivery.group_wait_ms`, so none waits to be grouped with the previous one.
        tokio::time::sleep(Duration::from_millis(5_200 + 130 * round as u64)).await;
        let id = &ids[ids.len() - 1 - round as usize];
        let changed_at = Instant::now();
        control
            .put_job(id, json!({"disabled": true}))
            .await
            .map_err(|e| anyhow::anyhow!("simulator control API: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(10), arrived.recv()).await {
            Ok(Some(at)) => samples.push(at - changed_at),
            _ => bail!("the change never reached the receiver within 10 s"),
        }
    }
    let _ = stop_tx.send(());
    let _ = running.await;
    receiver_task.abort();
    Ok(samples)
}

/// The poll passes' config: the simulator at `sim_url` with a static token, `concurrency`
/// workers, a 30 s timeout, the default schedule and poll mode, `store` as the `[store]`
/// table's body (`path = "..."` or `url = "..."`), a webhook channel nobody answers (the poll
/// passes run no dispatcher), and every id of `ids` as a pinned job.
pub(crate) fn poll_config(
    sim_url: &str,
    ids: &[String],
    concurrency: usize,
    store: &str,
) -> anyhow::Result<Config> {
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{sim_url}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nconcurrency = {concurrency}\ntimeout_secs = 30\n[store]\n{store}\n\
         [[channels]]\nname = \"sink\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
        sim::DEFAULT_TOKEN,
    );
    for id in ids {
        text.push_str("[[jobs]]\nid = \"");
        text.push_str(id);
        text.push_str("\"\n");
    }
    Config::from_toml(&text, "bench config", &|_| None).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One poll cycle through the real pipeline, timed.
pub(crate) async fn cycle(ctx: &Ctx, name: &'static str) -> anyhow::Result<Pass> {
    let started = Instant::now();
    let report = poller::run_cycle(ctx).await?;
    Ok(Pass {
        name,
        wall: started.elapsed(),
        jobs: report.jobs,
        failed: report.failed_total(),
        events: report.events,
    })
}

async fn plain_get_loop(base: &str, ids: &[String], concurrency: usize) -> anyhow::Result<Pass> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;
    let limit = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for id in ids {
        let http = http.clone();
        let limit = Arc::clone(&limit);
        let url = format!("{base}/v1/job/{id}/info");
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let response = http
                .get(&url)
                .header("X-Auth-Token", sim::DEFAULT_TOKEN)
                .header("Content-Type", "application/json")
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        });
    }
    let mut failed = 0;
    while let Some(ok) = tasks.join_next().await {
        if !matches!(ok, Ok(true)) {
            failed += 1;
        }
    }
    Ok(Pass {
        name: "plain GET loop (the loopback ceiling)",
        wall: started.elapsed(),
        jobs: ids.len(),
        failed,
        events: 0,
    })
}
