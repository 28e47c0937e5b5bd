//! In-memory state the services share, mirrored from the database or counted as they run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::codearts::{self, JobId};
use crate::domain::lease::Role;
use crate::domain::list_poll::ListSource;
use crate::domain::snapshot::Snapshot;
use crate::domain::snapshot_pack::PackedSnapshot;
use crate::store;

/// This process's role, shared: the leadership loop writes it, the rest read it.
#[derive(Debug)]
pub struct Lead {
    /// Who this process is in the `leases` table: `ha.replica`, else `<host>:<pid>:<random>`.
    pub holder: String,
    role: watch::Sender<Role>,
}

impl Default for Lead {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Lead {
    /// This process as replica `name` (`ha.replica`), else `<hostname>:<pid>:<random>`.
    pub fn new(name: Option<&str>) -> Self {
        let holder = name.map(str::to_owned).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "host".to_owned());
            // The random part keeps two leads of one process (tests) apart.
            format!(
                "{host}:{}:{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 3]>())
            )
        });
        Self {
            holder,
            role: watch::Sender::new(Role::Follower),
        }
    }

    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    /// Whether this process may poll, write events and send right now.
    pub fn may_act(&self) -> bool {
        self.role().may_act(Instant::now())
    }

    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Publishes the role (the leadership loop's job).
    pub(crate) fn set(&self, role: Role) {
        self.role.send_replace(role);
    }
}

/// A lead that is always held, for `run --once`, the demo and tests that drive one process by
/// hand: the database lease is not involved.
pub fn always() -> Arc<Lead> {
    let lead = Lead::default();
    lead.set(Role::Leader {
        token: crate::domain::lease::UNLEASED,
        until: Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600),
    });
    Arc::new(lead)
}

/// Counters of the scheduler, shared with whoever reports on it (logs, metrics, tests).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Cycles that ran to the end.
    pub cycles: AtomicU64,
    /// Ticks skipped because the previous cycle was still running.
    pub skipped: AtomicU64,
}

/// The last snapshot of every job, kept in memory so a cycle does not re-read and re-parse
/// them all from SQLite. Loaded from the database at the first cycle; updated only after a
/// write committed, so it never runs ahead of the database.
///
/// Kept packed ([`PackedSnapshot`], keyed by the id's 32 bytes): about 200 bytes a job instead
/// of about 1 KB as plain structs, which was most of the peak memory at 100,000 jobs
/// (docs/benchmarks.md, "Start-up"). [`SnapshotCache::get`] unpacks a copy.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    /// Set once the stored snapshots are in `map`; callers arriving while it loads wait for
    /// that one load instead of starting their own.
    loaded: tokio::sync::OnceCell<()>,
    /// Read by every observation of a cycle (`poll.concurrency` at once, each unpacking a
    /// copy while it holds the lock), written only after a commit: readers do not queue
    /// behind each other.
    map: RwLock<HashMap<JobKey, PackedSnapshot>>,
    /// Set by [`SnapshotCache::forget`]: the next load replaces the whole map.
    stale: std::sync::atomic::AtomicBool,
}

/// A job id's bytes (always [`JobId::LEN`] ASCII characters): a key with no allocation.
type JobKey = [u8; JobId::LEN];

fn key_of(id: &str) -> Option<JobKey> {
    id.as_bytes().try_into().ok()
}

impl SnapshotCache {
    pub(crate) async fn ensure_loaded(&self, store: &store::Store) -> Result<(), store::Error> {
        if self.loaded.initialized() && self.stale.swap(false, Ordering::SeqCst) {
            let mut fresh = HashMap::new();
            let reloaded = store
                .each_snapshot(|job_id, snapshot| {
                    if let Some(key) = key_of(&job_id) {
                        fresh.insert(key, PackedSnapshot::pack(&job_id, &snapshot));
                    }
                })
                .await;
            if let Err(e) = reloaded {
                self.stale.store(true, Ordering::SeqCst);
                return Err(e);
            }
            if let Ok(mut map) = self.map.write() {
                *map = fresh;
            }
            return Ok(());
        }
        self.loaded
            .get_or_try_init(|| async {
                store
                    .each_snapshot(|job_id, snapshot| {
                        // Not a job id: no `JobId` could ever ask for it.
                        let Some(key) = key_of(&job_id) else {
                            return;
                        };
                        let packed = PackedSnapshot::pack(&job_id, &snapshot);
                        if let Ok(mut map) = self.map.write() {
                            map.insert(key, packed);
                        }
                    })
                    .await
            })
            .await
            .map(|_| ())
    }

    /// Drops the copy, so the next load reads the database again: taking the lead from
    /// another replica, which wrote snapshots this one never saw.
    pub fn forget(&self) {
        self.stale.store(true, Ordering::SeqCst);
    }

