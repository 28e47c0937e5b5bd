//! The wording of an event on a card, the same on every platform: the icon and headline, the
//! title, what changed (`before → after`), and the ranked facts under the title. Values are
//! raw; each renderer escapes them for its platform (see [`super::escape`]).

use chrono::{DateTime, TimeZone, Utc};

use super::fit::Line;
use crate::domain::event::{Event, EventKind, Severity};
use crate::util::text::{format_duration, printable, truncate_chars, utc_time};

/// The icon shown before a card's title.
pub fn severity_icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "🔴",
        Severity::Warning => "🟠",
        Severity::Good => "🟢",
        Severity::Info => "🔵",
    }
}

/// A short headline for a kind of event; the title is `<headline>: <job name>`.
pub fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::BuildFailed => "Build failed",
        EventKind::BuildRecovered => "Build fixed",
        EventKind::BuildStillFailing => "Still failing",
        EventKind::BuildStatusChanged => "Build status changed",
        EventKind::HealthDropped => "Health score dropped",
        EventKind::JobDisabled => "Job disabled",
        EventKind::JobEnabled => "Job enabled",
        EventKind::JobRenamed => "Job renamed",
        EventKind::JobNotFound => "Job no longer exists",
        EventKind::JobAccessLost => "Access lost to job",
        EventKind::HealthRecovered => "Health score recovered",
        EventKind::SourceUnreachable => "CodeArts cannot be reached",
        EventKind::SourceRecovered => "CodeArts reachable again",
        EventKind::SilenceEnded => "Silence ended, still broken",
        EventKind::IncidentReminder => "Still broken",
        EventKind::FlakyDigest => "Flaky jobs, daily digest",
        EventKind::StormSummary => "Many jobs changed at once",
        EventKind::Digest => "Digest",
    }
}

/// `before → after` when the two differ, the one value when they agree or only one is known,
/// `before (last seen)` when the job is no longer visible.
fn change(before: Option<String>, after: Option<String>, gone: bool) -> Option<String> {
    match (before, after) {
        (Some(b), Some(a)) if a != b => Some(format!("{b} → {a}")),
        (_, Some(a)) => Some(a),
        (Some(b), None) if gone => Some(format!("{b} (last seen)")),
        (Some(b), None) => Some(b),
        (None, None) => None,
    }
}

/// The last build status, as a change when it moved.
pub fn status_change(event: &Event) -> Option<String> {
    let pick = |i: Option<&crate::codearts::JobInfo>| {
        i.and_then(|i| i.last_build_status.as_deref())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    change(
        pick(event.previous.as_ref()),
        pick(event.current.as_ref()),
        event.current.is_none(),
    )
}

/// The health score, as a change when it moved.
pub fn health_change(event: &Event) -> Option<String> {
    let pick = |i: Option<&crate::codearts::JobInfo>| i.and_then(|i| i.health_score);
    change(
        pick(event.previous.as_ref()).map(|v| v.to_string()),
        pick(event.current.as_ref()).map(|v| v.to_string()),
        event.current.is_none(),
    )
}

/// Whether the job is disabled, as a change when it moved.
pub fn disabled_change(event: &Event) -> Option<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let pick = |i: Option<&crate::codearts::JobInfo>| i.and_then(|i| i.disabled).map(yes_no);
    change(
        pick(event.previous.as_ref()),
        pick(event.current.as_ref()),
        event.current.is_none(),
    )
}

/// The most recent view of the job: the current answer, or the last one seen.
fn latest(event: &Event) -> Option<&crate::codearts::JobInfo> {
    event.current.as_ref().or(event.previous.as_ref())
}

/// When the last build ran (from `last_build_time`, Unix milliseconds).
pub fn last_build_time(event: &Event) -> Option<DateTime<Utc>> {
    let ms = latest(event)?.last_build_time?;
    Utc.timestamp_millis_opt(ms).single()
}

/// How long the last build took, in seconds.
pub fn build_seconds(event: &Event) -> Option<f64> {
    latest(event)?.build_seconds()
}

/// The longest a job name or a fact's value may be on a card, before any platform limit.
pub const VALUE_MAX: usize = 256;

