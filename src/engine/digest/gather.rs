//! What a digest is made of, read for one scope (a channel's jobs, or every job chat may
//! query): the open incidents, the flaky snapshots, the builds and failed stages the store
//! kept for the period, and whether CodeArts can be seen. The content itself is decided by
//! [`crate::domain::digest::build`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::ChannelConfig;
use crate::domain::digest::{self, Build, Digest, Failing, Flaky, Inputs, Outcome, Period};
use crate::domain::rules::StatusClass;
use crate::engine::Ctx;
use crate::engine::digests::flaky_snapshot;
use crate::store::{self, WatchedJob};

/// Whose jobs a digest covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The jobs whose events reach this channel (its job list and `projects`; its `events`
    /// and `min_severity` filter alerts, not the digest it asked for).
    Channel(&'a ChannelConfig),
    /// Every watched job, or only those of these projects when the list is not empty
    /// (`commands.projects`, for `/digest` without a channel).
    Projects(&'a [String]),
}

impl Scope<'_> {
    fn takes(&self, job: &WatchedJob, project: Option<&str>) -> bool {
        match self {
            Scope::Channel(channel) => {
                job.channels
                    .as_ref()
                    .is_none_or(|names| names.contains(&channel.name))
                    && channel.takes_project(project)
            }
            Scope::Projects(allowed) => {
                allowed.is_empty() || project.is_some_and(|p| allowed.iter().any(|a| a == p))
            }
        }
    }
}

/// The digest of `scope` over `period`, written in `timezone`, as of `now`.
pub async fn digest(
    ctx: &Ctx,
    scope: Scope<'_>,
    period: Period,
    timezone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<Digest, store::Error> {
    Ok(digest::build(
        &inputs(ctx, scope, period, timezone).await?,
        now,
    ))
}

/// Reads the inputs of a digest.
async fn inputs(
    ctx: &Ctx,
    scope: Scope<'_>,
    period: Period,
    timezone: chrono_tz::Tz,
) -> Result<Inputs, store::Error> {
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let watched = ctx.store.watched_jobs().await?;
    let jobs: HashMap<String, &WatchedJob> = watched
        .iter()
        .filter(|job| {
            let project = ctx
                .snapshots
                .get(&job.job_id)
                .and_then(|s| s.info.as_ref().and_then(|i| i.project_id.clone()))
                .or_else(|| ctx.discovery.project_of(&job.job_id));
            scope.takes(job, project.as_deref())
        })
        .map(|job| (job.job_id.to_string(), job))
        .collect();
    let failing = ctx
        .store
        .open_incidents()
        .await?
        .into_iter()
        .filter(|(incident, _)| jobs.contains_key(&incident.job_id))
        .map(|(incident, _)| Failing {
            job_name: incident.job_name,
            since: incident.opened_at,
            failed_builds: incident.failed_builds,
        })
        .collect();
    let flaky = jobs
        .values()
        .filter_map(|job| {
            let snapshot = flaky_snapshot(ctx, job)?;
            Some(Flaky {
                job_name: snapshot
                    .info
                    .as_ref()
                    .map_or("(unnamed job)", |i| i.display_name())
                    .to_owned(),
                flips: snapshot.flips(),
                outcomes: snapshot.outcomes.clone(),
            })
        })
        .collect();
    let builds = ctx
        .store
        .builds_started_between(period.from, period.to)
        .await?
        .into_iter()
        .filter(|b| jobs.contains_key(&b.job_id))
        .filter_map(|b| {
            let outcome = match ctx.rules.class(b.status.as_deref().unwrap_or_default()) {
                StatusClass::Success => Outcome::Success,
                StatusClass::Failure => Outcome::Failure,
                StatusClass::Other => Outcome::Other,
                // Not finished by the end of the period: neither passed nor failed yet.
                StatusClass::InProgress => return None,
            };
            Some(Build {
                seconds: b.seconds(),
                job_name: b.job_name.unwrap_or_else(|| "(unnamed job)".to_owned()),
                project: b.project_id,
                outcome,
            })
        })
        .collect();
    let failed_stages = ctx
        .store
        .failed_stages_between(period.from, period.to)
        .await?
        .into_iter()
        .filter(|(job, _)| jobs.contains_key(job))
        .map(|(_, stage)| stage)
        .collect();
    let source = ctx.store.source_state().await?;
    Ok(Inputs {
        period,
        timezone,
        failing,
        flaky,
        builds,
        failed_stages,
        blind_since: source.blind_since.filter(|_| source.alerted),
    })
}
