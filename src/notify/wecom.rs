//! WeCom (WeChat Work) group robot: a markdown message; a batch is one message with a block
//! per event.
//!
//! Mirrors <https://developer.work.weixin.qq.com/document/path/91770> (summarised in
//! `docs/platforms.md#wecom`): `POST .../webhook/send?key=KEY` (the key is the credential; there
//! is no signature), body `{"msgtype": "markdown", "markdown": {"content": ...}}` with the
//! content at most 4096 **bytes** of UTF-8. WeCom answers HTTP 200 to refused messages:
//! success is JSON `errcode == 0`.
//!
//! Untrusted text goes through [`escape::markdown_safe`]: markdown escaped, and `<@userid>` or
//! `@all` can never form a mention in it. The one mention written is the mapped author of a
//! failed build, `<@userid>`.

use std::time::Duration;

use serde_json::{Value, json};

use super::context_text::{self as ctx, BlockStyle};
use super::error::SendError;
use super::fit::{self, Line, Markup};
use super::http::{self, CodedAnswers};
use super::outgoing::{BOARD_LABEL, LINK_LABEL, Outgoing};
use super::platform::{Platform, PlatformFacts, Signing, SizeLimit, Unit, Window};
use super::{escape, wording};
use crate::config::ChannelConfig;
use crate::domain::event::Severity;
use crate::util::secret::Secret;
use crate::util::text;

/// The markdown content's limit, in UTF-8 bytes.
pub const CONTENT_MAX: usize = 4096;
/// The most events one message carries: about 400 bytes per card.
pub const MAX_BATCH: usize = 10;
/// The most one event's log tail may take of the content, in bytes: the 4096 are shared.
const LOG_MAX: usize = 2_500;
/// The longest link a card carries, in bytes: a quarter of the content at most, so a storm
/// summary's board link leaves the summary room (a longer one links the problems view).
const LINK_MAX: usize = 1_000;

/// WeCom's group-robot facts (see `docs/platforms.md#wecom`): 20 messages per minute per
/// robot, no signature (the `key` is the credential), no editing.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "wecom",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(20, 60)],
    signing: Signing::None,
    edits_messages: false,
    buttons: false,
    size_limit: Some(SizeLimit {
        applies_to: "markdown content",
        max: CONTENT_MAX,
        unit: Unit::Utf8Bytes,
    }),
    link_max: LINK_MAX,
};

/// What WeCom's result codes mean.
const ANSWERS: CodedAnswers = CodedAnswers {
    platform: "WeCom",
    keys: &["errcode"],
    // 45009: API frequency out of limit (20 messages per minute per robot).
    throttled: &[45009],
    throttle_wait: Duration::from_secs(60),
    // 93000 invalid webhook key (robot removed), 40008 invalid message type, 40058 invalid
    // parameter, 44004 empty content.
    permanent: &[93000, 40008, 40058, 44004],
};

/// WeCom markdown, counted in UTF-8 bytes.
const MARKDOWN: Markup = Markup {
    escape: escape::markdown_safe,
    width: char::len_utf8,
    newline: "\n",
};

/// Between two events of a batch.
const SEPARATOR: &str = "\n\n";

/// How the log tail is written: its lines quoted under a bold heading set apart by a blank
/// line (WeCom markdown has no code block); a blank line after it ends the quote.
const LOG: BlockStyle = BlockStyle {
    heading: |h| format!("\n**{h}**"),
    open: "",
    close: "\n",
    line_prefix: "> ",
    escape: escape::markdown_safe,
    width: char::len_utf8,
};

/// A WeCom group reached through a robot's webhook URL (its `key` is the credential).
pub struct WecomSink {
    url: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for WecomSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WecomSink {
    /// `url` is the robot's webhook URL; `http` carries the delivery timeout.
    pub fn new(url: Secret, http: reqwest::Client) -> Self {
        Self { url, http }
    }
}

impl Platform for WecomSink {
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new(channel.url.clone().unwrap_or_default(), http)
    }

