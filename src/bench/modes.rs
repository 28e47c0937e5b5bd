//! `codearts-bot bench --modes`: the poll modes side by side (docs/benchmarks.md, "Poll
//! modes"), and the official Python SDK's sequential ShowJobInfo loop over the same jobs.
//!
//! A simulator child with N jobs in P projects; for each of `job`, `list` and `auto`, a config
//! pinning every job with its project and `run --once` as a separate process: once on an empty
//! database (cold), then `--repeat` times with nothing changed (steady). Each run reports the
//! API calls per operation (the simulator's `by_api`), the cycle's own time (from the run's
//! summary line), the whole process's wall time and its peak resident memory (VmHWM, read
//! from /proc while it runs). Then the SDK loop (scripts/sdk_poll_loop.py in
//! target/sdk-venv), then the latency pass: the bot running on a one-second schedule in the
//! default mode with `poll.max_rps = 10`, builds failing at random jobs and moments, and the
//! time until each alert reaches a loopback receiver.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::app;
use crate::bench::process::SimProcess;
use crate::config::Config;
use crate::sim;

/// The AK/SK the simulator accepts for the SDK loop (a benchmark's throwaway pair).
const BENCH_AK: &str = "BENCHAKBENCHAKBENCH0";
const BENCH_SK: &str = "benchSKbenchSKbenchSKbenchSKbenchSK00000";

/// What to measure.
#[derive(Debug, Clone)]
pub struct ModesOptions {
    pub jobs: usize,
    pub projects: usize,
    pub repeat: usize,
    /// Latency samples (0: no latency pass).
    pub samples: usize,
    pub exe: Option<PathBuf>,
}

/// One `run --once`.
#[derive(Debug, Clone, Default)]
struct Run {
    calls: BTreeMap<String, u64>,
    cycle: Option<Duration>,
    wall: Duration,
    peak_rss: Option<u64>,
}

