//! Buttons on cards (issue #15): a click on Discord (a signed component interaction) or Slack
//! (a signed `block_actions` form) does what the button says, once, for whoever may, and the
//! card shows it. The incident follows the re-run build to its end.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::{Bot, command};
use crate::support::capture::Reply;
use crate::support::harness::{discord_bot_channel, tick};

const ACTIONS_ROLE: &str = "1600000000000000006";
const CHANNEL: &str = "123456789012345678";
const MESSAGE_ID: &str = "555000000000000001";
const COMMIT: &str = "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a";
const ALICE: &str = "1500000000000000005";
const BOB: &str = "1500000000000000099";

/// A bot posting to a `discord_bot` channel, actions allowed to [`ACTIONS_ROLE`].
async fn discord_bot() -> Bot {
    Bot::start_with(|config| {
        let base = config.discord.api_base.clone().unwrap();
        discord_bot_channel(config, &base);
        config.discord.gateway = false;
        config.discord.actions_roles = vec![ACTIONS_ROLE.to_owned()];
    })
    .await
}

/// Watches job 0, fails its build (commit and parameters), and returns the posted card.
async fn failure_card(bot: &Bot) -> (String, u32, Value) {
    let job = bot.job(0);
    bot.discord(command("watch", json!([{"name": "id", "value": job}])))
        .await;
    tick(&bot.app).await;
    bot.sim
        .control()
        .put_job(
            &job,
            json!({"_sim_build_ms": 300, "_sim_next_result": "success"}),
        )
        .await
        .unwrap();
    let failed = bot
        .sim
        .control()
        .create_build(
            &job,
            json!({"status": "failed", "commit": COMMIT, "user": "alice",
                   "parameters": [{"name": "TARGET", "value": "staging"}]}),
        )
        .await
        .unwrap()
        .build_no;
    bot.capture.script(vec![Reply::json(
        200,
        json!({"id": MESSAGE_ID, "channel_id": CHANNEL, "type": 0}),
    )]);
    tick(&bot.app).await;
    let card = bot
        .capture
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .expect("the failure was posted")
        .json();
    (job, failed, card)
}

/// The custom id of the card's button labelled `label`.
fn button(card: &Value, label: &str) -> String {
    card["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .find(|b| b["label"] == label)
        .and_then(|b| b["custom_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no {label} button on {card}"))
}

/// A click on `custom_id` of `message` by `user`, with or without the actions role.
fn click(custom_id: &str, message: &Value, user: &str, name: &str, role: bool) -> Value {
    json!({
        "type": 3, "id": "1100000000000000001", "application_id": "1200000000000000002",
        "token": "interaction-token", "guild_id": "1300000000000000003", "channel_id": CHANNEL,
        "member": {"user": {"id": user, "username": name},
                   "roles": if role { vec![ACTIONS_ROLE] } else { Vec::new() }},
        "data": {"custom_id": custom_id, "component_type": 2},
        "message": message,
    })
}

/// The card as Discord shows it to a click: the posted message with its id.
fn shown(card: &Value) -> Value {
    json!({"id": MESSAGE_ID, "channel_id": CHANNEL, "flags": 0,
           "embeds": card["embeds"], "components": card["components"]})
}

/// The ephemeral confirmation as Discord shows it to the next click.
fn confirmation(answer: &Value) -> Value {
    json!({"id": "777000000000000001", "flags": 64, "content": answer["data"]["content"],
           "components": answer["data"]["components"]})
}

async fn executed(bot: &Bot) -> u64 {
    let by_api = bot.sim.control().by_api().await.unwrap();
    by_api.get("ExecuteJob").copied().unwrap_or(0)
}

/// What the reader sees: the zero-width spaces that keep `@name` from pinging removed.
fn seen(value: &Value) -> String {
    value
        .to_string()
        .replace("\\u200b", "")
        .replace('\u{200b}', "")
}

#[tokio::test]
async fn rerun_from_the_card_confirms_runs_once_and_the_incident_follows_the_build() {
    let bot = discord_bot().await;
    let (job, failed, card) = failure_card(&bot).await;
    let rerun = button(&card, "Re-run");
    for id in ["Re-run", "Ack", "Mute 1 h", "Mute 4 h", "Mute until 09:00"] {
        let custom = button(&card, id);
        assert!(
            custom.starts_with("cb1:") && !custom.contains(&job),
            "opaque: {custom}"
        );
    }

    // The first click asks, only the clicker sees it, and nothing runs yet.
    let (status, ask) = bot
        .discord(click(&rerun, &shown(&card), ALICE, "alice", true))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (ask["type"].clone(), ask["data"]["flags"].clone()),
        (json!(4), json!(64))
    );
    assert!(seen(&ask).contains("Re-run the last build of"), "{ask}");
    assert_eq!(executed(&bot).await, 0);

    // Confirming runs the failed build's commit once and updates the confirmation (type 7).
    let confirm = ask["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, done) = bot
        .discord(click(&confirm, &confirmation(&ask), ALICE, "alice", true))
        .await;
    assert_eq!(done["type"], 7, "{done}");
    let text = seen(&done["data"]["content"]);
    assert!(
        text.contains("by @alice") && text.contains(&format!("build #{}", failed + 1)),
        "{text}"
    );
    assert_eq!(executed(&bot).await, 1);
    let builds = bot.sim.control().builds(&job).await.unwrap();
    assert_eq!(builds.last().unwrap()["commit"], COMMIT);

    // The card itself now says so (edited with the bot's token).
    let card_path = format!("/api/v10/channels/{CHANNEL}/messages/{MESSAGE_ID}");
    let edits: Vec<Value> = bot
        .capture
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == card_path)
        .map(|r| r.json())
        .collect();
    assert!(
        edits
            .iter()
            .any(|e| seen(e).contains("Done here") && seen(e).contains("by @alice")),
        "{edits:?}"
    );

    // The re-run succeeds: the incident's message is edited to resolved, its buttons gone.
    tokio::time::sleep(Duration::from_millis(700)).await;
    tick(&bot.app).await;
    let resolved = bot
        .capture
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == card_path)
        .map(|r| r.json())
        .find(|e| e.to_string().contains("Incident resolved"))
        .unwrap_or_else(|| panic!("no resolved edit in {:?}", bot.capture.requests()));
    assert!(
        !resolved["components"].to_string().contains("cb1:"),
        "a resolved card keeps only its link: {}",
        resolved["components"]
    );
}

