//! Why an event happened: [`Context`], what the bot learned from CodeArts about a failed build
//! (branch, commit, who ran it, the failed stage, the error, the log's tail, test counts) or
//! about a disabled or vanished job. Its JSON is the webhook contract's `context` object
//! (docs/events.md, "Failure context"); the store keeps it as that JSON, cached by job and
//! build.
//!
//! Every text in it has been through [`crate::util::redact`] before it was put here: a
//! `Context` is safe to store and to show.

use serde::{Deserialize, Serialize};

use crate::codearts::build_log::LogTail;
use crate::codearts::builds::{BuildInfo, BuildRecord, Stages, TestSummary};
use crate::util::redact::Redactor;

/// Which context an event asks for: a failed build's, or the why of a disabled or vanished
/// job. The store caches contexts by job and key, so a build is asked about once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextKey {
    /// A failed build, known by its `last_build_time` (Unix ms): ShowJobInfo and the lists
    /// give the time of the last build, not its number.
    Build { build_time: i64 },
    /// Why a job was disabled or vanished, as seen at the event's time (Unix ms).
    Why { at: i64 },
}

impl ContextKey {
    /// `(kind, key)` as stored.
    pub fn parts(self) -> (&'static str, i64) {
        match self {
            ContextKey::Build { build_time } => ("build", build_time),
            ContextKey::Why { at } => ("why", at),
        }
    }

    pub fn from_parts(kind: &str, key: i64) -> Option<Self> {
        match kind {
            "build" => Some(ContextKey::Build { build_time: key }),
            "why" => Some(ContextKey::Why { at: key }),
            _ => None,
        }
    }
}

/// A context to fetch: the job, and which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRequest {
    pub job_id: String,
    /// The job's name as last seen (the recycle bin is searched by name).
    pub job_name: String,
    pub key: ContextKey,
    /// What the event was (a failure, a disable, a disappearance).
    pub kind: crate::domain::event::EventKind,
}

/// How many characters of a commit id a card shows.
pub const SHORT_COMMIT: usize = 8;

/// What is known about why an event happened. Every field may be missing: a call that failed
/// leaves its part out and `complete` false.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    pub build_no: Option<u32>,
    pub record_id: Option<String>,
    pub branch: Option<String>,
    pub tag: Option<String>,
    /// The full commit id; cards show its first [`SHORT_COMMIT`] characters.
    pub commit: Option<String>,
    /// The first line of the commit message.
    pub commit_message: Option<String>,
    pub commit_url: Option<String>,
    /// Who ran the build, as people read it (nickname, else user name).
    pub triggered_by: Option<String>,
    /// The IAM user id of who ran it (matched against `[[people]] codearts`).
    pub user_id: Option<String>,
    /// How the build was started (`trigger_type`, e.g. `Manual`, `Scheduler`, `CodeHub`).
    pub trigger_type: Option<String>,
    /// The first failed stage, by the order the stages ran.
    pub failed_stage: Option<String>,
    /// How long that stage ran.
    pub failed_stage_ms: Option<i64>,
    pub stages: Vec<StageOutcome>,
    /// The build's error message (`err_msg`).
    pub error: Option<String>,
    /// The last lines of the log, oldest first.
    pub log_tail: Vec<String>,
    /// Earlier log lines exist that are not in `log_tail`.
    pub log_truncated: bool,
    pub tests: Option<TestCounts>,
    /// For `job_disabled` and `job_not_found`: who did it, when, why ("disabled by alice at
    /// 2026-11-30 10:02 UTC: migrating").
    pub why: Option<String>,
    /// Every call that feeds it answered.
    pub complete: bool,
}

/// One stage of the build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageOutcome {
    pub name: String,
    pub status: Option<String>,
    pub duration_ms: Option<i64>,
}

/// A unit-test report's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestCounts {
    pub total: i64,
    pub failed: i64,
    pub errors: i64,
}

/// What the build calls answered, each `None` when its call failed (or was not made).
#[derive(Debug, Default)]
pub struct BuildAnswers {
    pub build_no: Option<u32>,
    pub record: Option<BuildRecord>,
    pub info: Option<BuildInfo>,
    pub stages: Option<Stages>,
    pub tail: Option<LogTail>,
    /// `Some(None)`: the call answered that the build has no test report.
    pub tests: Option<Option<TestSummary>>,
    /// Every call that was made answered.
    pub all_answered: bool,
}

