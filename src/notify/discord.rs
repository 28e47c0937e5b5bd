//! Discord: one embed per event, sent through an execute-webhook URL with `?wait=true` so a 2xx
//! means the message exists. A batch is one message of up to 10 embeds sharing the
//! 6000-character total; beyond 10 events the tenth embed lists the rest, one line each.
//!
//! Mirrors <https://discord.com/developers/docs/resources/webhook#execute-webhook> and the
//! embed limits in <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
//! (summarised in `docs/platforms.md#discord-webhook`). Every limit is enforced here, so
//! Discord never answers 400 to a long job name; every untrusted string is markdown-escaped and
//! its mentions made inert, on top of `"allowed_mentions": {"parse": []}`.

use serde_json::{Value, json};

use super::context_text::{self as ctx, BlockStyle};
use super::error::SendError;
use super::escape::{self, discord_safe};
use super::http;
use super::outgoing::Outgoing;
use super::platform::{Platform, PlatformFacts, Signing, SizeLimit, Unit, Window};
use super::wording;
use crate::config::ChannelConfig;
use crate::domain::context::Context;
use crate::domain::event::{Event, EventKind, Severity};
use crate::util::secret::Secret;
use crate::util::text::{self, truncate_utf16, utf16_len};

mod board;

/// Discord's limits, in characters (counted here as UTF-16 units, never fewer than Discord's).
pub const CONTENT_MAX: usize = 2000;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FOOTER_MAX: usize = 2048;
pub const FIELDS_MAX: usize = 25;
/// Title, description, field names and values, footer and author of all embeds together.
pub const EMBEDS_TOTAL_MAX: usize = 6000;

/// At most this many embeds in one message.
pub const EMBEDS_MAX: usize = 10;
/// The most events one message carries: 9 embeds and a summary embed listing up to 16 more.
pub const MAX_BATCH: usize = 25;
/// The summary embed's description is kept within this, leaving the rest of the 6000 to the
/// nine full embeds.
const SUMMARY_MAX: usize = 1800;
/// One summary line at most.
const SUMMARY_LINE_MAX: usize = 160;

/// The error's code block takes at most this much of an embed, leaving the rest to the log.
const ERROR_BLOCK_MAX: usize = 700;
/// Between the description's paragraphs.
const PARAGRAPH: &str = "\n\n";

/// How the error and the log tail are written: fenced code blocks, counted in UTF-16 units.
const CODE: BlockStyle = BlockStyle::fenced(escape::code_safe, char::len_utf16);

/// The name the webhook posts under.
pub const USERNAME: &str = "CodeArts Build";

/// A Discord channel reached through an execute-webhook URL (the URL holds the token).
pub struct DiscordSink {
    url: Secret,
    http: reqwest::Client,
}

impl std::fmt::Debug for DiscordSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Discord's execute-webhook facts (see `docs/platforms.md#discord-webhook`). Pacing follows
/// the community figures, Discord publishes none per webhook: 5 per 2 s and 30 per minute.
pub const FACTS: PlatformFacts = PlatformFacts {
    name: "discord",
    max_batch: MAX_BATCH,
    pacing: &[Window::per_secs(5, 2), Window::per_secs(30, 60)],
    signing: Signing::None,
    edits_messages: true,
    buttons: false,
    size_limit: Some(SizeLimit {
        applies_to: "all embeds of one message",
        max: EMBEDS_TOTAL_MAX,
        unit: Unit::Utf16,
    }),
    link_max: super::buttons::DISCORD_URL_MAX,
};

impl DiscordSink {
    /// `url` is the execute-webhook URL, optionally with `?thread_id=`; `http` carries the
    /// delivery timeout.
    pub fn new(url: Secret, http: reqwest::Client) -> Self {
        Self { url, http }
    }
}

impl Platform for DiscordSink {
    fn from_config(
        channel: &ChannelConfig,
        http: reqwest::Client,
        _discord: Option<&std::sync::Arc<serenity::http::Http>>,
    ) -> Self {
        Self::new(channel.url.clone().unwrap_or_default(), http)
    }

    /// Posts the events as one message (see [`render_batch`]); `Ok` once Discord answered 2xx.
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<(), SendError> {
        self.post_for_id(batch).await.map(|_| ())
    }

