//! The core pipeline wired together as `run` wires it, against the simulator and a capture
//! server over loopback, with a real SQLite file in a temp dir.

use std::time::Duration;

use crate::support;
use crate::support::capture::{CaptureServer, Captured};
use crate::support::harness::{Env, Running, discord_bot_channel, start_bot, tick, wraps_env};
use codearts_bot::config::Config;
use codearts_bot::domain::list_poll::PollMode;
use codearts_bot::engine::Ctx;
use codearts_bot::engine::poller;
use codearts_bot::sim;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "webhook-signing-key";

/// The shared [`Env`] and the ids of its seeded jobs.
struct Harness {
    env: Env,
    jobs: Vec<String>,
}

wraps_env!(Harness, env);

impl Harness {
    async fn start(jobs: usize) -> Self {
        Self {
            env: Env::start(jobs).await,
            jobs: (0..jobs).map(support::harness::job).collect(),
        }
    }

    /// Every job watched, one signed webhook channel, fast retries; the token comes through
    /// `${SIM_TOKEN}`, so substitution is on the path too.
    fn config(&self) -> Config {
        let token = self.sim.token().to_owned();
        self.toml()
            .auth("token = \"${SIM_TOKEN}\"")
            .poll("schedule = \"*/1 * * * * *\"\ntimeout_secs = 2")
            .delivery(
                "initial_backoff_secs = 1\nmax_backoff_secs = 1\ngroup_wait_ms = 200\ntimeout_secs = 2",
            )
            .jobs(self.jobs.len())
            .webhook("hooks", &self.capture.url("/hook"), &format!("secret = \"{SECRET}\""))
            .config_with_env(&move |name| (name == "SIM_TOKEN").then(|| token.clone()))
    }

    async fn bot(&self) -> Ctx {
        start_bot(self.config()).await
    }
}

fn verify_signature(request: &Captured) {
    let header = request
        .header("x-signature")
        .expect("signed webhook carries X-Signature");
    let hex_sig = header.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(hex_sig).expect("hex signature"))
        .expect("HMAC-SHA256 of the raw body verifies");
}

#[tokio::test]
async fn a_broken_build_is_delivered_once_signed_and_nothing_repeats_after_restart() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    let baseline = tick(&bot).await;
    assert_eq!(
        (baseline.ok, baseline.events),
        (2, 0),
        "first sight is a baseline"
    );

    h.fail(&h.jobs[0], 1_900_000_000_000).await;
    let report = tick(&bot).await;
    assert_eq!(report.events, 1);

    let received = h.capture.requests();
    assert_eq!(received.len(), 1, "exactly one delivery");
    let body: Value = received[0].json();
    assert_eq!(body["event"], "build_failed");
    assert_eq!(body["job_id"], h.jobs[0]);
    assert_eq!(body["previous"]["last_build_status"], "success");
    assert_eq!(body["current"]["last_build_status"], "failed");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(body["summary"].as_str().unwrap().contains("failed"));
    chrono::DateTime::parse_from_rfc3339(body["detected_at"].as_str().unwrap())
        .expect("detected_at is RFC 3339");
    verify_signature(&received[0]);

    let quiet = tick(&bot).await;
    assert_eq!(quiet.events, 0, "no change, no event");
    assert_eq!(h.capture.requests().len(), 1, "second cycle sends nothing");

    bot.store.close().await;
    drop(bot);
    let restarted = h.bot().await;
    let after_restart = tick(&restarted).await;
    assert_eq!(
        after_restart.events, 0,
        "restart on the same database is not a new baseline"
    );
    assert_eq!(h.capture.requests().len(), 1, "restart sends nothing new");
}

