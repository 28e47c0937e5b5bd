//! Slack: an incoming webhook posting a Block Kit message; a batch is one message with a
//! section per event.
//!
//! Mirrors <https://api.slack.com/messaging/webhooks> and the block limits in
//! <https://api.slack.com/reference/block-kit/blocks> (summarised in
//! `docs/platforms.md#slack-incoming-webhook`): at most 50 blocks, a header's text at most
//! 150 characters, a section's text at most 3000.
//! Success is HTTP 200 with the body `ok`; errors are 4xx with a plain-text reason
//! (`invalid_payload`, `channel_not_found`, ...), 429 with `Retry-After` when too fast.
//!
//! Untrusted text goes through [`escape::slack_safe`]: `&`, `<` and `>` become entities, so no
//! `<!channel>`, `<@U123>` or `<url|label>` can form, and `@channel`/`@here` stay plain words.

use serde_json::{Value, json};

use super::context_text::{self as ctx, BlockStyle};
use super::error::SendError;
use super::fit::{self, Line, Markup};
use super::outgoing::{BOARD_LABEL, LINK_LABEL, Outgoing};
use super::platform::{Platform, PlatformFacts, Signing, SizeLimit, Unit, Window};
use super::{escape, http, wording};
use crate::config::ChannelConfig;
use crate::domain::context::Context;
use crate::domain::event::Severity;
use crate::util::secret::Secret;
use crate::util::text;

/// At most this many blocks in one message.
pub const BLOCKS_MAX: usize = 50;
/// A header block's text, in characters.
pub const HEADER_MAX: usize = 150;
/// A section block's text, in characters.
pub const SECTION_TEXT_MAX: usize = 3000;
/// A button's URL, in characters.
pub const BUTTON_URL_MAX: usize = 3000;
/// The most events one message carries: a header and a section each stay far below
/// [`BLOCKS_MAX`].
pub const MAX_BATCH: usize = 20;
/// The notification text (`text`, shown where blocks are not) is kept this short.
const FALLBACK_MAX: usize = 300;
/// A section field's text, in characters.
pub const FIELD_TEXT_MAX: usize = 2000;
/// At most this many fields in a section.
pub const FIELDS_MAX: usize = 10;
/// A context block's element text, in characters (Slack allows 3000; ours are short).
const CONTEXT_TEXT_MAX: usize = 300;
/// The log tails of one message together, in characters: a batch of 20 failures must stay
/// readable, and Slack truncates very long messages.
const LOG_TOTAL_MAX: usize = 12_000;
/// A commit link longer than this is left out (the short id is shown unlinked).
const COMMIT_URL_MAX: usize = 1000;

/// How the log tail is written: a preformatted block under a bold heading, in its own
/// section.
const LOG: BlockStyle = BlockStyle {
    heading: |h| format!("*{h}*"),
    open: "```\n",
    close: "\n```",
    line_prefix: "",
    escape: escape::slack_code_safe,
    width: char::len_utf16,
};

/// Slack's incoming-webhook facts (see `docs/platforms.md#slack-incoming-webhook`): about one
/// message per second, no signature (the URL is the credential), no editing through a webhook.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "slack",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(1, 1)],
    signing: Signing::None,
    edits_messages: false,
    buttons: true,
    size_limit: Some(SizeLimit {
        applies_to: "a section block's text",
        max: SECTION_TEXT_MAX,
        unit: Unit::Utf16,
    }),
    link_max: BUTTON_URL_MAX,
};

/// Slack counts characters; UTF-16 units are never fewer.
const MRKDWN: Markup = Markup {
    escape: escape::slack_safe,
    width: char::len_utf16,
    newline: "\n",
};

/// A Slack channel reached through an incoming-webhook URL (the URL is the credential).
pub struct SlackSink {
    url: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for SlackSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SlackSink {
    /// `url` is the incoming-webhook URL; `http` carries the delivery timeout.
    pub fn new(url: Secret, http: reqwest::Client) -> Self {
        Self { url, http }
    }
}

impl Platform for SlackSink {
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new(channel.url.clone().unwrap_or_default(), http)
    }

