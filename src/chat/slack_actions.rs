//! Slack button clicks at `POST /slack/interactions` (the app's Interactivity Request URL;
//! docs/actions.md, "Buttons").
//!
//! Verified exactly like slash commands ([`super::slack::verify`]): a bad signature or stale
//! timestamp gets 401 and nothing is read. The form's `payload` field is the JSON of a
//! `block_actions` interaction. The bot answers 200 at once (Slack wants it within 3 s) and
//! tells the outcome through the payload's `response_url`: the card replaced with what was
//! done under it (`replace_original`), or a message only the clicker sees. Re-run and Stop
//! were confirmed in Slack's own dialog before the click arrived.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::buttons::{Pressed, press};
use super::handler::Chat;
use super::invoker::Invoker;
use super::late::follow_up_client;
use super::signed::{read_body, unauthorized};
use super::slack::{refused_because, verify};
use crate::domain::buttons::ID_PREFIX;
use crate::notify::escape::slack_safe;
use crate::util::secret::Secret;

/// Largest interaction accepted: the payload repeats the clicked message's blocks.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Slack's limit on blocks in a message.
const BLOCKS_MAX: usize = 50;

#[derive(Deserialize)]
struct Form {
    payload: String,
}

/// The parts of a `block_actions` payload the bot reads.
#[derive(Debug, Default, Deserialize)]
pub struct BlockActions {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub user: SlackUser,
    pub team: Option<SlackId>,
    pub channel: Option<SlackId>,
    #[serde(default)]
    pub actions: Vec<SlackAction>,
    #[serde(default)]
    pub response_url: String,
    pub message: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SlackUser {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SlackId {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct SlackAction {
    #[serde(default)]
    pub action_id: String,
}

impl BlockActions {
    pub fn invoker(&self) -> Invoker {
        Invoker {
            transport: "slack",
            user: self.user.id.clone(),
            name: self
                .user
                .username
                .clone()
                .or_else(|| self.user.name.clone())
                .filter(|n| !n.is_empty()),
            space: self.team.as_ref().map(|t| t.id.clone()),
            channel: self.channel.as_ref().map(|c| c.id.clone()),
            roles: Vec::new(),
        }
    }
}

/// `POST /slack/interactions`, when `[slack] signing_secret` is set.
pub fn routes(chat: Chat, signing_secret: Secret) -> Router {
    Router::new()
        .route("/slack/interactions", post(interactions))
        .with_state(Endpoint {
            chat,
            signing_secret,
            follow_ups: follow_up_client(),
        })
}

#[derive(Clone)]
struct Endpoint {
    chat: Chat,
    signing_secret: Secret,
    follow_ups: reqwest::Client,
}

async fn interactions(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(why) => return unauthorized("slack", why),
    };
    let secret = endpoint.signing_secret.expose().as_bytes();
    if let Err(why) = verify(secret, &headers, &body, Utc::now().timestamp()) {
        return unauthorized("slack", why);
    }
    let payload = serde_urlencoded::from_bytes::<Form>(&body)
        .ok()
        .and_then(|f| serde_json::from_str::<BlockActions>(&f.payload).ok());
    let Some(payload) = payload else {
        warn!("a signed Slack interaction is not a form with a JSON payload");
        return (StatusCode::BAD_REQUEST, "not an interaction payload").into_response();
    };
    // Only clicks on the bot's own buttons act; the link button's click is acknowledged.
    let ours = payload
        .actions
        .iter()
        .find(|a| a.action_id.starts_with(ID_PREFIX))
        .map(|a| a.action_id.clone());
    if payload.kind != "block_actions" || ours.is_none() {
        return StatusCode::OK.into_response();
    }
    let custom_id = ours.unwrap_or_default();
    tokio::spawn(async move {
        let who = payload.invoker();
        let chat = &endpoint.chat;
        let pressed = press(chat, &who, &custom_id, false, None, |command| {
            refused_because(chat, &who, command)
        })
        .await;
        if payload.response_url.is_empty() {
            return;
        }
        let answer = answer(&pressed, payload.message.as_ref());
        let sent = endpoint
            .follow_ups
            .post(&payload.response_url)
            .json(&answer)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => warn!(
                status = r.status().as_u16(),
                "Slack refused the button's answer"
            ),
            Err(e) => {
                warn!(error = %crate::util::http::without_url(&e), "cannot send the button's answer to Slack")
            }
        }
    });
    StatusCode::OK.into_response()
}

/// What the `response_url` gets: the card with the outcome under it, or a private message.
pub fn answer(pressed: &Pressed, message: Option<&Value>) -> Value {
    match pressed {
        Pressed::Done { line, .. } => {
            let mut blocks = message
                .and_then(|m| m["blocks"].as_array().cloned())
                .unwrap_or_default();
            let note = json!({"type": "context", "elements": [
                {"type": "mrkdwn", "text": slack_safe(line)}
            ]});
            if blocks.len() >= BLOCKS_MAX {
                blocks.truncate(BLOCKS_MAX - 1);
            }
            blocks.push(note);
            let text = message.and_then(|m| m["text"].as_str()).unwrap_or_default();
            json!({"replace_original": true, "text": text, "blocks": blocks})
        }
        Pressed::Private(text) | Pressed::Confirm { question: text, .. } => json!({
            "response_type": "ephemeral",
            "replace_original": false,
            "text": slack_safe(text),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_is_replaced_with_the_outcome_under_it() {
        let message = json!({"text": "web failed", "blocks": [{"type": "header"}]});
        let done = Pressed::Done {
            line: "Muted 1 h by @bob".into(),
            origin: None,
        };
        let answer = answer(&done, Some(&message));
        assert_eq!(answer["replace_original"], true);
        assert_eq!(answer["blocks"].as_array().unwrap().len(), 2);
        // A name never becomes a mention.
        assert_eq!(
            answer["blocks"][1]["elements"][0]["text"],
            "Muted 1 h by @\u{200b}bob"
        );
        let private = super::answer(&Pressed::Private("expired".into()), Some(&message));
        assert_eq!(private["response_type"], "ephemeral");
        assert_eq!(private["replace_original"], false);
    }

    #[test]
    fn a_block_actions_payload_names_the_clicker() {
        let payload: BlockActions = serde_json::from_value(json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "bob"},
            "team": {"id": "T1"},
            "channel": {"id": "C1"},
            "actions": [{"action_id": "cb1:abc", "type": "button"}],
            "response_url": "https://hooks.slack.com/actions/1",
        }))
        .unwrap();
        let who = payload.invoker();
        assert_eq!((who.user.as_str(), who.shown().as_str()), ("U1", "@bob"));
        assert_eq!(who.space.as_deref(), Some("T1"));
    }
}
