//! `codearts-bot bench --startup`: what a restart costs with N jobs pinned in the config.
//!
//! For each size N: a simulator child with N seeded jobs, a config pinning all of them, then
//! `run --once` as a separate process (the whole process is what an operator or an external
//! scheduler pays): once on an empty database (cold), then `--repeat` times with nothing
//! changed (warm). Each run reports the time from spawn to the first API request the
//! simulator counts (start-up: config load, store open, watch-list sync, loading the watch
//! list and snapshots) and to exit. The binary run is this one unless `--exe` names another,
//! so an older build can be measured by the same driver.
//!
//! Also per size: the peak resident memory of the warm runs (`VmHWM`, read from /proc while
//! the process runs), how long parsing the config file takes (measured in this process with the
//! same code, so "config loaded -> first request" is the first request minus it), and, when
//! `wrk` is installed, `wrk` issuing N ShowJobInfo GETs to the same simulator at the same
//! concurrency (8), the floor a whole `run --once` in `job` mode is compared with, and `wrk`
//! reading the N/100 ListProjectJobs pages one after the other (one connection, as the poller
//! reads one list), the floor of the default mode's requests.
//!
//! The default mode (`auto`) reads the lists, so its whole run is compared with the list
//! pages' floor; the `job` mode runs (a cold run on a database of its own, then `--repeat`
//! warm ones) are what compares with wrk's N ShowJobInfo GETs, request for request.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::process::SimProcess;
use crate::sim;

/// One `run --once`: spawn to first API request, spawn to exit, and peak memory.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first_request: Option<Duration>,
    exit: Duration,
    peak_rss: Option<u64>,
}

/// What one size measured beyond the runs.
struct Extra {
    config_load: Duration,
    wrk: Option<Duration>,
    /// wrk reading the list pages one after the other.
    wrk_pages: Option<Duration>,
    /// The fastest warm `run --once` in `job` mode (spawn to exit).
    job_exit: Duration,
}

/// Runs the start-up pass for each size and prints a table with the growth between sizes.
pub async fn run(sizes: &[usize], repeat: usize, exe: Option<PathBuf>) -> anyhow::Result<()> {
    if sizes.is_empty() || sizes.contains(&0) || repeat == 0 {
        bail!("--sizes must list sizes of at least 1 and --repeat must be at least 1");
    }
    let exe = match exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("cannot find our own executable")?,
    };
    println!(
        "codearts-bot bench --startup: `{} run --once`, warm runs {repeat}, release={}",
        exe.display(),
        !cfg!(debug_assertions)
    );
    println!(
        "\n| jobs | cold: first request | cold: exit | warm: first request (min / max) | \
         warm: exit (min / max) | config parse | warm: peak RSS | wrk, N GETs | \
         job mode: warm exit (min) | wrk, N/100 list pages in a row |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut previous: Option<(usize, Duration, Duration, u64)> = None;
    let mut growth = Vec::new();
    let mut against = Vec::new();
    for &n in sizes {
        let (cold, warm, extra) = one_size(&exe, n, repeat).await?;
        let first_min = warm.iter().filter_map(|t| t.first_request).min();
        let first_max = warm.iter().filter_map(|t| t.first_request).max();
        let exit_min = warm.iter().map(|t| t.exit).min().unwrap_or_default();
        let exit_max = warm.iter().map(|t| t.exit).max().unwrap_or_default();
        let peak = warm
            .iter()
            .filter_map(|t| t.peak_rss)
            .max()
            .unwrap_or_default();
        println!(
            "| {n} | {} | {} | {} / {} | {} / {} | {} | {:.1} MB | {} | {} | {} |",
            secs(cold.first_request),
            secs(Some(cold.exit)),
            secs(first_min),
            secs(first_max),
            secs(Some(exit_min)),
            secs(Some(exit_max)),
            secs(Some(extra.config_load)),
            peak as f64 / 1_048_576.0,
            secs(extra.wrk),
            secs(Some(extra.job_exit)),
            secs(extra.wrk_pages),
        );
        // The first ratio is issue #18's figure as written (the default mode's whole run
        // against N ShowJobInfo GETs); the other two compare request for request.
        against.push(format!(
            "{n} jobs: warm exit / wrk's N GETs {}, warm exit / wrk's list pages {}, \
             job mode's warm exit / wrk's N GETs {}",
            ratio(Some(exit_min), extra.wrk),
            ratio(Some(exit_min), extra.wrk_pages),
            ratio(Some(extra.job_exit), extra.wrk),
        ));
        if let (Some((m, first, exit, rss)), Some(first_now)) = (previous, first_min) {
            growth.push(format!(
                "{m} -> {n} jobs ({:.0}x): warm first request {:.1}x, warm exit {:.1}x, peak RSS {:.1}x",
                n as f64 / m as f64,
                first_now.as_secs_f64() / first.as_secs_f64().max(1e-9),
                exit_min.as_secs_f64() / exit.as_secs_f64().max(1e-9),
                peak as f64 / rss.max(1) as f64,
            ));
        }
        previous = first_min.map(|f| (n, f, exit_min, peak));
    }
    for line in against.into_iter().chain(growth) {
        println!("\n{line}");
    }
    Ok(())
}