/// The longest the summary of a summary-only card may be (a storm's, a digest's).
const SUMMARY_MAX: usize = 1000;

/// Kinds whose summary says it all (nothing else on the card says what happened).
fn summary_only(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::SourceUnreachable
            | EventKind::SourceRecovered
            | EventKind::SilenceEnded
            | EventKind::IncidentReminder
            | EventKind::FlakyDigest
            | EventKind::StormSummary
    )
}

/// The words of a card's title: `🔴 Build failed: web-frontend` (raw, unescaped).
pub fn title(event: &Event) -> String {
    format!(
        "{} {}: {}",
        severity_icon(event.kind.severity()),
        headline(event.kind),
        event.job_name
    )
}

/// What the event is about, as `before → after`: the status for build events, the score for
/// `health_dropped`, the flag for `job_disabled`/`job_enabled`, the name for `job_renamed`,
/// the job's visibility for `job_not_found`/`job_access_lost`.
pub fn what_changed(event: &Event) -> Option<String> {
    match event.kind {
        EventKind::BuildFailed
        | EventKind::BuildRecovered
        | EventKind::BuildStillFailing
        | EventKind::BuildStatusChanged => status_change(event),
        EventKind::HealthDropped | EventKind::HealthRecovered => health_change(event),
        EventKind::JobDisabled | EventKind::JobEnabled => disabled_change(event),
        // The summary says it all: how long, and why (see `summary_only`).
        EventKind::SourceUnreachable
        | EventKind::SourceRecovered
        | EventKind::SilenceEnded
        | EventKind::IncidentReminder
        | EventKind::FlakyDigest
        | EventKind::StormSummary
        | EventKind::Digest => None,
        EventKind::JobRenamed => {
            let name = |i: Option<&crate::codearts::JobInfo>| {
                i.and_then(|i| i.job_name.clone())
                    .filter(|n| !n.trim().is_empty())
            };
            change(
                name(event.previous.as_ref()),
                name(event.current.as_ref()),
                false,
            )
        }
        EventKind::JobNotFound => Some("visible → not found (404)".to_owned()),
        EventKind::JobAccessLost => Some("visible → access denied (403)".to_owned()),
    }
}

/// One labelled fact of a card, raw (each renderer escapes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    /// How long the fact survives when a card must shrink: higher is kept longer.
    pub rank: u8,
}

/// The facts every chat card shows under its title, most important first: what changed, the
/// job id, the status and health score (unless they are what changed), the last build's time
/// (as `when` writes it) and duration. Values are one line, cut to [`VALUE_MAX`].
pub fn card_facts(event: &Event, when: impl Fn(DateTime<Utc>) -> String) -> Vec<Fact> {
    let changed = what_changed(event);
    let status = status_change(event).filter(|s| changed.as_ref() != Some(s));
    let health = health_change(event).filter(|h| changed.as_ref() != Some(h));
    let facts = [
        ("Changed", changed, 100),
        (
            "Job id",
            Some(event.job_id.clone()).filter(|id| !id.is_empty()),
            60,
        ),
        ("Status", status, 50),
        ("Health score", health, 40),
        ("Last build", last_build_time(event).map(when), 30),
        (
            "Duration",
            build_seconds(event).and_then(format_duration),
            20,
        ),
    ];
    facts
        .into_iter()
        .filter_map(|(label, value, rank)| {
            let value = printable(&value?);
            (!value.trim().is_empty()).then(|| Fact {
                label,
                value: truncate_chars(&value, VALUE_MAX),
                rank,
            })
        })
        .collect()
}

/// A card's facts as lines, each labelled the platform's way (`label` turns `"Status"` into,
/// say, `"*Status:* "`), ranked for fitting.
pub fn fact_lines(event: &Event, label: impl Fn(&str) -> String) -> Vec<Line> {
    if event.kind == EventKind::Digest {
        return digest_lines(event, label);
    }
    // Kinds whose summary is the whole message (a storm, a digest, a reminder) show it first:
    // these cards have no other facts worth the room.
    let summary = summary_only(event.kind).then(|| {
        let text = event
            .summary
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
        Line::new(
            label("Summary"),
            truncate_chars(&printable(&text), SUMMARY_MAX),
            "",
            95,
        )
    });
    summary
        .into_iter()
        .chain(
            card_facts(event, utc_time)
                .into_iter()
                .map(|fact| Line::new(label(fact.label), fact.value, "", fact.rank)),
        )
        .collect()
}

