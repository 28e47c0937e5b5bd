//! Reading the job lists a cycle planned ([`crate::domain::list_poll::plan`]): every page of
//! a project's ListProjectJobs, or of ListJob, through the shared rate limiter.
//!
//! A read stops at the first short page, once the entries seen reach `total`, once every
//! watched job expected in the list has been seen (the rest of the pages could only hold jobs
//! nobody watches), or after [`MAX_PAGES`]. A failing page ends the read: what the earlier
//! pages said is kept, and every watched job the read did not show is asked about with
//! ShowJobInfo by the poller. So a list failure costs calls, never a false transition.
//!
//! Pages are handed over in order, but asked for ahead, on tasks of their own, while the
//! caller observes the page just read: the bot's work on a page (parsing it, the detector)
//! overlaps the API's work on the next ones instead of adding to it. The next page is asked
//! for as soon as a page shows the read is not over; up to [`READ_AHEAD`] pages are in flight
//! when the pages already asked for cannot end the read: `total` says there are more, and
//! (when the read stops at the last expected job) more expected jobs are missing than those
//! pages could show. So this asks for exactly the pages reading them in turn would, unless the
//! list shrinks during the read (a short page then ends it with the pages after it wasted).

use std::collections::{HashSet, VecDeque};

use tokio::task::JoinHandle;

use crate::codearts::{self, JobId, JobListPage, ListEntry};
use crate::domain::list_poll::{ListSource, PAGE_SIZE};
use crate::engine::Ctx;

/// A read never goes past this many pages (100,000 jobs), whatever `total` claims.
pub const MAX_PAGES: u32 = 1_000;

/// Most pages of one list in flight. Two keeps the API busy while the bot parses one page and
/// observes another; three measured the same within noise on 2 cores (docs/benchmarks.md,
/// "Start-up"), and every list read at once multiplies it.
pub const READ_AHEAD: u32 = 2;

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
    /// The requests for pages `next_index`, `next_index + 1`, ..., already under way.
    ahead: VecDeque<JoinHandle<Result<JobListPage, codearts::Error>>>,
}

impl Drop for Pager<'_> {
    fn drop(&mut self) {
        // A caller that stops early (its writer failed) does not leave a request running.
        for ahead in self.ahead.drain(..) {
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
            ahead: VecDeque::new(),
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
        let request = match self.ahead.pop_front() {
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
                for ahead in self.ahead.drain(..) {
                    ahead.abort();
                }
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
        if self.done {
            // Only a list that shrank under the read leaves pages asked for.
            for ahead in self.ahead.drain(..) {
                ahead.abort();
            }
        } else {
            self.ask_ahead();
        }
        Some(page.entries)
    }

    /// Asks for the next page when none is in flight (the read is not over), and for more
    /// while the pages in flight cannot end the read ([`READ_AHEAD`] at most).
    fn ask_ahead(&mut self) {
        loop {
            let in_flight = self.ahead.len() as u32;
            let index = self.next_index + in_flight;
            if index >= MAX_PAGES || in_flight >= READ_AHEAD {
                return;
            }
            if in_flight > 0 && !self.more_after_in_flight(in_flight) {
                return;
            }
            let request = self.request(index);
            self.ahead.push_back(request);
        }
    }

    /// Whether the read surely goes on after the `in_flight` pages asked for: `total` says
    /// there are entries beyond them, and they cannot show every missing expected job.
    fn more_after_in_flight(&self, in_flight: u32) -> bool {
        let covered = u64::from(in_flight) * PAGE_SIZE;
        let beyond_total = self
            .out
            .total
            .is_some_and(|total| self.seen + covered < total);
        let missing = self.expected.len() - self.expected_seen.len();
        beyond_total && (self.expected.is_empty() || missing as u64 > covered)
    }

    /// How the read went.
    pub fn finish(mut self) -> ListRead {
        self.out.expected_seen = self.expected_seen.len();
        std::mem::take(&mut self.out)
    }
}
