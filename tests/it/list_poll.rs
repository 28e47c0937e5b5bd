//! Polling through the job lists (`poll.mode`): what a user counts on is that a list cycle
//! costs a call per 100 jobs, finds exactly what one ShowJobInfo per job finds, never reads a
//! job's absence from a page as an event, and survives a list it may not read.

use std::collections::BTreeSet;
use std::time::Duration;

use codearts_bot::codearts::JobId;
use codearts_bot::domain::event::EventKind;
use codearts_bot::engine::Ctx;
use codearts_bot::sim::{self, SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::support::harness::{BotToml, Env, job, run_once, start_bot, tick, tick_as_run};

/// `n` seeded jobs, each pinned with its project (seeded job `i` is in project `i % projects`).
fn pinned(sim: &SimHandle, db: &std::path::Path, n: usize, projects: usize, mode: &str) -> BotToml {
    let mut toml = BotToml::new(sim, db).poll(&format!("timeout_secs = 5\nmode = \"{mode}\""));
    for i in 0..n {
        toml = toml.table(&format!(
            "[[jobs]]\nid = \"{}\"\nproject = \"{}\"",
            job(i),
            sim::seeded_project_id(i % projects)
        ));
    }
    toml
}

async fn by_api(sim: &SimHandle, api: &str) -> u64 {
    let counts = sim.control().by_api().await.unwrap();
    counts.get(api).copied().unwrap_or(0)
}

async fn fail(sim: &SimHandle, i: usize, at: i64) {
    sim.control()
        .put_job(
            &job(i),
            json!({"last_build_status": "failed", "last_build_time": at}),
        )
        .await
        .unwrap();
}

/// The (job, kind) of every event `bot` recorded for `jobs`.
async fn events_of(
    bot: &Ctx,
    jobs: impl Iterator<Item = usize>,
) -> BTreeSet<(String, &'static str)> {
    let mut out = BTreeSet::new();
    for i in jobs {
        let id = JobId::parse(&job(i)).unwrap();
        for (event, _) in bot.store.events_for(&id, 10).await.unwrap() {
            out.insert((event.job_id, event.kind.as_str()));
        }
    }
    out
}

#[tokio::test]
async fn list_mode_polls_2000_jobs_with_25_calls_and_finds_what_job_mode_finds() {
    let env = Env::start_with(SimConfig {
        jobs: 2_000,
        projects: 5,
        ..SimConfig::default()
    })
    .await;
    let sim = &env.sim;
    let list =
        start_bot(pinned(sim, &env.dir.path().join("list.db"), 2_000, 5, "list").config()).await;
    let per_job =
        start_bot(pinned(sim, &env.dir.path().join("job.db"), 2_000, 5, "job").config()).await;

    sim.control().reset_stats().await.unwrap();
    let baseline = tick(&list).await;
    assert_eq!(
        (baseline.ok, baseline.listed, baseline.events),
        (2_000, 2_000, 0)
    );
    let pages = by_api(sim, "ListProjectJobs").await;
    assert!(
        pages <= 25,
        "2,000 jobs in 5 projects took {pages} list calls"
    );
    assert_eq!(
        by_api(sim, "ShowJobInfo").await,
        0,
        "no job needed its own call"
    );
    assert_eq!(tick(&per_job).await.events, 0);

    let failed: Vec<usize> = (0..2_000).step_by(40).collect();
    assert_eq!(failed.len(), 50);
    for &i in &failed {
        fail(sim, i, 1_900_000_000_000).await;
    }
    sim.control().reset_stats().await.unwrap();
    let report = tick(&list).await;
    assert_eq!(report.events, 50);
    assert!(by_api(sim, "ListProjectJobs").await <= 25);
    assert_eq!(by_api(sim, "ShowJobInfo").await, 0);
    assert_eq!(tick(&per_job).await.events, 50);

    let from_lists = events_of(&list, 0..2_000).await;
    let from_jobs = events_of(&per_job, 0..2_000).await;
    let expected: BTreeSet<(String, &'static str)> = failed
        .iter()
        .map(|&i| (job(i), EventKind::BuildFailed.as_str()))
        .collect();
    assert_eq!(from_lists, expected);
    assert_eq!(
        from_jobs, expected,
        "both modes report the same jobs and kinds"
    );

    // Nothing changed: a steady list cycle records nothing, and switching the source of a
    // job's answer (ShowJobInfo's has a running status and a duration) is not a change.
    let steady = tick(&list).await;
    assert_eq!((steady.events, steady.ok), (0, 2_000));
}

#[tokio::test]
async fn a_deleted_job_is_reported_once_after_show_job_info_confirms_it() {
    let env = Env::start_with(SimConfig {
        jobs: 250,
        ..SimConfig::default()
    })
    .await;
    let sim = &env.sim;
    let bot = start_bot(
        pinned(sim, &env.dir.path().join("bot.db"), 250, 1, "list")
            .table("[rules]\nmissing_after = 2")
            .config(),
    )
    .await;
    tick(&bot).await;
    sim.control().delete_job(&job(7)).await.unwrap();

    let mut kinds = Vec::new();
    for _ in 0..4 {
        sim.control().reset_stats().await.unwrap();
        let report = tick(&bot).await;
        assert_eq!(
            by_api(sim, "ShowJobInfo").await,
            1,
            "only the missing job is asked"
        );
        assert_eq!(report.not_found, 1);
        kinds.extend(events_of(&bot, [7].into_iter()).await);
    }
    let kinds: BTreeSet<_> = kinds.into_iter().collect();
    assert_eq!(
        kinds,
        BTreeSet::from([(job(7), EventKind::JobNotFound.as_str())])
    );
    assert_eq!(bot.store.event_count().await.unwrap(), 1, "reported once");
}

#[tokio::test]
async fn a_job_that_drops_off_a_shifting_page_produces_nothing() {
    let env = Env::start_with(SimConfig {
        jobs: 250,
        ..SimConfig::default()
    })
    .await;
    let sim = &env.sim;
    let bot = start_bot(pinned(sim, &env.dir.path().join("bot.db"), 250, 1, "list").config()).await;
    tick(&bot).await;

    // Page 0 as if a job had been deleted ahead of the 100th while the list was read: its
    // last entry is gone and the first page-1 job shows up twice (at the end of page 0 and
    // again on page 1).
    let project = sim::seeded_project_id(0);
    let page = |index: u32| {
        let url = format!(
            "{}/v1/job/{project}/list?page_index={index}&page_size=100",
            sim.base_url()
        );
        let token = sim.token().to_owned();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("X-Auth-Token", token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut shifted = page(0).await;
    let second = page(1).await;
    let jobs = shifted["jobs"].as_array_mut().unwrap();
    let dropped = jobs.pop().unwrap()["id"].as_str().unwrap().to_owned();
    jobs.push(second["jobs"][0].clone());
    sim.control()
        .set_fault(json!({
            "status": 200, "body": shifted.to_string(), "count": 1,
            "api": "ListProjectJobs", "path": format!("/v1/job/{project}/list"),
        }))
        .await
        .unwrap();

    sim.control().reset_stats().await.unwrap();
    let report = tick(&bot).await;
    assert_eq!(report.events, 0, "a shifted page is not a change");
    assert_eq!(report.ok, 250, "the duplicate counts once");
    assert_eq!(
        by_api(sim, "ShowJobInfo").await,
        1,
        "only the job no page showed ({dropped}) is asked about"
    );
    assert_eq!(bot.store.event_count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_project_whose_list_is_forbidden_falls_back_to_per_job_calls_alone() {
    let env = Env::start_with(SimConfig {
        jobs: 450,
        projects: 3,
        ..SimConfig::default()
    })
    .await;
    let sim = &env.sim;
    let bot = start_bot(pinned(sim, &env.dir.path().join("bot.db"), 450, 3, "list").config()).await;
    let refused = sim::seeded_project_id(1);
    sim.control()
        .set_fault(json!({
            "status": 403, "api": "ListProjectJobs", "path": format!("/v1/job/{refused}/list"),
        }))
        .await
        .unwrap();

    for round in 0..2 {
        if round == 1 {
            fail(sim, 1, 1_900_000_000_000).await; // in the refused project
            fail(sim, 2, 1_900_000_000_000).await; // in a listed one
        }
        sim.control().reset_stats().await.unwrap();
        let report = tick_as_run(&bot).await;
        assert_eq!(report.list_failed.get("forbidden"), Some(&1));
        assert_eq!(report.ok, 450);
        assert_eq!(
            report.listed, 300,
            "the other two projects are still read by list"
        );
        assert_eq!(
            by_api(sim, "ShowJobInfo").await,
            150,
            "one call per job of the refused project"
        );
        assert_eq!(report.events, round * 2);
    }
    let events = events_of(&bot, 0..450).await;
    assert_eq!(
        events,
        BTreeSet::from([
            (job(1), EventKind::BuildFailed.as_str()),
            (job(2), EventKind::BuildFailed.as_str())
        ])
    );
    assert_eq!(
        bot.store.source_state().await.unwrap().failed_cycles,
        0,
        "a list the credentials may not read is not blindness"
    );
}

#[tokio::test]
async fn projects_star_watches_every_visible_job_through_list_job() {
    let env = Env::start_with(SimConfig {
        jobs: 30,
        projects: 3,
        ..SimConfig::default()
    })
    .await;
    let (sim, capture) = (&env.sim, &env.capture);
    let toml = BotToml::new(sim, &env.dir.path().join("bot.db"))
        .delivery("group_wait_ms = 0")
        .webhook("all", &capture.url("/all"), "projects = [\"*\"]");
    let bot = start_bot(toml.config()).await;

    sim.control().reset_stats().await.unwrap();
    let first = tick(&bot).await;
    assert_eq!(first.jobs, 30, "every job of every project is watched");
    assert_eq!(first.listed, 30);
    assert_eq!(by_api(sim, "ShowJobInfo").await, 0);
    assert!(by_api(sim, "ListJob").await >= 1);

    fail(sim, 29, 1_900_000_000_000).await; // in project 2
    let report = tick(&bot).await;
    assert_eq!(report.events, 1);
    let sent = capture.wait_for(1, Duration::from_secs(5)).await;
    let body = sent[0].json();
    assert_eq!(body["event"], "build_failed", "{body}");
    assert_eq!(body["job_id"], job(29), "{body}");
}

#[tokio::test]
async fn restarting_in_list_mode_after_job_mode_sends_nothing() {
    let env = Env::start(120).await;
    let (sim, capture) = (&env.sim, &env.capture);
    let db = env.dir.path().join("bot.db");
    let write = |mode: &str| {
        let toml = pinned(sim, &db, 120, 1, mode)
            .delivery("group_wait_ms = 0")
            .webhook("hooks", &capture.url("/h"), "");
        let path = env.dir.path().join(format!("{mode}.toml"));
        std::fs::write(&path, toml.text()).unwrap();
        path.display().to_string()
    };
    let (job_mode, list_mode) = (write("job"), write("list"));
    for config in [&job_mode, &list_mode, &list_mode, &job_mode] {
        let out = run_once(config, None).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let last = run_once(&list_mode, None).await;
    let stderr = String::from_utf8_lossy(&last.stderr);
    assert!(
        stderr.contains("120 ok (120 read from 2 list pages)"),
        "{stderr}"
    );
    assert!(stderr.contains(" 0 events in "), "{stderr}");
    assert!(capture.requests().is_empty(), "nothing was sent");
}

/// The ids of a project's list, in the list's order, as the API pages them.
async fn listed_ids(sim: &SimHandle, project: &str, pages: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut ids = Vec::new();
    for page in 0..pages {
        let body: Value = http
            .get(format!(
                "http://{}/v1/job/{project}/list?page_index={page}&page_size=100",
                sim.addr()
            ))
            .header("X-Auth-Token", sim.token())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for entry in body["jobs"].as_array().unwrap() {
            ids.push(entry["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

#[tokio::test]
async fn reading_pages_ahead_asks_for_exactly_the_pages_a_read_in_turn_would() {
    let env = Env::start_with(SimConfig {
        jobs: 1_000,
        projects: 1,
        ..SimConfig::default()
    })
    .await;
    let sim = &env.sim;
    let project = sim::seeded_project_id(0);

    // Every job watched: `total` ends the read after its 10 pages, not one more.
    let all =
        start_bot(pinned(sim, &env.dir.path().join("all.db"), 1_000, 1, "list").config()).await;
    sim.control().reset_stats().await.unwrap();
    let report = tick(&all).await;
    assert_eq!((report.ok, report.listed), (1_000, 1_000));
    assert_eq!(by_api(sim, "ListProjectJobs").await, 10);

    // The watched jobs are the first 250 of the list: the read stops at the page showing the
    // last of them (the third), and pages asked ahead never go past it.
    let first = listed_ids(sim, &project, 3).await;
    let mut toml = BotToml::new(sim, &env.dir.path().join("some.db"))
        .poll("timeout_secs = 5\nmode = \"list\"");
    for id in &first[..250] {
        toml = toml.table(&format!("[[jobs]]\nid = \"{id}\"\nproject = \"{project}\""));
    }
    let some = start_bot(toml.config()).await;
    sim.control().reset_stats().await.unwrap();
    let report = tick(&some).await;
    assert_eq!((report.ok, report.listed), (250, 250));
    assert_eq!(by_api(sim, "ListProjectJobs").await, 3);
    assert_eq!(by_api(sim, "ShowJobInfo").await, 0);
}
