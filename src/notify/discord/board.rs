//! The board's link on a Discord embed of a grouped message. A card of its own carries it as
//! a link button beside "Open in CodeArts" ([`crate::notify::buttons::discord_components`]);
//! a grouped message has no buttons, and its embed's title link is CodeArts', so the board
//! is a field of its own there.

use super::{Embed, FIELDS_MAX, Field};
use crate::notify::buttons::DISCORD_URL_MAX;
use crate::notify::escape;
use crate::notify::outgoing::BOARD_LABEL;
use crate::util::text::utf16_len;

impl Embed {
    /// Appends a "Board" field linking `board`, when it is a usable URL and the embed's share
    /// of the message (`budget`) has room for it whole: a cut link would lead nowhere, so it is
    /// added after the embed was fitted, never shortened.
    pub(super) fn add_board_field(&mut self, board: Option<&str>, budget: usize) {
        let Some(url) = escape::valid_link(board).filter(|u| u.len() <= DISCORD_URL_MAX) else {
            return;
        };
        let field = Field {
            name: "Board".to_owned(),
            value: format!("[{BOARD_LABEL}]({})", escape::markdown_url(&url)),
            inline: false,
        };
        let size = utf16_len(&field.name) + utf16_len(&field.value);
        if self.fields.len() < FIELDS_MAX && self.total() + size <= budget {
            self.fields.push(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::notify::discord::{EMBEDS_TOTAL_MAX, render, render_batch};
    use crate::notify::outgoing::{Outgoing, TEST_BOARD, test_event, with_board as out};

    const BOARD: &str = TEST_BOARD;

    fn board_fields(embed: &Value) -> Vec<&Value> {
        embed["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["name"] == "Board")
            .collect()
    }

    #[test]
    fn a_card_of_its_own_links_the_board_with_a_button_beside_codearts() {
        let ev = test_event("web");
        let msg = render(&out(&ev, Some(BOARD)));
        let row = msg["components"][0]["components"].as_array().unwrap();
        assert_eq!(row.len(), 2, "{row:?}");
        assert_eq!(row[0]["label"], "Open in CodeArts");
        assert_eq!(row[1]["label"], "Open on the board");
        assert_eq!(row[1]["url"], BOARD);
        assert!(
            board_fields(&msg["embeds"][0]).is_empty(),
            "the button is enough"
        );
        // Absent, or not a usable URL: the card is exactly what it was without a board.
        let without = render(&out(&ev, None));
        assert_eq!(
            without["components"][0]["components"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(render(&out(&ev, Some("javascript:alert(1)"))), without);
    }

    #[test]
    fn a_grouped_message_links_the_board_in_each_embed_within_the_total() {
        let ev = test_event("web");
        let batch = [out(&ev, Some(BOARD)), out(&ev, Some(BOARD))];
        let msg = render_batch(&batch);
        for embed in msg["embeds"].as_array().unwrap() {
            let fields = board_fields(embed);
            assert_eq!(fields.len(), 1, "{embed}");
            assert_eq!(fields[0]["value"], format!("[Open on the board]({BOARD})"));
        }
        let plain = [out(&ev, None), out(&ev, None)];
        assert!(
            render_batch(&plain)["embeds"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| board_fields(e).is_empty())
        );
        // Ten embeds of huge names: the total holds; a link is added whole or not at all.
        let huge = test_event(&"n🔥".repeat(300));
        let batch: Vec<Outgoing<'_>> = (0..10).map(|_| out(&huge, Some(BOARD))).collect();
        let msg = render_batch(&batch);
        let total: usize = msg["embeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let text = |v: &Value| v.as_str().map_or(0, |s| s.encode_utf16().count());
                text(&e["title"])
                    + text(&e["description"])
                    + text(&e["footer"]["text"])
                    + e["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| text(&f["name"]) + text(&f["value"]))
                        .sum::<usize>()
            })
            .sum();
        assert!(total <= EMBEDS_TOTAL_MAX, "{total}");
        for embed in msg["embeds"].as_array().unwrap() {
            for field in board_fields(embed) {
                assert_eq!(field["value"], format!("[Open on the board]({BOARD})"));
            }
        }
    }
}
