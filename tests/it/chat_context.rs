//! Failure context in chat: a failed build made through the simulator's control API, one
//! cycle (event, context fetch, delivery), then `/job` shows why it failed and `/log` answers
//! the build log's tail, redacted and only to the invoker, on the Discord endpoint, the
//! gateway path (serenity's client against the capture server) and Slack.

use std::time::Duration;

use serde_json::{Value, json};

use crate::chat::{Bot, command};
use crate::support::harness::tick;
use codearts_bot::chat::{Chat, gateway};
use codearts_bot::sim;

const COMMIT: &str = "c0ffee1234567890abcdef1234567890abcdef12";

/// A log whose last lines hold a password and a mention.
fn log() -> String {
    let mut lines: Vec<String> = (1..=10).map(|i| format!("line{i}")).collect();
    lines.push("password=hunter2".to_owned());
    lines.push("[ERROR] compile failed, paging @everyone".to_owned());
    lines.join("\n")
}

/// Job `job`'s next build, failed in its `compile` stage, run by alice on main.
async fn failed_build(bot: &Bot, job: &str) -> u32 {
    bot.sim
        .control()
        .create_build(
            job,
            json!({
                "status": "failed", "branch": "main", "commit": COMMIT, "user": "alice",
                "stages": [{"name": "checkout", "status": "success", "duration_ms": 2000},
                           {"name": "compile", "status": "failed", "duration_ms": 72000}],
                "log": log(),
            }),
        )
        .await
        .expect("the simulator makes the build")
        .build_no
}

/// No password, and no mention that could ping (the `@` is followed by a zero-width space).
fn assert_scrubbed(text: &str) {
    assert!(!text.contains("hunter2"), "a password shown: {text}");
    assert!(!text.contains("@everyone"), "a live mention: {text}");
}

fn id_option(job: &str) -> Value {
    json!([{"name": "id", "type": 3, "value": job}])
}

#[tokio::test]
async fn job_shows_why_the_last_build_failed_on_discord_and_slack() {
    // No shared answer cache: the card after the recovery must see the new status.
    let bot = Bot::start_with(|config| config.commands.cache_secs = 0).await;
    let job = bot.job(0);
    bot.app
        .store
        .watch_from_chat(&sim::seeded_job_id(0), None)
        .await
        .unwrap();
    tick(&bot.app).await; // baseline
    let build_no = failed_build(&bot, &job).await;
    let report = tick(&bot.app).await;
    assert_eq!(report.events, 1, "the failure is an event");
    let stored = bot
        .app
        .store
        .last_failure_context(&sim::seeded_job_id(0))
        .await
        .unwrap()
        .expect("the cycle fetched the context");
    assert_eq!(stored.build_no, Some(build_no));

    let (_, answer) = bot.discord(command("job", id_option(&job))).await;
    let embed = &answer["data"]["embeds"][0];
    let fields = embed["fields"].to_string();
    for part in [
        "Failed stage (build #",
        "compile (1 m 12 s)",
        "main",
        &COMMIT[..8],
        "alice",
    ] {
        assert!(fields.contains(part), "{part} missing: {fields}");
    }
    let description = embed["description"].as_str().unwrap_or_default();
    assert!(description.contains("```"), "a code block: {description}");
    assert!(
        description.contains("line10") && description.contains("password=[redacted]"),
        "{description}"
    );
    assert_scrubbed(&answer.to_string());
    assert!(answer["data"].get("flags").is_none(), "a card is public");

    let answer = bot.slack("/codearts", &format!("job {job}"), "U1").await;
    assert_eq!(answer["response_type"], "in_channel");
    let blocks = answer["blocks"].to_string();
    for part in [
        "Last failure: build #",
        "compile",
        "main",
        &COMMIT[..8],
        "alice",
        "```",
    ] {
        assert!(blocks.contains(part), "{part} missing: {blocks}");
    }
    assert_scrubbed(&blocks);

    // Once the job recovers, the card no longer shows the old failure as current.
    bot.sim
        .control()
        .create_build(&job, json!({"status": "success"}))
        .await
        .unwrap();
    let (_, answer) = bot.discord(command("job", id_option(&job))).await;
    let fields = answer["data"]["embeds"][0]["fields"].to_string();
    assert!(!fields.contains("Failed stage"), "{fields}");
}

