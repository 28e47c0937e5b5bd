//! Discord's HTTP interactions endpoint, `POST /discord/interactions` (with `[discord]
//! public_key`): every request verified first ([`super::discord::verify`]), then a PING, a
//! command, an autocomplete or a button click answered with the same handler and rendering as
//! the gateway.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::post};
use chrono::Utc;
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use tracing::warn;

use super::discord::{
    Interaction, MAX_BODY_BYTES, answer, autocomplete, deferral, original_url, render, verify,
};
use super::handler::Chat;
use super::late::{answer_later, deadline, follow_up_client};
use super::signed::{read_body, unauthorized};

/// `POST /discord/interactions`, when `[discord] public_key` is set.
pub fn routes(chat: Chat, key: VerifyingKey) -> Router {
    let follow_ups = follow_up_client();
    Router::new()
        .route("/discord/interactions", post(interactions))
        .with_state(Endpoint {
            chat,
            key,
            follow_ups,
        })
}

#[derive(Clone)]
struct Endpoint {
    chat: Chat,
    key: VerifyingKey,
    follow_ups: reqwest::Client,
}

async fn interactions(
    State(endpoint): State<Endpoint>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let body = match read_body(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(why) => return unauthorized("discord", why),
    };
    if let Err(why) = verify(&endpoint.key, &headers, &body, Utc::now().timestamp()) {
        return unauthorized("discord", why);
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            warn!(error = %e, "a signed Discord interaction is not the documented JSON");
            return (StatusCode::BAD_REQUEST, "not an interaction").into_response();
        }
    };
    match interaction.kind {
        1 => Json(json!({"type": 1})).into_response(),
        2 => Json(command_response(&endpoint, interaction).await).into_response(),
        3 => Json(super::discord_buttons::answer_in_time(&endpoint.chat, &interaction).await)
            .into_response(),
        4 => Json(autocomplete(&endpoint.chat, &interaction).await).into_response(),
        other => {
            warn!(kind = other, "unsupported Discord interaction type");
            (StatusCode::BAD_REQUEST, "unsupported interaction type").into_response()
        }
    }
}

/// Answers within [`super::late::DEFER_AFTER`] with the reply (type 4), or defers (type 5) and edits the
/// original response when the command finishes.
async fn command_response(endpoint: &Endpoint, interaction: Interaction) -> Value {
    let chat = endpoint.chat.clone();
    let task = {
        let interaction = interaction.clone();
        tokio::spawn(async move { answer(&chat, &interaction).await })
    };
    let task = match deadline(task).await {
        Ok(reply) => return json!({"type": 4, "data": render(&reply)}),
        Err(task) => task,
    };
    let client = endpoint.follow_ups.clone();
    let url = original_url(&endpoint.chat, &interaction);
    answer_later(task, "discord", move |reply| {
        client.patch(url).json(&render(reply))
    });
    deferral(&interaction)
}
