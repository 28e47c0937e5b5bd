//! Operations: health, readiness and metrics over loopback, graceful shutdown of the real
//! binary, retention, and the Dockerfile's invariants (no Docker engine runs here).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::capture::Reply;
use crate::support::harness::{BIN, BotToml, Env, run_once, serve, start_bot};
use chrono::Utc;
use codearts_bot::codearts::{JobId, JobInfo};
use codearts_bot::domain::detect::Detection;
use codearts_bot::domain::event::{Event, EventKind};
use codearts_bot::domain::snapshot::{Presence, Snapshot};
use codearts_bot::engine::schedule;
use codearts_bot::sim::{self, SimHandle};
use codearts_bot::store::Store;
use serde_json::{Value, json};

/// Two jobs polled every second, one ShowJobInfo each (so the poll counters are exact), and
/// one webhook channel at `hook`; no `[http]` section unless a test sets one.
fn config(sim: &SimHandle, db: &Path, hook: &str) -> BotToml {
    BotToml::new(sim, db)
        .poll("schedule = \"*/1 * * * * *\"\ntimeout_secs = 2\nmode = \"job\"")
        .http(None)
        .delivery("group_wait_ms = 200")
        .jobs(2)
        .webhook("hooks", hook, "")
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn healthz_readyz_and_metrics_report_what_the_bot_is_doing() {
    let Env {
        sim, capture, dir, ..
    } = Env::start(2).await;
    let app =
        start_bot(config(&sim, &dir.path().join("bot.db"), &capture.url("/h")).config()).await;
    let served = serve(&app).await;
    let addr = served.addr;

    assert_eq!(get(addr, "/healthz").await, (200, "ok\n".to_owned()));

    // Not ready: CodeArts answers 500 for longer than three intervals of one second.
    sim.control()
        .set_fault(json!({"status": 500}))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let mut last = (0, String::new());
    while tokio::time::Instant::now() < deadline {
        schedule::cycle_and_log(&app).await;
        last = get(addr, "/readyz").await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(last.0, 503, "{}", last.1);
    let body: Value = serde_json::from_str(&last.1).unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["database"], "ok");
    let problems = body["problems"].to_string();
    assert!(
        problems.contains("no poll cycle has reached CodeArts"),
        "{problems}"
    );
    assert!(
        problems.contains("server_error"),
        "the cause is named: {problems}"
    );

    // Ready again once a cycle reaches CodeArts.
    sim.control().clear_faults().await.unwrap();
    schedule::cycle_and_log(&app).await;
    let (status, body) = get(addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ready"], true);

    // A change, delivered: the counters move.
    sim.control()
        .put_job(
            sim::seeded_job_id(0).as_str(),
            json!({"last_build_status": "failed", "last_build_time": 1_900_000_000_000_i64}),
        )
        .await
        .unwrap();
    schedule::cycle_and_log(&app).await;
    codearts_bot::engine::context::settle(&app).await;
    app.dispatcher().drain_due().await.unwrap();
    let (status, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "# TYPE codearts_bot_polls_total counter",
        "codearts_bot_polls_total{outcome=\"ok\"} 4",
        "codearts_bot_polls_total{outcome=\"server_error\"}",
        "codearts_bot_poll_duration_seconds_bucket{le=\"+Inf\"}",
        "codearts_bot_cycles_total{result=\"ok\"} 2",
        "codearts_bot_cycles_total{result=\"source_unreachable\"}",
        "codearts_bot_cycle_duration_seconds_count",
        "codearts_bot_watched_jobs 2",
        "codearts_bot_events_total{kind=\"build_failed\"} 1",
        "codearts_bot_deliveries_total{channel=\"hooks\",outcome=\"sent\"} 1",
        "codearts_bot_outbox_pending 0",
        "codearts_bot_outbox_oldest_age_seconds 0",
        "# TYPE codearts_bot_cycle_skips_total counter",
        "# TYPE codearts_bot_token_refreshes_total counter",
        "# TYPE codearts_bot_chat_commands_total counter",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected:?} in\n{metrics}"
        );
    }
    assert!(!metrics.contains(sim.token()), "no secret in metrics");
}

