//! Counters of the API calls the simulator served, for tests and benchmarks to read through
//! `GET /_sim/stats`. Lock-free: one atomic add per call and one per answer.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// Statuses are counted in a table indexed by the code; codes outside it are not counted.
const STATUS_SLOTS: usize = 600;

/// API-call counters (control-API calls are not counted).
pub(crate) struct Stats {
    requests: AtomicU64,
    dropped: AtomicU64,
    by_status: Box<[AtomicU64]>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Stats {
    /// An API call arrived (counted before any fault delay).
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// An API call was answered with this status.
    pub(crate) fn answered(&self, status: StatusCode) {
        if let Some(slot) = self.by_status.get(usize::from(status.as_u16())) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An API call's connection was dropped by a fault.
    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        for slot in &*self.by_status {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// `{"requests": n, "by_status": {"200": n, ...}, "dropped": n}`; statuses never answered
    /// are left out of `by_status`.
    pub(crate) fn snapshot(&self) -> Value {
        let mut by_status = Map::new();
        for (code, slot) in self.by_status.iter().enumerate() {
            let count = slot.load(Ordering::Relaxed);
            if count > 0 {
                by_status.insert(code.to_string(), Value::from(count));
            }
        }
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "by_status": by_status,
            "dropped": self.dropped.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_statuses_and_drops() {
        let stats = Stats::default();
        for status in [StatusCode::OK, StatusCode::OK, StatusCode::NOT_FOUND] {
            stats.request();
            stats.answered(status);
        }
        stats.request();
        stats.dropped();
        assert_eq!(
            stats.snapshot(),
            json!({"requests": 4, "by_status": {"200": 2, "404": 1}, "dropped": 1})
        );
        stats.reset();
        assert_eq!(
            stats.snapshot(),
            json!({"requests": 0, "by_status": {}, "dropped": 0})
        );
    }
}
