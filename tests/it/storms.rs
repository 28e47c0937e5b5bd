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