    /// Posts the events as one message; `Ok` once Slack answered 2xx (`ok`).
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let url = http::parse_url(&self.url)?;
        let body = http::encode(&render_batch(batch))?;
        http::post_json(&self.http, url, &self.url, body, Default::default()).await
    }
}

/// The incoming-webhook JSON for one or more events: `text` (the notification), a header,
/// one section per event with its facts and an "Open in CodeArts" button; past
/// [`BLOCKS_MAX`], one last section lists the remaining events. Every limit holds whatever
/// the job names are.
pub fn render_batch(batch: &[Outgoing<'_>]) -> Value {
    let single = batch.len() == 1;
    let severity = batch
        .iter()
        .map(|o| o.event.kind.severity())
        .max()
        .unwrap_or(Severity::Info);
    let heading = match batch {
        [only] => wording::title(only.event),
        _ => format!(
            "{} {} CodeArts Build events",
            wording::severity_icon(severity),
            batch.len()
        ),
    };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": text::truncate_utf16(&escape::plain_safe(&heading), HEADER_MAX),
            "emoji": true,
        },
    })];
    // The header, a section per event, and (when they do not all fit) one summary section.
    let (shown, rest) = if batch.len() < BLOCKS_MAX {
        (batch, &[][..])
    } else {
        batch.split_at(BLOCKS_MAX - 2)
    };
    // Blocks left for the context once every event has its section (and the summary its).
    // A card of its own carries its buttons (the link stays beside the facts).
    let actions = match batch {
        [only] => super::buttons::slack_actions(only.buttons, None, only.board),
        _ => None,
    };
    let mut spare = BLOCKS_MAX.saturating_sub(
        1 + shown.len() + usize::from(!rest.is_empty()) + usize::from(actions.is_some()),
    );
    let log_budget = SECTION_TEXT_MAX.min(LOG_TOTAL_MAX / shown.len().max(1));
    for (i, out) in shown.iter().enumerate() {
        blocks.push(section(out, single, i));
        if let Some(context) = out.context {
            let extra = context_blocks(context, log_budget, spare);
            spare = spare.saturating_sub(extra.len());
            blocks.extend(extra);
        }
    }
    if !rest.is_empty() {
        blocks.push(summary_section(rest));
    }
    blocks.extend(actions);
    json!({
        "text": fallback(batch),
        "blocks": blocks,
    })
}

/// One event as a section: its facts in `mrkdwn`, the link as a button beside them.
fn section(out: &Outgoing<'_>, single: bool, index: usize) -> Value {
    let event = out.event;
    let mut lines = vec![if single {
        Line::new("*Job:* ", event.job_name.clone(), "", fit::RANK_TITLE)
    } else {
        Line::new(
            format!(
                "{} *{}:* ",
                wording::severity_icon(event.kind.severity()),
                wording::headline(event.kind)
            ),
            event.job_name.clone(),
            "",
            fit::RANK_TITLE,
        )
    }];
    if let Some(id) = ctx::slack_id(out.mention) {
        lines.push(Line::fixed(format!("<@{id}>"), ctx::RANK_MENTION));
    }
    lines.extend(wording::fact_lines(event, |label| format!("*{label}:* ")));
    // A card of its own has the board as a button (its actions block); in a grouped message
    // the accessory holds the CodeArts link, so the board is a link in the text.
    if !single && let Some(board) = escape::valid_link_within(out.board, BUTTON_URL_MAX) {
        let link = format!("<{}|{BOARD_LABEL}>", escape::slack_url(&board));
        lines.push(Line::fixed(link, fit::RANK_LINK));
    }
    lines.push(Line::new(
        "Delivery ",
        out.delivery_id,
        "",
        fit::RANK_DELIVERY,
    ));
    let mut block = json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": MRKDWN.fit_card(&lines, SECTION_TEXT_MAX) },
    });
    if let Some(link) = escape::valid_link(out.link).filter(|l| l.len() <= BUTTON_URL_MAX) {
        block["accessory"] = json!({
            "type": "button",
            "text": { "type": "plain_text", "text": LINK_LABEL, "emoji": true },
            "url": link,
            "action_id": format!("open-{index}"),
        });
    }
    block
}

