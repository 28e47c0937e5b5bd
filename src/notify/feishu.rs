//! Feishu / Lark custom bot: an interactive card, optionally signed; a batch is one card with
//! a markdown element per event.
//!
//! Mirrors <https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot> (summarised in
//! `docs/platforms.md#feishu`): `{"msg_type": "interactive", "card": {...}}`, custom bots may use
//! URL buttons only; with a signing secret the body also carries `timestamp` (seconds, as
//! text) and `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))`.
//! The body must stay within 20 KB. Feishu answers HTTP 200 to refused messages: success is
//! JSON `code == 0` (older deployments: `StatusCode == 0`).
//!
//! Untrusted text goes through [`escape::feishu_safe`] (markdown characters and `<at>` tags as
//! HTML entities, `@` inert) or, in the header, [`escape::plain_safe`].

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

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

/// The body's limit: "20 KB", read as 20,000 bytes to be safe under either reading.
pub const BODY_MAX: usize = 20_000;
/// The header's title, in characters.
pub const HEADER_MAX: usize = 100;
/// The most events one card carries.
pub const MAX_BATCH: usize = 20;
/// Room kept for `timestamp` and `sign`, which are added after fitting.
const SIGNATURE_RESERVE: usize = 128;

/// Feishu's facts (see `docs/platforms.md#feishu`): 5 messages per second and 100 per minute
/// per bot, signed in the body when the channel has a secret, no editing.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "feishu",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(5, 1), Window::per_secs(100, 60)],
    signing: Signing::SecretInBody,
    edits_messages: false,
    buttons: false,
    size_limit: Some(SizeLimit {
        applies_to: "request body",
        max: BODY_MAX,
        unit: Unit::JsonBytes,
    }),
    link_max: super::platform::PORTABLE_URL_MAX,
};

/// What Feishu's result codes mean.
const ANSWERS: CodedAnswers = CodedAnswers {
    platform: "Feishu",
    keys: &["code", "StatusCode"],
    // 11232: frequency limited (100 per minute, 5 per second per bot).
    throttled: &[11232],
    throttle_wait: Duration::from_secs(60),
    // 9499 bad request, 19001 invalid token, 19002 bad parameters, 19021 signature mismatch or
    // stale timestamp, 19022 IP not allowed, 19024 keyword check failed.
    permanent: &[9499, 19001, 19002, 19021, 19022, 19024],
};

/// Card markdown, counted as JSON-escaped bytes since the limit is on the body.
const MARKDOWN: Markup = Markup {
    escape: escape::feishu_safe,
    width: fit::json_width,
    newline: "\n",
};

/// The most one event's log tail may take of the body, in JSON-escaped bytes.
const LOG_MAX: usize = 8_000;

/// How the log tail is written: a fenced code block in the event's markdown element.
const LOG: BlockStyle = BlockStyle::fenced(escape::code_safe, fit::json_width);

type HmacSha256 = Hmac<Sha256>;

/// A Feishu group reached through a custom bot's webhook URL (the URL holds the token).
pub struct FeishuSink {
    url: Secret,
    secret: Option<Secret>,
    http: reqwest::Client,
}

impl std::fmt::Debug for FeishuSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeishuSink")
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl FeishuSink {
    /// `secret`, when set (and not empty), signs every message.
    pub fn new(url: Secret, secret: Option<Secret>, http: reqwest::Client) -> Self {
        let secret = secret.filter(|s| !s.is_empty());
        Self { url, secret, http }
    }
}

impl Platform for FeishuSink {
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new(
            channel.url.clone().unwrap_or_default(),
            channel.secret.clone(),
            http,
        )
    }

    /// Posts the events as one card, signed when the bot has a secret; `Ok` once Feishu
    /// answered `code == 0`.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let url = http::parse_url(&self.url)?;
        let mut body = render_batch(batch);
        if let Some(secret) = &self.secret {
            let timestamp = chrono::Utc::now().timestamp();
            body["timestamp"] = json!(timestamp.to_string());
            body["sign"] = json!(sign(secret.expose(), timestamp));
        }
        let body = http::encode(&body)?;
        let answer = http::post(&self.http, url, &self.url, body, Default::default()).await?;
        ANSWERS.classify(&answer).map_err(|e| e.scrubbed(&self.url))
    }
}

/// Feishu's signature: `base64(HMAC-SHA256(key = "{timestamp}\n{secret}", message = ""))`.
pub fn sign(secret: &str, timestamp: i64) -> String {
    let key = format!("{timestamp}\n{secret}");
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mac) = HmacSha256::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The header colour by severity.
pub fn template(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "red",
        Severity::Warning => "orange",
        Severity::Good => "green",
        Severity::Info => "blue",
    }
}