impl Context {
    /// Puts the answers together, scrubbing every text through `redactor`. `is_failure`
    /// says which stage statuses are failures (the configured failure statuses).
    pub fn from_build(
        answers: &BuildAnswers,
        redactor: &Redactor,
        is_failure: impl Fn(&str) -> bool,
    ) -> Self {
        let clean = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| redactor.line(t))
        };
        let record = answers.record.clone().unwrap_or_default();
        let info = answers.info.clone().unwrap_or_default();
        let first_line = record
            .commit_message
            .as_deref()
            .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
            .map(|l| redactor.line(l));
        let stages = answers.stages.clone().unwrap_or_default();
        let failed = stages.first_failed(&is_failure).cloned();
        let tail = answers.tail.clone().unwrap_or_default();
        Context {
            build_no: answers.build_no.or(record.build_no).or(info.number),
            record_id: clean(&record.build_record_id),
            branch: clean(&record.branch).or_else(|| clean(&info.code_branch)),
            tag: clean(&record.tag),
            commit: clean(&record.commit).or_else(|| clean(&info.commit_id)),
            commit_message: first_line,
            commit_url: clean(&info.commit_detail_url).filter(|u| is_web_link(u)),
            triggered_by: info.who().map(|w| redactor.line(w)),
            user_id: clean(&record.user_id).or_else(|| clean(&info.user_id)),
            trigger_type: clean(&record.trigger_type).or_else(|| clean(&info.trigger_type)),
            failed_stage: failed.as_ref().map(|s| redactor.line(s.name())),
            failed_stage_ms: failed.as_ref().and_then(|s| s.duration),
            stages: stages
                .0
                .iter()
                .map(|s| StageOutcome {
                    name: redactor.line(s.name()),
                    status: s.status.clone(),
                    duration_ms: s.duration,
                })
                .collect(),
            error: clean(&record.err_msg),
            log_tail: redactor.lines(&tail.lines),
            log_truncated: tail.truncated,
            tests: answers.tests.clone().flatten().map(|t| TestCounts {
                total: t.total.unwrap_or(0),
                failed: t.failures.unwrap_or(0),
                errors: t.errors.unwrap_or(0),
            }),
            why: None,
            complete: answers.all_answered,
        }
    }

    /// A context that is only an explanation (a disabled or deleted job).
    pub fn why(text: String, complete: bool) -> Self {
        Context {
            why: Some(text),
            complete,
            ..Context::default()
        }
    }

    /// The commit id as cards show it.
    pub fn short_commit(&self) -> Option<&str> {
        let commit = self.commit.as_deref()?;
        Some(commit.get(..SHORT_COMMIT).unwrap_or(commit))
    }

    /// "main", "tag v1.2", or `None`.
    pub fn branch_or_tag(&self) -> Option<String> {
        match (&self.branch, &self.tag) {
            (Some(branch), _) => Some(branch.clone()),
            (None, Some(tag)) => Some(format!("tag {tag}")),
            (None, None) => None,
        }
    }

    /// "compile (1 m 12 s)", or the name alone.
    pub fn failed_stage_line(&self) -> Option<String> {
        let stage = self.failed_stage.as_deref()?;
        Some(match self.failed_stage_ms {
            Some(ms) if ms >= 0 => format!("{stage} ({})", duration(ms)),
            _ => stage.to_owned(),
        })
    }

    /// "alice (Manual)", "alice", "(Scheduler)".
    pub fn triggered_line(&self) -> Option<String> {
        match (&self.triggered_by, &self.trigger_type) {
            (Some(who), Some(how)) => Some(format!("{who} ({how})")),
            (Some(who), None) => Some(who.clone()),
            (None, Some(how)) => Some(format!("({how})")),
            (None, None) => None,
        }
    }

    /// "a1b2c3d4 Fix the login page", or the short id alone.
    pub fn commit_line(&self) -> Option<String> {
        let short = self.short_commit()?;
        Some(match &self.commit_message {
            Some(message) => format!("{short} {message}"),
            None => short.to_owned(),
        })
    }

    /// "120 tests, 3 failed, 1 error".
    pub fn tests_line(&self) -> Option<String> {
        let t = self.tests?;
        let plural =
            |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        Some(format!(
            "{}, {} failed, {}",
            plural(t.total, "test", "tests"),
            t.failed,
            plural(t.errors, "error", "errors")
        ))
    }

    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        *self
            == Context {
                complete: self.complete,
                ..Context::default()
            }
    }
}