#[tokio::test]
async fn an_alert_raised_while_the_receiver_is_down_arrives_once_after_it_returns() {
    let mut h = Harness::start(1).await;
    let addr = h.capture.addr();
    let bot = h.bot().await;
    tick(&bot).await;

    // The receiver goes away: its port now refuses connections.
    let receiver = std::mem::replace(&mut h.capture, CaptureServer::start().await);
    receiver.stop().await;
    h.fail(&h.jobs[0], 1_900_000_000_000).await;
    let report = poller::run_cycle(&bot).await.unwrap();
    assert_eq!(report.deliveries, 1);
    codearts_bot::engine::context::settle(&bot).await;
    let attempt = bot.dispatcher().drain_due().await.unwrap();
    assert_eq!(
        (attempt.sent, attempt.retrying),
        (0, 1),
        "down receiver: retry later"
    );
    assert_eq!(
        bot.store.outbox_counts().await.unwrap().pending,
        1,
        "kept, not lost"
    );

    let back = CaptureServer::start_on(addr).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while back.requests().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        bot.dispatcher().drain_due().await.unwrap();
    }
    assert_eq!(
        back.requests().len(),
        1,
        "delivered after the receiver came back"
    );
    assert_eq!(back.requests()[0].json()["event"], "build_failed");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    tick(&bot).await;
    assert_eq!(back.requests().len(), 1, "and only once");
    assert_eq!(bot.store.outbox_counts().await.unwrap().sent, 1);
}

#[tokio::test]
async fn three_cycles_of_server_errors_produce_no_job_event() {
    let h = Harness::start(3).await;
    let bot = h.bot().await;
    tick(&bot).await;

    h.sim
        .control()
        .set_fault(json!({"status": 500}))
        .await
        .unwrap();
    for cycle in 0..3 {
        let report = tick(&bot).await;
        assert_eq!(report.failed_total(), 3, "cycle {cycle}: every poll failed");
        assert!(report.source_unreachable());
        assert_eq!(report.events, 0, "cycle {cycle}: a 500 is not a job event");
    }
    h.sim.control().clear_faults().await.unwrap();
    let recovered = tick(&bot).await;
    assert_eq!((recovered.ok, recovered.events), (3, 0));
    assert_eq!(bot.store.event_count().await.unwrap(), 0);
    assert!(h.capture.all_requests().is_empty());
}

#[tokio::test]
async fn garbage_answers_are_not_job_events() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    tick(&bot).await;
    for body in [
        "<html><body>502 Bad Gateway</body></html>",
        r#"{"result": {"job_name": "x", "last_build_sta"#,
        r#"{"status": "fail", "error": "busy"}"#,
    ] {
        h.sim
            .control()
            .set_fault(json!({"status": 200, "body": body}))
            .await
            .unwrap();
        let report = tick(&bot).await;
        assert_eq!(report.failed_total(), 2, "body {body:?} is a failed poll");
        assert_eq!(report.events, 0);
    }
    h.sim.control().clear_faults().await.unwrap();
    assert_eq!(tick(&bot).await.events, 0);
}

#[tokio::test]
async fn a_deleted_job_is_reported_once() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    tick(&bot).await;
    h.sim.control().delete_job(&h.jobs[1]).await.unwrap();
    let first = tick(&bot).await;
    assert_eq!((first.not_found, first.events), (1, 1));
    let again = tick(&bot).await;
    assert_eq!(again.events, 0, "still gone: no repeat");
    let received = h.capture.requests();
    assert_eq!(received.len(), 1);
    let body = received[0].json();
    assert_eq!(body["event"], "job_not_found");
    assert_eq!(body["current"], Value::Null);
    assert_eq!(body["previous"]["job_name"], body["job_name"]);
}

