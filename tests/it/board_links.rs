//! Cards link to the status board (`[http] board` and `public_url`, docs/board.md): a failure
//! card links the job's board page next to its CodeArts link, and a storm summary links the
//! board filtered to its jobs, or the problems view where that URL is too long for the
//! platform (Discord's 512).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::harness::{Env, start_bot, tick};

const PUBLIC_URL: &str = "https://bot.example.com";

/// `[http]` with the board on, under a public URL (its trailing slash is not doubled).
const HTTP: &str =
    "listen = \"127.0.0.1:0\"\nboard = true\npublic_url = \"https://bot.example.com/\"";

/// A Discord and a Slack channel on the capture server.
fn channels(env: &Env) -> [String; 2] {
    [
        format!(
            "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
            env.capture.url("/api/webhooks/1/tok")
        ),
        format!(
            "[[channels]]\nname = \"slack\"\ntype = \"slack\"\nurl = \"{}\"",
            env.capture.url("/services/T/B/x")
        ),
    ]
}

/// Every link button's (label, url) in a Discord message's components.
fn discord_buttons(message: &Value) -> Vec<(String, String)> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| {
            Some((
                b["label"].as_str()?.to_owned(),
                b["url"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Every url button's (label, url) in a Slack message's actions blocks.
fn slack_buttons(message: &Value) -> Vec<(String, String)> {
    message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            Some((
                e["text"]["text"].as_str()?.to_owned(),
                e["url"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn board_url(buttons: &[(String, String)]) -> Option<&str> {
    buttons
        .iter()
        .find(|(label, _)| label == "Open on the board")
        .map(|(_, url)| url.as_str())
}

#[tokio::test]
async fn a_failure_card_links_the_jobs_board_page_next_to_codearts() {
    let env = Env::start(1).await;
    let [discord, slack] = channels(&env);
    let toml = env
        .toml()
        .codearts("link_template = \"https://console.example/job/{job_id}\"")
        .http(Some(HTTP))
        .jobs(1)
        .table(&discord)
        .table(&slack);
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    let job = env.job(0);
    env.fail(&job, 1_900_000_000_000).await;
    assert_eq!(tick(&bot).await.events, 1);
    let sent = env.capture.wait_for(2, Duration::from_secs(10)).await;
    let on = |prefix: &str| {
        sent.iter()
            .find(|r| r.path.starts_with(prefix))
            .map(|r| r.json())
            .unwrap_or_else(|| panic!("nothing on {prefix}"))
    };
    let page = format!("{PUBLIC_URL}/jobs/{job}");

    let discord = discord_buttons(&on("/api/webhooks/1/"));
    assert_eq!(board_url(&discord), Some(page.as_str()), "{discord:?}");
    assert!(
        discord
            .iter()
            .any(|(label, url)| label == "Open in CodeArts" && url.ends_with(&job)),
        "the CodeArts link stays: {discord:?}"
    );

    let slack_message = on("/services/");
    let slack = slack_buttons(&slack_message);
    assert_eq!(board_url(&slack), Some(page.as_str()), "{slack_message}");
    assert_eq!(
        slack_message["blocks"][1]["accessory"]["url"],
        format!("https://console.example/job/{job}")
    );
}

#[tokio::test]
async fn a_storm_summary_links_the_board_filtered_to_its_jobs() {
    const JOBS: usize = 30;
    let env = Env::start(JOBS).await;
    let [discord, slack] = channels(&env);
    let toml = env
        .toml()
        .http(Some(HTTP))
        .jobs(JOBS)
        .table(&discord)
        .table(&slack);
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    for i in 0..JOBS {
        env.fail(&env.job(i), 1_900_000_000_000 + i as i64).await;
    }
    assert_eq!(tick(&bot).await.events, JOBS);
    let sent = env.capture.wait_for(2, Duration::from_secs(10)).await;
    let on = |prefix: &str| -> Vec<Value> {
        sent.iter()
            .filter(|r| r.path.starts_with(prefix))
            .map(|r| r.json())
            .collect()
    };

    // Slack takes 3000-character links: the board filtered to exactly the storm's 30 jobs.
    let slack = on("/services/");
    assert_eq!(slack.len(), 1, "one summary: {slack:?}");
    assert!(slack[0].to_string().contains("and 20 more"), "{}", slack[0]);
    let link = board_url(&slack_buttons(&slack[0]))
        .unwrap_or_else(|| panic!("no board button: {}", slack[0]))
        .to_owned();
    let ids = link
        .strip_prefix(&format!("{PUBLIC_URL}/?jobs="))
        .unwrap_or_else(|| panic!("not the filtered board: {link}"));
    let linked: BTreeSet<&str> = ids.split(',').collect();
    let expected: BTreeSet<String> = (0..JOBS).map(|i| env.job(i)).collect();
    let expected: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(linked, expected);

    // Thirty ids make a link of about 1,000 characters, past Discord's 512: the summary links
    // the board's problems view instead, which holds every failing job.
    let discord = on("/api/webhooks/1/");
    assert_eq!(discord.len(), 1, "one summary: {discord:?}");
    assert_eq!(
        board_url(&discord_buttons(&discord[0])),
        Some(format!("{PUBLIC_URL}/?status=problems").as_str()),
        "{}",
        discord[0]
    );
}

#[tokio::test]
async fn without_a_public_url_no_card_links_the_board() {
    let env = Env::start(1).await;
    let [discord, slack] = channels(&env);
    let toml = env
        .toml()
        .http(Some("listen = \"127.0.0.1:0\"\nboard = true"))
        .jobs(1)
        .table(&discord)
        .table(&slack);
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    env.fail(&env.job(0), 1_900_000_000_000).await;
    tick(&bot).await;
    let sent = env.capture.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 2);
    for request in sent {
        assert!(
            !request.text().contains("Open on the board"),
            "{}",
            request.text()
        );
    }
}

#[tokio::test]
async fn a_job_answer_links_the_board_on_discord_and_slack() {
    let bot = crate::chat::Bot::start_with(|config| {
        config.http.board = true;
        config.http.public_url = Some("https://bot.example".to_owned());
    })
    .await;
    let job = bot.job(0);
    let (_, answer) = bot
        .discord(crate::chat::command(
            "job",
            serde_json::json!([{"name": "id", "value": job}]),
        ))
        .await;
    let page = format!("https://bot.example/jobs/{job}");
    assert!(
        answer["data"]["components"].to_string().contains(&page),
        "{answer}"
    );
    let slack = bot.slack("/job", &job, "U1").await;
    assert!(slack["blocks"].to_string().contains(&page), "{slack}");
}
