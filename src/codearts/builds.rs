//! Typed answers of the build operations (docs/codearts.md, "Build records, stages, logs"):
//! ShowRunningStatus, ShowJobBuildRecordDetail ("record-info"), ShowBuildInfoRecord,
//! ShowBuildRecordFullStages, ShowReportSummary, ListBuildParameter, ShowDisable,
//! ListRecyclingJob and ExecuteJob, each mirroring the official SDK's model
//! (`huaweicloudsdkcodeartsbuild` 3.1.219) for the fields the bot reads.
//!
//! Read as leniently as ShowJobInfo: every field is optional, unknown fields are ignored,
//! numbers may come as numeric strings and ids or texts as numbers; a body that is not the
//! documented JSON (or a field of the wrong kind, an object where a number belongs) is
//! [`ParseError::Malformed`] naming the operation, and `"status": "fail"` is
//! [`ParseError::Failed`] with the API's reason.
//!
//! Texts (commit messages, `err_msg`, parameter values) are as the API sent them: scrub them
//! with [`crate::util::redact`] before they are stored or shown.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::model::{ParseError, lenient, preview};

/// ShowRunningStatus (`ShowRunningStatusResult`): the job's latest build.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunningStatus {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub last_job_id: Option<String>,
    /// The latest build's number (a string in the SDK); `None` when absent, unreadable or 0
    /// (no build yet).
    #[serde(deserialize_with = "build_no")]
    pub last_build_no: Option<u32>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub last_build_status: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_running: Option<bool>,
}

/// ShowJobBuildRecordDetail, "record-info" (`RecordInfo2Result`): what was built, from which
/// commit, how it was started and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BuildRecord {
    /// The record id the `/v1/record/{record_id}/…` operations take.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub build_record_id: Option<String>,
    #[serde(deserialize_with = "build_no")]
    pub build_no: Option<u32>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub daily_build_num: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub branch: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub tag: Option<String>,
    /// The commit id.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commit: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commit_message: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub trigger_type: Option<String>,
    /// `branch` or `tag` (values not documented).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub build_type: Option<String>,
    /// Who started the build (an IAM user id).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub err_msg: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub repo_name: Option<String>,
    /// Milliseconds (the SDK types it int; the unit is not documented).
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub duration: Option<i64>,
    /// Unix ms (strings in the SDK).
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub start_time: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub finish_time: Option<i64>,
}

/// ShowBuildInfoRecord (`BuildInfoRecord`): who ran the build, and links to its commit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BuildInfo {
    #[serde(deserialize_with = "build_no")]
    pub number: Option<u32>,
    /// The user who ran the build (a name).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub executor: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub nickname: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub user_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub trigger_type: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub state: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub job_running_status: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commit_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub code_branch: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub build_type: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub commit_detail_url: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub scm_web_url: Option<String>,
    /// Unix ms.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub start_time: Option<i64>,
    /// Milliseconds.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub cost_time: Option<i64>,
}

impl BuildInfo {
    /// Who triggered the build, as people read it: the nickname, else the executor.
    pub fn who(&self) -> Option<&str> {
        [&self.nickname, &self.executor]
            .into_iter()
            .filter_map(|n| n.as_deref())
            .find(|n| !n.trim().is_empty())
    }
}

/// One stage of ShowBuildRecordFullStages (`BuildStageRecord`), with the key it came under.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Stage {
    /// The key of `build_stages` (e.g. `stage1`).
    #[serde(skip)]
    pub key: String,
    /// The stage's name as the console shows it.
    #[serde(deserialize_with = "lenient::opt_text")]
    pub display_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub status_code: Option<i64>,
    /// The order the stages ran in.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub sequence: Option<i64>,
    /// Milliseconds.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub duration: Option<i64>,
    /// Unix ms.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub start_time: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub finish_time: Option<i64>,
}

impl Stage {
    /// The display name, else the key.
    pub fn name(&self) -> &str {
        self.display_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.key)
    }
}

/// The stages of a build, in the order they ran (by `sequence`, then key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stages(pub Vec<Stage>);

impl Stages {
    /// The first stage, by sequence, whose status is a failure, as `is_failure` decides
    /// (the bot's configured failure statuses).
    pub fn first_failed(&self, is_failure: impl Fn(&str) -> bool) -> Option<&Stage> {
        self.0
            .iter()
            .find(|s| s.status.as_deref().is_some_and(&is_failure))
    }
}