/// "45 s", "1 m 12 s", "2 h 3 m".
pub fn duration(ms: i64) -> String {
    let secs = ms / 1000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} m {} s", s / 60, s % 60),
        s => format!("{} h {} m", s / 3600, (s % 3600) / 60),
    }
}

/// Only http(s) links reach a card.
fn is_web_link(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codearts::builds::Stage;

    fn answers() -> BuildAnswers {
        BuildAnswers {
            build_no: Some(42),
            record: Some(BuildRecord {
                build_record_id: Some("rec-42".to_owned()),
                branch: Some("main".to_owned()),
                commit: Some("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".to_owned()),
                commit_message: Some("\nFix login token=abcdef123456\n\nlong body".to_owned()),
                trigger_type: Some("Manual".to_owned()),
                user_id: Some("u-1".to_owned()),
                err_msg: Some("compile failed".to_owned()),
                ..BuildRecord::default()
            }),
            info: Some(BuildInfo {
                nickname: Some("Alice".to_owned()),
                commit_detail_url: Some("javascript:alert(1)".to_owned()),
                ..BuildInfo::default()
            }),
            stages: Some(Stages(vec![
                Stage {
                    key: "stage1".to_owned(),
                    display_name: Some("checkout".to_owned()),
                    status: Some("success".to_owned()),
                    duration: Some(2_000),
                    ..Stage::default()
                },
                Stage {
                    key: "stage2".to_owned(),
                    display_name: Some("compile".to_owned()),
                    status: Some("failed".to_owned()),
                    duration: Some(72_000),
                    ..Stage::default()
                },
            ])),
            tail: Some(LogTail {
                lines: vec!["ok".to_owned(), "password=hunter2".to_owned()],
                truncated: true,
            }),
            tests: Some(Some(TestSummary {
                total: Some(120),
                failures: Some(3),
                errors: Some(1),
                ..TestSummary::default()
            })),
            all_answered: true,
        }
    }

    #[test]
    fn answers_become_a_scrubbed_context() {
        let c = Context::from_build(&answers(), &Redactor::default(), |s| s == "failed");
        assert_eq!(c.build_no, Some(42));
        assert_eq!(c.failed_stage_line().as_deref(), Some("compile (1 m 12 s)"));
        assert_eq!(
            c.commit_line().as_deref(),
            Some("a1b2c3d4 Fix login token=[redacted]")
        );
        assert_eq!(c.triggered_line().as_deref(), Some("Alice (Manual)"));
        assert_eq!(c.commit_url, None, "only http(s) links");
        assert_eq!(c.log_tail, ["ok", "password=[redacted]"]);
        assert_eq!(
            c.tests_line().as_deref(),
            Some("120 tests, 3 failed, 1 error")
        );
        assert!(c.complete && !c.is_empty());
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["failed_stage"], "compile");
        assert_eq!(json["stages"][1]["duration_ms"], 72_000);
        assert_eq!(json["tests"]["failed"], 3);
        assert_eq!(serde_json::from_value::<Context>(json).unwrap(), c);
    }

    #[test]
    fn missing_answers_leave_parts_out() {
        let c = Context::from_build(&BuildAnswers::default(), &Redactor::default(), |_| true);
        assert!(c.is_empty() && !c.complete);
        assert_eq!(c.branch_or_tag(), None);
        let tagged = Context {
            tag: Some("v1.2".to_owned()),
            ..Context::default()
        };
        assert_eq!(tagged.branch_or_tag().as_deref(), Some("tag v1.2"));
        assert_eq!(duration(7_380_000), "2 h 3 m");
    }
}
