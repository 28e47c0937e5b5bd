//! Standard output: each event printed as the card a chat would show, for `demo`, for trying a
//! config without a chat service, and for piping into another tool.
//!
//! Untrusted text has its control characters replaced, so a job name cannot drive the
//! terminal.

use std::io::Write;

use super::context_text::{self as ctx, BlockStyle};
use super::error::SendError;
use super::escape;
use super::outgoing::Outgoing;
use super::platform::{Platform, PlatformFacts, Signing};
use super::wording;
use crate::config::ChannelConfig;
use crate::util::text::{self, printable};

/// The most cards printed as one batch.
pub const MAX_BATCH: usize = 50;
/// The most characters of log tail a card prints: a terminal has no limit, but a card of a
/// thousand lines is no longer a card.
const LOG_MAX: usize = 8_000;

/// The log tail as indented lines under its heading.
const LOG: BlockStyle = BlockStyle {
    heading: |h| format!("   {}", h.to_lowercase()),
    open: "",
    close: "",
    line_prefix: "      | ",
    escape: printable,
    width: |_| 1,
};

/// Standard output's facts: up to 50 cards at once, no pacing, no signature, no editing, no
/// size limit.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "stdout",
    max_batch: MAX_BATCH,
    pacing: &[],
    signing: Signing::None,
    edits_messages: false,
    buttons: false,
    size_limit: None,
    link_max: super::platform::PORTABLE_URL_MAX,
};

/// Prints cards to the process's standard output.
#[derive(Debug, Default)]
pub struct StdoutSink {
    _private: (),
}

impl StdoutSink {
    /// Stdout needs no settings; the constructor exists so every sink is built the same way.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the card and a blank line under one lock, so concurrent cards never interleave.
    pub fn send(&self, out: &Outgoing<'_>) -> Result<(), SendError> {
        self.write_batch(std::slice::from_ref(out))
    }

    /// Writes the cards one after another, each followed by a blank line, under one lock.
    pub fn write_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let mut cards = String::new();
        for out in batch {
            cards.push_str(&render_text(out));
            cards.push('\n');
        }
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        lock.write_all(cards.as_bytes())
            .and_then(|()| lock.flush())
            .map_err(|e| match e.kind() {
                // Nobody is reading any more: trying again cannot help.
                std::io::ErrorKind::BrokenPipe => {
                    SendError::permanent(format!("standard output is closed: {e}"))
                }
                _ => SendError::Retry {
                    reason: format!("could not write to standard output: {e}"),
                    after: None,
                },
            })
    }
}

impl Platform for StdoutSink {
    fn from_config(
        _channel: &ChannelConfig,
        _http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new()
    }

    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        self.write_batch(batch)
    }
}

/// The card as text, one fact per line, ending with a newline. `demo` prints exactly this.
///
/// ```text
/// 🔴 Build failed: web-frontend (success → failed)
///    failed stage compile (1 m 12 s)
///    branch       main
///    commit       a1b2c3d4 Fix the login page
///    triggered by alice (Manual)
///    tests        120 tests, 3 failed, 1 error
///    error        compile failed: exit code 101
///    job          web-frontend (f5af662119404ad187437cd272b5099b)
///    status       success → failed
///    last build   2024-07-24 03:56:47 UTC
///    duration     28s
///    health       80 → 70
///    link         https://console.example/job/f5af662119404ad187437cd272b5099b
///    board        https://bot.example.com/jobs/f5af662119404ad187437cd272b5099b
///    delivery     0b6e…
///    log (last 2 lines)
///       | error[E0425]: cannot find value `tokn` in this scope
///       | error: could not compile `web`
/// ```
///
/// The context's facts come first (a person not mapped to a chat id is simply named in
/// "triggered by"); the log tail last, as indented lines.
pub fn render_text(out: &Outgoing<'_>) -> String {
    let event = out.event;
    if event.kind == crate::domain::event::EventKind::Digest {
        return digest_text(out);
    }
    let mut card = format!(
        "{} {}\n",
        wording::severity_icon(event.kind.severity()),
        printable(&event.summary)
    );
    let mut line = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            card.push_str(&format!("   {label:<12} {}\n", printable(&value)));
        }
    };
    for fact in out.context.into_iter().flat_map(ctx::facts) {
        line(&fact.label.to_lowercase(), Some(fact.value));
    }
    line(
        "job",
        // Events about CodeArts as a whole (or several jobs) have no job id.
        Some(if event.job_id.is_empty() {
            event.job_name.clone()
        } else {
            format!("{} ({})", event.job_name, event.job_id)
        }),
    );
    line("status", wording::status_change(event));
    line(
        "last build",
        wording::last_build_time(event).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
    );
    line(
        "duration",
        wording::build_seconds(event).and_then(text::format_duration),
    );
    line("health", wording::health_change(event));
    line("disabled", wording::disabled_change(event));
    line("link", escape::valid_link(out.link));
    line(
        "board",
        escape::valid_link_within(out.board, FACTS.link_max),
    );
    line("delivery", Some(out.delivery_id.to_owned()));
    if let Some(log) = out.context.and_then(|c| ctx::log_block(c, &LOG, LOG_MAX)) {
        card.push_str(&log);
        card.push('\n');
    }
    card
}

