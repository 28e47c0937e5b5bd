//! `codearts-bot bench --board`: what the status board costs with many watched jobs
//! (docs/benchmarks.md, "Board"; the target is `/` in at most 100 ms of server time with
//! 10,000 jobs).
//!
//! The simulator runs as a child process with `--jobs` jobs in 20 projects. The bot (in this
//! process) takes its baseline, 1% of the jobs fail and a second cycle records their events
//! and incidents, then the HTTP listener serves the board on loopback and `--samples`
//! sequential requests are timed for each of `/`, a later page of `/`, `/api/v1/jobs`, a job
//! page and `/api/v1/incidents`. Reported: the server time (the board's `Server-Timing`
//! header: routing, store reads, rendering) and the client's wall time, p50 and max.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::app;
use crate::bench::process::{SimProcess, change_jobs};
use crate::config::Config;
use crate::engine::poller;
use crate::sim;

/// One timed request.
struct Sample {
    server: Duration,
    wall: Duration,
    bytes: usize,
}

/// Runs the pass and prints its report.
pub async fn run(jobs: usize, samples: usize) -> anyhow::Result<()> {
    if jobs == 0 || samples == 0 {
        bail!("--jobs and --samples must be at least 1");
    }
    let sim = SimProcess::start_with(jobs, &["--projects", "20"])?;
    let dir = std::env::temp_dir().join(format!("codearts-bot-bench-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&sim, &dir, jobs, samples).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    sim: &SimProcess,
    dir: &std::path::Path,
    jobs: usize,
    samples: usize,
) -> anyhow::Result<()> {
    let ids: Vec<String> = (0..jobs)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nconcurrency = 8\ntimeout_secs = 30\n[store]\npath = \"{}\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nboard = true\n\
         [[channels]]\nname = \"sink\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
        sim.url,
        sim::DEFAULT_TOKEN,
        dir.join("bench.db").display()
    );
    for id in &ids {
        text.push_str("[[jobs]]\nid = \"");
        text.push_str(id);
        text.push_str("\"\n");
    }
    let config =
        Config::from_toml(&text, "bench config", &|_| None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;
    println!(
        "codearts-bot bench --board: {jobs} watched jobs in 20 projects, {samples} requests per \
         page, release={}",
        !cfg!(debug_assertions)
    );
    let started = Instant::now();
    poller::run_cycle(&ctx).await?;
    let failing = (jobs / 100).max(1);
    change_jobs(&sim.url, &ids[..failing], 8).await?;
    let report = poller::run_cycle(&ctx).await?;
    println!(
        "two cycles in {:.1} s: {} events ({failing} jobs failing)",
        started.elapsed().as_secs_f64(),
        report.events
    );

    let (listener, addr) = crate::server::bind("127.0.0.1:0".parse()?).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve(listener, ctx.clone(), async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let last_page = jobs.div_ceil(100);
    let pages = [
        ("/".to_owned(), "`/` (first page: the failing jobs)"),
        (format!("/?page={last_page}"), "`/?page=N` (the last page)"),
        ("/api/v1/jobs".to_owned(), "`/api/v1/jobs`"),
        (format!("/jobs/{}", ids[0]), "`/jobs/{id}` (a failing job)"),
        ("/api/v1/incidents".to_owned(), "`/api/v1/incidents`"),
    ];
    println!(
        "\n| request | server p50 | server max | wall p50 | wall max | body |\n|---|---:|---:|---:|---:|---:|"
    );
    for (path, label) in &pages {
        // Warm-up: the first request loads the snapshot cache if no cycle did.
        for _ in 0..2 {
            time(&http, &base, path).await?;
        }
        let mut runs = Vec::with_capacity(samples);
        for _ in 0..samples {
            runs.push(time(&http, &base, path).await?);
        }
        let (sp50, smax) = p50_max(runs.iter().map(|s| s.server).collect());
        let (wp50, wmax) = p50_max(runs.iter().map(|s| s.wall).collect());
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} kB |",
            ms(sp50),
            ms(smax),
            ms(wp50),
            ms(wmax),
            runs[0].bytes / 1024
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    ctx.store.close().await;
    Ok(())
}

async fn time(http: &reqwest::Client, base: &str, path: &str) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let response = http.get(format!("{base}{path}")).send().await?;
    if !response.status().is_success() {
        bail!("{path} answered {}", response.status());
    }
    let server = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("{path}: no Server-Timing header"))?;
    let bytes = response.bytes().await?.len();
    Ok(Sample {
        server: Duration::from_secs_f64(server / 1000.0),
        wall: started.elapsed(),
        bytes,
    })
}

fn p50_max(mut values: Vec<Duration>) -> (Duration, Duration) {
    values.sort();
    (
        values[values.len() / 2],
        values.last().copied().unwrap_or_default(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
