//! Slack slash commands at `POST /slack/commands`.
//!
//! Each request is verified first: `X-Slack-Signature` must be `v0=` + hex(HMAC-SHA256(signing
//! secret, `v0:{timestamp}:{raw body}`)), compared in constant time, and
//! `X-Slack-Request-Timestamp` within 300 s of now; anything else gets 401.
//!
//! Commands: register `/codearts` and use it with subcommands (`/codearts job <id>`), or
//! register any command of the table ([`super::commands::COMMANDS`]) as its own slash command
//! pointing at the same URL (`/job <id>`): both forms are understood, options are positional
//! words in the table's order, and the usage text is derived from the table.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tracing::warn;

use super::commands::{self, COMMANDS, Command};
use super::handler::Chat;
use super::invoker::Invoker;
use super::late::{answer_later, deadline, follow_up_client};
use super::reply::{JobCard, Line, LogExcerpt, Reply, commit_link, list_text, sparkline};
use super::signed::Rejected;
use super::signed::{fresh_headers, read_body, unauthorized};
use super::tail;
use crate::domain::context::Context;
use crate::notify::escape::slack_safe;
use crate::util::secret::Secret;
use crate::util::text::{printable, truncate_chars, utf16_len};

/// Largest request accepted (real ones are well under 4 KB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Furthest a request's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 300;
/// Most characters of a section block's text.
pub const MAX_SECTION: usize = 3000;

/// Checks Slack's request signature (constant-time) and the timestamp's freshness.
pub fn verify(
    signing_secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<(), Rejected> {
    let (signature, timestamp) = fresh_headers(
        headers,
        "x-slack-signature",
        "x-slack-request-timestamp",
        now_secs,
        MAX_SKEW_SECS,
    )?;
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Rejected::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_secret).map_err(|_| Rejected::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| Rejected::BadSignature)
}

/// The form fields the bot reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlashCommand {
    #[serde(default)]
    pub team_id: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub user_id: String,
    /// The user's name (Slack still sends it, deprecated in favour of the id).
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub response_url: String,
}

/// What an unknown or empty command is answered: every command of the table, e.g.
/// "Usage: `/codearts job <id>`, `/codearts watches`, …".
pub(crate) fn usage() -> String {
    let commands: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("`/codearts {}`", c.usage()))
        .collect();
    format!("Usage: {}.", commands.join(", "))
}

impl SlashCommand {
    pub fn invoker(&self) -> Invoker {
        Invoker {
            transport: "slack",
            user: self.user_id.clone(),
            name: Some(self.user_name.clone()).filter(|n| !n.is_empty()),
            space: Some(self.team_id.clone()).filter(|t| !t.is_empty()),
            channel: Some(self.channel_id.clone()).filter(|c| !c.is_empty()),
            roles: Vec::new(),
        }
    }

    /// `/job <id>` or `/codearts job <id>` (any command name not in the table takes a
    /// subcommand); the options are the words after the name, in the table's order.
    pub fn parse(&self) -> Option<Command> {
        let mut words: Vec<&str> = self.text.split_whitespace().collect();
        let direct = commands::spec(self.command.trim_start_matches('/'));
        let spec = match direct {
            Some(spec) => spec,
            None if words.is_empty() => return None,
            None => commands::spec(&words.remove(0).to_lowercase())?,
        };
        Some((spec.parse)(&|option| spec.positional(&words, option)))
    }
}

/// The allow-lists of `[slack]`: `Some(why)` when the invoker may not run the command.
pub fn refused_because(chat: &Chat, who: &Invoker, command: &Command) -> Option<String> {
    let s = &chat.ctx.config.slack;
    if let Some(why) = who.refused_place(&s.teams, &s.channels, "workspace") {
        return Some(why);
    }
    if command.acts() {
        let allowed = if s.actions_users.is_empty() {
            &s.manage_users
        } else {
            &s.actions_users
        };
        if allowed.is_empty() {
            return Some(format!(
                "{} acts on CodeArts and is off on this bot: its operator must list who may use it (slack.actions_users or slack.manage_users).",
                command.name()
            ));
        }
        if !allowed.contains(&who.user) {
            return Some(format!(
                "{} acts on CodeArts: it is limited to the bot's actions users.",
                command.name()
            ));
        }
    }
    if command.mutates() && !s.manage_users.is_empty() && !s.manage_users.contains(&who.user) {
        return Some(format!(
            "Changing what the bot watches or sends ({}) is limited to the bot's managers.",
            command.name()
        ));
    }
    None
}