fn info(status: &str) -> JobInfo {
    JobInfo {
        job_name: Some("web".to_owned()),
        last_build_status: Some(status.to_owned()),
        ..JobInfo::default()
    }
}

/// The job `web` failed at `at`, now in `status`: the event both store tests write.
fn build_failed(job: &JobId, at: chrono::DateTime<Utc>, status: &str) -> Event {
    Event {
        kind: EventKind::BuildFailed,
        job_id: job.to_string(),
        job_name: "web".to_owned(),
        detected_at: at,
        previous: Some(info("success")),
        current: Some(info(status)),
        summary: "Build failed: web".to_owned(),
    }
}

#[tokio::test]
async fn retention_prunes_old_rows_in_batches_and_keeps_recent_and_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("r.db")).await.unwrap();
    let job = JobId::parse("f5af662119404ad187437cd272b5099b").unwrap();
    let old = Utc::now() - chrono::Duration::days(40);
    let event = |at, status: &str| build_failed(&job, at, status);
    let snapshot = |status: &str| Snapshot {
        info: Some(info(status)),
        presence: Presence::Present,
        settled_status: Some(status.to_owned()),
        missing_polls: 0,
        outcomes: String::new(),
    };
    // 1,200 old observations, each with a sent delivery; one old pending delivery; one recent.
    for i in 0..1200 {
        let d = Detection {
            next: Some(snapshot(if i % 2 == 0 { "failed" } else { "success" })),
            events: vec![event(old, "failed")],
        };
        store
            .record(&job, &d, &[vec!["hooks".to_owned()]], old)
            .await
            .unwrap();
    }
    // All sent but the newest old one, which stays pending.
    let due = store
        .due_for_channel("hooks", Utc::now(), 2000)
        .await
        .unwrap();
    let (_, sent) = due.split_last().unwrap();
    let ids: Vec<&str> = sent.iter().map(|d| d.id.as_str()).collect();
    store
        .settle_many(&ids, codearts_bot::store::Settle::Sent(old))
        .await
        .unwrap();
    let recent = Detection {
        next: Some(snapshot("failed")),
        events: vec![event(Utc::now(), "failed")],
    };
    store
        .record(&job, &recent, &[vec!["hooks".to_owned()]], Utc::now())
        .await
        .unwrap();

    let pruned = store
        .prune(Utc::now() - chrono::Duration::days(30), 100)
        .await
        .unwrap();
    assert_eq!(pruned.history, 1200, "old history goes");
    assert_eq!(pruned.deliveries, 1199, "old sent deliveries go");
    assert_eq!(pruned.events, 1199, "events no delivery needs go");
    let counts: std::collections::HashMap<_, _> =
        store.row_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts["snapshot_history"], 1, "the recent row stays");
    assert_eq!(
        counts["deliveries"], 2,
        "pending (even old) and recent stay"
    );
    assert_eq!(counts["events"], 2);
    assert_eq!(
        counts["job_state"], 1,
        "the latest snapshot is never pruned"
    );
    assert_eq!(store.outbox_pending_summary().await.unwrap().pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_delivery_exits_0_leaves_it_queued_and_the_next_start_sends_it_once()
{
    let Env {
        sim, capture, dir, ..
    } = Env::start(2).await;
    let db = dir.path().join("bot.db");
    // Port 0: the binary picks a free port itself, so no other test can take it in between.
    let config = config(&sim, &db, &capture.url("/hook"))
        .http(Some("listen = \"127.0.0.1:0\"\nshutdown_grace_secs = 2"))
        .write(dir.path());
    assert!(run_once(&config, None).await.status.success(), "baseline");
    sim.control()
        .put_job(sim::seeded_job_id(1).as_str(), json!({"disabled": true}))
        .await
        .unwrap();
    // The chat service takes a minute to answer the first message.
    capture.script(vec![Reply::status(200).after(Duration::from_secs(60))]);
    let mut bot = Command::new(BIN)
        .args(["run", "--config", &config])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while capture.all_requests().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(capture.all_requests().len(), 1, "the delivery is in flight");
    let stopped_at = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &bot.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || bot.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    assert!(
        stopped_at.elapsed() < Duration::from_secs(8),
        "within the grace period, not the 60 s answer"
    );
    assert!(
        capture.requests().is_empty(),
        "the slow answer never completed: {:?} all {:?}",
        capture.requests(),
        capture.all_requests().len()
    );

    let store = Store::open(&db).await.unwrap();
    assert_eq!(
        store.outbox_pending_summary().await.unwrap().pending,
        1,
        "left queued"
    );
    store.close().await;

    assert!(run_once(&config, None).await.status.success());
    let received = capture.requests();
    assert_eq!(received.len(), 1, "sent once by the next start");
    assert_eq!(received[0].json()["event"], "job_disabled");
    assert_eq!(
        received[0].header("x-codearts-bot-delivery"),
        capture.all_requests()[0].header("x-codearts-bot-delivery"),
        "the same delivery id as the interrupted attempt, so a receiver can de-duplicate"
    );
}

#[test]
fn the_dockerfile_builds_the_crate_binary_in_stages_and_runs_it_unprivileged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    let stages: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages[0].contains(" AS build"), "{stages:?}");
    assert!(
        dockerfile.matches("cargo build --release --locked").count() >= 2,
        "a dependency-caching build and the real one, both --locked"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("cargo build --release --locked"),
        "CI runs the image's build"
    );

    let runtime_start = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &lines[runtime_start..];
    let user = runtime
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER in the runtime stage");
    assert!(!user.contains("root") && user.trim() != "USER 0", "{user}");
    assert!(
        runtime.iter().any(|l| l.starts_with("VOLUME")),
        "the database lives in a volume"
    );
    let health = runtime
        .iter()
        .position(|l| l.starts_with("HEALTHCHECK"))
        .expect("HEALTHCHECK");
    assert!(
        runtime[health..]
            .iter()
            .take(2)
            .any(|l| l.contains("/healthz"))
    );
    assert!(runtime.iter().any(|l| l.contains("ca-certificates")));

    // Every COPY source from the build context exists, and the binary name is the crate's.
    for line in lines
        .iter()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(
                root.join(source).exists(),
                "COPY source {source} is missing"
            );
        }
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"codearts-bot\""));
    assert!(dockerfile.contains("target/release/codearts-bot /usr/local/bin/codearts-bot"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/codearts-bot\"]"));

    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target"));
    assert!(root.join("docker-compose.example.yml").exists());
    assert!(root.join("deploy/codearts-bot.service").exists());
}

