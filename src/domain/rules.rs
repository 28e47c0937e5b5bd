//! The transition rules (`[rules]` in the config): which statuses mean failure, success or a
//! build in progress, the health thresholds, and the flaky-job window.

/// The transition rules, from `[rules]` in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Statuses that mean the build broke (lower case).
    pub failure_statuses: Vec<String>,
    /// Statuses that mean the build passed (lower case).
    pub success_statuses: Vec<String>,
    /// Statuses of a build still going: never a transition on their own (lower case).
    pub in_progress_statuses: Vec<String>,
    /// A fall of at least this many points is `health_dropped`.
    pub health_drop: i64,
    /// Falling below this score is `health_dropped`, whatever the size of the fall.
    pub health_floor: i64,
    /// Rising back to the floor or above after being below it is `health_recovered`.
    pub health_recovery: bool,
    /// A visible job must answer 404 (or 403) this many polls in a row before
    /// `job_not_found` (or `job_access_lost`) is sent.
    pub missing_after: u32,
    /// How many recent builds the flakiness check looks at.
    pub flaky_window: usize,
    /// A job whose outcome flipped (failure/success) at least this often within the window is
    /// flaky; 0 turns the check off.
    pub flaky_threshold: usize,
}

impl Default for Rules {
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Self {
            failure_statuses: owned(&["failed", "fail", "failure", "error", "timeout"]),
            success_statuses: owned(&["success", "succeeded", "succeed", "passed"]),
            in_progress_statuses: owned(&[
                "running",
                "queued",
                "queuing",
                "pending",
                "waiting",
                "building",
                "in_progress",
                "initializing",
            ]),
            health_drop: 5,
            health_floor: 60,
            health_recovery: false,
            missing_after: 1,
            flaky_window: 10,
            flaky_threshold: 4,
        }
    }
}

impl Rules {
    /// Whether a settled status means the build is broken.
    pub fn is_failure(&self, status: &str) -> bool {
        self.class(status) == StatusClass::Failure
    }

    pub(crate) fn class(&self, status: &str) -> StatusClass {
        let s = status.trim().to_ascii_lowercase();
        if s.is_empty() || self.in_progress_statuses.contains(&s) {
            StatusClass::InProgress
        } else if self.failure_statuses.contains(&s) {
            StatusClass::Failure
        } else if self.success_statuses.contains(&s) {
            StatusClass::Success
        } else {
            StatusClass::Other
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusClass {
    Failure,
    Success,
    InProgress,
    Other,
}
