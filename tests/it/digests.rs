//! Scheduled digests (`[[channels]] digest`), `/digest`, and the batched webhook
//! (`batch = true`): a digest a few seconds away lists the failing jobs, once; an all-green
//! digest goes only where `digest_when_green` asks for it; `/digest` answers on Discord and
//! Slack; a batched webhook gets arrays holding every event id once.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::{Value, json};

use crate::chat::{Bot, command};
use crate::support::capture::{Captured, Reply};
use crate::support::harness::{Env, Running, start_bot, tick};
use codearts_bot::engine::digest;
use codearts_bot::notify::webhook;
use codearts_bot::sim;

/// A daily cron (UTC) whose next instant is `secs` seconds from now.
fn cron_in(secs: i64) -> String {
    let at = Utc::now() + chrono::Duration::seconds(secs);
    format!("{} {} {} * * *", at.second(), at.minute(), at.hour())
}

/// The digest bodies among what the capture server accepted on `path`.
fn digests_on(sent: &[Captured], path: &str) -> Vec<Value> {
    sent.iter()
        .filter(|r| r.path == path)
        .map(Captured::json)
        .filter(|b| b["event"] == "digest")
        .collect()
}

async fn wait_for_digests(env: &Env, path: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found = digests_on(&env.capture.requests(), path);
        if found.len() >= n || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_digest_a_few_seconds_away_lists_the_failing_jobs_once_across_restarts() {
    let env = Env::start(3).await;
    let toml = env.toml().jobs(3).webhook(
        "team",
        &env.capture.url("/team"),
        &format!("digest = \"{}\"", cron_in(4)),
    );
    let bot = start_bot(toml.config()).await;
    tick(&bot).await; // baseline
    env.fail(&env.job(0), Utc::now().timestamp_millis() - 1_000)
        .await;
    tick(&bot).await; // build_failed: an incident opens
    let running = Running::start(&bot);
    let sent = wait_for_digests(&env, "/team", 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = &sent[0];
    assert_eq!(body["job_name"], "1 failing");
    assert_eq!(body["job_id"], "");
    let summary = body["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("Failing now: 1: {} for", sim::seeded_job_name(0)))
            && summary.contains("(1 failed build)"),
        "{summary}"
    );
    assert!(summary.starts_with("Period: "), "{summary}");
    assert!(
        !summary.contains(&format!("for {}", sim::seeded_job_name(1))),
        "{summary}"
    );
    // The three seeded builds of the last day passed; job 0's new one failed.
    assert!(summary.contains("75% (3 of 4)"), "{summary}");
    running.stop().await;

    // A restart at the same instant: handled already, nothing is queued again.
    let again = start_bot(toml.config()).await;
    assert_eq!(digest::send_due(&again, Utc::now()).await.unwrap(), 0);
    again.dispatcher().drain_due().await.unwrap();
    assert_eq!(digests_on(&env.capture.requests(), "/team").len(), 1);
}

#[tokio::test]
async fn an_all_green_digest_goes_only_where_digest_when_green_asks() {
    let env = Env::start(2).await;
    let cron = cron_in(3);
    let toml = env
        .toml()
        .jobs(2)
        .webhook(
            "quiet",
            &env.capture.url("/quiet"),
            &format!("digest = \"{cron}\""),
        )
        .webhook(
            "green",
            &env.capture.url("/green"),
            &format!("digest = \"{cron}\"\ndigest_when_green = true"),
        );
    let bot = start_bot(toml.config()).await;
    tick(&bot).await; // baseline: every job passes
    let running = Running::start(&bot);
    let green = wait_for_digests(&env, "/green", 1).await;
    assert_eq!(green.len(), 1, "{green:?}");
    assert_eq!(green[0]["job_name"], "all green");
    assert!(
        green[0]["summary"]
            .as_str()
            .unwrap()
            .contains("Failing now: none"),
        "{}",
        green[0]
    );
    // Both instants were handled in the same pass; give the dispatcher a moment anyway.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(digests_on(&env.capture.requests(), "/quiet").is_empty());
    let metrics = bot.metrics.render();
    assert!(
        metrics.contains("codearts_bot_digests_total{channel=\"quiet\",outcome=\"green\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("codearts_bot_digests_total{channel=\"green\",outcome=\"queued\"} 1"),
        "{metrics}"
    );
    running.stop().await;
}

#[tokio::test]
async fn slash_digest_answers_in_the_channel_on_discord_and_slack() {
    let bot = Bot::start().await;
    let job = bot.job(0);
    let (_, watched) = bot
        .discord(command("watch", json!([{"name": "id", "value": job}])))
        .await;
    assert!(watched.to_string().contains("Now watching"), "{watched}");
    tick(&bot.app).await; // baseline
    bot.fail(&job, 1_900_000_000_000).await;
    tick(&bot.app).await;

    let (status, answer) = bot.discord(command("digest", json!([]))).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4, "{answer}");
    assert!(answer["data"]["flags"].is_null(), "in channel: {answer}");
    let embed = &answer["data"]["embeds"][0];
    assert_eq!(embed["title"], "Digest: 1 failing", "{answer}");
    let text = embed["description"].to_string();
    assert!(
        text.contains("Failing now") && text.contains(&sim::seeded_job_name(0)),
        "{text}"
    );

    let answer = bot.slack("/codearts", "digest alerts", "U1").await;
    assert_eq!(answer["response_type"], "in_channel", "{answer}");
    let blocks = answer["blocks"].to_string();
    assert!(
        blocks.contains("Failing now") && blocks.contains(&sim::seeded_job_name(0)),
        "{blocks}"
    );
    let answer = bot.slack("/digest", "nope", "U1").await;
    assert_eq!(answer["response_type"], "ephemeral", "{answer}");
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("There is no alert channel \"nope\" (known: alerts)"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_batched_webhook_gets_arrays_holding_every_event_id_once() {
    let env = Env::start(30).await;
    let toml = env
        .toml()
        .jobs(30)
        .delivery("initial_backoff_secs = 1\nmax_backoff_secs = 1")
        .webhook(
            "batched",
            &env.capture.url("/batched"),
            "batch = true\nsecret = \"s3cret\"",
        );
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    for i in 0..30 {
        env.fail(&env.job(i), 1_900_000_000_000 + i as i64).await;
    }
    // The first POST fails: the whole batch is retried (at least once; ids dedupe it).
    env.capture.script(vec![Reply::status(503)]);
    assert_eq!(tick(&bot).await.events, 30);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut ids: Vec<String> = Vec::new();
    while tokio::time::Instant::now() < deadline {
        bot.dispatcher().drain_due().await.unwrap();
        ids = env
            .capture
            .requests()
            .iter()
            .flat_map(|r| {
                let body = r.json();
                let items = body.as_array().expect("an array per POST").clone();
                assert_eq!(
                    r.header(webhook::BATCH_HEADER),
                    Some(items.len().to_string().as_str())
                );
                assert!(webhook::verify(
                    b"s3cret",
                    &r.body,
                    r.header(webhook::SIGNATURE_HEADER).unwrap()
                ));
                items
                    .into_iter()
                    .map(|item| item["id"].as_str().unwrap().to_owned())
            })
            .collect();
        if ids.len() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = env.capture.all_requests();
    assert_eq!(all[0].path, "/batched");
    assert!(all.len() >= 2, "the failed POST and its retry");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 30, "every accepted id once: {ids:?}");
    assert_eq!(unique.len(), 30);
    // The retried POST carried exactly the ids of the failed one.
    let failed: HashSet<String> = serde_json::from_slice::<Vec<Value>>(&all[0].body)
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(failed.iter().all(|id| unique.contains(id)), "{failed:?}");
}

#[tokio::test]
async fn a_digest_queued_in_a_storm_is_not_summarised_away() {
    let env = Env::start(25).await;
    let toml = env.toml().jobs(25).table(&format!(
        "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"\n\
         digest = \"0 0 9 * * *\"",
        env.capture.url("/api/webhooks/1/tok")
    ));
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    for i in 0..25 {
        env.fail(&env.job(i), Utc::now().timestamp_millis() - 1_000)
            .await;
    }
    codearts_bot::engine::poller::run_cycle(&bot).await.unwrap();
    // The digest falls due behind the storm's 25 alerts.
    let now = Utc::now();
    let event = digest::on_demand(&bot, None, now).await.unwrap().event(now);
    bot.store
        .claim_digest("discord", now, "queued", Some(&event))
        .await
        .unwrap()
        .expect("a new instant");
    codearts_bot::engine::context::settle(&bot).await;
    bot.dispatcher().drain_due().await.unwrap();
    let sent: Vec<String> = env
        .capture
        .wait_for(2, Duration::from_secs(10))
        .await
        .iter()
        .map(|r| r.json().to_string())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("Many jobs changed at once"), "{}", sent[0]);
    assert!(
        !sent[0].contains("Digest") && sent[1].contains("Digest: 25 failing"),
        "{sent:?}"
    );
}
