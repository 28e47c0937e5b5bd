//! Silences as a service, used by chat commands and the CLI alike: `mute`, `unmute` and `ack`
//! store a silence and apply it at once; each cycle's [`sweep`] ends the ones that are over and
//! queues the summary of jobs still broken. The rules themselves are [`crate::domain::silence`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::codearts::JobId;
use crate::domain::event::{Event, EventKind};
use crate::domain::ids::parse_job_id;
use crate::domain::silence::{ACK_DURATION, Kind, Scope, Silence, parse_duration};
use crate::domain::snapshot::Presence;
use crate::engine::{Ctx, routing};
use crate::store;
use crate::util::text::truncate_chars;

/// Why a silence command did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The request itself is wrong (target, duration, id, nothing to end): said to the user.
    #[error("{0}")]
    Refused(String),
    /// The database failed: the details are for the log, the user hears that it failed.
    #[error("the bot's database failed: {0}")]
    Store(#[from] store::Error),
}

/// `/mute <target> <duration> [reason]` (and the CLI's `mute`).
pub async fn mute(
    ctx: &Ctx,
    target: &str,
    duration: &str,
    reason: Option<&str>,
    by: &str,
) -> Result<String, SilenceError> {
    let scope = Scope::parse(target).map_err(SilenceError::Refused)?;
    let length = parse_duration(duration).map_err(SilenceError::Refused)?;
    if let Scope::Project(project) = &scope {
        // A typo would otherwise mute nothing and look like it worked.
        ctx.snapshots.ensure_loaded(&ctx.store).await?;
        let watched = ctx.store.watched_jobs().await?;
        let known = watched.iter().any(|w| {
            ctx.snapshots
                .get(&w.job_id)
                .and_then(|s| s.info.as_ref().and_then(|i| i.project_id.clone()))
                .is_some_and(|p| p == *project)
        });
        if !known {
            return Err(SilenceError::Refused(format!(
                "No watched job is in project {project}: check the id (a job id is 32 letters \
                 and digits; `all` mutes everything)."
            )));
        }
    }
    let reason = reason.map(|r| truncate_chars(r.trim(), 200));
    let (silence, until) = add_silence(
        ctx,
        Kind::Mute,
        &scope,
        by,
        reason.as_deref().unwrap_or(""),
        length,
    )
    .await?;
    Ok(format!(
        "Muted {} until {} (silence #{}{}). Events are still recorded and shown in /history; \
         when the silence ends, jobs still broken are summarised.",
        scope.describe(),
        until.format("%Y-%m-%d %H:%M UTC"),
        silence.id,
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    ))
}

/// `/unmute <target>`: ends every mute on exactly that target (with the usual summary).
pub async fn unmute(ctx: &Ctx, target: &str, by: &str) -> Result<String, SilenceError> {
    let scope = Scope::parse(target).map_err(SilenceError::Refused)?;
    let now = Utc::now();
    let open = ctx.store.open_silences().await?;
    let mut ended = Vec::new();
    for silence in open
        .iter()
        .filter(|s| s.kind == Kind::Mute && s.scope == scope)
    {
        end(ctx, silence, now, &format!("{by} unmuted it")).await?;
        ended.push(format!("#{}", silence.id));
    }
    sweep(ctx, now).await?;
    if ended.is_empty() {
        return Err(SilenceError::Refused(format!(
            "No mute is on {}.",
            scope.describe()
        )));
    }
    Ok(format!(
        "Unmuted {} (ended silence {}).",
        scope.describe(),
        ended.join(", ")
    ))
}

/// `/ack <id>`: someone is on it; repeat alerts for the job stop until it recovers.
pub async fn ack(ctx: &Ctx, raw: &str, by: &str) -> Result<String, SilenceError> {
    let id = parse_job_id(raw).map_err(SilenceError::Refused)?;
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    if !broken(ctx, &id) {
        return Err(SilenceError::Refused(format!(
            "Job {id} is not failing as far as the bot knows: nothing to acknowledge."
        )));
    }
    let (silence, _) = add_silence(
        ctx,
        Kind::Ack,
        &Scope::Job(id.clone()),
        by,
        "acknowledged",
        ACK_DURATION,
    )
    .await?;
    Ok(format!(
        "Acknowledged job {id} (silence #{}): no more repeat alerts for it until it recovers \
         (the recovery is still sent), at most 7 days.",
        silence.id
    ))
}