/// One size: a cold run on an empty database, then `repeat` warm runs.
async fn one_size(
    exe: &Path,
    n: usize,
    repeat: usize,
) -> anyhow::Result<(Timing, Vec<Timing>, Extra)> {
    let sim = SimProcess::start(n)?;
    let dir = std::env::temp_dir().join(format!(
        "codearts-bot-bench-startup-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nconcurrency = 8\ntimeout_secs = 30\n[store]\npath = \"{}\"\n\
         [[channels]]\nname = \"sink\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
        sim.url,
        sim::DEFAULT_TOKEN,
        dir.join("bot.db").display()
    );
    for i in 0..n {
        text.push_str("[[jobs]]\nid = \"");
        text.push_str(sim::seeded_job_id(i).as_str());
        text.push_str("\"\n");
    }
    let config = dir.join("bot.toml");
    std::fs::write(&config, &text)?;
    // The same jobs in `job` mode, on a database of their own (a job-mode answer carries
    // fields a list entry does not, so sharing the database would make its runs write).
    let job_config = dir.join("bot-job.toml");
    std::fs::write(
        &job_config,
        text.replacen("[poll]\n", "[poll]\nmode = \"job\"\n", 1)
            .replacen("bot.db", "bot-job.db", 1),
    )?;
    let parse_started = Instant::now();
    crate::config::Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let config_load = parse_started.elapsed();
    let wrk = wrk_gets(&sim.url, &dir, n)?;
    let wrk_pages = wrk_list_pages(&sim.url, &dir, n)?;
    let control = sim::Control::new(&sim.url, sim::DEFAULT_TOKEN);
    let cold = run_once(exe, &config, &control).await?;
    let mut warm = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        warm.push(run_once(exe, &config, &control).await?);
    }
    run_once(exe, &job_config, &control).await?;
    let mut job_exit = Duration::MAX;
    for _ in 0..repeat {
        job_exit = job_exit.min(run_once(exe, &job_config, &control).await?.exit);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((
        cold,
        warm,
        Extra {
            config_load,
            wrk,
            wrk_pages,
            job_exit,
        },
    ))
}

/// Spawns `exe run --once --config <config>` and watches the simulator's request counter
/// (every 2 ms) until the first API request, then waits for the exit.
async fn run_once(exe: &Path, config: &Path, control: &sim::Control) -> anyhow::Result<Timing> {
    control.reset_stats().await?;
    let started = Instant::now();
    let mut child = crate::bench::process::spawn_run_once(exe, config, false)?;
    let mut first_request = None;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_rss = None;
    let status = loop {
        if let Some(hwm) = crate::bench::process::peak_rss_of(&status_file) {
            peak_rss = Some(hwm);
        }
        if first_request.is_none() {
            let stats = match control.stats().await {
                Ok(stats) => stats,
                Err(e) => {
                    // Not left running when the driver gives up.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e.into());
                }
            };
            if stats["requests"].as_u64().unwrap_or_default() > 0 {
                first_request = Some(started.elapsed());
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let exit = started.elapsed();
    if !status.success() {
        bail!("run --once failed: {status}");
    }
    Ok(Timing {
        first_request,
        exit,
        peak_rss,
    })
}

/// `wrk` (when installed) reading the default project's ListProjectJobs pages (100 jobs a
/// page, as the poller asks) one after the other on one connection for 3 seconds; the time
/// the N/100 pages take at the rate it sustained.
fn wrk_list_pages(sim_url: &str, dir: &Path, n: usize) -> anyhow::Result<Option<Duration>> {
    let pages = n.div_ceil(100);
    let script = format!(
        "local n = 0\nrequest = function()\n  local i = n % {pages}\n  n = n + 1\n  \
         return wrk.format(\"GET\", \"/v1/job/{}/list?page_index=\" .. i .. \"&page_size=100\", \
         {{[\"X-Auth-Token\"] = \"{}\", [\"Content-Type\"] = \"application/json\"}})\nend\n",
        sim::seeded_project_id(0),
        sim::DEFAULT_TOKEN
    );
    let rps = wrk_rate(&script, dir, "pages.lua", sim_url, &["-t1", "-c1"])?;
    Ok(rps.map(|rps| Duration::from_secs_f64(pages as f64 / rps.max(1e-9))))
}

/// `wrk` (when installed) GETting ShowJobInfo over the seeded ids with 8 connections on 2
/// threads (the poller's default concurrency) for 3 seconds; the time `n` GETs take at the
/// rate it sustained. (wrk runs for a duration, not a number of requests.)
fn wrk_gets(sim_url: &str, dir: &Path, n: usize) -> anyhow::Result<Option<Duration>> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Ok(None);
    }
    let ids: Vec<String> = (0..n)
        .map(|i| format!("\"{}\"", sim::seeded_job_id(i)))
        .collect();
    let script = format!(
        "local ids = {{{}}}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  \
         return wrk.format(\"GET\", \"/v1/job/\" .. ids[(n % #ids) + 1] .. \"/info\", \
         {{[\"X-Auth-Token\"] = \"{}\", [\"Content-Type\"] = \"application/json\"}})\nend\n",
        ids.join(","),
        sim::DEFAULT_TOKEN
    );
    let rps = wrk_rate(&script, dir, "gets.lua", sim_url, &["-t2", "-c8"])?;
    Ok(rps.map(|rps| Duration::from_secs_f64(n as f64 / rps.max(1e-9))))
}

/// Runs `wrk` for 3 seconds with `script` (written to `name` in `dir`) and its `Requests/sec`;
/// `None` when wrk is not installed.
fn wrk_rate(
    script: &str,
    dir: &Path,
    name: &str,
    sim_url: &str,
    connections: &[&str],
) -> anyhow::Result<Option<f64>> {
    if Command::new("wrk").arg("--version").output().is_err() {
        return Ok(None);
    }
    let path = dir.join(name);
    std::fs::write(&path, script)?;
    let out = Command::new("wrk")
        .args(connections)
        .args(["-d3s", "-s"])
        .arg(&path)
        .arg(sim_url)
        .output()
        .context("cannot run wrk")?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || report.contains("Non-2xx") {
        bail!(
            "wrk failed or got errors: {report} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rps: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's report: {report}"))?;
    Ok(Some(rps))
}

fn ratio(a: Option<Duration>, b: Option<Duration>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64().max(1e-9)),
        _ => "n/a".to_owned(),
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()))
}
