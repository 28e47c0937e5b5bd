//! `codearts-bot bench`, the chat command pass: how long `/job <id>` takes through the HTTP
//! endpoints, against Discord's 3-second window for an interaction answer (docs/platforms.md).
//!
//! A simulator child process with [`JOBS`] seeded jobs, and a bot on a fresh SQLite file that
//! watches them all (pinned in its config, one baseline cycle run, so every `/job` answer also
//! reads the watch list and the job's health trend) with `[discord] public_key` and
//! `[slack] signing_secret` set. Its HTTP server is started as `run` starts it
//! ([`server::bind`] on `127.0.0.1:0`, [`server::serve`]); no scheduler or dispatcher runs.
//! Clients in this process post over loopback, each request signed as the platform signs it
//! (Ed25519 over timestamp and body; HMAC-SHA256 over `v0:timestamp:body`). A request's
//! latency runs from sending it (signed already) to the last byte of the answer.
//!
//! The passes, in order:
//! - Discord PING (type 1), [`PINGS`] requests one after another: the endpoint's floor
//!   (signature verification and JSON, no command).
//! - Discord `/job`, [`REQUESTS`] different jobs one after another: every answer is a cache
//!   miss, one CodeArts call.
//! - The same with [`CLIENTS`] concurrent clients, over the other [`REQUESTS`] jobs.
//! - Discord `/job`, [`REQUESTS`] times one job: answers reused within `commands.cache_secs`.
//! - Slack `/codearts job <id>`, [`REQUESTS`] different jobs one after another.
//! - A diagnostic: the Discord cache-miss pass again, once the watch list has been emptied
//!   (same bot, same database): what reading the watch list adds to each `/job`.
//!
//! Before the cache-hit pass and the ones after it the pass waits `commands.cache_secs` and a
//! second, so nothing a previous pass cached is reused; the cache-hit pass asks once, unmeasured,
//! before it starts. Each pass first opens its clients' connections with PINGs (unmeasured).
//! The CodeArts calls each pass made are read from the simulator's counters. Every request
//! comes from a user id of its own, so the per-user limit (`commands.per_user_per_minute`, left
//! at its default) refuses none. Every answer is checked: a PING answers `{"type": 1}`, a
//! Discord `/job` a public type 4 answer whose embed is titled with the job's name (a type 5,
//! deferred, fails), a Slack `/job` an `in_channel` answer whose header is the job's name. Any
//! failure fails the benchmark.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::app;
use crate::bench::process::SimProcess;
use crate::config::Config;
use crate::engine::poller;
use crate::{server, sim};

/// Seeded jobs in the simulator, all watched by the bot.
pub const JOBS: usize = 1000;
/// Requests in each `/job` pass.
pub const REQUESTS: usize = 500;
/// Requests in the PING pass.
pub const PINGS: usize = 1000;
/// Clients of the concurrent `/job` pass.
pub const CLIENTS: usize = 8;
// The cache-miss passes of Discord take different jobs.
const _: () = assert!(2 * REQUESTS <= JOBS);
/// How long Discord waits for an interaction's answer.
pub const DISCORD_WINDOW: Duration = Duration::from_secs(3);

/// How long one request may take before the benchmark counts it as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Where a deferred answer or a Slack `response_url` would go: the discard port, never reached
/// unless an answer is late (and then the answer has failed already).
const NOWHERE: &str = "http://127.0.0.1:9";

/// One request a client sends.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Ping,
    /// `/job` for seeded job `i`, through Discord.
    DiscordJob(usize),
    /// `/codearts job <id>` for seeded job `i`, through Slack.
    SlackJob(usize),
}

/// One pass: what is asked, by how many clients at once.
#[derive(Default)]
struct Pass {
    name: &'static str,
    asks: Vec<Ask>,
    clients: usize,
    /// CodeArts calls the pass should make when no answer outlives `commands.cache_secs`.
    expected_calls: Option<u64>,
    /// Waited before the pass (so that answers cached by the previous passes have expired).
    wait_first: Option<Duration>,
    /// Asked once before the pass, unmeasured (to fill the answer cache).
    warm: Option<Ask>,
}

