//! DingTalk custom robot: a markdown message, optionally signed; a batch is one message with a
//! section per event.
//!
//! Mirrors <https://open.dingtalk.com/document/robots/custom-robot-access> (summarised in
//! `docs/platforms.md#dingtalk`): `POST .../robot/send?access_token=...`, body
//! `{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {...}}`. With a signing secret
//! (`SEC...`) the URL also carries `timestamp` (milliseconds) and `sign`, the URL-encoded
//! `base64(HMAC-SHA256(key = secret, message = timestamp + "\n" + secret))`. DingTalk answers
//! HTTP 200 to refused messages: success is JSON `errcode == 0`.
//!
//! Only the mapped author of a failed build is mentioned (DingTalk needs both: their mobile in
//! `at.atMobiles` and `@mobile` in the text); `isAtAll` is always false, and untrusted text
//! goes through [`escape::markdown_safe`] so no `@13800000000` or `@all` in it can be read as a
//! mention.

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

/// The most one event's log tail may take of the text, in JSON-escaped bytes.
const LOG_MAX: usize = 6_000;

/// The markdown text's limit, counted as JSON-escaped bytes. DingTalk publishes no figure for
/// markdown; messages of about 20,000 bytes are refused, so this stays well below.
pub const TEXT_MAX: usize = 15_000;
/// The title (what the notification and the chat list show), in characters.
pub const TITLE_MAX: usize = 64;
/// The most events one message carries.
pub const MAX_BATCH: usize = 20;

/// DingTalk's facts (see `docs/platforms.md#dingtalk`): about 20 messages per minute per robot,
/// signed in the URL when the channel has a secret, no editing.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "dingtalk",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(20, 60)],
    signing: Signing::SecretInQuery,
    edits_messages: false,
    buttons: false,
    size_limit: Some(SizeLimit {
        applies_to: "markdown text",
        max: TEXT_MAX,
        unit: Unit::JsonBytes,
    }),
    link_max: super::platform::PORTABLE_URL_MAX,
};

/// What DingTalk's result codes mean.
const ANSWERS: CodedAnswers = CodedAnswers {
    platform: "DingTalk",
    keys: &["errcode"],
    // 130101 / 410100: sending too fast (20 per minute per robot; the robot is then throttled
    // for up to 10 minutes).
    throttled: &[130101, 410100],
    throttle_wait: Duration::from_secs(60),
    // 300001 / 300005 / 400101 token invalid or unknown, 310000 keyword, signature or IP check
    // failed, 400102 robot disabled.
    permanent: &[300001, 300005, 310000, 400101, 400102],
};

/// DingTalk markdown, counted as JSON-escaped bytes.
const MARKDOWN: Markup = Markup {
    escape: escape::markdown_safe,
    width: fit::json_width,
    newline: "\n",
};

/// Between two events of a batch.
const SEPARATOR: &str = "\n\n";

/// How the log tail is written: its lines quoted under a bold heading set apart by a blank
/// line (DingTalk markdown has no code block); a blank line after it ends the quote.
const LOG: BlockStyle = BlockStyle {
    heading: |h| format!("\n**{h}**"),
    open: "",
    close: "\n",
    line_prefix: "> ",
    escape: escape::markdown_safe,
    width: fit::json_width,
};

type HmacSha256 = Hmac<Sha256>;

/// A DingTalk group reached through a custom robot's URL (its `access_token` is the
/// credential), optionally signed.
pub struct DingtalkSink {
    url: Secret,
    secret: Option<Secret>,
    http: reqwest::Client,
}

impl std::fmt::Debug for DingtalkSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DingtalkSink")
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl DingtalkSink {
    /// `secret` (the robot's `SEC...` signing secret), when set and not empty, signs every
    /// request.
    pub fn new(url: Secret, secret: Option<Secret>, http: reqwest::Client) -> Self {
        let secret = secret.filter(|s| !s.is_empty());
        Self { url, secret, http }
    }
}

impl Platform for DingtalkSink {
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

    /// Posts the events as one markdown message, signed when the robot has a secret; `Ok` once
    /// DingTalk answered `errcode == 0`.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        let mut url = http::parse_url(&self.url)?;
        if let Some(secret) = &self.secret {
            url = signed_url(url, secret.expose(), chrono::Utc::now().timestamp_millis());
        }
        let body = http::encode(&render_batch(batch))?;
        let answer = http::post(&self.http, url, &self.url, body, Default::default()).await?;
        ANSWERS.classify(&answer).map_err(|e| e.scrubbed(&self.url))
    }
}

