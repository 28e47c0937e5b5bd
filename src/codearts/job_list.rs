//! The batch job lists: ListProjectJobs (`GET /v1/job/{project_id}/list`) and ListJob
//! (`GET /v1/job/list`), each page read into the [`JobInfo`] ShowJobInfo gives, so the detector
//! can run on a list entry exactly as on a ShowJobInfo answer (docs/codearts.md, "Job lists").
//!
//! Read as leniently as ShowJobInfo: numbers may come as numeric strings (and `last_build_time`
//! as a float, as the SDK models it), unknown fields are ignored. One bad entry never fails the
//! page: an entry without a valid job id is skipped and counted, and an entry with a valid id
//! whose fields cannot be read is skipped, counted and named in [`JobListPage::unreadable`], so
//! a caller can tell "this job could not be read" from "this job is not listed".

use serde_json::Value;

use super::list_body::{self, Body, Entry, Fields, Holder, List, ResultField};
use super::model::{JobId, JobInfo, ParseError, lenient, preview};

/// One job of a list page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    pub id: JobId,
    /// What ShowJobInfo would say, as far as the list carries it (`id` is always set, and
    /// `project_id` too for ListProjectJobs).
    pub info: JobInfo,
    /// What the list carries beyond [`JobInfo`].
    pub extra: ListExtras,
}

/// Fields of a list entry that [`JobInfo`] has no place for. Kept out of [`JobInfo`] so stored
/// snapshots and the webhook's `previous`/`current` stay as they are. Best effort: a value of
/// an unexpected type (an object, an array) reads as absent instead of failing the entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListExtras {
    /// Who ran the last build (both lists).
    pub last_build_user: Option<String>,
    pub last_build_user_id: Option<String>,
    /// What started the last build (both lists; values are not documented).
    pub trigger_type: Option<String>,
    /// Whether the last build has finished (both lists).
    pub is_finished: Option<bool>,
    /// The last build's running status (both lists; values are not documented).
    pub last_job_running_status: Option<String>,
    /// The list's `build_time` as decimal text. Not mapped to [`JobInfo::build_time`]
    /// (seconds): the SDK types it int/float and no document gives its unit.
    pub build_time: Option<String>,
    /// The build project id (both lists). Possibly what ShowJobInfo calls `project_id`
    /// ("uniquely corresponds to codeci_job_id"); unconfirmed, so not mapped.
    pub build_project_id: Option<String>,
    /// ListJob only from here on.
    pub project_name: Option<String>,
    pub build_number: Option<String>,
    pub code_branch: Option<String>,
    pub commit_id: Option<String>,
    pub commit_detail_url: Option<String>,
    pub forbidden_msg: Option<String>,
}

/// One page of ListProjectJobs or ListJob.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobListPage {
    pub entries: Vec<ListEntry>,
    /// Entries left out: no valid job id, not an object, or unreadable fields.
    pub skipped: usize,
    /// The skipped entries that did carry a valid job id (their fields could not be read).
    pub unreadable: Vec<JobId>,
    /// How many jobs there are in all, as the API reports it; `None` when absent or not a
    /// non-negative number.
    pub total: Option<u64>,
}

/// Parses a ListProjectJobs 200 body: `{"jobs": [Job], "total": n}`. Its entries carry no
/// project id, so each [`JobInfo::project_id`] is `project_id`, the one the caller asked for.
pub fn parse_project_jobs(body: &[u8], project_id: &str) -> Result<JobListPage, ParseError> {
    let top = object_body(body, "jobs", false)?;
    check_status(&top)?;
    let mut page = parse_entries(top.top, "jobs", body)?;
    for entry in &mut page.entries {
        entry.info.project_id = Some(project_id.to_owned());
    }
    Ok(page)
}

