//! `codearts-bot demo`: a scripted tour on a local simulator. It starts the simulator, watches
//! three jobs through the real pipeline (client, detector, SQLite, outbox, stdout sink), and
//! changes the jobs one step at a time so each alert can be seen as a channel would get it.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::app;
use crate::config::Config;
use crate::engine::Ctx;
use crate::engine::schedule;
use crate::sim;

/// Pause between steps, so a person can follow.
const STEP_PAUSE: Duration = Duration::from_millis(1200);

struct DemoJob {
    name: &'static str,
    health: i64,
}

const JOBS: [DemoJob; 3] = [
    DemoJob {
        name: "web-frontend",
        health: 92,
    },
    DemoJob {
        name: "payments-api",
        health: 81,
    },
    DemoJob {
        name: "nightly-e2e",
        health: 77,
    },
];

/// Runs the demo to the end; fails only when something local breaks (port, temp dir, database).
pub async fn run() -> anyhow::Result<()> {
    let simulator = sim::spawn(sim::SimConfig::default())
        .await
        .context("cannot start the simulator on 127.0.0.1")?;
    let control = simulator.control();
    let dir = std::env::temp_dir().join(format!("codearts-bot-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("demo.db");

    let ids: Vec<String> = (0..JOBS.len())
        .map(|i| sim::seeded_job_id(i).to_string())
        .collect();
    // Builds "happened" over the last hour, so the cards show recent times.
    let mut build_time = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis();
    for (job, id) in JOBS.iter().zip(&ids) {
        control
            .put_job(
                id,
                json!({"job_name": job.name, "last_build_status": "success",
                       "last_build_time": build_time, "health_score": job.health,
                       "disabled": false, "build_time": "42.7"}),
            )
            .await
            .context("simulator control API")?;
    }
    let config_text = format!(
        r#"
[codearts]
region = "cn-north-4"
endpoint = "{endpoint}"
[codearts.auth]
token = "{token}"
[poll]
schedule = "*/5 * * * * *"
[rules]
blind_after = 2
[store]
path = "{db}"
{jobs}
[[channels]]
name = "demo-channel"
type = "stdout"
source_alerts = true
"#,
        endpoint = simulator.base_url(),
        token = simulator.token(),
        db = db.display().to_string().replace('\\', "/"),
        jobs = ids
            .iter()
            .map(|id| format!("[[jobs]]\nid = \"{id}\"\n"))
            .collect::<String>()
    );
    let config = Config::from_toml(&config_text, "demo config", &|_| None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ctx = app::start(config).await?;

    println!(
        "codearts-bot demo: a CodeArts Build simulator is running at {}",
        simulator.base_url()
    );
    println!(
        "watching {} jobs; database {}; alerts go to a stdout channel\n",
        ids.len(),
        db.display()
    );

    step(
        &ctx,
        "Cycle 1: first look at every job. This is the baseline: nothing is alerted.",
    )
    .await?;

    build_time += 20 * 60 * 1000;
    control
        .put_job(&ids[0], json!({"last_build_status": "failed", "last_build_time": build_time, "build_time": "63.2"}))
        .await?;
    step(&ctx, "web-frontend's new build fails.").await?;

    step(
        &ctx,
        "Nothing changed since the last poll: the channel stays quiet.",
    )
    .await?;

    build_time += 20 * 60 * 1000;
    control
        .put_job(&ids[0], json!({"last_build_status": "success", "last_build_time": build_time, "build_time": "40.1"}))
        .await?;
    step(&ctx, "Someone pushes a fix; web-frontend builds again.").await?;

    control
        .put_job(&ids[1], json!({"health_score": 58}))
        .await?;
    step(&ctx, "payments-api's health score falls from 81 to 58.").await?;

    control.put_job(&ids[2], json!({"disabled": true})).await?;
    step(&ctx, "nightly-e2e is disabled in the console.").await?;

    control
        .set_fault(json!({"status": 503, "count": 6}))
        .await?;
    step(
        &ctx,
        "CodeArts answers 503 to every call: no job event is invented from an outage.",
    )
    .await?;
    step(
        &ctx,
        "Still 503 on every call: after rules.blind_after cycles (2 here) the bot says it is blind.",
    )
    .await?;
    step(
        &ctx,
        "CodeArts answers again: one recovery message, saying how long the bot could not see.",
    )
    .await?;

    let counts = ctx.store.outbox_counts().await?;
    let events = ctx.store.event_count().await?;
    println!(
        "Done: {events} events recorded, {} delivered, {} pending, {} failed.",
        counts.sent, counts.pending, counts.failed
    );
    println!("Run it against your own jobs: see README.md, \"Running against CodeArts\".");
    ctx.store.close().await;
    simulator.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn step(ctx: &Ctx, what: &str) -> anyhow::Result<()> {
    println!("▶ {what}");
    let report = schedule::cycle_and_log(ctx)
        .await
        .context("the poll cycle failed: the database could not be used")?;
    crate::engine::context::settle(ctx).await;
    let delivered = ctx.dispatcher().drain_due().await?;
    println!(
        "  poll cycle: {} jobs, {} answered, {} failed polls, {} events, {} messages sent\n",
        report.jobs,
        report.ok,
        report.failed_total(),
        report.events,
        delivered.sent
    );
    tokio::time::sleep(STEP_PAUSE).await;
    Ok(())
}
