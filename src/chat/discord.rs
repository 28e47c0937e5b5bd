//! Discord: the HTTP interactions endpoint (`POST /discord/interactions`), the rendering of
//! replies as interaction responses, and the slash command definitions derived from the command
//! table ([`super::commands::COMMANDS`]), all shared with the gateway ([`super::gateway`]).
//!
//! Every request is verified before anything else is read: Ed25519 over the bytes of
//! `X-Signature-Timestamp` followed by the raw body, with the application's public key. Bad or
//! missing signatures, timestamps more than five minutes away and oversized bodies get 401
//! (Discord sends deliberately bad signatures and removes endpoints that accept them).

use axum::http::HeaderMap;
use chrono::{TimeZone, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};

use super::commands::spec::{Kind, Opt};
use super::commands::{COMMANDS, Command};
use super::handler::Chat;
use super::invoker::Invoker;
use super::reply::{JobCard, Line, LogExcerpt, Reply, commit_link, list_text, sparkline};
use super::signed::Rejected;
use super::signed::fresh_headers;
use super::tail;
use crate::domain::context::Context;
use crate::notify::escape::{discord_safe, markdown_url};
use crate::util::redact::neutralize;
use crate::util::text::{printable, truncate_chars, truncate_utf16, utf16_len};

/// Largest interaction body accepted (real ones are a few KB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Oldest (or furthest in the future) timestamp accepted.
pub const MAX_SKEW_SECS: i64 = 300;
/// Interaction response flag: only the invoker sees the message.
pub const EPHEMERAL: u64 = 64;
/// Discord's limits, in UTF-16 units: a message's content, an embed's description, all the
/// text of one embed, a field's value.
pub const MAX_CONTENT: usize = 2000;
const MAX_DESCRIPTION: usize = 4096;
const MAX_EMBED: usize = 6000;
const MAX_FIELD: usize = 1024;
/// Room kept for the note under a code block that says it was cut.
const NOTE_ROOM: usize = 160;

/// Checks a request's signature and freshness.
pub fn verify(
    key: &VerifyingKey,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<(), Rejected> {
    let (signature, timestamp) = fresh_headers(
        headers,
        "x-signature-ed25519",
        "x-signature-timestamp",
        now_secs,
        MAX_SKEW_SECS,
    )?;
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Rejected::BadSignature)?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.verify_strict(&message, &Signature::from_bytes(&signature))
        .map_err(|_| Rejected::BadSignature)
}

