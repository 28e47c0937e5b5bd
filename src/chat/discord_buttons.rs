//! Discord component interactions (type 3): a click on a card's button, through the HTTP
//! endpoint or the gateway (docs/actions.md, "Buttons").
//!
//! - Mute and Ack act at once and answer UPDATE_MESSAGE (type 7): the card, with what was
//!   done in its "Done here" field.
//! - Re-run and Stop answer with a confirmation only the clicker sees (type 4, ephemeral, one
//!   "Confirm" button bound to them); confirming acts, turns the confirmation into the outcome
//!   (type 7) and edits the card the first click came from (with the bot's token).
//! - An action slower than [`DEFER_AFTER`] is acknowledged with a deferred update (type 6)
//!   and its outcome edited into the message when it is done.
//! - An unknown, expired or refused click is answered only to the clicker.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::{info, warn};

use super::buttons::{Pressed, press};
use super::discord::{EPHEMERAL, Interaction, MAX_CONTENT, original_url, refused_because};
use super::handler::Chat;
use super::late::{DEFER_AFTER, follow_up_client};
use crate::notify::buttons::discord_confirm;
use crate::notify::escape::discord_safe;
use crate::util::text::{truncate_utf16, utf16_len};

/// Interaction callback types.
const MESSAGE: u8 = 4;
const DEFERRED_UPDATE: u8 = 6;
const UPDATE_MESSAGE: u8 = 7;
/// The card's field that lists what was done from its buttons.
const DONE_FIELD: &str = "Done here";
const FIELD_MAX: usize = 1024;
const FIELDS_MAX: usize = 25;

/// The callback for a click (type 4 or 7), however long the action takes.
pub async fn answer(chat: &Chat, interaction: &Interaction) -> Value {
    let who = interaction.invoker();
    let custom_id = interaction
        .data
        .as_ref()
        .map_or("", |d| d.custom_id.as_str());
    let message = interaction.message.as_ref();
    // A click on the ephemeral confirmation, not on the card itself.
    let on_confirmation = message
        .and_then(|m| m["flags"].as_u64())
        .is_some_and(|f| f & EPHEMERAL != 0);
    let origin = message
        .filter(|_| !on_confirmation)
        .map(|m| origin(m, interaction));
    let pressed = press(chat, &who, custom_id, true, origin, |command| {
        refused_because(chat, &who, command)
    })
    .await;
    match pressed {
        Pressed::Private(text) => private(&text),
        Pressed::Confirm {
            question,
            custom_id,
            action,
        } => json!({"type": MESSAGE, "data": {
            "content": truncate_utf16(&discord_safe(&question), MAX_CONTENT),
            "flags": EPHEMERAL,
            "components": discord_confirm(&custom_id, action),
            "allowed_mentions": {"parse": []},
        }}),
        Pressed::Done { line, origin } if on_confirmation => {
            if let Some(origin) = origin {
                edit_card(chat, &origin, &line).await;
            }
            json!({"type": UPDATE_MESSAGE, "data": {
                "content": truncate_utf16(&discord_safe(&line), MAX_CONTENT),
                "components": [],
                "allowed_mentions": {"parse": []},
            }})
        }
        Pressed::Done { line, .. } => json!({
            "type": UPDATE_MESSAGE,
            "data": with_line(message.unwrap_or(&Value::Null), &line),
        }),
    }
}

/// Answers within [`DEFER_AFTER`] with the callback, or defers the update (type 6) and, when
/// the action is done, edits the clicked message (an update) or sends the clicker a
/// follow-up (a private answer).
pub async fn answer_in_time(chat: &Chat, interaction: &Interaction) -> Value {
    let mut task = {
        let (chat, interaction) = (chat.clone(), interaction.clone());
        tokio::spawn(async move { answer(&chat, &interaction).await })
    };
    match tokio::time::timeout(DEFER_AFTER, &mut task).await {
        Ok(done) => done.unwrap_or_else(|_| private("The button's action failed.")),
        Err(_) => {
            let original = original_url(chat, interaction);
            tokio::spawn(async move {
                let callback = task
                    .await
                    .unwrap_or_else(|_| private("The button's action failed."));
                // After a deferred update `@original` is the clicked message: an update edits
                // it; a private answer is a follow-up message only the clicker sees, never an
                // edit that would replace the card.
                let request = if callback["type"] == UPDATE_MESSAGE {
                    follow_up_client().patch(original)
                } else {
                    let follow_up = original.trim_end_matches("/messages/@original").to_owned();
                    follow_up_client().post(follow_up)
                };
                let send = request.json(&callback["data"]).send().await;
                if let Err(e) = send {
                    warn!(error = %crate::util::http::without_url(&e), "cannot send a late button answer");
                }
            });
            json!({"type": DEFERRED_UPDATE})
        }
    }
}

