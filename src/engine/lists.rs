//! Reading the job lists a cycle planned ([`crate::domain::list_poll::plan`]): every page of
//! a project's ListProjectJobs, or of ListJob, through the shared rate limiter.
//!
//! A read stops at the first short page, once the entries seen reach `total`, once every
//! watched job expected in the list has been seen (the rest of the pages could only hold jobs
//! nobody watches), or after [`MAX_PAGES`]. A failing page ends the read: what the earlier
//! pages said is kept, and every watched job the read did not show is asked about with
//! ShowJobInfo by the poller. So a list failure costs calls, never a false transition.

use std::collections::HashSet;

use crate::codearts::{self, JobId, JobListPage, ListEntry};
use crate::domain::list_poll::{ListSource, PAGE_SIZE};
use crate::engine::Ctx;

/// A read never goes past this many pages (100,000 jobs), whatever `total` claims.
pub const MAX_PAGES: u32 = 1_000;

/// What reading one list gave.
#[derive(Debug, Default)]
pub struct ListRead {
    /// Pages read successfully.
    pub pages: usize,
    /// The list's `total` from its last page, when it gave one.
    pub total: Option<u64>,
    /// Of the expected jobs, how many the pages showed.
    pub expected_seen: usize,
    /// Why the read stopped early, when a page failed.
    pub error: Option<codearts::Error>,
}

/// Reads a list page by page: [`Pager::next_page`] until it answers `None`, then
/// [`Pager::finish`]. The caller handles each page's entries as they arrive, so a list of
/// 10,000 jobs is never held at once.
pub struct Pager<'a> {
    ctx: &'a Ctx,
    source: &'a ListSource,
    /// The watched jobs the list should show.
    expected: &'a HashSet<JobId>,
    expected_seen: HashSet<JobId>,
    seen: u64,
    next_index: u32,
    done: bool,
    out: ListRead,
}

impl<'a> Pager<'a> {
    pub fn new(ctx: &'a Ctx, source: &'a ListSource, expected: &'a HashSet<JobId>) -> Self {
        Self {
            ctx,
            source,
            expected,
            expected_seen: HashSet::new(),
            seen: 0,
            next_index: 0,
            done: false,
            out: ListRead::default(),
        }
    }

    /// The next page's entries, or `None` once the read is over (done, or a page failed).
    pub async fn next_page(&mut self) -> Option<Vec<ListEntry>> {
        if self.done || self.next_index >= MAX_PAGES {
            return None;
        }
        let (ctx, page_index) = (self.ctx, self.next_index);
        self.next_index += 1;
        ctx.limiter.acquire().await;
        let page = match self.source {
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
            &[("api", self.source.api_name()), ("outcome", outcome)],
        );
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
                self.out.error = Some(e);
                self.done = true;
                return None;
            }
        };
        self.out.pages += 1;
        let got = (page.entries.len() + page.skipped) as u64;
        self.seen += got;
        self.out.total = page.total;
        for entry in &page.entries {
            if self.expected.contains(&entry.id) && !self.expected_seen.contains(&entry.id) {
                self.expected_seen.insert(entry.id.clone());
            }
        }
        self.done = got < PAGE_SIZE
            || page.total.is_some_and(|total| self.seen >= total)
            || (!self.expected.is_empty() && self.expected_seen.len() >= self.expected.len());
        Some(page.entries)
    }

    /// How the read went.
    pub fn finish(mut self) -> ListRead {
        self.out.expected_seen = self.expected_seen.len();
        self.out
    }
}
