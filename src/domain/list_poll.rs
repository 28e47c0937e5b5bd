//! Polling through the job lists (ListProjectJobs, ListJob: up to 100 jobs per call) instead
//! of one ShowJobInfo per job. Two pure decisions live here: which lists a cycle reads
//! ([`plan`]), and how a list entry becomes the answer the detector compares with the stored
//! snapshot ([`merge_listed`]). docs/codearts.md, "How the poller uses the lists", has the
//! reasoning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codearts::JobInfo;

/// Jobs one list page holds (the documented maximum `page_size`).
pub const PAGE_SIZE: u64 = 100;

/// `poll.mode`: how a cycle asks CodeArts about its jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollMode {
    /// Per project, whichever costs fewer calls this cycle.
    #[default]
    Auto,
    /// Every project with a watched job is read through its list.
    List,
    /// One ShowJobInfo per job.
    Job,
}

impl PollMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PollMode::Auto => "auto",
            PollMode::List => "list",
            PollMode::Job => "job",
        }
    }
}

/// A list a cycle can read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListSource {
    /// ListProjectJobs of one project.
    Project(String),
    /// ListJob: every job the credentials can see.
    All,
}

impl ListSource {
    /// The operation that reads it, as metrics and the simulator's `by_api` name it.
    pub fn api_name(&self) -> &'static str {
        match self {
            ListSource::Project(_) => "ListProjectJobs",
            ListSource::All => "ListJob",
        }
    }
}

impl std::fmt::Display for ListSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListSource::Project(p) => write!(f, "project {p}"),
            ListSource::All => f.write_str("every visible job (ListJob)"),
        }
    }
}

/// Calls it takes to read a list of `jobs` entries (at least one: an empty list is one call).
pub fn pages(jobs: u64) -> u64 {
    jobs.div_ceil(PAGE_SIZE).max(1)
}

/// What the planner knows about the watch list this cycle.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Watched jobs per known project.
    pub per_project: BTreeMap<String, u64>,
    /// Watched jobs whose project is not known yet.
    pub unknown_project: u64,
    /// A channel watches every visible job (`projects = ["*"]`).
    pub every_visible: bool,
}

impl Workload {
    fn jobs(&self) -> u64 {
        self.per_project.values().sum::<u64>() + self.unknown_project
    }
}

/// The lists to read this cycle. `last_total` is what a list reported as its `total` last time
/// it was read (unknown before the first read: then the watched jobs in it are the estimate,
/// since a list holds at least those).
///
/// Every watched job that no list read this cycle shows gets its own ShowJobInfo afterwards,
/// so a plan never decides *whether* a job is polled, only how cheaply.
/// - `job`: no list.
/// - `list`: ListJob when a channel watches every visible job, else every project with a
///   watched job.
/// - `auto`: the same, but only where the pages cost fewer calls than one ShowJobInfo per
///   job; a tie goes to ShowJobInfo, whose answer carries more (running status, duration).
pub fn plan(
    mode: PollMode,
    work: &Workload,
    last_total: impl Fn(&ListSource) -> Option<u64>,
) -> Vec<ListSource> {
    if mode == PollMode::Job {
        return Vec::new();
    }
    let cost =
        |source: &ListSource, watched: u64| pages(last_total(source).unwrap_or(0).max(watched));
    if work.every_visible {
        let jobs = work.jobs();
        if mode == PollMode::List || cost(&ListSource::All, jobs) < jobs {
            return vec![ListSource::All];
        }
    }
    work.per_project
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(project, n)| (ListSource::Project(project.clone()), *n))
        .filter(|(source, n)| mode == PollMode::List || cost(source, *n) < *n)
        .map(|(source, _)| source)
        .collect()
}