fn private(text: &str) -> Value {
    json!({"type": MESSAGE, "data": {
        "content": truncate_utf16(&discord_safe(text), MAX_CONTENT),
        "flags": EPHEMERAL,
        "allowed_mentions": {"parse": []},
    }})
}

/// What a confirmation keeps of the card it came from: where it is and its embeds.
fn origin(message: &Value, interaction: &Interaction) -> String {
    json!({
        "channel_id": message["channel_id"].as_str().or(interaction.channel_id.as_deref()),
        "message_id": message["id"],
        "embeds": message["embeds"],
    })
    .to_string()
}

/// The message's embeds and components with `line` added to the first embed's
/// [`DONE_FIELD`] (the oldest lines give way when it is full), as update data.
pub fn with_line(message: &Value, line: &str) -> Value {
    let mut embeds = message["embeds"].as_array().cloned().unwrap_or_default();
    let line = discord_safe(line);
    match embeds.first_mut().and_then(|e| e.as_object_mut()) {
        Some(embed) => {
            let fields = embed
                .entry("fields")
                .or_insert_with(|| json!([]))
                .as_array_mut();
            if let Some(fields) = fields {
                let at = fields.iter().position(|f| f["name"] == DONE_FIELD);
                let old = at
                    .and_then(|i| fields[i]["value"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let mut lines: Vec<&str> = old.lines().filter(|l| !l.is_empty()).collect();
                lines.push(&line);
                while lines.len() > 1 && utf16_len(&lines.join("\n")) > FIELD_MAX {
                    lines.remove(0);
                }
                let value = truncate_utf16(&lines.join("\n"), FIELD_MAX);
                let field = json!({"name": DONE_FIELD, "value": value, "inline": false});
                match at {
                    Some(i) => fields[i] = field,
                    None if fields.len() < FIELDS_MAX => fields.push(field),
                    None => {
                        let last = fields.len() - 1;
                        fields[last] = field;
                    }
                }
            }
        }
        None => {
            return json!({
                "content": truncate_utf16(&line, MAX_CONTENT),
                "components": message["components"],
                "allowed_mentions": {"parse": []},
            });
        }
    }
    let mut data = json!({"embeds": embeds, "allowed_mentions": {"parse": []}});
    if message["components"].is_array() {
        data["components"] = message["components"].clone();
    }
    data
}

/// Shows the outcome on the card a confirmation came from: an edit through the bot's token
/// (best effort: the clicker already has the outcome). Without a token the card stays.
async fn edit_card(chat: &Chat, origin: &str, line: &str) {
    let Ok(origin) = serde_json::from_str::<Value>(origin) else {
        return;
    };
    let (Some(channel), Some(message)) = (
        origin["channel_id"]
            .as_str()
            .and_then(|c| c.parse::<u64>().ok()),
        origin["message_id"].as_str(),
    ) else {
        return;
    };
    // The client of the bot's channels (cards with buttons are posted by one), not a new one
    // per click.
    let Some(bot) = chat.ctx.sinks.values().find_map(|sink| match sink {
        crate::notify::sink::Sink::DiscordBot(bot) => Some(bot),
        _ => None,
    }) else {
        info!("no discord_bot channel: the card is not edited with the button's outcome");
        return;
    };
    let mut data = with_line(&origin, line);
    // The card's buttons stay as they are: an edit without `components` keeps them.
    if let Some(map) = data.as_object_mut() {
        map.remove("components");
    }
    let sink = bot.in_channel(serenity::model::id::ChannelId::new(channel.max(1)));
    let edit = tokio::time::timeout(Duration::from_secs(10), sink.edit(message, &data)).await;
    match edit {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "cannot show the button's outcome on the card"),
        Err(_) => warn!("showing the button's outcome on the card timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_joins_the_cards_done_field_and_keeps_the_buttons() {
        let card = json!({
            "embeds": [{"title": "web", "fields": [{"name": "Status", "value": "failed"}]}],
            "components": [{"type": 1, "components": []}],
        });
        let once = with_line(&card, "Muted 1 h by @bob");
        assert_eq!(once["embeds"][0]["fields"][1]["name"], DONE_FIELD);
        assert_eq!(once["components"], card["components"]);
        let twice = with_line(&once, "Acked by @carol_x");
        let value = twice["embeds"][0]["fields"][1]["value"].as_str().unwrap();
        assert_eq!(
            value, "Muted 1 h by @\u{200b}bob\nAcked by @\u{200b}carol\\_x",
            "names never mention, markdown is escaped"
        );
        assert_eq!(twice["embeds"][0]["fields"].as_array().unwrap().len(), 2);
        // A long history keeps the newest lines within the field's limit.
        let mut card = card;
        for i in 0..200 {
            card = with_line(&card, &format!("Muted 1 h by @someone{i}"));
        }
        let value = card["embeds"][0]["fields"][1]["value"].as_str().unwrap();
        assert!(utf16_len(value) <= FIELD_MAX);
        assert!(value.ends_with("someone199"), "{value}");
    }
}