/// Parses a ListJob 200 body: `{"result": {"job_list": [...], "total": n}, "status":
/// "success"}`. A missing `status` is read as success, as for ShowJobInfo.
pub fn parse_all_jobs(body: &[u8]) -> Result<JobListPage, ParseError> {
    let top = object_body(body, "job_list", true)?;
    check_status(&top)?;
    match top.result {
        ResultField::Object(result) => parse_entries(result, "job_list", body),
        ResultField::Missing => Err(ParseError::Malformed(format!(
            "`result` is missing or null (body starts {})",
            preview(body)
        ))),
        ResultField::NotObject => Err(ParseError::Malformed(format!(
            "`result` is not an object (body starts {})",
            preview(body)
        ))),
    }
}

/// The body as a JSON object (a struct would also accept an array, field by position), read
/// in one pass ([`list_body`]).
fn object_body(body: &[u8], list_key: &'static str, nested: bool) -> Result<Body, ParseError> {
    match list_body::read(body, list_key, nested) {
        Ok(Some(top)) => Ok(top),
        Ok(None) => Err(ParseError::Malformed(format!(
            "not a JSON object (body starts {})",
            preview(body)
        ))),
        Err(e) => Err(ParseError::Malformed(format!(
            "{e} (body starts {})",
            preview(body)
        ))),
    }
}

/// A `status` other than `success` is the API saying the call failed (ShowJobInfo's rule;
/// undocumented for ListProjectJobs, applied there too).
fn check_status(top: &Body) -> Result<(), ParseError> {
    let status = match &top.status {
        Some(Value::String(s)) => s.as_str(),
        _ => return Ok(()),
    };
    if status.eq_ignore_ascii_case("success") {
        return Ok(());
    }
    let reason = match &top.error {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "no reason given".to_owned(),
        Some(other) => other.to_string(),
    };
    Err(ParseError::Failed(format!("{status}: {reason}")))
}

/// Reads `total` and the entries under `key` of `holder`. A missing or null list is an empty
/// page only when `total` says 0; otherwise the answer is not what was documented.
fn parse_entries(holder: Holder, key: &str, body: &[u8]) -> Result<JobListPage, ParseError> {
    let total = holder
        .total
        .as_ref()
        .and_then(|v| lenient::opt_i64(v).ok().flatten())
        .and_then(|t| u64::try_from(t).ok());
    let mut page = JobListPage {
        total,
        ..JobListPage::default()
    };
    let entries = match holder.list {
        List::Entries(entries) => entries,
        List::Missing if total == Some(0) => return Ok(page),
        List::Missing => {
            return Err(ParseError::Malformed(format!(
                "`{key}` is missing (body starts {})",
                preview(body)
            )));
        }
        List::NotAnArray => {
            return Err(ParseError::Malformed(format!(
                "`{key}` is not a list (body starts {})",
                preview(body)
            )));
        }
    };
    page.entries.reserve(entries.len());
    for entry in entries {
        match parse_entry(entry) {
            Ok(e) => page.entries.push(e),
            Err(id) => {
                page.skipped += 1;
                page.unreadable.extend(id);
            }
        }
    }
    Ok(page)
}

/// One entry, or why it was skipped: `Err(Some(id))` when it had a valid id but unreadable
/// fields, `Err(None)` when it had no valid id (or was not an object).
fn parse_entry(entry: Entry) -> Result<ListEntry, Option<JobId>> {
    let Entry::Object(mut map) = entry else {
        return Err(None);
    };
    let id = match map.take("id") {
        Some(Value::String(s)) => JobId::parse(&s).map_err(|_| None)?,
        _ => return Err(None),
    };
    let info = job_info(&id, &mut map).map_err(|_| Some(id.clone()))?;
    Ok(ListEntry {
        extra: extras(&mut map),
        info,
        id,
    })
}