#[tokio::test]
async fn a_click_without_the_role_is_refused_privately_and_runs_nothing() {
    let bot = discord_bot().await;
    let (_, _, card) = failure_card(&bot).await;
    let (_, answer) = bot
        .discord(click(
            &button(&card, "Re-run"),
            &shown(&card),
            BOB,
            "bob",
            false,
        ))
        .await;
    assert_eq!(
        (answer["type"].clone(), answer["data"]["flags"].clone()),
        (json!(4), json!(64))
    );
    assert!(seen(&answer).contains("actions roles"), "{answer}");
    assert!(answer["data"].get("components").is_none());
    assert_eq!(executed(&bot).await, 0);

    // An id the store does not know: expired, privately.
    let (_, answer) = bot
        .discord(click(
            "cb1:00000000000000000000000000000000",
            &shown(&card),
            ALICE,
            "alice",
            true,
        ))
        .await;
    assert!(
        seen(&answer).contains("This button has expired"),
        "{answer}"
    );
    assert_eq!(answer["data"]["flags"], 64);
}

#[tokio::test]
async fn two_confirmations_50_ms_apart_run_one_build_and_the_second_names_the_first() {
    let bot = discord_bot().await;
    let (_, failed, card) = failure_card(&bot).await;
    let rerun = button(&card, "Re-run");
    let ask = |user: &'static str, name: &'static str| {
        let bot = &bot;
        let card = &card;
        let rerun = &rerun;
        async move {
            let (_, ask) = bot
                .discord(click(rerun, &shown(card), user, name, true))
                .await;
            let id = ask["data"]["components"][0]["components"][0]["custom_id"]
                .as_str()
                .unwrap()
                .to_owned();
            (id, confirmation(&ask))
        }
    };
    let (alice_id, alice_msg) = ask(ALICE, "alice").await;
    let (bob_id, bob_msg) = ask(BOB, "bob").await;

    // Bob cannot use Alice's confirmation.
    let (_, theirs) = bot
        .discord(click(&alice_id, &alice_msg, BOB, "bob", true))
        .await;
    assert!(
        seen(&theirs).contains("belongs to whoever clicked first"),
        "{theirs}"
    );

    let (first, second) = tokio::join!(
        bot.discord(click(&alice_id, &alice_msg, ALICE, "alice", true)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bot.discord(click(&bob_id, &bob_msg, BOB, "bob", true))
                .await
        }
    );
    assert_eq!(executed(&bot).await, 1, "one ExecuteJob for two clicks");
    assert!(seen(&first.1).contains("by @alice"), "{}", first.1);
    let second = seen(&second.1);
    assert!(
        second.contains("already re-run by @alice")
            && second.contains(&format!("build #{}", failed + 1)),
        "{second}"
    );
}

