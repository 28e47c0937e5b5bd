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

use super::error::SendError;
use super::fit::{self, Line, Markup};
use super::outgoing::{LINK_LABEL, Outgoing};
use super::platform::{Platform, PlatformFacts, Signing, SizeLimit, Unit, Window};
use super::{escape, http, wording};
use crate::config::ChannelConfig;
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

/// Slack's incoming-webhook facts (see `docs/platforms.md#slack-incoming-webhook`): about one
/// message per second, no signature (the URL is the credential), no editing through a webhook.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "slack",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(1, 1)],
    signing: Signing::None,
    edits_messages: false,
    size_limit: Some(SizeLimit {
        applies_to: "a section block's text",
        max: SECTION_TEXT_MAX,
        unit: Unit::Utf16,
    }),
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
    for (i, out) in shown.iter().enumerate() {
        blocks.push(section(out, single, i));
    }
    if !rest.is_empty() {
        blocks.push(summary_section(rest));
    }
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
    lines.extend(wording::fact_lines(event, |label| format!("*{label}:* ")));
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

/// The notification text: the title for one event, the count and names for several.
fn fallback(batch: &[Outgoing<'_>]) -> String {
    let line = match batch {
        [only] => Line::new("", wording::title(only.event), "", fit::RANK_TITLE),
        _ => Line::new(
            format!("{} CodeArts Build events: ", batch.len()),
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
        }]);
        for section in section_texts(&msg) {
            assert!(text::utf16_len(&section) <= SECTION_TEXT_MAX);
            assert!(
                section.starts_with("*Job:* job\n*Changed:* sss"),
                "{section}"
            );
        }
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
}