    /// Posts the batch and returns the message's id from Discord's answer (`?wait=true`).
    async fn post_for_id(&self, batch: &[Outgoing<'_>]) -> Result<Option<String>, SendError> {
        let url = with_wait(http::parse_url(&self.url)?);
        let body = http::encode(&render_batch(batch))?;
        let answer = http::post(&self.http, url, &self.url, body, Default::default()).await?;
        http::classify_http(answer.status, &answer.headers, &answer.body)
            .map_err(|e| e.scrubbed(&self.url))?;
        Ok(message_id(&answer.body))
    }

    async fn edit_incident(
        &self,
        message_id: &str,
        out: &Outgoing<'_>,
        incident: &crate::domain::incident::Incident,
    ) -> Result<(), SendError> {
        let payload = render_incident(out, incident, chrono::Utc::now());
        self.edit(message_id, &payload).await
    }
}

impl DiscordSink {
    /// Edits a message this webhook posted:
    /// `PATCH /webhooks/{id}/{token}/messages/{message_id}` (keeping `thread_id`).
    pub async fn edit(&self, message_id: &str, payload: &Value) -> Result<(), SendError> {
        let mut url = http::parse_url(&self.url)?;
        let path = format!("{}/messages/{message_id}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let kept: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == "thread_id")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("with_components=true");
        url.set_query(Some(&query));
        let body = http::encode(payload)?;
        let answer = http::send_json(
            &self.http,
            reqwest::Method::PATCH,
            url,
            &self.url,
            body,
            Default::default(),
        )
        .await?;
        http::classify_http(answer.status, &answer.headers, &answer.body)
            .map_err(|e| e.scrubbed(&self.url))
    }
}

/// The `id` of the message object Discord answers with.
pub(crate) fn message_id(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let id = value.get("id")?;
    id.as_str()
        .map(str::to_owned)
        .or_else(|| id.as_u64().map(|n| n.to_string()))
}

/// An incident's message: the latest event's card with the incident's state as a field
/// (open: how long and how many failed builds; resolved: after how long), as an edit payload.
pub fn render_incident(
    out: &Outgoing<'_>,
    incident: &crate::domain::incident::Incident,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    // The incident's field is part of the embed before it is fitted, so the log tail leaves
    // room for it.
    let field = Field {
        name: if incident.is_open() {
            "Incident"
        } else {
            "Incident resolved"
        }
        .to_owned(),
        value: truncate_utf16(&incident.status_line(now), FIELD_VALUE_MAX),
        inline: false,
    };
    let mut payload = render_with(std::slice::from_ref(out), Some(field));
    if let Some(map) = payload.as_object_mut() {
        // An edit cannot change who posted it.
        map.remove("username");
        map.remove("avatar_url");
    }
    payload
}

/// Adds `wait=true` (answer with the message, for its id) and `with_components=true` (a
/// webhook the application does not own may then carry the link button) to the URL's query,
/// keeping whatever else it holds (`thread_id`).
fn with_wait(mut url: reqwest::Url) -> reqwest::Url {
    let kept: Vec<&str> = url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            !pair.is_empty() && !matches!(pair.split('=').next(), Some("wait" | "with_components"))
        })
        .collect();
    let mut query = kept.join("&");
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str("wait=true&with_components=true");
    url.set_query(Some(&query));
    url
}

/// The embed's colour by severity.
pub fn colour(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 0xE7_4C_3C,
        Severity::Warning => 0xF3_9C_12,
        Severity::Good => 0x2E_CC_71,
        Severity::Info => 0x34_98_DB,
    }
}

/// One embed field before it becomes JSON.
struct Field {
    name: String,
    value: String,
    inline: bool,
}

/// The parts of an embed that count towards Discord's limits, and the rest.
struct Embed {
    title: String,
    description: String,
    fields: Vec<Field>,
    footer: String,
    /// The title's link (not counted in the limits).
    url: Option<String>,
    colour: u32,
    timestamp: Option<String>,
}

impl Embed {
    fn total(&self) -> usize {
        utf16_len(&self.title)
            + utf16_len(&self.description)
            + self
                .fields
                .iter()
                .map(|f| utf16_len(&f.name) + utf16_len(&f.value))
                .sum::<usize>()
            + utf16_len(&self.footer)
    }