/// A digest's summary as the card's lines, one per section (`Failing now: ...`), each labelled
/// the platform's way; the first sections (period, what fails) are kept longest when a card
/// must shrink.
fn digest_lines(event: &Event, label: impl Fn(&str) -> String) -> Vec<Line> {
    event
        .summary
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let (name, text) = line.split_once(": ").unwrap_or(("Digest", line));
            let rank = 95u8.saturating_sub(u8::try_from(i).unwrap_or(u8::MAX).saturating_mul(5));
            Line::new(
                label(name),
                truncate_chars(&printable(text), SUMMARY_MAX),
                "",
                rank.max(2),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_facts_say_what_changed_first_without_repeating_it() {
        use crate::codearts::JobInfo;
        let info = |status: &str, health| JobInfo {
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(health),
            build_time: Some("185".to_owned()),
            ..JobInfo::default()
        };
        let mut event = Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "web".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success", 80)),
            current: Some(info("failed", 70)),
            summary: String::new(),
        };
        let labels = |e: &Event| {
            card_facts(e, utc_time)
                .into_iter()
                .map(|f| format!("{}={}", f.label, f.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(&event),
            [
                "Changed=success → failed",
                "Job id=f5af662119404ad187437cd272b5099b",
                "Health score=80 → 70",
                "Last build=2024-07-24 03:56:47 UTC",
                "Duration=3m 05s",
            ]
        );
        event.kind = EventKind::HealthDropped;
        assert_eq!(labels(&event)[0], "Changed=80 → 70");
        assert!(labels(&event).contains(&"Status=success → failed".to_owned()));
        event.kind = EventKind::JobNotFound;
        event.current = None;
        assert_eq!(labels(&event)[0], "Changed=visible → not found (404)");
    }

    #[test]
    fn a_digest_is_one_labelled_line_per_section_on_every_platform() {
        let digest = Event {
            kind: EventKind::Digest,
            job_id: String::new(),
            job_name: "1 failing".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap(),
            previous: None,
            current: None,
            summary: "Period: 2026-12-01 09:00 → 2026-12-02 09:00 UTC (24h 00m)\n\
                      Failing now: 1: web-<b>frontend</b> for 2h 00m (3 failed builds)\n\
                      Success ratio: p1 50% (1 of 2)"
                .to_owned(),
        };
        let lines = fact_lines(&digest, |l| format!("*{l}:* "));
        let shown: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.prefix.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "*Period:* ",
                    "2026-12-01 09:00 → 2026-12-02 09:00 UTC (24h 00m)"
                ),
                (
                    "*Failing now:* ",
                    "1: web-<b>frontend</b> for 2h 00m (3 failed builds)"
                ),
                ("*Success ratio:* ", "p1 50% (1 of 2)"),
            ]
        );
        assert!(lines.windows(2).all(|w| w[0].rank > w[1].rank), "{lines:?}");
        assert_eq!(title(&digest), "🔵 Digest: 1 failing");
        let out = crate::notify::Outgoing {
            delivery_id: "d",
            event: &digest,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        };
        let rendered = [
            crate::notify::discord::render(&out).to_string(),
            crate::notify::slack::render_batch(&[out]).to_string(),
            crate::notify::feishu::render_batch(&[out]).to_string(),
            crate::notify::dingtalk::render_batch(&[out]).to_string(),
            crate::notify::wecom::render_batch(&[out]).to_string(),
            crate::notify::stdout::render_text(&out),
            String::from_utf8(crate::notify::webhook::body(&out)).unwrap(),
        ];
        assert!(
            rendered[1].contains("web-&lt;b&gt;frontend"),
            "Slack escapes the name: {}",
            rendered[1]
        );
        for card in rendered {
            assert!(
                card.contains("Digest") || card.contains("\"event\":\"digest\""),
                "{card}"
            );
            assert!(
                card.contains("Failing now") && card.contains("2h 00m"),
                "{card}"
            );
            assert!(card.contains("Success ratio"), "{card}");
        }
    }
}