/// The context of one event in at most `spare` blocks, in the order shown: a section with the
/// facts as fields (and the error and why as its text), a context block (build number,
/// whether every call answered), the log tail preformatted in a section of its own. When
/// blocks run short, the facts are kept first, then the log.
fn context_blocks(context: &Context, log_budget: usize, spare: usize) -> Vec<Value> {
    let facts = facts_section(context);
    let note = context_note(context);
    let log = ctx::log_block(context, &LOG, log_budget)
        .map(|text| json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } }));
    let mut kept = [facts.is_some(), note.is_some(), log.is_some()];
    // Drop the least important first until they fit: the note, then the log.
    for drop in [1, 2, 0] {
        if kept.iter().filter(|k| **k).count() > spare {
            kept[drop] = false;
        }
    }
    [facts, note, log]
        .into_iter()
        .zip(kept)
        .filter_map(|(block, keep)| block.filter(|_| keep))
        .collect()
}

/// The facts as fields (failed stage, branch, commit, who ran it, tests), the error and why
/// as the section's text; `None` when there are none.
fn facts_section(context: &Context) -> Option<Value> {
    let facts = ctx::facts(context);
    let in_text = |label: &str| label == ctx::ERROR || label == ctx::WHY;
    let fields: Vec<Value> = facts
        .iter()
        .filter(|f| !in_text(f.label))
        .take(FIELDS_MAX)
        .map(|f| {
            let text = match (f.label, linked_commit(context)) {
                (ctx::COMMIT, Some(line)) => MRKDWN.fit_card(&[line], FIELD_TEXT_MAX),
                _ => field_text(f.label, &f.value),
            };
            json!({ "type": "mrkdwn", "text": text })
        })
        .collect();
    let lines: Vec<Line> = facts
        .iter()
        .filter(|f| in_text(f.label))
        .map(|f| Line::new(format!("*{}:* ", f.label), f.value.clone(), "", f.rank))
        .collect();
    let mut block = json!({ "type": "section" });
    if !lines.is_empty() {
        let text = MRKDWN.fit_card(&lines, SECTION_TEXT_MAX);
        block["text"] = json!({ "type": "mrkdwn", "text": text });
    }
    if !fields.is_empty() {
        block["fields"] = Value::Array(fields);
    }
    (!lines.is_empty() || !block["fields"].is_null()).then_some(block)
}

/// `*Label*` over the escaped value, within a field's limit.
fn field_text(label: &str, value: &str) -> String {
    let line = Line::new(format!("*{label}*\n"), value, "", fit::RANK_TITLE);
    MRKDWN.fit_card(&[line], FIELD_TEXT_MAX)
}

/// The commit field with the short id linked: `*Commit*` over `<url|a1b2c3d4> message`.
fn linked_commit(context: &Context) -> Option<Line> {
    let short = context.short_commit()?;
    let url = ctx::commit_link(context).filter(|u| u.len() <= COMMIT_URL_MAX)?;
    let prefix = format!(
        "*{}*\n<{}|{}> ",
        ctx::COMMIT,
        escape::slack_url(&url),
        escape::slack_safe(short)
    );
    let message = ctx::commit_message(context).unwrap_or_default();
    Some(Line::new(prefix, message, "", fit::RANK_TITLE))
}

/// The context block: the build's number, and a word when some of CodeArts' answers were
/// missing; `None` when there is nothing to say.
fn context_note(context: &Context) -> Option<Value> {
    let mut elements = Vec::new();
    if let Some(number) = context.build_no {
        elements.push(format!("Build #{number}"));
    }
    if !context.complete {
        elements.push("Some details could not be fetched from CodeArts".to_owned());
    }
    if elements.is_empty() {
        return None;
    }
    let elements: Vec<Value> = elements
        .iter()
        .map(|text| {
            let text = text::truncate_utf16(&escape::slack_safe(text), CONTEXT_TEXT_MAX);
            json!({ "type": "mrkdwn", "text": text })
        })
        .collect();
    Some(json!({ "type": "context", "elements": elements }))
}

