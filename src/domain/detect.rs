//! The detector: decides which events an observation of a job produces. Pure: no I/O, no
//! clock, no database; the caller passes the previous snapshot, the observation, the rules and
//! the time, and stores what comes back.
//!
//! Decisions worth knowing (also in docs/events.md):
//! - The first observation of a job is a baseline and emits nothing.
//! - Statuses compare case-insensitively. In-progress statuses (`running`, `queued`, ...) are
//!   not transitions: a build is compared with the last *settled* status, so
//!   `failed -> running -> success` is one `build_recovered`, and a build starting is silent.
//! - A failed poll (timeout, 5xx, 429, garbage, auth failure) never changes the snapshot and
//!   never emits a job event.

use chrono::{DateTime, Utc};

use crate::codearts::{JobId, JobInfo};
use crate::domain::event::{Event, EventKind};
use crate::domain::rules::{Rules, StatusClass};
use crate::domain::snapshot::{Observation, Presence, Snapshot};

/// The detector's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The snapshot to store, or `None` when nothing needs writing.
    pub next: Option<Snapshot>,
    pub events: Vec<Event>,
}

impl Detection {
    fn unchanged() -> Self {
        Self {
            next: None,
            events: Vec::new(),
        }
    }
}

/// Decides what an observation means given what we knew before.
pub fn detect(
    job: &JobId,
    previous: Option<&Snapshot>,
    observation: &Observation,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Detection {
    detect_owned(job, previous, observation.clone(), rules, now)
}

/// [`detect`], taking the observation by value: its answer becomes the next snapshot without
/// a copy. The poll cycle's path, where nearly every observation changes nothing and copying
/// each answer was a third of the detector's work.
pub fn detect_owned(
    job: &JobId,
    previous: Option<&Snapshot>,
    observation: Observation,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Detection {
    let seen = match &observation {
        Observation::Unavailable => return Detection::unchanged(),
        Observation::Found(_) => Seen::Found,
        Observation::NotFound => Seen::NotFound,
        Observation::Forbidden => Seen::Forbidden,
    };
    let next = match observation {
        Observation::Found(info) => Snapshot {
            settled_status: settled(previous, &info, rules),
            outcomes: outcomes(previous, &info, rules),
            info: Some(info),
            presence: Presence::Present,
            missing_polls: 0,
        },
        Observation::NotFound | Observation::Forbidden | Observation::Unavailable => {
            let gone = if seen == Seen::NotFound {
                Presence::NotFound
            } else {
                Presence::Forbidden
            };
            // A visible job stays visible until it has been missing `missing_after` times.
            let missing_polls = previous
                .filter(|p| p.presence == Presence::Present)
                .map_or(0, |p| p.missing_polls.saturating_add(1));
            let still_visible = previous.is_some_and(|p| p.presence == Presence::Present)
                && missing_polls < rules.missing_after.max(1);
            Snapshot {
                info: previous.and_then(|p| p.info.clone()),
                presence: if still_visible {
                    Presence::Present
                } else {
                    gone
                },
                settled_status: previous.and_then(|p| p.settled_status.clone()),
                missing_polls: if still_visible { missing_polls } else { 0 },
                outcomes: previous.map(|p| p.outcomes.clone()).unwrap_or_default(),
            }
        }
    };
    let mut out = Detection {
        next: None,
        events: Vec::new(),
    };
    let emit = EventSink {
        job,
        now,
        previous: previous.and_then(|p| p.info.as_ref()),
        current: if seen == Seen::Found {
            next.info.as_ref()
        } else {
            None
        },
    };
    match (previous, seen) {
        // Baseline: record, say nothing. A job first seen as 404/403 has nothing to lose yet.
        (None, _) => {}
        // A job never visible before (first seen as 404/403) gets a baseline here too.
        (Some(prev), Seen::Found) => {
            if let (Some(before), Some(info)) = (&prev.info, &next.info) {
                compare(before, prev, info, &next, rules, &emit, &mut out.events);
            }
        }
        (Some(prev), Seen::NotFound)
            if prev.presence == Presence::Present && next.presence == Presence::NotFound =>
        {
            out.events.push(emit.event(
                EventKind::JobNotFound,
                format!("Job no longer exists: {} (404)", emit.name()),
            ));
        }
        (Some(prev), Seen::Forbidden)
            if prev.presence == Presence::Present && next.presence == Presence::Forbidden =>
        {
            out.events.push(emit.event(
                EventKind::JobAccessLost,
                format!("Access lost to job: {} (403)", emit.name()),
            ));
        }
        _ => {}
    }
    if previous != Some(&next) {
        out.next = Some(next);
    }
    out
}

/// What an observation saw, without its answer (which moves into the next snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Found,
    NotFound,
    Forbidden,
}

fn settled(previous: Option<&Snapshot>, info: &JobInfo, rules: &Rules) -> Option<String> {
    match info.last_build_status.as_deref() {
        Some(s) if rules.class(s) != StatusClass::InProgress => Some(s.trim().to_ascii_lowercase()),
        _ => previous.and_then(|p| p.settled_status.clone()),
    }
}

/// The recent outcomes with this answer's build added when it is a new finished build (a
/// different `last_build_time`, or the first sight) that failed or passed.
fn outcomes(previous: Option<&Snapshot>, info: &JobInfo, rules: &Rules) -> String {
    let mut out = previous.map(|p| p.outcomes.clone()).unwrap_or_default();
    let before = previous.and_then(|p| p.info.as_ref());
    let new_build = before.is_none_or(|b| b.last_build_time != info.last_build_time);
    let mark = match info.last_build_status.as_deref().map(|s| rules.class(s)) {
        Some(StatusClass::Failure) => Some('F'),
        Some(StatusClass::Success) => Some('S'),
        _ => None,
    };
    if let (true, Some(mark)) = (new_build, mark) {
        out.push(mark);
        let keep = rules.flaky_window.max(2);
        if out.len() > keep {
            out.drain(..out.len() - keep);
        }
    }
    out
}

struct EventSink<'a> {
    job: &'a JobId,
    now: DateTime<Utc>,
    previous: Option<&'a JobInfo>,
    current: Option<&'a JobInfo>,
}