/// A unit-test report (`ShowReportSummary`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TestSummary {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub stage_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub total: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub success: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub failures: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub errors: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub others: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_success: Option<bool>,
}

/// A parameter a build ran with. `Debug` hides the value: parameters may be secrets.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BuildParameter {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub value: Option<String>,
}

impl fmt::Debug for BuildParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildParameter")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "***"))
            .finish()
    }
}

/// ShowDisable (`IsDisableResult`): whether the job is disabled, by whom, when and why.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DisableInfo {
    /// `disabled` is 0/1 in the SDK; `true`/`false` are read too.
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub disabled: Option<bool>,
    /// Who disabled it (`forbiddener`).
    #[serde(rename = "forbiddener", deserialize_with = "lenient::opt_text")]
    pub by: Option<String>,
    /// Why (`reson`, sic).
    #[serde(rename = "reson", deserialize_with = "lenient::opt_text")]
    pub reason: Option<String>,
    /// When, in Unix ms (`forbidden_time`, a float in the SDK; a fraction is dropped).
    #[serde(rename = "forbidden_time", deserialize_with = "lenient::opt_i64")]
    pub at: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub job_name: Option<String>,
}

/// A job in the recycle bin (`RecyclingJob`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RecycledJob {
    #[serde(deserialize_with = "lenient::opt_text")]
    pub job_id: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub job_name: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub project_id: Option<String>,
    /// Who created the job (the bin does not say who deleted it).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub creator_name: Option<String>,
    /// As the API wrote it (format not documented).
    #[serde(deserialize_with = "lenient::opt_text")]
    pub delete_time: Option<String>,
    /// Unix ms (`delete_time_stamp`).
    #[serde(rename = "delete_time_stamp", deserialize_with = "lenient::opt_i64")]
    pub deleted_at: Option<i64>,
}

/// One page of ListRecyclingJob.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecyclePage {
    pub jobs: Vec<RecycledJob>,
    pub total: Option<u64>,
    /// How long jobs stay in the bin (`keep_time`; unit not documented).
    pub keep_time: Option<i64>,
}

/// ExecuteJob's answer: the build it started.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Executed {
    /// The new build's number (`actual_build_number`, a string in the SDK).
    #[serde(rename = "actual_build_number", deserialize_with = "build_no")]
    pub build_no: Option<u32>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub daily_build_number: Option<String>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub octopus_job_name: Option<String>,
}

pub fn parse_running_status(body: &[u8]) -> Result<RunningStatus, ParseError> {
    result_as("ShowRunningStatus", body)
}

pub fn parse_build_record(body: &[u8]) -> Result<BuildRecord, ParseError> {
    result_as("ShowJobBuildRecordDetail", body)
}

pub fn parse_build_info(body: &[u8]) -> Result<BuildInfo, ParseError> {
    result_as("ShowBuildInfoRecord", body)
}

pub fn parse_disable(body: &[u8]) -> Result<DisableInfo, ParseError> {
    result_as("ShowDisable", body)
}

pub fn parse_parameters(body: &[u8]) -> Result<Vec<BuildParameter>, ParseError> {
    result_as("ListBuildParameter", body)
}

/// ShowBuildRecordFullStages: `result.build_stages`, a map of stages by key (a list is read
/// too), sorted by `sequence` then key.
pub fn parse_stages(body: &[u8]) -> Result<Stages, ParseError> {
    const OP: &str = "ShowBuildRecordFullStages";
    let result: Map<String, Value> = result_as(OP, body)?;
    let entries: Vec<(String, Value)> = match result.get("build_stages") {
        Some(Value::Object(map)) => map.clone().into_iter().collect(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("stage{}", i + 1), v.clone()))
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(malformed(OP, "`build_stages` is not a map", body)),
    };
    let mut stages = entries
        .into_iter()
        .map(|(key, value)| {
            Stage::deserialize(value)
                .map(|stage| Stage { key, ..stage })
                .map_err(|e| malformed(OP, &e.to_string(), body))
        })
        .collect::<Result<Vec<_>, _>>()?;
    stages.sort_by(|a, b| {
        (a.sequence.unwrap_or(i64::MAX), &a.key).cmp(&(b.sequence.unwrap_or(i64::MAX), &b.key))
    });
    Ok(Stages(stages))
}