impl Run {
    fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

pub async fn run(options: ModesOptions) -> anyhow::Result<()> {
    if options.jobs == 0 || options.projects == 0 || options.repeat == 0 {
        bail!("--jobs, --projects and --repeat must be at least 1");
    }
    let exe = match &options.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe().context("cannot find our own executable")?,
    };
    let projects = options.projects.to_string();
    let sim = SimProcess::start_with(
        options.jobs,
        &["--projects", &projects, "--ak", BENCH_AK, "--sk", BENCH_SK],
    )?;
    let control = sim::Control::new(&sim.url, sim::DEFAULT_TOKEN);
    let dir = std::env::temp_dir().join(format!("codearts-bot-bench-modes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "codearts-bot bench --modes: {} jobs in {} projects, `{} run --once`, steady runs {}, release={}",
        options.jobs,
        options.projects,
        exe.display(),
        options.repeat,
        !cfg!(debug_assertions)
    );
    println!(
        "\n| mode | cold: calls | cold: wall | steady: calls (ShowJobInfo / ListProjectJobs / ListJob) \
         | steady: cycle (min / max) | steady: wall (min / max) | peak RSS |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let mut steady_cycle: BTreeMap<&str, (Duration, Option<Duration>)> = BTreeMap::new();
    for mode in ["job", "list", "auto"] {
        let config = dir.join(format!("{mode}.toml"));
        std::fs::write(
            &config,
            config_text(&sim.url, &dir, mode, &options, None, None),
        )?;
        let cold = run_once(&exe, &config, &control).await?;
        let mut steady = Vec::new();
        for _ in 0..options.repeat {
            steady.push(run_once(&exe, &config, &control).await?);
        }
        let last = steady.last().cloned().unwrap_or_default();
        let cycles: Vec<Duration> = steady.iter().filter_map(|r| r.cycle).collect();
        let walls: Vec<Duration> = steady.iter().map(|r| r.wall).collect();
        let peak = steady
            .iter()
            .chain([&cold])
            .filter_map(|r| r.peak_rss)
            .max();
        let call = |api: &str| last.calls.get(api).copied().unwrap_or(0);
        println!(
            "| {mode} | {} | {} | {} ({} / {} / {}) | {} / {} | {} / {} | {} |",
            cold.total_calls(),
            secs(cold.wall),
            last.total_calls(),
            call("ShowJobInfo"),
            call("ListProjectJobs"),
            call("ListJob"),
            min_secs(&cycles),
            max_secs(&cycles),
            min_secs(&walls),
            max_secs(&walls),
            peak.map_or_else(
                || "n/a".to_owned(),
                |b| format!("{:.1} MB", b as f64 / 1_048_576.0)
            ),
        );
        let running = running_cycle(&std::fs::read_to_string(&config)?, options.repeat).await?;
        steady_cycle.insert(mode, (running, walls.iter().min().copied()));
    }
    println!(
        "\nsteady cycle of a running bot (snapshots already in memory), best of {}:",
        options.repeat
    );
    for (mode, (cycle, _)) in &steady_cycle {
        println!("- {mode}: {}", secs(*cycle));
    }
    match sdk_loop(&sim.url, &dir, options.jobs) {
        Ok(sdk) => {
            println!(
                "\nofficial Python SDK, sequential ShowJobInfo over the same {} jobs: {:.3} s ({:.2} ms a job)",
                options.jobs,
                sdk.as_secs_f64(),
                sdk.as_secs_f64() * 1_000.0 / options.jobs as f64
            );
            for (mode, (cycle, wall)) in &steady_cycle {
                if let Some(wall) = wall {
                    println!(
                        "- {mode}: a running bot's cycle is {:.0}x faster than the SDK loop; a whole `run --once` process {:.0}x",
                        sdk.as_secs_f64() / cycle.as_secs_f64().max(1e-9),
                        sdk.as_secs_f64() / wall.as_secs_f64().max(1e-9)
                    );
                }
            }
        }
        Err(e) => println!("\nofficial Python SDK loop skipped: {e:#}"),
    }
    if options.samples > 0 {
        latency(&sim.url, &dir, &options).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The best of `repeat` cycles of a bot started in this process on `config` (whose database
/// already holds every job's baseline): what each cycle of `run` costs once it is up.
async fn running_cycle(config: &str, repeat: usize) -> anyhow::Result<Duration> {
    let config = Config::from_toml(config, "bench modes config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;
    crate::engine::poller::run_cycle(&ctx).await?; // loads the snapshots
    let mut best = Duration::MAX;
    for _ in 0..repeat {
        let report = crate::engine::poller::run_cycle(&ctx).await?;
        best = best.min(report.duration);
    }
    ctx.store.close().await;
    Ok(best)
}

/// The bot's config: every job pinned with its project, a webhook channel (`hook`, or a dead
/// port), the mode, and `extra_poll` lines.
fn config_text(
    sim_url: &str,
    dir: &Path,
    mode: &str,
    options: &ModesOptions,
    hook: Option<&str>,
    extra_poll: Option<&str>,
) -> String {
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{sim_url}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nconcurrency = 8\ntimeout_secs = 30\nmode = \"{mode}\"\n{}\n\
         [store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [[channels]]\nname = \"sink\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sim::DEFAULT_TOKEN,
        extra_poll.unwrap_or(""),
        dir.join(format!("{mode}.db")).display(),
        hook.unwrap_or("http://127.0.0.1:9/")
    );
    for i in 0..options.jobs {
        text.push_str(&format!(
            "[[jobs]]\nid = \"{}\"\nproject = \"{}\"\n",
            sim::seeded_job_id(i),
            sim::seeded_project_id(i % options.projects)
        ));
    }
    text
}

/// Spawns `exe run --once`, following its peak memory until it exits.
async fn run_once(exe: &Path, config: &Path, control: &sim::Control) -> anyhow::Result<Run> {
    control.reset_stats().await?;
    let started = Instant::now();
    let mut child = crate::bench::process::spawn_run_once(exe, config, true)?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss = None;
    let status = loop {
        if let Some(hwm) = crate::bench::process::peak_rss_of(&status_file) {
            peak_rss = Some(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let wall = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    if !status.success() {
        bail!("run --once failed ({status}): {stderr}");
    }
    Ok(Run {
        calls: control
            .by_api()
            .await?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        cycle: cycle_time(&stderr),
        wall,
        peak_rss,
    })
}

/// The cycle's duration from `run --once`'s summary line (`... events in 0.123 s; ...`).
fn cycle_time(stderr: &str) -> Option<Duration> {
    let line = stderr.lines().find(|l| l.starts_with("cycle: "))?;
    let after = &line[line.find(" events in ")? + " events in ".len()..];
    let secs: f64 = after.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

/// Runs scripts/sdk_poll_loop.py with target/sdk-venv's Python over the first `jobs` jobs.
fn sdk_loop(sim_url: &str, dir: &Path, jobs: usize) -> anyhow::Result<Duration> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/sdk-venv/bin/python");
    if !python.exists() {
        bail!(
            "{} is missing: run `bash scripts/sdk-conformance` once to create it",
            python.display()
        );
    }
    let ids = dir.join("ids.txt");
    let list: Vec<String> = (0..jobs)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    std::fs::write(&ids, list.join("\n"))?;
    let out = Command::new(&python)
        .arg(root.join("scripts/sdk_poll_loop.py"))
        .arg(sim_url)
        .arg(&ids)
        .env("SDK_LOOP_AK", BENCH_AK)
        .env("SDK_LOOP_SK", BENCH_SK)
        .output()
        .context("cannot run the SDK loop")?;
    if !out.status.success() {
        bail!(
            "the SDK loop failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let result: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "the SDK loop said {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    if result["failed"].as_u64() != Some(0) {
        bail!("the SDK loop had failed calls: {result}");
    }
    let wall = result["wall_s"]
        .as_f64()
        .context("no wall_s in the SDK loop's answer")?;
    Ok(Duration::from_secs_f64(wall))
}

/// Failure to chat at `poll.max_rps = 10`, in the default mode on a one-second schedule.
async fn latency(sim_url: &str, dir: &Path, options: &ModesOptions) -> anyhow::Result<()> {
    use axum::routing::post;
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let receiver = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<Value>| {
            let arrived_tx = arrived_tx.clone();
            async move {
                let job = body["job_id"].as_str().unwrap_or_default().to_owned();
                let _ = arrived_tx.send((job, Instant::now()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let receiver_task = tokio::spawn(async move { axum::serve(listener, receiver).await });
    let text = config_text(
        sim_url,
        dir,
        "auto",
        options,
        Some(&hook),
        Some("schedule = \"* * * * * *\"\nmax_rps = 10"),
    );
    let config = Config::from_toml(&text, "bench latency config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // The database of the `auto` runs above: every job has its baseline already.
    let ctx = app::start(config).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app::run(ctx, async {
        let _ = stop_rx.await;
    }));
    let control = sim::Control::new(sim_url, sim::DEFAULT_TOKEN);
    let mut samples = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..options.samples {
        // Isolated changes (further apart than `delivery.group_wait_ms`), at random jobs and
        // moments of the cycle.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(5_100 + seed % 2_000)).await;
        let job = sim::seeded_job_id((seed >> 16) as usize % options.jobs).to_string();
        let changed_at = Instant::now();
        control
            .put_job(
                &job,
                json!({"last_build_status": "failed", "last_build_time": 2_000_000_000_000_i64 + round as i64}),
            )
            .await
            .map_err(|e| anyhow::anyhow!("simulator control API: {e}"))?;
        let deadline = changed_at + Duration::from_secs(60);
        loop {
            match tokio::time::timeout_at(deadline.into(), arrived.recv()).await {
                Ok(Some((got, at))) if got == job => {
                    samples.push(at - changed_at);
                    break;
                }
                Ok(Some(_)) => {}
                _ => bail!("the failure of {job} never reached the receiver within 60 s"),
            }
        }
    }
    let _ = stop_tx.send(());
    let _ = running.await;
    receiver_task.abort();
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "\nfailure to chat, auto mode, poll.max_rps = 10, one-second schedule, {} jobs, {} samples: \
         min {:.2} s, median {:.2} s, p99 {:.2} s, max {:.2} s (target p99 <= 15 s)",
        options.jobs,
        samples.len(),
        samples[0].as_secs_f64(),
        pick(0.5).as_secs_f64(),
        pick(0.99).as_secs_f64(),
        samples[samples.len() - 1].as_secs_f64()
    );
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn min_secs(d: &[Duration]) -> String {
    d.iter()
        .min()
        .map_or_else(|| "n/a".to_owned(), |d| secs(*d))
}

fn max_secs(d: &[Duration]) -> String {
    d.iter()
        .max()
        .map_or_else(|| "n/a".to_owned(), |d| secs(*d))
}
