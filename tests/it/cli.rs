//! The built binary, started as a user starts it: config files, environment, exit codes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::support::capture::CaptureServer;
use crate::support::harness::BotToml;
use codearts_bot::sim::{self, Control};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_codearts-bot");
const JOB: &str = "f5af662119404ad187437cd272b5099b";

fn bot(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CODEARTS_BOT_CONFIG")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

/// Runs the binary off the async runtime, so in-process servers keep answering meanwhile.
async fn bot_async(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        bot(&args, &env)
    })
    .await
    .expect("the binary's runner thread")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const GOOD: &str = r#"
[codearts]
region = "cn-north-4"
[codearts.auth]
token = "${TEST_TOKEN}"
[poll]
schedule = "0 * * * * *"
[[jobs]]
id = "f5af662119404ad187437cd272b5099b"
channels = ["ops"]
[[channels]]
name = "ops"
type = "stdout"
"#;

#[test]
fn config_check_accepts_a_good_file_and_the_example() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.toml", GOOD);
    let out = bot(
        &["config", "check", "--config", &path],
        &[("TEST_TOKEN", "t")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (1 jobs, 1 channels"));

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/codearts-bot.example.toml"
    );
    let out = bot(
        &["config", "check", "--config", example],
        &[
            ("CODEARTS_TOKEN", "t"),
            (
                "DISCORD_WEBHOOK_URL",
                "https://discord.com/api/webhooks/1/x",
            ),
            ("ALERT_WEBHOOK_URL", "https://example.com/hook"),
            ("ALERT_WEBHOOK_SECRET", "s"),
        ],
    );
    assert!(
        out.status.success(),
        "the example config is valid: {}",
        stderr(&out)
    );
}

#[test]
fn config_check_names_each_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown key",
            GOOD.replace("[poll]", "[poll]\nintervall = 5"),
            "unknown field `intervall`",
        ),
        (
            "bad cron",
            GOOD.replace("0 * * * * *", "every minute"),
            "poll.schedule",
        ),
        (
            "bad job id",
            GOOD.replace(JOB, "f5af6621"),
            "jobs[0].id: \"f5af6621\" is not a CodeArts job id",
        ),
        (
            "missing env var",
            GOOD.replace("TEST_TOKEN", "NOT_SET_ANYWHERE"),
            "environment variable NOT_SET_ANYWHERE is not set",
        ),
        ("not TOML", "[codearts\nregion=".to_owned(), "invalid TOML"),
    ];
    for (name, text, expected) in cases {
        let path = write(dir.path(), "bad.toml", &text);
        let out = bot(
            &["config", "check", "--config", &path],
            &[("TEST_TOKEN", "t")],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: exit code; stderr {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("bad.toml"), "{name}: names the file");
    }
}