/// ShowReportSummary: `result.summary`, `None` when the build has no test report (a null or
/// absent summary).
pub fn parse_test_summary(body: &[u8]) -> Result<Option<TestSummary>, ParseError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        summary: Option<TestSummary>,
    }
    result_as::<Body>("ShowReportSummary", body).map(|b| b.summary)
}

/// ListRecyclingJob: `{"result": {"job_list": [...], "total", "keep_time"}, "status"}`.
pub fn parse_recycle_page(body: &[u8]) -> Result<RecyclePage, ParseError> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        job_list: Option<Vec<RecycledJob>>,
        #[serde(deserialize_with = "lenient::opt_i64")]
        total: Option<i64>,
        #[serde(deserialize_with = "lenient::opt_i64")]
        keep_time: Option<i64>,
    }
    let page: Body = result_as("ListRecyclingJob", body)?;
    Ok(RecyclePage {
        jobs: page.job_list.unwrap_or_default(),
        total: page.total.and_then(|t| u64::try_from(t).ok()),
        keep_time: page.keep_time,
    })
}

/// ExecuteJob: the top-level `{"actual_build_number", …}` (no envelope; a `"status":
/// "fail"` is read anyway).
pub fn parse_executed(body: &[u8]) -> Result<Executed, ParseError> {
    const OP: &str = "ExecuteJob";
    let top = object_of(OP, body)?;
    check_status(OP, &top)?;
    Executed::deserialize(Value::Object(top)).map_err(|e| malformed(OP, &e.to_string(), body))
}

/// StopTheJob: `{"status": "success"}`; any other status is a failure.
pub fn parse_stopped(body: &[u8]) -> Result<(), ParseError> {
    const OP: &str = "StopTheJob";
    let top = object_of(OP, body)?;
    check_status(OP, &top)
}

/// The envelope `{"result", "status", "error"}` of `op`, its `result` read as `T`.
pub(super) fn result_as<T: DeserializeOwned>(op: &str, body: &[u8]) -> Result<T, ParseError> {
    let mut top = object_of(op, body)?;
    check_status(op, &top)?;
    match top.remove("result") {
        Some(Value::Null) | None => Err(malformed(op, "`result` is missing or null", body)),
        Some(result) => T::deserialize(result).map_err(|e| malformed(op, &e.to_string(), body)),
    }
}

fn object_of(op: &str, body: &[u8]) -> Result<Map<String, Value>, ParseError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed(op, "not a JSON object", body)),
        Err(e) => Err(malformed(op, &e.to_string(), body)),
    }
}

/// A `status` other than `success` is the API saying the call failed; a missing one is
/// success (as for ShowJobInfo). ListRecyclingJob's `success: false` counts too.
fn check_status(op: &str, top: &Map<String, Value>) -> Result<(), ParseError> {
    let status = top.get("status").and_then(Value::as_str);
    let refused = top.get("success") == Some(&Value::Bool(false));
    if !refused && status.is_none_or(|s| s.eq_ignore_ascii_case("success")) {
        return Ok(());
    }
    let reason = ["error", "message", "err_code"]
        .iter()
        .find_map(|key| match top.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(Value::String(_)) => None,
            Some(other) => Some(other.to_string()),
        })
        .unwrap_or_else(|| "no reason given".to_owned());
    Err(ParseError::Failed(format!(
        "{op}: {}: {reason}",
        status.unwrap_or("fail")
    )))
}

fn malformed(op: &str, what: &str, body: &[u8]) -> ParseError {
    ParseError::Malformed(format!("{op}: {what} (body starts {})", preview(body)))
}