/// Stores a silence and applies it at once (the poller's copy is reloaded).
async fn add_silence(
    ctx: &Ctx,
    kind: Kind,
    scope: &Scope,
    by: &str,
    reason: &str,
    length: Duration,
) -> Result<(Silence, DateTime<Utc>), SilenceError> {
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(length).unwrap_or_default();
    let silence = ctx
        .store
        .add_silence(kind, scope, by, reason, now, until)
        .await?;
    sweep(ctx, now).await?;
    Ok((silence, until))
}

/// Ends the silences that are over: expired mutes (with one summary of the still-broken jobs
/// they covered), and acks whose job recovered or whose time ran out. Then reloads the active
/// ones into memory. Runs at the start of every cycle.
pub async fn sweep(ctx: &Ctx, now: DateTime<Utc>) -> Result<(), store::Error> {
    let open = ctx.store.open_silences().await?;
    if open.is_empty() {
        ctx.silences.replace(Vec::new());
        return Ok(());
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let mut active = Vec::new();
    for silence in open {
        let recovered = match (&silence.kind, &silence.scope) {
            (Kind::Ack, Scope::Job(job)) => !broken(ctx, job),
            _ => false,
        };
        if now < silence.expires_at && !recovered {
            active.push(silence);
            continue;
        }
        let how = if recovered {
            "the job recovered"
        } else {
            "it expired"
        };
        end(ctx, &silence, now, how).await?;
    }
    ctx.silences.replace(active);
    Ok(())
}

/// Ends one silence (`how` it ended goes in the summary), and for a mute queues one summary of
/// the jobs it covered that are still broken. Returns the summary's job count.
pub async fn end(
    ctx: &Ctx,
    silence: &Silence,
    now: DateTime<Utc>,
    how: &str,
) -> Result<usize, store::Error> {
    if !ctx.store.end_silence(silence.id, now).await? {
        return Ok(0);
    }
    tracing::info!(silence = silence.id, scope = %silence.scope.describe(), how, "silence ended");
    if silence.kind == Kind::Ack {
        return Ok(0);
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let watched = ctx.store.watched_jobs().await?;
    let still_broken: Vec<&crate::store::WatchedJob> = watched
        .iter()
        .filter(|w| {
            let project = ctx
                .snapshots
                .get(&w.job_id)
                .and_then(|s| s.info.as_ref().and_then(|i| i.project_id.clone()));
            silence.scope.covers(w.job_id.as_str(), project.as_deref()) && broken(ctx, &w.job_id)
        })
        .collect();
    if still_broken.is_empty() {
        return Ok(0);
    }
    let names: Vec<String> = still_broken
        .iter()
        .take(20)
        .map(|w| {
            let snapshot = ctx.snapshots.get(&w.job_id);
            let info = snapshot.as_ref().and_then(|s| s.info.as_ref());
            let name = info.map_or("(unnamed job)", |i| i.display_name());
            let status = snapshot
                .as_ref()
                .and_then(|s| s.settled_status.clone())
                .unwrap_or_else(|| "gone".to_owned());
            format!("{name} ({status})")
        })
        .collect();
    let more = still_broken.len().saturating_sub(names.len());
    let single = (still_broken.len() == 1).then(|| still_broken[0]);
    let event = Event {
        kind: EventKind::SilenceEnded,
        job_id: single.map(|w| w.job_id.to_string()).unwrap_or_default(),
        job_name: single
            .and_then(|w| ctx.snapshots.get(&w.job_id))
            .and_then(|s| s.info.as_ref().map(|i| i.display_name().to_owned()))
            .unwrap_or_else(|| silence.scope.describe()),
        detected_at: now,
        previous: None,
        current: single
            .and_then(|w| ctx.snapshots.get(&w.job_id))
            .and_then(|s| s.info.clone()),
        summary: format!(
            "Silence #{} on {} ({}) ended because {how}; still broken: {}{}",
            silence.id,
            silence.scope.describe(),
            silence.reason_text(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    };
    let mut channels: Vec<String> = Vec::new();
    for w in &still_broken {
        for c in ctx.route(w, &event) {
            if !channels.contains(&c) {
                channels.push(c);
            }
        }
    }
    routing::enqueue(ctx, async |store| {
        store.record_event(&event, &channels).await
    })
    .await?;
    Ok(still_broken.len())
}

/// Whether a watched job is broken: its last settled build failed, or it is gone.
pub fn broken(ctx: &Ctx, job: &JobId) -> bool {
    ctx.snapshots.get(job).is_some_and(|s| {
        s.presence != Presence::Present
            || s.settled_status
                .as_deref()
                .is_some_and(|st| ctx.rules.is_failure(st))
    })
}
