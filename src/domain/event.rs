//! Events: what happened to a job ([`EventKind`], with its severity and the snake_case name the
//! webhook contract uses) and the event itself, as the detector and the services produce it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codearts::JobInfo;

/// What happened to a job. The snake_case names are part of the webhook contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BuildFailed,
    BuildRecovered,
    BuildStillFailing,
    BuildStatusChanged,
    HealthDropped,
    JobDisabled,
    JobEnabled,
    JobRenamed,
    JobNotFound,
    JobAccessLost,
    HealthRecovered,
    SourceUnreachable,
    SourceRecovered,
    SilenceEnded,
    IncidentReminder,
    FlakyDigest,
    StormSummary,
    Digest,
}

impl EventKind {
    pub const ALL: [EventKind; 18] = [
        EventKind::BuildFailed,
        EventKind::BuildRecovered,
        EventKind::BuildStillFailing,
        EventKind::BuildStatusChanged,
        EventKind::HealthDropped,
        EventKind::JobDisabled,
        EventKind::JobEnabled,
        EventKind::JobRenamed,
        EventKind::JobNotFound,
        EventKind::JobAccessLost,
        EventKind::HealthRecovered,
        EventKind::SourceUnreachable,
        EventKind::SourceRecovered,
        EventKind::SilenceEnded,
        EventKind::IncidentReminder,
        EventKind::FlakyDigest,
        EventKind::StormSummary,
        EventKind::Digest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BuildFailed => "build_failed",
            EventKind::BuildRecovered => "build_recovered",
            EventKind::BuildStillFailing => "build_still_failing",
            EventKind::BuildStatusChanged => "build_status_changed",
            EventKind::HealthDropped => "health_dropped",
            EventKind::JobDisabled => "job_disabled",
            EventKind::JobEnabled => "job_enabled",
            EventKind::JobRenamed => "job_renamed",
            EventKind::JobNotFound => "job_not_found",
            EventKind::JobAccessLost => "job_access_lost",
            EventKind::HealthRecovered => "health_recovered",
            EventKind::SourceUnreachable => "source_unreachable",
            EventKind::SourceRecovered => "source_recovered",
            EventKind::SilenceEnded => "silence_ended",
            EventKind::IncidentReminder => "incident_reminder",
            EventKind::FlakyDigest => "flaky_digest",
            EventKind::StormSummary => "storm_summary",
            EventKind::Digest => "digest",
        }
    }

    /// A build flipping between broken and fixed: what a flaky job's digest replaces.
    pub fn is_flip(self) -> bool {
        matches!(
            self,
            EventKind::BuildFailed | EventKind::BuildRecovered | EventKind::BuildStillFailing
        )
    }

    /// Events about CodeArts as a whole (the bot cannot see it), not about one job.
    pub fn is_source(self) -> bool {
        matches!(
            self,
            EventKind::SourceUnreachable | EventKind::SourceRecovered
        )
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn severity(self) -> Severity {
        match self {
            EventKind::BuildFailed
            | EventKind::BuildStillFailing
            | EventKind::JobNotFound
            | EventKind::JobAccessLost
            | EventKind::SourceUnreachable
            | EventKind::IncidentReminder => Severity::Critical,
            EventKind::HealthDropped
            | EventKind::JobDisabled
            | EventKind::SilenceEnded
            | EventKind::FlakyDigest
            | EventKind::StormSummary => Severity::Warning,
            EventKind::BuildRecovered
            | EventKind::JobEnabled
            | EventKind::HealthRecovered
            | EventKind::SourceRecovered => Severity::Good,
            // A digest is a report, not an alarm: what it says decides how anyone feels.
            EventKind::BuildStatusChanged | EventKind::JobRenamed | EventKind::Digest => {
                Severity::Info
            }
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How loud an event is: decides colours and icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Good,
    Warning,
    Critical,
}

/// One thing that happened to a job, ready to be stored and delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub job_id: String,
    pub job_name: String,
    pub detected_at: DateTime<Utc>,
    pub previous: Option<JobInfo>,
    pub current: Option<JobInfo>,
    /// One line of text saying what happened.
    pub summary: String,
}