impl EventSink<'_> {
    fn name(&self) -> String {
        self.current
            .or(self.previous)
            .map_or("(unnamed job)", JobInfo::display_name)
            .to_owned()
    }

    fn event(&self, kind: EventKind, summary: String) -> Event {
        Event {
            kind,
            job_id: self.job.to_string(),
            job_name: self.name(),
            detected_at: self.now,
            previous: self.previous.cloned(),
            current: self.current.cloned(),
            summary,
        }
    }
}

fn compare(
    before: &JobInfo,
    prev: &Snapshot,
    after: &JobInfo,
    next: &Snapshot,
    rules: &Rules,
    emit: &EventSink<'_>,
    events: &mut Vec<Event>,
) {
    let name = emit.name();
    if let Some((kind, mut summary)) = build_transition(before, prev, after, next, rules, &name) {
        if next.is_flaky(rules) {
            summary.push_str(&format!(
                " · flaky: {} flips in the last {} builds",
                next.flips(),
                next.outcomes.len()
            ));
        }
        events.push(emit.event(kind, summary));
    }
    if let (Some(old), Some(new)) = (before.health_score, after.health_score)
        && new < old
    {
        // Below the floor, the job has already been reported: no repeat until it recovers.
        let was_above = old >= rules.health_floor;
        let crossed = was_above && new < rules.health_floor;
        if was_above && (old - new >= rules.health_drop || crossed) {
            let floor_note = if crossed {
                format!(", below the floor of {}", rules.health_floor)
            } else {
                String::new()
            };
            events.push(emit.event(
                EventKind::HealthDropped,
                format!("Health score dropped: {name} ({old} → {new}{floor_note})"),
            ));
        }
    }
    if rules.health_recovery
        && let (Some(old), Some(new)) = (before.health_score, after.health_score)
        && old < rules.health_floor
        && new >= rules.health_floor
    {
        events.push(emit.event(
            EventKind::HealthRecovered,
            format!(
                "Health score recovered: {name} ({old} → {new}, back at or above the floor of {})",
                rules.health_floor
            ),
        ));
    }
    match (before.disabled, after.disabled) {
        (Some(false) | None, Some(true)) => {
            events.push(emit.event(EventKind::JobDisabled, format!("Job disabled: {name}")));
        }
        (Some(true), Some(false)) => {
            events.push(emit.event(EventKind::JobEnabled, format!("Job enabled: {name}")));
        }
        _ => {}
    }
    if let (Some(old), Some(new)) = (&before.job_name, &after.job_name)
        && old != new
    {
        events.push(emit.event(EventKind::JobRenamed, format!("Job renamed: {old} → {new}")));
    }
}

