//! Authentication that lasts, against the simulator over loopback: IAM password tokens renewed
//! across several lifetimes and after a revocation, a wrong password as one clear error, AK/SK
//! signing accepted and a wrong key refused without a retry loop, and no secret in any log.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use codearts_bot::app::App;
use codearts_bot::config::Config;
use codearts_bot::poller;
use codearts_bot::sim::{self, SimHandle};
use serde_json::Value;
use support::capture::CaptureServer;

const BIN: &str = env!("CARGO_BIN_EXE_codearts-bot");
const PASSWORD: &str = "correct-horse-battery-staple";
const AK: &str = "HPUAKEXAMPLE0000001";
const SK: &str = "sKExampleSecretKey0000000000000000000001";

async fn simulator(jobs: usize, ttl: Duration) -> SimHandle {
    sim::spawn(sim::SimConfig {
        jobs,
        iam_users: vec![format!("acme/codearts-bot:{PASSWORD}").parse().unwrap()],
        token_ttl: ttl,
        aksk: Some((AK.to_owned(), SK.to_owned())),
        ..sim::SimConfig::default()
    })
    .await
    .unwrap()
}

fn config_text(
    sim: &SimHandle,
    jobs: usize,
    dir: &std::path::Path,
    auth: &str,
    extra: &str,
) -> String {
    let list: String = (0..jobs)
        .map(|i| format!("[[jobs]]\nid = \"{}\"\n", sim::seeded_job_id(i)))
        .collect();
    format!(
        "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{url}\"\n[codearts.auth]\n{auth}\n\
         [poll]\ntimeout_secs = 2\n{extra}\n[store]\npath = \"{db}\"\n{list}",
        url = sim.base_url(),
        db = dir.join("bot.db").display(),
    )
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

async fn bot(text: &str) -> App {
    App::start(Config::from_toml(text, "test", &|_| None).unwrap())
        .await
        .unwrap()
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
    assert!(
        stats["tokens_issued"].as_u64().unwrap() >= 3,
        "renewed across lifetimes: {stats}"
    );
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

    let revoked: Value = reqwest::Client::new()
        .delete(format!("{}/_sim/tokens", sim.base_url()))
        .header("X-Auth-Token", sim.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1);

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
    let error = bad
        .client
        .job_info(&sim::seeded_job_id(0))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("refused the AK/SK signature"), "{error}");
    assert!(!error.contains("not-the-secret-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs_of_a_full_run() {
    let sim = simulator(2, Duration::from_secs(3600)).await;
    let capture = CaptureServer::start().await;
    let hook_key = "hookkey-9f8e7d6c5b4a";
    let signing_key = "signing-key-0123456789";
    let security_token = "security-token-abcdef0123456789";
    for (name, auth) in [
        ("password", password_auth(&sim, PASSWORD, 60)),
        (
            "aksk",
            format!("{}\nsecurity_token = \"{security_token}\"", aksk_auth(SK)),
        ),
        (
            "wrong password",
            password_auth(&sim, "wrong-password-value", 60),
        ),
        ("wrong sk", aksk_auth("wrong-sk-value-0000")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let channel = format!(
            "[[channels]]\nname = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{signing_key}\"\n",
            capture.url(&format!("/hook/{hook_key}"))
        );
        let text = config_text(&sim, 2, dir.path(), &auth, "") + &channel;
        let path = dir.path().join("bot.toml");
        std::fs::write(&path, &text).unwrap();
        let config = Config::from_toml(&text, "t", &|_| None).unwrap();
        let debug = format!("{config:?}\n{}", config.effective_toml());
        let output = tokio::task::spawn_blocking(move || {
            Command::new(BIN)
                .args(["run", "--once", "--config", path.to_str().unwrap()])
                .env("RUST_LOG", "trace")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let logs = format!(
            "{}{}{debug}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(logs.len() > 1000, "{name}: trace logging ran");
        for secret in [
            PASSWORD,
            SK,
            security_token,
            hook_key,
            signing_key,
            "wrong-password-value",
            "wrong-sk-value-0000",
            "MIIsim",
        ] {
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
    eprintln!("{stats}");
    assert!(stats["token_requests"].as_u64().unwrap() <= 2, "{stats}");
}
