//! `codearts-bot bench`, the delivery passes: how fast the outbox empties into chat, and how
//! many messages a burst of failures becomes.
//!
//! Each pass starts its own simulator child process with [`BURST`] seeded jobs, a bot on a
//! fresh SQLite file, and a receiver in this process (axum on loopback) that answers 200 and
//! counts what arrives. After a baseline cycle every job is changed `success → failed` through
//! the simulator's control API, the real dispatcher (`Dispatcher::run`, as `app::run` starts
//! it) is started, and one poll cycle queues the burst; the pass ends when the store has every
//! delivery `sent`.
//!
//! - Pass A, outbox throughput: one `webhook` channel, with the default `delivery` config and
//!   with `group_wait_ms = 0`.
//! - Pass B, messages per event: one channel each of `webhook`, `slack` and `discord`.
//!
//! How events are counted: a `webhook` POST is the JSON contract of `notify::webhook`, one event
//! per body, counted by its `job_name`; a Slack or Discord message counts one event per seeded
//! job name (`sim-job-NNNN`) it mentions, once however often it repeats it. Every channel is
//! also checked to have named every job of the burst.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::app;
use crate::bench::process::{SimProcess, change_jobs};
use crate::bench::receiver::{ChannelSpec, Receiver, Tally};
use crate::config::Config;
use crate::engine::poller;
use crate::sim;

/// The jobs that fail together in one cycle: the 1,000-job burst of docs/benchmarks.md.
pub const BURST: usize = 1000;

/// How long a pass may take before the benchmark gives up on it.
const PASS_LIMIT: Duration = Duration::from_secs(600);

/// How often the store is asked whether every delivery is sent.
const STORE_POLL: Duration = Duration::from_millis(20);

/// One pass: the channels, and the grouping wait (`None`: the default).
struct Burst<'a> {
    name: &'static str,
    channels: &'a [ChannelSpec],
    group_wait_ms: Option<u64>,
    concurrency: usize,
    dir: &'a Path,
}

/// What one channel received in a pass, with the limits its sink declares.
#[derive(Debug, Clone)]
struct ChannelResult {
    name: &'static str,
    kind: &'static str,
    max_batch: usize,
    pacing: Vec<(u32, Duration)>,
    tally: Tally,
    /// First and last message, since the burst's cycle started.
    first: Option<Duration>,
    last: Option<Duration>,
}

impl ChannelResult {
    /// First to last message, as measured.
    fn span(&self) -> Option<Duration> {
        Some(self.last?.saturating_sub(self.first?))
    }

    /// First to last message at the earliest pacing allows, every message full.
    fn floor(&self, events: usize) -> Duration {
        pacing_floor(events.div_ceil(self.max_batch.max(1)), &self.pacing)
    }

    /// Events per second pacing allows in the long run: full messages at the tightest window.
    fn sustained_bound(&self) -> f64 {
        let per_sec = self
            .pacing
            .iter()
            .map(|(max, window)| f64::from(*max) / window.as_secs_f64().max(1e-9))
            .fold(f64::INFINITY, f64::min);
        per_sec * self.max_batch as f64
    }

