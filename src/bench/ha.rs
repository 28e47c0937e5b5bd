//! `codearts-bot bench --ha`: several replicas on PostgreSQL (issue #16, docs/ha.md; results in
//! docs/benchmarks.md, "Several replicas (PostgreSQL)"). The server is `--store-url` or
//! `CODEARTS_BOT_TEST_PG`, a role that may `CREATE DATABASE`: every database used here is a
//! scratch database, dropped at the end.
//!
//! 1. **Steady cycles, PostgreSQL against SQLite.** The simulator runs as a child process with
//!    `--jobs` jobs; two bots in this process share the same config (the poll passes'), one on
//!    a fresh SQLite file, one on a fresh PostgreSQL database. Their cycles alternate (SQLite,
//!    PostgreSQL, SQLite, ...) so that the machine's load falls on both alike: the baselines,
//!    `--repeat` cycles with nothing changed, then one with 10% of the jobs changed. Target: the
//!    median steady cycle on PostgreSQL within 1.5x of SQLite's.
//! 2. **Failover**, `--samples` times, each on its own simulator, database and receiver: two
//!    `run` processes of this binary (replicas `a` and `b`, the default lease and poll
//!    schedule, a webhook channel to a receiver in this process). Once one leads and has polled,
//!    every job fails; when the receiver has [`KILL_AFTER`] of the alerts, the leader is
//!    SIGKILLed. Measured from the kill: the survivor's `/readyz` saying it leads, its first
//!    delivery, and its first poll request at the simulator (the failover time; target: median
//!    within 20 s). Then, when every alert has arrived: alerts lost, deliveries received twice
//!    (same id: only the one in flight at the kill may be), transitions alerted twice (one job's
//!    same change under two delivery ids).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::app;
use crate::bench::process::{SimProcess, change_jobs};
use crate::bench::receiver::{ChannelSpec, Receiver};
use crate::bench::{Pass, cycle, poll_config};
use crate::engine::Ctx;
use crate::sim;
use crate::store::scratch::{ScratchDb, TEST_PG_ENV};

/// What to measure.
#[derive(Debug, Clone)]
pub struct HaOptions {
    /// The PostgreSQL server (`--store-url`); else `CODEARTS_BOT_TEST_PG`.
    pub server: Option<String>,
    /// Steady pass: watched jobs, poll concurrency, steady cycles per backend.
    pub jobs: usize,
    pub concurrency: usize,
    pub repeat: usize,
    /// Failover pass: how many failovers.
    pub samples: usize,
}

/// Jobs of a failover sample; every one of them fails in the burst.
const BURST_JOBS: usize = 50;
/// Alerts the receiver has when the leader is killed (of [`BURST_JOBS`]).
const KILL_AFTER: usize = 10;
/// The failover pass's channel.
const HOOK: ChannelSpec = ChannelSpec {
    name: "hook",
    kind: "webhook",
};
/// The simulator operations a poll cycle reads jobs with (context calls are not polls).
const POLL_APIS: [&str; 4] = [
    "ShowJobInfo",
    "ListProjectJobs",
    "ListJob",
    "ShowJobListByProjectId",
];

