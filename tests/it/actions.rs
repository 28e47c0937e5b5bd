//! Acting on CodeArts from chat: `/rerun` runs the last build again with its commit and
//! parameters (once, however many ask), `/stop` aborts a running build, only for the roles
//! allowed, and every action is in the audit trail.

use std::time::Duration;

use codearts_bot::codearts::JobId;
use codearts_bot::store::{Begun, NewAction};
use serde_json::{Value, json};

use crate::chat::{Bot, command};

const ACTIONS_ROLE: &str = "1600000000000000006"; // the role `command()` gives its member
const COMMIT: &str = "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a";

async fn bot_with_actions() -> Bot {
    Bot::start_with(|config| {
        config.discord.actions_roles = vec![ACTIONS_ROLE.to_owned()];
        config.slack.actions_users = vec!["U0ACTOR".to_owned()];
    })
    .await
}

/// A failed build with a commit and parameters: the build `/rerun` runs again.
async fn failed_build(bot: &Bot, job: &str) -> u32 {
    bot.sim
        .control()
        .create_build(
            job,
            json!({"status": "failed", "commit": COMMIT, "user": "alice",
                   "parameters": [{"name": "codeBranch", "value": "main"},
                                  {"name": "TARGET", "value": "staging"}]}),
        )
        .await
        .unwrap()
        .build_no
}

async fn calls(bot: &Bot, api: &str) -> u64 {
    bot.sim
        .control()
        .by_api()
        .await
        .unwrap()
        .get(api)
        .copied()
        .unwrap_or(0)
}

/// A signed Slack slash command from a named user.
async fn slack_as(bot: &Bot, command: &str, text: &str, user: &str, name: &str) -> Value {
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", user),
        ("user_name", name),
        ("command", command),
        ("text", text),
    ])
    .unwrap();
    let response = bot.slack_raw(&body, chrono::Utc::now().timestamp()).await;
    response.json().await.unwrap()
}

/// What the reader sees: the zero-width spaces that keep `@name` from pinging removed.
fn seen(text: &str) -> String {
    text.replace('\u{200b}', "").replace("\\_", "_")
}

