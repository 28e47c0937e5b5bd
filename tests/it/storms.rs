//! Storms: when many jobs fail at once, a chat channel gets one summary instead of a flood,
//! while the generic webhook keeps its one POST per event.

use std::time::Duration;

use crate::support::harness::{Env, start_bot, tick};

#[tokio::test]
async fn thirty_failures_at_once_are_one_discord_summary_and_thirty_webhook_posts() {
    let env = Env::start(30).await;
    let toml = env
        .toml()
        .jobs(30)
        .table(&format!(
            "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
            env.capture.url("/api/webhooks/1/tok")
        ))
        .table(&format!(
            "[[channels]]\nname = \"quiet\"\ntype = \"discord\"\nurl = \"{}\"\nstorm_threshold = 0",
            env.capture.url("/api/webhooks/2/tok")
        ))
        .webhook("hooks", &env.capture.url("/hooks"), "");
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    for i in 0..30 {
        env.fail(&env.job(i), 1_900_000_000_000 + i as i64).await;
    }
    let report = tick(&bot).await;
    assert_eq!(report.events, 30);
    let sent = env
        .capture
        .wait_for(30 + 1 + 2, Duration::from_secs(10))
        .await;
    let on = |prefix: &str| -> Vec<String> {
        sent.iter()
            .filter(|r| r.path.starts_with(prefix))
            .map(|r| r.json().to_string())
            .collect()
    };
    assert_eq!(
        on("/hooks").len(),
        30,
        "the webhook contract: one POST per event"
    );
    let summary = on("/api/webhooks/1/");
    assert_eq!(summary.len(), 1, "{summary:?}");
    let text = &summary[0];
    assert!(
        text.contains("Many jobs changed at once: 30 jobs")
            && text.contains("30 changes across 30 jobs at once: 30 × Build failed")
            && text.contains("and 20 more"),
        "{text}"
    );
    // A channel that turned storms off gets the usual batches (up to 10 embeds a message).
    let batches = on("/api/webhooks/2/");
    assert!(batches.len() >= 2, "{batches:?}");
    assert!(
        batches
            .iter()
            .all(|b| !b.contains("Many jobs changed at once"))
    );
}

/// 200 failures are one summary per chat channel (Discord and Slack), and the storm's recovery
/// is one summary too. (The webhook's one POST per event is the test above: at its pacing, 200
/// POSTs take longer than this test waits.)
#[tokio::test]
async fn two_hundred_failures_and_their_recovery_are_one_summary_each_per_chat_channel() {
    const JOBS: usize = 200;
    let env = Env::start(JOBS).await;
    let toml = env
        .toml()
        .jobs(JOBS)
        .table(&format!(
            "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
            env.capture.url("/api/webhooks/1/tok")
        ))
        .table(&format!(
            "[[channels]]\nname = \"slack\"\ntype = \"slack\"\nurl = \"{}\"",
            env.capture.url("/slack")
        ));
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    let count = |prefix: &str| {
        env.capture
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    };
    for (round, status) in ["failed", "success"].into_iter().enumerate() {
        for i in 0..JOBS {
            env.sim
                .control()
                .put_job(
                    &env.job(i),
                    serde_json::json!({"last_build_status": status,
                                       "last_build_time": 1_900_000_000_000_i64 + (round * 1000 + i) as i64}),
                )
                .await
                .unwrap();
        }
        let report = tick(&bot).await;
        assert_eq!(report.events, JOBS, "round {round}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while (count("/api/webhooks/1/") < round + 1 || count("/slack") < round + 1)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count("/api/webhooks/1/"), round + 1, "one Discord summary");
        assert_eq!(count("/slack"), round + 1, "one Slack summary");
    }
    let last = env
        .capture
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/slack")
        .unwrap()
        .json()
        .to_string();
    assert!(last.contains("200 jobs"), "{last}");
}