#[tokio::test]
async fn slack_mute_button_silences_the_job_and_replaces_the_card_and_a_forged_click_does_nothing()
{
    let bot = Bot::start_with(|config| {
        let hook = format!(
            "{}/slack-hook",
            config
                .discord
                .api_base
                .clone()
                .unwrap()
                .trim_end_matches('/')
        );
        config.channels.push(
            toml::from_str(&format!(
                "name = \"team\"\ntype = \"slack\"\nurl = \"{hook}\""
            ))
            .unwrap(),
        );
    })
    .await;
    let job = bot.job(0);
    bot.discord(command("watch", json!([{"name": "id", "value": job}])))
        .await;
    tick(&bot.app).await;
    bot.fail(&job, 9_000_000_000_000).await;
    tick(&bot.app).await;
    let card = bot
        .capture
        .requests()
        .into_iter()
        .find(|r| r.path == "/slack-hook")
        .expect("the failure reached Slack")
        .json();
    let actions = card["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap_or_else(|| panic!("no buttons on {card}"))
        .clone();
    let mute = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["text"]["text"] == "Mute 1 h")
        .and_then(|e| e["action_id"].as_str())
        .unwrap()
        .to_owned();
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0BOB", "username": "bob"},
        "team": {"id": "T1"}, "channel": {"id": "C1"},
        "actions": [{"action_id": mute, "type": "button"}],
        "response_url": bot.capture.url("/slack-response"),
        "message": {"text": card["text"], "blocks": card["blocks"]},
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let now = chrono::Utc::now().timestamp();

    // Forged: the body changed after signing.
    let forged = bot
        .slack_signed("/slack/interactions", &body, now, true)
        .await;
    assert_eq!(forged.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(bot.app.store.open_silences().await.unwrap().is_empty());

    let signed = bot
        .slack_signed("/slack/interactions", &body, now, false)
        .await;
    assert_eq!(signed.status(), 200);
    let answer = bot
        .capture
        .wait_for_path("/slack-response", Duration::from_secs(5))
        .await
        .json();
    assert_eq!(answer["replace_original"], true, "{answer}");
    let last = answer["blocks"].as_array().unwrap().last().unwrap().clone();
    assert!(seen(&last).contains("Muted 1 h by @bob"), "{last}");
    let silences = bot.app.store.open_silences().await.unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].created_by, "slack:U0BOB");
    let left = silences[0].expires_at - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(58) && left <= chrono::Duration::minutes(60),
        "{left}"
    );
}

#[tokio::test]
async fn a_slow_rerun_is_deferred_then_edited_into_the_confirmation() {
    let bot = discord_bot().await;
    let (_, failed, card) = failure_card(&bot).await;
    let (_, ask) = bot
        .discord(click(
            &button(&card, "Re-run"),
            &shown(&card),
            ALICE,
            "alice",
            true,
        ))
        .await;
    let confirm = ask["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // CodeArts takes 2.6 s to start the build: past Discord's window for a direct answer.
    bot.sim
        .control()
        .set_fault(json!({"delay_ms": 2600, "api": "ExecuteJob"}))
        .await
        .unwrap();
    let (_, deferred) = bot
        .discord(click(&confirm, &confirmation(&ask), ALICE, "alice", true))
        .await;
    assert_eq!(deferred, json!({"type": 6}));
    let original = "/api/v10/webhooks/1200000000000000002/interaction-token/messages/@original";
    let edit = bot
        .capture
        .wait_for_path(original, Duration::from_secs(10))
        .await;
    assert_eq!(edit.method, "PATCH");
    let text = seen(&edit.json());
    assert!(text.contains(&format!("build #{}", failed + 1)), "{text}");
    assert_eq!(executed(&bot).await, 1);
}
