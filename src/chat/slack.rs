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
use super::reply::{JobCard, Line, Reply, list_text, sparkline};
use super::signed::Rejected;
use super::signed::{fresh_headers, read_body, unauthorized};
use crate::notify::escape::slack_safe;
use crate::util::secret::Secret;
use crate::util::text::{printable, truncate_chars};

/// Largest request accepted (real ones are well under 4 KB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Furthest a request's timestamp may be from now.
pub const MAX_SKEW_SECS: i64 = 300;

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
    if let Some(link) = crate::notify::escape::valid_link(card.link.as_deref()) {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button",
            "text": {"type": "plain_text", "text": "Open in CodeArts"}, "url": link}]}));
    }
    json!({
        "response_type": "in_channel",
        "text": format!("{}: {}", slack_safe(info.display_name()), slack_safe(status)),
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

    /// The usage text derived from the table is the one Slack users were shown before it.
    #[test]
    fn usage_is_unchanged() {
        assert_eq!(
            usage(),
            "Usage: `/codearts job <id>`, `/codearts watch <id> [channel]`, \
             `/codearts unwatch <id>`, `/codearts watches`, `/codearts history <id> [n]`, \
             `/codearts mute <id|project|all> <30m|2h|1d> [reason]`, `/codearts unmute <id|project|all>`, \
             `/codearts ack <id>`."
        );
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