/// What one pass measured.
#[derive(Debug, Clone)]
struct Measured {
    name: &'static str,
    clients: usize,
    wall: Duration,
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
    api_calls: u64,
    expected_calls: Option<u64>,
}

impl Measured {
    fn requests_per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// The `p`th percentile (nearest rank) of sorted samples; zero when there are none.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The platforms' side: signs requests as Discord and Slack do and posts them to the bot.
struct Caller {
    http: reqwest::Client,
    base: String,
    key: SigningKey,
    slack_secret: String,
    /// Numbers each request, so each comes from its own user.
    sent: AtomicU64,
}

impl Caller {
    /// The request for `ask`, signed now (before its latency is counted).
    fn request(&self, ask: Ask) -> anyhow::Result<reqwest::Request> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let request = match ask {
            Ask::Ping => self.discord(&discord_body(json!({"type": 1}), n)?, &timestamp),
            Ask::DiscordJob(i) => {
                let command = json!({
                    "type": 2,
                    "guild_id": "1300000000000000003",
                    "channel_id": "1400000000000000004",
                    "member": {"user": {"id": (1_500_000_000_000_000_000_u64 + n).to_string()}, "roles": []},
                    "data": {"name": "job", "type": 1, "options": [
                        {"name": "id", "type": 3, "value": sim::seeded_job_id(i).to_string()}
                    ]},
                });
                self.discord(&discord_body(command, n)?, &timestamp)
            }
            Ask::SlackJob(i) => {
                let body = serde_urlencoded::to_string([
                    ("team_id", "T0BENCH"),
                    ("channel_id", "C0BENCH"),
                    ("user_id", &format!("U{n:010}")),
                    ("command", "/codearts"),
                    ("text", &format!("job {}", sim::seeded_job_id(i))),
                    ("response_url", &format!("{NOWHERE}/slack-response")),
                ])
                .context("cannot encode a Slack slash command")?;
                let mut mac = Hmac::<Sha256>::new_from_slice(self.slack_secret.as_bytes())
                    .map_err(|_| anyhow::anyhow!("the Slack signing secret cannot key HMAC"))?;
                mac.update(format!("v0:{timestamp}:{body}").as_bytes());
                let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
                self.http
                    .post(format!("{}/slack/commands", self.base))
                    .header("x-slack-signature", signature)
                    .header("x-slack-request-timestamp", &timestamp)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        request.build().context("cannot build a chat request")
    }

    fn discord(&self, body: &[u8], timestamp: &str) -> reqwest::RequestBuilder {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let signature = hex::encode(self.key.sign(&message).to_bytes());
        self.http
            .post(format!("{}/discord/interactions", self.base))
            .header("x-signature-ed25519", signature)
            .header("x-signature-timestamp", timestamp)
            .header("content-type", "application/json")
            .body(body.to_vec())
    }

    /// Sends `ask` and checks the answer: its latency, and why it failed if it did.
    async fn call(&self, ask: Ask) -> anyhow::Result<(Duration, Result<(), String>)> {
        let request = self.request(ask)?;
        let started = Instant::now();
        let answer = match self.http.execute(request).await {
            Ok(response) => {
                let status = response.status().as_u16();
                response.bytes().await.map(|body| (status, body))
            }
            Err(e) => Err(e),
        };
        let latency = started.elapsed();
        let verdict = match answer {
            Ok((status, body)) => check(ask, status, &body),
            Err(e) => Err(format!(
                "{ask:?}: no answer ({})",
                crate::util::http::without_url(&e)
            )),
        };
        Ok((latency, verdict))
    }
}

/// An interaction as Discord sends it: the given fields plus the ones every interaction has.
fn discord_body(mut interaction: Value, n: u64) -> anyhow::Result<Vec<u8>> {
    interaction["id"] = json!((1_100_000_000_000_000_000_u64 + n).to_string());
    interaction["application_id"] = json!("1200000000000000002");
    interaction["token"] = json!(format!("bench-interaction-token-{n}"));
    interaction["version"] = json!(1);
    serde_json::to_vec(&interaction).context("cannot encode an interaction")
}

/// Whether the answer to `ask` is what the platform should get.
fn check(ask: Ask, status: u16, body: &[u8]) -> Result<(), String> {
    if status != 200 {
        return Err(format!("{ask:?}: HTTP {status}"));
    }
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| format!("{ask:?}: not JSON ({e})"))?;
    let ok = match ask {
        Ask::Ping => answer == json!({"type": 1}),
        Ask::DiscordJob(i) => {
            answer["type"] == 4
                && answer["data"].get("flags").is_none()
                && answer["data"]["embeds"][0]["title"] == sim::seeded_job_name(i)
        }
        Ask::SlackJob(i) => {
            answer["response_type"] == "in_channel"
                && answer["blocks"][0]["text"]["text"] == sim::seeded_job_name(i)
        }
    };
    if ok {
        Ok(())
    } else {
        let mut text = answer.to_string();
        text.truncate(300);
        Err(format!("{ask:?}: unexpected answer {text}"))
    }
}

/// Runs the chat command pass and prints its report; fails when any answer was wrong.
/// `dir` holds its database.
pub async fn run(dir: &Path) -> anyhow::Result<()> {
    let sim = SimProcess::start(JOBS)?;
    let db = dir.join("chat.db");
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let slack_secret = hex::encode(rand::random::<[u8; 32]>());
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n\
         link_template = \"https://console.example/job/{{job_id}}\"\n\
         [codearts.auth]\ntoken = \"{}\"\n[poll]\ntimeout_secs = 30\n[store]\npath = \"{}\"\n\
         [discord]\npublic_key = \"{}\"\napi_base = \"{NOWHERE}\"\n\
         [slack]\nsigning_secret = \"{slack_secret}\"\n",
        sim.url,
        sim::DEFAULT_TOKEN,
        db.display(),
        hex::encode(key.verifying_key().to_bytes()),
    );
    for i in 0..JOBS {
        text.push_str(&format!("[[jobs]]\nid = \"{}\"\n", sim::seeded_job_id(i)));
    }
    let config = Config::from_toml(&text, "bench chat config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;
    let baseline = poller::run_cycle(&ctx).await?;
    if baseline.failed_total() > 0 || baseline.jobs != JOBS {
        bail!(
            "the baseline cycle should store {JOBS} jobs; it polled {}, {} failed",
            baseline.jobs,
            baseline.failed_total()
        );
    }
    let (listener, addr) = server::bind(([127, 0, 0, 1], 0).into())
        .await
        .context("the bench bot cannot bind 127.0.0.1:0")?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, ctx.clone(), async {
        let _ = stop_rx.await;
    }));
    let commands = ctx.config.commands.clone();
    println!(
        "\nchat commands: a simulator child process with {JOBS} seeded jobs; a bot watching them \
         all (fresh SQLite file, one baseline cycle) serving http://{addr} in this process; \
         requests signed as Discord and Slack sign them, each from its own user (so \
         commands.per_user_per_minute = {} refuses none), over loopback from clients in this \
         process; commands.cache_secs = {}",
        commands.per_user_per_minute, commands.cache_secs
    );

    let caller = Arc::new(Caller {
        http: reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(CLIENTS * 2)
            .build()
            .context("cannot build the bench's HTTP client")?,
        base: format!("http://{addr}"),
        key,
        slack_secret,
        sent: AtomicU64::new(0),
    });
    let control = sim::Control::new(&sim.url, sim::DEFAULT_TOKEN);
    let forget = Duration::from_secs(commands.cache_secs) + Duration::from_secs(1);
    let half = JOBS / 2;
    let misses = |jobs: std::ops::Range<usize>, ask: fn(usize) -> Ask| -> Vec<Ask> {
        jobs.map(ask).collect()
    };
    let passes = [
        Pass {
            name: "Discord PING (type 1): the endpoint's floor",
            asks: vec![Ask::Ping; PINGS],
            clients: 1,
            expected_calls: Some(0),
            ..Pass::default()
        },
        Pass {
            name: "Discord /job, a different job each time (cache misses)",
            asks: misses(0..REQUESTS, Ask::DiscordJob),
            clients: 1,
            expected_calls: Some(REQUESTS as u64),
            ..Pass::default()
        },
        Pass {
            name: "Discord /job, a different job each time (cache misses), concurrent",
            asks: misses(half..half + REQUESTS, Ask::DiscordJob),
            clients: CLIENTS,
            expected_calls: Some(REQUESTS as u64),
            ..Pass::default()
        },
        Pass {
            name: "Discord /job, the same job each time (cache hits)",
            asks: vec![Ask::DiscordJob(0); REQUESTS],
            clients: 1,
            expected_calls: Some(0),
            wait_first: Some(forget),
            // Queried once first, so the pass measures only answers reused from the cache.
            warm: Some(Ask::DiscordJob(0)),
        },
        Pass {
            name: "Slack /codearts job, a different job each time (cache misses)",
            asks: misses(0..REQUESTS, Ask::SlackJob),
            clients: 1,
            expected_calls: Some(REQUESTS as u64),
            wait_first: Some(forget),
            ..Pass::default()
        },
    ];
    let mut results = Vec::new();
    for pass in passes {
        results.push(measure(&caller, &control, pass).await?);
    }
    // What the watch list costs: the same bot and database, nothing watched any more.
    ctx.store
        .sync_config_jobs(&[])
        .await
        .context("cannot empty the bench bot's watch list")?;
    results.push(
        measure(
            &caller,
            &control,
            Pass {
                name: "Discord /job, cache misses, after the watch list was emptied (diagnostic)",
                asks: misses(0..REQUESTS, Ask::DiscordJob),
                clients: 1,
                expected_calls: Some(REQUESTS as u64),
                wait_first: Some(forget),
                ..Pass::default()
            },
        )
        .await?,
    );

    drop(caller);
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    ctx.store.close().await;
    drop(ctx);
    drop(sim);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    report(&results)
}