/// The answer a list entry stands for, filled in from the previous answer where the list is
/// silent, so that reading a job through a list instead of ShowJobInfo is never a change:
/// - fields the lists never carry (`create_time`, `new_build`, `is_manager`, ...) and any
///   field an entry leaves out keep their previous value;
/// - the build's own `running_status`, `build_time` and `charge_time` are kept only while the
///   build is the same one (same `last_build_time` and `last_build_status`): a new build's
///   duration is unknown to the list, and a stale one would be wrong.
pub fn merge_listed(listed: JobInfo, previous: Option<&JobInfo>) -> JobInfo {
    let Some(prev) = previous else {
        return listed;
    };
    let same_build = listed.last_build_time == prev.last_build_time
        && listed.last_build_status == prev.last_build_status;
    let mut out = listed;
    macro_rules! keep {
        ($($field:ident),*) => {
            $(if out.$field.is_none() {
                out.$field = prev.$field.clone();
            })*
        };
    }
    keep!(
        id,
        project_id,
        job_name,
        last_build_status,
        last_build_time,
        health_score,
        disabled,
        create_time,
        source_code,
        favorite,
        new_build,
        project_permission_switch,
        is_copy,
        is_delete,
        is_execute,
        is_forbidden,
        is_manager,
        is_modify,
        is_view
    );
    if same_build {
        keep!(running_status, build_time, charge_time);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(projects: &[(&str, u64)], unknown: u64, every: bool) -> Workload {
        Workload {
            per_project: projects
                .iter()
                .map(|(p, n)| ((*p).to_owned(), *n))
                .collect(),
            unknown_project: unknown,
            every_visible: every,
        }
    }

    fn project(p: &str) -> ListSource {
        ListSource::Project(p.to_owned())
    }

    #[test]
    fn job_mode_reads_no_list() {
        let w = work(&[("p1", 500)], 0, true);
        assert!(plan(PollMode::Job, &w, |_| None).is_empty());
    }

    #[test]
    fn list_mode_reads_every_project_with_a_watched_job() {
        let w = work(&[("p1", 1), ("p2", 300), ("p3", 0)], 7, false);
        assert_eq!(
            plan(PollMode::List, &w, |_| None),
            vec![project("p1"), project("p2")]
        );
    }

    #[test]
    fn auto_lists_a_project_only_when_its_pages_cost_fewer_calls() {
        let w = work(&[("big", 250), ("one", 1), ("few", 5)], 0, false);
        // `few` holds 5 watched jobs but 2,000 in all: 20 pages cost more than 5 calls.
        let totals = |s: &ListSource| match s {
            ListSource::Project(p) if p == "few" => Some(2_000),
            ListSource::Project(p) if p == "big" => Some(260),
            _ => None,
        };
        assert_eq!(plan(PollMode::Auto, &w, totals), vec![project("big")]);
        // Before the first read, the watched jobs are the estimate: 1 page < 5 calls.
        assert_eq!(
            plan(PollMode::Auto, &w, |_| None),
            vec![project("big"), project("few")]
        );
    }

    #[test]
    fn a_channel_watching_everything_reads_list_job() {
        let w = work(&[("p1", 150), ("p2", 150)], 20, true);
        assert_eq!(plan(PollMode::List, &w, |_| None), vec![ListSource::All]);
        assert_eq!(plan(PollMode::Auto, &w, |_| None), vec![ListSource::All]);
        // Auto falls back to per-project lists when the whole tenant is far bigger.
        let huge = |s: &ListSource| (*s == ListSource::All).then_some(1_000_000);
        assert_eq!(
            plan(PollMode::Auto, &w, huge),
            vec![project("p1"), project("p2")]
        );
    }

    #[test]
    fn pages_round_up_and_never_reach_zero() {
        assert_eq!([0, 1, 100, 101, 10_000].map(pages), [1, 1, 1, 2, 100]);
    }

    fn shown() -> JobInfo {
        JobInfo {
            id: Some("a".repeat(32)),
            project_id: Some("p1".into()),
            job_name: Some("api".into()),
            last_build_status: Some("success".into()),
            last_build_time: Some(1_000),
            health_score: Some(90),
            disabled: Some(false),
            running_status: Some("done".into()),
            build_time: Some("27.5".into()),
            create_time: Some(5),
            is_manager: Some(true),
            ..JobInfo::default()
        }
    }

    fn listed_from(info: &JobInfo) -> JobInfo {
        JobInfo {
            running_status: None,
            build_time: None,
            charge_time: None,
            create_time: None,
            new_build: None,
            is_manager: None,
            ..info.clone()
        }
    }

    #[test]
    fn an_unchanged_job_read_from_a_list_equals_its_show_job_info_answer() {
        let before = shown();
        assert_eq!(merge_listed(listed_from(&before), Some(&before)), before);
    }

    #[test]
    fn a_new_build_drops_the_old_builds_duration_but_keeps_job_fields() {
        let before = shown();
        let mut listed = listed_from(&before);
        listed.last_build_status = Some("failed".into());
        listed.last_build_time = Some(2_000);
        let merged = merge_listed(listed, Some(&before));
        assert_eq!(merged.last_build_status.as_deref(), Some("failed"));
        assert_eq!((merged.running_status, merged.build_time), (None, None));
        assert_eq!(
            (merged.create_time, merged.is_manager),
            (Some(5), Some(true))
        );
    }

    #[test]
    fn without_a_previous_answer_the_entry_is_taken_as_it_is() {
        let listed = listed_from(&shown());
        assert_eq!(merge_listed(listed.clone(), None), listed);
    }
}
