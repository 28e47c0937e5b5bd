//! `codearts-bot store migrate` end to end (docs/postgres.md): a bot on SQLite alerts, the real
//! binary copies its file into a scratch PostgreSQL database, and a bot on that database goes
//! on from the same state: it alerts nothing again, knows the open incident and the mute, and
//! alerts the next change once. A second copy into the same database is refused.
//!
//! Needs `CODEARTS_BOT_TEST_PG` (docs/postgres.md, "The PostgreSQL tests"); skipped without it.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::harness::{BIN, Env, start_bot, tick};
use codearts_bot::domain::silence::Scope;
use codearts_bot::engine::silences;
use codearts_bot::store::Dialect;
use codearts_bot::store::scratch::ScratchDb;
use codearts_bot::util::secret::Secret;

/// `codearts-bot store migrate --from <from> --to <to>`, off the async runtime.
async fn migrate(from: &Path, to: &str) -> Output {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["store", "migrate", "--from"])
            .arg(&from)
            .args(["--to", &to])
            .env_remove("CODEARTS_BOT_CONFIG")
            .env("RUST_LOG", "info")
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the binary's runner thread")
}

/// (event, job id) of every message the capture server accepted.
fn received(env: &Env) -> Vec<(String, String)> {
    env.capture
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["event"].as_str().unwrap_or_default().to_owned(),
                body["job_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts that the output shows neither the URL nor its user and password.
fn no_secret(out: &Output, url: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(url), "the URL was printed: {text}");
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    if let Some((userinfo, _)) = authority.split_once('@') {
        assert!(
            !text.contains(&format!("{userinfo}@")),
            "the user or password was printed: {text}"
        );
    }
}

#[tokio::test]
async fn a_sqlite_deployment_moves_to_postgres_and_alerts_nothing_again() {
    let Some(server) = ScratchDb::server_or_skip("store_migrate: a SQLite deployment moves") else {
        return;
    };
    // It starts on a SQLite file, whichever pass of the suite this is.
    let env = Env::start_on_sqlite(3).await;
    let toml = env.toml().delivery("group_wait_ms = 0").jobs(3).webhook(
        "ops",
        &env.capture.url("/ops"),
        "",
    );
    let (failing, muted, quiet) = (env.job(0), env.job(1), env.job(2));

    // (1) On SQLite: a baseline, a failure alerted (an incident opens), a mute.
    let bot = start_bot(toml.config()).await;
    tick(&bot).await;
    env.fail(&failing, 9_000_000_000_000).await;
    tick(&bot).await;
    silences::mute(&bot, &muted, "2h", Some("deploy"), "cli:alice")
        .await
        .expect("muted");
    assert_eq!(
        received(&env),
        vec![("build_failed".to_owned(), failing.clone())]
    );
    bot.store.close().await;
    drop(bot);

    // (2) The binary copies the file into an empty database.
    let db = ScratchDb::create(&server).await.expect("scratch database");
    let out = migrate(&env.db(), db.url()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    no_secret(&out, db.url());
    for line in [
        "copied 3 rows of watched_jobs",
        "copied 3 rows of job_state",
        "copied 1 rows of events",
        "copied 1 rows of deliveries",
        "copied 1 rows of incidents",
        "copied 1 rows of silences",
        "copied 0 rows of actions",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout}");
    }
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("copied ")).count(),
        14,
        "one line per copied table: {stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("migrated ") && last.contains("(leases are not copied"),
        "{stdout}"
    );

    // (3) A bot on PostgreSQL goes on from there.
    let mut config = toml.config();
    config.store.url = Some(Secret::new(db.url()));
    config.store.path = None;
    let bot = start_bot(config).await;
    assert_eq!(bot.store.dialect(), Dialect::Postgres);
    let incidents = bot.store.open_incidents().await.expect("incidents");
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].0.job_id, failing);
    let mutes = bot.store.open_silences().await.expect("silences");
    assert_eq!(mutes.len(), 1);
    assert_eq!(mutes[0].scope, Scope::parse(&muted).unwrap());
    assert_eq!(mutes[0].created_by, "cli:alice");

    let report = tick(&bot).await;
    assert_eq!(report.events, 0, "the copied snapshots are the baseline");
    assert_eq!(received(&env).len(), 1, "nothing is sent again");
    assert_eq!(bot.store.outbox_counts().await.unwrap().pending, 0);

    // The next changes: the muted job's failure is recorded, not sent; the other one is sent
    // once (new ids continue past the copied ones).
    env.fail(&muted, 9_000_000_000_000).await;
    env.fail(&quiet, 9_000_000_000_000).await;
    let report = tick(&bot).await;
    assert_eq!(report.events, 2);
    assert_eq!(
        received(&env)[1..],
        [("build_failed".to_owned(), quiet.clone())]
    );
    bot.store.close().await;
    drop(bot);

    // (4) A second copy into the same database is refused, naming the first table with rows.
    let again = migrate(&env.db(), db.url()).await;
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("table watched_jobs holds rows") && stderr.contains("empty database"),
        "{stderr}"
    );
    assert!(again.stdout.is_empty(), "nothing reported as copied");
    no_secret(&again, db.url());
}

#[tokio::test]
async fn bad_arguments_are_refused_before_anything_is_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.db");
    let url = "postgres://me:hunter2@127.0.0.1:1/codearts";

    let out = migrate(&missing, url).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no SQLite file at"), "{stderr}");
    assert!(!missing.exists(), "a missing file is not created");
    no_secret(&out, url);

    let out = migrate(&missing, "mysql://me:hunter2@127.0.0.1/codearts").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to: must be a PostgreSQL URL"));
    no_secret(&out, "mysql://me:hunter2@127.0.0.1/codearts");

    // A server that does not answer: a runtime failure, and the password stays out of it.
    std::fs::write(dir.path().join("bot.db"), b"").expect("an empty file");
    let out = migrate(&dir.path().join("bot.db"), url).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("postgres://127.0.0.1:1/codearts"),
        "{stderr}"
    );
    no_secret(&out, url);
}
