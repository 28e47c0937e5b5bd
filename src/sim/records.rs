//! The `result` objects of the per-build operations, built from a job and its [`Build`]s in
//! the official SDK's models (every field, its declared type):
//! ShowRunningStatus (`ShowRunningStatusResult`), ShowJobBuildRecordDetail
//! (`RecordInfo2Result`), ShowBuildInfoRecord (`BuildInfoRecord`), ShowBuildRecordFullStages
//! (`FullStagesResult`), ShowReportSummary (`ShowReportSummaryBodyResult`), ListBuildParameter
//! (`[BuildParameter]`) and ShowDisable (`IsDisableResult`). Pure: the handlers in
//! `build_api.rs` check the call and wrap these in the envelope.
//!
//! Times the SDK types `str` are strings of Unix ms (as ShowJobInfo's `create_time`); times
//! and durations it types `int` are numbers of ms.

use serde_json::{Map, Value, json};

use super::builds::{self, Build, is_running, is_success};
use super::state::Job;

/// The region every simulated record names.
const REGION: &str = "cn-north-4";

/// ShowRunningStatus: the job's latest build number (`"0"` before its first build), its
/// status as ShowJobInfo shows it, and whether it runs.
pub(crate) fn running_status(id: &str, job: &Job) -> Value {
    let latest = job.builds.last();
    let status = job
        .fields
        .get("last_build_status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| latest.map(|b| b.status.clone()));
    let is_running = latest.map_or_else(
        || job.fields.get("running_status").and_then(Value::as_str) == Some("Running"),
        Build::running,
    );
    json!({
        "last_job_id": id,
        "last_build_no": latest.map_or(0, |b| b.build_no).to_string(),
        "last_build_status": status,
        "is_running": is_running,
    })
}

/// ShowJobBuildRecordDetail ("record-info").
pub(crate) fn record_info(job: &Job, build: &Build) -> Value {
    let project = text(&job.fields, "project_id");
    let earlier = &job.builds[..(build.build_no as usize).saturating_sub(1)];
    json!({
        "id": build.record_id,
        "build_project_id": project,
        "build_record_id": build.record_id,
        "parent_record_id": "",
        "devcloud_project_id": project,
        "codeci_job_id": build.job_id,
        "user_id": builds::user_id(&build.user),
        "build_no": build.build_no,
        "daily_build_num": build.daily_number(earlier),
        "execution_id": execution_id(build),
        "repo_name": job.name(),
        "repo_id": builds::repo_id(&build.job_id),
        "branch": build.branch,
        "tag": build.tag,
        "commit": build.commit,
        "commit_message": build.commit_message,
        "commit_create_time": (build.start_ms - 600_000).to_string(),
        "trigger_type": build.trigger_type,
        "build_type": build.build_type(),
        "status": build.status,
        "domain_id": builds::uuid_from("sim-domain").replace('-', ""),
        "create_time": build.start_ms.to_string(),
        "schedule_time": build.start_ms.to_string(),
        "queued_time": build.start_ms.to_string(),
        "start_time": build.start_ms.to_string(),
        "runnable_time": build.start_ms.to_string(),
        "finish_time": build.finish_ms.map(|ms| ms.to_string()),
        "duration": build.duration_ms,
        "record_status": record_status(build),
        "use_private_slave": 0,
        "region": REGION,
        "err_msg": build.err_msg,
        "build_config_type": "yml",
    })
}

/// ShowBuildInfoRecord: who ran the build and where its commit is.
pub(crate) fn build_info_record(job: &Job, build: &Build) -> Value {
    let earlier = &job.builds[..(build.build_no as usize).saturating_sub(1)];
    let scm = builds::scm_web_url(job.name());
    json!({
        "number": build.build_no,
        "build_time": build.start_ms,
        "start_time": build.start_ms,
        "job_running_status": record_status(build),
        "state": build.status,
        "user_id": builds::user_id(&build.user),
        "executor": build.user,
        "nickname": build.user,
        "daily_build_number": build.daily_number(earlier),
        "trigger_type": build.trigger_type,
        "cost_time": build.duration_ms,
        "commit_id": build.commit,
        "commit_info": {
            "commit_id": build.commit,
            "created_at": (build.start_ms - 600_000).to_string(),
        },
        "build_type": build.build_type(),
        "code_branch": build.branch,
        "scm_type": text(&job.fields, "source_code"),
        "scm_web_url": scm,
        "commit_detail_url": format!("{scm}/commit/{}", build.commit),
    })
}

/// ShowBuildRecordFullStages: `{"build_stages": {"stage1": …, "stage2": …}}`, `sequence`
/// from 1 in the order the stages ran.
pub(crate) fn full_stages(build: &Build) -> Value {
    let mut stages = Map::new();
    let mut at = build.start_ms;
    for (i, stage) in build.stages.iter().enumerate() {
        let n = i + 1;
        let running = is_running(&stage.status);
        let start = at;
        let duration = i64::try_from(stage.duration_ms).unwrap_or(i64::MAX);
        at = at.saturating_add(duration);
        let key = format!("stage{n}");
        stages.insert(
            key.clone(),
            json!({
                "id": builds::uuid_from(&format!("stage:{}#{n}", build.record_id)),
                "status": stage.status,
                "status_code": status_code(&stage.status),
                "log_status": if running { "RUNNING" } else { "FINISHED" },
                "create_time": start.to_string(),
                "schedule_time": start.to_string(),
                "queued_time": start.to_string(),
                "start_time": start.to_string(),
                "finish_time": (!running).then(|| at.to_string()),
                "duration": stage.duration_ms,
                "build_duration": stage.duration_ms,
                "pending_duration": 0,
                "build_record_id": build.record_id,
                "execution_id": execution_id(build),
                "execution_stage_name": key,
                "display_name": stage.name,
                "node_id": n,
                "sequence": n,
            }),
        );
    }
    json!({ "build_stages": stages })
}

/// ShowReportSummary: the build's test report as `summary` and the one `sub_summarys` entry,
/// or `{"summary": null, "sub_summarys": []}` when the build has none.
pub(crate) fn report_summary(build: Option<&Build>) -> Value {
    let Some((build, tests)) = build.and_then(|b| b.tests.map(|t| (b, t))) else {
        return json!({"summary": null, "sub_summarys": []});
    };
    let stage = build
        .stages
        .iter()
        .find(|s| s.name.to_ascii_lowercase().contains("test"))
        .or_else(|| build.stages.last());
    let summary = json!({
        "job_id": build.job_id,
        "build_no": build.build_no,
        "stage_name": stage.map(|s| s.name.as_str()),
        "root_id": build.record_id,
        "total": tests.total,
        "success": tests.total.saturating_sub(tests.failures + tests.errors),
        "failures": tests.failures,
        "errors": tests.errors,
        "others": 0,
        "execution_time": stage.map_or(0, |s| s.duration_ms),
        "genrate_time": build.finish_ms.unwrap_or(build.start_ms).to_string(),
        "region": REGION,
        "is_success": tests.failures == 0 && tests.errors == 0,
    });
    json!({"summary": summary, "sub_summarys": [summary]})
}

/// ListBuildParameter: `[{"name", "value"}, …]`.
pub(crate) fn parameters(build: &Build) -> Value {
    Value::Array(
        build
            .parameters
            .iter()
            .map(|p| json!({"name": p.name, "value": p.value}))
            .collect(),
    )
}

/// ShowDisable: `disabled` as 0/1, who disabled the job, why (`reson`, sic) and when (ms, a
/// float as the SDK types it; `null` while the job is enabled).
pub(crate) fn check_disable(id: &str, job: &Job) -> Value {
    let disabled = job.disabled.as_ref();
    json!({
        "forbiddener": disabled.map_or("", |d| d.by.as_str()),
        "reson": disabled.map_or("", |d| d.reason.as_str()),
        "disabled": i32::from(disabled.is_some()),
        "job_id": id,
        "job_name": job.name(),
        "forbidden_time": disabled.map(|d| d.at as f64),
    })
}

fn record_status(build: &Build) -> &'static str {
    if build.running() {
        "RUNNING"
    } else {
        "COMPLETED"
    }
}

