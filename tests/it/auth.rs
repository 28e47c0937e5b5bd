//! Authentication that lasts, against the simulator over loopback: IAM password tokens renewed
//! across several lifetimes and after a revocation (one renewal however many polls meet it),
//! a wrong password as one clear error, a token CodeArts keeps refusing without a storm of
//! token requests, AK/SK signing accepted and a wrong key refused without a retry loop, and no
//! secret in any log of a full run of the binary.

use std::time::{Duration, Instant};

use crate::support::capture::CaptureServer;
use crate::support::harness::{BotToml, run_once, simulator_with, start_bot};
use codearts_bot::config::Config;
use codearts_bot::engine::Ctx;
use codearts_bot::engine::poller;
use codearts_bot::sim::{self, SimHandle};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-battery-staple";
const AK: &str = "HPUAKEXAMPLE0000001";
const SK: &str = "sKExampleSecretKey0000000000000000000001";

async fn simulator(jobs: usize, ttl: Duration) -> SimHandle {
    simulator_with(sim::SimConfig {
        jobs,
        iam_users: vec![format!("acme/codearts-bot:{PASSWORD}").parse().unwrap()],
        token_ttl: ttl,
        aksk: Some((AK.to_owned(), SK.to_owned())),
        ..sim::SimConfig::default()
    })
    .await
}

/// `jobs` seeded jobs authenticated by `auth` (the body of `[codearts.auth]`); `poll` adds
/// lines to `[poll]`. No `[http]` section: nothing here serves.
fn config_text(
    sim: &SimHandle,
    jobs: usize,
    dir: &std::path::Path,
    auth: &str,
    poll: &str,
) -> String {
    BotToml::new(sim, &dir.join("bot.db"))
        .auth(auth)
        .poll(&format!("timeout_secs = 2\n{poll}"))
        .http(None)
        .jobs(jobs)
        .text()
}

fn password_auth(sim: &SimHandle, password: &str, margin: u64) -> String {
    format!(
        "method = \"password\"\ndomain = \"acme\"\nuser = \"codearts-bot\"\npassword = \"{password}\"\n\
         iam_endpoint = \"{}\"\nrefresh_margin_secs = {margin}",
        sim.base_url()
    )
}

fn aksk_auth(sk: &str) -> String {
    format!(
        "method = \"aksk\"\nak = \"{AK}\"\nsk = \"{sk}\"\nproject_id = \"0a1b2c3d4e5f60718293a4b5c6d7e8f9\""
    )
}

async fn bot(text: &str) -> Ctx {
    start_bot(Config::from_toml(text, "test", &|_| None).unwrap()).await
}