#[tokio::test]
async fn the_database_file_stays_flat_when_retention_keeps_up_with_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.db");
    let store = Store::open(&path).await.unwrap();
    let job = JobId::parse("f5af662119404ad187437cd272b5099b").unwrap();
    let size = || {
        ["", "-wal"]
            .iter()
            .map(|suffix| {
                std::fs::metadata(format!("{}{suffix}", path.display()))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum::<u64>()
    };
    let mut sizes = Vec::new();
    // Each round is "a month" of changes: 300 observations with an event and a delivery,
    // all sent, then the retention pass that runs hourly in `run`.
    for round in 0..12_i64 {
        let at = Utc::now() - chrono::Duration::days(40) + chrono::Duration::minutes(round);
        for i in 0..300 {
            let status = if i % 2 == 0 { "failed" } else { "success" };
            let d = Detection {
                next: Some(Snapshot {
                    info: Some(info(status)),
                    presence: Presence::Present,
                    settled_status: Some(status.to_owned()),
                    missing_polls: 0,
                    outcomes: String::new(),
                }),
                events: vec![build_failed(&job, at, status)],
            };
            store
                .record(&job, &d, &[vec!["hooks".to_owned()]], at)
                .await
                .unwrap();
        }
        loop {
            let due = store
                .due_for_channel("hooks", Utc::now(), 500)
                .await
                .unwrap();
            if due.is_empty() {
                break;
            }
            let ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
            store
                .settle_many(&ids, codearts_bot::store::Settle::Sent(at))
                .await
                .unwrap();
        }
        store
            .prune(Utc::now() - chrono::Duration::days(30), 500)
            .await
            .unwrap();
        sizes.push(size());
    }
    let settled = sizes[3];
    let last = *sizes.last().unwrap();
    assert!(
        last <= settled + settled / 5,
        "the file grows without bound: {sizes:?}"
    );
    eprintln!("database + WAL bytes per round: {sizes:?}");
}
