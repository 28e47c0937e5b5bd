//! Alert semantics end to end over the simulator, a capture server and a real SQLite file:
//! the "monitoring blind" state, silences (mute, unmute, expiry, ack), maintenance windows,
//! and restarts in the middle of each.

use std::time::Duration;

use crate::support::harness::{Env, discord_bot_channel, start_bot, tick_as_run, wraps_env};
use chrono::Utc;
use codearts_bot::config::Config;
use codearts_bot::domain::silence::{Kind, Scope};
use codearts_bot::engine::Ctx;
use codearts_bot::sim;
use serde_json::{Value, json};

/// The shared [`Env`], plus what the alert tests read back.
struct Harness(Env);

wraps_env!(Harness, 0);

impl Harness {
    async fn start(jobs: usize) -> Self {
        Self(Env::start(jobs).await)
    }

    /// Two jobs, an `ops` channel that opted in to source alerts and a `team` channel that
    /// did not; `extra` is appended (maintenance windows).
    fn config(&self, extra: &str) -> Config {
        self.toml()
            .table("[rules]\nblind_after = 3")
            .delivery("group_wait_ms = 0")
            .jobs(2)
            .webhook("ops", &self.capture.url("/ops"), "source_alerts = true")
            .webhook("team", &self.capture.url("/team"), "")
            .table(extra)
            .config()
    }

    async fn bot(&self) -> Ctx {
        start_bot(self.config("")).await
    }

    /// What each channel received: (path, event kind, job id).
    fn received(&self) -> Vec<(String, String, String)> {
        self.capture
            .requests()
            .iter()
            .flat_map(|r| {
                let body = r.json();
                // One event per message, or a batch with `events`.
                let events: Vec<Value> = match body.get("events") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => vec![body],
                };
                events
                    .into_iter()
                    .map(|e| {
                        (
                            r.path.clone(),
                            e["event"].as_str().unwrap_or_default().to_owned(),
                            e["job_id"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.received().into_iter().map(|(_, k, _)| k).collect()
    }
}

#[tokio::test]
async fn an_outage_gives_one_blind_alert_and_one_recovery_across_a_restart_and_no_job_events() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    assert_eq!(tick_as_run(&bot).await.ok, 2);

    h.sim
        .control()
        .set_fault(json!({"status": 503, "count": 1000}))
        .await
        .unwrap();
    for _ in 0..4 {
        assert!(tick_as_run(&bot).await.source_unreachable());
    }
    assert_eq!(
        h.received(),
        vec![(
            "/ops".to_owned(),
            "source_unreachable".to_owned(),
            String::new()
        )],
        "one alert after blind_after = 3 cycles, only to the channel that opted in"
    );
    let alert = h.capture.requests()[0].json();
    assert!(
        alert["summary"]
            .as_str()
            .unwrap()
            .contains("server_error: 2"),
        "the cause is named: {alert}"
    );

    // A restart in the middle of the outage neither repeats the alert nor forgets it.
    drop(bot);
    let bot = h.bot().await;
    for _ in 0..3 {
        tick_as_run(&bot).await;
    }
    assert_eq!(h.kinds(), vec!["source_unreachable"]);

    // Meanwhile a job really broke: once CodeArts answers, that is reported, with the recovery.
    h.sim.control().clear_faults().await.unwrap();
    h.fail(&h.job(0), 9_000_000_000_000).await;
    tick_as_run(&bot).await;
    let mut kinds = h.kinds();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            "build_failed",
            "build_failed",
            "source_recovered",
            "source_unreachable"
        ],
        "the real change reaches both channels; nothing is invented from the gap"
    );
    let recovered = h
        .capture
        .requests()
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["event"] == "source_recovered")
        .unwrap();
    assert!(
        recovered["summary"]
            .as_str()
            .unwrap()
            .contains("7 failed cycles"),
        "{recovered}"
    );
    tick_as_run(&bot).await;
    assert_eq!(h.kinds().len(), 4, "nothing more once things are normal");
}

#[tokio::test]
async fn a_mute_records_without_sending_and_its_end_summarises_the_still_broken_job() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    tick_as_run(&bot).await;
    let job = h.job(0);