    /// Shortens the longest texts until the whole embed counts at most `max`.
    fn fit_total(&mut self, max: usize) {
        loop {
            let total = self.total();
            if total <= max {
                return;
            }
            let excess = total - max;
            let mut texts: Vec<&mut String> = vec![&mut self.description, &mut self.footer];
            texts.extend(self.fields.iter_mut().map(|f| &mut f.value));
            texts.push(&mut self.title);
            let Some(longest) = texts.into_iter().max_by_key(|t| utf16_len(t)) else {
                return;
            };
            let len = utf16_len(longest);
            if len <= 1 {
                return; // nothing left to cut; cannot happen with the per-part limits
            }
            *longest = truncate_utf16(longest, len.saturating_sub(excess).max(1));
        }
    }

    fn to_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("title".into(), json!(self.title));
        if let Some(url) = &self.url {
            object.insert("url".into(), json!(url));
        }
        if !self.description.is_empty() {
            object.insert("description".into(), json!(self.description));
        }
        object.insert("color".into(), json!(self.colour));
        if !self.fields.is_empty() {
            let fields: Vec<Value> = self
                .fields
                .iter()
                .map(|f| json!({"name": f.name, "value": f.value, "inline": f.inline}))
                .collect();
            object.insert("fields".into(), Value::Array(fields));
        }
        if !self.footer.is_empty() {
            object.insert("footer".into(), json!({ "text": self.footer }));
        }
        if let Some(timestamp) = &self.timestamp {
            object.insert("timestamp".into(), json!(timestamp));
        }
        Value::Object(object)
    }
}

/// Builds the execute-webhook JSON for one event: one embed within every Discord limit.
pub fn render(out: &Outgoing<'_>) -> Value {
    render_batch(std::slice::from_ref(out))
}