    fn pacing_text(&self) -> String {
        if self.pacing.is_empty() {
            return "unpaced".to_owned();
        }
        self.pacing
            .iter()
            .map(|(max, window)| format!("{max} per {} s", window.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// What a pass measured.
#[derive(Debug, Clone)]
struct BurstResult {
    group_wait_ms: u64,
    /// Events and deliveries the burst's cycle queued.
    events: usize,
    deliveries: usize,
    failed_polls: usize,
    cycle: Duration,
    /// Since the cycle started, until the store had no pending delivery left.
    all_sent: Duration,
    sent: u64,
    failed: u64,
    channels: Vec<ChannelResult>,
}

impl BurstResult {
    fn first_message(&self) -> Option<Duration> {
        self.channels.iter().filter_map(|c| c.first).min()
    }

    fn last_message(&self) -> Option<Duration> {
        self.channels.iter().filter_map(|c| c.last).max()
    }
}

/// Runs the delivery passes and prints their report. `dir` holds their databases.
pub async fn run(dir: &Path, concurrency: usize) -> anyhow::Result<()> {
    println!(
        "\ndelivery: {BURST} jobs go success -> failed in one cycle; a simulator child process \
         and a fresh database per pass, the real dispatcher, a receiver on loopback in this \
         process (several minutes: the platforms' pacing bounds it)"
    );
    let webhook = [ChannelSpec {
        name: "webhook",
        kind: "webhook",
    }];
    let default_wait = burst(&Burst {
        name: "a-default",
        channels: &webhook,
        group_wait_ms: None,
        concurrency,
        dir,
    })
    .await
    .context("delivery pass A (default config)")?;
    let no_wait = burst(&Burst {
        name: "a-no-wait",
        channels: &webhook,
        group_wait_ms: Some(0),
        concurrency,
        dir,
    })
    .await
    .context("delivery pass A (group_wait_ms = 0)")?;
    print_throughput(&[&default_wait, &no_wait]);

    let mixed = [
        ChannelSpec {
            name: "webhook",
            kind: "webhook",
        },
        ChannelSpec {
            name: "slack",
            kind: "slack",
        },
        ChannelSpec {
            name: "discord",
            kind: "discord",
        },
    ];
    let burst_b = burst(&Burst {
        name: "b",
        channels: &mixed,
        group_wait_ms: None,
        concurrency,
        dir,
    })
    .await
    .context("delivery pass B")?;
    print_messages_per_event(&burst_b);
    Ok(())
}

async fn burst(pass: &Burst<'_>) -> anyhow::Result<BurstResult> {
    let sim = SimProcess::start(BURST)?;
    let receiver = Receiver::start(pass.channels).await?;
    let ids: Vec<String> = (0..BURST)
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    let db = pass.dir.join(format!("delivery-{}.db", pass.name));
    let mut text = format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n[codearts.auth]\ntoken = \"{}\"\n\
         [poll]\nconcurrency = {}\ntimeout_secs = 30\n[store]\npath = \"{}\"\n",
        sim.url,
        sim::DEFAULT_TOKEN,
        pass.concurrency,
        db.display()
    );
    if let Some(ms) = pass.group_wait_ms {
        text.push_str(&format!("[delivery]\ngroup_wait_ms = {ms}\n"));
    }
    for channel in pass.channels {
        text.push_str(&format!(
            "[[channels]]\nname = \"{}\"\ntype = \"{}\"\nurl = \"{}\"\n",
            channel.name,
            channel.kind,
            receiver.url(channel.name)
        ));
    }
    for id in &ids {
        text.push_str(&format!("[[jobs]]\nid = \"{id}\"\n"));
    }
    let config = Config::from_toml(&text, "bench delivery config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;
    let baseline = poller::run_cycle(&ctx).await?;
    if baseline.failed_total() > 0 || baseline.events > 0 {
        bail!(
            "the baseline cycle should store {BURST} jobs quietly; {} polls failed, {} events",
            baseline.failed_total(),
            baseline.events
        );
    }
    change_jobs(&sim.url, &ids, pass.concurrency).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dispatcher = ctx.dispatcher();
    let wake = Arc::clone(&ctx.dispatch_wake);
    let dispatching = tokio::spawn(async move { dispatcher.run(wake, stop_rx).await });
    let started = Instant::now();
    let report = poller::run_cycle(&ctx).await?;
    let cycle = started.elapsed();
    let counts = loop {
        let counts = ctx.store.outbox_counts().await?;
        if counts.pending == 0 && counts.sent + counts.failed >= report.deliveries as u64 {
            break counts;
        }
        if started.elapsed() > PASS_LIMIT {
            bail!(
                "{} of {} deliveries still pending after {} s",
                counts.pending,
                report.deliveries,
                PASS_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(STORE_POLL).await;
    };
    let all_sent = started.elapsed();
    let _ = stop_tx.send(true);
    let _ = dispatching.await;

    let tallies = receiver.tallies();
    let since = |at: Option<Instant>| at.map(|t| t.saturating_duration_since(started));
    let channels = pass
        .channels
        .iter()
        .map(|spec| {
            let sink = ctx.sinks.get(spec.name);
            let tally = tallies.get(spec.name).cloned().unwrap_or_default();
            ChannelResult {
                name: spec.name,
                kind: spec.kind,
                max_batch: sink.map_or(1, |s| s.max_batch()),
                pacing: sink.map(|s| s.pacing()).unwrap_or_default(),
                first: since(tally.first),
                last: since(tally.last),
                tally,
            }
        })
        .collect();
    let result = BurstResult {
        group_wait_ms: ctx.config.delivery.group_wait_ms,
        events: report.events,
        deliveries: report.deliveries,
        failed_polls: report.failed_total(),
        cycle,
        all_sent,
        sent: counts.sent,
        failed: counts.failed,
        channels,
    };
    ctx.store.close().await;
    drop(ctx);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(result)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "n/a".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// Events per second over a span.
fn rate(events: usize, span: Option<Duration>) -> String {
    span.filter(|s| !s.is_zero()).map_or_else(
        || "n/a".to_owned(),
        |s| format!("{:.1}", events as f64 / s.as_secs_f64()),
    )
}

fn print_throughput(runs: &[&BurstResult]) {
    let Some(channel) = runs.first().and_then(|r| r.channels.first()) else {
        return;
    };
    println!(
        "\npass A, outbox throughput: {BURST} events to one {} channel (pacing {}, {} event(s) per \
         message: at most {:.1} events/s; first to last message at the earliest {:.1} s)",
        channel.kind,
        channel.pacing_text(),
        channel.max_batch,
        channel.sustained_bound(),
        channel.floor(BURST).as_secs_f64()
    );
    println!(
        "\n| delivery config | events | delivered | messages | cycle | first message | all sent | events/s (first message to all sent) |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let default = crate::config::DeliveryConfig::default().group_wait_ms;
    for run in runs {
        let Some(c) = run.channels.first() else {
            continue;
        };
        let label = if run.group_wait_ms == default {
            format!("group_wait_ms = {} (default)", run.group_wait_ms)
        } else {
            format!("group_wait_ms = {}", run.group_wait_ms)
        };
        let from_first = c.first.map(|f| run.all_sent.saturating_sub(f));
        println!(
            "| {label} | {} | {} | {} | {:.2} s | {} | {:.2} s | {} |",
            run.events,
            c.tally.distinct.len(),
            c.tally.messages,
            run.cycle.as_secs_f64(),
            secs(c.first),
            run.all_sent.as_secs_f64(),
            rate(run.events, from_first),
        );
        warn_if_incomplete(run);
    }
}

fn print_messages_per_event(run: &BurstResult) {
    println!(
        "\npass B, messages per event: {BURST} jobs fail in one cycle, {} events, {} deliveries \
         to {} channels (group_wait_ms = {}); times since the cycle started (it took {:.2} s)",
        run.events,
        run.deliveries,
        run.channels.len(),
        run.group_wait_ms,
        run.cycle.as_secs_f64()
    );
    println!(
        "\n| channel | pacing | events per message: limit, most seen | messages | events in first message | events carried | jobs named | messages/event | first message | last message | first to last | pacing floor, first to last |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut messages = 0;
    for c in &run.channels {
        messages += c.tally.messages;
        println!(
            "| {} ({}) | {} | {}, {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {:.1} s |",
            c.name,
            c.kind,
            c.pacing_text(),
            c.max_batch,
            c.tally.max_per_message,
            c.tally.messages,
            c.tally.first_events.unwrap_or(0),
            c.tally.events,
            c.tally.distinct.len(),
            c.tally.messages as f64 / run.events.max(1) as f64,
            secs(c.first),
            secs(c.last),
            secs(c.span()),
            c.floor(run.events).as_secs_f64()
        );
    }
    println!(
        "\nall channels: {messages} messages for {} events = {:.3} messages per event \
         ({:.3} per delivery); last event delivered {} after the cycle started, every delivery \
         marked sent in the store after {:.2} s",
        run.events,
        messages as f64 / run.events.max(1) as f64,
        messages as f64 / run.deliveries.max(1) as f64,
        secs(run.last_message()),
        run.all_sent.as_secs_f64()
    );
    if let Some(first) = run.first_message() {
        println!(
            "first message {} after the cycle started",
            secs(Some(first))
        );
    }
    warn_if_incomplete(run);
}

/// Says so when the numbers above do not describe a complete burst.
fn warn_if_incomplete(run: &BurstResult) {
    if run.events != BURST || run.failed_polls > 0 {
        println!(
            "WARNING: the burst cycle found {} events ({} polls failed), not {BURST}",
            run.events, run.failed_polls
        );
    }
    if run.failed > 0 || run.sent != run.deliveries as u64 {
        println!(
            "WARNING: {} deliveries sent and {} failed, of {}",
            run.sent, run.failed, run.deliveries
        );
    }
    for c in &run.channels {
        if c.tally.distinct.len() != run.events || c.tally.unreadable > 0 {
            println!(
                "WARNING: {} named {} of {} jobs ({} messages without a countable event)",
                c.name,
                c.tally.distinct.len(),
                run.events,
                c.tally.unreadable
            );
        }
    }
}

/// When the last of `messages` messages may go at the earliest, the first going at 0, under
/// the dispatcher's pacing: within each `(max, window)`, a message waits until fewer than `max`
/// messages went out in the last `window`.
fn pacing_floor(messages: usize, windows: &[(u32, Duration)]) -> Duration {
    let mut at: Vec<Duration> = Vec::with_capacity(messages);
    for k in 0..messages {
        let earliest = windows
            .iter()
            .filter_map(|(max, window)| {
                let max = usize::try_from(*max).ok()?;
                let j = k.checked_sub(max)?;
                at.get(j).map(|t| *t + *window)
            })
            .max()
            .unwrap_or_default();
        at.push(earliest);
    }
    at.last().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_floor_follows_every_window() {
        let secs = Duration::from_secs;
        // 1,000 webhook POSTs at 10 per second: the last goes 99 s after the first.
        assert_eq!(pacing_floor(1000, &[(10, secs(1))]), secs(99));
        // 40 Discord messages: 30 in the first 10 s (5 per 2 s), then the 30-per-minute window.
        assert_eq!(pacing_floor(40, &[(5, secs(2)), (30, secs(60))]), secs(62));
        assert_eq!(pacing_floor(0, &[(1, secs(1))]), Duration::ZERO);
        assert_eq!(pacing_floor(5, &[]), Duration::ZERO);
    }
}
