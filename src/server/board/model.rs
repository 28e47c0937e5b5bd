//! The board's list of watched jobs: every job with its state as the bot last saw it, sorted
//! failing first and grouped by project, filtered (`?jobs=`, `?status=`, `?q=`) and cut into
//! pages (`?page=`, `?per_page=`). The HTML page and `/api/v1/jobs` both read it, so they
//! always agree.
//!
//! Built from memory where the bot keeps it (the snapshot cache, the discovery map) and from
//! three small reads (the watch list, open incidents, open silences): 10,000 jobs take a few
//! milliseconds (docs/benchmarks.md, "Board").

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::codearts::JobId;
use crate::domain::incident::Incident;
use crate::domain::rules::StatusClass;
use crate::domain::silence::Silence;
use crate::domain::snapshot::{Presence, Snapshot};
use crate::engine::Ctx;

/// Rows per page unless `?per_page=` says otherwise, and the most it may say.
pub const PER_PAGE: usize = 100;
pub const MAX_PER_PAGE: usize = 500;
/// Ids `?jobs=` may name.
const MAX_FILTER_IDS: usize = 2_000;

/// What a job looks like right now, from the board's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// The last finished build failed.
    Failing,
    /// CodeArts answers 404 or 403 for it.
    Gone,
    /// Disabled in CodeArts.
    Disabled,
    /// Finished with a status that is neither success nor failure (aborted, ...).
    Other,
    /// Not polled yet, or never built.
    Unknown,
    Ok,
}

impl State {
    /// The name used in CSS classes, `?status=` and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Failing => "failing",
            State::Gone => "gone",
            State::Disabled => "disabled",
            State::Other => "other",
            State::Unknown => "unknown",
            State::Ok => "ok",
        }
    }

    /// Shown next to the colour, so the state never depends on seeing colours.
    pub fn icon(self) -> &'static str {
        match self {
            State::Failing => "✖",
            State::Gone => "⊘",
            State::Disabled => "⏸",
            State::Other => "◆",
            State::Unknown => "…",
            State::Ok => "✔",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            State::Failing => "Failing",
            State::Gone => "Gone",
            State::Disabled => "Disabled",
            State::Other => "Other",
            State::Unknown => "Not seen yet",
            State::Ok => "Passing",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            State::Failing,
            State::Gone,
            State::Disabled,
            State::Other,
            State::Unknown,
            State::Ok,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// What the state is derived from: the job's last snapshot.
    pub fn of(snapshot: Option<&Snapshot>, ctx: &Ctx) -> Self {
        let Some(snapshot) = snapshot else {
            return State::Unknown;
        };
        if snapshot.presence != Presence::Present {
            return State::Gone;
        }
        if snapshot.info.as_ref().and_then(|i| i.disabled) == Some(true) {
            return State::Disabled;
        }
        match snapshot
            .settled_status
            .as_deref()
            .map(|s| ctx.rules.class(s))
        {
            Some(StatusClass::Failure) => State::Failing,
            Some(StatusClass::Success) => State::Ok,
            Some(StatusClass::Other) => State::Other,
            Some(StatusClass::InProgress) | None => State::Unknown,
        }
    }
}

/// A watched job on the board.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub name: String,
    /// The CodeArts project id, when known.
    pub project: Option<String>,
    pub state: State,
    /// The last build's status as CodeArts spells it.
    pub status: Option<String>,
    /// A build is running or queued now.
    pub running: bool,
    pub last_build_at: Option<DateTime<Utc>>,
    pub health: Option<i64>,
    pub flaky: bool,
    pub incident: Option<Incident>,
    /// The silence that covers the job (the first, if several do).
    pub silence: Option<Silence>,
}

/// `?jobs=`, `?status=`, `?q=`, `?page=`, `?per_page=`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Comma-separated job ids.
    pub jobs: Option<String>,
    /// A [`State`] name, or `problems` (everything but `ok`).
    pub status: Option<String>,
    /// Part of a job's name or id, any case.
    pub q: Option<String>,
    pub project: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

impl Filter {
    /// The filter's problems in words (an unknown status): the API answers 400 with it.
    pub fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status.as_deref().filter(|s| !s.is_empty())
            && status != "problems"
            && State::parse(status).is_none()
        {
            return Err(format!(
                "status={:?} is not one of failing, gone, disabled, other, unknown, ok, problems",
                crate::util::text::truncate_chars(status, 40)
            ));
        }
        Ok(())
    }

    pub fn per_page(&self) -> usize {
        self.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE)
    }

    fn ids(&self) -> Option<Vec<&str>> {
        let raw = self.jobs.as_deref().filter(|j| !j.trim().is_empty())?;
        Some(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .take(MAX_FILTER_IDS)
                .collect(),
        )
    }

    fn keeps(&self, row: &JobRow) -> bool {
        match self.status.as_deref().filter(|s| !s.is_empty()) {
            Some("problems") if row.state == State::Ok => return false,
            Some(s) if s != "problems" && s != row.state.as_str() => return false,
            _ => {}
        }
        if let Some(project) = self.project.as_deref().filter(|p| !p.is_empty())
            && row.project.as_deref() != Some(project)
        {
            return false;
        }
        if let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let q = q.to_lowercase();
            return row.name.to_lowercase().contains(&q) || row.id.contains(&q);
        }
        true
    }

    /// The query string of this filter on another page (for the pager's links).
    pub fn query_for_page(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (key, value) in [
            ("jobs", &self.jobs),
            ("status", &self.status),
            ("q", &self.q),
            ("project", &self.project),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                pairs.push((key, v.to_owned()));
            }
        }
        if let Some(n) = self.per_page {
            pairs.push(("per_page", n.to_string()));
        }
        pairs.push(("page", page.to_string()));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// Counts of the whole watch list by state (before filtering).
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub total: usize,
    pub by_state: Vec<(State, usize)>,
}