#[tokio::test]
async fn log_answers_the_last_builds_tail_redacted_and_only_to_the_invoker() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    let build_no = failed_build(&bot, &job).await;
    let headline = format!("Last 5 lines of build #{build_no}");

    // Discord, HTTP interactions.
    let options = json!([{"name": "id", "type": 3, "value": job},
                         {"name": "lines", "type": 4, "value": 5}]);
    let (status, answer) = bot.discord(command("log", options.clone())).await;
    assert_eq!((status, answer["type"].clone()), (200, json!(4)));
    assert_eq!(answer["data"]["flags"], 64, "only the invoker sees a log");
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(content.contains(&headline), "{content}");
    let block = content.split("```").nth(1).unwrap_or_default();
    assert_eq!(block.trim().lines().count(), 5, "{content}");
    assert!(
        block.contains("line8") && !block.contains("line7"),
        "{content}"
    );
    assert!(content.contains("password=[redacted]"), "{content}");
    assert_scrubbed(content);

    // Slack, both command forms; the default count is context.log_lines (20), and this log
    // has 12 lines.
    let answer = bot.slack("/codearts", &format!("log {job} 5"), "U1").await;
    assert_eq!(answer["response_type"], "ephemeral");
    let blocks = answer["blocks"].to_string();
    assert!(blocks.contains(&headline), "{blocks}");
    assert!(
        blocks.contains("line8") && !blocks.contains("line7"),
        "{blocks}"
    );
    assert_scrubbed(&blocks);
    let answer = bot.slack("/log", &job, "U1").await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        answer["blocks"]
            .to_string()
            .contains(&format!("Last 12 lines of build #{build_no}")),
        "{answer}"
    );

    // The gateway: the same handler, answered through serenity's client.
    let http = serenity::http::HttpBuilder::new("bot-token-for-tests")
        .proxy(bot.capture.url(""))
        .ratelimiter_disabled(true)
        .application_id(serenity::all::ApplicationId::new(1_200_000_000_000_000_002))
        .build();
    let raw = json!({
        "id": "1100000000000000001", "application_id": "1200000000000000002", "type": 2,
        "token": "gateway-token", "version": 1, "locale": "en-US",
        "guild_id": "1300000000000000003", "channel_id": "1400000000000000004",
        "member": {"user": {"id": "1500000000000000005", "username": "oncall", "discriminator": "0",
                            "global_name": null, "avatar": null},
                   "roles": [], "joined_at": "2024-01-01T00:00:00Z", "deaf": false, "mute": false,
                   "flags": 0},
        "data": {"id": "1800000000000000008", "name": "log", "type": 1, "options": options},
        "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
        "attachment_size_limit": 8_388_608,
    });
    let interaction: serenity::all::CommandInteraction =
        serde_json::from_value(raw).expect("serenity reads the gateway payload");
    let ours = gateway::from_serenity(&interaction, 2);
    gateway::respond(&Chat::new(bot.app.clone()), &http, &ours)
        .await
        .expect("the callback reaches the capture server");
    let sent = bot.capture.requests();
    let body = sent.last().expect("a callback").json();
    assert_eq!(body["type"], 4);
    assert_eq!(body["data"]["flags"], 64);
    let content = body["data"]["content"].as_str().unwrap_or_default();
    assert!(content.contains(&headline), "{body}");
    assert_scrubbed(content);
}

#[tokio::test]
async fn log_explains_a_bad_id_a_job_without_builds_and_an_unknown_job() {
    let bot = Bot::start().await;
    let before = bot.sim.control().stats().await.unwrap()["requests"].clone();
    let (_, answer) = bot.discord(command("log", id_option("12345"))).await;
    assert_eq!(answer["data"]["flags"], 64);
    let text = answer["data"]["content"].as_str().unwrap();
    assert!(text.contains("not a job id"), "{text}");
    let answer = bot.slack("/codearts", "log nope 5", "U1").await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(answer["text"].as_str().unwrap().contains("not a job id"));
    assert_eq!(
        bot.sim.control().stats().await.unwrap()["requests"],
        before,
        "no call for an id that cannot be one"
    );

    // The seeded job has never been built.
    let answer = bot.slack("/log", &bot.job(1), "U1").await;
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(
        answer["text"].as_str().unwrap().contains("no build yet"),
        "{answer}"
    );

    let answer = bot.slack("/log", &"0".repeat(32), "U1").await;
    assert!(answer["text"].as_str().unwrap().contains("404"), "{answer}");
}

#[tokio::test]
async fn a_slow_log_is_deferred_ephemerally() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    failed_build(&bot, &job).await;
    bot.sim
        .control()
        .set_fault(json!({"delay_ms": 2600, "count": 1}))
        .await
        .unwrap();
    let (_, answer) = bot.discord(command("log", id_option(&job))).await;
    assert_eq!(answer, json!({"type": 5, "data": {"flags": 64}}));
    let edits = bot.capture.wait_for(1, Duration::from_secs(6)).await;
    assert_eq!(edits[0].method, "PATCH");
    let content = edits[0].json()["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(content.contains("Last 12 lines of build #"), "{content}");
    assert_scrubbed(&content);
}
