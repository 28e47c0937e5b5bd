//! Project subscriptions: a channel with `projects = [...]` watches every job of those
//! CodeArts projects. Before a cycle (at most every `poll.discover_every_secs`), each
//! subscribed project's job list is read page by page, new jobs join the watch list with the
//! subscribing channels, and jobs that left it are dropped once the poller has seen them go.
//!
//! A channel with `projects = ["*"]` watches every job the credentials can see: ListJob's pages
//! are read the same way, and each job found joins with the channels that watch everything.
//!
//! A listing that fails changes nothing for that project: an outage must not unwatch jobs.
//! Each job found is remembered with the project that listed it, so list polling
//! ([`crate::engine::cycle_lists`]) knows which list shows it before its first answer.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use tracing::{info, warn};

use crate::codearts::{self, JobId, listing::MAX_PAGE_SIZE};
use crate::config::EVERY_PROJECT;
use crate::domain::list_poll::ListSource;
use crate::domain::snapshot::Presence;
use crate::engine::Ctx;
use crate::engine::lists::{self, MAX_PAGES};
use crate::store::{self, WatchSource};

/// What a refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Jobs listed by the subscribed projects.
    pub listed: usize,
    /// Discovered jobs removed from the watch list.
    pub dropped: usize,
    /// Projects whose list could not be read, with why.
    pub failed: BTreeMap<String, String>,
}

/// The projects channels subscribe to, each with the subscribing channels' names (`"*"`,
/// every visible job, is [`watching_everything`]).
pub fn subscriptions(ctx: &Ctx) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for channel in &ctx.config.channels {
        for project in channel.projects.iter().flatten() {
            if project == EVERY_PROJECT {
                continue;
            }
            out.entry(project.clone())
                .or_default()
                .push(channel.name.clone());
        }
    }
    out
}

/// The channels with `projects = ["*"]`.
pub fn watching_everything(ctx: &Ctx) -> Vec<String> {
    ctx.config
        .channels
        .iter()
        .filter(|c| c.watches_everything())
        .map(|c| c.name.clone())
        .collect()
}

/// Refreshes the discovered jobs when due. Fails only when the store fails.
pub async fn refresh_if_due(ctx: &Ctx) -> Result<Option<Report>, store::Error> {
    let every = Duration::from_secs(ctx.config.poll.discover_every_secs);
    if !ctx.discovery.take_due(every) {
        return Ok(None);
    }
    refresh(ctx).await.map(Some)
}

