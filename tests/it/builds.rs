//! One build's story, over loopback: builds made through the simulator's control API
//! (`POST /_sim/jobs/{id}/builds`) read back through the crate's real `Client`, as the alert
//! context will read them: which stage failed, the commit and its author, the last log lines,
//! the tests; why a job is disabled, where a deleted job went; running and stopping a build.

use std::time::Duration;

use codearts_bot::codearts::auth::{AkSk, AkSkSettings, Auth};
use codearts_bot::codearts::{Client, Error, ExecuteRequest, JobId, LogQuery};
use codearts_bot::sim::{SimConfig, SimHandle};
use codearts_bot::util::redact::Redactor;
use codearts_bot::util::secret::Secret;
use serde_json::json;

use crate::support::harness::simulator_with;

const JOB: &str = "b0b0b0b0c1c1c1c1d2d2d2d2e3e3e3e3";
const COMMIT: &str = "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a";
const AK: &str = "HPUABUILDSIT00000001";
const SK: &str = "builds-it-secret-key-000000000000000000x";

async fn simulator() -> SimHandle {
    simulator_with(SimConfig {
        aksk: Some((AK.to_owned(), SK.to_owned())),
        ..SimConfig::default()
    })
    .await
}

fn client(sim: &SimHandle) -> Client {
    Client::new(
        &sim.base_url(),
        Auth::Token(Secret::new(sim.token())),
        Duration::from_secs(5),
    )
    .expect("a client")
}

fn aksk_client(sim: &SimHandle) -> Client {
    Client::new(
        &sim.base_url(),
        Auth::AkSk(AkSk::new(AkSkSettings {
            ak: AK.to_owned(),
            sk: Secret::new(SK),
            project_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".to_owned(),
            security_token: None,
        })),
        Duration::from_secs(5),
    )
    .expect("a client")
}

fn job() -> JobId {
    JobId::parse(JOB).expect("a valid id")
}

/// A failed build: three stages, the second failed, a log with secrets in it, a test report.
async fn failed_build(sim: &SimHandle) -> u32 {
    let control = sim.control();
    control
        .put_job(JOB, json!({"job_name": "web-frontend"}))
        .await
        .expect("job created");
    control
        .create_build(JOB, json!({"status": "success", "user": "bob"}))
        .await
        .expect("a first, green build");
    let log = [
        "[INFO] Cloning https://ci:hunter2@codehub.example.com/team/web.git",
        "[INFO] npm ci",
        "curl -H 'Authorization: Bearer abc123def456ghi789' https://api.test/v1",
        "export CLOUD_SDK_AK=HPUAL6NHO1XQ4KSVPX9Z",
        "[ERROR] 2 tests failed: cart.spec.ts, checkout.spec.ts @everyone",
        "[ERROR] Stage \"Unit tests\" failed: exit code 1",
    ]
    .join("\n");
    let created = control
        .create_build(
            JOB,
            json!({
                "status": "failed",
                "branch": "feature/checkout",
                "commit": COMMIT,
                "commit_message": "checkout: retry the payment call\n\nCloses #12",
                "user": "alice",
                "trigger_type": "Push",
                "stages": [
                    {"name": "Install", "status": "success", "duration_ms": 4000},
                    {"name": "Unit tests", "status": "failed", "duration_ms": 2500},
                    {"name": "Package", "status": "skipped", "duration_ms": 0}
                ],
                "log": log,
                "tests": {"total": 120, "failures": 2, "errors": 0},
                "err_msg": "Command exited with code 1 in stage Unit tests",
                "parameters": [{"name": "codeBranch", "value": "feature/checkout"}]
            }),
        )
        .await
        .expect("the failed build");
    assert_eq!(created.build_no, 2);
    assert_eq!(created.record_id.len(), 36);
    created.build_no
}