/// The simulator's own stage status codes: 0 success, 1 still running, 2 anything else.
fn status_code(status: &str) -> u8 {
    if is_success(status) {
        0
    } else if is_running(status) {
        1
    } else {
        2
    }
}

fn execution_id(build: &Build) -> String {
    builds::uuid_from(&format!("execution:{}", build.record_id))
}

fn text(fields: &Map<String, Value>, key: &str) -> String {
    fields
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::builds::BuildSpec;

    const JOB: &str = "f5af662119404ad187437cd272b5099b";
    const NOW: i64 = 1_721_793_407_000;

    fn failed_build() -> Build {
        let spec: BuildSpec = serde_json::from_value(json!({
            "status": "failed",
            "stages": [{"name": "Compile", "duration_ms": 1000},
                       {"name": "Unit tests", "duration_ms": 2000}],
            "tests": {"total": 10, "failures": 2, "errors": 1}
        }))
        .unwrap();
        Build::new(JOB, "web", 1, spec, NOW)
    }

    #[test]
    fn stages_follow_each_other_in_sequence() {
        let stages = full_stages(&failed_build());
        let stages = stages["build_stages"].as_object().unwrap();
        assert_eq!(stages.len(), 2);
        let first = &stages["stage1"];
        let second = &stages["stage2"];
        assert_eq!(
            (first["sequence"].as_u64(), second["sequence"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(second["display_name"], "Unit tests");
        assert_eq!(second["status"], "failed");
        assert_eq!(second["status_code"], 2);
        assert_eq!(first["finish_time"], second["start_time"]);
    }

    #[test]
    fn the_report_names_the_test_stage_and_counts_successes() {
        let build = failed_build();
        let report = report_summary(Some(&build));
        let summary = &report["summary"];
        assert_eq!(summary["stage_name"], "Unit tests");
        assert_eq!(summary["success"], 7);
        assert_eq!(summary["is_success"], false);
        assert_eq!(report["sub_summarys"][0], *summary);
        let mut no_tests = build;
        no_tests.tests = None;
        assert_eq!(
            report_summary(Some(&no_tests)),
            json!({"summary": null, "sub_summarys": []})
        );
        assert_eq!(report_summary(None)["summary"], Value::Null);
    }
}