#[test]
fn config_path_comes_from_the_environment_when_no_flag_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "env.toml", GOOD);
    let out = bot(
        &["config", "check"],
        &[("CODEARTS_BOT_CONFIG", &path), ("TEST_TOKEN", "t")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let missing = bot(&["config", "check", "--config", "/nonexistent/x.toml"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read the file"));
}

/// `codearts-bot sim` as a child process; killed on drop.
struct SimProcess {
    child: Child,
    url: String,
}

impl SimProcess {
    fn start() -> Self {
        let mut child = Command::new(BIN)
            .args([
                "sim",
                "--listen",
                "127.0.0.1:0",
                "--jobs",
                "2",
                "--job",
                JOB,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sim starts");
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        // The simulator prints more lines after the first (its token, how to use it). Were the
        // pipe closed here, a print after that would fail and end the simulator mid-test, as
        // timing allows; so the rest is read to its end in the background.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = first
            .trim()
            .rsplit(' ')
            .next()
            .expect("first line ends with the URL")
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{first}");
        Self { child, url }
    }

    fn control(&self) -> Control {
        Control::new(&self.url, sim::DEFAULT_TOKEN)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child simulator's job, one webhook channel; the token and the channel's URL and secret
/// come from the environment the test gives the binary.
fn run_config(sim: &SimProcess, db: &Path) -> String {
    BotToml::at(&sim.url, "${SIM_TOKEN}", db)
        .http(None)
        .job(JOB)
        .webhook("hooks", "${HOOK_URL}", "secret = \"${HOOK_SECRET}\"")
        .text()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_once_end_to_end_alerts_once_and_exits_3_when_codearts_is_down() {
    let sim = SimProcess::start();
    let capture = CaptureServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "bot.toml",
        &run_config(&sim, &dir.path().join("state/bot.db")),
    );
    let hook = capture.url("/hook");
    let env = [
        ("SIM_TOKEN", sim::DEFAULT_TOKEN),
        ("HOOK_URL", hook.as_str()),
        ("HOOK_SECRET", "k"),
        ("RUST_LOG", "info"),
    ];
    let run_once = ["run", "--config", config.as_str(), "--once"];

    let baseline = bot_async(&run_once, &env).await;
    assert!(baseline.status.success(), "{}", stderr(&baseline));
    sim.control()
        .put_job(
            JOB,
            json!({"last_build_status": "FAILED", "last_build_time": "1900000000000"}),
        )
        .await
        .unwrap();
    let alert = bot_async(&run_once, &env).await;
    assert!(alert.status.success(), "{}", stderr(&alert));
    let quiet = bot_async(&run_once, &env).await;
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    let received = capture.requests();
    assert_eq!(received.len(), 1, "one alert across three runs");
    assert_eq!(received[0].json()["event"], "build_failed");

    sim.control()
        .set_fault(json!({"status": 503}))
        .await
        .unwrap();
    let down = bot_async(&run_once, &env).await;
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("could not be polled"),
        "{}",
        stderr(&down)
    );
    assert_eq!(capture.requests().len(), 1, "an outage is not an alert");
    assert!(stderr(&alert).contains("job event"), "{}", stderr(&alert));
    for out in [&baseline, &alert, &quiet, &down] {
        assert!(
            !stderr(out).contains('\x1b'),
            "a log written to a pipe carries no colour escapes: {:?}",
            stderr(out)
        );
        assert!(!stderr(out).contains(&hook), "webhook URL never logged");
        assert!(
            !stderr(out).contains(sim::DEFAULT_TOKEN),
            "token never logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_prints_the_card_or_the_json_and_fails_clearly() {
    let sim = SimProcess::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "bot.toml",
        &run_config(&sim, &dir.path().join("bot.db")),
    );
    let env = [
        ("SIM_TOKEN", sim::DEFAULT_TOKEN),
        ("HOOK_URL", "http://127.0.0.1:9/"),
        ("HOOK_SECRET", "k"),
    ];
    sim.control()
        .put_job(JOB, json!({"job_name": "web-frontend", "health_score": 71}))
        .await
        .unwrap();
    let check = |extra: &'static str| ["check", "--config", config.as_str(), extra];

    let card = bot_async(&check(JOB), &env).await;
    assert!(card.status.success(), "{}", stderr(&card));
    let text = String::from_utf8_lossy(&card.stdout);
    assert!(
        text.contains("web-frontend") && text.contains("health score: 71"),
        "{text}"
    );

    let as_json = bot_async(&["check", "--config", config.as_str(), JOB, "--json"], &env).await;
    let info: serde_json::Value = serde_json::from_slice(&as_json.stdout).expect("JSON");
    assert_eq!(info["health_score"], 71);

    let invalid = bot_async(&check("not-a-job"), &env).await;
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stderr(&invalid).contains("32 ASCII letters or digits"));

    let unknown = bot_async(&check("00000000000000000000000000000000"), &env).await;
    assert_eq!(unknown.status.code(), Some(4), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("not found"));
}

#[test]
fn silences_from_the_shell_are_listed_and_refuse_what_they_cannot_mean() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let config = write(
        dir.path(),
        "bot.toml",
        &format!("{GOOD}\n[store]\npath = \"{}\"\n", db.display()),
    );
    let env = [("TEST_TOKEN", "t"), ("USER", "alice")];
    let out = bot(
        &[
            "mute",
            "all",
            "2h",
            "--reason",
            "release night",
            "--config",
            &config,
        ],
        &env,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("Muted all jobs until"), "{text}");

    let out = bot(&["silences", "--config", &config], &env);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("mute")
            && text.contains("all jobs")
            && text.contains("cli:alice: release night"),
        "{text}"
    );

    let out = bot(&["mute", JOB, "forever", "--config", &config], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a duration"), "{}", stderr(&out));
    let out = bot(&["ack", "12345", "--config", &config], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a job id"), "{}", stderr(&out));

    let out = bot(&["unmute", "all", "--config", &config], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bot(&["silences", "--config", &config], &env);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no silences in force"));
}
