//! Reading the job lists a cycle planned ([`crate::domain::list_poll::plan`]): every page of
//! a project's ListProjectJobs, or of ListJob, through the shared rate limiter.
//!
//! A read stops at the first short page, once the entries seen reach `total`, once every
//! watched job expected in the list has been seen (the rest of the pages could only hold jobs
//! nobody watches), or after [`MAX_PAGES`]. A failing page ends the read: what the earlier
//! pages said is kept, and every watched job the read did not show is asked about with
//! ShowJobInfo by the poller. So a list failure costs calls, never a false transition.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::codearts::{self, JobId, JobInfo, JobListPage};
use crate::domain::list_poll::{ListSource, PAGE_SIZE};
use crate::engine::Ctx;

/// A read never goes past this many pages (100,000 jobs), whatever `total` claims.
pub const MAX_PAGES: u32 = 1_000;

/// What reading one list gave.
#[derive(Debug, Default)]
pub struct ListRead {
    /// Each listed job's answer (a job listed twice keeps the later entry).
    pub entries: HashMap<JobId, JobInfo>,
    /// Pages read successfully.
    pub pages: usize,
    /// The list's `total` from its last page, when it gave one.
    pub total: Option<u64>,
    /// Why the read stopped early, when a page failed.
    pub error: Option<codearts::Error>,
}

/// Reads `source` page by page; `expected` are the watched jobs it should show.
pub async fn read(ctx: &Ctx, source: &ListSource, expected: &HashSet<JobId>) -> ListRead {
    let mut out = ListRead::default();
    let mut seen = 0u64;
    let mut expected_seen = 0usize;
    let api = source.api_name();
    for page_index in 0..MAX_PAGES {
        ctx.limiter.acquire().await;
        let started = Instant::now();
        let page = match source {
            ListSource::Project(p) => {
                ctx.client
                    .project_jobs_page(p, page_index, PAGE_SIZE as u32)
                    .await
            }
            ListSource::All => ctx.client.all_jobs_page(page_index, PAGE_SIZE as u32).await,
        };
        let outcome = match &page {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        ctx.metrics.inc(
            "codearts_bot_list_pages_total",
            &[("api", api), ("outcome", outcome)],
        );
        tracing::debug!(%source, page_index, outcome, ms = started.elapsed().as_millis() as u64, "list page");
        let page: JobListPage = match page {
            Ok(page) => {
                ctx.limiter.succeeded();
                page
            }
            Err(e) => {
                if let codearts::Error::RateLimited { retry_after, .. } = &e {
                    ctx.limiter
                        .throttled(*retry_after, ctx.limiter.current_rps().unwrap_or(1.0));
                }
                out.error = Some(e);
                return out;
            }
        };
        out.pages += 1;
        let got = (page.entries.len() + page.skipped) as u64;
        seen += got;
        out.total = page.total;
        for entry in page.entries {
            if expected.contains(&entry.id) && !out.entries.contains_key(&entry.id) {
                expected_seen += 1;
            }
            out.entries.insert(entry.id, entry.info);
        }
        let done = got < PAGE_SIZE
            || page.total.is_some_and(|total| seen >= total)
            || (!expected.is_empty() && expected_seen >= expected.len());
        if done {
            break;
        }
    }
    out
}
