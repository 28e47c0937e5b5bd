//! `[rules]`: the thresholds and status lists of event detection, turned into the domain's
//! `Rules`.

use serde::{Deserialize, Serialize};

use crate::domain::rules::Rules;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    pub health_drop: i64,
    pub health_floor: i64,
    /// Send `health_recovered` when a score below the floor climbs back to it.
    pub health_recovery: bool,
    /// 404/403 answers in a row before `job_not_found`/`job_access_lost`.
    pub missing_after: u32,
    /// Cycles in a row in which every poll failed before `source_unreachable` is sent.
    pub blind_after: u32,
    /// Recent builds the flakiness check looks at.
    pub flaky_window: usize,
    /// Flips (failure/success) within the window that make a job flaky; 0 turns it off.
    pub flaky_threshold: usize,
    pub failure_statuses: Vec<String>,
    pub success_statuses: Vec<String>,
    pub in_progress_statuses: Vec<String>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        let r = Rules::default();
        Self {
            health_drop: r.health_drop,
            health_floor: r.health_floor,
            health_recovery: r.health_recovery,
            missing_after: r.missing_after,
            blind_after: 3,
            flaky_window: r.flaky_window,
            flaky_threshold: r.flaky_threshold,
            failure_statuses: r.failure_statuses,
            success_statuses: r.success_statuses,
            in_progress_statuses: r.in_progress_statuses,
        }
    }
}

impl RulesConfig {
    pub fn rules(&self) -> Rules {
        let lower = |v: &[String]| v.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
        Rules {
            failure_statuses: lower(&self.failure_statuses),
            success_statuses: lower(&self.success_statuses),
            in_progress_statuses: lower(&self.in_progress_statuses),
            health_drop: self.health_drop,
            health_floor: self.health_floor,
            health_recovery: self.health_recovery,
            missing_after: self.missing_after,
            flaky_window: self.flaky_window,
            flaky_threshold: self.flaky_threshold,
        }
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if self.health_drop < 1 {
            problems.push(format!(
                "rules.health_drop: {} must be at least 1",
                self.health_drop
            ));
        }
        if !(0..=100).contains(&self.health_floor) {
            problems.push(format!(
                "rules.health_floor: {} is not a score from 0 to 100",
                self.health_floor
            ));
        }
        if !(1..=100).contains(&self.missing_after) {
            problems.push(format!(
                "rules.missing_after: {} is out of range (1 to 100 polls)",
                self.missing_after
            ));
        }
        if !(1..=1000).contains(&self.blind_after) {
            problems.push(format!(
                "rules.blind_after: {} is out of range (1 to 1000 cycles)",
                self.blind_after
            ));
        }
        if !(2..=100).contains(&self.flaky_window) {
            problems.push(format!(
                "rules.flaky_window: {} is out of range (2 to 100 builds)",
                self.flaky_window
            ));
        }
        if self.flaky_threshold >= self.flaky_window.max(2) {
            problems.push(format!(
                "rules.flaky_threshold: {} flips cannot happen within {} builds (at most {}; 0 turns the check off)",
                self.flaky_threshold,
                self.flaky_window,
                self.flaky_window.saturating_sub(1)
            ));
        }
        let rules = self.rules();
        for status in &rules.failure_statuses {
            if rules.success_statuses.contains(status) {
                problems.push(format!(
                    "rules: status {status:?} is listed as both failure and success"
                ));
            }
        }
    }
}