/// Runs one pass: its clients take the next request until none is left.
async fn measure(
    caller: &Arc<Caller>,
    control: &sim::Control,
    pass: Pass,
) -> anyhow::Result<Measured> {
    if let Some(wait) = pass.wait_first {
        tokio::time::sleep(wait).await;
    }
    if let Some(ask) = pass.warm {
        let (_, verdict) = caller.call(ask).await?;
        verdict.map_err(|e| anyhow::anyhow!("the cache-warming query failed: {e}"))?;
    }
    warm_up(caller, pass.clients).await?;
    control
        .reset_stats()
        .await
        .map_err(|e| anyhow::anyhow!("simulator control API: {e}"))?;
    let asks: Arc<[Ask]> = pass.asks.into();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..pass.clients.max(1) {
        let (caller, asks, next) = (Arc::clone(caller), Arc::clone(&asks), Arc::clone(&next));
        clients.spawn(async move {
            let mut samples = Vec::new();
            while let Some(ask) = asks.get(next.fetch_add(1, Ordering::Relaxed)).copied() {
                samples.push(caller.call(ask).await?);
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::with_capacity(asks.len());
    while let Some(done) = clients.join_next().await {
        samples.extend(done.context("a bench client panicked")??);
    }
    let wall = started.elapsed();
    let stats = control
        .stats()
        .await
        .map_err(|e| anyhow::anyhow!("simulator control API: {e}"))?;
    let mut latencies: Vec<Duration> = samples.iter().map(|(latency, _)| *latency).collect();
    latencies.sort();
    let failed: Vec<String> = samples.into_iter().filter_map(|(_, v)| v.err()).collect();
    Ok(Measured {
        name: pass.name,
        clients: pass.clients,
        wall,
        latencies,
        failures: failed.len(),
        first_failure: failed.into_iter().next(),
        api_calls: stats["requests"].as_u64().unwrap_or_default(),
        expected_calls: pass.expected_calls,
    })
}

/// Opens the pass's connections with PINGs (not measured).
async fn warm_up(caller: &Arc<Caller>, clients: usize) -> anyhow::Result<()> {
    let mut pings = JoinSet::new();
    for _ in 0..clients.max(1) {
        let caller = Arc::clone(caller);
        pings.spawn(async move { caller.call(Ask::Ping).await });
    }
    while let Some(done) = pings.join_next().await {
        let (_, verdict) = done.context("a bench client panicked")??;
        verdict.map_err(|e| anyhow::anyhow!("warming up: {e}"))?;
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Prints the table and the verdict; an error when any answer failed.
fn report(results: &[Measured]) -> anyhow::Result<()> {
    println!(
        "\n| pass | requests | clients | CodeArts calls | p50 | p95 | p99 | max | requests/s | failed |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in results {
        let l = &r.latencies;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
            r.name,
            l.len(),
            r.clients,
            r.api_calls,
            ms(percentile(l, 50.0)),
            ms(percentile(l, 95.0)),
            ms(percentile(l, 99.0)),
            ms(r.max()),
            r.requests_per_sec(),
            r.failures
        );
    }
    for r in results {
        if let Some(expected) = r.expected_calls
            && expected != r.api_calls
        {
            println!(
                "WARNING: {}: {} CodeArts calls, expected {expected}",
                r.name, r.api_calls
            );
        }
    }
    let failures: usize = results.iter().map(|r| r.failures).sum();
    let slowest = results
        .iter()
        .filter(|r| r.name.starts_with("Discord /job"))
        .map(Measured::max)
        .max()
        .unwrap_or_default();
    let met = failures == 0 && slowest < DISCORD_WINDOW;
    println!(
        "\nDiscord's window: every /job answered (type 4, no deferral) within {} s; slowest \
         {} over {} /job requests: {}",
        DISCORD_WINDOW.as_secs(),
        ms(slowest),
        results
            .iter()
            .filter(|r| r.name.starts_with("Discord /job"))
            .map(|r| r.latencies.len())
            .sum::<usize>(),
        if met { "met" } else { "MISSED" }
    );
    if failures > 0 {
        for r in results {
            if let Some(first) = &r.first_failure {
                println!("{}: {} failed, the first: {first}", r.name, r.failures);
            }
        }
        bail!("{failures} chat answers were wrong or missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 95.0), Duration::from_millis(190));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(198));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(200));
        assert_eq!(percentile(&samples[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn only_a_public_card_titled_with_the_job_passes() {
        let card = |title: &str| {
            json!({"type": 4, "data": {"embeds": [{"title": title}]}})
                .to_string()
                .into_bytes()
        };
        let name = sim::seeded_job_name(3);
        assert_eq!(check(Ask::DiscordJob(3), 200, &card(&name)), Ok(()));
        assert!(check(Ask::DiscordJob(4), 200, &card(&name)).is_err());
        assert!(check(Ask::DiscordJob(3), 401, &card(&name)).is_err());
        let deferred = br#"{"type":5}"#;
        assert!(check(Ask::DiscordJob(3), 200, deferred).is_err());
        let error = br#"{"type":4,"data":{"content":"no","flags":64}}"#;
        assert!(check(Ask::DiscordJob(3), 200, error).is_err());
        assert_eq!(check(Ask::Ping, 200, br#"{"type":1}"#), Ok(()));
    }
}