    let done =
        codearts_bot::engine::silences::mute(&bot, &job, "1h", Some("deploy freeze"), "slack:U1")
            .await
            .unwrap();
    assert!(done.contains("Muted job"), "{done}");
    h.fail(&job, 9_000_000_000_000).await;
    let report = tick_as_run(&bot).await;
    assert_eq!(report.events, 1);
    assert!(h.received().is_empty(), "muted: recorded, not sent");
    let history = bot
        .store
        .events_for(&sim::seeded_job_id(0), 5)
        .await
        .unwrap();
    assert_eq!(
        history[0].1.as_deref(),
        Some("muted #1 by slack:U1: deploy freeze"),
        "/history shows why it was not sent"
    );

    // A restart keeps the mute.
    drop(bot);
    let bot = h.bot().await;
    h.fail(&job, 9_000_000_000_001).await;
    tick_as_run(&bot).await;
    assert!(h.received().is_empty());

    // Unmuting early sends one summary of what is still broken, to the job's channels.
    let done = codearts_bot::engine::silences::unmute(&bot, &job, "slack:U2")
        .await
        .unwrap();
    assert!(done.contains("Unmuted"), "{done}");
    bot.dispatcher().drain_due().await.unwrap();
    let received = h.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        received
            .iter()
            .all(|(_, kind, id)| kind == "silence_ended" && *id == job)
    );
    let summary = h.capture.requests()[0].json()["summary"].clone();
    assert!(
        summary.as_str().unwrap().contains("still broken")
            && summary.to_string().contains("U2 unmuted it"),
        "{summary}"
    );
    assert!(
        codearts_bot::engine::silences::unmute(&bot, &job, "x")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn an_expired_silence_summarises_once_and_a_healthy_one_says_nothing() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    tick_as_run(&bot).await;
    h.fail(&h.job(1), 9_000_000_000_000).await;
    let now = Utc::now();
    let soon = now + chrono::Duration::milliseconds(800);
    bot.store
        .add_silence(Kind::Mute, &Scope::All, "cli:alice", "", now, soon)
        .await
        .unwrap();
    tick_as_run(&bot).await; // the failure is muted
    assert!(h.received().is_empty());
    tokio::time::sleep(Duration::from_millis(900)).await;
    tick_as_run(&bot).await; // the sweep ends it: one summary naming the broken job
    let kinds = h.kinds();
    assert_eq!(
        kinds,
        vec!["silence_ended", "silence_ended"],
        "both channels of the job"
    );
    tick_as_run(&bot).await;
    assert_eq!(h.kinds().len(), 2, "once");
    assert!(bot.store.open_silences().await.unwrap().is_empty());

    // A mute over healthy jobs ends quietly.
    h.sim
        .control()
        .put_job(
            &h.job(1),
            json!({"last_build_status": "success", "last_build_time": 9_000_000_000_001_i64}),
        )
        .await
        .unwrap();
    tick_as_run(&bot).await;
    let before = h.kinds().len();
    let now = Utc::now();
    bot.store
        .add_silence(
            Kind::Mute,
            &Scope::All,
            "cli:alice",
            "",
            now,
            now + chrono::Duration::milliseconds(300),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    tick_as_run(&bot).await;
    assert_eq!(h.kinds().len(), before);
}

#[tokio::test]
async fn an_ack_holds_repeats_lets_the_recovery_through_and_ends_with_it() {
    let h = Harness::start(2).await;
    let bot = h.bot().await;
    tick_as_run(&bot).await;
    let job = h.job(0);
    assert!(
        codearts_bot::engine::silences::ack(&bot, &job, "discord:1")
            .await
            .unwrap_err()
            .to_string()
            .contains("not failing"),
        "nothing to acknowledge on a healthy job"
    );
    h.fail(&job, 9_000_000_000_000).await;
    tick_as_run(&bot).await;
    assert_eq!(h.kinds(), vec!["build_failed", "build_failed"]);
    codearts_bot::engine::silences::ack(&bot, &job, "discord:1")
        .await
        .unwrap();
    h.fail(&job, 9_000_000_000_001).await;
    tick_as_run(&bot).await;
    assert_eq!(h.kinds().len(), 2, "still failing is held while acked");
    h.sim
        .control()
        .put_job(
            &job,
            json!({"last_build_status": "success", "last_build_time": 9_000_000_000_002_i64}),
        )
        .await
        .unwrap();
    tick_as_run(&bot).await;
    assert_eq!(h.kinds()[2..], ["build_recovered", "build_recovered"]);
    tick_as_run(&bot).await;
    assert!(
        bot.store.open_silences().await.unwrap().is_empty(),
        "the recovery ended the ack"
    );
}

#[tokio::test]
async fn a_maintenance_window_records_and_sends_nothing() {
    let h = Harness::start(2).await;
    // A window starting every minute and lasting two: always open.
    let config = h.config(
        r#"
        [[maintenance]]
        name = "always"
        start = "0 * * * * *"
        duration_mins = 2
        timezone = "Asia/Shanghai"
        "#,
    );
    let bot = start_bot(config).await;
    tick_as_run(&bot).await;
    h.fail(&h.job(0), 9_000_000_000_000).await;
    assert_eq!(tick_as_run(&bot).await.events, 1);
    assert!(h.received().is_empty());
    let history = bot
        .store
        .events_for(&sim::seeded_job_id(0), 1)
        .await
        .unwrap();
    assert_eq!(history[0].1.as_deref(), Some("maintenance window always"));
}

#[tokio::test]
async fn an_incident_is_one_discord_message_edited_in_place_across_a_restart_then_resolved() {
    let h = Harness::start(1).await;
    let mut config = h.config("");
    config.jobs.truncate(1);
    config.channels = vec![
        toml::from_str(&format!(
            "name = \"discord\"\ntype = \"discord\"\nurl = \"{}\"",
            h.capture.url("/api/webhooks/1/tok")
        ))
        .unwrap(),
        toml::from_str(&format!(
            "name = \"hooks\"\ntype = \"webhook\"\nurl = \"{}\"",
            h.capture.url("/hooks")
        ))
        .unwrap(),
    ];
    let mut bot = start_bot(config.clone()).await;
    tick_as_run(&bot).await;
    let job = h.job(0);
    h.fail(&job, 9_000_000_000_000).await;
    tick_as_run(&bot).await;
    for build in 1..=3 {
        if build == 2 {
            // A restart in the middle: the incident and its message are in the database.
            drop(bot);
            bot = start_bot(config.clone()).await;
        }
        h.fail(&job, 9_000_000_000_000 + build).await;
        tick_as_run(&bot).await;
    }
    h.sim
        .control()
        .put_job(
            &job,
            json!({"last_build_status": "success", "last_build_time": 9_000_000_000_010_i64}),
        )
        .await
        .unwrap();
    tick_as_run(&bot).await;
    drop(bot);
    let bot = start_bot(config).await;
    tick_as_run(&bot).await;

    let discord: Vec<_> = h
        .capture
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/webhooks/"))
        .collect();
    let shape: Vec<(String, String)> = discord
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    // The capture server numbers the messages it creates; every edit targets the first one.
    let edit_path = shape[1].1.clone();
    let message = edit_path
        .strip_prefix("/api/webhooks/1/tok/messages/")
        .and_then(|rest| rest.strip_suffix("?with_components=true"));
    assert!(
        message.is_some_and(|id| id.parse::<u64>().is_ok()),
        "{edit_path}"
    );
    assert_eq!(
        shape,
        vec![
            (
                "POST".to_owned(),
                "/api/webhooks/1/tok?wait=true&with_components=true".to_owned()
            ),
            ("PATCH".to_owned(), edit_path.clone()),
            ("PATCH".to_owned(), edit_path.clone()),
            ("PATCH".to_owned(), edit_path.clone()),
            (
                "POST".to_owned(),
                "/api/webhooks/1/tok?wait=true&with_components=true".to_owned()
            ),
            ("PATCH".to_owned(), edit_path.clone()),
        ],
        "one message, edited for each of the 3 failed builds; the recovery is a new message and \
         the incident's message is marked resolved"
    );
    let third_edit = discord[3].json().to_string();
    assert!(third_edit.contains("4 failed builds"), "{third_edit}");
    let resolved = discord[5].json().to_string();
    assert!(
        resolved.contains("Resolved after") && resolved.contains("4 failed builds"),
        "{resolved}"
    );
    assert!(discord[4].json().to_string().contains("Build fixed"));

    // A platform that cannot edit gets each event as its own message.
    let hooks: Vec<String> = h
        .received()
        .into_iter()
        .filter(|(path, _, _)| path == "/hooks")
        .map(|(_, kind, _)| kind)
        .collect();
    assert_eq!(
        hooks,
        vec![
            "build_failed",
            "build_still_failing",
            "build_still_failing",
            "build_still_failing",
            "build_recovered"
        ]
    );
}

#[tokio::test]
async fn reminders_repeat_while_broken_and_stop_on_ack_and_recovery() {
    let h = Harness::start(2).await;
    let mut config = h.config("");
    config.channels[0].remind_every_mins = Some(10); // ops; team has no reminders
    let bot = start_bot(config).await;
    tick_as_run(&bot).await;
    let job = h.job(0);
    h.fail(&job, 9_000_000_000_000).await;
    tick_as_run(&bot).await;
    let remind = |minutes: i64| {
        let bot = bot.clone();
        async move {
            let at = Utc::now() + chrono::Duration::minutes(minutes);
            let n = codearts_bot::engine::reminders::send_reminders(&bot, at)
                .await
                .unwrap();
            bot.dispatcher().drain_due().await.unwrap();
            n
        }
    };
    assert_eq!(remind(5).await, 0, "not yet");
    assert_eq!(remind(11).await, 1, "ops only");
    assert_eq!(remind(12).await, 0, "once per interval");
    assert_eq!(remind(22).await, 1);
    let reminders: Vec<_> = h
        .received()
        .into_iter()
        .filter(|(_, kind, _)| kind == "incident_reminder")
        .collect();
    assert_eq!(reminders.len(), 2);
    assert!(
        reminders
            .iter()
            .all(|(path, _, id)| path == "/ops" && *id == job)
    );
    let text = h
        .capture
        .requests()
        .into_iter()
        .map(|r| r.json())
        .find(|b| b["event"] == "incident_reminder")
        .unwrap()["summary"]
        .to_string();
    assert!(
        text.contains("Still broken") && text.contains("1 failed build"),
        "{text}"
    );

    // An ack stops them; so does the recovery.
    codearts_bot::engine::silences::ack(&bot, &job, "slack:U1")
        .await
        .unwrap();
    assert_eq!(remind(40).await, 0, "acked");
    h.sim
        .control()
        .put_job(
            &job,
            json!({"last_build_status": "success", "last_build_time": 9_000_000_000_001_i64}),
        )
        .await
        .unwrap();
    tick_as_run(&bot).await;
    assert_eq!(remind(60).await, 0, "recovered: no open incident");
}

#[tokio::test]
async fn a_flaky_jobs_flips_go_to_the_daily_digest_where_asked_and_say_so_elsewhere() {
    let h = Harness::start(2).await;
    let mut config = h.config("");
    config.channels[1].flaky_digest = true; // team: digest; ops: every flip, marked flaky
    let bot = start_bot(config).await;
    tick_as_run(&bot).await;
    assert_eq!(
        codearts_bot::engine::digests::send_digests(&bot, Utc::now())
            .await
            .unwrap(),
        0,
        "the first call starts the clock"
    );
    let job = h.job(0);
    for build in 1..=6_i64 {
        let status = if build % 2 == 1 { "failed" } else { "success" };
        h.sim
            .control()
            .put_job(
                &job,
                json!({"last_build_status": status, "last_build_time": 9_000_000_000_000 + build}),
            )
            .await
            .unwrap();
        tick_as_run(&bot).await;
    }
    let received = h.received();
    let ops: Vec<&String> = received
        .iter()
        .filter(|(p, _, _)| p == "/ops")
        .map(|(_, k, _)| k)
        .collect();
    let team: Vec<&String> = received
        .iter()
        .filter(|(p, _, _)| p == "/team")
        .map(|(_, k, _)| k)
        .collect();
    assert_eq!(ops.len(), 6, "every flip on the channel without the digest");
    // The baseline counts as a build: S, then F S F S F S: flaky from the 4th flip on.
    assert_eq!(team.len(), 3, "flips before the job was flaky: {team:?}");
    let last_ops = h
        .capture
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/ops")
        .unwrap()
        .json();
    assert!(
        last_ops["summary"]
            .as_str()
            .unwrap()
            .contains("flaky: 6 flips"),
        "{last_ops}"
    );
    let history = bot
        .store
        .events_for(&sim::seeded_job_id(0), 1)
        .await
        .unwrap();
    assert_eq!(history[0].1, None, "sent to ops, so not suppressed");

    let queued =
        codearts_bot::engine::digests::send_digests(&bot, Utc::now() + chrono::Duration::hours(25))
            .await
            .unwrap();
    assert_eq!(queued, 1);
    bot.dispatcher().drain_due().await.unwrap();
    let digest = h
        .capture
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r.json()))
        .find(|(_, b)| b["event"] == "flaky_digest")
        .unwrap();
    assert_eq!(digest.0, "/team");
    let summary = digest.1["summary"].as_str().unwrap().to_owned();
    assert!(
        summary.contains(&sim::seeded_job_name(0)) && summary.contains("SFSFSFS"),
        "{summary}"
    );
    assert_eq!(
        codearts_bot::engine::digests::send_digests(&bot, Utc::now() + chrono::Duration::hours(26))
            .await
            .unwrap(),
        0,
        "one a day"
    );
}

