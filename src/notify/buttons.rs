//! The card's buttons as each platform writes them (docs/actions.md, "Buttons"): Discord
//! message components (action rows of buttons, the link as a link button) and a Slack
//! `actions` block. Only opaque ids travel: what a click does is looked up in the store.

use serde_json::{Value, json};

use std::collections::HashSet;

use crate::config::{ChannelType, Config};
use crate::domain::buttons::{ButtonAction, CardButtons};

/// The channels whose failure cards carry buttons: the platform can (`discord_bot`, Slack),
/// the channel did not turn them off (`buttons = false`), and a click can reach the bot
/// (Discord: the interactions endpoint or the gateway; Slack: a signing secret to verify it).
pub fn channels_with_buttons(config: &Config) -> HashSet<String> {
    let discord = config.discord.public_key.is_some()
        || (config.discord.token.is_some() && config.discord.gateway);
    let slack = config.slack.signing_secret.is_some();
    config
        .channels
        .iter()
        .filter(|c| c.buttons.unwrap_or(true))
        .filter(|c| match c.kind {
            ChannelType::DiscordBot => discord,
            ChannelType::Slack => slack,
            _ => false,
        })
        .map(|c| c.name.clone())
        .collect()
}

/// Discord button styles.
const PRIMARY: u8 = 1;
const SECONDARY: u8 = 2;
const DANGER: u8 = 4;
const LINK: u8 = 5;

/// Discord's limit on a link button's URL.
pub const DISCORD_URL_MAX: usize = 512;
/// Slack's limit on a button's URL.
const SLACK_URL_MAX: usize = 3000;

fn discord_button(buttons: &CardButtons, action: ButtonAction, style: u8) -> Option<Value> {
    let id = buttons.custom_id(action)?;
    Some(json!({"type": 2, "style": style, "label": action.label(), "custom_id": id}))
}

/// Discord allows at most this many buttons in one action row.
const DISCORD_ROW_MAX: usize = 5;

/// Discord components for a card: a row with Re-run, Stop, Ack, the link and the board's
/// link; a row with the mutes. `None` when there is nothing to show.
pub fn discord_components(
    buttons: Option<&CardButtons>,
    link: Option<&str>,
    board: Option<&str>,
) -> Option<Value> {
    let mut first = Vec::new();
    let mut second = Vec::new();
    if let Some(b) = buttons {
        first.extend(discord_button(b, ButtonAction::Rerun, PRIMARY));
        first.extend(discord_button(b, ButtonAction::Stop, DANGER));
        first.extend(discord_button(b, ButtonAction::Ack, SECONDARY));
        for mute in [
            ButtonAction::Mute1h,
            ButtonAction::Mute4h,
            ButtonAction::MuteTomorrow,
        ] {
            second.extend(discord_button(b, mute, SECONDARY));
        }
    }
    if let Some(url) =
        crate::notify::escape::valid_link(link).filter(|l| l.len() <= DISCORD_URL_MAX)
    {
        first.push(json!({"type": 2, "style": LINK, "label": super::LINK_LABEL, "url": url}));
    }
    if let Some(url) =
        crate::notify::escape::valid_link(board).filter(|l| l.len() <= DISCORD_URL_MAX)
    {
        let button = json!({"type": 2, "style": LINK, "label": super::BOARD_LABEL, "url": url});
        // Beside the CodeArts link while the row has room, else with the mutes.
        let row = if first.len() < DISCORD_ROW_MAX {
            &mut first
        } else {
            &mut second
        };
        row.push(button);
    }
    let rows: Vec<Value> = [first, second]
        .into_iter()
        .filter(|row| !row.is_empty())
        .map(|row| json!({"type": 1, "components": row}))
        .collect();
    (!rows.is_empty()).then(|| json!(rows))
}

/// The one-button confirmation Discord shows only to the clicker.
pub fn discord_confirm(custom_id: &str, action: ButtonAction) -> Value {
    json!([{"type": 1, "components": [
        {"type": 2, "style": DANGER, "label": action.label(), "custom_id": custom_id}
    ]}])
}

/// A Slack `actions` block with the card's buttons (Re-run and Stop ask for confirmation in
/// Slack's own dialog), the link and the board's link, or `None` with neither buttons nor a
/// usable board link.
pub fn slack_actions(
    buttons: Option<&CardButtons>,
    link: Option<&str>,
    board: Option<&str>,
) -> Option<Value> {
    let board = crate::notify::escape::valid_link(board).filter(|l| l.len() <= SLACK_URL_MAX);
    if buttons.is_none() && board.is_none() {
        return None;
    }
    let mut elements = Vec::new();
    for action in [
        ButtonAction::Rerun,
        ButtonAction::Stop,
        ButtonAction::Ack,
        ButtonAction::Mute1h,
        ButtonAction::Mute4h,
        ButtonAction::MuteTomorrow,
    ] {
        let Some(id) = buttons.and_then(|b| b.custom_id(action)) else {
            continue;
        };
        let mut button = json!({
            "type": "button",
            "text": {"type": "plain_text", "text": action.label()},
            "action_id": id,
        });
        if action.acts() {
            button["style"] = json!(if action == ButtonAction::Stop {
                "danger"
            } else {
                "primary"
            });
            button["confirm"] = slack_confirm(action);
        }
        elements.push(button);
    }
    if let Some(url) = crate::notify::escape::valid_link(link).filter(|l| l.len() <= SLACK_URL_MAX)
    {
        elements.push(json!({
            "type": "button",
            "text": {"type": "plain_text", "text": super::LINK_LABEL},
            "url": url,
            "action_id": "open",
        }));
    }
    if let Some(url) = board {
        elements.push(json!({
            "type": "button",
            "text": {"type": "plain_text", "text": super::BOARD_LABEL},
            "url": url,
            "action_id": "board",
        }));
    }
    Some(json!({"type": "actions", "block_id": "codearts-bot-card", "elements": elements}))
}

