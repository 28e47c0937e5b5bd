//! In-memory state the services share, mirrored from the database or counted as they run.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::codearts::JobId;
use crate::domain::snapshot::Snapshot;
use crate::store;

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
#[derive(Debug, Default)]
pub struct SnapshotCache {
    map: std::sync::Mutex<Option<HashMap<String, Arc<Snapshot>>>>,
}

impl SnapshotCache {
    pub(crate) async fn ensure_loaded(&self, store: &store::Store) -> Result<(), store::Error> {
        if self.map.lock().is_ok_and(|m| m.is_some()) {
            return Ok(());
        }
        let loaded = store.snapshots().await?;
        if let Ok(mut map) = self.map.lock()
            && map.is_none()
        {
            *map = Some(loaded.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
        }
        Ok(())
    }

    pub(crate) fn get(&self, job: &JobId) -> Option<Arc<Snapshot>> {
        self.map.lock().ok()?.as_ref()?.get(job.as_str()).cloned()
    }

    pub(crate) fn put(&self, job: &JobId, snapshot: Snapshot) {
        if let Ok(mut map) = self.map.lock()
            && let Some(map) = map.as_mut()
        {
            map.insert(job.as_str().to_owned(), Arc::new(snapshot));
        }
    }
}

/// When the project lists were last read.
#[derive(Debug, Default)]
pub struct Discovery {
    last: Mutex<Option<Instant>>,
}

impl Discovery {
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