/// A digest: its title, then one section per line (its summary keeps them on lines).
fn digest_text(out: &Outgoing<'_>) -> String {
    let mut card = format!("{}\n", printable(&wording::title(out.event)));
    for line in out.event.summary.lines() {
        card.push_str(&format!("   {}\n", printable(line)));
    }
    card.push_str(&format!("   delivery     {}\n", printable(out.delivery_id)));
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codearts::JobInfo;
    use crate::domain::context::Context;
    use crate::domain::event::{Event, EventKind};
    use chrono::{TimeZone, Utc};

    fn info(status: &str, health: i64) -> JobInfo {
        JobInfo {
            job_name: Some("web-frontend".to_owned()),
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(health),
            build_time: Some("27.51".to_owned()),
            disabled: Some(false),
            ..JobInfo::default()
        }
    }

    #[test]
    fn card_shows_every_fact_on_its_own_line() {
        let ev = Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "web-frontend".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success", 80)),
            current: Some(info("failed", 70)),
            summary: "Build failed: web-frontend (success → failed)".to_owned(),
        };
        let card = render_text(&Outgoing {
            delivery_id: "dlv-7",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        assert_eq!(
            card,
            "🔴 Build failed: web-frontend (success → failed)\n\
             \x20  job          web-frontend (f5af662119404ad187437cd272b5099b)\n\
             \x20  status       success → failed\n\
             \x20  last build   2024-07-24 03:56:47 UTC\n\
             \x20  duration     28s\n\
             \x20  health       80 → 70\n\
             \x20  disabled     no\n\
             \x20  delivery     dlv-7\n"
        );
    }

    #[test]
    fn the_link_gets_its_own_line_and_a_bad_one_is_left_out() {
        let ev = Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "web-frontend".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success", 80)),
            current: Some(info("failed", 70)),
            summary: "Build failed: web-frontend (success → failed)".to_owned(),
        };
        let card = |link| {
            render_text(&Outgoing {
                delivery_id: "d",
                event: &ev,
                link,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            })
        };
        assert!(
            card(Some("https://console.example/job/f5af")).contains(
                "\n   link         https://console.example/job/f5af\n   delivery     d\n"
            ),
            "{}",
            card(Some("https://console.example/job/f5af"))
        );
        assert!(!card(Some("javascript:alert(1)")).contains("link"));
        assert!(!card(None).contains("link"));
    }

    #[test]
    fn the_context_comes_first_and_the_tail_last_as_indented_lines() {
        use crate::notify::context_text::tests::{alice, failed_context};
        let ev = crate::notify::outgoing::test_event("web-frontend");
        let (context, person) = (failed_context(), alice());
        let card = render_text(&Outgoing {
            delivery_id: "dlv-7",
            event: &ev,
            link: None,
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        });
        assert!(
            card.starts_with(
                "🔴 Build failed: web-frontend (success → failed)\n\
                 \x20  failed stage compile (1 m 12 s)\n\
                 \x20  branch       main\n\
                 \x20  commit       a1b2c3d4 Fix the login page\n\
                 \x20  triggered by alice (Manual)\n\
                 \x20  tests        120 tests, 3 failed, 1 error\n\
                 \x20  error        compile failed: exit code 101\n\
                 \x20  job          web-frontend"
            ),
            "{card}"
        );
        assert!(
            card.contains("   delivery     dlv-7\n   log (last "),
            "{card}"
        );
        assert!(
            card.ends_with("      | LAST LINE: build failed\n"),
            "{card}"
        );
        let why = Context::why(
            "disabled by bob at 2026-11-30 10:02 UTC: migrating".into(),
            true,
        );
        let card = render_text(&Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: Some(&why),
            mention: None,
            buttons: None,
            board: None,
        });
        assert!(
            card.contains("\n   why          disabled by bob at 2026-11-30 10:02 UTC: migrating\n"),
            "{card}"
        );
    }

    #[test]
    fn control_characters_in_names_cannot_reach_the_terminal() {
        let ev = Event {
            kind: EventKind::JobNotFound,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "evil\x1b[2J\nname".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success", 80)),
            current: None,
            summary: "Job no longer exists: evil\x1b[2J\nname (404)".to_owned(),
        };
        let card = render_text(&Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        assert!(!card.contains('\x1b'), "{card:?}");
        assert!(card.contains("status       success (last seen)"), "{card}");
        assert!(
            card.starts_with("🔴 Job no longer exists: evil [2J name (404)\n"),
            "{card}"
        );
    }

    #[test]
    fn the_board_gets_its_own_line_after_the_link() {
        let ev = crate::notify::outgoing::test_event("web");
        let card = |board| {
            render_text(&Outgoing {
                delivery_id: "d",
                event: &ev,
                link: Some("https://console.example/job/f5af"),
                context: None,
                mention: None,
                buttons: None,
                board,
            })
        };
        let board = "https://bot.example/jobs/f5af662119404ad187437cd272b5099b";
        assert!(
            card(Some(board)).contains(&format!(
                "\n   link         https://console.example/job/f5af\n   board        {board}\n   delivery     d\n"
            )),
            "{}",
            card(Some(board))
        );
        assert_eq!(card(Some("javascript:alert(1)")), card(None));
        assert!(!card(None).contains("board"));
    }
}