#[tokio::test]
async fn a_discord_bot_channel_edits_the_incident_message_through_serenity() {
    use crate::support::capture::Reply;
    let h = Harness::start(1).await;
    let mut config = h.config("");
    config.jobs.truncate(1);
    discord_bot_channel(&mut config, &h.capture.url(""));
    let bot = start_bot(config).await;
    tick_as_run(&bot).await;
    // Discord answers a bot's message with the message object.
    h.capture.script(vec![Reply::json(
        200,
        json!({"id": "555000000000000001", "channel_id": "123456789012345678", "type": 0}),
    )]);
    let job = h.job(0);
    h.fail(&job, 9_000_000_000_000).await;
    tick_as_run(&bot).await;
    h.fail(&job, 9_000_000_000_001).await;
    tick_as_run(&bot).await;
    let sent: Vec<(String, String)> = h
        .capture
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        sent,
        vec![
            (
                "POST".to_owned(),
                "/api/v10/channels/123456789012345678/messages".to_owned()
            ),
            (
                "PATCH".to_owned(),
                "/api/v10/channels/123456789012345678/messages/555000000000000001".to_owned()
            ),
        ]
    );
    let edit = h.capture.requests()[1].json().to_string();
    assert!(edit.contains("2 failed builds"), "{edit}");
}
