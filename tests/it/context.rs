//! Why it broke, in the alert: a failed build's stage, commit, author and scrubbed log tail
//! reach the channel with the alert; a build is asked about once; a context API that fails or
//! is slow never holds the alert back, and a late context is edited into the Discord message;
//! `mention = "author"` mentions exactly the mapped person.

use std::time::{Duration, Instant};

use codearts_bot::engine::Ctx;
use codearts_bot::sim::SimHandle;
use serde_json::{Value, json};

use crate::support::capture::Captured;
use crate::support::harness::{BotToml, Env, Running, start_bot, tick};

/// The six operations a failed build's context costs at most.
const CONTEXT_APIS: [&str; 6] = [
    "ShowRunningStatus",
    "ShowJobBuildRecordDetail",
    "ShowBuildInfoRecord",
    "ShowBuildRecordFullStages",
    "DownloadBuildRealTimeLog",
    "ShowReportSummary",
];

const COMMIT: &str = "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a";
const ALICE_DISCORD: &str = "123456789012345678";
const ALICE_SLACK: &str = "U012ABCDEF";

/// A log with the secrets a build log really prints, and a mention.
fn secret_log() -> String {
    [
        "[INFO] Cloning https://ci:hunter2@codehub.example.com/team/web.git",
        "[INFO] DB_PASSWORD=hunter2 npm test",
        "curl -H 'Authorization: Bearer abc123def456ghi789jkl' https://api.test/v1",
        "export CLOUD_SDK_AK=HPUAL6NHO1XQ4KSVPX9Z",
        "[ERROR] 2 tests failed: cart.spec.ts @everyone",
        "[ERROR] Stage \"Unit tests\" failed: exit code 1",
    ]
    .join("\n")
}

/// The job's next build, failed in stage "Unit tests", run by alice from `main`.
async fn failed_build(sim: &SimHandle, job: &str) -> u32 {
    sim.control()
        .create_build(
            job,
            json!({
                "status": "failed",
                "branch": "main",
                "commit": COMMIT,
                "commit_message": "checkout: retry the payment call\n\nCloses #12",
                "user": "alice",
                "trigger_type": "Push",
                "stages": [
                    {"name": "Install", "status": "success", "duration_ms": 4000},
                    {"name": "Unit tests", "status": "failed", "duration_ms": 2500},
                    {"name": "Package", "status": "skipped", "duration_ms": 0}
                ],
                "log": secret_log(),
                "tests": {"total": 120, "failures": 2, "errors": 0},
                "err_msg": "Command exited with code 1 in stage Unit tests"
            }),
        )
        .await
        .expect("the failed build")
        .build_no
}

async fn green_build(sim: &SimHandle, job: &str) {
    sim.control()
        .create_build(job, json!({"status": "success", "user": "bob"}))
        .await
        .expect("a green build");
}

/// Calls of the context operations since the last reset.
async fn context_calls(sim: &SimHandle) -> u64 {
    let by_api = sim.control().by_api().await.expect("stats");
    CONTEXT_APIS
        .iter()
        .map(|api| by_api.get(*api).copied().unwrap_or(0))
        .sum()
}

/// A bot watching seeded job 0 with a green build behind it, past its baseline cycle.
async fn baseline(env: &Env, toml: BotToml) -> (Ctx, String) {
    let job = env.job(0);
    green_build(&env.sim, &job).await;
    let bot = start_bot(toml.job(&job).config()).await;
    tick(&bot).await;
    (bot, job)
}