/// The [`JobInfo`] of an entry. Any field `JobInfo` carries with a value of the wrong type
/// makes the entry unreadable, as it makes a ShowJobInfo answer malformed.
fn job_info(id: &JobId, map: &mut Fields) -> Result<JobInfo, serde_json::Error> {
    let text = |map: &mut Fields, key| map.take(key).map_or(Ok(None), strict_text);
    let int = |map: &mut Fields, key| map.take(key).map_or(Ok(None), |v| lenient::opt_i64(&v));
    let flag = |map: &mut Fields, key| map.take(key).map_or(Ok(None), |v| lenient::opt_bool(&v));
    Ok(JobInfo {
        id: Some(id.as_str().to_owned()),
        project_id: text(map, "project_id")?,
        job_name: text(map, "job_name")?,
        last_build_status: text(map, "last_build_status")?,
        last_build_time: int(map, "last_build_time")?,
        health_score: int(map, "health_score")?,
        disabled: flag(map, "disabled")?,
        source_code: text(map, "source_code")?,
        favorite: flag(map, "favorite")?,
        project_permission_switch: flag(map, "project_permission_switch")?,
        is_copy: flag(map, "is_copy")?,
        is_delete: flag(map, "is_delete")?,
        is_execute: flag(map, "is_execute")?,
        is_forbidden: flag(map, "is_forbidden")?,
        is_modify: flag(map, "is_modify")?,
        is_view: flag(map, "is_view")?,
        // Not in either list: running_status, create_time, charge_time, new_build,
        // is_manager. build_time is there but in an undocumented unit (see ListExtras).
        ..JobInfo::default()
    })
}

fn extras(map: &mut Fields) -> ListExtras {
    let text = |map: &mut Fields, key| map.take(key).and_then(|v| strict_text(v).ok().flatten());
    ListExtras {
        last_build_user: text(map, "last_build_user"),
        last_build_user_id: text(map, "last_build_user_id"),
        trigger_type: text(map, "trigger_type"),
        is_finished: map
            .take("is_finished")
            .and_then(|v| lenient::opt_bool(&v).ok().flatten()),
        last_job_running_status: text(map, "last_job_running_status"),
        build_time: map
            .take("build_time")
            .and_then(|v| lenient::opt_decimal_text(&v).ok().flatten()),
        build_project_id: text(map, "build_project_id"),
        project_name: text(map, "project_name"),
        build_number: text(map, "build_number"),
        code_branch: text(map, "code_branch"),
        commit_id: text(map, "commit_id"),
        commit_detail_url: text(map, "commit_detail_url"),
        forbidden_msg: text(map, "forbidden_msg"),
    }
}

