//! Counters of the API calls the simulator served, for tests and benchmarks to read through
//! `GET /_sim/stats`. Lock-free: two atomic adds per call (total and operation) and one per
//! answer.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// Statuses are counted in a table indexed by the code; codes outside it are not counted.
const STATUS_SLOTS: usize = 600;

/// The API operations the simulator serves, counted apart in `by_api` under the SDK's
/// operation names (calls to unknown paths count in `requests` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    ShowJobInfo,
    ListProjectJobs,
    ListJob,
    ShowJobListByProjectId,
    ShowRunningStatus,
    ShowJobBuildRecordDetail,
    ShowBuildInfoRecord,
    ShowBuildRecordFullStages,
    DownloadBuildRealTimeLog,
    ShowReportSummary,
    ListBuildParameter,
    ShowDisable,
    ListRecyclingJob,
    ExecuteJob,
    StopTheJob,
}

impl Api {
    /// Every operation, in the order of the counter table.
    pub(crate) const ALL: [Api; 15] = [
        Api::ShowJobInfo,
        Api::ListProjectJobs,
        Api::ListJob,
        Api::ShowJobListByProjectId,
        Api::ShowRunningStatus,
        Api::ShowJobBuildRecordDetail,
        Api::ShowBuildInfoRecord,
        Api::ShowBuildRecordFullStages,
        Api::DownloadBuildRealTimeLog,
        Api::ShowReportSummary,
        Api::ListBuildParameter,
        Api::ShowDisable,
        Api::ListRecyclingJob,
        Api::ExecuteJob,
        Api::StopTheJob,
    ];

    /// The operation's name in the official SDKs (the key in `by_api`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Api::ShowJobInfo => "ShowJobInfo",
            Api::ListProjectJobs => "ListProjectJobs",
            Api::ListJob => "ListJob",
            Api::ShowJobListByProjectId => "ShowJobListByProjectId",
            Api::ShowRunningStatus => "ShowRunningStatus",
            Api::ShowJobBuildRecordDetail => "ShowJobBuildRecordDetail",
            Api::ShowBuildInfoRecord => "ShowBuildInfoRecord",
            Api::ShowBuildRecordFullStages => "ShowBuildRecordFullStages",
            Api::DownloadBuildRealTimeLog => "DownloadBuildRealTimeLog",
            Api::ShowReportSummary => "ShowReportSummary",
            Api::ListBuildParameter => "ListBuildParameter",
            Api::ShowDisable => "ShowDisable",
            Api::ListRecyclingJob => "ListRecyclingJob",
            Api::ExecuteJob => "ExecuteJob",
            Api::StopTheJob => "StopTheJob",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// API-call counters (control-API calls are not counted).
pub(crate) struct Stats {
    requests: AtomicU64,
    dropped: AtomicU64,
    by_status: Box<[AtomicU64]>,
    by_api: [AtomicU64; Api::ALL.len()],
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            by_api: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Stats {
    /// An API call arrived (counted before any fault delay); `api` is `None` for a path the
    /// API does not have.
    pub(crate) fn request(&self, api: Option<Api>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(api) = api {
            self.by_api[api.slot()].fetch_add(1, Ordering::Relaxed);
        }
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
        for slot in self.by_status.iter().chain(&self.by_api) {
            slot.store(0, Ordering::Relaxed);
        }
    }

    /// `{"requests": n, "by_status": {"200": n, ...}, "dropped": n, "by_api": {"ShowJobInfo":
    /// n, ...}}`; statuses never answered are left out of `by_status`, while `by_api` always
    /// names every operation (0 when never called), so readers need not guess.
    pub(crate) fn snapshot(&self) -> Value {
        let mut by_status = Map::new();
        for (code, slot) in self.by_status.iter().enumerate() {
            let count = slot.load(Ordering::Relaxed);
            if count > 0 {
                by_status.insert(code.to_string(), Value::from(count));
            }
        }
        let by_api: Map<String, Value> = Api::ALL
            .iter()
            .map(|api| {
                let count = self.by_api[api.slot()].load(Ordering::Relaxed);
                (api.name().to_owned(), Value::from(count))
            })
            .collect();
        json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "by_status": by_status,
            "dropped": self.dropped.load(Ordering::Relaxed),
            "by_api": by_api,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_statuses_and_drops() {
        let stats = Stats::default();
        for (status, api) in [
            (StatusCode::OK, Some(Api::ShowJobInfo)),
            (StatusCode::OK, Some(Api::ListJob)),
            (StatusCode::NOT_FOUND, None),
        ] {
            stats.request(api);
            stats.answered(status);
        }
        stats.request(Some(Api::ListJob));
        stats.dropped();
        let zero_apis: Value = Api::ALL
            .iter()
            .map(|api| (api.name().to_owned(), Value::from(0)))
            .collect::<Map<String, Value>>()
            .into();
        let mut by_api = zero_apis.clone();
        by_api["ShowJobInfo"] = json!(1);
        by_api["ListJob"] = json!(2);
        assert_eq!(
            stats.snapshot(),
            json!({"requests": 4, "by_status": {"200": 2, "404": 1}, "dropped": 1,
                "by_api": by_api})
        );
        stats.reset();
        assert_eq!(
            stats.snapshot(),
            json!({"requests": 0, "by_status": {}, "dropped": 0, "by_api": zero_apis})
        );
    }
}