/// A reply as a slash-command answer: Block Kit, in the channel, errors ephemeral.
pub fn render(reply: &Reply) -> Value {
    match reply {
        Reply::Card(card) => card_message(card),
        Reply::List { title, lines, more } => list_message(title, lines, *more),
        Reply::Log(log) => log_message(log),
        Reply::Done(text) => json!({"response_type": "in_channel", "text": slack_safe(text)}),
        Reply::Error(text) => json!({"response_type": "ephemeral", "text": slack_safe(text)}),
    }
}

fn slack_time(at: chrono::DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        at.timestamp(),
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

fn card_message(card: &JobCard) -> Value {
    let info = &card.info;
    let name = truncate_chars(&printable(info.display_name()), 150);
    let status = info.last_build_status.as_deref().unwrap_or("unknown");
    let mut fields =
        vec![json!({"type": "mrkdwn", "text": format!("*Status*\n{}", slack_safe(status))})];
    if let Some(at) = info
        .last_build_time
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Last build*\n{}", slack_time(at))}));
    }
    if let Some(text) = info
        .build_seconds()
        .and_then(crate::util::text::format_duration)
    {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Duration*\n{text}")}));
    }
    if let Some(score) = info.health_score {
        let trend = if card.trend.len() > 1 {
            format!(" {}", sparkline(&card.trend))
        } else {
            String::new()
        };
        fields.push(json!({"type": "mrkdwn", "text": format!("*Health*\n{score}{trend}")}));
    }
    fields.push(json!({"type": "mrkdwn", "text": format!("*Disabled*\n{}", if info.disabled == Some(true) { "yes" } else { "no" })}));
    fields.push(json!({"type": "mrkdwn", "text": format!("*Job id*\n`{}`", card.id)}));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": name, "emoji": true}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text":
            if card.watched { "watched by this bot" } else { "not watched: `/codearts watch <id>` to get alerts" }}]}),
    ];
    if let Some(context) = &card.context {
        blocks.extend(context_blocks(context));
    }
    if let Some(actions) = crate::notify::buttons::slack_actions(
        card.buttons.as_ref(),
        card.link.as_deref(),
        card.board.as_deref(),
    ) {
        blocks.push(actions);
    } else if let Some(link) = crate::notify::escape::valid_link(card.link.as_deref()) {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button",
            "text": {"type": "plain_text", "text": "Open in CodeArts"}, "url": link}]}));
    }
    json!({
        "response_type": "in_channel",
        "text": format!("{}: {}", slack_safe(info.display_name()), slack_safe(status)),
        "blocks": blocks,
    })
}

/// The failure context as blocks: a section with the failed stage, branch, commit (linked
/// when CodeArts gave its page), who triggered the build and the tests; the error; the log's
/// tail in a code block. Absent parts are left out.
fn context_blocks(context: &Context) -> Vec<Value> {
    let safe = |text: &str, max: usize| slack_safe(&truncate_chars(text, max));
    let mut fields = Vec::new();
    let mut field = |name: &str, value: String| {
        fields.push(json!({"type": "mrkdwn", "text": format!("*{name}*\n{value}")}));
    };
    if let Some(stage) = context.failed_stage_line() {
        field("Failed stage", safe(&stage, 200));
    }
    if let Some(branch) = context.branch_or_tag() {
        field("Branch", safe(&branch, 200));
    }
    if let Some(commit) = commit_text(context) {
        field("Commit", commit);
    }
    if let Some(who) = context.triggered_line() {
        field("Triggered by", safe(&who, 200));
    }
    if let Some(tests) = context.tests_line() {
        field("Tests", tests);
    }
    let title = match context.build_no {
        Some(n) => format!("*Last failure: build #{n}*"),
        None => "*Last failure*".to_owned(),
    };
    let mut section = json!({"type": "section", "text": {"type": "mrkdwn", "text": title}});
    if !fields.is_empty() {
        section["fields"] = json!(fields);
    }
    let mut blocks = vec![json!({"type": "divider"}), section];
    if let Some(error) = &context.error {
        blocks.push(mrkdwn_section(format!("*Error*\n{}", safe(error, 1500))));
    }
    if !context.log_tail.is_empty() {
        blocks.extend(log_blocks(&context.log_tail, context.build_no, ""));
    }
    blocks
}