    /// Posts the events as one markdown message; `Ok` once WeCom answered `errcode == 0`.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let url = http::parse_url(&self.url)?;
        let body = http::encode(&render_batch(batch))?;
        let answer = http::post(&self.http, url, &self.url, body, Default::default()).await?;
        ANSWERS.classify(&answer).map_err(|e| e.scrubbed(&self.url))
    }
}

/// WeCom's markdown colour for a severity (it knows only these three).
fn colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::Warning => "warning",
        Severity::Good => "info",
        Severity::Info => "comment",
    }
}

/// The body for one or more events: a block per event (a coloured title, its facts quoted,
/// the link, the delivery id), a count above them for a batch. The content is at most
/// [`CONTENT_MAX`] bytes whatever the job names are.
pub fn render_batch(batch: &[Outgoing<'_>]) -> Value {
    let severity = batch
        .iter()
        .map(|o| o.event.kind.severity())
        .max()
        .unwrap_or(Severity::Info);
    let header = match batch {
        [_] => String::new(),
        _ => format!(
            "**{} {} CodeArts Build events**{SEPARATOR}",
            wording::severity_icon(severity),
            batch.len()
        ),
    };
    let closing = |n: usize| format!("{SEPARATOR}{} and {n} more", text::MARKER);
    let budget = CONTENT_MAX
        .saturating_sub(header.len())
        .saturating_sub(closing(batch.len()).len());
    let cards: Vec<Vec<Line>> = batch
        .iter()
        .map(|o| {
            let lines = card_lines(o);
            ctx::with_log(
                lines,
                o.context,
                (&MARKDOWN, &LOG),
                budget,
                batch.len(),
                LOG_MAX,
            )
        })
        .collect();
    let (contents, left_out) = MARKDOWN.fit_cards(&cards, budget, SEPARATOR.len());
    let mut content = header;
    content.push_str(&contents.join(SEPARATOR));
    if left_out > 0 {
        content.push_str(&closing(left_out));
    }
    json!({
        "msgtype": "markdown",
        "markdown": { "content": content },
    })
}

/// One event: the title in the severity's colour, its facts quoted, the links (CodeArts, the
/// board), the delivery id in grey.
fn card_lines(out: &Outgoing<'_>) -> Vec<Line> {
    let event = out.event;
    let severity = event.kind.severity();
    let mut lines = vec![Line::new(
        format!(
            "{} <font color=\"{}\">**{}**</font>: ",
            wording::severity_icon(severity),
            colour(severity),
            wording::headline(event.kind)
        ),
        event.job_name.clone(),
        "",
        fit::RANK_TITLE,
    )];
    if let Some(id) = ctx::wecom_id(out.mention) {
        lines.push(Line::fixed(format!("<@{id}>"), ctx::RANK_MENTION));
    }
    let label = |label: &str| format!("> **{label}:** ");
    if let Some(context) = out.context {
        lines.extend(ctx::markdown_fact_lines(
            context,
            label,
            escape::markdown_safe,
        ));
    }
    lines.extend(wording::fact_lines(event, label));
    if let Some(link) = escape::valid_link(out.link) {
        lines.push(Line::fixed(
            format!("[{LINK_LABEL}]({})", escape::markdown_url(&link)),
            fit::RANK_LINK,
        ));
    }
    if let Some(board) = escape::valid_link_within(out.board, FACTS.link_max) {
        lines.push(Line::fixed(
            format!("[{BOARD_LABEL}]({})", escape::markdown_url(&board)),
            fit::RANK_LINK,
        ));
    }
    lines.push(Line::new(
        "<font color=\"comment\">Delivery ",
        out.delivery_id,
        "</font>",
        fit::RANK_DELIVERY,
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Event;

    use crate::notify::outgoing::test_event as event;

    fn content(msg: &Value) -> String {
        msg["markdown"]["content"].as_str().unwrap().to_owned()
    }

    #[test]
    fn one_event_is_a_coloured_title_and_quoted_facts() {
        let ev = event("web-frontend");
        let msg = render_batch(&[Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: Some("https://console.example/job/f5af"),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        }]);
        assert_eq!(msg["msgtype"], "markdown");
        assert_eq!(
            content(&msg),
            "🔴 <font color=\"warning\">**Build failed**</font>: web-frontend\n\
             > **Changed:** success → failed\n\
             > **Job id:** f5af662119404ad187437cd272b5099b\n\
             > **Health score:** 80 → 70\n\
             > **Last build:** 2024-07-24 03:56:47 UTC\n\
             > **Duration:** 28s\n\
             [Open in CodeArts](https://console.example/job/f5af)\n\
             <font color=\"comment\">Delivery dlv-1</font>"
        );
    }

    use crate::notify::context_text::tests::{alice, failed_context};

    #[test]
    fn the_context_and_the_tail_fit_4096_bytes_and_mention_the_author() {
        let ev = event("web-frontend");
        let (context, person) = (failed_context(), alice());
        let out = |event| Outgoing {
            delivery_id: "dlv-1",
            event,
            link: None,
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        };
        let text = content(&render_batch(&[out(&ev)]));
        assert!(text.len() <= CONTENT_MAX, "{}", text.len());
        assert!(
            text.contains(
                "<@alice.w>\n\
                 > **Failed stage:** compile (1 m 12 s)\n\
                 > **Branch:** main\n\
                 > **Commit:** [a1b2c3d4](https://code.example/repo/commit/a1b2c3d4) Fix the login page\n\
                 > **Triggered by:** alice (Manual)\n\
                 > **Tests:** 120 tests, 3 failed, 1 error\n\
                 > **Error:** compile failed: exit code 101\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n\n**Log (last "), "{text}");
        assert!(text.contains("> LAST LINE: build failed\n"), "{text}");
        assert!(text.len() > 2_500, "the tail uses its room: {}", text.len());
        assert_eq!(text.matches("<@").count(), 1, "{text}");
        let events: Vec<Event> = (0..10).map(|_| event("web")).collect();
        let batch: Vec<Outgoing<'_>> = events.iter().map(out).collect();
        let text = content(&render_batch(&batch));
        assert!(text.len() <= CONTENT_MAX, "{}", text.len());
    }

    #[test]
    fn multibyte_names_are_cut_by_bytes_on_a_character_boundary() {
        let name = format!(
            "<@zhangsan> @all @everyone **bold** 🚀 {}",
            "构建任务😀".repeat(300)
        );
        for n in [1, 3, 10, 40] {
            let events: Vec<Event> = (0..n).map(|_| event(&name)).collect();
            let batch: Vec<Outgoing<'_>> = events
                .iter()
                .map(|event| Outgoing {
                    delivery_id: "d",
                    event,
                    link: Some("https://console.example/job/f5af"),
                    context: None,
                    mention: None,
                    buttons: None,
                    board: None,
                })
                .collect();
            let msg = render_batch(&batch);
            let content = content(&msg);
            assert!(content.len() <= CONTENT_MAX, "{n}: {} bytes", content.len());
            assert!(content.contains(text::MARKER), "{n}");
            for needle in ["<@zhangsan>", "@all", "@everyone", "**bold**"] {
                assert!(!content.contains(needle), "{n}: {needle} passed through");
            }
        }
    }

    use crate::notify::outgoing::{TEST_BOARD as BOARD, with_board};

    #[test]
    fn the_board_is_a_markdown_link_after_the_codearts_one_when_there_is_one() {
        let ev = event("web");
        let text = |board| {
            let msg = render_batch(&[with_board(&ev, board)]);
            msg["markdown"]["content"].as_str().unwrap().to_owned()
        };
        let with = text(Some(BOARD));
        let codearts = with.find("[Open in CodeArts](").unwrap();
        let board = with.find(&format!("[Open on the board]({BOARD})")).unwrap();
        assert!(codearts < board, "{with}");
        let plain = text(None);
        assert!(!plain.contains("Open on the board"));
        let long = format!("https://bot.example/?jobs={}", "a".repeat(FACTS.link_max));
        for bad in ["javascript:alert(1)", long.as_str()] {
            assert_eq!(text(Some(bad)), plain, "{bad}");
        }
    }
}