fn slack_confirm(action: ButtonAction) -> Value {
    let (title, text, confirm) = match action {
        ButtonAction::Stop => (
            "Stop the build?",
            "The running build is stopped in CodeArts.",
            "Stop it",
        ),
        _ => (
            "Re-run the build?",
            "The last build runs again in CodeArts, with its commit and parameters.",
            "Re-run",
        ),
    };
    json!({
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "plain_text", "text": text},
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": "Cancel"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CardButtons {
        CardButtons {
            ids: ButtonAction::FAILURE_CARD
                .iter()
                .enumerate()
                .map(|(i, a)| (*a, format!("{i:032x}")))
                .collect(),
        }
    }

    #[test]
    fn discord_rows_hold_at_most_five_buttons_and_carry_only_opaque_ids() {
        let rows =
            discord_components(Some(&card()), Some("https://console.example/j/1"), None).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            let buttons = row["components"].as_array().unwrap();
            assert!(buttons.len() <= 5);
            for b in buttons {
                if let Some(id) = b["custom_id"].as_str() {
                    assert!(id.starts_with("cb1:") && id.len() <= 100, "{id}");
                }
            }
        }
        assert_eq!(rows[0]["components"][0]["label"], "Re-run");
        assert_eq!(
            rows[0]["components"][2]["url"],
            "https://console.example/j/1"
        );
        // Without buttons: only the link; without either, nothing.
        let link_only =
            discord_components(None, Some("https://console.example/j/1"), None).unwrap();
        assert_eq!(link_only[0]["components"].as_array().unwrap().len(), 1);
        assert_eq!(discord_components(None, Some("javascript:x"), None), None);
    }

    #[test]
    fn slack_asks_before_acting_on_codearts() {
        let block = slack_actions(Some(&card()), None, None).unwrap();
        let elements = block["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 5);
        assert!(elements[0]["confirm"].is_object(), "re-run confirms");
        assert!(elements[1].get("confirm").is_none(), "ack does not");
        assert_eq!(slack_actions(None, None, None), None);
    }

    const BOARD: &str = "https://bot.example/jobs/f5af662119404ad187437cd272b5099b";

    #[test]
    fn discord_puts_the_board_beside_the_codearts_link_within_five_a_row() {
        let rows = discord_components(
            Some(&card()),
            Some("https://console.example/j/1"),
            Some(BOARD),
        )
        .unwrap();
        let first = rows[0]["components"].as_array().unwrap();
        assert_eq!(first.len(), 4, "Re-run, Ack, CodeArts, board: {first:?}");
        assert_eq!(first[2]["label"], "Open in CodeArts");
        assert_eq!(first[3]["label"], "Open on the board");
        assert_eq!(first[3]["url"], BOARD);
        assert_eq!(first[3]["style"], LINK);
        // With Stop too the first row is full at five; nothing spills past Discord's limit.
        let mut with_stop = card();
        with_stop
            .ids
            .push((ButtonAction::Stop, format!("{:032x}", 99)));
        let link = Some("https://console.example/j/1");
        let rows = discord_components(Some(&with_stop), link, Some(BOARD)).unwrap();
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        for row in rows.as_array().unwrap() {
            assert!(row["components"].as_array().unwrap().len() <= DISCORD_ROW_MAX);
        }
        // A storm summary: no buttons, no CodeArts link, only the board.
        let only = discord_components(None, None, Some(BOARD)).unwrap();
        assert_eq!(only[0]["components"][0]["url"], BOARD);
        // Not a usable URL, or past Discord's 512: left out.
        let long = format!("https://bot.example/?jobs={}", "a".repeat(DISCORD_URL_MAX));
        for bad in ["javascript:alert(1)", long.as_str()] {
            assert_eq!(discord_components(None, None, Some(bad)), None, "{bad}");
        }
        assert_eq!(discord_components(None, None, None), None);
    }

    #[test]
    fn slack_adds_the_board_as_a_url_button_even_without_other_buttons() {
        let block = slack_actions(Some(&card()), None, Some(BOARD)).unwrap();
        let elements = block["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 6);
        assert_eq!(elements[5]["url"], BOARD);
        assert_eq!(elements[5]["text"]["text"], "Open on the board");
        let only = slack_actions(None, None, Some(BOARD)).unwrap();
        assert_eq!(only["elements"].as_array().unwrap().len(), 1);
        assert_eq!(only["elements"][0]["action_id"], "board");
        let long = format!("https://bot.example/?jobs={}", "a".repeat(SLACK_URL_MAX));
        assert_eq!(slack_actions(None, None, Some(&long)), None);
        assert_eq!(slack_actions(None, None, Some("ftp://x")), None);
        // Without a board link, the block is exactly as before.
        assert_eq!(
            slack_actions(Some(&card()), None, None),
            slack_actions(Some(&card()), None, Some("not a url"))
        );
    }
}
