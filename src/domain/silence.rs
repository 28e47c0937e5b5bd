//! Silences: `/mute <job|project|all> <duration> [reason]`, `/unmute`, `/ack <job>` (and the
//! CLI's `mute`, `unmute`, `ack`, `silences`).
//!
//! - A **mute** suppresses every event it covers until it expires or is unmuted. Suppressed
//!   events are still recorded (with the reason, visible in `/history`), never sent. When a
//!   mute ends, one summary lists the jobs it covered that are still broken.
//! - An **ack** ("someone is on it") covers one job: repeat alerts (still failing, health,
//!   ...) are suppressed, but good news is sent, and the job's recovery ends the ack.
//!
//! Silences live in the database with who and why; the poller keeps the active ones in memory
//! ([`Silences`]), reloaded each cycle and after every change.

use std::sync::RwLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::codearts::{JobId, listing::check_project_id};
use crate::domain::event::{Event, Severity};

/// The longest a silence may last.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);
/// How long an ack lasts at most when the job does not recover.
pub const ACK_DURATION: Duration = Duration::from_secs(7 * 86_400);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mute,
    Ack,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Mute => "mute",
            Kind::Ack => "ack",
        }
    }

    pub fn parse(raw: &str) -> Self {
        if raw == "ack" { Kind::Ack } else { Kind::Mute }
    }
}

/// What a silence covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Job(JobId),
    Project(String),
    All,
}

impl Scope {
    /// `all`, a job id (32 letters and digits), or a project id (optionally `project:<id>`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("all") {
            return Ok(Scope::All);
        }
        if let Some(project) = raw.strip_prefix("project:") {
            return check_project_id(project).map(|()| Scope::Project(project.to_owned()));
        }
        if let Ok(job) = JobId::parse(raw) {
            return Ok(Scope::Job(job));
        }
        check_project_id(raw)
            .map(|()| Scope::Project(raw.to_owned()))
            .map_err(|_| {
                format!(
                    "{:?} is neither `all`, a job id (32 letters and digits) nor a project id",
                    crate::util::text::truncate_chars(raw, 64)
                )
            })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Job(_) => "job",
            Scope::Project(_) => "project",
            Scope::All => "all",
        }
    }

    pub fn target(&self) -> String {
        match self {
            Scope::Job(job) => job.to_string(),
            Scope::Project(p) => p.clone(),
            Scope::All => "*".to_owned(),
        }
    }

    pub fn from_parts(kind: &str, target: &str) -> Option<Self> {
        match kind {
            "job" => JobId::parse(target).ok().map(Scope::Job),
            "project" => Some(Scope::Project(target.to_owned())),
            "all" => Some(Scope::All),
            _ => None,
        }
    }

    /// Whether the scope covers a job (in `project`, when known).
    pub fn covers(&self, job_id: &str, project: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Job(job) => job.as_str() == job_id,
            Scope::Project(p) => project == Some(p.as_str()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Scope::Job(job) => format!("job {job}"),
            Scope::Project(p) => format!("project {p}"),
            Scope::All => "all jobs".to_owned(),
        }
    }
}

/// One stored silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: i64,
    pub kind: Kind,
    pub scope: Scope,
    pub created_by: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Silence {
    /// Whether this silence keeps `event` from being sent at `now`.
    pub fn suppresses(&self, event: &Event, now: DateTime<Utc>) -> bool {
        if now >= self.expires_at {
            return false;
        }
        let project = event
            .current
            .as_ref()
            .or(event.previous.as_ref())
            .and_then(|i| i.project_id.as_deref());
        let covered = if event.kind.is_source() {
            self.scope == Scope::All
        } else {
            self.scope.covers(&event.job_id, project)
        };
        covered
            && match self.kind {
                Kind::Mute => true,
                // Someone is on it: only good news goes out.
                Kind::Ack => event.kind.severity() != Severity::Good,
            }
    }

    /// Why an event was not sent, as stored with it and shown in `/history`.
    pub fn reason_text(&self) -> String {
        let why = if self.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", self.reason)
        };
        format!(
            "{} #{} by {}{why}",
            if self.kind == Kind::Ack {
                "acked"
            } else {
                "muted"
            },
            self.id,
            self.created_by
        )
    }
}