/// Builds the execute-webhook JSON for several events: an embed each, up to 10; with more,
/// nine embeds and a tenth listing the rest one line each. The embeds share the 6000-character
/// total (the longest texts are cut first, then the error and the log tail get what is left).
/// Mentions are parsed for exactly the mapped people of the batch, named in `content`;
/// nobody else, never `@everyone` or a role.
pub fn render_batch(batch: &[Outgoing<'_>]) -> Value {
    render_with(batch, None)
}

/// [`render_batch`], with `incident` as the first embed's first field.
fn render_with(batch: &[Outgoing<'_>], mut incident: Option<Field>) -> Value {
    let (full, rest) = if batch.len() > EMBEDS_MAX {
        batch.split_at(EMBEDS_MAX - 1)
    } else {
        (batch, &[][..])
    };
    let summary = (!rest.is_empty()).then(|| summary_embed(rest));
    let room = EMBEDS_TOTAL_MAX.saturating_sub(summary.as_ref().map_or(0, Embed::total));
    let budget = room / full.len().max(1);
    let mut embeds: Vec<Value> = full
        .iter()
        .map(|out| {
            let mut embed = event_embed(out);
            if let Some(field) = incident.take()
                && embed.fields.len() < FIELDS_MAX
            {
                embed.fields.insert(0, field);
            }
            embed.fit_total(budget);
            if batch.len() > 1 {
                embed.add_board_field(out.board, budget);
            }
            if let Some(context) = out.context {
                add_code_blocks(&mut embed, context, budget);
            }
            embed.to_json()
        })
        .collect();
    embeds.extend(summary.as_ref().map(Embed::to_json));
    let users = mentioned(batch);
    let mut payload = json!({
        "username": USERNAME,
        "allowed_mentions": { "parse": [] },
        "embeds": embeds,
    });
    if let [only] = batch {
        // Always written on a card of its own, so an edit also removes buttons that no
        // longer apply (a resolved incident keeps only its link).
        payload["components"] =
            super::buttons::discord_components(only.buttons, only.link, only.board)
                .unwrap_or(json!([]));
    }
    if !users.is_empty() {
        let content: Vec<String> = users.iter().map(|id| format!("<@{id}>")).collect();
        payload["content"] = json!(truncate_utf16(&content.join(" "), CONTENT_MAX));
        payload["allowed_mentions"] = json!({ "parse": [], "users": users });
    }
    payload
}

/// The Discord ids of the people the batch mentions, each once, in order (at most 25, far
/// below the 100 `allowed_mentions.users` takes).
fn mentioned<'a>(batch: &'a [Outgoing<'_>]) -> Vec<&'a str> {
    let mut users: Vec<&str> = Vec::new();
    for id in batch.iter().filter_map(|o| ctx::discord_id(o.mention)) {
        if !users.contains(&id) {
            users.push(id);
        }
    }
    users
}

/// Appends the error and the log tail to the description as code blocks, each whole, within
/// what the embed's share of the message (`budget`) and the description's limit leave.
fn add_code_blocks(embed: &mut Embed, context: &Context, budget: usize) {
    let room = |embed: &Embed| {
        let total = budget.saturating_sub(embed.total());
        let description = DESCRIPTION_MAX.saturating_sub(utf16_len(&embed.description));
        total.min(description).saturating_sub(utf16_len(PARAGRAPH))
    };
    let append = |embed: &mut Embed, block: String| {
        if !embed.description.is_empty() {
            embed.description.push_str(PARAGRAPH);
        }
        embed.description.push_str(&block);
    };
    if let Some(error) = ctx::error_block(context, &CODE, room(embed).min(ERROR_BLOCK_MAX)) {
        append(embed, error);
    }
    if let Some(log) = ctx::log_block(context, &CODE, room(embed)) {
        append(embed, log);
    }
}

/// One event's embed, each part within its own limit (the total is fitted by the caller).
fn event_embed(out: &Outgoing<'_>) -> Embed {
    let event = out.event;
    Embed {
        title: truncate_utf16(
            &format!(
                "{} {}: {}",
                wording::severity_icon(event.kind.severity()),
                wording::headline(event.kind),
                discord_safe(&event.job_name)
            ),
            TITLE_MAX,
        ),
        description: truncate_utf16(&description(event, out.context), DESCRIPTION_MAX),
        fields: fields(event, out.context),
        footer: truncate_utf16(
            &format!("Delivery {}", text::printable(out.delivery_id)),
            FOOTER_MAX,
        ),
        url: escape::valid_link(out.link),
        colour: colour(event.kind.severity()),
        timestamp: Some(text::rfc3339(event.detected_at)),
    }
}

/// The tenth embed of a large batch: one line per remaining event, as many as fit in
/// [`SUMMARY_MAX`], then how many more there were.
fn summary_embed(rest: &[Outgoing<'_>]) -> Embed {
    let severity = rest
        .iter()
        .map(|o| o.event.kind.severity())
        .max()
        .unwrap_or(Severity::Info);
    let mut description = String::new();
    for (i, out) in rest.iter().enumerate() {
        let event = out.event;
        let change = wording::what_changed(event)
            .map(|c| format!(" ({})", discord_safe(&c)))
            .unwrap_or_default();
        let line = truncate_utf16(
            &format!(
                "{} {}: {}{change}",
                wording::severity_icon(event.kind.severity()),
                wording::headline(event.kind),
                discord_safe(&event.job_name),
            ),
            SUMMARY_LINE_MAX,
        );
        let left = rest.len() - i - 1;
        let closing = format!("\n{} and {left} more", text::MARKER);
        let reserve = if left > 0 { utf16_len(&closing) } else { 0 };
        if utf16_len(&description) + 1 + utf16_len(&line) + reserve > SUMMARY_MAX {
            description.push_str(&format!("\n{} and {} more", text::MARKER, left + 1));
            break;
        }
        if !description.is_empty() {
            description.push('\n');
        }
        description.push_str(&line);
    }
    Embed {
        title: format!(
            "{} {} more event{}",
            wording::severity_icon(severity),
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
        description,
        fields: Vec::new(),
        footer: String::new(),
        url: None,
        colour: colour(severity),
        timestamp: None,
    }
}

/// The summary, then what changed when the summary does not already say it, then why (a
/// disabled or vanished job).
fn description(event: &Event, context: Option<&Context>) -> String {
    let mut out = discord_safe(&event.summary);
    let why = context
        .into_iter()
        .flat_map(ctx::facts)
        .find(|f| f.label == ctx::WHY);
    if !event.summary.contains('→') {
        let change = match event.kind {
            EventKind::JobDisabled | EventKind::JobEnabled => {
                wording::disabled_change(event).map(|c| ("Disabled", c))
            }
            EventKind::HealthDropped => wording::health_change(event).map(|c| ("Health score", c)),
            _ => wording::status_change(event).map(|c| ("Status", c)),
        };
        if let Some((label, change)) = change.filter(|(_, c)| c.contains('→')) {
            out.push_str(&format!("\n**{label}:** {}", discord_safe(&change)));
        }
    }
    if let Some(why) = why {
        out.push_str(&format!(
            "\n**{}:** {}",
            why.label,
            discord_safe(&why.value)
        ));
    }
    out
}

/// The facts under the description, each within the field limits; empty ones left out: the
/// context's first (failed stage, branch, commit, who ran it, tests), then the job's.
fn fields(event: &Event, context: Option<&Context>) -> Vec<Field> {
    let last_build = wording::last_build_time(event).map(|t| format!("<t:{}:R>", t.timestamp()));
    let duration = wording::build_seconds(event).and_then(text::format_duration);
    let facts = [
        ("Job id", Some(discord_safe(&event.job_id))),
        (
            "Status",
            wording::status_change(event).map(|s| discord_safe(&s)),
        ),
        ("Last build", last_build),
        ("Duration", duration),
        ("Health score", wording::health_change(event)),
        ("Disabled", wording::disabled_change(event)),
    ];
    let job = facts.into_iter().filter_map(|(name, value)| {
        let value = value.filter(|v| !v.trim().is_empty())?;
        Some(Field {
            name: truncate_utf16(name, FIELD_NAME_MAX),
            value: truncate_utf16(&value, FIELD_VALUE_MAX),
            inline: true,
        })
    });
    context
        .map(context_fields)
        .unwrap_or_default()
        .into_iter()
        .chain(job)
        .take(FIELDS_MAX)
        .collect()
}

/// The context's facts as fields; the commit's short id linked to the commit when there is
/// a link. The error and why are shown in the description instead.
fn context_fields(context: &Context) -> Vec<Field> {
    ctx::facts(context)
        .into_iter()
        .filter(|f| f.label != ctx::ERROR && f.label != ctx::WHY)
        .map(|f| {
            let plain = discord_safe(&f.value);
            let value = match (f.label, linked_commit(context)) {
                (ctx::COMMIT, Some(linked)) if utf16_len(&linked) <= FIELD_VALUE_MAX => linked,
                _ => truncate_utf16(&plain, FIELD_VALUE_MAX),
            };
            Field {
                name: f.label.to_owned(),
                value,
                inline: true,
            }
        })
        .collect()
}

/// `[a1b2c3d4](url) message`, when the commit has a short id and a link.
fn linked_commit(context: &Context) -> Option<String> {
    let short = context.short_commit()?;
    let url = ctx::commit_link(context)?;
    let message = ctx::commit_message(context)
        .map(|m| format!(" {}", discord_safe(&m)))
        .unwrap_or_default();
    Some(format!(
        "[{}]({}){message}",
        discord_safe(short),
        escape::markdown_url(&url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codearts::JobInfo;
    use chrono::{TimeZone, Utc};

    fn info(name: &str, status: &str, health: i64) -> JobInfo {
        JobInfo {
            id: Some("f5af662119404ad187437cd272b5099b".to_owned()),
            job_name: Some(name.to_owned()),
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(health),
            build_time: Some("185.2".to_owned()),
            disabled: Some(false),
            ..JobInfo::default()
        }
    }

    fn event(name: &str) -> Event {
        Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: name.to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info(name, "success", 80)),
            current: Some(info(name, "failed", 70)),
            summary: format!("Build failed: {name} (success → failed)"),
        }
    }

    fn embed_total(embed: &Value) -> usize {
        let s = |v: &Value| v.as_str().map_or(0, utf16_len);
        s(&embed["title"])
            + s(&embed["description"])
            + s(&embed["footer"]["text"])
            + embed["fields"].as_array().map_or(0, |f| {
                f.iter().map(|f| s(&f["name"]) + s(&f["value"])).sum()
            })
    }

    #[test]
    fn a_plain_event_renders_every_fact() {
        let ev = event("web-frontend");
        let msg = render(&Outgoing {
            delivery_id: "d-1",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        assert_eq!(msg["username"], USERNAME);
        assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
        let embed = &msg["embeds"][0];
        assert_eq!(embed["title"], "🔴 Build failed: web-frontend");
        assert_eq!(embed["color"], 0xE7_4C_3C);
        assert_eq!(embed["timestamp"], "2026-11-26T12:00:00Z");
        assert_eq!(embed["footer"]["text"], "Delivery d-1");
        let field = |name: &str| {
            embed["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == name)
                .map(|f| f["value"].as_str().unwrap().to_owned())
        };
        assert_eq!(field("Status").as_deref(), Some("success → failed"));
        assert_eq!(field("Last build").as_deref(), Some("<t:1721793407:R>"));
        assert_eq!(field("Duration").as_deref(), Some("3m 05s"));
        assert_eq!(field("Health score").as_deref(), Some("80 → 70"));
        assert_eq!(field("Disabled").as_deref(), Some("no"));
        assert_eq!(
            field("Job id").as_deref(),
            Some("f5af662119404ad187437cd272b5099b")
        );
    }

    #[test]
    fn a_hostile_long_name_stays_within_limits_and_pings_nobody() {
        let name = format!("@everyone **bold** 🚀 <@123> {}", "x🔥".repeat(150));
        assert!(name.chars().count() >= 300);
        let mut ev = event(&name);
        ev.summary = format!("{name} {}", "y".repeat(5000));
        let msg = render(&Outgoing {
            delivery_id: "d-2",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let embed = &msg["embeds"][0];
        let title = embed["title"].as_str().unwrap();
        assert!(utf16_len(title) <= TITLE_MAX, "{}", utf16_len(title));
        assert!(title.ends_with(text::MARKER));
        let description = embed["description"].as_str().unwrap();
        assert!(utf16_len(description) <= DESCRIPTION_MAX);
        assert!(description.ends_with(text::MARKER));
        assert!(embed_total(embed) <= EMBEDS_TOTAL_MAX);
        for field in embed["fields"].as_array().unwrap() {
            assert!(utf16_len(field["name"].as_str().unwrap()) <= FIELD_NAME_MAX);
            assert!(utf16_len(field["value"].as_str().unwrap()) <= FIELD_VALUE_MAX);
        }
        assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
        let raw = msg.to_string();
        assert!(!raw.contains("@everyone"), "{raw}");
        assert!(!raw.contains("<@123>"), "{raw}");
        assert!(!raw.contains("**bold**"), "{raw}");
        assert!(title.contains(r"\*\*bold\*\*"), "{title}");
    }

    #[test]
    fn huge_statuses_are_cut_to_fit_the_total() {
        let mut ev = event("job");
        let long = "s".repeat(3000);
        ev.previous.as_mut().unwrap().last_build_status = Some(long.clone());
        ev.current.as_mut().unwrap().last_build_status = Some(format!("{long}2"));
        ev.summary = "z".repeat(5000);
        let msg = render(&Outgoing {
            delivery_id: &"d".repeat(3000),
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let embed = &msg["embeds"][0];
        assert!(
            embed_total(embed) <= EMBEDS_TOTAL_MAX,
            "{}",
            embed_total(embed)
        );
        assert!(utf16_len(embed["footer"]["text"].as_str().unwrap()) <= FOOTER_MAX);
    }

    #[test]
    fn severity_picks_the_colour() {
        let mut ev = event("job");
        for (kind, colour) in [
            (EventKind::BuildFailed, 0xE7_4C_3C),
            (EventKind::HealthDropped, 0xF3_9C_12),
            (EventKind::BuildRecovered, 0x2E_CC_71),
            (EventKind::JobRenamed, 0x34_98_DB),
        ] {
            ev.kind = kind;
            let msg = render(&Outgoing {
                delivery_id: "d",
                event: &ev,
                link: None,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            });
            assert_eq!(msg["embeds"][0]["color"], colour, "{kind}");
        }
    }

    #[test]
    fn a_disabled_job_says_what_changed() {
        let mut ev = event("job");
        ev.kind = EventKind::JobDisabled;
        ev.summary = "Job disabled: job".to_owned();
        ev.current.as_mut().unwrap().disabled = Some(true);
        let msg = render(&Outgoing {
            delivery_id: "d",
            event: &ev,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        });
        let description = msg["embeds"][0]["description"].as_str().unwrap();
        assert!(
            description.ends_with("**Disabled:** no → yes"),
            "{description}"
        );
    }

    #[test]
    fn the_link_is_the_titles_url_and_a_bad_link_is_left_out() {
        let ev = event("job");
        let with = |link| {
            render(&Outgoing {
                delivery_id: "d",
                event: &ev,
                link,
                context: None,
                mention: None,
                buttons: None,
                board: None,
            })
        };
        assert_eq!(
            with(Some("https://console.example/job/1"))["embeds"][0]["url"],
            "https://console.example/job/1"
        );
        assert!(with(Some("ftp://x/1"))["embeds"][0].get("url").is_none());
        assert!(with(None)["embeds"][0].get("url").is_none());
    }

    #[test]
    fn a_batch_shares_the_total_and_beyond_ten_summarises() {
        let name = format!("@everyone {}", "n🔥".repeat(200));
        let events: Vec<Event> = (0..25).map(|_| event(&name)).collect();
        for n in [2, 10, 11, 25] {
            let batch: Vec<Outgoing<'_>> = events[..n]
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
            let embeds = msg["embeds"].as_array().unwrap();
            assert_eq!(embeds.len(), n.min(EMBEDS_MAX), "{n}");
            let total: usize = embeds.iter().map(embed_total).sum();
            assert!(total <= EMBEDS_TOTAL_MAX, "{n}: {total}");
            if n > EMBEDS_MAX {
                let summary = &embeds[EMBEDS_MAX - 1];
                assert_eq!(summary["title"], format!("🔴 {} more events", n - 9));
                let lines = summary["description"].as_str().unwrap().lines().count();
                assert!(lines >= 1 && lines <= n - 9 + 1, "{n}: {lines}");
            }
            assert!(!msg.to_string().contains("@everyone"));
        }
    }

    use crate::config::Person;
    use crate::notify::context_text::tests::{alice, failed_context};

    fn field(embed: &Value, name: &str) -> Option<String> {
        embed["fields"]
            .as_array()?
            .iter()
            .find(|f| f["name"] == name)
            .and_then(|f| f["value"].as_str().map(str::to_owned))
    }

    fn with_context<'a>(
        event: &'a Event,
        context: &'a Context,
        mention: Option<&'a Person>,
    ) -> Outgoing<'a> {
        Outgoing {
            delivery_id: "d-1",
            event,
            link: Some("https://console.example/job/1"),
            context: Some(context),
            mention,
            buttons: None,
            board: None,
        }
    }

    #[test]
    fn the_context_fills_fields_and_code_blocks_and_mentions_exactly_the_author() {
        let ev = event("web-frontend");
        let (context, person) = (failed_context(), alice());
        let msg = render(&with_context(&ev, &context, Some(&person)));
        assert_eq!(msg["content"], "<@123456789012345678>");
        assert_eq!(
            msg["allowed_mentions"],
            json!({"parse": [], "users": ["123456789012345678"]})
        );
        let embed = &msg["embeds"][0];
        assert_eq!(
            field(embed, "Failed stage").as_deref(),
            Some("compile (1 m 12 s)")
        );
        assert_eq!(field(embed, "Branch").as_deref(), Some("main"));
        assert_eq!(
            field(embed, "Commit").as_deref(),
            Some("[a1b2c3d4](https://code.example/repo/commit/a1b2c3d4) Fix the login page")
        );
        assert_eq!(
            field(embed, "Triggered by").as_deref(),
            Some("alice (Manual)")
        );
        assert_eq!(
            field(embed, "Tests").as_deref(),
            Some("120 tests, 3 failed, 1 error")
        );
        assert_eq!(field(embed, "Status").as_deref(), Some("success → failed"));
        let description = embed["description"].as_str().unwrap();
        assert!(
            description.contains("**Error**\n```\ncompile failed: exit code 101\n```"),
            "{description}"
        );
        assert!(description.contains("**Log (last "), "{description}");
        assert!(
            description.ends_with("LAST LINE: build failed\n```"),
            "{description}"
        );
        assert_eq!(description.matches("```").count(), 4, "{description}");
        assert!(utf16_len(description) <= DESCRIPTION_MAX);
        // The long tail is cut to what the message allows, and uses most of it.
        let total = embed_total(embed);
        assert!(total <= EMBEDS_TOTAL_MAX && total > 3000, "{total}");
    }

    #[test]
    fn a_person_without_a_discord_id_is_named_never_mentioned() {
        let ev = event("web");
        let context = failed_context();
        let mut person = alice();
        person.discord = None;
        for mention in [None, Some(&person)] {
            let msg = render(&with_context(&ev, &context, mention));
            assert!(msg.get("content").is_none(), "{msg}");
            assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
            assert_eq!(
                field(&msg["embeds"][0], "Triggered by").as_deref(),
                Some("alice (Manual)")
            );
        }
    }

    #[test]
    fn a_batch_with_context_keeps_every_limit_and_allows_each_author_once() {
        let events: Vec<Event> = (0..25).map(|i| event(&format!("job-{i}"))).collect();
        let context = failed_context();
        let (a, mut b) = (alice(), alice());
        b.discord = Some("987654321098765432".to_owned());
        for n in [2, 10, 25] {
            let batch: Vec<Outgoing<'_>> = events[..n]
                .iter()
                .enumerate()
                .map(|(i, e)| with_context(e, &context, Some(if i == 1 { &b } else { &a })))
                .collect();
            let msg = render_batch(&batch);
            assert_eq!(
                msg["allowed_mentions"]["users"],
                json!(["123456789012345678", "987654321098765432"]),
                "{n}"
            );
            assert_eq!(
                msg["content"],
                "<@123456789012345678> <@987654321098765432>"
            );
            let embeds = msg["embeds"].as_array().unwrap();
            let total: usize = embeds.iter().map(embed_total).sum();
            assert!(total <= EMBEDS_TOTAL_MAX, "{n}: {total}");
            for embed in embeds {
                let description = embed["description"].as_str().unwrap_or_default();
                assert_eq!(description.matches("```").count() % 2, 0, "{description}");
                assert!(embed["fields"].as_array().map_or(0, Vec::len) <= FIELDS_MAX);
            }
        }
    }

    #[test]
    fn an_incident_edit_keeps_the_context_within_limits() {
        let ev = event("web");
        let context = failed_context();
        let person = alice();
        let incident = crate::domain::incident::Incident {
            id: 1,
            job_id: ev.job_id.clone(),
            job_name: "web".to_owned(),
            opened_at: Utc.with_ymd_and_hms(2026, 11, 26, 11, 0, 0).unwrap(),
            closed_at: None,
            failed_builds: 3,
            last_status: Some("failed".to_owned()),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let msg = render_incident(&with_context(&ev, &context, Some(&person)), &incident, now);
        let embed = &msg["embeds"][0];
        assert_eq!(embed["fields"][0]["name"], "Incident");
        assert!(field(embed, "Failed stage").is_some());
        assert!(
            embed_total(embed) <= EMBEDS_TOTAL_MAX,
            "{}",
            embed_total(embed)
        );
        assert!(msg.get("username").is_none());
        assert_eq!(
            msg["allowed_mentions"]["users"],
            json!(["123456789012345678"])
        );
        let description = embed["description"].as_str().unwrap();
        assert!(description.ends_with("build failed\n```"), "{description}");
    }

    #[test]
    fn a_disabled_job_says_why() {
        let mut ev = event("job");
        ev.kind = EventKind::JobDisabled;
        ev.summary = "Job disabled: job".to_owned();
        let context = Context::why(
            "disabled by bob at 2026-11-30 10:02 UTC: **migrating**".into(),
            true,
        );
        let msg = render(&with_context(&ev, &context, None));
        let description = msg["embeds"][0]["description"].as_str().unwrap();
        assert!(
            description.ends_with(
                "**Why:** disabled by bob at 2026-11-30 10:02 UTC: \\*\\*migrating\\*\\*"
            ),
            "{description}"
        );
    }

    #[test]
    fn wait_true_is_added_and_the_rest_of_the_query_kept() {
        let url = |s: &str| with_wait(reqwest::Url::parse(s).unwrap()).to_string();
        assert_eq!(
            url("https://d.example/api/webhooks/1/t"),
            "https://d.example/api/webhooks/1/t?wait=true&with_components=true"
        );
        assert_eq!(
            url("https://d.example/api/webhooks/1/t?thread_id=9"),
            "https://d.example/api/webhooks/1/t?thread_id=9&wait=true&with_components=true"
        );
        assert_eq!(
            url("https://d.example/api/webhooks/1/t?wait=false&thread_id=9"),
            "https://d.example/api/webhooks/1/t?thread_id=9&wait=true&with_components=true"
        );
    }
}