/// DingTalk's signature (before URL-encoding):
/// `base64(HMAC-SHA256(key = secret, message = "{timestamp_ms}\n{secret}"))`.
pub fn sign(secret: &str, timestamp_ms: i64) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The robot URL with `timestamp` and `sign` appended (form-encoded, as DingTalk's samples
/// do with `quote_plus`), replacing any the configured URL already had.
pub fn signed_url(mut url: reqwest::Url, secret: &str, timestamp_ms: i64) -> reqwest::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "timestamp" && k != "sign")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(secret, timestamp_ms));
    url
}

/// The body for one or more events: a markdown message whose title names the event (or
/// counts them), a heading and a list of facts per event (the context's first), the log tail
/// quoted, the link as a markdown link; `at` lists the mobiles of the people mentioned, and
/// nobody else. Within [`TEXT_MAX`] whatever the job names are.
pub fn render_batch(batch: &[Outgoing<'_>]) -> Value {
    let severity = batch
        .iter()
        .map(|o| o.event.kind.severity())
        .max()
        .unwrap_or(Severity::Info);
    let (title, header) = match batch {
        [only] => (wording::title(only.event), String::new()),
        _ => {
            let count = format!(
                "{} {} CodeArts Build events",
                wording::severity_icon(severity),
                batch.len()
            );
            (count.clone(), format!("### {count}{SEPARATOR}"))
        }
    };
    let closing = |n: usize| format!("{SEPARATOR}{} and {n} more", text::MARKER);
    let budget = TEXT_MAX
        .saturating_sub(MARKDOWN.measure(&header))
        .saturating_sub(MARKDOWN.measure(&closing(batch.len())));
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
    let (contents, left_out) = MARKDOWN.fit_cards(&cards, budget, MARKDOWN.measure(SEPARATOR));
    let mut markdown = header;
    markdown.push_str(&contents.join(SEPARATOR));
    if left_out > 0 {
        markdown.push_str(&closing(left_out));
    }
    json!({
        "msgtype": "markdown",
        "markdown": {
            "title": text::truncate_chars(&escape::plain_safe(&title), TITLE_MAX),
            "text": markdown,
        },
        "at": { "isAtAll": false, "atMobiles": mobiles(batch), "atUserIds": [] },
    })
}

/// The mobiles of the people the batch mentions, each once.
fn mobiles(batch: &[Outgoing<'_>]) -> Vec<String> {
    let mut mobiles: Vec<String> = Vec::new();
    for mobile in batch.iter().filter_map(|o| ctx::dingtalk_mobile(o.mention)) {
        if !mobiles.iter().any(|m| m == mobile) {
            mobiles.push(mobile.to_owned());
        }
    }
    mobiles
}

/// One event: a heading with the title, then its facts, the links (CodeArts, the board) and
/// the delivery id as a list.
fn card_lines(out: &Outgoing<'_>) -> Vec<Line> {
    let event = out.event;
    let mut lines = vec![Line::new(
        format!(
            "#### {} {}: ",
            wording::severity_icon(event.kind.severity()),
            wording::headline(event.kind)
        ),
        event.job_name.clone(),
        "",
        fit::RANK_TITLE,
    )];
    if let Some(mobile) = ctx::dingtalk_mobile(out.mention) {
        // DingTalk notifies only when the number is both in `atMobiles` and written here.
        lines.push(Line::fixed(format!("@{mobile}"), ctx::RANK_MENTION));
    }
    let label = |label: &str| format!("- **{label}:** ");
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
            format!("- [{LINK_LABEL}]({})", escape::markdown_url(&link)),
            fit::RANK_LINK,
        ));
    }
    if let Some(board) = escape::valid_link_within(out.board, FACTS.link_max) {
        lines.push(Line::fixed(
            format!("- [{BOARD_LABEL}]({})", escape::markdown_url(&board)),
            fit::RANK_LINK,
        ));
    }
    lines.push(Line::new(
        "- Delivery ",
        out.delivery_id,
        "",
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
    fn one_event_is_a_heading_and_a_list_mentioning_nobody() {
        let ev = event("web-frontend");
        let msg = render_batch(&[Outgoing {
            delivery_id: "dlv-1",
            event: &ev,
            link: Some("https://console.example/job/(f5af)"),
            context: None,
            mention: None,
            buttons: None,
            board: None,
        }]);
        assert_eq!(msg["msgtype"], "markdown");
        assert_eq!(msg["markdown"]["title"], "🔴 Build failed: web-frontend");
        assert_eq!(
            msg["markdown"]["text"],
            "#### 🔴 Build failed: web-frontend\n\
             - **Changed:** success → failed\n\
             - **Job id:** f5af662119404ad187437cd272b5099b\n\
             - **Health score:** 80 → 70\n\
             - **Last build:** 2024-07-24 03:56:47 UTC\n\
             - **Duration:** 28s\n\
             - [Open in CodeArts](https://console.example/job/%28f5af%29)\n\
             - Delivery dlv-1"
        );
        assert_eq!(
            msg["at"],
            json!({"isAtAll": false, "atMobiles": [], "atUserIds": []})
        );
    }

    use crate::notify::context_text::tests::{alice, failed_context};

    #[test]
    fn the_context_is_listed_the_tail_quoted_and_the_author_at_mentioned() {
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
        let msg = render_batch(&[out(&ev)]);
        assert_eq!(
            msg["at"],
            json!({"isAtAll": false, "atMobiles": ["13800000000"], "atUserIds": []})
        );
        let text = msg["markdown"]["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                "#### 🔴 Build failed: web-frontend\n\
                 @13800000000\n\
                 - **Failed stage:** compile (1 m 12 s)\n\
                 - **Branch:** main\n\
                 - **Commit:** [a1b2c3d4](https://code.example/repo/commit/a1b2c3d4) Fix the login page\n\
                 - **Triggered by:** alice (Manual)\n\
                 - **Tests:** 120 tests, 3 failed, 1 error\n\
                 - **Error:** compile failed: exit code 101\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n\n**Log (last "), "{text}");
        assert!(
            text.ends_with("> LAST LINE: build failed\n\n- Delivery dlv-1"),
            "{text}"
        );
        // Only our own mention: the log's text cannot mention anyone.
        assert_eq!(text.matches('@').count(), 1, "{text}");
        let size = MARKDOWN.measure(text);
        assert!(size <= TEXT_MAX && size > 5_000, "{size}");
        // A batch: each mobile once, the text within the limit.
        let events: Vec<Event> = (0..20).map(|_| event("web")).collect();
        let batch: Vec<Outgoing<'_>> = events.iter().map(out).collect();
        let msg = render_batch(&batch);
        assert_eq!(msg["at"]["atMobiles"], json!(["13800000000"]));
        assert!(MARKDOWN.measure(msg["markdown"]["text"].as_str().unwrap()) <= TEXT_MAX);
    }

    #[test]
    fn the_signature_matches_the_documented_algorithm_and_is_form_encoded() {
        let mut mac = HmacSha256::new_from_slice(b"SECdemo").unwrap();
        mac.update(b"1599360473000\nSECdemo");
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(sign("SECdemo", 1_599_360_473_000), expected);

        let url = reqwest::Url::parse(
            "https://oapi.dingtalk.com/robot/send?access_token=T0K&timestamp=1&sign=old",
        )
        .unwrap();
        let signed = signed_url(url, "SECdemo", 1_599_360_473_000);
        let pairs: Vec<(String, String)> = signed.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("access_token".to_owned(), "T0K".to_owned()),
                ("timestamp".to_owned(), "1599360473000".to_owned()),
                ("sign".to_owned(), expected.clone()),
            ]
        );
        // The raw query never carries base64's `+`, `/` or `=` unencoded.
        let raw_sign = signed.query().unwrap().rsplit("sign=").next().unwrap();
        assert!(!raw_sign.contains(['+', '/', '=']), "{raw_sign}");
    }

    #[test]
    fn a_batch_of_hostile_names_stays_within_the_limit_and_mentions_nobody() {
        let name = format!(
            "@all @13800000000 @everyone **bold** <@123> 🚀 {}",
            "名字".repeat(140)
        );
        let events: Vec<Event> = (0..60).map(|_| event(&name)).collect();
        let batch: Vec<Outgoing<'_>> = events
            .iter()
            .map(|event| Outgoing {
                delivery_id: "d",
                event,
                link: None,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            })
            .collect();
        let msg = render_batch(&batch);
        let text = msg["markdown"]["text"].as_str().unwrap();
        assert!(
            MARKDOWN.measure(text) <= TEXT_MAX,
            "{}",
            MARKDOWN.measure(text)
        );
        assert!(text.starts_with("### 🔴 60 CodeArts Build events\n\n#### 🔴 Build failed: "));
        let raw = msg.to_string();
        for needle in ["@all", "@13800000000", "@everyone", "<@123>"] {
            assert!(!raw.contains(needle), "{needle} passed through");
        }
        assert!(!text.contains("**bold**"), "{text}");
        assert!(msg["markdown"]["title"].as_str().unwrap().chars().count() <= TITLE_MAX);
    }

    use crate::notify::outgoing::{TEST_BOARD as BOARD, with_board};

    #[test]
    fn the_board_is_a_markdown_link_after_the_codearts_one_when_there_is_one() {
        let ev = event("web");
        let text = |board| {
            let msg = render_batch(&[with_board(&ev, board)]);
            msg["markdown"]["text"].as_str().unwrap().to_owned()
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
