//! Restarting: a bot started again on the same database with the same 10,000-job config
//! writes nothing to the watch list (issue #18). Counted by triggers the test adds to the
//! database file, so every connection of the restarted process is counted, whichever one
//! the sync runs on (`total_changes()` counts one connection only).

use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::support::harness::BotToml;
use codearts_bot::app;

/// Counts every row written to `watched_jobs` from now on, in a table of the database.
async fn count_watch_writes(db: &std::path::Path) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::from_str("sqlite:")
        .expect("options")
        .filename(db)
        .connect()
        .await
        .expect("database opens");
    for sql in [
        "CREATE TABLE test_watch_writes (n INTEGER NOT NULL)",
        "INSERT INTO test_watch_writes VALUES (0)",
        "CREATE TRIGGER test_watch_insert AFTER INSERT ON watched_jobs
         BEGIN UPDATE test_watch_writes SET n = n + 1; END",
        "CREATE TRIGGER test_watch_update AFTER UPDATE ON watched_jobs
         BEGIN UPDATE test_watch_writes SET n = n + 1; END",
        "CREATE TRIGGER test_watch_delete AFTER DELETE ON watched_jobs
         BEGIN UPDATE test_watch_writes SET n = n + 1; END",
    ] {
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }
    conn
}

async fn watch_writes(conn: &mut SqliteConnection) -> i64 {
    sqlx::query_scalar("SELECT n FROM test_watch_writes")
        .fetch_one(conn)
        .await
        .expect("counter")
}

/// Starts the bot as `run` does (store opened, config synced, snapshots loading) and stops it.
async fn restart(toml: &BotToml) {
    let ctx = app::start_polling(toml.config()).await.expect("bot starts");
    ctx.store.close().await;
}

#[tokio::test]
async fn restarting_with_an_unchanged_10000_job_config_writes_no_watch_list_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bot.db");
    // Nothing listens there: starting builds the client but sends nothing.
    let toml = BotToml::at("http://127.0.0.1:9", "t", &db).jobs(10_000);
    restart(&toml).await;
    let mut counter = count_watch_writes(&db).await;

    restart(&toml).await;
    restart(&toml).await;
    assert_eq!(
        watch_writes(&mut counter).await,
        0,
        "an unchanged config wrote rows"
    );

    // The counter does count: one job fewer in the file is one row deleted.
    let text = toml.text();
    let last = text.rfind("[[jobs]]").expect("the config has jobs");
    let cut = dir.path().join("fewer.toml");
    std::fs::write(&cut, &text[..last]).expect("config written");
    let config = codearts_bot::config::Config::load(&cut).expect("config loads");
    assert_eq!(config.jobs.len(), 9_999);
    let ctx = app::start_polling(config).await.expect("bot starts");
    ctx.store.close().await;
    assert_eq!(watch_writes(&mut counter).await, 1);
    counter.close().await.expect("close");
}