/// Reads every subscribed project's job list and syncs the discovered part of the watch list.
pub async fn refresh(ctx: &Ctx) -> Result<Report, store::Error> {
    let subscriptions = subscriptions(ctx);
    let mut report = Report::default();
    let everything = watching_everything(ctx);
    if subscriptions.is_empty() && everything.is_empty() && !ctx.store.has_discovered_jobs().await?
    {
        return Ok(report); // nothing subscribed, nothing discovered to drop
    }
    let mut listed: BTreeMap<JobId, BTreeSet<String>> = BTreeMap::new();
    for (project, channels) in &subscriptions {
        match list_project(ctx, project).await {
            Ok(jobs) => {
                ctx.discovery
                    .remember(jobs.iter().map(|job| (job, project.as_str())));
                for job in jobs {
                    listed
                        .entry(job)
                        .or_default()
                        .extend(channels.iter().cloned());
                }
            }
            Err(e) => {
                warn!(
                    project_id = %project,
                    error = %e,
                    kind = e.kind(),
                    request_id = e.request_id().unwrap_or("-"),
                    "cannot list the project's jobs; its discovered jobs stay as they were"
                );
                report.failed.insert(project.clone(), e.to_string());
            }
        }
    }
    if !everything.is_empty() {
        let mut found: Vec<(JobId, Option<String>)> = Vec::new();
        let (all, none) = (ListSource::All, HashSet::new());
        let mut pager = lists::Pager::new(ctx, &all, &none);
        while let Some(entries) = pager.next_page().await {
            found.extend(entries.into_iter().map(|e| (e.id, e.info.project_id)));
        }
        let read = pager.finish();
        match read.error {
            None => {
                ctx.discovery.remember(
                    found
                        .iter()
                        .filter_map(|(job, project)| Some((job, project.as_deref()?))),
                );
                for (job, _) in found {
                    listed
                        .entry(job)
                        .or_default()
                        .extend(everything.iter().cloned());
                }
            }
            Some(e) => {
                warn!(
                    error = %e,
                    kind = e.kind(),
                    request_id = e.request_id().unwrap_or("-"),
                    "cannot list every visible job (ListJob); the jobs found before stay watched"
                );
                report
                    .failed
                    .insert(EVERY_PROJECT.to_owned(), e.to_string());
            }
        }
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let every = !everything.is_empty();
    let dropped: Vec<JobId> = ctx
        .store
        .watched_jobs()
        .await?
        .into_iter()
        .filter(|w| w.source == WatchSource::Project && !listed.contains_key(&w.job_id))
        .filter(|w| !keep_unlisted(ctx, &w.job_id, &subscriptions, every, &report.failed))
        .map(|w| w.job_id)
        .collect();
    let listed: Vec<(JobId, Vec<String>)> = listed
        .into_iter()
        .map(|(job, channels)| (job, channels.into_iter().collect()))
        .collect();
    if !listed.is_empty() || !dropped.is_empty() {
        ctx.store.sync_project_jobs(&listed, &dropped).await?;
    }
    report.listed = listed.len();
    report.dropped = dropped.len();
    if !subscriptions.is_empty() || every || report.dropped > 0 {
        info!(
            projects = subscriptions.len(),
            every_visible_job = every,
            listed = report.listed,
            dropped = report.dropped,
            failed = report.failed.len(),
            "project job lists read"
        );
    }
    Ok(report)
}

/// Whether a discovered job its project no longer lists stays watched: while its project's
/// list could not be read, and while the job was last seen present in a subscribed project
/// (so the poll that sees it deleted or forbidden still reports it). A job moved to a project
/// nobody subscribes to, or already seen gone, is dropped. With `every` (a channel watches
/// every visible job) every project counts as subscribed, and a failed ListJob keeps them all.
fn keep_unlisted(
    ctx: &Ctx,
    job: &JobId,
    subscriptions: &BTreeMap<String, Vec<String>>,
    every: bool,
    failed: &BTreeMap<String, String>,
) -> bool {
    if failed.contains_key(EVERY_PROJECT) {
        return true;
    }
    let Some(snapshot) = ctx.snapshots.get(job) else {
        return false;
    };
    let project = snapshot
        .info
        .as_ref()
        .and_then(|info| info.project_id.as_deref());
    match project {
        Some(p) if failed.contains_key(p) => true,
        Some(p) => {
            snapshot.presence == Presence::Present && (every || subscriptions.contains_key(p))
        }
        None => false,
    }
}

/// Every job id of one project, page by page.
async fn list_project(ctx: &Ctx, project: &str) -> Result<Vec<JobId>, codearts::Error> {
    let mut jobs = Vec::new();
    let mut skipped = 0;
    for page_index in 0..MAX_PAGES {
        ctx.limiter.acquire().await;
        let page = ctx
            .client
            .list_jobs(project, page_index, MAX_PAGE_SIZE)
            .await?;
        let got = page.jobs.len() + page.skipped;
        skipped += page.skipped;
        jobs.extend(page.jobs.into_iter().map(|j| j.id));
        let seen = jobs.len() + skipped;
        if got < MAX_PAGE_SIZE as usize || seen as u64 >= page.total {
            break;
        }
    }
    if skipped > 0 {
        warn!(
            project_id = %project,
            skipped,
            "entries of the project's job list had no valid job id and were skipped"
        );
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::state::Discovery;

    #[test]
    fn a_refresh_is_due_first_and_then_after_the_interval() {
        let d = Discovery::default();
        assert!(d.take_due(Duration::from_secs(300)));
        assert!(!d.take_due(Duration::from_secs(300)));
        assert!(d.take_due(Duration::ZERO));
    }
}
