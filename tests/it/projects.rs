//! Project subscriptions: a channel with `projects = [...]` watches every job the project
//! lists, over loopback to the simulator's ShowJobListByProjectId, with a real SQLite file.

use std::time::Duration;

use crate::support::capture::CaptureServer;
use crate::support::harness::{Env, start_bot, tick, wraps_env};
use codearts_bot::config::Config;
use codearts_bot::engine::Ctx;
use codearts_bot::engine::discovery;
use codearts_bot::sim;
use serde_json::json;

const TEAM_PROJECT: &str = "85caf40575794f989920-5216d1148af6";
const OTHER_PROJECT: &str = "0000f40575794f989920-000000000000";

fn job_id(project: u8, i: usize) -> String {
    format!("{project:02x}{i:030x}")
}

/// The shared [`Env`] with no seeded jobs: each test adds its projects' jobs.
struct Harness(Env);

wraps_env!(Harness, 0);

impl Harness {
    async fn start() -> Self {
        Self(Env::start_with(sim::SimConfig::default()).await)
    }

    async fn add_jobs(&self, project: &str, tag: u8, n: usize) {
        let control = self.sim.control();
        for i in 0..n {
            control
                .put_job(&job_id(tag, i), json!({"project_id": project}))
                .await
                .expect("job created");
        }
    }

    /// A `team` channel subscribed to [`TEAM_PROJECT`] and an `everything` channel.
    async fn bot(&self) -> Ctx {
        let config = self
            .toml()
            .delivery("group_wait_ms = 200")
            .webhook(
                "team",
                &self.capture.url("/team"),
                &format!("projects = [\"{TEAM_PROJECT}\"]"),
            )
            .webhook("everything", &self.capture.url("/everything"), "")
            .config();
        start_bot(config).await
    }
}

fn paths_and_jobs(capture: &CaptureServer) -> Vec<(String, String, String)> {
    capture
        .requests()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                r.path.clone(),
                body["event"].as_str().unwrap_or_default().to_owned(),
                body["job_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_subscribed_project_is_watched_page_by_page_and_alerts_only_its_channel() {
    let h = Harness::start().await;
    // 205 jobs need three pages of 100.
    h.add_jobs(TEAM_PROJECT, 0xa1, 205).await;
    h.add_jobs(OTHER_PROJECT, 0xb2, 3).await;
    let bot = h.bot().await;

    let baseline = tick(&bot).await;
    assert_eq!(
        (baseline.jobs, baseline.ok, baseline.events),
        (205, 205, 0),
        "every job of the subscribed project, and only those, is polled; a first sight is no event"
    );

    let broken = job_id(0xa1, 7);
    h.sim
        .control()
        .put_job(&broken, json!({"last_build_status": "failed"}))
        .await
        .unwrap();
    tick(&bot).await;
    assert_eq!(
        paths_and_jobs(&h.capture),
        vec![(
            "/team".to_owned(),
            "build_failed".to_owned(),
            broken.clone()
        )],
        "the subscribing channel hears of it; a channel that did not subscribe does not"
    );
}

#[tokio::test]
async fn new_jobs_join_deleted_jobs_are_reported_then_dropped_and_an_outage_keeps_the_list() {
    let h = Harness::start().await;
    h.add_jobs(TEAM_PROJECT, 0xa1, 3).await;
    let bot = h.bot().await;
    assert_eq!(tick(&bot).await.jobs, 3);

    // A job created in the project joins at the next listing, without an event.
    h.add_jobs(TEAM_PROJECT, 0xa1, 4).await;
    let listed = discovery::refresh(&bot).await.unwrap();
    assert_eq!((listed.listed, listed.dropped), (4, 0));
    let report = tick(&bot).await;
    assert_eq!((report.jobs, report.events), (4, 0));

    // A deleted job leaves the listing, but is polled once more so its deletion is reported.
    let deleted = job_id(0xa1, 1);
    h.sim.control().delete_job(&deleted).await.unwrap();
    let listed = discovery::refresh(&bot).await.unwrap();
    assert_eq!((listed.listed, listed.dropped), (3, 0));
    let report = tick(&bot).await;
    assert_eq!((report.jobs, report.not_found, report.events), (4, 1, 1));
    assert_eq!(
        paths_and_jobs(&h.capture),
        vec![("/team".to_owned(), "job_not_found".to_owned(), deleted)]
    );
    let listed = discovery::refresh(&bot).await.unwrap();
    assert_eq!(
        listed.dropped, 1,
        "seen gone, the job leaves the watch list"
    );
    assert_eq!(tick(&bot).await.jobs, 3);

    // The listing fails: nothing is unwatched.
    h.sim
        .control()
        .set_fault(json!({"status": 503, "count": 1}))
        .await
        .unwrap();
    let listed = discovery::refresh(&bot).await.unwrap();
    assert_eq!(listed.failed.len(), 1);
    assert!(listed.failed[TEAM_PROJECT].contains("503"), "{listed:?}");
    assert_eq!(listed.dropped, 0);
    assert_eq!(tick(&bot).await.jobs, 3);

    // A restart on the same database changes nothing and sends nothing.
    drop(bot);
    let before = h.capture.requests().len();
    let bot = h.bot().await;
    let report = tick(&bot).await;
    assert_eq!((report.jobs, report.events), (3, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.capture.requests().len(), before);
}

#[tokio::test]
async fn a_project_id_that_cannot_be_one_is_refused_with_its_key() {
    let text = r#"
        [codearts]
        region = "cn-north-4"
        endpoint = "http://127.0.0.1:1"
        [codearts.auth]
        token = "t"
        [[channels]]
        name = "team"
        type = "stdout"
        projects = ["../v1/job"]
    "#;
    let err = Config::from_toml(text, "test config", &|_| None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("channels[0].projects[0]"), "{text}");
    assert!(text.contains("not a CodeArts project id"), "{text}");
}