/// Waits until `done` holds, polling every 50 ms; false after `limit`.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_polls_on_its_cron_schedule_delivers_and_stops_on_shutdown() {
    use std::sync::atomic::Ordering;
    let h = Harness::start(1).await;
    let bot = h.bot().await;
    let running = Running::start(&bot);
    let stats = std::sync::Arc::clone(&bot.scheduler_stats);
    assert!(
        eventually(Duration::from_secs(5), || stats
            .cycles
            .load(Ordering::Relaxed)
            >= 1)
        .await,
        "the every-second schedule ran a baseline cycle"
    );
    h.fail(&h.jobs[0], 1_900_000_000_000).await;
    let received = h.capture.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        received.len(),
        1,
        "the scheduled cycle queued it and the dispatcher sent it"
    );
    assert_eq!(received[0].json()["event"], "build_failed");

    running.stop().await;
    assert_eq!(h.capture.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_that_finds_the_previous_cycle_running_is_skipped() {
    use std::sync::atomic::Ordering;
    let h = Harness::start(1).await;
    // Every call takes 2.5 s: a cycle spans two or three one-second ticks.
    h.sim
        .control()
        .set_fault(json!({"delay_ms": 2500}))
        .await
        .unwrap();
    let bot = h.bot().await;
    let running = Running::start(&bot);
    let stats = std::sync::Arc::clone(&bot.scheduler_stats);
    assert!(
        eventually(Duration::from_secs(8), || stats
            .skipped
            .load(Ordering::Relaxed)
            >= 1)
        .await,
        "an overlapping tick is skipped"
    );
    let served = h.sim.control().stats().await.unwrap()["requests"]
        .as_u64()
        .unwrap();
    let cycles_started = stats.cycles.load(Ordering::Relaxed) + 1;
    assert!(
        served <= cycles_started,
        "one call per cycle, no overlap: {served} calls, {cycles_started} cycles"
    );
    h.sim.control().clear_faults().await.unwrap();
    running.stop().await;
}

#[tokio::test]
async fn max_rps_spreads_a_cycle_and_a_throttling_answer_slows_the_poller_down() {
    let h = Harness::start(10).await;
    let mut config = h.config();
    config.poll.max_rps = Some(20.0);
    config.poll.mode = PollMode::Job; // one call per job: the spacing is what is measured
    let bot = start_bot(config).await;

    let started = std::time::Instant::now();
    let report = poller::run_cycle(&bot).await.unwrap();
    assert_eq!(report.ok, 10);
    assert!(
        started.elapsed() >= Duration::from_millis(440),
        "10 calls at 20 per second are spread over 450 ms, took {:?}",
        started.elapsed()
    );

    h.sim
        .control()
        .set_fault(json!({"status": 429, "retry_after": 1, "count": 1}))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let report = poller::run_cycle(&bot).await.unwrap();
    assert_eq!(report.failed.get("rate_limited"), Some(&1));
    assert_eq!(report.events, 0, "throttling is not a job event");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "everyone waited out Retry-After: {:?}",
        started.elapsed()
    );
    assert!(
        bot.limiter.current_rps().unwrap() < 20.0,
        "the rate was lowered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_failing_together_become_a_handful_of_messages_with_every_event() {
    use std::collections::HashSet;
    const JOBS: usize = 200;
    let h = Harness::start(JOBS).await;
    let mut config = h.config();
    let discord: codearts_bot::config::ChannelConfig = toml::from_str(&format!(
        "name = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
        h.capture.url("/api/webhooks/1/token")
    ))
    .unwrap();
    let slack: codearts_bot::config::ChannelConfig = toml::from_str(&format!(
        "name = \"slack\"\ntype = \"slack\"\nurl = \"{}\"",
        h.capture.url("/services/T/B/x")
    ))
    .unwrap();
    config.channels = vec![discord, slack];
    // Batching itself is what this measures: storm summaries (tests/it/storms.rs) off.
    for channel in &mut config.channels {
        channel.storm_threshold = Some(0);
    }
    config.delivery.group_wait_ms = 500;
    let bot = start_bot(config).await;
    poller::run_cycle(&bot).await.unwrap();

    for id in &h.jobs {
        h.sim
            .control()
            .put_job(
                id,
                json!({"last_build_status": "failed", "last_build_time": 1_900_000_000_000_i64}),
            )
            .await
            .unwrap();
    }
    let running = Running::start(&bot);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while bot.store.outbox_counts().await.unwrap().sent < 2 * JOBS as u64
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sent = bot.store.outbox_counts().await.unwrap().sent;
    running.stop().await;
    assert_eq!(sent, 2 * JOBS as u64, "every delivery marked sent");

    let received = h.capture.requests();
    for (channel, prefix) in [("discord", "/api/webhooks/"), ("slack", "/services/")] {
        let messages: Vec<_> = received
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect();
        assert!(
            messages.len() <= 12,
            "{channel}: 200 events in at most a handful of messages, got {}",
            messages.len()
        );
        let text: String = messages.iter().map(|m| m.text()).collect();
        // A card names its job; the summary that closes a full Discord message lists the rest
        // by name.
        let named: HashSet<String> = (0..JOBS)
            .map(sim::seeded_job_name)
            .filter(|name| text.contains(name.as_str()))
            .collect();
        assert_eq!(named.len(), JOBS, "{channel}: every event is represented");
    }
}

#[tokio::test]
async fn channels_filter_by_kind_severity_project_and_job_list() {
    let h = Harness::start(2).await;
    let mut config = h.config();
    let channel = |name: &str, extra: &str| -> codearts_bot::config::ChannelConfig {
        toml::from_str(&format!(
            "name = \"{name}\"\ntype = \"webhook\"\nurl = \"{}\"\n{extra}",
            h.capture.url(&format!("/{name}"))
        ))
        .unwrap()
    };
    let project = h.sim.control().jobs().await.unwrap()[0]["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    config.channels = vec![
        channel("all", ""),
        channel("critical", "min_severity = \"critical\""),
        channel("disabled", "events = [\"job_disabled\"]"),
        channel("our-project", &format!("projects = [\"{project}\"]")),
        channel("other-project", "projects = [\"someone-else\"]"),
    ];
    let bot = start_bot(config).await;
    tick(&bot).await;

    h.fail(&h.jobs[0], 1_900_000_000_000).await;
    h.sim
        .control()
        .put_job(&h.jobs[1], json!({"disabled": true}))
        .await
        .unwrap();
    tick(&bot).await;

    let mut by_channel: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in h.capture.requests() {
        by_channel
            .entry(r.path.trim_start_matches('/').to_owned())
            .or_default()
            .push(r.json()["event"].as_str().unwrap().to_owned());
    }
    for events in by_channel.values_mut() {
        events.sort();
    }
    let expect = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        by_channel.get("all"),
        Some(&expect(&["build_failed", "job_disabled"]))
    );
    assert_eq!(by_channel.get("critical"), Some(&expect(&["build_failed"])));
    assert_eq!(by_channel.get("disabled"), Some(&expect(&["job_disabled"])));
    let ours: Vec<String> = h
        .sim
        .control()
        .jobs()
        .await
        .unwrap()
        .iter()
        .filter(|j| j["project_id"] == project.as_str())
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    let ours_events = by_channel.get("our-project").cloned().unwrap_or_default();
    assert_eq!(
        ours_events.len(),
        ours.iter().filter(|id| h.jobs.contains(id)).count()
    );
    assert_eq!(
        by_channel.get("other-project"),
        None,
        "no job of that project"
    );
}

#[tokio::test]
async fn a_discord_bot_channel_posts_through_serenity_as_the_bot() {
    let h = Harness::start(1).await;
    let mut config = h.config();
    discord_bot_channel(&mut config, &h.capture.url(""));
    let bot = start_bot(config).await;
    tick(&bot).await;
    h.sim
        .control()
        .put_job(
            &h.jobs[0],
            json!({"job_name": "@everyone deploy", "disabled": true}),
        )
        .await
        .unwrap();
    tick(&bot).await;

    let received = h.capture.requests();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.method, "POST");
    assert_eq!(
        message.path,
        "/api/v10/channels/123456789012345678/messages"
    );
    assert_eq!(
        message.header("authorization"),
        Some("Bot bot-token-0123456789")
    );
    let body = message.json();
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    assert!(
        body.get("username").is_none(),
        "a bot posts under its own name"
    );
    let text = body["embeds"].to_string();
    assert!(
        text.contains("deploy") && !text.contains("@everyone"),
        "{text}"
    );
    assert!(
        text.contains("renamed") && text.contains("disabled"),
        "both events, one message: {text}"
    );
    assert_eq!(bot.store.outbox_counts().await.unwrap().sent, 2);
}