/// The build event, if any: compares the newly settled status with the previously settled one.
fn build_transition(
    before: &JobInfo,
    prev: &Snapshot,
    after: &JobInfo,
    next: &Snapshot,
    rules: &Rules,
    name: &str,
) -> Option<(EventKind, String)> {
    let new_status = after.last_build_status.as_deref()?;
    if rules.class(new_status) == StatusClass::InProgress {
        return None;
    }
    let old = prev.settled_status.as_deref()?;
    let new = next.settled_status.as_deref()?;
    let new_build =
        after.last_build_time.is_some() && after.last_build_time != before.last_build_time;
    let (old_class, new_class) = (rules.class(old), rules.class(new));
    let shown_new = new_status.trim();
    match (old_class, new_class) {
        (StatusClass::Failure, StatusClass::Failure) if new_build => Some((
            EventKind::BuildStillFailing,
            format!("Still failing: {name} (another build ended {shown_new})"),
        )),
        (o, StatusClass::Failure) if o != StatusClass::Failure => Some((
            EventKind::BuildFailed,
            format!("Build failed: {name} ({old} → {shown_new})"),
        )),
        (StatusClass::Failure, StatusClass::Success) => Some((
            EventKind::BuildRecovered,
            format!("Build fixed: {name} ({old} → {shown_new})"),
        )),
        _ if old != new => Some((
            EventKind::BuildStatusChanged,
            format!("Build status changed: {name} ({old} → {shown_new})"),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job() -> JobId {
        JobId::parse("f5af662119404ad187437cd272b5099b").unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn info(status: &str, build_time: i64, health: i64) -> JobInfo {
        JobInfo {
            id: Some(job().to_string()),
            job_name: Some("web-frontend".to_owned()),
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(build_time),
            health_score: Some(health),
            disabled: Some(false),
            ..JobInfo::default()
        }
    }

    /// Runs a sequence of observations from nothing and returns the kinds of each step.
    fn run(observations: &[Observation]) -> Vec<Vec<EventKind>> {
        run_with(&Rules::default(), observations)
    }

    fn run_with(rules: &Rules, observations: &[Observation]) -> Vec<Vec<EventKind>> {
        let mut snapshot: Option<Snapshot> = None;
        let mut out = Vec::new();
        for obs in observations {
            let d = detect(&job(), snapshot.as_ref(), obs, rules, now());
            out.push(d.events.iter().map(|e| e.kind).collect());
            if let Some(next) = d.next {
                snapshot = Some(next);
            }
        }
        out
    }

    fn found(status: &str, build_time: i64, health: i64) -> Observation {
        Observation::Found(info(status, build_time, health))
    }

    fn found_with(f: impl FnOnce(&mut JobInfo)) -> Observation {
        let mut i = info("success", 1, 80);
        f(&mut i);
        Observation::Found(i)
    }

    #[test]
    fn transition_table() {
        use EventKind::*;
        use Observation::{Forbidden, NotFound, Unavailable};
        let none: Vec<EventKind> = vec![];
        /// (case, observations in order, the kinds each step emits)
        type Case = (&'static str, Vec<Observation>, Vec<Vec<EventKind>>);
        let table: Vec<Case> = vec![
            (
                "first observation is a baseline",
                vec![found("failed", 1, 10)],
                vec![none.clone()],
            ),
            (
                "identical snapshots: nothing",
                vec![found("success", 1, 80), found("success", 1, 80)],
                vec![none.clone(), none.clone()],
            ),
            (
                "success -> failed",
                vec![found("success", 1, 80), found("failed", 2, 80)],
                vec![none.clone(), vec![BuildFailed]],
            ),
            (
                "failed -> success",
                vec![found("failed", 1, 80), found("success", 2, 80)],
                vec![none.clone(), vec![BuildRecovered]],
            ),
            (
                "failed -> failed with a new build",
                vec![found("failed", 1, 80), found("failed", 2, 80)],
                vec![none.clone(), vec![BuildStillFailing]],
            ),
            (
                "failed -> failed, same build: nothing",
                vec![found("failed", 1, 80), found("failed", 1, 80)],
                vec![none.clone(), none.clone()],
            ),
            (
                "success -> aborted is a status change",
                vec![found("success", 1, 80), found("aborted", 2, 80)],
                vec![none.clone(), vec![BuildStatusChanged]],
            ),
            (
                "aborted -> failed is a failure",
                vec![found("aborted", 1, 80), found("failed", 2, 80)],
                vec![none.clone(), vec![BuildFailed]],
            ),
            (
                "statuses compare case-insensitively",
                vec![
                    found("SUCCESS", 1, 80),
                    found("Success", 1, 80),
                    found("FAILED", 2, 80),
                ],
                vec![none.clone(), none.clone(), vec![BuildFailed]],
            ),
            (
                "a running build is not a transition",
                vec![
                    found("failed", 1, 80),
                    found("running", 1, 80),
                    found("success", 2, 80),
                ],
                vec![none.clone(), none.clone(), vec![BuildRecovered]],
            ),
            (
                "running then failed again is still failing",
                vec![
                    found("failed", 1, 80),
                    found("running", 1, 80),
                    found("failed", 2, 80),
                ],
                vec![none.clone(), none.clone(), vec![BuildStillFailing]],
            ),
            (
                "health drop by the delta",
                vec![found("success", 1, 90), found("success", 1, 85)],
                vec![none.clone(), vec![HealthDropped]],
            ),
            (
                "health drop below the delta: nothing",
                vec![found("success", 1, 90), found("success", 1, 86)],
                vec![none.clone(), none.clone()],
            ),
            (
                "health crossing the floor by 1 point",
                vec![found("success", 1, 60), found("success", 1, 59)],
                vec![none.clone(), vec![HealthDropped]],
            ),
            (
                "health rising: nothing",
                vec![found("success", 1, 50), found("success", 1, 90)],
                vec![none.clone(), none.clone()],
            ),
            (
                "disabled",
                vec![
                    found("success", 1, 80),
                    found_with(|i| i.disabled = Some(true)),
                ],
                vec![none.clone(), vec![JobDisabled]],
            ),
            (
                "enabled",
                vec![
                    found_with(|i| i.disabled = Some(true)),
                    found("success", 1, 80),
                ],
                vec![none.clone(), vec![JobEnabled]],
            ),
            (
                "renamed",
                vec![
                    found("success", 1, 80),
                    found_with(|i| i.job_name = Some("web".to_owned())),
                ],
                vec![none.clone(), vec![JobRenamed]],
            ),
            (
                "404 for a job seen before",
                vec![found("success", 1, 80), NotFound, NotFound],
                vec![none.clone(), vec![JobNotFound], none.clone()],
            ),
            (
                "403 for a job seen before",
                vec![found("success", 1, 80), Forbidden, Forbidden],
                vec![none.clone(), vec![JobAccessLost], none.clone()],
            ),
            (
                "404 on first sight is a baseline",
                vec![NotFound, NotFound],
                vec![none.clone(), none.clone()],
            ),
            (
                "transient failures never produce events",
                vec![
                    found("success", 1, 80),
                    Unavailable,
                    Unavailable,
                    Unavailable,
                    found("success", 1, 80),
                ],
                vec![
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                ],
            ),
            (
                "a transient failure between two states does not hide the change",
                vec![found("success", 1, 80), Unavailable, found("failed", 2, 80)],
                vec![none.clone(), none.clone(), vec![BuildFailed]],
            ),
            (
                "several changes at once",
                vec![
                    found("success", 1, 90),
                    found_with(|i| {
                        i.last_build_status = Some("failed".into());
                        i.last_build_time = Some(2);
                        i.health_score = Some(40);
                        i.disabled = Some(true);
                    }),
                ],
                vec![none.clone(), vec![BuildFailed, HealthDropped, JobDisabled]],
            ),
        ];
        for (name, observations, expected) in table {
            assert_eq!(run(&observations), expected, "case: {name}");
        }
    }

    #[test]
    fn alert_semantics_rules() {
        use EventKind::*;
        use Observation::{Forbidden, NotFound, Unavailable};
        let none: Vec<EventKind> = vec![];
        let patient = Rules {
            missing_after: 3,
            health_recovery: true,
            ..Rules::default()
        };
        type Case = (&'static str, Vec<Observation>, Vec<Vec<EventKind>>);
        let table: Vec<Case> = vec![
            (
                "404 must repeat missing_after times; failed polls do not count or reset",
                vec![
                    found("success", 1, 80),
                    NotFound,
                    Unavailable,
                    NotFound,
                    NotFound,
                    NotFound,
                ],
                vec![
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    vec![JobNotFound],
                    none.clone(),
                ],
            ),
            (
                "a job back before missing_after is silent, and the count starts over",
                vec![
                    found("success", 1, 80),
                    Forbidden,
                    Forbidden,
                    found("success", 1, 80),
                    Forbidden,
                    Forbidden,
                ],
                vec![
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    none.clone(),
                ],
            ),
            (
                "403 three times: job_access_lost once",
                vec![
                    found("success", 1, 80),
                    Forbidden,
                    Forbidden,
                    Forbidden,
                    Forbidden,
                ],
                vec![
                    none.clone(),
                    none.clone(),
                    none.clone(),
                    vec![JobAccessLost],
                    none.clone(),
                ],
            ),
            (
                "below the floor: no repeat on further drops; recovery above it is announced once",
                vec![
                    found("success", 1, 80),
                    found("success", 1, 50),
                    found("success", 1, 30),
                    found("success", 1, 55),
                    found("success", 1, 65),
                    found("success", 1, 70),
                ],
                vec![
                    none.clone(),
                    vec![HealthDropped],
                    none.clone(),
                    none.clone(),
                    vec![HealthRecovered],
                    none.clone(),
                ],
            ),
        ];
        for (name, observations, expected) in table {
            assert_eq!(run_with(&patient, &observations), expected, "case: {name}");
        }
        // health_recovery is off by default.
        assert_eq!(
            run(&[
                found("success", 1, 80),
                found("success", 1, 50),
                found("success", 1, 70)
            ]),
            vec![none.clone(), vec![HealthDropped], none]
        );
    }

    #[test]
    fn a_job_flipping_often_is_flaky_and_its_alerts_say_so() {
        let rules = Rules::default(); // window 10, threshold 4
        let mut snapshot: Option<Snapshot> = None;
        let mut summaries = Vec::new();
        let statuses = [
            "success", "failed", "success", "failed", "success", "failed",
        ];
        for (build, status) in statuses.iter().enumerate() {
            let d = detect(
                &job(),
                snapshot.as_ref(),
                &found(status, build as i64, 80),
                &rules,
                now(),
            );
            summaries.extend(d.events.iter().map(|e| e.summary.clone()));
            snapshot = d.next.or(snapshot);
            // The same build seen again adds nothing.
            let again = detect(
                &job(),
                snapshot.as_ref(),
                &found(status, build as i64, 80),
                &rules,
                now(),
            );
            assert!(again.next.is_none() && again.events.is_empty());
        }
        let s = snapshot.unwrap();
        assert_eq!((s.outcomes.as_str(), s.flips()), ("SFSFSF", 5));
        assert!(s.is_flaky(&rules));
        assert!(
            !summaries[2].contains("flaky"),
            "3 flips: not yet: {}",
            summaries[2]
        );
        assert!(
            summaries[3].contains("flaky: 4 flips in the last 5 builds"),
            "{}",
            summaries[3]
        );
        let off = Rules {
            flaky_threshold: 0,
            ..Rules::default()
        };
        assert!(!s.is_flaky(&off));
    }

    #[test]
    fn events_carry_before_and_after_and_a_summary() {
        let rules = Rules::default();
        let base = detect(&job(), None, &found("success", 1, 80), &rules, now());
        let prev = base.next.unwrap();
        let d = detect(&job(), Some(&prev), &found("failed", 2, 80), &rules, now());
        let event = &d.events[0];
        assert_eq!(event.kind, EventKind::BuildFailed);
        assert_eq!(event.job_id, job().to_string());
        assert_eq!(event.job_name, "web-frontend");
        assert_eq!(event.detected_at, now());
        assert_eq!(
            event
                .previous
                .as_ref()
                .unwrap()
                .last_build_status
                .as_deref(),
            Some("success")
        );
        assert_eq!(
            event.current.as_ref().unwrap().last_build_status.as_deref(),
            Some("failed")
        );
        assert_eq!(
            event.summary,
            "Build failed: web-frontend (success → failed)"
        );
    }

    #[test]
    fn unchanged_observation_writes_nothing_and_unavailable_keeps_the_snapshot() {
        let rules = Rules::default();
        let prev = detect(&job(), None, &found("success", 1, 80), &rules, now())
            .next
            .unwrap();
        let same = detect(&job(), Some(&prev), &found("success", 1, 80), &rules, now());
        assert_eq!(same.next, None);
        let gone = detect(
            &job(),
            Some(&prev),
            &Observation::Unavailable,
            &rules,
            now(),
        );
        assert_eq!(gone, Detection::unchanged());
    }

    #[test]
    fn not_found_keeps_the_last_known_info_for_the_card() {
        let rules = Rules::default();
        let prev = detect(&job(), None, &found("success", 1, 80), &rules, now())
            .next
            .unwrap();
        let d = detect(&job(), Some(&prev), &Observation::NotFound, &rules, now());
        let next = d.next.unwrap();
        assert_eq!(next.presence, Presence::NotFound);
        assert_eq!(next.info, prev.info);
        assert_eq!(d.events[0].current, None);
        assert_eq!(d.events[0].job_name, "web-frontend");
    }

    #[test]
    fn event_kind_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