/// The events that did not get a section of their own, one line each.
fn summary_section(rest: &[Outgoing<'_>]) -> Value {
    let lines: Vec<Vec<Line>> = rest
        .iter()
        .map(|o| {
            vec![Line::new(
                format!(
                    "{} *{}:* ",
                    wording::severity_icon(o.event.kind.severity()),
                    wording::headline(o.event.kind)
                ),
                o.event.job_name.clone(),
                "",
                fit::RANK_TITLE,
            )]
        })
        .collect();
    let closing = format!("{} and {} more", text::MARKER, rest.len());
    let budget = SECTION_TEXT_MAX.saturating_sub(MRKDWN.measure(&closing) + 1);
    let (cards, left_out) = MRKDWN.fit_cards(&lines, budget, 1);
    let mut body = cards.join("\n");
    if left_out > 0 {
        body.push_str(&format!("\n{} and {left_out} more", text::MARKER));
    }
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": body } })
}

/// The notification text: the people mentioned, then the title for one event, the count and
/// names for several.
fn fallback(batch: &[Outgoing<'_>]) -> String {
    let mut mentions = String::new();
    for id in batch.iter().filter_map(|o| ctx::slack_id(o.mention)) {
        let tag = format!("<@{id}> ");
        if !mentions.contains(&tag) {
            mentions.push_str(&tag);
        }
    }
    let line = match batch {
        [only] => Line::new(mentions, wording::title(only.event), "", fit::RANK_TITLE),
        _ => Line::new(
            format!("{mentions}{} CodeArts Build events: ", batch.len()),
            batch
                .iter()
                .map(|o| o.event.job_name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            "",
            fit::RANK_TITLE,
        ),
    };
    MRKDWN.fit_card(&[line], FALLBACK_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Event;

    use crate::notify::outgoing::test_event as event;

    fn hostile() -> String {
        let name = format!(
            "@everyone <!channel> @here @all **bold** <@123> _it_ & 🚀 {}",
            "x🔥".repeat(130)
        );
        assert!(name.chars().count() >= 300);
        name
    }

    fn section_texts(msg: &Value) -> Vec<String> {
        msg["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn one_event_is_a_header_and_a_section_with_every_fact_and_a_button() {
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
        assert_eq!(msg["text"], "🔴 Build failed: web-frontend");
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["text"], "🔴 Build failed: web-frontend");
        assert_eq!(
            blocks[1]["text"]["text"],
            "*Job:* web-frontend\n\
             *Changed:* success → failed\n\
             *Job id:* f5af662119404ad187437cd272b5099b\n\
             *Health score:* 80 → 70\n\
             *Last build:* 2024-07-24 03:56:47 UTC\n\
             *Duration:* 28s\n\
             Delivery dlv-1"
        );
        assert_eq!(
            blocks[1]["accessory"]["url"],
            "https://console.example/job/f5af"
        );
        assert_eq!(blocks[1]["accessory"]["text"]["text"], LINK_LABEL);
    }

    #[test]
    fn a_hostile_name_is_inert_and_within_every_limit() {
        let ev = event(&hostile());
        let msg = render_batch(&[Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        }]);
        let header = msg["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text::utf16_len(header) <= HEADER_MAX, "{header}");
        assert!(header.ends_with(text::MARKER));
        for section in section_texts(&msg) {
            assert!(text::utf16_len(&section) <= SECTION_TEXT_MAX);
        }
        assert!(text::utf16_len(msg["text"].as_str().unwrap()) <= FALLBACK_MAX);
        let raw = msg.to_string();
        for needle in ["@everyone", "<!channel>", "@here", "@all", "<@123>"] {
            assert!(!raw.contains(needle), "{needle} passed through: {raw}");
        }
        // The header is plain text (shown as typed); the mrkdwn parts must not format.
        let mrkdwn = format!("{}\n{}", msg["text"], section_texts(&msg).join("\n"));
        for needle in ["**bold**", "_it_", "*bold*"] {
            assert!(
                !mrkdwn.contains(needle),
                "{needle} passed through: {mrkdwn}"
            );
        }
        assert!(mrkdwn.contains("&lt;!channel&gt;"), "{mrkdwn}");
        assert!(mrkdwn.contains("&amp;"), "{mrkdwn}");
    }

    #[test]
    fn huge_values_are_cut_and_the_section_stays_within_3000() {
        let mut ev = event("job");
        let long = "s".repeat(5000);
        ev.previous.as_mut().unwrap().last_build_status = Some(long.clone());
        ev.current.as_mut().unwrap().last_build_status = Some(format!("{long}2"));
        let msg = render_batch(&[Outgoing {
            delivery_id: &"d".repeat(5000),
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        }]);
        for section in section_texts(&msg) {
            assert!(text::utf16_len(&section) <= SECTION_TEXT_MAX);
            assert!(
                section.starts_with("*Job:* job\n*Changed:* sss"),
                "{section}"
            );
        }
    }

    use crate::notify::context_text::tests::{alice, failed_context};

    /// Every text of a block Slack limits: section text and fields, context elements.
    fn assert_block_limits(msg: &Value) {
        let blocks = msg["blocks"].as_array().unwrap();
        assert!(blocks.len() <= BLOCKS_MAX, "{}", blocks.len());
        let len = |v: &Value| v.as_str().map_or(0, text::utf16_len);
        for block in blocks {
            let limit = if block["type"] == "header" {
                HEADER_MAX
            } else {
                SECTION_TEXT_MAX
            };
            assert!(len(&block["text"]["text"]) <= limit, "{block}");
            let fields = block["fields"].as_array().map_or(&[][..], Vec::as_slice);
            assert!(fields.len() <= FIELDS_MAX);
            for field in fields {
                assert!(len(&field["text"]) <= FIELD_TEXT_MAX, "{field}");
            }
            for element in block["elements"].as_array().map_or(&[][..], Vec::as_slice) {
                assert!(len(&element["text"]) <= CONTEXT_TEXT_MAX, "{element}");
            }
        }
    }

    #[test]
    fn the_context_is_a_fields_section_a_context_block_and_a_code_block() {
        let ev = event("web-frontend");
        let (context, person) = (failed_context(), alice());
        let msg = render_batch(&[Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: None,
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        }]);
        assert_block_limits(&msg);
        assert_eq!(msg["text"], "<@U012ABCDEF> 🔴 Build failed: web-frontend");
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 5, "{msg}");
        let main = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(
            main.starts_with("*Job:* web-frontend\n<@U012ABCDEF>\n"),
            "{main}"
        );
        let fields: Vec<&str> = blocks[2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "*Failed stage*\ncompile (1 m 12 s)",
                "*Branch*\nmain",
                "*Commit*\n<https://code.example/repo/commit/a1b2c3d4|a1b2c3d4> Fix the login page",
                "*Triggered by*\nalice (Manual)",
                "*Tests*\n120 tests, 3 failed, 1 error",
            ]
        );
        assert_eq!(
            blocks[2]["text"]["text"],
            "*Error:* compile failed: exit code 101"
        );
        assert_eq!(blocks[3]["type"], "context");
        assert_eq!(blocks[3]["elements"][0]["text"], "Build #42");
        let log = blocks[4]["text"]["text"].as_str().unwrap();
        assert!(log.starts_with("*Log (last "), "{log}");
        assert!(log.ends_with("LAST LINE: build failed\n```"), "{log}");
        assert_eq!(log.matches("```").count(), 2, "{log}");
        assert!(text::utf16_len(log) > 2000, "the tail uses its room");
        // Exactly one mention, of the mapped member.
        let raw = msg.to_string();
        assert_eq!(raw.matches("<@").count(), 2, "{raw}");
    }

    #[test]
    fn twenty_failures_with_context_stay_within_50_blocks() {
        let events: Vec<Event> = (0..20).map(|i| event(&format!("job-{i}"))).collect();
        let (context, person) = (failed_context(), alice());
        let batch: Vec<Outgoing<'_>> = events
            .iter()
            .map(|event| Outgoing {
                delivery_id: "d",
                event,
                link: None,
                context: Some(&context),
                mention: Some(&person),
                buttons: None,
                board: None,
            })
            .collect();
        let msg = render_batch(&batch);
        assert_block_limits(&msg);
        let blocks = msg["blocks"].as_array().unwrap();
        // Every event keeps its section; the context fills the blocks left.
        let sections = blocks
            .iter()
            .filter(|b| {
                b["text"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("*Build failed:*"))
            })
            .count();
        assert_eq!(sections, 20);
        assert_eq!(blocks.len(), BLOCKS_MAX);
        assert_eq!(
            msg["text"]
                .as_str()
                .unwrap()
                .matches("<@U012ABCDEF>")
                .count(),
            1
        );
        let logs: usize = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .filter(|t| t.starts_with("*Log"))
            .map(text::utf16_len)
            .sum();
        assert!(logs <= LOG_TOTAL_MAX, "{logs}");
    }

    #[test]
    fn a_batch_beyond_the_block_limit_summarises_the_rest() {
        let events: Vec<Event> = (0..70).map(|i| event(&format!("job-{i}"))).collect();
        let ids: Vec<String> = (0..70).map(|i| format!("d{i}")).collect();
        let batch: Vec<Outgoing<'_>> = events
            .iter()
            .zip(&ids)
            .map(|(event, id)| Outgoing {
                delivery_id: id,
                event,
                link: None,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            })
            .collect();
        let msg = render_batch(&batch);
        let blocks = msg["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), BLOCKS_MAX);
        assert_eq!(blocks[0]["text"]["text"], "🔴 70 CodeArts Build events");
        let summary = blocks[BLOCKS_MAX - 1]["text"]["text"].as_str().unwrap();
        assert!(
            summary.contains("job-48") && summary.contains("job-69"),
            "{summary}"
        );
        assert!(text::utf16_len(summary) <= SECTION_TEXT_MAX);
    }

    use crate::notify::outgoing::{TEST_BOARD as BOARD, with_board};

    #[test]
    fn the_board_is_a_button_on_a_card_of_its_own_and_a_link_in_a_grouped_one() {
        let ev = event("web");
        let single = render_batch(&[with_board(&ev, Some(BOARD))]);
        let last = single["blocks"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["type"], "actions");
        assert_eq!(last["elements"][0]["url"], BOARD);
        assert_eq!(last["elements"][0]["text"]["text"], "Open on the board");
        // The CodeArts link keeps its place beside the facts.
        assert_eq!(
            single["blocks"][1]["accessory"]["url"],
            "https://console.example/job/1"
        );
        let grouped = render_batch(&[with_board(&ev, Some(BOARD)), with_board(&ev, Some(BOARD))]);
        let texts = section_texts(&grouped);
        let linked = format!("<{BOARD}|Open on the board>");
        assert_eq!(
            texts.iter().filter(|t| t.contains(&linked)).count(),
            2,
            "{texts:?}"
        );
        assert!(
            grouped["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["type"] != "actions")
        );
        // Absent, unusable or past Slack's 3000: the message is exactly what it was.
        let plain = render_batch(&[with_board(&ev, None)]);
        assert!(!plain.to_string().contains("Open on the board"));
        let long = format!("https://bot.example/?jobs={}", "a".repeat(BUTTON_URL_MAX));
        for bad in ["javascript:alert(1)", long.as_str()] {
            assert_eq!(render_batch(&[with_board(&ev, Some(bad))]), plain, "{bad}");
        }
    }
}