/// A string, or a number as its text (null is absent); anything else is an error.
fn strict_text(v: Value) -> Result<Option<String>, serde_json::Error> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// ListProjectJobs, every field of the SDK's `Job` model, realistic values.
    pub(crate) const PROJECT_JOBS: &str = r#"{
      "total": 3,
      "jobs": [
        {"id": "d62d64d7782545c696ffaacc9ac9c69a", "job_name": "Build-Create_Image",
         "job_creator": "devuser", "user_name": "devuser", "last_build_time": 1721793407000.0,
         "health_score": 74, "source_code": "codehub", "last_build_status": "success",
         "is_finished": true, "disabled": false, "favorite": true, "is_modify": true,
         "is_delete": true, "is_execute": true, "is_copy": true, "is_forbidden": false,
         "is_view": true, "last_build_user": "devuser", "trigger_type": "Manual",
         "build_time": 27510, "scm_web_url": "https://codehub.example.com/demo/demo.git",
         "scm_type": "codehub", "repo_id": "2111000001", "build_project_id": "1234567",
         "last_job_running_status": "COMPLETED",
         "last_build_user_id": "9a3d2f0c41b44e7ea3c1e6d2f3b8a901"},
        {"id": "4485de11a8e74ffdb9c9f85bafb85f83", "job_name": "build-SWR",
         "last_build_time": 1721790000123.5, "health_score": 40,
         "last_build_status": "failed", "is_finished": true, "disabled": true},
        {"id": "not-a-job-id", "job_name": "ghost"}
      ]
    }"#;

    /// ListJob, every field of the SDK's `ListJobResultJobList` model, realistic values.
    pub(crate) const ALL_JOBS: &str = r#"{
      "result": {
        "total": 2,
        "job_list": [
          {"id": "f5af662119404ad187437cd272b5099b", "job_name": "jobname",
           "job_creator": "devuser", "user_id": "9a3d2f0c41b44e7ea3c1e6d2f3b8a901",
           "user_name": "devuser", "nick_name": "Dev User",
           "project_id": "85caf40575794f989920-5216d1148af6", "project_name": "demo",
           "last_build_time": 1721793407000.0, "health_score": 74, "source_code": "codehub",
           "last_build_status": "success", "last_job_running_status": "COMPLETED",
           "last_build_user": "devuser",
           "last_build_user_id": "9a3d2f0c41b44e7ea3c1e6d2f3b8a901",
           "is_finished": true, "disabled": false, "favorite": false, "is_modify": true,
           "is_delete": true, "is_view": true, "is_execute": true, "is_copy": true,
           "is_forbidden": false, "task_id": "f5af662119404ad187437cd272b5099b",
           "code_branch": "master", "commit_id": "4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
           "trigger_type": "Manual", "build_time": 27.51,
           "scm_web_url": "https://codehub.example.com/demo/demo.git", "scm_type": "codehub",
           "repo_id": "2111000001",
           "commit_detail_url": "https://codehub.example.com/demo/demo/commit/4a1c5e0b",
           "build_number": "42", "forbidden_msg": "", "build_project_id": "1234567",
           "build_type": "codehub", "tag": "", "project_permission_switch": true},
          {"id": "0123456789abcdef0123456789abcdef", "job_name": "nightly",
           "project_id": "85caf40575794f989920-5216d1148af6",
           "last_build_status": "running", "is_finished": false}
        ]
      },
      "status": "success"
    }"#;

    #[test]
    fn project_jobs_map_every_sdk_field() {
        let page = parse_project_jobs(PROJECT_JOBS.as_bytes(), "85caf40575794f989920").unwrap();
        assert_eq!(page.total, Some(3));
        assert_eq!((page.entries.len(), page.skipped), (2, 1));
        assert!(page.unreadable.is_empty());
        let e = &page.entries[0];
        assert_eq!(e.id.as_str(), "d62d64d7782545c696ffaacc9ac9c69a");
        let expected = JobInfo {
            id: Some("d62d64d7782545c696ffaacc9ac9c69a".to_owned()),
            project_id: Some("85caf40575794f989920".to_owned()),
            job_name: Some("Build-Create_Image".to_owned()),
            last_build_status: Some("success".to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(74),
            disabled: Some(false),
            source_code: Some("codehub".to_owned()),
            favorite: Some(true),
            is_copy: Some(true),
            is_delete: Some(true),
            is_execute: Some(true),
            is_forbidden: Some(false),
            is_modify: Some(true),
            is_view: Some(true),
            ..JobInfo::default()
        };
        assert_eq!(e.info, expected);
        assert_eq!(e.extra.last_build_user.as_deref(), Some("devuser"));
        assert_eq!(e.extra.trigger_type.as_deref(), Some("Manual"));
        assert_eq!(e.extra.is_finished, Some(true));
        assert_eq!(e.extra.build_time.as_deref(), Some("27510"));
        assert_eq!(e.extra.build_project_id.as_deref(), Some("1234567"));
        assert_eq!(
            e.extra.last_job_running_status.as_deref(),
            Some("COMPLETED")
        );
        // A fractional float time is truncated to whole milliseconds.
        let second = &page.entries[1].info;
        assert_eq!(second.last_build_time, Some(1_721_790_000_123));
        assert_eq!(second.disabled, Some(true));
        assert_eq!(second.project_id.as_deref(), Some("85caf40575794f989920"));
    }

    #[test]
    fn all_jobs_map_every_sdk_field() {
        let page = parse_all_jobs(ALL_JOBS.as_bytes()).unwrap();
        assert_eq!(
            (page.total, page.entries.len(), page.skipped),
            (Some(2), 2, 0)
        );
        let e = &page.entries[0];
        assert_eq!(
            e.info.project_id.as_deref(),
            Some("85caf40575794f989920-5216d1148af6")
        );
        assert_eq!(
            e.info.id.as_deref(),
            Some("f5af662119404ad187437cd272b5099b")
        );
        assert_eq!(e.info.job_name.as_deref(), Some("jobname"));
        assert_eq!(e.info.last_build_time, Some(1_721_793_407_000));
        assert_eq!(e.info.health_score, Some(74));
        assert_eq!(e.info.project_permission_switch, Some(true));
        assert_eq!(e.info.build_time, None, "the list's unit is undocumented");
        let x = &e.extra;
        assert_eq!(x.project_name.as_deref(), Some("demo"));
        assert_eq!(x.code_branch.as_deref(), Some("master"));
        assert_eq!(
            x.commit_id.as_deref(),
            Some("4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a")
        );
        assert_eq!(x.build_number.as_deref(), Some("42"));
        assert_eq!(x.forbidden_msg.as_deref(), Some(""));
        assert_eq!(x.build_time.as_deref(), Some("27.51"));
        assert!(x.commit_detail_url.as_deref().unwrap().contains("/commit/"));
        assert_eq!(page.entries[1].extra.is_finished, Some(false));
        assert_eq!(page.entries[1].info.health_score, None);
    }

    #[test]
    fn a_list_entry_reads_like_the_show_job_info_answer_for_the_same_job() {
        let show = crate::codearts::model::parse_job_info(
            br#"{"status":"success","result":{"id":"f5af662119404ad187437cd272b5099b",
            "project_id":"85caf40575794f989920-5216d1148af6","job_name":"jobname",
            "last_build_status":"success","last_build_time":1721793407000,
            "health_score":74,"disabled":false}}"#,
        )
        .unwrap();
        let page = parse_all_jobs(ALL_JOBS.as_bytes()).unwrap();
        let listed = &page.entries[0].info;
        assert_eq!(listed.id, show.id);
        assert_eq!(listed.project_id, show.project_id);
        assert_eq!(listed.job_name, show.job_name);
        assert_eq!(listed.last_build_status, show.last_build_status);
        assert_eq!(listed.last_build_time, show.last_build_time);
        assert_eq!(listed.health_score, show.health_score);
        assert_eq!(listed.disabled, show.disabled);
    }

    #[test]
    fn numbers_as_strings_are_read() {
        let body = br#"{"status":"success","result":{"total":"1","job_list":[
            {"id":"f5af662119404ad187437cd272b5099b","last_build_time":"1721793407000",
             "health_score":"74","disabled":"true","is_finished":"false","build_number":42,
             "job_name":"x","favorite":1}]}}"#;
        let page = parse_all_jobs(body).unwrap();
        assert_eq!(page.total, Some(1));
        let e = &page.entries[0];
        assert_eq!(e.info.last_build_time, Some(1_721_793_407_000));
        assert_eq!(e.info.health_score, Some(74));
        assert_eq!(e.info.disabled, Some(true));
        assert_eq!(e.info.favorite, Some(true));
        assert_eq!(e.extra.is_finished, Some(false));
        assert_eq!(e.extra.build_number.as_deref(), Some("42"));

        let body = br#"{"total":"2","jobs":[{"id":"d62d64d7782545c696ffaacc9ac9c69a",
            "last_build_time":"1721793407000.0","health_score":"100","total_ignored":{}}]}"#;
        let page = parse_project_jobs(body, "p1").unwrap();
        assert_eq!(page.total, Some(2));
        assert_eq!(
            page.entries[0].info.last_build_time,
            Some(1_721_793_407_000)
        );
        assert_eq!(page.entries[0].info.health_score, Some(100));
    }

    #[test]
    fn bad_entries_are_skipped_and_counted_not_fatal() {
        let body = br#"{"total": 6, "jobs": [
            {"id": "short"}, {"job_name": "no id"}, {"id": 12345}, "a string", null,
            {"id": "4485de11a8e74ffdb9c9f85bafb85f83", "health_score": {"bad": 1}},
            {"id": "d62d64d7782545c696ffaacc9ac9c69a", "trigger_type": ["odd"], "job_name": 7}
        ]}"#;
        let page = parse_project_jobs(body, "p1").unwrap();
        assert_eq!(page.skipped, 6);
        assert_eq!(page.unreadable.len(), 1);
        assert_eq!(
            page.unreadable[0].as_str(),
            "4485de11a8e74ffdb9c9f85bafb85f83"
        );
        assert_eq!(page.entries.len(), 1);
        // An extra of an odd type is absent; a number where a name is expected is its text.
        assert_eq!(page.entries[0].extra.trigger_type, None);
        assert_eq!(page.entries[0].info.job_name.as_deref(), Some("7"));
    }

    #[test]
    fn an_empty_page_needs_a_total_of_zero() {
        let page = parse_all_jobs(br#"{"status":"success","result":{"total":0,"job_list":null}}"#)
            .unwrap();
        assert_eq!((page.entries.len(), page.total), (0, Some(0)));
        let page = parse_project_jobs(br#"{"total":0}"#, "p1").unwrap();
        assert!(page.entries.is_empty());
        assert!(matches!(
            parse_project_jobs(br#"{"total":5}"#, "p1"),
            Err(ParseError::Malformed(m)) if m.contains("`jobs` is missing")
        ));
        assert!(matches!(
            parse_all_jobs(br#"{"result":{"job_list":{}}}"#),
            Err(ParseError::Malformed(m)) if m.contains("not a list")
        ));
        // An unreadable total is absent, not a failure.
        let page = parse_project_jobs(br#"{"total":"many","jobs":[]}"#, "p1").unwrap();
        assert_eq!(page.total, None);
    }

    #[test]
    fn a_fail_envelope_is_an_api_failure() {
        let body = br#"{"status":"fail","error":"job list is being rebuilt","result":null}"#;
        assert_eq!(
            parse_all_jobs(body).unwrap_err(),
            ParseError::Failed("fail: job list is being rebuilt".to_owned())
        );
        let body = br#"{"status":"fail","error":{"code":"CB.00060100","message":"busy"}}"#;
        assert!(matches!(
            parse_project_jobs(body, "p1"),
            Err(ParseError::Failed(m)) if m.contains("CB.00060100")
        ));
        // The status is looked at before the shape: an odd result does not hide the failure.
        assert!(matches!(
            parse_all_jobs(br#"{"status":"fail","result":[1]}"#),
            Err(ParseError::Failed(m)) if m.contains("no reason given")
        ));
    }

    #[test]
    fn garbage_is_malformed_with_a_preview_never_a_panic() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        for result in [parse_all_jobs(html), parse_project_jobs(html, "p1")] {
            assert!(matches!(result, Err(ParseError::Malformed(m)) if m.contains("<html>")));
        }
        for body in [
            &b""[..],
            b"[]",
            b"null",
            b"42",
            br#"{"status":"success"}"#,
            br#"{"result":[]}"#,
            &ALL_JOBS.as_bytes()[..150],
        ] {
            assert!(
                matches!(parse_all_jobs(body), Err(ParseError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            parse_project_jobs(b"[{\"id\":\"d62d64d7782545c696ffaacc9ac9c69a\"}]", "p1"),
            Err(ParseError::Malformed(m)) if m.contains("not a JSON object")
        ));
        assert!(matches!(
            parse_project_jobs(&PROJECT_JOBS.as_bytes()[..200], "p1"),
            Err(ParseError::Malformed(_))
        ));
    }
}
