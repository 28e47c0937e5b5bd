//! The list half of a poll cycle: works out each watched job's project, plans which lists to
//! read ([`crate::domain::list_poll::plan`]), reads them side by side and observes each
//! watched job a page shows as the page arrives ([`crate::engine::observe`]). Every watched
//! job no list showed is then asked about one by one by the poller.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use futures_util::StreamExt;
use tokio::sync::mpsc::Sender;

use crate::codearts::JobId;
use crate::domain::list_poll::{self, ListSource, Workload, merge_listed};
use crate::domain::snapshot::Observation;
use crate::engine::Ctx;
use crate::engine::lists;
use crate::engine::observe::{Pending, Polled, Tally, observe};
use crate::store::WatchedJob;

/// What the lists did this cycle.
#[derive(Debug, Default)]
pub struct Listed<'w> {
    /// The watched jobs the lists showed (each observed once), borrowed from the watch list.
    pub seen: HashSet<&'w JobId>,
    /// Pages read successfully.
    pub pages: usize,
    /// Lists whose read failed, by error kind.
    pub failed: BTreeMap<&'static str, usize>,
    /// What the observations counted.
    pub tally: Tally,
}

/// Reads the lists `poll.mode` calls for, observing every watched job they show.
pub async fn read_lists<'w>(
    ctx: &Ctx,
    watched: &'w [WatchedJob],
    to_writer: &Sender<Pending>,
) -> Listed<'w> {
    let configured: HashMap<&str, &str> = ctx
        .config
        .jobs
        .iter()
        .filter_map(|j| Some((j.id.as_str(), j.project.as_deref()?)))
        .collect();
    let mut work = Workload {
        every_visible: ctx.config.channels.iter().any(|c| c.watches_everything()),
        ..Workload::default()
    };
    let mut by_project: HashMap<String, HashSet<JobId>> = HashMap::new();
    for job in watched {
        match project_of(ctx, &configured, &job.job_id) {
            Some(project) => {
                by_project
                    .entry(project)
                    .or_default()
                    .insert(job.job_id.clone());
            }
            None => work.unknown_project += 1,
        }
    }
    work.per_project = by_project
        .iter()
        .map(|(p, jobs)| (p.clone(), jobs.len() as u64))
        .collect();
    let plan = list_poll::plan(ctx.config.poll.mode, &work, |s| ctx.lists.last_total(s));
    let mut out = Listed::default();
    if plan.is_empty() {
        return out;
    }
    let everything: HashSet<JobId> = if plan.contains(&ListSource::All) {
        watched.iter().map(|j| j.job_id.clone()).collect()
    } else {
        HashSet::new()
    };
    let by_id: HashMap<&JobId, &WatchedJob> = watched.iter().map(|j| (&j.job_id, j)).collect();
    // A job two lists (or a shifted page) show is observed once: the first sighting counts.
    let seen: Mutex<HashSet<&'w JobId>> = Mutex::new(HashSet::with_capacity(watched.len()));
    let no_jobs = HashSet::new();
    let reads = futures_util::stream::iter(plan)
        .map(|source| {
            let expected = match &source {
                ListSource::All => &everything,
                ListSource::Project(p) => by_project.get(p).unwrap_or(&no_jobs),
            };
            let (by_id, seen) = (&by_id, &seen);
            async move {
                let mut tally = Tally::default();
                let mut pager = lists::Pager::new(ctx, &source, expected);
                'pages: while let Some(entries) = pager.next_page().await {
                    for entry in entries {
                        let Some(job) = by_id.get(&entry.id) else {
                            continue; // a job nobody watches
                        };
                        if !seen.lock().is_ok_and(|mut s| s.insert(&job.job_id)) {
                            continue;
                        }
                        let previous = ctx.snapshots.get(&entry.id);
                        let before = previous.as_ref().and_then(|s| s.info.as_ref());
                        let polled = Polled {
                            job,
                            observation: Observation::Found(merge_listed(entry.info, before)),
                            error: None,
                        };
                        tally.listed += 1;
                        if !observe(ctx, polled, previous, &mut tally, to_writer).await {
                            break 'pages;
                        }
                    }
                }
                let read = pager.finish();
                let missing = expected.len().saturating_sub(read.expected_seen);
                ctx.lists
                    .record(&source, read.total, read.error.as_ref(), missing);
                (read, tally)
            }
        })
        .buffer_unordered(ctx.config.poll.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    for (read, tally) in reads {
        out.pages += read.pages;
        if let Some(e) = &read.error {
            *out.failed.entry(e.kind()).or_default() += 1;
        }
        out.tally.add(tally);
    }
    out.seen = seen.into_inner().unwrap_or_default();
    out
}

/// Where a job's project comes from, first match wins: `[[jobs]] project` in the config, the
/// subscribed project whose list showed it, the `project_id` of its last answer.
fn project_of(ctx: &Ctx, configured: &HashMap<&str, &str>, job: &JobId) -> Option<String> {
    if let Some(p) = configured.get(job.as_str()) {
        return Some((*p).to_owned());
    }
    if let Some(p) = ctx.discovery.project_of(job) {
        return Some(p);
    }
    ctx.snapshots
        .project_id(job)
        .filter(|p| crate::codearts::listing::check_project_id(p).is_ok())
}
