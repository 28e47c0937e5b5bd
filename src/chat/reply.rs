//! What a command answers before a transport renders it: the platform-neutral [`Reply`], a
//! job's [`JobCard`], a list's [`Line`]s, a build log's [`LogExcerpt`], and the pieces both
//! renderers share (the list text under a size budget, the health sparkline).

use chrono::{DateTime, Utc};

use crate::codearts::{JobId, JobInfo};
use crate::domain::buttons::CardButtons;
use crate::domain::context::Context;

/// Most lines a list reply shows.
pub const MAX_LIST: usize = 20;

/// A job's card, as `/job` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCard {
    pub id: JobId,
    pub info: JobInfo,
    /// Stored health readings, oldest first (empty when the job is not watched).
    pub trend: Vec<i64>,
    pub watched: bool,
    pub link: Option<String>,
    /// Why the last build failed, when the job is failing and the bot fetched it (already
    /// redacted, as every stored context is).
    pub context: Option<Context>,
    /// Re-run, Stop, Ack and Mute, as the job's state allows (issued for this answer).
    pub buttons: Option<CardButtons>,
    /// The job's page on the status board (`[http] board` and `public_url` set).
    pub board: Option<String>,
}

/// The tail of a job's last build log, as `/log` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogExcerpt {
    pub id: JobId,
    /// The job's name as people read it.
    pub job: String,
    pub build_no: u32,
    /// Redacted, oldest first: what CodeArts sent, before a platform's size limit is applied.
    pub lines: Vec<String>,
}

/// Longest commit link a card shows: a longer one could not be cut without breaking it, and
/// would crowd out the rest of the field.
const MAX_LINK: usize = 500;

/// The link to the failed build's commit page, when CodeArts gave a usable one.
pub(crate) fn commit_link(context: &Context) -> Option<String> {
    crate::notify::escape::valid_link(context.commit_url.as_deref()).filter(|l| l.len() <= MAX_LINK)
}

/// One line of a list reply: trusted `label` markup-free text, untrusted `text` (escaped by
/// each renderer), and an optional time each platform shows in the reader's timezone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub when: Option<DateTime<Utc>>,
    pub label: String,
    pub text: String,
}

/// What a command answers, before a transport renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Card(Box<JobCard>),
    /// A titled list (`/watches`, `/history`).
    List {
        title: String,
        lines: Vec<Line>,
        more: usize,
    },
    /// A build log's tail: shown only to the invoker (a log may say more than a channel
    /// should read, even redacted).
    Log(Box<LogExcerpt>),
    /// A change was made (`/watch`, `/unwatch`): shown in the channel.
    Done(String),
    /// Nothing could be done, and why: shown only to the invoker.
    Error(String),
}

impl Reply {
    /// Errors, refusals and logs are shown only to the person who asked.
    pub fn ephemeral(&self) -> bool {
        matches!(self, Reply::Error(_) | Reply::Log(_))
    }

    /// The `outcome` label of the commands metric and log line.
    pub(crate) fn outcome(&self) -> &'static str {
        match self {
            Reply::Error(_) => "error",
            _ => "ok",
        }
    }
}

/// A list reply's lines as one text of at most `budget` bytes: each line is the time as `when`
/// writes it, the label in code style and the text escaped by `escape`; then how many more.
pub(crate) fn list_text(
    lines: &[Line],
    more: usize,
    budget: usize,
    when: impl Fn(DateTime<Utc>) -> String,
    escape: impl Fn(&str) -> String,
) -> String {
    let mut text = String::new();
    for line in lines {
        let at = line
            .when
            .map(|t| format!("{} ", when(t)))
            .unwrap_or_default();
        let entry = format!(
            "{at}`{}` {}\n",
            line.label.replace('`', "'"),
            escape(&line.text)
        );
        if text.len() + entry.len() > budget {
            break;
        }
        text.push_str(&entry);
    }
    if more > 0 {
        text.push_str(&format!("… and {more} more"));
    }
    if text.is_empty() {
        text.push_str("(none)");
    }
    text
}

/// Health readings as a sparkline, e.g. `▆▆▅▃▂`.
pub fn sparkline(scores: &[i64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    scores
        .iter()
        .map(|s| BARS[(s.clamp(&0, &100) * 7 / 100) as usize])
        .collect()
}

/// A failing job's card with a context and this log tail, the same in every transport's tests.
#[cfg(test)]
pub(crate) fn failing_card(log: Vec<String>) -> JobCard {
    JobCard {
        id: crate::codearts::JobId::parse(&"a".repeat(32)).unwrap(),
        info: crate::codearts::JobInfo {
            job_name: Some("web".into()),
            last_build_status: Some("failed".into()),
            ..Default::default()
        },
        trend: Vec::new(),
        watched: true,
        link: None,
        context: Some(Context {
            build_no: Some(7),
            branch: Some("main".into()),
            commit: Some("0123456789abcdef".into()),
            commit_message: Some("Fix *the* login".into()),
            commit_url: Some("https://code.example/c/0123456789abcdef".into()),
            triggered_by: Some("alice".into()),
            failed_stage: Some("compile".into()),
            error: Some("exit 1 @everyone".into()),
            log_tail: log,
            ..Context::default()
        }),
        buttons: None,
        board: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_web_links_to_a_commit_are_shown() {
        let with = |url: &str| Context {
            commit_url: Some(url.to_owned()),
            ..Context::default()
        };
        assert!(commit_link(&with("https://code.example/c/1")).is_some());
        assert_eq!(
            commit_link(&with(&format!("https://x.example/{}", "a".repeat(600)))),
            None
        );
        assert_eq!(commit_link(&with("javascript:alert(1)")), None);
        assert_eq!(commit_link(&Context::default()), None);
    }

    #[test]
    fn sparkline_spans_the_score_range() {
        assert_eq!(sparkline(&[0, 50, 100]), "▁▄█");
        assert_eq!(sparkline(&[]), "");
    }
}
