//! Scheduled digests: each channel with `digest = "<cron>"` gets, at each instant of its cron
//! (in `digest_timezone`), one `digest` event summing up the jobs it watches: what fails now
//! and since when, flaky jobs, the success ratio per project over the period, the slowest
//! builds and the most frequent failed stages. An all-green digest goes only to channels with
//! `digest_when_green = true`.
//!
//! The digest is queued through the outbox like every event (so retries and restarts keep
//! it), and the instant is claimed in the same transaction, so each instant is handled once
//! across restarts; missed instants follow `domain/digest/clock.rs` (sent late within an
//! hour, else skipped). The period is the cron's: from the instant before this one.
//! `/digest` answers the same content on demand ([`on_demand`]).

mod gather;

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

pub use gather::Scope;

use crate::config::ChannelConfig;
use crate::domain::digest::clock::{self, Due};
use crate::domain::digest::{Digest, Period};
use crate::engine::{Ctx, routing};
use crate::store;

/// The longest the service sleeps between looks (a changed clock, a slow start).
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// `/digest` without a channel, or for a channel without a schedule, looks back this far.
pub const ON_DEMAND_PERIOD: chrono::Duration = chrono::Duration::hours(24);

/// Queues each channel's digest at its instants until `shutdown` resolves. Failures are
/// logged and tried again at the next look (the instant stays unclaimed).
pub async fn run(ctx: Ctx, shutdown: impl std::future::Future<Output = ()>) {
    if !ctx.config.channels.iter().any(|c| c.digest.is_some()) {
        return;
    }
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = send_due(&ctx, Utc::now()).await {
            warn!(error = %e, "cannot queue the scheduled digests; will try again");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(until_next(&ctx, Utc::now())) => {}
        }
    }
}

/// How long until the next instant of any channel's digest (at most [`LOOK_EVERY`]).
fn until_next(ctx: &Ctx, now: DateTime<Utc>) -> Duration {
    ctx.config
        .channels
        .iter()
        .filter_map(ChannelConfig::digest_schedule)
        .filter_map(|s| clock::next(&s.cron, s.timezone, now))
        .filter_map(|at| (at - now).to_std().ok())
        .min()
        .unwrap_or(LOOK_EVERY)
        .min(LOOK_EVERY)
        // Wake just after the instant, so that it counts as passed.
        .saturating_add(Duration::from_millis(20))
}

/// Handles every channel's due digest instant now: queues the digest, or records why not
/// (first sight of the schedule, all green, missed). Returns the digests queued.
pub async fn send_due(ctx: &Ctx, now: DateTime<Utc>) -> Result<usize, store::Error> {
    let mut queued = 0;
    for channel in &ctx.config.channels {
        let Some(schedule) = channel.digest_schedule() else {
            continue;
        };
        let name = channel.name.as_str();
        let last = ctx.store.digest_instant(name).await?;
        match clock::due(&schedule.cron, schedule.timezone, last, now) {
            Due::Nothing => {}
            Due::Start(at) => {
                ctx.store.claim_digest(name, at, "start", None).await?;
                let next = clock::next(&schedule.cron, schedule.timezone, now);
                info!(channel = %name, next = ?next, "digest schedule started");
            }
            Due::Missed(at) => {
                if ctx
                    .store
                    .claim_digest(name, at, "missed", None)
                    .await?
                    .is_some()
                {
                    warn!(channel = %name, instant = %at, "digest missed while the bot was down (more than an hour ago): skipped, the next one comes as scheduled");
                    count(ctx, name, "missed");
                }
            }
            Due::Send(at) => {
                let from = clock::before(&schedule.cron, schedule.timezone, at)
                    .unwrap_or(at - ON_DEMAND_PERIOD);
                let period = Period { from, to: at };
                let digest =
                    gather::digest(ctx, Scope::Channel(channel), period, schedule.timezone, now)
                        .await?;
                if digest.green && !channel.digest_when_green {
                    if ctx
                        .store
                        .claim_digest(name, at, "green", None)
                        .await?
                        .is_some()
                    {
                        info!(channel = %name, "all green: no digest (digest_when_green = false)");
                        count(ctx, name, "green");
                    }
                    continue;
                }
                let event = digest.event(now);
                let recorded = routing::enqueue(ctx, async |store| {
                    Ok(store
                        .claim_digest(name, at, "queued", Some(&event))
                        .await?
                        .unwrap_or_default())
                })
                .await?;
                if recorded.events > 0 {
                    info!(channel = %name, instant = %at, title = %digest.title, "digest queued");
                    count(ctx, name, "queued");
                    queued += 1;
                }
            }
        }
    }
    Ok(queued)
}

fn count(ctx: &Ctx, channel: &str, outcome: &str) {
    ctx.metrics.inc(
        "codearts_bot_digests_total",
        &[("channel", channel), ("outcome", outcome)],
    );
}

/// The digest `/digest` answers: for `channel` (its jobs, since its last scheduled instant
/// in its timezone, or the last 24 hours without a schedule), or without one for every job
/// chat may query (`commands.projects`) over the last 24 hours, in UTC.
pub async fn on_demand(
    ctx: &Ctx,
    channel: Option<&ChannelConfig>,
    now: DateTime<Utc>,
) -> Result<Digest, store::Error> {
    let day = Period {
        from: now - ON_DEMAND_PERIOD,
        to: now,
    };
    match channel {
        Some(channel) => {
            let schedule = channel.digest_schedule();
            let period = schedule
                .as_ref()
                .and_then(|s| clock::latest(&s.cron, s.timezone, now))
                .map_or(day, |from| Period { from, to: now });
            let timezone = schedule.map_or(chrono_tz::UTC, |s| s.timezone);
            gather::digest(ctx, Scope::Channel(channel), period, timezone, now).await
        }
        None => {
            let scope = Scope::Projects(&ctx.config.commands.projects);
            gather::digest(ctx, scope, day, chrono_tz::UTC, now).await
        }
    }
}