/// The parts of an interaction the bot reads (the same for both transports).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Interaction {
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub application_id: String,
    #[serde(default)]
    pub token: String,
    pub guild_id: Option<String>,
    pub channel_id: Option<String>,
    pub channel: Option<IdOnly>,
    pub member: Option<Member>,
    pub user: Option<IdOnly>,
    pub data: Option<Data>,
    /// A component interaction's message: the card whose button was clicked.
    #[serde(default)]
    pub message: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdOnly {
    pub id: String,
    /// A user's name (absent for channels).
    #[serde(default)]
    pub username: Option<String>,
    /// A user's display name, when set.
    #[serde(default)]
    pub global_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Member {
    pub user: Option<IdOnly>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Data {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub options: Vec<CommandOption>,
    /// A component interaction's button id (`cb1:<id>`).
    #[serde(default)]
    pub custom_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommandOption {
    pub name: String,
    pub value: Option<Value>,
    #[serde(default)]
    pub focused: bool,
}

impl Interaction {
    pub fn invoker(&self) -> Invoker {
        let person = self
            .member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref());
        let user = person.map(|u| u.id.clone()).unwrap_or_default();
        let name = person.and_then(|u| u.global_name.clone().or_else(|| u.username.clone()));
        Invoker {
            transport: "discord",
            user,
            name,
            space: self.guild_id.clone(),
            channel: self
                .channel_id
                .clone()
                .or_else(|| self.channel.as_ref().map(|c| c.id.clone())),
            roles: self
                .member
                .as_ref()
                .map(|m| m.roles.clone())
                .unwrap_or_default(),
        }
    }

    fn option(&self, name: &str) -> Option<String> {
        let value = self
            .data
            .as_ref()?
            .options
            .iter()
            .find(|o| o.name == name)?
            .value
            .as_ref()?;
        Some(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    pub fn command(&self) -> Option<Command> {
        let name = self.data.as_ref()?.name.clone();
        Command::from_parts(&name, |o| self.option(o))
    }

    /// What the user has typed in the focused option (autocomplete).
    pub fn focused(&self) -> String {
        self.data
            .as_ref()
            .and_then(|d| d.options.iter().find(|o| o.focused))
            .and_then(|o| o.value.as_ref())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// The allow-lists of `[discord]`: `Some(why)` when the invoker may not run the command.
pub fn refused_because(chat: &Chat, who: &Invoker, command: &Command) -> Option<String> {
    let d = &chat.ctx.config.discord;
    if let Some(why) = who.refused_place(&d.guilds, &d.channels, "server") {
        return Some(why);
    }
    let has_role = |roles: &[String]| who.roles.iter().any(|r| roles.contains(r));
    if !d.roles.is_empty() && !has_role(&d.roles) {
        return Some("You need one of the bot's allowed roles to use its commands.".to_owned());
    }
    if command.acts() {
        let allowed = if d.actions_roles.is_empty() {
            &d.manage_roles
        } else {
            &d.actions_roles
        };
        if allowed.is_empty() {
            return Some(format!(
                "/{} acts on CodeArts and is off on this bot: its operator must list who may use it (discord.actions_roles or discord.manage_roles).",
                command.name()
            ));
        }
        if !has_role(allowed) {
            return Some(format!(
                "/{} acts on CodeArts: it needs one of the bot's actions roles.",
                command.name()
            ));
        }
    }
    if command.mutates() && !d.manage_roles.is_empty() && !has_role(&d.manage_roles) {
        return Some(format!(
            "Changing what the bot watches or sends (/{}) needs one of the bot's manage roles.",
            command.name()
        ));
    }
    None
}

/// Runs an application command (allow-lists first) and returns its reply.
pub async fn answer(chat: &Chat, interaction: &Interaction) -> Reply {
    let who = interaction.invoker();
    let Some(command) = interaction.command() else {
        return Reply::Error("This bot does not know that command.".to_owned());
    };
    if let Some(refusal) = chat.refusal(&who, &command, refused_because(chat, &who, &command)) {
        return refusal;
    }
    chat.handle(&who, &command).await
}

/// The autocomplete answer (callback type 8) for the `id` option.
pub async fn autocomplete(chat: &Chat, interaction: &Interaction) -> Value {
    let who = interaction.invoker();
    let d = &chat.ctx.config.discord;
    let allowed = (d.guilds.is_empty() || who.space.as_ref().is_some_and(|g| d.guilds.contains(g)))
        && (d.roles.is_empty() || who.roles.iter().any(|r| d.roles.contains(r)));
    let choices: Vec<Value> = if allowed {
        chat.suggestions(&interaction.focused())
            .await
            .into_iter()
            .map(|(name, value)| json!({"name": truncate_utf16(&printable(&name), 100), "value": value}))
            .collect()
    } else {
        Vec::new()
    };
    json!({"type": 8, "data": {"choices": choices}})
}

/// A reply as interaction callback data: embeds for cards and lists, content for the rest,
/// ephemeral for errors and logs, never a mention.
pub fn render(reply: &Reply) -> Value {
    let mut data = match reply {
        Reply::Card(card) => {
            let mut data = json!({"embeds": [card_embed(card)]});
            if let Some(rows) = crate::notify::buttons::discord_components(
                card.buttons.as_ref(),
                card.link.as_deref(),
                card.board.as_deref(),
            ) {
                data["components"] = rows;
            }
            data
        }
        Reply::List { title, lines, more } => json!({"embeds": [list_embed(title, lines, *more)]}),
        Reply::Log(log) => json!({"content": log_content(log)}),
        Reply::Done(text) | Reply::Error(text) => {
            json!({"content": truncate_utf16(&discord_safe(text), MAX_CONTENT)})
        }
    };
    if reply.ephemeral() {
        data["flags"] = json!(EPHEMERAL);
    }
    data["allowed_mentions"] = json!({"parse": []});
    data
}

/// The deferral (callback type 5) of a command that is slow to answer: ephemeral already for a
/// command that answers only its invoker, since the edit that follows cannot make it so.
pub fn deferral(interaction: &Interaction) -> Value {
    if interaction.command().is_some_and(|c| c.private()) {
        json!({"type": 5, "data": {"flags": EPHEMERAL}})
    } else {
        json!({"type": 5})
    }
}

/// The status colour of a card.
pub fn status_colour(status: Option<&str>) -> u32 {
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("success" | "succeed" | "blue" | "finished") => 0x2e_cc_71,
        Some("failed" | "fail" | "red" | "error" | "timeout") => 0xe7_4c_3c,
        Some("running" | "building" | "queued" | "pending" | "waiting") => 0x34_98_db,
        _ => 0x95_a5_a6,
    }
}

fn card_embed(card: &JobCard) -> Value {
    let info = &card.info;
    let status = info.last_build_status.as_deref();
    let mut fields = vec![json!({
        "name": "Status",
        "value": truncate_utf16(&discord_safe(status.unwrap_or("unknown")), 1024),
        "inline": true,
    })];
    if let Some(at) = info
        .last_build_time
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    {
        fields.push(json!({"name": "Last build", "value": format!("<t:{}:R>", at.timestamp()), "inline": true}));
    }
    if let Some(text) = info
        .build_seconds()
        .and_then(crate::util::text::format_duration)
    {
        fields.push(json!({"name": "Duration", "value": text, "inline": true}));
    }
    if let Some(score) = info.health_score {
        let trend = if card.trend.len() > 1 {
            format!(" {}", sparkline(&card.trend))
        } else {
            String::new()
        };
        fields.push(json!({"name": "Health", "value": format!("{score}{trend}"), "inline": true}));
    }
    fields.push(json!({
        "name": "Disabled",
        "value": if info.disabled == Some(true) { "yes" } else { "no" },
        "inline": true,
    }));
    if let Some(context) = &card.context {
        fields.extend(context_fields(context));
    }
    fields.push(json!({"name": "Job id", "value": format!("`{}`", card.id), "inline": false}));
    let mut embed = json!({
        "title": truncate_utf16(&printable(info.display_name()), 256),
        "color": status_colour(status),
        "fields": fields,
        "footer": {"text": if card.watched { "watched by this bot" } else { "not watched: /watch to get alerts" }},
    });
    if let Some(link) = crate::notify::escape::valid_link(card.link.as_deref()) {
        embed["url"] = json!(link);
    }
    if let Some(context) = card.context.as_ref().filter(|c| !c.log_tail.is_empty()) {
        // The log goes last, in whatever room the rest of the embed left.
        let room = MAX_EMBED.saturating_sub(embed_len(&embed) + NOTE_ROOM);
        let budget = room.min(MAX_DESCRIPTION - NOTE_ROOM);
        embed["description"] = json!(log_block(&context.log_tail, context.build_no, "", budget));
    }
    embed
}

/// The failure context as embed fields: failed stage, error, branch, commit (linked when
/// CodeArts gave its page), who triggered the build, tests. Absent parts are left out.
fn context_fields(context: &Context) -> Vec<Value> {
    let field = |name: String, value: String, inline: bool| json!({"name": name, "value": truncate_utf16(&value, MAX_FIELD), "inline": inline});
    let safe = |text: &str, max: usize| discord_safe(&truncate_chars(text, max));
    let mut fields = Vec::new();
    if let Some(stage) = context.failed_stage_line() {
        let name = match context.build_no {
            Some(n) => format!("Failed stage (build #{n})"),
            None => "Failed stage".to_owned(),
        };
        fields.push(field(name, safe(&stage, 200), true));
    }
    if let Some(branch) = context.branch_or_tag() {
        fields.push(field("Branch".to_owned(), safe(&branch, 200), true));
    }
    if let Some(commit) = commit_text(context) {
        fields.push(field("Commit".to_owned(), commit, true));
    }
    if let Some(who) = context.triggered_line() {
        fields.push(field("Triggered by".to_owned(), safe(&who, 200), true));
    }
    if let Some(tests) = context.tests_line() {
        fields.push(field("Tests".to_owned(), tests, true));
    }
    if let Some(error) = &context.error {
        fields.push(field("Error".to_owned(), safe(error, 900), false));
    }
    fields
}

/// "[a1b2c3d4](link) Fix the login page": the short commit linked to its page when there is
/// one, then the message's first line.
fn commit_text(context: &Context) -> Option<String> {
    let short = context.short_commit()?;
    let link = commit_link(context);
    let id = match link {
        Some(url) => format!("[`{short}`]({})", markdown_url(&url)),
        None => format!("`{}`", short.replace('`', "'")),
    };
    Some(match &context.commit_message {
        Some(message) => format!("{id} {}", discord_safe(&truncate_chars(message, 200))),
        None => id,
    })
}

/// Lines of a log as a headline (then `about`, e.g. " of <job>") and a code block of at most
/// `budget` UTF-16 units, then a note when they had to be cut.
fn log_block(lines: &[String], build_no: Option<u32>, about: &str, budget: usize) -> String {
    let headline_room = 60;
    let fitted = tail::fit(
        lines,
        budget.saturating_sub(headline_room),
        neutralize,
        utf16_len,
    );
    let mut text = format!(
        "**{}**{about}\n{}",
        tail::headline(fitted.lines.len(), build_no),
        fitted.code_block()
    );
    if let Some(note) = fitted.cut_note("Discord's message size") {
        text.push_str(&format!("\n*{note}*"));
    }
    text
}

/// `/log`'s answer as message content (at most [`MAX_CONTENT`]).
fn log_content(log: &LogExcerpt) -> String {
    let whose = format!(
        "{} (`{}`)",
        discord_safe(&truncate_chars(&log.job, 100)),
        log.id
    );
    if log.lines.is_empty() {
        return format!("The log of build #{} of {whose} is empty.", log.build_no);
    }
    let about = format!(" of {whose}");
    let budget = MAX_CONTENT.saturating_sub(utf16_len(&about) + NOTE_ROOM);
    let text = log_block(&log.lines, Some(log.build_no), &about, budget);
    truncate_utf16(&text, MAX_CONTENT)
}

/// The characters of an embed that count against Discord's 6000 (title, description, footer,
/// field names and values).
fn embed_len(embed: &Value) -> usize {
    let text = |v: &Value| v.as_str().map_or(0, utf16_len);
    let fields: usize = embed["fields"].as_array().map_or(0, |f| {
        f.iter().map(|f| text(&f["name"]) + text(&f["value"])).sum()
    });
    text(&embed["title"]) + text(&embed["description"]) + text(&embed["footer"]["text"]) + fields
}

fn list_embed(title: &str, lines: &[Line], more: usize) -> Value {
    let text = list_text(
        lines,
        more,
        3_900,
        |t| format!("<t:{}:R>", t.timestamp()),
        discord_safe,
    );
    json!({
        "title": truncate_utf16(&printable(title), 256),
        "description": truncate_utf16(&text, 4096),
        "color": 0x34_98_db,
    })
}

/// The interaction's original message, for an edit after a deferral.
pub(crate) fn original_url(chat: &Chat, interaction: &Interaction) -> String {
    let base = chat
        .ctx
        .config
        .discord
        .api_base
        .clone()
        .unwrap_or_else(|| "https://discord.com".to_owned());
    format!(
        "{}/api/v10/webhooks/{}/{}/messages/@original",
        base.trim_end_matches('/'),
        interaction.application_id,
        interaction.token
    )
}

/// The slash commands as Discord registers them, from the command table (the `id` options
/// autocomplete).
pub fn command_definitions() -> Value {
    COMMANDS
        .iter()
        .map(|c| {
            let mut definition = json!({"name": c.name, "description": c.description});
            if !c.options.is_empty() {
                definition["options"] = c.options.iter().map(option_definition).collect();
            }
            definition
        })
        .collect()
}

/// One option as Discord registers it: type 3 is a string, 4 an integer.
fn option_definition(o: &Opt) -> Value {
    let kind = match o.kind {
        Kind::Text => 3,
        Kind::Integer => 4,
    };
    let mut option =
        json!({"type": kind, "name": o.name, "description": o.description, "required": o.required});
    if o.autocomplete {
        option["autocomplete"] = json!(true);
    }
    let bounds = [
        ("min_length", o.min_length.map(i64::from)),
        ("max_length", o.max_length.map(i64::from)),
        ("min_value", o.min_value),
        ("max_value", o.max_value),
    ];
    for (key, value) in bounds {
        if let Some(value) = value {
            option[key] = json!(value);
        }
    }
    option
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_discord_public_key;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(key: &SigningKey, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut message = timestamp.as_bytes().to_vec();
        message.extend_from_slice(body);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-signature-ed25519",
            hex::encode(key.sign(&message).to_bytes()).parse().unwrap(),
        );
        headers.insert("x-signature-timestamp", timestamp.parse().unwrap());
        headers
    }

    #[test]
    fn signatures_verify_only_over_the_exact_bytes_and_a_fresh_timestamp() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public =
            parse_discord_public_key(&hex::encode(key.verifying_key().to_bytes())).unwrap();
        let body = br#"{"type":1}"#;
        let now = 1_800_000_000;
        let headers = signed(&key, &now.to_string(), body);
        assert_eq!(verify(&public, &headers, body, now), Ok(()));
        assert_eq!(
            verify(&public, &headers, br#"{"type": 1}"#, now),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            verify(&public, &headers, body, now + 301),
            Err(Rejected::Stale)
        );
        assert_eq!(
            verify(&public, &HeaderMap::new(), body, now),
            Err(Rejected::MissingHeaders)
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            verify(&public, &signed(&other, &now.to_string(), body), body, now),
            Err(Rejected::BadSignature)
        );
    }

    #[test]
    fn a_public_key_must_be_64_hex_digits() {
        assert!(parse_discord_public_key("abcd").is_err());
        assert!(parse_discord_public_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_failing_card_shows_its_context_and_log_within_the_embed_limits() {
        let data = render(&Reply::Card(Box::new(crate::chat::reply::failing_card(
            vec!["ok".into(), "@everyone boom".into()],
        ))));
        let embed = &data["embeds"][0];
        let fields = embed["fields"].to_string();
        for part in [
            "Failed stage (build #7)",
            "compile",
            "main",
            "alice",
            "exit 1",
        ] {
            assert!(fields.contains(part), "{part}: {fields}");
        }
        assert!(
            fields.contains("[`01234567`](https://code.example/c/0123456789abcdef)"),
            "{fields}"
        );
        assert!(!fields.contains("@everyone"), "{fields}");
        let description = embed["description"].as_str().unwrap();
        assert!(description.starts_with("**Last 2 lines of build #7**\n```\nok\n"));
        assert!(!description.contains("@everyone"), "{description}");

        let long: Vec<String> = (0..50)
            .map(|i| format!("{i} {}", "é".repeat(400)))
            .collect();
        let data = render(&Reply::Card(Box::new(crate::chat::reply::failing_card(
            long,
        ))));
        let embed = &data["embeds"][0];
        assert!(embed_len(embed) <= MAX_EMBED, "{}", embed_len(embed));
        let description = embed["description"].as_str().unwrap();
        assert!(utf16_len(description) <= MAX_DESCRIPTION);
        assert!(description.contains("49 éé") && description.contains("Cut to fit"));
        assert!(description.trim_end_matches(|c| c != '`').ends_with("```"));
    }

    #[test]
    fn a_log_is_ephemeral_fits_the_content_limit_and_says_it_was_cut() {
        let log = |lines: Vec<String>| {
            Reply::Log(Box::new(LogExcerpt {
                id: crate::codearts::JobId::parse(&"b".repeat(32)).unwrap(),
                job: "api".into(),
                build_no: 3,
                lines,
            }))
        };
        let data = render(&log(vec!["one".into(), "two".into()]));
        assert_eq!(data["flags"], EPHEMERAL);
        let content = data["content"].as_str().unwrap();
        assert!(
            content.starts_with("**Last 2 lines of build #3** of api (`bbbb"),
            "{content}"
        );
        assert!(content.ends_with("```\none\ntwo\n```"), "{content}");

        let many: Vec<String> = (0..50)
            .map(|i| format!("{i:>2} {}", "x".repeat(90)))
            .collect();
        let data = render(&log(many));
        let content = data["content"].as_str().unwrap();
        assert!(utf16_len(content) <= MAX_CONTENT, "{}", utf16_len(content));
        assert!(content.contains("49 xxx") && !content.contains("\n 0 xxx"));
        assert!(
            content.contains("Cut to fit Discord's message size"),
            "{content}"
        );

        let empty = render(&log(Vec::new()));
        assert!(empty["content"].as_str().unwrap().contains("is empty"));
    }

    #[test]
    fn a_private_command_is_deferred_ephemerally() {
        let interaction = |name: &str| Interaction {
            kind: 2,
            data: Some(Data {
                name: name.to_owned(),
                options: Vec::new(),
                ..Data::default()
            }),
            ..Interaction::default()
        };
        assert_eq!(
            deferral(&interaction("log")),
            json!({"type": 5, "data": {"flags": 64}})
        );
        assert_eq!(deferral(&interaction("job")), json!({"type": 5}));
    }

    #[test]
    fn errors_are_ephemeral_and_nothing_mentions_anyone() {
        let data = render(&Reply::Error("@everyone no".into()));
        assert_eq!(data["flags"], EPHEMERAL);
        assert_eq!(data["allowed_mentions"]["parse"], json!([]));
        assert!(!data["content"].as_str().unwrap().contains("@everyone"));
        let data = render(&Reply::Done("ok".into()));
        assert!(data.get("flags").is_none());
    }

    /// The definitions derived from the table are exactly the ones Discord had registered
    /// before the table existed (same commands, options and order), plus `/log`.
    #[test]
    fn definitions_are_unchanged() {
        let id = |description: &str| {
            json!({"type": 3, "name": "id", "description": description, "required": true,
                   "autocomplete": true, "min_length": 32, "max_length": 32})
        };
        let before = json!([
            {"name": "job", "description": "Show a CodeArts Build job's card", "options": [id("The job id (32 letters and digits)")]},
            {"name": "watch", "description": "Alert on a job's changes", "options": [
                id("The job id"),
                {"type": 3, "name": "channel", "description": "Only this alert channel (a name from the bot's config)", "required": false}
            ]},
            {"name": "unwatch", "description": "Stop alerting on a job added from chat", "options": [id("The job id")]},
            {"name": "watches", "description": "List the jobs the bot watches"},
            {"name": "history", "description": "A job's last events", "options": [
                id("The job id"),
                {"type": 4, "name": "n", "description": "How many (1 to 20, default 10)", "required": false, "min_value": 1, "max_value": 20}
            ]},
            {"name": "log", "description": "The last lines of a job's last build log (only you see it)", "options": [
                id("The job id"),
                {"type": 4, "name": "lines", "description": "How many lines (1 to 50, default from the bot's config)", "required": false, "min_value": 1, "max_value": 50}
            ]},
            {"name": "mute", "description": "Stop sending alerts for a while (they are still recorded)", "options": [
                {"type": 3, "name": "target", "description": "A job id, a project id, or all", "required": true},
                {"type": 3, "name": "duration", "description": "e.g. 30m, 2h, 1d (at most 30d)", "required": true},
                {"type": 3, "name": "reason", "description": "Why (shown with the silence)", "required": false, "max_length": 200}
            ]},
            {"name": "unmute", "description": "End a mute now", "options": [
                {"type": 3, "name": "target", "description": "The job id, project id, or all that was muted", "required": true}
            ]},
            {"name": "ack", "description": "I'm on it: no repeat alerts for this job until it recovers", "options": [id("The job id")]},
            {"name": "rerun", "description": "Run a job's last build again: its commit and parameters (or latest: the branch head)", "options": [
                id("The job id"),
                {"type": 3, "name": "from", "description": "latest: build the branch head instead of the last build's commit", "required": false}
            ]},
            {"name": "stop", "description": "Stop a job's running build", "options": [id("The job id")]},
            {"name": "digest", "description": "A summary of what is broken and how builds went lately", "options": [
                {"type": 3, "name": "channel", "description": "An alert channel (a name from the bot's config): its jobs, since its last digest", "required": false}
            ]}
        ]);
        assert_eq!(command_definitions(), before);
        assert_eq!(command_definitions().to_string(), before.to_string());
    }
}