async fn stats(sim: &SimHandle) -> Value {
    sim.control().stats().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_keeps_polling_across_three_token_lifetimes_without_a_failed_poll() {
    let sim = simulator(3, Duration::from_secs(3)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = bot(&config_text(
        &sim,
        3,
        dir.path(),
        &password_auth(&sim, PASSWORD, 1),
        "",
    ))
    .await;
    app.client.auth().start_background();

    let started = Instant::now();
    let mut cycles = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let report = poller::run_cycle(&app).await.unwrap();
        assert_eq!(
            report.failed_total(),
            0,
            "cycle {cycles} at {:?}: {:?}",
            started.elapsed(),
            report.failed
        );
        assert_eq!(report.ok, 3);
        cycles += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = stats(&sim).await;
    let issued = stats["tokens_issued"].as_u64().unwrap();
    assert!(issued >= 3, "renewed across lifetimes: {stats}");
    // Renewed in the background once per lifetime or so (about every 2 s here), not by polls:
    // more than 60 polls ran.
    assert!(
        issued <= 10,
        "renewed by the background task, not on demand: {stats}"
    );
    assert_eq!(stats["token_requests"], stats["tokens_issued"]);
    assert_eq!(
        stats["by_status"].get("401"),
        None,
        "renewed ahead of expiry, never after: {stats}"
    );
    assert!(cycles > 20);
}

#[tokio::test]
async fn a_revoked_token_is_renewed_after_one_401() {
    let sim = simulator(3, Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = bot(&config_text(
        &sim,
        3,
        dir.path(),
        &password_auth(&sim, PASSWORD, 60),
        "concurrency = 1",
    ))
    .await;
    assert_eq!(poller::run_cycle(&app).await.unwrap().ok, 3);
    assert_eq!(stats(&sim).await["tokens_issued"], 1);

    assert_eq!(sim.control().revoke_tokens().await.unwrap(), 1);

    let report = poller::run_cycle(&app).await.unwrap();
    assert_eq!(
        report.failed_total(),
        0,
        "the 401 was followed by a renewal and a retry"
    );
    let stats = stats(&sim).await;
    assert_eq!(stats["by_status"]["401"], 1, "exactly one 401: {stats}");
    assert_eq!(stats["tokens_issued"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_polls_that_meet_a_revoked_token_share_one_renewal() {
    let sim = simulator(24, Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = bot(&config_text(
        &sim,
        24,
        dir.path(),
        &password_auth(&sim, PASSWORD, 60),
        "concurrency = 8",
    ))
    .await;
    assert_eq!(poller::run_cycle(&app).await.unwrap().ok, 24);
    sim.control().revoke_tokens().await.unwrap();

    let report = poller::run_cycle(&app).await.unwrap();
    assert_eq!(report.failed_total(), 0, "{report:?}");
    let stats = stats(&sim).await;
    // Every poll in flight when the token was revoked meets one 401 at most; the first renews,
    // the others retry with its token.
    let refused = stats["by_status"]["401"].as_u64().unwrap();
    assert!((1..=8).contains(&refused), "{stats}");
    assert_eq!(
        stats["tokens_issued"], 2,
        "one renewal for all of them: {stats}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_one_clear_error_and_no_job_events() {
    let sim = simulator(4, Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = bot(&config_text(
        &sim,
        4,
        dir.path(),
        &password_auth(&sim, "not-the-password-42", 60),
        "",
    ))
    .await;
    for _ in 0..3 {
        let report = poller::run_cycle(&app).await.unwrap();
        assert!(report.source_unreachable(), "blind: {report:?}");
        assert_eq!(report.failed.get("auth"), Some(&4));
        assert_eq!(report.events, 0);
    }
    let stats = stats(&sim).await;
    assert_eq!(
        stats["token_requests"], 1,
        "IAM asked once, then backed off: {stats}"
    );
    assert_eq!(stats["requests"], 0, "no API call without a token");
    let error = app
        .client
        .job_info(&sim::seeded_job_id(0))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("IAM refused the password of user \"codearts-bot\""),
        "{error}"
    );
    assert!(
        !error.contains("not-the-password-42"),
        "the password itself is never shown: {error}"
    );
    assert_eq!(app.store.event_count().await.unwrap(), 0);
}

#[tokio::test]
async fn aksk_bot_polls_and_a_wrong_sk_is_refused_without_a_retry_loop() {
    let sim = simulator(10, Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let good = bot(&config_text(&sim, 10, dir.path(), &aksk_auth(SK), "")).await;
    let report = poller::run_cycle(&good).await.unwrap();
    assert_eq!((report.ok, report.failed_total()), (10, 0), "{report:?}");

    let dir = tempfile::tempdir().unwrap();
    let bad = bot(&config_text(
        &sim,
        10,
        dir.path(),
        &aksk_auth("not-the-secret-key"),
        "concurrency = 8",
    ))
    .await;
    for _ in 0..3 {
        let report = poller::run_cycle(&bad).await.unwrap();
        assert_eq!(report.failed_total(), 10);
        assert_eq!(report.events, 0);
    }
    let stats = stats(&sim).await;
    assert_eq!(
        stats["aksk_failures"], 1,
        "one refused signature, then no more calls: {stats}"
    );
    assert_eq!(
        stats["aksk_locked"], false,
        "the gateway never locked the key"
    );
    let error = bad
        .client
        .job_info(&sim::seeded_job_id(0))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("refused the AK/SK signature"), "{error}");
    assert!(!error.contains("not-the-secret-key"));
}

/// Runs `codearts-bot run --once` on a config file with every log level on; returns stdout
/// and stderr together.
async fn run_once_with_trace_logs(config: std::path::PathBuf) -> String {
    let output = run_once(&config.display().to_string(), Some("trace")).await;
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_of_a_full_run() {
    let capture = CaptureServer::start().await;
    let hook_key = "hookkey-9f8e7d6c5b4a";
    let signing_key = "signing-key-0123456789";
    let security_token = "security-token-abcdef0123456789";
    let cases = [
        ("password", true),
        ("aksk", true),
        ("wrong password", false),
        ("wrong sk", false),
    ];
    let mut delivered = 0;
    for (name, works) in cases {
        let sim = simulator(2, Duration::from_secs(3600)).await;
        let auth = match name {
            "password" => password_auth(&sim, PASSWORD, 60),
            "aksk" => format!("{}\nsecurity_token = \"{security_token}\"", aksk_auth(SK)),
            "wrong password" => password_auth(&sim, "wrong-password-value", 60),
            _ => aksk_auth("wrong-sk-value-0000"),
        };
        let dir = tempfile::tempdir().unwrap();
        let channel = format!(
            "[[channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{signing_key}\"\n",
            capture.url(&format!("/hook/{hook_key}"))
        );
        let text = config_text(&sim, 2, dir.path(), &auth, "") + &channel;
        let path = dir.path().join("bot.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::from_toml(&text, "t", &|_| None).unwrap();

        // The first run is the baseline; a broken build between the runs makes the second one
        // deliver to the webhook, so the channel's URL and secret are really used.
        let mut logs = run_once_with_trace_logs(path.clone()).await;
        if works {
            sim.control()
                .put_job(
                    sim::seeded_job_id(0).as_str(),
                    serde_json::json!({"last_build_status": "failed",
                                       "last_build_time": 1_900_000_000_000_i64}),
                )
                .await
                .unwrap();
            logs += &run_once_with_trace_logs(path).await;
            delivered += 1;
            assert_eq!(capture.requests().len(), delivered, "{name}: delivered");
        }
        assert!(logs.len() > 1000, "{name}: trace logging ran");
        let clear_error = match name {
            "wrong password" => Some("IAM refused the password of user \"codearts-bot\""),
            "wrong sk" => Some("the API gateway refused the AK/SK signature for access key"),
            _ => None,
        };
        if let Some(clear_error) = clear_error {
            assert!(logs.contains(clear_error), "{name}: the error is logged");
        }
        logs += &format!("{config:?}\n{}", config.effective_toml());

        let issued: Vec<String> = sim.control().tokens().await.unwrap()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["token"].as_str().unwrap().to_owned())
            .collect();
        if name == "password" {
            assert_eq!(issued.len(), 2, "one token per run");
        }
        let mut secrets = vec![
            PASSWORD,
            SK,
            security_token,
            hook_key,
            signing_key,
            "wrong-password-value",
            "wrong-sk-value-0000",
            "MIIsim",
        ];
        secrets.extend(issued.iter().map(String::as_str));
        for secret in secrets {
            assert!(
                !logs.contains(secret),
                "{name}: {secret:?} leaked into the logs or Debug output"
            );
        }
    }
}

#[tokio::test]
async fn a_token_the_api_keeps_refusing_does_not_make_the_bot_ask_iam_on_every_poll() {
    let sim = simulator(6, Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = bot(&config_text(
        &sim,
        6,
        dir.path(),
        &password_auth(&sim, PASSWORD, 60),
        "concurrency = 2",
    ))
    .await;
    assert_eq!(poller::run_cycle(&app).await.unwrap().ok, 6);
    sim.control()
        .set_fault(serde_json::json!({"status": 401}))
        .await
        .unwrap();
    for _ in 0..3 {
        let report = poller::run_cycle(&app).await.unwrap();
        assert_eq!(report.failed.get("unauthorized"), Some(&6), "{report:?}");
    }
    let stats = stats(&sim).await;
    assert_eq!(
        stats["token_requests"], 2,
        "the first token, and one renewal after the first 401; not one per poll: {stats}"
    );
}