fn content(answer: &Value) -> String {
    seen(answer["data"]["content"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn rerun_runs_the_failed_builds_commit_and_parameters_once_however_many_ask() {
    let bot = bot_with_actions().await;
    let job = bot.job(0);
    let failed = failed_build(&bot, &job).await;
    bot.sim.control().reset_stats().await.unwrap();

    let id = json!([{"name": "id", "value": job}]);
    let mut click = command("rerun", id.clone());
    click["member"]["user"]["username"] = json!("alice");
    let (status, first) = bot.discord(click).await;
    assert_eq!(status, 200);
    let text = content(&first);
    assert!(
        text.contains("by @alice") && text.contains(&format!("build #{}", failed + 1)),
        "{first}"
    );
    assert!(
        text.contains(&COMMIT[..8]),
        "from the failed build's commit: {text}"
    );

    // A second click (another member, the same failed build): no second run.
    let mut again = command("rerun", id.clone());
    again["member"]["user"] = json!({"id": "1500000000000000099", "username": "bob"});
    let (_, second) = bot.discord(again).await;
    let text = content(&second);
    assert!(
        text.contains("already re-run by @alice")
            && text.contains(&format!("build #{}", failed + 1)),
        "{second}"
    );
    assert_eq!(calls(&bot, "ExecuteJob").await, 1);

    // What ran: the failed build's commit and parameters.
    let builds = bot.sim.control().builds(&job).await.unwrap();
    let rerun = builds.last().unwrap();
    assert_eq!(rerun["commit"], COMMIT, "{rerun}");
    let params = rerun["parameters"].to_string();
    assert!(
        params.contains("staging") && params.contains("codeBranch"),
        "{params}"
    );

    // The audit trail: the store, `/history`.
    let log = bot.app.store.actions(Some(&job), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].kind.as_str(), log[0].state.as_str()),
        ("rerun", "done")
    );
    assert_eq!(log[0].who, "discord:1500000000000000005");
    let (_, history) = bot
        .discord(command("history", json!([{"name": "id", "value": job}])))
        .await;
    assert!(history.to_string().contains("rerun"), "{history}");
    let metrics = bot.app.metrics.render();
    for line in [
        "codearts_bot_actions_total{action=\"rerun\",outcome=\"done\"} 1",
        "codearts_bot_actions_total{action=\"rerun\",outcome=\"already\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn rerun_is_refused_without_the_actions_role_and_off_when_nobody_is_allowed() {
    let bot = Bot::start_with(|config| {
        config.discord.actions_roles = vec!["1700000000000000007".to_owned()];
    })
    .await;
    let job = bot.job(0);
    failed_build(&bot, &job).await;
    bot.sim.control().reset_stats().await.unwrap();
    let (_, refused) = bot
        .discord(command("rerun", json!([{"name": "id", "value": job}])))
        .await;
    assert_eq!(refused["data"]["flags"], 64, "ephemeral: {refused}");
    assert!(content(&refused).contains("actions roles"), "{refused}");
    assert_eq!(calls(&bot, "ExecuteJob").await, 0);

    // Nobody listed at all: off, saying how to turn it on.
    let open = Bot::start().await;
    let (_, off) = open
        .discord(command(
            "stop",
            json!([{"name": "id", "value": open.job(0)}]),
        ))
        .await;
    assert!(content(&off).contains("discord.actions_roles"), "{off}");
    let slack = open.slack("/rerun", &open.job(0), "U0ACTOR").await;
    assert!(
        seen(&slack["text"].to_string()).contains("slack.actions_users"),
        "{slack}"
    );
}

#[tokio::test]
async fn stop_aborts_the_running_build_from_slack() {
    let bot = bot_with_actions().await;
    let job = bot.job(1);
    // The next executed build runs for a minute.
    bot.sim
        .control()
        .put_job(&job, json!({"_sim_next_build": {"duration_ms": 60_000}}))
        .await
        .unwrap();
    let client = bot.app.client.clone();
    let id = JobId::parse(&job).unwrap();
    let started = client
        .execute_job(&id, &Default::default())
        .await
        .unwrap()
        .build_no
        .unwrap();
    let answer = slack_as(&bot, "/stop", &job, "U0ACTOR", "carol").await;
    let text = seen(answer["text"].as_str().unwrap_or_default());
    assert!(
        text.contains(&format!("Build #{started}")) && text.contains("stopped by @carol"),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = client.running_status(&id).await.unwrap();
    assert_eq!(status.is_running, Some(false));
    assert_eq!(status.last_build_status.as_deref(), Some("aborted"));
    let nothing = bot.slack("/stop", &job, "U0ACTOR").await;
    assert!(nothing.to_string().contains("Nothing"), "{nothing}");
}

#[tokio::test]
async fn an_action_a_crash_left_unsettled_is_not_repeated_on_restart() {
    let bot = bot_with_actions().await;
    let job = bot.job(0);
    let failed = failed_build(&bot, &job).await;
    // The bot recorded the re-run and died before CodeArts answered.
    let begun = bot
        .app
        .store
        .begin_action(
            &NewAction {
                kind: "rerun",
                job_id: &job,
                build_no: Some(failed),
                who: "discord:1500000000000000005",
                shown_as: "@alice",
                platform: "discord",
                channel: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(matches!(begun, Begun::Started(_)));
    bot.sim.control().reset_stats().await.unwrap();
    let (_, answer) = bot
        .discord(command("rerun", json!([{"name": "id", "value": job}])))
        .await;
    assert!(content(&answer).contains("it is not repeated"), "{answer}");
    assert_eq!(calls(&bot, "ExecuteJob").await, 0);
}
