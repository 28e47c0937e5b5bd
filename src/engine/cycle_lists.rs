//! The list half of a poll cycle: works out each watched job's project, plans which lists to
//! read ([`crate::domain::list_poll::plan`]), reads them side by side and hands the poller
//! what they showed. Every watched job they did not show is then asked about one by one.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::StreamExt;

use crate::codearts::{JobId, JobInfo};
use crate::domain::list_poll::{self, ListSource, Workload};
use crate::engine::Ctx;
use crate::engine::lists;
use crate::store::WatchedJob;

/// What the lists showed this cycle.
#[derive(Debug, Default)]
pub struct Listed {
    /// Watched jobs' answers as the lists gave them (before the merge with the snapshot).
    pub found: HashMap<JobId, JobInfo>,
    /// Lists read (or tried).
    pub lists: usize,
    /// Pages read successfully.
    pub pages: usize,
    /// Lists whose read failed, by error kind.
    pub failed: BTreeMap<&'static str, usize>,
}

/// Reads the lists `ctx.config.poll.mode` calls for.
pub async fn read_lists(ctx: &Ctx, watched: &[WatchedJob]) -> Listed {
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
    let mut out = Listed {
        lists: plan.len(),
        ..Listed::default()
    };
    if plan.is_empty() {
        return out;
    }
    let everything: HashSet<JobId> = if plan.contains(&ListSource::All) {
        watched.iter().map(|j| j.job_id.clone()).collect()
    } else {
        HashSet::new()
    };
    let no_jobs = HashSet::new();
    let reads = futures_util::stream::iter(plan)
        .map(|source| {
            let expected = match &source {
                ListSource::All => &everything,
                ListSource::Project(p) => by_project.get(p).unwrap_or(&no_jobs),
            };
            async move {
                let read = lists::read(ctx, &source, expected).await;
                let missing = expected
                    .iter()
                    .filter(|j| !read.entries.contains_key(*j))
                    .count();
                ctx.lists
                    .record(&source, read.total, read.error.as_ref(), missing);
                read
            }
        })
        .buffer_unordered(ctx.config.poll.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let watched_ids: HashSet<&JobId> = watched.iter().map(|j| &j.job_id).collect();
    for read in reads {
        out.pages += read.pages;
        if let Some(e) = &read.error {
            *out.failed.entry(e.kind()).or_default() += 1;
        }
        for (id, info) in read.entries {
            if watched_ids.contains(&id) {
                out.found.insert(id, info);
            }
        }
    }
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
        .get(job)?
        .info
        .as_ref()?
        .project_id
        .clone()
        .filter(|p| crate::codearts::listing::check_project_id(p).is_ok())
}