fn no_secrets(text: &str) {
    for secret in [
        "hunter2",
        "abc123def456ghi789jkl",
        "HPUAL6NHO1XQ4KSVPX9Z",
        "@everyone",
    ] {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
}

#[tokio::test]
async fn a_failure_alert_carries_its_stage_commit_author_and_scrubbed_log_and_is_asked_once() {
    let env = Env::start(1).await;
    let toml = env.toml().webhook("hooks", &env.capture.url("/hooks"), "");
    let (bot, job) = baseline(&env, toml.clone()).await;
    env.sim.control().reset_stats().await.unwrap();
    let build_no = failed_build(&env.sim, &job).await;
    tick(&bot).await;

    let stored = bot
        .store
        .last_failure_context(&codearts_bot::codearts::JobId::parse(&job).unwrap())
        .await
        .unwrap()
        .expect("the context is stored");
    assert_eq!(stored.failed_stage.as_deref(), Some("Unit tests"));
    assert_eq!(stored.build_no, Some(build_no));
    let alerts = env.capture.wait_for(1, Duration::from_secs(5)).await;
    let alert = alerts[0].json();
    assert_eq!(alert["event"], "build_failed", "{alert}");
    let context = &alert["context"];
    assert_eq!(context["build_no"], build_no, "{alert}");
    assert_eq!(context["failed_stage"], "Unit tests");
    assert_eq!(context["branch"], "main");
    assert_eq!(context["commit"], COMMIT);
    assert_eq!(
        context["commit_message"],
        "checkout: retry the payment call"
    );
    assert_eq!(context["triggered_by"], "alice");
    assert_eq!(context["tests"]["failed"], 2);
    assert_eq!(context["complete"], true);
    let tail: Vec<&str> = context["log_tail"]
        .as_array()
        .expect("a log tail")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(tail.len(), 6, "{tail:?}");
    assert!(tail[5].contains("exit code 1"));
    no_secrets(&context.to_string());
    assert!(
        context.to_string().contains("[redacted]"),
        "the secrets' keys stay: {context}"
    );
    assert!(
        bot.metrics
            .render()
            .contains("codearts_bot_contexts_total{outcome=\"done\"} 1")
    );
    let first = context_calls(&env.sim).await;
    assert!(
        (1..=6).contains(&first),
        "a failed build's context costs at most 6 calls: {first}"
    );

    // The same failed build, seen again (and after a restart): no context call.
    env.sim.control().reset_stats().await.unwrap();
    tick(&bot).await;
    drop(bot);
    let restarted = start_bot(toml.job(&job).config()).await;
    tick(&restarted).await;
    assert_eq!(context_calls(&env.sim).await, 0);
    assert_eq!(env.capture.requests().len(), 1, "nothing new was sent");
}

#[tokio::test]
async fn failing_context_apis_never_hold_the_alert_back() {
    let env = Env::start(1).await;
    let toml = env.toml().webhook("hooks", &env.capture.url("/hooks"), "");
    let (bot, job) = baseline(&env, toml).await;
    // One PUT arms them all (a PUT replaces the armed faults).
    let faults: Vec<Value> = CONTEXT_APIS
        .iter()
        .map(|api| json!({"status": 500, "api": api}))
        .collect();
    env.sim
        .control()
        .set_fault(Value::Array(faults))
        .await
        .unwrap();
    failed_build(&env.sim, &job).await;
    let started = Instant::now();
    let report = tick(&bot).await;
    assert_eq!(report.events, 1);
    let alerts = env.capture.wait_for(1, Duration::from_secs(5)).await;
    let alert = alerts[0].json();
    assert_eq!(alert["event"], "build_failed");
    assert!(
        alert.get("context").is_none_or(Value::is_null),
        "no context: {alert}"
    );
    // Generous: the fetch fails at once, so nothing waits for context.wait_ms (3 s).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_context_api_that_times_out_never_holds_the_alert_past_wait_ms() {
    let env = Env::start(1).await;
    let toml = env.toml().table("[context]\nwait_ms = 500").webhook(
        "hooks",
        &env.capture.url("/hooks"),
        "",
    );
    let (bot, job) = baseline(&env, toml).await;
    // Longer than the poll timeout (2 s in these tests): the call times out.
    env.sim
        .control()
        .set_fault(json!({"delay_ms": 4000, "api": "ShowRunningStatus"}))
        .await
        .unwrap();
    failed_build(&env.sim, &job).await;
    let started = Instant::now();
    tick(&bot).await;
    let alerts = env.capture.wait_for(1, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(
        alerts[0].json().get("context").is_none(),
        "sent without its context: {}",
        alerts[0].json()
    );
    // wait_ms (0.5 s) and the cycle, with room for a slow machine; far from the 2 s timeout.
    assert!(waited < Duration::from_millis(1800), "{waited:?}");
}

/// The bot under `run` with a one-second schedule, a 500 ms wait for context, a Discord
/// webhook and a plain webhook channel.
fn running_toml(env: &Env) -> BotToml {
    env.toml()
        .poll("schedule = \"* * * * * *\"\ntimeout_secs = 5")
        .table("[context]\nwait_ms = 500")
        .table(&format!(
            "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
            env.capture.url("/api/webhooks/1/tok")
        ))
}

fn discord(requests: &[Captured]) -> Vec<&Captured> {
    requests
        .iter()
        .filter(|r| r.path.starts_with("/api/webhooks/"))
        .collect()
}

#[tokio::test]
async fn a_slow_context_is_edited_into_the_discord_message_after_the_alert_left_on_time() {
    let env = Env::start(1).await;
    let (bot, job) = baseline(&env, running_toml(&env)).await;
    // The build number comes late: the whole context waits behind it.
    env.sim
        .control()
        .set_fault(json!({"delay_ms": 2000, "api": "ShowRunningStatus"}))
        .await
        .unwrap();
    let running = Running::start(&bot);
    failed_build(&env.sim, &job).await;
    let started = Instant::now();
    let posted = env.capture.wait_for(1, Duration::from_secs(10)).await;
    let alert_after = started.elapsed();
    let edits = env.capture.wait_for(2, Duration::from_secs(10)).await;
    running.stop().await;

    let messages = discord(&edits);
    assert_eq!(messages[0].method, "POST");
    let alert = messages[0].json().to_string();
    assert!(
        alert.contains("Build failed") || alert.contains("failed"),
        "{alert}"
    );
    assert!(
        !alert.contains("Unit tests"),
        "the alert left before its context: {alert}"
    );
    // One schedule tick (1 s) + wait_ms (0.5 s) + 1 s, with room for a slow machine.
    assert!(alert_after < Duration::from_secs(4), "{alert_after:?}");
    assert_eq!(messages[1].method, "PATCH", "the context is an edit");
    assert!(
        messages[1].path.contains("/messages/"),
        "{}",
        messages[1].path
    );
    let edited = messages[1].json().to_string();
    assert!(
        edited.contains("Unit tests") && edited.contains("alice"),
        "{edited}"
    );
    no_secrets(&edited);
    assert_eq!(posted.len(), 1);
}

#[tokio::test]
async fn mention_author_mentions_exactly_the_mapped_person_on_discord_and_slack() {
    let env = Env::start(1).await;
    let toml = env
        .toml()
        .table(&format!(
            "[[channels]]\nname = \"discord\"\ntype = \"discord\"\nurl = \"{}\"\nmention = \"author\"",
            env.capture.url("/api/webhooks/1/tok")
        ))
        .table(&format!(
            "[[channels]]\nname = \"quiet\"\ntype = \"discord\"\nurl = \"{}\"",
            env.capture.url("/api/webhooks/2/tok")
        ))
        .table(&format!(
            "[[channels]]\nname = \"slack\"\ntype = \"slack\"\nurl = \"{}\"\nmention = \"author\"",
            env.capture.url("/services/T/B/x")
        ))
        .table(&format!(
            "[[people]]\ncodearts = \"alice\"\ndiscord = \"{ALICE_DISCORD}\"\nslack = \"{ALICE_SLACK}\"\n\
             [[people]]\ncodearts = \"bob\"\ndiscord = \"223456789012345678\""
        ));
    let (bot, job) = baseline(&env, toml).await;
    failed_build(&env.sim, &job).await;
    tick(&bot).await;
    let sent = env.capture.wait_for(3, Duration::from_secs(5)).await;
    let on = |prefix: &str| {
        sent.iter()
            .find(|r| r.path.starts_with(prefix))
            .unwrap_or_else(|| panic!("nothing sent to {prefix}"))
            .json()
    };

    let mentioned = on("/api/webhooks/1/");
    assert_eq!(
        mentioned["allowed_mentions"]["users"],
        json!([ALICE_DISCORD]),
        "{mentioned}"
    );
    assert_eq!(mentioned["allowed_mentions"]["parse"], json!([]));
    assert!(
        mentioned
            .to_string()
            .contains(&format!("<@{ALICE_DISCORD}>"))
    );
    assert!(!mentioned.to_string().contains("223456789012345678"));

    let quiet = on("/api/webhooks/2/");
    assert_eq!(quiet["allowed_mentions"], json!({"parse": []}), "{quiet}");
    assert!(!quiet.to_string().contains(&format!("<@{ALICE_DISCORD}>")));

    let slack = on("/services/").to_string();
    assert!(slack.contains(&format!("<@{ALICE_SLACK}>")), "{slack}");
    assert!(!slack.contains("<!channel>") && !slack.contains("<!everyone>"));
}

#[tokio::test]
async fn a_disabled_or_deleted_job_says_why() {
    let env = Env::start(2).await;
    let toml = env
        .toml()
        .job(&env.job(1))
        .webhook("hooks", &env.capture.url("/hooks"), "");
    let (bot, job) = baseline(&env, toml).await;
    let control = env.sim.control();
    control
        .put_job(
            &job,
            json!({"disabled": true, "_sim_disabled_by": "carol", "_sim_disabled_reason": "migrating to v2"}),
        )
        .await
        .unwrap();
    control.delete_job(&env.job(1)).await.unwrap();
    // A deleted job is alerted after rules.missing_after answers in a row.
    for _ in 0..3 {
        tick(&bot).await;
    }
    let requests = env.capture.requests();
    let by_kind = |kind: &str| {
        requests
            .iter()
            .map(Captured::json)
            .find(|a| a["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} alert"))
    };
    let disabled = by_kind("job_disabled");
    let why = disabled["context"]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("disabled by carol") && why.contains("migrating to v2"),
        "{disabled}"
    );
    let gone = by_kind("job_not_found");
    let why = gone["context"]["why"].as_str().unwrap_or_default();
    assert!(why.contains("recycle bin"), "{gone}");
}