#[tokio::test]
async fn a_failed_build_reads_back_with_its_stage_commit_author_and_log_tail() {
    let sim = simulator().await;
    let build_no = failed_build(&sim).await;
    let client = client(&sim);
    let job = job();

    // The job's state follows the build.
    let info = client.job_info(&job).await.unwrap();
    assert_eq!(info.last_build_status.as_deref(), Some("failed"));
    assert_eq!(info.build_time.as_deref(), Some("6.50"));
    let running = client.running_status(&job).await.unwrap();
    assert_eq!(running.last_build_no, Some(build_no));
    assert_eq!(running.is_running, Some(false));

    let record = client.build_record(&job, build_no).await.unwrap();
    assert_eq!(record.commit.as_deref(), Some(COMMIT));
    assert_eq!(record.branch.as_deref(), Some("feature/checkout"));
    assert_eq!(record.trigger_type.as_deref(), Some("Push"));
    assert_eq!(
        record
            .commit_message
            .as_deref()
            .and_then(|m| m.lines().next()),
        Some("checkout: retry the payment call")
    );
    assert!(record.err_msg.as_deref().unwrap().contains("Unit tests"));
    assert_eq!(record.duration, Some(6500));

    let who = client.build_info(&job, build_no).await.unwrap();
    assert_eq!(who.who(), Some("alice"));
    assert!(who.commit_detail_url.as_deref().unwrap().ends_with(COMMIT));

    let record_id = record.build_record_id.expect("a record id");
    let stages = client.build_stages(&record_id).await.unwrap();
    let failed = stages
        .first_failed(|s| s.eq_ignore_ascii_case("failed"))
        .expect("a failed stage");
    assert_eq!((failed.name(), failed.duration), ("Unit tests", Some(2500)));
    assert_eq!(stages.0.len(), 3);

    let tail = client.log_tail(&job, build_no, 2).await.unwrap();
    assert_eq!(
        tail.lines,
        [
            "[ERROR] 2 tests failed: cart.spec.ts, checkout.spec.ts @everyone",
            "[ERROR] Stage \"Unit tests\" failed: exit code 1"
        ]
    );
    assert!(tail.truncated);

    let tests = client.test_summary(&job, build_no).await.unwrap().unwrap();
    assert_eq!(
        (tests.total, tests.failures, tests.errors),
        (Some(120), Some(2), Some(0))
    );
    assert_eq!(
        client.test_summary(&job, 1).await.unwrap(),
        None,
        "no report"
    );

    let params = client.build_parameters(&job, build_no).await.unwrap();
    assert_eq!(params[0].value.as_deref(), Some("feature/checkout"));

    let by_api = sim.control().by_api().await.unwrap();
    for op in [
        "ShowRunningStatus",
        "ShowJobBuildRecordDetail",
        "ShowBuildInfoRecord",
        "ShowBuildRecordFullStages",
        "DownloadBuildRealTimeLog",
        "ListBuildParameter",
    ] {
        assert_eq!(by_api[op], 1, "{op}");
    }
    assert_eq!(by_api["ShowReportSummary"], 2);
    sim.stop().await;
}