/// The unsigned body for one or more events: a card whose header names the event (or counts
/// them), coloured by the gravest; a markdown element per event with its facts; the link as
/// a URL button for one event, as a markdown link in each card of a batch, and the board's
/// link the same way beside it. Within
/// [`BODY_MAX`] (less room for the signature) whatever the job names are.
pub fn render_batch(batch: &[Outgoing<'_>]) -> Value {
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
    let heading = text::truncate_utf16(&escape::plain_safe(&heading), HEADER_MAX);
    let single = batch.len() == 1;
    let buttons: Vec<Value> = match batch {
        [only] => [
            (escape::valid_link(only.link), LINK_LABEL, "primary"),
            (
                escape::valid_link_within(only.board, FACTS.link_max),
                BOARD_LABEL,
                "default",
            ),
        ]
        .into_iter()
        .filter_map(|(url, label, kind)| {
            let text = json!({ "tag": "plain_text", "content": label });
            url.map(|url| json!({ "tag": "button", "text": text, "type": kind, "url": url }))
        })
        .collect(),
        _ => Vec::new(),
    };
    let closing = |n: usize| format!("{} and {n} more", text::MARKER);
    // What the card weighs with every markdown element empty: the room left is the budget.
    let skeleton = |contents: &[String], left_out: usize| {
        let mut elements = Vec::new();
        for (i, content) in contents.iter().enumerate() {
            if i > 0 {
                elements.push(json!({ "tag": "hr" }));
            }
            elements.push(json!({ "tag": "markdown", "content": content }));
        }
        if !buttons.is_empty() {
            elements.push(json!({ "tag": "action", "actions": buttons }));
        }
        if left_out > 0 {
            elements.push(json!({ "tag": "markdown", "content": closing(left_out) }));
        }
        json!({
            "msg_type": "interactive",
            "card": {
                "config": { "wide_screen_mode": true },
                "header": {
                    "template": template(severity),
                    "title": { "tag": "plain_text", "content": heading },
                },
                "elements": elements,
            },
        })
    };
    let size = |v: &Value| v.to_string().len();
    let empty = vec![String::new(); batch.len()];
    let overhead = size(&skeleton(&empty, batch.len())) + SIGNATURE_RESERVE;
    let mut budget = BODY_MAX.saturating_sub(overhead);
    let cards: Vec<Vec<Line>> = batch
        .iter()
        .map(|o| {
            let lines = card_lines(o, single);
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
    loop {
        let (contents, left_out) = MARKDOWN.fit_cards(&cards, budget, 0);
        let body = skeleton(&contents, left_out);
        let excess = (size(&body) + SIGNATURE_RESERVE).saturating_sub(BODY_MAX);
        if excess == 0 || budget == 0 {
            return body;
        }
        budget = budget.saturating_sub(excess.max(64));
    }
}

/// One event's markdown lines: title (or, for a single event, the job name under a header
/// that already says what happened), facts, the link in a batch, the delivery id.
fn card_lines(out: &Outgoing<'_>, single: bool) -> Vec<Line> {
    let event = out.event;
    let mut lines = vec![if single {
        Line::new("**Job:** ", event.job_name.clone(), "", fit::RANK_TITLE)
    } else {
        Line::new(
            format!(
                "{} **{}:** ",
                wording::severity_icon(event.kind.severity()),
                wording::headline(event.kind)
            ),
            event.job_name.clone(),
            "",
            fit::RANK_TITLE,
        )
    }];
    if let Some(id) = ctx::feishu_id(out.mention) {
        lines.push(Line::fixed(format!("<at id={id}></at>"), ctx::RANK_MENTION));
    }
    if let Some(context) = out.context {
        let label = |l: &str| format!("**{l}:** ");
        lines.extend(ctx::markdown_fact_lines(
            context,
            label,
            escape::feishu_safe,
        ));
    }
    lines.extend(wording::fact_lines(event, |label| format!("**{label}:** ")));
    if !single && let Some(link) = escape::valid_link(out.link) {
        lines.push(Line::fixed(
            format!("[{LINK_LABEL}]({})", escape::markdown_url(&link)),
            fit::RANK_LINK,
        ));
    }
    if !single && let Some(board) = escape::valid_link_within(out.board, FACTS.link_max) {
        lines.push(Line::fixed(
            format!("[{BOARD_LABEL}]({})", escape::markdown_url(&board)),
            fit::RANK_LINK,
        ));
    }
    lines.push(Line::new(
        "<font color='grey'>Delivery ",
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

    #[test]
    fn one_event_is_a_red_card_with_its_facts_and_a_url_button() {
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
        assert_eq!(msg["msg_type"], "interactive");
        let card = &msg["card"];
        assert_eq!(card["header"]["template"], "red");
        assert_eq!(
            card["header"]["title"]["content"],
            "🔴 Build failed: web-frontend"
        );
        let elements = card["elements"].as_array().unwrap();
        assert_eq!(elements[0]["tag"], "markdown");
        assert_eq!(
            elements[0]["content"],
            "**Job:** web-frontend\n\
             **Changed:** success → failed\n\
             **Job id:** f5af662119404ad187437cd272b5099b\n\
             **Health score:** 80 → 70\n\
             **Last build:** 2024-07-24 03:56:47 UTC\n\
             **Duration:** 28s\n\
             <font color='grey'>Delivery dlv-1</font>"
        );
        assert_eq!(elements[1]["tag"], "action");
        assert_eq!(
            elements[1]["actions"][0]["url"],
            "https://console.example/job/f5af"
        );
    }

    use crate::notify::context_text::tests::{alice, failed_context};

    #[test]
    fn the_context_and_the_mention_are_in_the_card_and_the_body_stays_under_20_kb() {
        let ev = event("web-frontend");
        let (context, person) = (failed_context(), alice());
        let out = |event| Outgoing {
            delivery_id: "dlv-1",
            event,
            link: Some("https://console.example/job/f5af"),
            context: Some(&context),
            mention: Some(&person),
            buttons: None,
            board: None,
        };
        let msg = render_batch(&[out(&ev)]);
        let size = msg.to_string().len();
        assert!(size + SIGNATURE_RESERVE <= BODY_MAX, "{size}");
        let content = msg["card"]["elements"][0]["content"].as_str().unwrap();
        assert!(
            content.starts_with(
                "**Job:** web-frontend\n\
                 <at id=ou_7d8a6e6df7621556ce0d21922b676706></at>\n\
                 **Failed stage:** compile (1 m 12 s)\n\
                 **Branch:** main\n\
                 **Commit:** [a1b2c3d4](https://code.example/repo/commit/a1b2c3d4) Fix the login page\n\
                 **Triggered by:** alice (Manual)\n\
                 **Tests:** 120 tests, 3 failed, 1 error\n\
                 **Error:** compile failed: exit code 101\n"
            ),
            "{content}"
        );
        assert!(content.contains("**Log (last "), "{content}");
        assert!(
            content.ends_with(
                "LAST LINE: build failed\n```\n<font color='grey'>Delivery dlv-1</font>"
            ),
            "{content}"
        );
        assert_eq!(content.matches("```").count(), 2);
        assert!(size > 8_000, "the tail uses its room: {size}");
        // A batch of 20 shares the body and stays within it, every code block whole.
        let events: Vec<Event> = (0..20).map(|_| event("web")).collect();
        let batch: Vec<Outgoing<'_>> = events.iter().map(out).collect();
        let msg = render_batch(&batch);
        assert!(msg.to_string().len() + SIGNATURE_RESERVE <= BODY_MAX);
        for element in msg["card"]["elements"].as_array().unwrap() {
            let markdown = element["content"].as_str().unwrap_or_default();
            assert_eq!(markdown.matches("```").count() % 2, 0, "{markdown}");
        }
        assert_eq!(msg.to_string().matches("<at id=").count(), 20);
    }

    #[test]
    fn the_signature_matches_the_documented_algorithm() {
        // Recomputed by hand: HMAC-SHA256 keyed with "1599360473\ndemo", over nothing.
        let mut mac = HmacSha256::new_from_slice(b"1599360473\ndemo").unwrap();
        mac.update(b"");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sign("demo", 1_599_360_473), expected);
        assert_ne!(sign("demo", 1_599_360_474), expected);
    }

    #[test]
    fn a_batch_of_long_hostile_names_stays_under_20_kb_and_pings_nobody() {
        let name = format!(
            "@all <at id=all></at> @everyone **bold** <@123> 🚀 {}",
            "\"名字\"".repeat(80)
        );
        let events: Vec<Event> = (0..40).map(|_| event(&name)).collect();
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
        let size = msg.to_string().len();
        assert!(size + SIGNATURE_RESERVE <= BODY_MAX, "{size}");
        let raw = msg.to_string();
        for needle in ["@all", "<at", "@everyone", "<@123>"] {
            assert!(!raw.contains(needle), "{needle} passed through");
        }
        for element in msg["card"]["elements"].as_array().unwrap() {
            let markdown = element["content"].as_str().unwrap_or_default();
            assert!(!markdown.contains("**bold**"), "{markdown}");
        }
        assert_eq!(
            msg["card"]["header"]["title"]["content"],
            "🔴 40 CodeArts Build events"
        );
    }

    use crate::notify::outgoing::{TEST_BOARD as BOARD, with_board};

    #[test]
    fn the_board_is_a_second_button_on_one_card_and_a_link_in_a_batch() {
        let ev = event("web");
        let single = render_batch(&[with_board(&ev, Some(BOARD))]);
        let elements = single["card"]["elements"].as_array().unwrap();
        let action = elements.iter().find(|e| e["tag"] == "action").unwrap();
        let buttons = action["actions"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["text"]["content"], "Open in CodeArts");
        assert_eq!(buttons[1]["text"]["content"], "Open on the board");
        assert_eq!(buttons[1]["url"], BOARD);
        let batch = render_batch(&[with_board(&ev, Some(BOARD)), with_board(&ev, Some(BOARD))]);
        let linked = format!("[Open on the board]({BOARD})");
        assert_eq!(batch.to_string().matches(&linked).count(), 2, "{batch}");
        let plain = render_batch(&[with_board(&ev, None)]);
        assert!(!plain.to_string().contains("Open on the board"));
        let long = format!("https://bot.example/?jobs={}", "a".repeat(FACTS.link_max));
        for bad in ["javascript:alert(1)", long.as_str()] {
            assert_eq!(render_batch(&[with_board(&ev, Some(bad))]), plain, "{bad}");
        }
    }
}