/// "<link|`a1b2c3d4`> Fix the login page": the short commit linked to its page when there is
/// one, then the message's first line.
fn commit_text(context: &Context) -> Option<String> {
    let short = context.short_commit()?;
    let id = format!("`{}`", slack_safe(short));
    let id = match commit_link(context) {
        Some(url) => format!("<{}|{id}>", slack_url(&url)),
        None => id,
    };
    Some(match &context.commit_message {
        Some(message) => format!("{id} {}", slack_safe(&truncate_chars(message, 200))),
        None => id,
    })
}

/// A link target inside `<url|text>`: the characters that would end it, or that Slack reads
/// as an entity, encoded.
fn slack_url(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

fn mrkdwn_section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&text, MAX_SECTION)}})
}

/// Lines of a log as a headline (then `about`, e.g. " of <job>"), a code block in one section
/// of at most [`MAX_SECTION`] characters, and a note when they had to be cut.
fn log_blocks(lines: &[String], build_no: Option<u32>, about: &str) -> Vec<Value> {
    let fitted = tail::fit(lines, MAX_SECTION, slack_safe, utf16_len);
    let headline = tail::headline(fitted.lines.len(), build_no);
    let mut blocks = vec![
        mrkdwn_section(format!("*{headline}*{about}")),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": fitted.code_block()}}),
    ];
    if let Some(note) = fitted.cut_note("Slack's 3000 characters per block") {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}));
    }
    blocks
}

/// `/log`'s answer, only to the invoker.
fn log_message(log: &LogExcerpt) -> Value {
    let whose = format!(
        "{} (`{}`)",
        slack_safe(&truncate_chars(&log.job, 100)),
        log.id
    );
    let blocks = if log.lines.is_empty() {
        vec![mrkdwn_section(format!(
            "The log of build #{} of {whose} is empty.",
            log.build_no
        ))]
    } else {
        log_blocks(&log.lines, Some(log.build_no), &format!(" of {whose}"))
    };
    json!({
        "response_type": "ephemeral",
        "text": format!("Log of build #{} of {}", log.build_no, slack_safe(&truncate_chars(&log.job, 150))),
        "blocks": blocks,
    })
}

fn list_message(title: &str, lines: &[Line], more: usize) -> Value {
    let text = list_text(lines, more, 2_900, slack_time, slack_safe);
    json!({
        "response_type": "in_channel",
        "text": slack_safe(title),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate_chars(&printable(title), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        ],
    })
}

/// `POST /slack/commands`, when `[slack] signing_secret` is set.
pub fn routes(chat: Chat, signing_secret: Secret) -> Router {
    let follow_ups = follow_up_client();
    Router::new()
        .route("/slack/commands", post(commands))
        .with_state(Endpoint {
            chat,
            signing_secret,
            follow_ups,
        })
}

#[derive(Clone)]
struct Endpoint {
    chat: Chat,
    signing_secret: Secret,
    follow_ups: reqwest::Client,
}