#[tokio::test]
async fn the_whole_log_tail_redacted_keeps_the_story_and_loses_the_secrets() {
    let sim = simulator().await;
    let build_no = failed_build(&sim).await;
    let tail = client(&sim).log_tail(&job(), build_no, 20).await.unwrap();
    assert_eq!(tail.lines.len(), 6);
    assert!(!tail.truncated);

    let shown = Redactor::new([sim.token()]).lines(&tail.lines).join("\n");
    for secret in ["hunter2", "abc123def456ghi789", "HPUAL6NHO1XQ4KSVPX9Z"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    assert!(!shown.contains("@everyone"), "{shown}");
    assert!(shown.contains("cart.spec.ts, checkout.spec.ts"), "{shown}");
    assert!(
        shown.contains("codehub.example.com/team/web.git"),
        "{shown}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn the_log_pages_backwards_with_desc_and_offsets() {
    let sim = simulator().await;
    let control = sim.control();
    control.put_job(JOB, json!({})).await.unwrap();
    let log: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
    let created = control
        .create_build(JOB, json!({"log": log.join("\n")}))
        .await
        .unwrap();
    let client = aksk_client(&sim);
    let last = client
        .build_log(&job(), created.build_no, LogQuery::tail(3))
        .await
        .unwrap();
    assert_eq!(last.lines(), ["line 7", "line 8", "line 9"]);
    assert_eq!((last.start_offset, last.has_more), (Some(7), Some(true)));
    let before = LogQuery {
        end_offset: last.start_offset.map(|o| o as u64),
        ..LogQuery::tail(3)
    };
    let earlier = client
        .build_log(&job(), created.build_no, before)
        .await
        .unwrap();
    assert_eq!(earlier.lines(), ["line 4", "line 5", "line 6"]);
    let from_start = LogQuery {
        size: Some(2),
        ..LogQuery::default()
    };
    let first = client
        .build_log(&job(), created.build_no, from_start)
        .await
        .unwrap();
    assert_eq!(first.lines(), ["line 0", "line 1"]);
    assert_eq!(sim.control().stats().await.unwrap()["aksk_failures"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn build_calls_share_the_faults_the_errors_and_the_job_checks() {
    let sim = simulator().await;
    let build_no = failed_build(&sim).await;
    let client = client(&sim);
    let control = sim.control();

    control
        .set_fault(json!({"status": 500, "count": 1}))
        .await
        .unwrap();
    let err = client.build_record(&job(), build_no).await.unwrap_err();
    assert_eq!(err.kind(), "server_error");

    // A fault aimed at one operation: the log fails, the rest of the context does not.
    control
        .set_fault(json!({"status": 500, "api": "DownloadBuildRealTimeLog"}))
        .await
        .unwrap();
    let err = client.log_tail(&job(), build_no, 5).await.unwrap_err();
    assert_eq!(err.kind(), "server_error");
    assert!(client.build_record(&job(), build_no).await.is_ok());
    control.clear_faults().await.unwrap();

    let err = client.build_record(&job(), 99).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let err = client.build_record(&job(), 0).await.unwrap_err();
    assert_eq!(err.kind(), "malformed", "build 0 never leaves the client");
    let err = client.build_stages("../../v1/job/list").await.unwrap_err();
    assert_eq!(err.kind(), "malformed");

    control
        .put_job(JOB, json!({"_sim_fail": "record store is busy"}))
        .await
        .unwrap();
    let err = client.log_tail(&job(), build_no, 5).await.unwrap_err();
    assert_eq!(err.kind(), "api_failed");
    assert!(err.to_string().contains("record store is busy"), "{err}");

    control
        .put_job(JOB, json!({"_sim_fail": null, "_sim_forbidden": true}))
        .await
        .unwrap();
    let err = client.running_status(&job()).await.unwrap_err();
    assert!(matches!(err, Error::Forbidden(_)), "{err:?}");

    let stranger = Client::new(
        &sim.base_url(),
        Auth::Token(Secret::new("not-the-token")),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = stranger.disable_info(&job()).await.unwrap_err();
    assert_eq!(err.kind(), "unauthorized");
    sim.stop().await;
}

#[tokio::test]
async fn a_disabled_job_says_who_and_why_and_a_deleted_one_is_in_the_recycle_bin() {
    let sim = simulator().await;
    let control = sim.control();
    control
        .put_job(JOB, json!({"job_name": "nightly-e2e"}))
        .await
        .unwrap();
    let client = client(&sim);

    let enabled = client.disable_info(&job()).await.unwrap();
    assert_eq!((enabled.disabled, enabled.at), (Some(false), None));
    control
        .put_job(
            JOB,
            json!({"disabled": true, "_sim_disabled_by": "carol",
                   "_sim_disabled_reason": "flaky until the staging DB is back"}),
        )
        .await
        .unwrap();
    let disabled = client.disable_info(&job()).await.unwrap();
    assert_eq!(disabled.disabled, Some(true));
    assert_eq!(disabled.by.as_deref(), Some("carol"));
    assert_eq!(
        disabled.reason.as_deref(),
        Some("flaky until the staging DB is back")
    );
    assert!(disabled.at.is_some());

    assert!(client.recycled_jobs(1, 10).await.unwrap().jobs.is_empty());
    control.delete_job(JOB).await.unwrap();
    let err = client.job_info(&job()).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)));
    let bin = client.recycled_jobs(1, 10).await.unwrap();
    assert_eq!(bin.total, Some(1));
    assert_eq!(bin.jobs[0].job_id.as_deref(), Some(JOB));
    assert_eq!(bin.jobs[0].job_name.as_deref(), Some("nightly-e2e"));
    assert!(bin.jobs[0].deleted_at.is_some());

    // Created again, it leaves the bin.
    control.put_job(JOB, json!({})).await.unwrap();
    assert_eq!(client.recycled_jobs(1, 10).await.unwrap().total, Some(0));
    sim.stop().await;
}

#[tokio::test]
async fn an_executed_build_runs_then_ends_as_configured_and_a_stop_aborts_one() {
    let sim = simulator().await;
    let control = sim.control();
    control
        .put_job(
            JOB,
            json!({"_sim_next_build": {"status": "failed", "duration_ms": 300}}),
        )
        .await
        .unwrap();
    // Signed with AK/SK, body included.
    let client = aksk_client(&sim);
    let run = ExecuteRequest {
        parameters: vec![("release".to_owned(), "1.4.0".to_owned())],
        commit_id: Some(COMMIT.to_owned()),
        tag: None,
    };
    let started = client.execute_job(&job(), &run).await.unwrap();
    assert_eq!(started.build_no, Some(1));
    let status = client.running_status(&job()).await.unwrap();
    assert_eq!(status.is_running, Some(true));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let record = client.build_record(&job(), 1).await.unwrap();
        if record.status.as_deref() != Some("running") {
            break record;
        }
        assert!(tokio::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record.status.as_deref(), Some("failed"));
    assert_eq!(record.commit.as_deref(), Some(COMMIT));
    let params = client.build_parameters(&job(), 1).await.unwrap();
    assert_eq!(params[0].name.as_deref(), Some("release"));

    control
        .put_job(JOB, json!({"_sim_next_build": {"duration_ms": 600_000}}))
        .await
        .unwrap();
    let second = client
        .execute_job(&job(), &ExecuteRequest::default())
        .await
        .unwrap();
    assert_eq!(second.build_no, Some(2));
    client.stop_build(&job(), 2).await.unwrap();
    let info = client.job_info(&job()).await.unwrap();
    assert_eq!(info.last_build_status.as_deref(), Some("aborted"));
    let err = client.stop_build(&job(), 2).await.unwrap_err();
    assert_eq!(
        err.kind(),
        "bad_request",
        "a finished build cannot be stopped"
    );

    let by_api = control.by_api().await.unwrap();
    assert_eq!((by_api["ExecuteJob"], by_api["StopTheJob"]), (2, 2));
    assert_eq!(control.stats().await.unwrap()["aksk_failures"], 0);
    sim.stop().await;
}

/// Polls ShowJobInfo until the job's latest build no longer runs (at most 10 s).
async fn job_info_once_finished(client: &Client) -> codearts_bot::codearts::JobInfo {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = client.job_info(&job()).await.unwrap();
        if info.running_status.as_deref() != Some("Running") {
            return info;
        }
        assert!(tokio::time::Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue #15's contract: `_sim_build_ms` and `_sim_next_result` decide how long an executed
/// build runs and how it ends; the job's fields move with it; StopTheJob aborts a long one.
#[tokio::test]
async fn the_build_flags_decide_how_long_an_executed_build_runs_and_how_it_ends() {
    let sim = simulator().await;
    let control = sim.control();
    let before = control
        .put_job(
            JOB,
            json!({"_sim_build_ms": 300, "_sim_next_result": "failed"}),
        )
        .await
        .unwrap();
    assert_eq!(
        before["_sim_build_ms"], 300,
        "the control API shows the flags"
    );
    assert_eq!(before["_sim_next_result"], "failed");
    let client = client(&sim);
    let run = ExecuteRequest {
        parameters: vec![
            ("release".to_owned(), "1.4.0".to_owned()),
            ("env".to_owned(), "staging".to_owned()),
        ],
        commit_id: Some(COMMIT.to_owned()),
        tag: None,
    };
    let started = client.execute_job(&job(), &run).await.unwrap();
    assert_eq!(started.build_no, Some(1));

    // Running: every view of the job says so, with the new build's number.
    let status = client.running_status(&job()).await.unwrap();
    assert_eq!(status.last_build_no, Some(1));
    assert_eq!(status.is_running, Some(true));
    assert_eq!(status.last_build_status.as_deref(), Some("running"));
    let info = client.job_info(&job()).await.unwrap();
    assert_eq!(info.running_status.as_deref(), Some("Running"));
    assert_eq!(info.last_build_status.as_deref(), Some("running"));
    let started_at = info.last_build_time.expect("the new build's start");
    assert_ne!(
        before["last_build_time"], started_at,
        "the new build's time"
    );

    // After ~0.3 s it ends as flagged: failed, with a failed stage and a reason.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info = job_info_once_finished(&client).await;
    assert_eq!(info.last_build_status.as_deref(), Some("failed"));
    assert_eq!(info.running_status.as_deref(), Some("Finished"));
    assert_eq!(info.last_build_time, Some(started_at));
    let status = client.running_status(&job()).await.unwrap();
    assert_eq!(status.is_running, Some(false));
    assert_eq!(status.last_build_status.as_deref(), Some("failed"));
    let record = client.build_record(&job(), 1).await.unwrap();
    assert_eq!(record.commit.as_deref(), Some(COMMIT));
    let duration = record.duration.expect("a duration");
    assert!((300..2000).contains(&duration), "{duration} ms");
    assert!(
        record
            .err_msg
            .as_deref()
            .is_some_and(|m| m.contains("Build")),
        "{:?}",
        record.err_msg
    );
    let stages = client
        .build_stages(record.build_record_id.as_deref().unwrap())
        .await
        .unwrap();
    let failed = stages
        .first_failed(|s| s == "failed")
        .expect("a failed stage");
    assert_eq!(failed.display_name.as_deref(), Some("Build"));
    let params = client.build_parameters(&job(), 1).await.unwrap();
    let params: Vec<_> = params
        .iter()
        .map(|p| (p.name.as_deref().unwrap(), p.value.as_deref().unwrap()))
        .collect();
    assert_eq!(params, [("release", "1.4.0"), ("env", "staging")]);

    // A long one is stopped: aborted, whatever `_sim_next_result` says.
    control
        .put_job(JOB, json!({"_sim_build_ms": 5000}))
        .await
        .unwrap();
    let second = client
        .execute_job(&job(), &ExecuteRequest::default())
        .await
        .unwrap();
    assert_eq!(second.build_no, Some(2));
    assert_eq!(
        client.running_status(&job()).await.unwrap().is_running,
        Some(true)
    );
    client.stop_build(&job(), 2).await.unwrap();
    let info = client.job_info(&job()).await.unwrap();
    assert_eq!(info.last_build_status.as_deref(), Some("aborted"));
    assert_eq!(info.running_status.as_deref(), Some("Finished"));
    let status = client.running_status(&job()).await.unwrap();
    assert_eq!(
        (status.last_build_no, status.is_running),
        (Some(2), Some(false))
    );

    // `null` clears the flags back to the defaults.
    let cleared = control
        .put_job(
            JOB,
            json!({"_sim_build_ms": null, "_sim_next_result": null}),
        )
        .await
        .unwrap();
    assert!(cleared.get("_sim_build_ms").is_none() && cleared.get("_sim_next_result").is_none());
    let by_api = control.by_api().await.unwrap();
    assert_eq!((by_api["ExecuteJob"], by_api["StopTheJob"]), (2, 1));
    assert_eq!(by_api["ListBuildParameter"], 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_bad_build_flag_is_refused_naming_it() {
    let sim = simulator().await;
    let control = sim.control();
    for (body, flag) in [
        (json!({"_sim_build_ms": 600_001}), "_sim_build_ms"),
        (json!({"_sim_build_ms": "fast"}), "_sim_build_ms"),
        (json!({"_sim_next_result": "running"}), "_sim_next_result"),
        (json!({"_sim_next_result": 1}), "_sim_next_result"),
    ] {
        let err = control.put_job(JOB, body).await.unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains(flag), "{err}");
    }
    sim.stop().await;
}
