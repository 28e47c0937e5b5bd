//! Incidents: one per broken job. `build_failed` opens it, `build_still_failing` (and a failed
//! build while open) updates it, `build_recovered` closes it with its duration and the number
//! of failed builds. The state is stored with the events (same transaction); this module holds
//! the pure rules and the incident card's text.

use chrono::{DateTime, Utc};

use crate::domain::event::EventKind;

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: i64,
    pub job_id: String,
    pub job_name: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub failed_builds: u32,
    pub last_status: Option<String>,
}

/// What an event does to the job's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No incident was open: open one.
    Open,
    /// Another failed build of the open incident.
    Failed,
    /// The job recovered: close the open incident.
    Close,
    /// Nothing to do with incidents.
    None,
}

/// The rule: failures open or update, a recovery closes, everything else passes by.
pub fn step(open: bool, kind: EventKind) -> Step {
    match (open, kind) {
        (false, EventKind::BuildFailed | EventKind::BuildStillFailing) => Step::Open,
        (true, EventKind::BuildFailed | EventKind::BuildStillFailing) => Step::Failed,
        (true, EventKind::BuildRecovered) => Step::Close,
        _ => Step::None,
    }
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }

    /// How long it has been (or was) open.
    pub fn duration(&self, now: DateTime<Utc>) -> std::time::Duration {
        (self.closed_at.unwrap_or(now) - self.opened_at)
            .to_std()
            .unwrap_or_default()
    }

    /// One line: state, duration and failed builds, e.g.
    /// `Open for 2h 05m · 3 failed builds · last status failed`.
    pub fn status_line(&self, now: DateTime<Utc>) -> String {
        let length = crate::util::text::format_duration(self.duration(now).as_secs_f64())
            .unwrap_or_else(|| "a moment".to_owned());
        let builds = match self.failed_builds {
            1 => "1 failed build".to_owned(),
            n => format!("{n} failed builds"),
        };
        if self.is_open() {
            format!(
                "Open for {length} · {builds} · last status {}",
                self.last_status.as_deref().unwrap_or("unknown")
            )
        } else {
            format!("Resolved after {length} · {builds}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_incident_table() {
        use EventKind::*;
        let cases = [
            (false, BuildFailed, Step::Open),
            (false, BuildStillFailing, Step::Open),
            (true, BuildFailed, Step::Failed),
            (true, BuildStillFailing, Step::Failed),
            (true, BuildRecovered, Step::Close),
            (false, BuildRecovered, Step::None),
            (true, HealthDropped, Step::None),
            (true, BuildStatusChanged, Step::None),
            (true, JobNotFound, Step::None),
        ];
        for (open, kind, expected) in cases {
            assert_eq!(step(open, kind), expected, "{open} {kind}");
        }
    }

    #[test]
    fn the_status_line_says_how_long_and_how_many() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap();
        let mut incident = Incident {
            id: 1,
            job_id: "j".into(),
            job_name: "web".into(),
            opened_at: at(10, 0),
            closed_at: None,
            failed_builds: 3,
            last_status: Some("failed".into()),
        };
        assert_eq!(
            incident.status_line(at(12, 5)),
            "Open for 2h 05m · 3 failed builds · last status failed"
        );
        incident.closed_at = Some(at(11, 0));
        assert_eq!(
            incident.status_line(at(12, 5)),
            "Resolved after 1h 00m · 3 failed builds"
        );
    }
}