/// The active silences, in memory for the poller's hot path.
#[derive(Debug, Default)]
pub struct Silences {
    active: RwLock<Vec<Silence>>,
}

impl Silences {
    pub fn replace(&self, active: Vec<Silence>) {
        if let Ok(mut a) = self.active.write() {
            *a = active;
        }
    }

    /// The reason the first silence that suppresses `event` gives, if any.
    pub fn suppressing(&self, event: &Event, now: DateTime<Utc>) -> Option<String> {
        let active = self.active.read().ok()?;
        active
            .iter()
            .find(|s| s.suppresses(event, now))
            .map(Silence::reason_text)
    }
}

/// Parses `30m`, `2h`, `1d`, `90s`, `1h30m` (at least a minute, at most 30 days).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim().to_ascii_lowercase();
    let bad = || {
        format!(
            "{:?} is not a duration: write e.g. 30m, 2h, 1d or 1h30m",
            crate::util::text::truncate_chars(&raw, 32)
        )
    };
    let mut total = 0u64;
    let mut number = String::new();
    for c in raw.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if !number.is_empty() || raw.is_empty() {
        return Err(bad());
    }
    let d = Duration::from_secs(total);
    if d < Duration::from_secs(60) {
        return Err("a silence lasts at least 1 minute".to_owned());
    }
    if d > MAX_DURATION {
        return Err("a silence lasts at most 30 days".to_owned());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codearts::JobInfo;
    use crate::domain::event::EventKind;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, 0, 0).unwrap()
    }

    fn event(kind: EventKind, job: &str, project: &str) -> Event {
        Event {
            kind,
            job_id: job.to_owned(),
            job_name: "web".to_owned(),
            detected_at: at(1),
            previous: None,
            current: Some(JobInfo {
                project_id: Some(project.to_owned()),
                ..JobInfo::default()
            }),
            summary: String::new(),
        }
    }

    fn silence(kind: Kind, scope: Scope) -> Silence {
        Silence {
            id: 3,
            kind,
            scope,
            created_by: "alice".into(),
            reason: "deploy freeze".into(),
            created_at: at(0),
            expires_at: at(2),
        }
    }

    const JOB: &str = "f5af662119404ad187437cd272b5099b";

    #[test]
    fn scopes_and_kinds_decide_what_is_suppressed() {
        let job = Scope::parse(JOB).unwrap();
        let failed = event(EventKind::BuildFailed, JOB, "p-1");
        let fixed = event(EventKind::BuildRecovered, JOB, "p-1");
        let other = event(EventKind::BuildFailed, &"a".repeat(32), "p-2");
        let mute = silence(Kind::Mute, job.clone());
        assert!(mute.suppresses(&failed, at(1)));
        assert!(mute.suppresses(&fixed, at(1)), "a mute holds everything");
        assert!(!mute.suppresses(&failed, at(2)), "expired");
        assert!(!mute.suppresses(&other, at(1)));
        let ack = silence(Kind::Ack, job);
        assert!(ack.suppresses(&event(EventKind::BuildStillFailing, JOB, "p-1"), at(1)));
        assert!(
            !ack.suppresses(&fixed, at(1)),
            "an ack lets the recovery through"
        );
        let project = silence(Kind::Mute, Scope::parse("p-2").unwrap());
        assert!(project.suppresses(&other, at(1)) && !project.suppresses(&failed, at(1)));
        let all = silence(Kind::Mute, Scope::All);
        assert!(all.suppresses(&other, at(1)));
        assert_eq!(mute.reason_text(), "muted #3 by alice: deploy freeze");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2D"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("10s").unwrap_err().contains("at least"));
        assert!(parse_duration("31d").unwrap_err().contains("at most"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn targets_parse_to_scopes() {
        assert_eq!(Scope::parse("ALL"), Ok(Scope::All));
        assert!(matches!(Scope::parse(JOB), Ok(Scope::Job(_))));
        assert_eq!(
            Scope::parse("85caf40575794f989920-5216d1148af6"),
            Ok(Scope::Project("85caf40575794f989920-5216d1148af6".into()))
        );
        assert!(Scope::parse("rm -rf").is_err());
    }
}
