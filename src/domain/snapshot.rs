//! What the bot knows of a job between polls: an observation (the API's answer, or that the
//! job is gone or hidden, or that nothing could be learned) and the stored snapshot the next
//! observation is compared with.

use serde::{Deserialize, Serialize};

use crate::codearts::JobInfo;
use crate::domain::rules::Rules;

/// What one poll of a job saw.
// An observation lives for one poll on one task: boxing the JobInfo would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Found(JobInfo),
    /// 404: the job does not exist (any more).
    NotFound,
    /// 403: the credentials may not see the job.
    Forbidden,
    /// Anything else (timeout, 5xx, 429, 401, garbage): says nothing about the job.
    Unavailable,
}

/// Whether the job was visible at its last observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Present,
    NotFound,
    Forbidden,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::NotFound => "not_found",
            Presence::Forbidden => "forbidden",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Presence::Present, Presence::NotFound, Presence::Forbidden]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }
}

/// What we remember about a job between polls.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The last answer seen while the job was visible (kept while it is 404/403).
    pub info: Option<JobInfo>,
    pub presence: Presence,
    /// The last status that was not in progress, in lower case: what a finished build is
    /// compared with.
    pub settled_status: Option<String>,
    /// 404/403 answers in a row while the job still counts as visible (see
    /// [`Rules::missing_after`]).
    pub missing_polls: u32,
    /// Outcomes of the recent finished builds, oldest first: `F` failure, `S` success (at most
    /// [`Rules::flaky_window`]).
    pub outcomes: String,
}

impl Snapshot {
    /// How often the recent outcomes flipped between failure and success.
    pub fn flips(&self) -> usize {
        self.outcomes
            .as_bytes()
            .windows(2)
            .filter(|w| w[0] != w[1])
            .count()
    }

    /// Whether the job counts as flaky under `rules`.
    pub fn is_flaky(&self, rules: &Rules) -> bool {
        rules.flaky_threshold > 0 && self.flips() >= rules.flaky_threshold
    }
}