/// A build number: a positive integer, as a number or a numeric string; 0 (no build) and
/// anything unreadable as a number are `None`, anything else (an object) an error.
fn build_no<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let n = lenient::opt_text(d)?;
    Ok(n.and_then(|n| {
        let n = n.trim();
        n.parse::<u32>().ok().or_else(|| {
            n.parse::<f64>()
                .ok()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u32)
        })
    })
    .filter(|n| *n >= 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ShowJobBuildRecordDetail with every field of the SDK's `RecordInfo2Result`, realistic
    /// values, in the SDK's types.
    const RECORD_INFO: &str = r#"{
      "status": "success", "error": null,
      "result": {
        "id": "8e1a5c3d-0f4b-4a6e-9c2d-7b1e3f5a9c0d",
        "build_project_id": "1234567", "build_record_id": "8e1a5c3d-0f4b-4a6e-9c2d-7b1e3f5a9c0d",
        "parent_record_id": "", "devcloud_project_id": "85caf40575794f989920-5216d1148af6",
        "codeci_job_id": "f5af662119404ad187437cd272b5099b",
        "user_id": "9a3d2f0c41b44e7ea3c1e6d2f3b8a901", "build_no": 42, "daily_build_num": "3",
        "execution_id": "3c0e8d2b-5a1f-4e7c-8b9d-0f2a4c6e8b1d", "repo_name": "web",
        "repo_id": "2111000001", "branch": "master", "tag": "",
        "commit": "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
        "commit_message": "fix: retry the upload\n\nlonger body",
        "commit_create_time": "1721792807000", "trigger_type": "Manual", "build_type": "branch",
        "status": "failed", "domain_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "create_time": "1721793407000", "schedule_time": "1721793407000",
        "queued_time": "1721793407000", "start_time": "1721793407000",
        "runnable_time": "1721793407000", "finish_time": "1721793434510", "duration": 27510,
        "record_status": "COMPLETED", "use_private_slave": 0, "region": "cn-north-4",
        "err_msg": "Command exited with code 1 in stage Unit tests", "build_config_type": "yml"
      }
    }"#;

    #[test]
    fn record_info_reads_what_the_alert_needs() {
        let r = parse_build_record(RECORD_INFO.as_bytes()).unwrap();
        assert_eq!(
            r.build_record_id.as_deref(),
            Some("8e1a5c3d-0f4b-4a6e-9c2d-7b1e3f5a9c0d")
        );
        assert_eq!(r.build_no, Some(42));
        assert_eq!(r.branch.as_deref(), Some("master"));
        assert_eq!(
            r.commit.as_deref(),
            Some("4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a")
        );
        assert_eq!(
            r.commit_message.as_deref(),
            Some("fix: retry the upload\n\nlonger body")
        );
        assert_eq!(r.trigger_type.as_deref(), Some("Manual"));
        assert_eq!(r.status.as_deref(), Some("failed"));
        assert_eq!(r.duration, Some(27_510));
        assert_eq!(r.start_time, Some(1_721_793_407_000));
        assert_eq!(r.finish_time, Some(1_721_793_434_510));
        assert!(r.err_msg.as_deref().unwrap().contains("Unit tests"));
    }

    #[test]
    fn record_info_drift_is_read() {
        let body = r#"{"result": {"build_no": "42", "duration": "27510", "start_time": 1721793407000,
            "commit": 4, "finish_time": null, "brand_new": {"x": 1}}}"#;
        let r = parse_build_record(body.as_bytes()).unwrap();
        assert_eq!(r.build_no, Some(42));
        assert_eq!(r.duration, Some(27_510));
        assert_eq!(r.start_time, Some(1_721_793_407_000));
        assert_eq!(r.commit.as_deref(), Some("4"));
        assert_eq!(r.finish_time, None);
    }

    #[test]
    fn failures_name_the_operation() {
        let cases: [(&[u8], &str); 5] = [
            (b"<html>502</html>", "ShowJobBuildRecordDetail"),
            (b"[1, 2]", "not a JSON object"),
            (
                br#"{"status": "success", "result": null}"#,
                "missing or null",
            ),
            (
                br#"{"result": {"duration": {"ms": 1}}}"#,
                "ShowJobBuildRecordDetail",
            ),
            (
                br#"{"result": {"branch": ["a"]}}"#,
                "ShowJobBuildRecordDetail",
            ),
        ];
        for (body, expected) in cases {
            match parse_build_record(body) {
                Err(ParseError::Malformed(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        let failed = parse_build_record(br#"{"status": "fail", "error": {"code": "CB.1"}}"#);
        assert!(
            matches!(&failed, Err(ParseError::Failed(m)) if m.contains("ShowJobBuildRecordDetail") && m.contains("CB.1")),
            "{failed:?}"
        );
    }

    #[test]
    fn running_status_reads_the_number_as_text_or_number_and_zero_as_none() {
        let body = r#"{"result": {"last_job_id": "f5af662119404ad187437cd272b5099b",
            "last_build_no": "42", "last_build_status": "running", "is_running": true},
            "error": null, "status": "success"}"#;
        let s = parse_running_status(body.as_bytes()).unwrap();
        assert_eq!(s.last_build_no, Some(42));
        assert_eq!(s.is_running, Some(true));
        assert_eq!(s.last_build_status.as_deref(), Some("running"));
        for (raw, want) in [
            ("43", Some(43)),
            ("\"0\"", None),
            ("\"\"", None),
            ("7.0", Some(7)),
        ] {
            let body =
                format!(r#"{{"result": {{"last_build_no": {raw}, "is_running": "false"}}}}"#);
            let s = parse_running_status(body.as_bytes()).unwrap();
            assert_eq!(s.last_build_no, want, "{raw}");
            assert_eq!(s.is_running, Some(false));
        }
    }

    #[test]
    fn build_info_names_who_ran_it() {
        let body = r#"{"result": {"number": 42, "build_time": 1721793407000,
            "start_time": 1721793407000, "job_running_status": "COMPLETED", "state": "failed",
            "user_id": "9a3d2f0c41b44e7ea3c1e6d2f3b8a901", "executor": "devuser",
            "nickname": "Dev User", "daily_build_number": "3", "trigger_type": "Manual",
            "cost_time": 27510, "commit_id": "4a1c5e0b", "commit_info": {"commit_id": "4a1c5e0b",
            "created_at": "1721792807000"}, "build_type": "branch", "code_branch": "master",
            "scm_type": "codehub", "scm_web_url": "https://codehub.example.com/demo/web",
            "commit_detail_url": "https://codehub.example.com/demo/web/commit/4a1c5e0b"},
            "error": null, "status": "success"}"#;
        let info = parse_build_info(body.as_bytes()).unwrap();
        assert_eq!(info.who(), Some("Dev User"));
        assert_eq!(info.number, Some(42));
        assert_eq!(info.code_branch.as_deref(), Some("master"));
        assert!(
            info.commit_detail_url
                .as_deref()
                .unwrap()
                .ends_with("/commit/4a1c5e0b")
        );
        let nameless = BuildInfo {
            nickname: Some(" ".to_owned()),
            executor: Some("devuser".to_owned()),
            ..BuildInfo::default()
        };
        assert_eq!(nameless.who(), Some("devuser"));
    }

    #[test]
    fn stages_come_in_sequence_order_and_the_first_failure_is_found() {
        let body = r#"{"status": "success", "error": null, "result": {"build_stages": {
            "stage10": {"display_name": "Deploy", "status": "failed", "sequence": 10},
            "stage2": {"display_name": "Unit tests", "status": "FAILED", "sequence": "2",
                       "duration": "2500", "status_code": 2},
            "stage1": {"display_name": "Compile", "status": "success", "sequence": 1,
                       "duration": 1000, "start_time": "1721793407000"},
            "stage3": {"status": "success"}}}}"#;
        let stages = parse_stages(body.as_bytes()).unwrap();
        let names: Vec<&str> = stages.0.iter().map(Stage::name).collect();
        assert_eq!(names, ["Compile", "Unit tests", "Deploy", "stage3"]);
        let failed = stages
            .first_failed(|s| s.eq_ignore_ascii_case("failed"))
            .unwrap();
        assert_eq!((failed.name(), failed.duration), ("Unit tests", Some(2500)));
        assert_eq!(stages.0[0].start_time, Some(1_721_793_407_000));

        let list = r#"{"result": {"build_stages": [{"display_name": "A", "sequence": 1}]}}"#;
        assert_eq!(parse_stages(list.as_bytes()).unwrap().0[0].name(), "A");
        let empty = r#"{"result": {"build_stages": null}}"#;
        assert!(parse_stages(empty.as_bytes()).unwrap().0.is_empty());
        let bad = r#"{"result": {"build_stages": {"stage1": {"sequence": [1]}}}}"#;
        assert!(matches!(
            parse_stages(bad.as_bytes()),
            Err(ParseError::Malformed(m)) if m.contains("ShowBuildRecordFullStages")
        ));
    }

    #[test]
    fn a_test_report_or_none() {
        let body = r#"{"status": "success", "error": null, "result": {"summary": {
            "job_id": "f5af662119404ad187437cd272b5099b", "build_no": 42,
            "stage_name": "Unit tests", "root_id": "x", "total": 120, "success": 115,
            "failures": "3", "errors": 2, "others": 0, "execution_time": 2500,
            "genrate_time": "1721793434510", "region": "cn-north-4", "is_success": false},
            "sub_summarys": []}}"#;
        let t = parse_test_summary(body.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (t.total, t.failures, t.errors),
            (Some(120), Some(3), Some(2))
        );
        assert_eq!(t.stage_name.as_deref(), Some("Unit tests"));
        assert_eq!(t.is_success, Some(false));
        let none = r#"{"result": {"summary": null, "sub_summarys": []}, "status": "success"}"#;
        assert_eq!(parse_test_summary(none.as_bytes()).unwrap(), None);
    }

    #[test]
    fn parameters_hide_their_values_in_debug() {
        let body = r#"{"status": "success", "result": [{"name": "codeBranch", "value": "master"},
            {"name": "DEPLOY_TOKEN", "value": "hunter2"}, {"name": "n", "value": 5}]}"#;
        let params = parse_parameters(body.as_bytes()).unwrap();
        assert_eq!(params.len(), 3);
        assert_eq!(params[1].value.as_deref(), Some("hunter2"));
        assert_eq!(params[2].value.as_deref(), Some("5"));
        let shown = format!("{params:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("DEPLOY_TOKEN"),
            "{shown}"
        );
    }

    #[test]
    fn disable_info_reads_who_why_and_when() {
        let body = r#"{"result": {"forbiddener": "devuser", "reson": "migrating to v2",
            "disabled": 1, "job_id": "f5af662119404ad187437cd272b5099b", "job_name": "web",
            "forbidden_time": 1721793407000.0}, "error": null, "status": "success"}"#;
        let d = parse_disable(body.as_bytes()).unwrap();
        assert_eq!(d.disabled, Some(true));
        assert_eq!(d.by.as_deref(), Some("devuser"));
        assert_eq!(d.reason.as_deref(), Some("migrating to v2"));
        assert_eq!(d.at, Some(1_721_793_407_000));
        let enabled = r#"{"result": {"disabled": false, "forbidden_time": null}}"#;
        assert_eq!(
            parse_disable(enabled.as_bytes()).unwrap().disabled,
            Some(false)
        );
    }

    #[test]
    fn the_recycle_bin_pages_and_its_failure_flag() {
        let body = r#"{"success": true, "message": "", "err_code": "", "status": "success",
            "result": {"keep_time": 30, "total": "1", "job_list": [{
              "job_id": "f5af662119404ad187437cd272b5099b", "job_name": "web",
              "project_id": "85caf40575794f989920-5216d1148af6", "creator_name": "devuser",
              "creator_id": "9a3d", "create_time": "2024-06-05 08:00:58",
              "delete_time": "2024-07-24 03:56:47", "create_time_stamp": "1717574458000",
              "delete_time_stamp": "1721793407000"}]}}"#;
        let page = parse_recycle_page(body.as_bytes()).unwrap();
        assert_eq!((page.total, page.keep_time), (Some(1), Some(30)));
        let job = &page.jobs[0];
        assert_eq!(job.job_name.as_deref(), Some("web"));
        assert_eq!(job.deleted_at, Some(1_721_793_407_000));
        assert_eq!(job.creator_name.as_deref(), Some("devuser"));
        let refused = br#"{"success": false, "message": "no permission", "result": null}"#;
        assert!(matches!(
            parse_recycle_page(refused),
            Err(ParseError::Failed(m)) if m.contains("no permission")
        ));
    }

    #[test]
    fn actions_read_their_answers() {
        let body = br#"{"octopus_job_name": "codeci-x", "actual_build_number": "43",
            "daily_build_number": "4"}"#;
        let e = parse_executed(body).unwrap();
        assert_eq!(e.build_no, Some(43));
        assert_eq!(e.daily_build_number.as_deref(), Some("4"));
        assert!(parse_stopped(br#"{"status": "success"}"#).is_ok());
        assert!(matches!(
            parse_stopped(br#"{"status": "fail", "error": "not running"}"#),
            Err(ParseError::Failed(m)) if m.contains("StopTheJob") && m.contains("not running")
        ));
        assert!(
            matches!(parse_executed(b""), Err(ParseError::Malformed(m)) if m.contains("ExecuteJob"))
        );
    }
}