async fn commands(State(endpoint): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let body = match read_body(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(why) => return unauthorized("slack", why),
    };
    if let Err(why) = verify(
        endpoint.signing_secret.expose().as_bytes(),
        &headers,
        &body,
        Utc::now().timestamp(),
    ) {
        return unauthorized("slack", why);
    }
    let form: SlashCommand = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "a signed Slack request is not a slash command form");
            return (StatusCode::BAD_REQUEST, "not a slash command").into_response();
        }
    };
    let Some(command) = form.parse() else {
        return Json(render(&Reply::Error(usage()))).into_response();
    };
    let who = form.invoker();
    let chat = endpoint.chat.clone();
    if let Some(refusal) = chat.refusal(&who, &command, refused_because(&chat, &who, &command)) {
        return Json(render(&refusal)).into_response();
    }
    let task = tokio::spawn(async move { chat.handle(&who, &command).await });
    let task = match deadline(task).await {
        Ok(reply) => return Json(render(&reply)).into_response(),
        Err(task) => task,
    };
    // Slow: acknowledge now, answer through response_url when the command is done.
    if !form.response_url.is_empty() {
        let client = endpoint.follow_ups.clone();
        let response_url = form.response_url.clone();
        answer_later(task, "slack", move |reply| {
            client.post(response_url).json(&render(reply))
        });
    }
    Json(json!({"response_type": "ephemeral", "text": "Asking CodeArts…"})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slacks_published_signing_example_verifies() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
                .parse()
                .unwrap(),
        );
        headers.insert("x-slack-request-timestamp", "1531420618".parse().unwrap());
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        assert_eq!(
            verify(secret, &headers, body.as_bytes(), 1_531_420_618),
            Ok(())
        );
        let mut tampered = body.as_bytes().to_vec();
        tampered[6] = b'X';
        assert_eq!(
            verify(secret, &headers, &tampered, 1_531_420_618),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(secret, &headers, body.as_bytes(), 1_531_420_618 + 301),
            Err(Rejected::Stale)
        );
        let form: SlashCommand = serde_urlencoded::from_str(body).unwrap();
        assert_eq!(form.team_id, "T1DC2JH3J");
        assert_eq!(
            form.parse(),
            None,
            "an empty /webhook-collect is not one of ours"
        );
    }

    #[test]
    fn both_command_styles_parse() {
        let form = |command: &str, text: &str| SlashCommand {
            command: command.into(),
            text: text.into(),
            ..SlashCommand::default()
        };
        assert_eq!(
            form("/job", " abc ").parse(),
            Some(Command::Job { id: "abc".into() })
        );
        assert_eq!(
            form("/codearts", "watch abc team").parse(),
            Some(Command::Watch {
                id: "abc".into(),
                channel: Some("team".into())
            })
        );
        assert_eq!(
            form("/codearts", "history abc 3").parse(),
            Some(Command::History {
                id: "abc".into(),
                n: Some(3)
            })
        );
        assert_eq!(form("/codearts", "").parse(), None);
        assert_eq!(form("/codearts", "deploy x").parse(), None);
    }

    /// The usage text derived from the table is the one Slack users were shown before it, plus
    /// `/log`, `/rerun`, `/stop` and `/digest`.
    #[test]
    fn usage_is_unchanged() {
        assert_eq!(
            usage(),
            "Usage: `/codearts job <id>`, `/codearts watch <id> [channel]`, \
             `/codearts unwatch <id>`, `/codearts watches`, `/codearts history <id> [n]`, \
             `/codearts log <id> [lines]`, `/codearts mute <id|project|all> <30m|2h|1d> [reason]`, `/codearts unmute <id|project|all>`, \
             `/codearts ack <id>`, `/codearts rerun <id> [latest]`, `/codearts stop <id>`, \
             `/codearts digest [channel]`."
        );
    }

    fn section_texts(message: &Value) -> Vec<String> {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_failing_card_shows_its_context_and_log() {
        let mut card = crate::chat::reply::failing_card(
            (0..50)
                .map(|i| format!("{i} {}", "<".repeat(200)))
                .collect(),
        );
        if let Some(context) = card.context.as_mut() {
            context.commit_message = None;
            context.commit_url = Some("https://code.example/c?a=1&b=2".into());
            context.error = Some("exit 1 <!channel>".into());
        }
        let message = render(&Reply::Card(Box::new(card)));
        let blocks = message["blocks"].to_string();
        for part in [
            "Last failure: build #7",
            "Failed stage",
            "compile",
            "main",
            "alice",
        ] {
            assert!(blocks.contains(part), "{part}: {blocks}");
        }
        assert!(
            blocks.contains("<https://code.example/c?a=1&amp;b=2|`01234567`>"),
            "{blocks}"
        );
        assert!(!blocks.contains("<!channel>"), "{blocks}");
        let texts = section_texts(&message);
        assert!(texts.iter().all(|t| t.chars().count() <= MAX_SECTION));
        let code = texts.iter().find(|t| t.starts_with("```")).unwrap();
        assert!(
            code.contains("49 &lt;") && !code.contains("\n0 &lt;"),
            "{code}"
        );
        assert!(blocks.contains("Cut to fit Slack"), "{blocks}");
    }

    #[test]
    fn a_log_is_ephemeral() {
        let message = render(&Reply::Log(Box::new(LogExcerpt {
            id: crate::codearts::JobId::parse(&"b".repeat(32)).unwrap(),
            job: "api".into(),
            build_no: 3,
            lines: vec!["one".into(), "a*b".into()],
        })));
        assert_eq!(message["response_type"], "ephemeral");
        let texts = section_texts(&message);
        assert!(
            texts[0].starts_with("*Last 2 lines of build #3* of api"),
            "{texts:?}"
        );
        assert_eq!(texts[1], "```\none\na\u{200B}*b\n```");
    }

    #[test]
    fn a_mute_reason_takes_the_remaining_words() {
        let form = SlashCommand {
            command: "/mute".into(),
            text: "all 2h deploy window".into(),
            ..SlashCommand::default()
        };
        assert_eq!(
            form.parse(),
            Some(Command::Mute {
                target: "all".into(),
                duration: "2h".into(),
                reason: Some("deploy window".into())
            })
        );
    }
}
