//! Reading the job lists a cycle planned ([`crate::domain::list_poll::plan`]): every page of
//! a project's ListProjectJobs, or of ListJob, through the shared rate limiter.
//!
//! A read stops at the first short page, once the entries seen reach `total`, once every
//! watched job expected in the list has been seen (the rest of the pages could only hold jobs
//! nobody watches), or after [`MAX_PAGES`]. A failing page ends the read: what the earlier
//! pages said is kept, and every watched job the read did not show is asked about with
//! ShowJobInfo by the poller. So a list failure costs calls, never a false transition.
//!
//! Pages of one list are read one after the other, so the next page is asked for as soon as
//! a page shows the read is not over, on a task of its own, while the caller observes the page
//! just read: the bot's work on a page (parsing it, the detector) overlaps the API's work on
//! the next instead of adding to it. The decision to go on is taken from the page alone, as
//! before, so this asks for exactly the pages reading them in turn would.

use std::collections::HashSet;

use tokio::task::JoinHandle;

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
    /// Of `expected`, the jobs the pages showed (borrowed: no copy per entry).
    expected_seen: HashSet<&'a JobId>,
    seen: u64,
    next_index: u32,
    done: bool,
    out: ListRead,
    /// The request for page `next_index`, already under way.
    ahead: Option<JoinHandle<Result<JobListPage, codearts::Error>>>,
}

impl Drop for Pager<'_> {
    fn drop(&mut self) {
        // A caller that stops early (its writer failed) does not leave a request running.
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }
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
            ahead: None,
        }
    }

    /// Starts the request for page `page_index` (after the rate limiter's leave).
    fn request(&self, page_index: u32) -> JoinHandle<Result<JobListPage, codearts::Error>> {
        let (ctx, source) = (self.ctx.clone(), self.source.clone());
        tokio::spawn(async move {
            ctx.limiter.acquire().await;
            match &source {
                ListSource::Project(p) => {
                    ctx.client
                        .project_jobs_page(p, page_index, PAGE_SIZE as u32)
                        .await
                }
                ListSource::All => ctx.client.all_jobs_page(page_index, PAGE_SIZE as u32).await,
            }
        })
    }

    /// The next page's entries, or `None` once the read is over (done, or a page failed).
    pub async fn next_page(&mut self) -> Option<Vec<ListEntry>> {
        if self.done || self.next_index >= MAX_PAGES {
            return None;
        }
        let (ctx, page_index) = (self.ctx, self.next_index);
        self.next_index += 1;
        let request = match self.ahead.take() {
            Some(ahead) => ahead,
            None => self.request(page_index),
        };
        let page = request.await.unwrap_or_else(|e| {
            Err(codearts::Error::Connect(format!(
                "the task reading list page {page_index} failed: {e}"
            )))
        });
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
            if let Some(id) = self.expected.get(&entry.id) {
                self.expected_seen.insert(id);
            }
        }
        self.done = got < PAGE_SIZE
            || page.total.is_some_and(|total| self.seen >= total)
            || (!self.expected.is_empty() && self.expected_seen.len() >= self.expected.len());
        if !self.done && self.next_index < MAX_PAGES {
            self.ahead = Some(self.request(self.next_index));
        }
        Some(page.entries)
    }

    /// How the read went.
    pub fn finish(mut self) -> ListRead {
        self.out.expected_seen = self.expected_seen.len();
        std::mem::take(&mut self.out)
    }
}
