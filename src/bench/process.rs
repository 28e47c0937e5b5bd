//! What every benchmark pass shares: the simulator as a child process (so its memory and
//! threads are not counted as ours), scripting job changes through its control API, and this
//! process's resident memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::sim;

/// The child simulator; killed on drop.
pub(crate) struct SimProcess {
    child: Child,
    pub(crate) url: String,
    /// Kept open: the simulator prints more lines after the first, and a closed pipe would
    /// make those prints fail and the simulator exit.
    _stdout: BufReader<ChildStdout>,
}

impl SimProcess {
    pub(crate) fn start(jobs: usize) -> anyhow::Result<Self> {
        Self::start_with(jobs, &[])
    }

    /// With further `sim` arguments (`--projects`, `--ak`/`--sk`).
    pub(crate) fn start_with(jobs: usize, args: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find our own executable")?;
        let mut child = Command::new(exe)
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--jobs",
                &jobs.to_string(),
            ])
            .args(args)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the simulator")?;
        let stdout = child.stdout.take().context("simulator stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .context("simulator said nothing")?;
        let url = first
            .split_whitespace()
            .last()
            .filter(|u| u.starts_with("http://"))
            .with_context(|| format!("unexpected first line from the simulator: {first:?}"))?
            .to_owned();
        Ok(Self {
            child,
            url,
            _stdout: stdout,
        })
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `exe run --once --config <config>` with logging off and stdout dropped; stderr is
/// piped when `keep_stderr` (its summary line), else dropped.
pub(crate) fn spawn_run_once(
    exe: &std::path::Path,
    config: &std::path::Path,
    keep_stderr: bool,
) -> anyhow::Result<Child> {
    Command::new(exe)
        .arg("run")
        .arg("--once")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(if keep_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .context("cannot start run --once")
}

/// Resident memory of this process: (current, peak) in bytes, from /proc (Linux).
pub fn resident_memory() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The peak resident set (`VmHWM`) of a running process from its `/proc/<pid>/status`, in
/// bytes; `None` once it has exited.
pub(crate) fn peak_rss_of(status_file: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Makes every job of `ids` a fresh failed build (`success → failed` for seeded jobs).
pub(crate) async fn change_jobs(
    base: &str,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let control = sim::Control::new(base, sim::DEFAULT_TOKEN);
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let build_time = chrono::Utc::now().timestamp_millis();
    for id in ids {
        let control = control.clone();
        let limit = Arc::clone(&limit);
        let id = id.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            control
                .put_job(
                    &id,
                    json!({"last_build_status": "failed", "last_build_time": build_time}),
                )
                .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        result?.map_err(|e| anyhow::anyhow!("simulator control API: {e}"))?;
    }
    Ok(())
}