/// Runs both passes and prints their reports.
pub async fn run(options: HaOptions) -> anyhow::Result<()> {
    let server = options
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(ScratchDb::server)
        .ok_or_else(|| {
            anyhow!(
                "bench --ha needs a PostgreSQL server: pass --store-url postgres://user@host:5432/postgres \
                 or set {TEST_PG_ENV} (a role that may CREATE DATABASE; every database it makes is dropped)"
            )
        })?;
    if options.jobs < 10 || options.concurrency == 0 || options.repeat == 0 || options.samples == 0
    {
        bail!("--jobs must be at least 10, --concurrency, --repeat and --samples at least 1");
    }
    let dir = std::env::temp_dir().join(format!("codearts-bot-bench-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "codearts-bot bench --ha: PostgreSQL {}, release={}, load average {}",
        crate::store::Location::Postgres(crate::util::secret::Secret::new(server.clone())).shown(),
        !cfg!(debug_assertions),
        load_average()
    );
    let result = async {
        steady(&server, &dir, &options).await?;
        failover(&server, &dir, options.samples).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `/proc/loadavg`'s three averages (Linux), or `n/a`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "n/a".to_owned(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Pass 1: the same cycles on SQLite and on PostgreSQL, alternating.
async fn steady(server: &str, dir: &Path, o: &HaOptions) -> anyhow::Result<()> {
    let sim = SimProcess::start(o.jobs)?;
    let ids: Vec<String> = (0..o.jobs)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let scratch = ScratchDb::create(server)
        .await
        .context("cannot create a scratch database on the PostgreSQL server")?;
    let stores = [
        format!("path = \"{}\"", dir.join("steady.db").display()),
        format!("url = \"{}\"", scratch.url()),
    ];
    let mut ctxs = Vec::new();
    for store in &stores {
        ctxs.push(app::start(poll_config(&sim.url, &ids, o.concurrency, store)?).await?);
    }
    println!(
        "\n## Steady cycles: {} jobs, concurrency {}, simulator {} (child process), SQLite and PostgreSQL alternating; load average {}",
        o.jobs,
        o.concurrency,
        sim.url,
        load_average()
    );
    // Each row: [SQLite's cycles, PostgreSQL's cycles], one backend after the other.
    let mut baseline = [Vec::new(), Vec::new()];
    round(&ctxs, &mut baseline, "baseline").await?;
    let mut unchanged = [Vec::new(), Vec::new()];
    for _ in 0..o.repeat {
        round(&ctxs, &mut unchanged, "nothing changed").await?;
    }
    let changed = o.jobs / 10;
    change_jobs(&sim.url, &ids[..changed], o.concurrency).await?;
    let mut after_change = [Vec::new(), Vec::new()];
    round(&ctxs, &mut after_change, "10% changed").await?;
    for ctx in &ctxs {
        ctx.store.close().await;
    }
    drop((ctxs, scratch));

    println!(
        "\n| cycle | SQLite | PostgreSQL | PostgreSQL / SQLite | events (SQLite, PostgreSQL) | failed polls |\n|---|---:|---:|---:|---:|---:|"
    );
    let rows = [
        ("baseline (every job stored)".to_owned(), &baseline),
        (
            format!("nothing changed, median of {}", o.repeat),
            &unchanged,
        ),
        (format!("{changed} jobs changed (10%)"), &after_change),
    ];
    let mut steady_ratio = 0.0;
    for (name, passes) in rows {
        let [sqlite, pg] = passes
            .each_ref()
            .map(|v| median(v.iter().map(|p| p.wall).collect()));
        let ratio = pg.as_secs_f64() / sqlite.as_secs_f64().max(1e-9);
        if std::ptr::eq(passes, &unchanged) {
            steady_ratio = ratio;
        }
        let failed: usize = passes.iter().flatten().map(|p| p.failed).sum();
        println!(
            "| {name} | {} | {} | {ratio:.2}x | {}, {} | {failed} |",
            secs(sqlite),
            secs(pg),
            passes[0][0].events,
            passes[1][0].events,
        );
    }
    for (name, passes) in ["SQLite", "PostgreSQL"].iter().zip(&unchanged) {
        let each: Vec<String> = passes.iter().map(|p| secs(p.wall)).collect();
        println!("- {name}, each steady cycle in order: {}", each.join(", "));
    }
    let verdict = if steady_ratio <= 1.5 {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "- PostgreSQL / SQLite, median steady cycle: **{steady_ratio:.2}x** (target at most 1.5x: {verdict}); load average at the end {}",
        load_average()
    );
    Ok(())
}

/// One cycle on each backend, SQLite first, each into its own list.
async fn round(ctxs: &[Ctx], into: &mut [Vec<Pass>; 2], name: &'static str) -> anyhow::Result<()> {
    for (ctx, passes) in ctxs.iter().zip(into.iter_mut()) {
        passes.push(cycle(ctx, name).await?);
    }
    Ok(())
}

/// What one failover sample measured.
#[derive(Debug, Clone)]
struct Sample {
    /// Which replica led first and was killed.
    killed: &'static str,
    /// Alerts received before the kill.
    before_kill: usize,
    /// From the kill to the survivor's `/readyz` saying `leader`.
    took_over: Duration,
    /// From the kill to the first delivery the receiver got afterwards.
    resumed: Option<Duration>,
    /// From the kill to the first poll request the simulator served afterwards.
    failover: Duration,
    /// The wall-clock time of that poll (UTC, `HH:MM:SS.mmm`): the default schedule ticks at
    /// second 0 of each minute.
    polled_at: String,
    counts: Counts,
}

/// What the receiver got, against one `build_failed` per burst job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    lost: usize,
    resent: usize,
    doubled: usize,
    /// Bodies that were not a `build_failed` of a burst job.
    unexpected: usize,
}

/// Pass 2: `samples` failovers.
async fn failover(server: &str, dir: &Path, samples: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    println!(
        "\n## Failover: {samples} samples; each: two `run` replicas on a new PostgreSQL database, {BURST_JOBS} jobs, \
         the defaults (ha.lease_secs = 15, poll.schedule \"0 * * * * *\": one cycle a minute), a webhook to a \
         receiver here; the leader SIGKILLed after {KILL_AFTER} of {BURST_JOBS} alerts; load average {}",
        load_average()
    );
    println!(
        "\n| sample | killed | alerts before kill | survivor leads | its first delivery | its first poll (failover) | that poll at (UTC) | lost | re-sent | doubled |\n|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    let mut all = Vec::new();
    for n in 1..=samples {
        let s = sample(server, dir, &exe, n)
            .await
            .with_context(|| format!("failover sample {n}"))?;
        println!(
            "| {n} | {} | {} | {} | {} | **{}** | {} | {} | {} | {}{} |",
            s.killed,
            s.before_kill,
            secs(s.took_over),
            s.resumed.map_or_else(|| "none".to_owned(), secs),
            secs(s.failover),
            s.polled_at,
            s.counts.lost,
            s.counts.resent,
            s.counts.doubled,
            if s.counts.unexpected > 0 {
                format!(" ({} unexpected bodies)", s.counts.unexpected)
            } else {
                String::new()
            }
        );
        all.push(s);
    }
    let spread = |values: Vec<Duration>| {
        let (min, max) = (values.iter().min().copied(), values.iter().max().copied());
        format!(
            "min {}, median {}, max {}",
            secs(min.unwrap_or_default()),
            secs(median(values)),
            secs(max.unwrap_or_default())
        )
    };
    let failovers: Vec<Duration> = all.iter().map(|s| s.failover).collect();
    let verdict = if median(failovers.clone()) <= Duration::from_secs(20) {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "\n- failover (kill to the survivor's first poll request): **{}** (target: median at most 20 s: {verdict})",
        spread(failovers)
    );
    println!(
        "- kill to the survivor leading (`/readyz`): {}",
        spread(all.iter().map(|s| s.took_over).collect())
    );
    println!(
        "- kill to the survivor's first delivery: {}",
        spread(all.iter().filter_map(|s| s.resumed).collect())
    );
    println!(
        "- survivor leading to its first poll: {}",
        spread(
            all.iter()
                .map(|s| s.failover.saturating_sub(s.took_over))
                .collect()
        )
    );
    let total = |f: fn(&Counts) -> usize| all.iter().map(|s| f(&s.counts)).sum::<usize>();
    println!(
        "- over {} samples ({} alerts): lost {}, re-sent (same delivery id twice) {}, doubled (one transition under two ids) {}, unexpected {}; load average at the end {}",
        all.len(),
        all.len() * BURST_JOBS,
        total(|s| s.lost),
        total(|s| s.resent),
        total(|s| s.doubled),
        total(|s| s.unexpected),
        load_average()
    );
    Ok(())
}

/// A `run` process of this binary; SIGKILLed on drop.
struct Replica {
    child: Child,
    log: PathBuf,
}

impl Replica {
    fn start(exe: &Path, config: &Path, log: PathBuf) -> anyhow::Result<Self> {
        let stderr = std::fs::File::create(&log)?;
        let child = Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start a replica")?;
        Ok(Self { child, log })
    }

    /// SIGKILL (`Child::kill` on Unix), and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its log's last lines, for an error.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn readyz(http: &reqwest::Client, port: u16) -> Option<Value> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    http.get(url).send().await.ok()?.json().await.ok()
}

/// Poll requests the simulator has served so far.
async fn poll_calls(control: &sim::Control) -> anyhow::Result<u64> {
    let by_api = control
        .by_api()
        .await
        .map_err(|e| anyhow!("simulator stats: {e}"))?;
    Ok(POLL_APIS.iter().filter_map(|api| by_api.get(*api)).sum())
}

/// A wait with a limit: [`Deadline::tick`] sleeps, or fails once the limit has passed.
struct Deadline(Instant, Duration, &'static str);

impl Deadline {
    fn new(limit: Duration, what: &'static str) -> Self {
        Self(Instant::now() + limit, limit, what)
    }

    async fn tick(&self, every: Duration) -> anyhow::Result<()> {
        if Instant::now() > self.0 {
            bail!("{}: not within {:?}", self.2, self.1);
        }
        tokio::time::sleep(every).await;
        Ok(())
    }
}

/// One failover: see the module's documentation.
async fn sample(server: &str, dir: &Path, exe: &Path, n: usize) -> anyhow::Result<Sample> {
    let sim = SimProcess::start(BURST_JOBS)?;
    let control = sim::Control::new(&sim.url, sim::DEFAULT_TOKEN);
    let ids: Vec<String> = (0..BURST_JOBS)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let db = ScratchDb::create(server)
        .await
        .context("cannot create a scratch database on the PostgreSQL server")?;
    let receiver = Receiver::start_keeping_bodies(&[HOOK]).await?;
    // The defaults but for what each replica needs: the simulator, the database, the channel.
    let mut common = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [store]\nurl = \"{}\"\n[[channels]]\nname = \"{}\"\ntype = \"webhook\"\nurl = \"{}\"\n",
        sim.url,
        sim::DEFAULT_TOKEN,
        db.url(),
        HOOK.name,
        receiver.url(HOOK.name)
    );
    for id in &ids {
        common.push_str(&format!("[[jobs]]\nid = \"{id}\"\n"));
    }
    let names = ["a", "b"];
    let ports = [free_port()?, free_port()?];
    let mut replicas = Vec::new();
    for (name, port) in names.iter().zip(ports) {
        let config = dir.join(format!("failover-{n}-{name}.toml"));
        let own = format!("[ha]\nreplica = \"{name}\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n");
        std::fs::write(&config, own + &common)?;
        let log = dir.join(format!("failover-{n}-{name}.log"));
        replicas.push(Some(Replica::start(exe, &config, log)?));
    }
    let result = measure(&sim, &control, &receiver, &mut replicas, ports, &ids).await;
    let result = result.map_err(|e| {
        let logs: Vec<String> = names
            .iter()
            .zip(&replicas)
            .filter_map(|(name, r)| r.as_ref().map(|r| format!("replica {name}:\n{}", r.tail())))
            .collect();
        e.context(logs.join("\n"))
    });
    // The replicas go before their database.
    drop(replicas);
    drop(db);
    result
}

async fn measure(
    sim: &SimProcess,
    control: &sim::Control,
    receiver: &Receiver,
    replicas: &mut [Option<Replica>],
    ports: [u16; 2],
    ids: &[String],
) -> anyhow::Result<Sample> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let role = |port: u16| {
        let http = http.clone();
        async move { readyz(&http, port).await.unwrap_or_default() }
    };
    let bodies = || {
        receiver
            .tallies()
            .remove(HOOK.name)
            .map(|t| t.bodies)
            .unwrap_or_default()
    };
    // Who leads, then its first cycle (the baseline: nothing to alert).
    let wait = Deadline::new(Duration::from_secs(60), "a replica leads");
    let lead = 'found: loop {
        for (i, port) in ports.iter().enumerate() {
            if role(*port).await["role"] == "leader" {
                break 'found i;
            }
        }
        wait.tick(Duration::from_millis(50)).await?;
    };
    let wait = Deadline::new(Duration::from_secs(90), "the leader's first cycle");
    while !role(ports[lead]).await["last_cycle_success_at"].is_string() {
        wait.tick(Duration::from_millis(100)).await?;
    }
    // The burst: every job fails; the next tick finds them and the leader starts sending.
    change_jobs(&sim.url, ids, 8).await?;
    let wait = Deadline::new(Duration::from_secs(90), "the leader delivering the burst");
    while bodies().len() < KILL_AFTER {
        wait.tick(Duration::from_millis(5)).await?;
    }
    if let Some(r) = replicas[lead].as_mut() {
        r.kill();
    }
    let killed = Instant::now();
    replicas[lead] = None;
    let polls_at_kill = poll_calls(control).await?;
    let survivor = ports[1 - lead];
    let mut took_over = None;
    let wait = Deadline::new(Duration::from_secs(180), "the survivor's first poll");
    let (failover, polled_at) = loop {
        if took_over.is_none() && role(survivor).await["role"] == "leader" {
            took_over = Some(killed.elapsed());
        }
        if poll_calls(control).await? > polls_at_kill {
            break (killed.elapsed(), chrono::Utc::now());
        }
        wait.tick(Duration::from_millis(20)).await?;
    };
    // Every alert, then a moment for anything sent twice.
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let alerted = || -> BTreeSet<String> {
        bodies()
            .iter()
            .filter_map(|(_, b)| b["job_id"].as_str().map(str::to_owned))
            .collect()
    };
    let wait = Deadline::new(Duration::from_secs(120), "every alert of the burst");
    while !wanted.is_subset(&alerted().iter().map(String::as_str).collect()) {
        wait.tick(Duration::from_millis(50)).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies = bodies();
    let before_kill = bodies.iter().filter(|(at, _)| *at <= killed).count();
    let resumed = bodies
        .iter()
        .filter(|(at, _)| *at > killed)
        .map(|(at, _)| *at - killed)
        .min();
    Ok(Sample {
        killed: ["a", "b"][lead],
        before_kill,
        took_over: took_over.unwrap_or(failover).min(failover),
        resumed,
        failover,
        polled_at: polled_at.format("%H:%M:%S%.3f").to_string(),
        counts: tally(&bodies, &wanted),
    })
}

/// Lost, re-sent, doubled and unexpected, from the webhook bodies received.
fn tally(bodies: &[(Instant, Value)], wanted: &BTreeSet<&str>) -> Counts {
    let mut ids = BTreeSet::new();
    let mut resent = 0;
    let mut unexpected = 0;
    // One transition: job, kind, and the build before and after; its delivery ids.
    let mut transitions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut alerted = BTreeSet::new();
    for (_, body) in bodies {
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        if !ids.insert(id.clone()) {
            resent += 1;
            continue;
        }
        let job = body["job_id"].as_str().unwrap_or_default();
        if body["event"] != "build_failed" || !wanted.contains(job) {
            unexpected += 1;
        }
        alerted.insert(job.to_owned());
        let build = |side: &str| {
            format!(
                "{}@{}",
                body[side]["last_build_status"], body[side]["last_build_time"]
            )
        };
        let key = format!(
            "{job} {} {} -> {}",
            body["event"],
            build("previous"),
            build("current")
        );
        transitions.entry(key).or_default().insert(id);
    }
    Counts {
        lost: wanted.iter().filter(|j| !alerted.contains(**j)).count(),
        resent,
        doubled: transitions.values().map(|ids| ids.len() - 1).sum(),
        unexpected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(id: &str, job: &str, time: i64) -> (Instant, Value) {
        let build =
            |status: &str, t: i64| json!({"last_build_status": status, "last_build_time": t});
        (
            Instant::now(),
            json!({"id": id, "event": "build_failed", "job_id": job,
                   "previous": build("success", 1), "current": build("failed", time)}),
        )
    }

    #[test]
    fn the_tally_tells_lost_re_sent_and_doubled_apart() {
        let wanted = BTreeSet::from(["j1", "j2", "j3"]);
        let bodies = [
            body("d1", "j1", 5),
            body("d1", "j1", 5), // the same delivery again: re-sent
            body("d2", "j2", 5),
            body("d3", "j2", 5), // the same transition under another id: doubled
            body("d4", "j2", 6), // a later build: a transition of its own
        ];
        let counts = Counts {
            lost: 1,
            resent: 1,
            doubled: 1,
            unexpected: 0,
        };
        assert_eq!(tally(&bodies, &wanted), counts);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_pair_s_mean() {
        let s = Duration::from_secs;
        assert_eq!(
            median(vec![s(4), s(1), s(3), s(2)]),
            Duration::from_millis(2500)
        );
        assert_eq!(median(vec![s(9), s(1), s(5)]), s(5));
    }
}