    /// Whether the stored snapshots have been loaded.
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// The job's snapshot, once the cache is loaded.
    pub(crate) fn get(&self, job: &JobId) -> Option<Arc<Snapshot>> {
        self.with_packed(job, |p| Arc::new(p.unpack(job.as_str())))
    }

    /// The `project_id` of the job's last answer, without unpacking the rest.
    pub(crate) fn project_id(&self, job: &JobId) -> Option<String> {
        self.with_packed(job, |p| p.project_id().map(str::to_owned))
            .flatten()
    }

    fn with_packed<T>(&self, job: &JobId, f: impl FnOnce(&PackedSnapshot) -> T) -> Option<T> {
        if !self.loaded.initialized() {
            return None;
        }
        let map = self.map.read().ok()?;
        map.get(&key_of(job.as_str())?).map(f)
    }

    pub(crate) fn put(&self, job: &JobId, snapshot: Snapshot) {
        if !self.loaded.initialized() {
            return;
        }
        if let (Some(key), Ok(mut map)) = (key_of(job.as_str()), self.map.write()) {
            map.insert(key, PackedSnapshot::pack(job.as_str(), &snapshot));
        }
    }
}

/// When the project lists were last read, and which project listed each job found.
#[derive(Debug, Default)]
pub struct Discovery {
    last: Mutex<Option<Instant>>,
    projects: Mutex<HashMap<JobId, String>>,
}

impl Discovery {
    /// The project whose list showed `job` at a refresh of this process.
    pub(crate) fn project_of(&self, job: &JobId) -> Option<String> {
        self.projects.lock().ok()?.get(job).cloned()
    }

    /// Remembers which project listed each job.
    pub(crate) fn remember<'a>(&self, found: impl IntoIterator<Item = (&'a JobId, &'a str)>) {
        if let Ok(mut projects) = self.projects.lock() {
            for (job, project) in found {
                if projects.get(job).is_none_or(|p| p != project) {
                    projects.insert(job.clone(), project.to_owned());
                }
            }
        }
    }

    /// Whether a refresh is due, and if so marks it done now (so a failing refresh is not
    /// retried on every cycle).
    pub(crate) fn take_due(&self, every: Duration) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return false;
        };
        let due = last.is_none_or(|at| at.elapsed() >= every);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// What the poller remembers about the lists between cycles: each list's last `total` (what
/// `auto` prices a list at) and which lists are failing (so a failure is logged once, when it
/// starts, and its end once, not every cycle).
#[derive(Debug, Default)]
pub struct ListMemory {
    totals: Mutex<HashMap<ListSource, u64>>,
    failing: Mutex<HashMap<ListSource, &'static str>>,
}

impl ListMemory {
    pub fn last_total(&self, source: &ListSource) -> Option<u64> {
        self.totals.lock().ok()?.get(source).copied()
    }

    /// Records how a read went, and logs a list starting or ceasing to fail.
    pub fn record(
        &self,
        source: &ListSource,
        total: Option<u64>,
        error: Option<&codearts::Error>,
        fallback_jobs: usize,
    ) {
        if let (Some(total), Ok(mut totals)) = (total, self.totals.lock()) {
            totals.insert(source.clone(), total);
        }
        let Ok(mut failing) = self.failing.lock() else {
            return;
        };
        match error {
            Some(e) => {
                let kind = e.kind();
                if failing.insert(source.clone(), kind) != Some(kind) {
                    warn!(
                        list = %source,
                        api = source.api_name(),
                        error = %e,
                        kind,
                        request_id = e.request_id().unwrap_or("-"),
                        fallback_jobs,
                        "cannot read the job list: its jobs are polled one by one (ShowJobInfo) \
                         while it fails; logged again only when it recovers or fails differently"
                    );
                }
            }
            None => {
                if failing.remove(source).is_some() {
                    info!(list = %source, api = source.api_name(), "the job list can be read again");
                }
            }
        }
    }
}

/// The fetches in flight and what is left of this cycle's allowance.
#[derive(Default)]
pub struct ContextFetches {
    tasks: Mutex<JoinSet<()>>,
    /// Events of the current cycle that may still ask for a context.
    left: AtomicUsize,
}

impl ContextFetches {
    /// A new cycle: `max` events may ask.
    pub fn new_cycle(&self, max: usize) {
        self.left.store(max, Ordering::Relaxed);
    }

    /// Takes one from the cycle's allowance; `false` when it is spent.
    pub fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Ok(mut tasks) = self.tasks.lock() {
            // Finished tasks are reaped here so the set does not grow with the uptime.
            while tasks.try_join_next().is_some() {}
            tasks.spawn(task);
        }
    }

    /// Waits until every fetch in flight has finished, or `within` has passed.
    pub async fn wait(&self, within: Duration) {
        let mut tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(_) => return,
        };
        let _ = tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} })
            .await;
        // Whatever did not finish keeps running in the background (dropping the set would
        // abort it).
        tasks.detach_all();
    }
}