/// One page of the list.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<JobRow>,
    /// 1-based.
    pub page: usize,
    pub pages: usize,
    pub per_page: usize,
    /// Rows that matched the filter, on every page.
    pub matched: usize,
    pub counts: Counts,
}

/// The whole watch list as rows, sorted: failing jobs first, then by project, then by state
/// and name. Also the open incidents (by job) and silences, which the page shows on their own.
pub async fn all_rows(ctx: &Ctx) -> Result<Vec<JobRow>, crate::store::Error> {
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let watched = ctx.store.watched_jobs().await?;
    let mut incidents: HashMap<String, Incident> = ctx
        .store
        .open_incidents()
        .await?
        .into_iter()
        .map(|(i, _)| (i.job_id.clone(), i))
        .collect();
    let silences = ctx.store.open_silences().await?;
    let now = Utc::now();
    let mut rows: Vec<JobRow> = watched
        .into_iter()
        .map(|w| {
            let snapshot = ctx.snapshots.get(&w.job_id);
            row(
                ctx,
                &w.job_id,
                snapshot.as_deref(),
                &mut incidents,
                &silences,
                now,
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        (
            a.state != State::Failing,
            &a.project,
            a.state,
            &a.name,
            &a.id,
        )
            .cmp(&(
                b.state != State::Failing,
                &b.project,
                b.state,
                &b.name,
                &b.id,
            ))
    });
    Ok(rows)
}

/// One watched job's row (`None` when the job is not watched), without building the others.
pub async fn job_row(ctx: &Ctx, job: &JobId) -> Result<Option<JobRow>, crate::store::Error> {
    if !ctx.store.is_watched(job).await? {
        return Ok(None);
    }
    ctx.snapshots.ensure_loaded(&ctx.store).await?;
    let mut incidents: HashMap<String, Incident> = ctx
        .store
        .open_incidents()
        .await?
        .into_iter()
        .filter(|(i, _)| i.job_id == job.as_str())
        .map(|(i, _)| (i.job_id.clone(), i))
        .collect();
    let silences = ctx.store.open_silences().await?;
    let snapshot = ctx.snapshots.get(job);
    Ok(Some(row(
        ctx,
        job,
        snapshot.as_deref(),
        &mut incidents,
        &silences,
        Utc::now(),
    )))
}

fn row(
    ctx: &Ctx,
    job: &JobId,
    snapshot: Option<&Snapshot>,
    incidents: &mut HashMap<String, Incident>,
    silences: &[Silence],
    now: DateTime<Utc>,
) -> JobRow {
    let info = snapshot.and_then(|s| s.info.as_ref());
    let project = info
        .and_then(|i| i.project_id.clone())
        .filter(|p| !p.is_empty())
        .or_else(|| ctx.discovery.project_of(job));
    let status = info.and_then(|i| i.last_build_status.clone());
    let running = status
        .as_deref()
        .is_some_and(|s| ctx.rules.class(s) == StatusClass::InProgress && !s.trim().is_empty());
    let silence = silences
        .iter()
        .find(|s| s.expires_at > now && s.scope.covers(job.as_str(), project.as_deref()))
        .cloned();
    JobRow {
        id: job.to_string(),
        name: info
            .and_then(|i| i.job_name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| job.to_string()),
        project,
        state: State::of(snapshot, ctx),
        status,
        running,
        last_build_at: info
            .and_then(|i| i.last_build_time)
            .map(crate::store::from_ms),
        health: info.and_then(|i| i.health_score),
        flaky: snapshot.is_some_and(|s| s.is_flaky(&ctx.rules)),
        incident: incidents.remove(job.as_str()),
        silence,
    }
}

/// Filters and pages `rows` (already sorted by [`all_rows`]).
pub fn page(rows: Vec<JobRow>, filter: &Filter) -> Page {
    let mut counts: HashMap<State, usize> = HashMap::new();
    for r in &rows {
        *counts.entry(r.state).or_default() += 1;
    }
    let mut by_state: Vec<(State, usize)> = counts.into_iter().collect();
    by_state.sort();
    let counts = Counts {
        total: rows.len(),
        by_state,
    };
    let matched: Vec<JobRow> = match filter.ids() {
        Some(ids) => {
            let wanted: std::collections::HashSet<&str> = ids.into_iter().collect();
            rows.into_iter()
                .filter(|r| wanted.contains(r.id.as_str()) && filter.keeps(r))
                .collect()
        }
        None => rows.into_iter().filter(|r| filter.keeps(r)).collect(),
    };
    let per_page = filter.per_page();
    let pages = matched.len().div_ceil(per_page).max(1);
    let page = filter.page.unwrap_or(1).clamp(1, pages);
    let total = matched.len();
    let rows = matched
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Page {
        rows,
        page,
        pages,
        per_page,
        matched: total,
        counts,
    }
}

/// `3m 05s ago`, `just now`, or `in 2m` (a clock ahead of ours).
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    if secs.abs() < 5 {
        return "just now".to_owned();
    }
    let text = crate::util::text::format_duration(secs.unsigned_abs() as f64).unwrap_or_default();
    if secs < 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
