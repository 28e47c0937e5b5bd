//! The job listings: ListProjectJobs (`GET /v1/job/{project_id}/list`), ListJob
//! (`GET /v1/job/list`) and ShowJobListByProjectId (`GET /v3/{project_id}/jobs`). Owns their
//! paging parameters and the entry each shows of a job, in the official SDK's field names and
//! types.
//!
//! An entry field the job stores is copied verbatim (so the control API can set any of them);
//! the fields ShowJobInfo does not have (`last_build_user`, `commit_id`, …) come from the job's
//! latest build (`POST /_sim/jobs/{id}/builds`), or are derived from the job's own fields when
//! it has none, so the same job always lists alike.
//! `build_time` is the exception: the SDK declares it a number in the listings (seconds as text
//! in ShowJobInfo), and the Python SDK raises on `int("27.51")`, so it is converted.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::builds::{self, Build, SIM_USER};
use super::reply::{self, Documented};
use super::shared::Sim;
use super::state::Job;

/// The largest `page_size` the list operations take.
pub(crate) const MAX_PAGE_SIZE: usize = 100;
/// The `page_size` when none is given.
const DEFAULT_PAGE_SIZE: usize = 10;

/// ShowJobListByProjectId's entry: the fields it documents (a subset of ShowJobInfo's).
const SHOW_JOB_LIST_FIELDS: &[&str] = &[
    "id",
    "job_name",
    "last_build_time",
    "health_score",
    "source_code",
    "last_build_status",
    "disabled",
    "favorite",
];

/// ListProjectJobs' entry: the SDK's `Job` model, every field.
const JOB_FIELDS: &[&str] = &[
    "id",
    "job_name",
    "job_creator",
    "user_name",
    "last_build_time",
    "health_score",
    "source_code",
    "last_build_status",
    "is_finished",
    "disabled",
    "favorite",
    "is_modify",
    "is_delete",
    "is_execute",
    "is_copy",
    "is_forbidden",
    "is_view",
    "last_build_user",
    "trigger_type",
    "build_time",
    "scm_web_url",
    "scm_type",
    "repo_id",
    "build_project_id",
    "last_job_running_status",
    "last_build_user_id",
];

/// ListJob's entry: the SDK's `ListJobResultJobList` model, every field.
const JOB_LIST_FIELDS: &[&str] = &[
    "id",
    "job_name",
    "job_creator",
    "user_id",
    "user_name",
    "nick_name",
    "project_id",
    "project_name",
    "last_build_time",
    "health_score",
    "source_code",
    "last_build_status",
    "last_job_running_status",
    "last_build_user",
    "last_build_user_id",
    "is_finished",
    "disabled",
    "favorite",
    "is_modify",
    "is_delete",
    "is_view",
    "is_execute",
    "is_copy",
    "is_forbidden",
    "task_id",
    "code_branch",
    "commit_id",
    "trigger_type",
    "build_time",
    "scm_web_url",
    "scm_type",
    "repo_id",
    "commit_detail_url",
    "build_number",
    "forbidden_msg",
    "build_project_id",
    "build_type",
    "tag",
    "project_permission_switch",
];

/// A page request: `page_index` counts pages from 0, `page_size` is 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) index: usize,
    pub(crate) size: usize,
}

impl Paging {
    /// Reads `page_index` (default 0) and `page_size` (default 10) from the query; anything
    /// else there (`search`, `sort_field`, …) is accepted and ignored. A value that is not a
    /// number, or a size outside 1..=100, is the API's invalid parameter.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, Documented> {
        let mut paging = Paging {
            index: 0,
            size: DEFAULT_PAGE_SIZE,
        };
        for (key, value) in query
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
        {
            let parsed = value.parse::<usize>();
            match (key, parsed) {
                ("page_index", Ok(n)) => paging.index = n,
                ("page_size", Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => paging.size = n,
                ("page_index" | "page_size", _) => return Err(reply::INVALID_PARAMETER),
                _ => {}
            }
        }
        Ok(paging)
    }
}

/// ShowJobListByProjectId: `{"jobs": [...], "total": n}` with the documented subset.
pub(crate) fn show_job_list_by_project_id(
    sim: &Sim,
    project: Option<&str>,
    query: Option<&str>,
    request_id: &str,
) -> Response {
    project_listing(sim, project, query, request_id, |job| {
        pick(job, SHOW_JOB_LIST_FIELDS)
    })
}

/// ListProjectJobs: `{"jobs": [Job...], "total": n}`.
pub(crate) fn list_project_jobs(
    sim: &Sim,
    project: Option<&str>,
    query: Option<&str>,
    request_id: &str,
) -> Response {
    project_listing(sim, project, query, request_id, |job| pick(job, JOB_FIELDS))
}

/// ListJob: `{"result": {"job_list": [...], "total": n}, "status": "success"}`, every job the
/// caller may see across projects.
pub(crate) fn list_job(sim: &Sim, query: Option<&str>, request_id: &str) -> Response {
    let paging = match Paging::parse(query) {
        Ok(paging) => paging,
        Err(refused) => return refused.response(request_id),
    };
    let (jobs, total) = sim.jobs.page(None, paging.index, paging.size, |job| {
        pick(job, JOB_LIST_FIELDS)
    });
    reply::json_value(
        StatusCode::OK,
        &json!({"result": {"job_list": jobs, "total": total}, "status": "success"}),
    )
}

/// The two per-project listings: the project id checked as the API checks it, then one page of
/// the jobs whose stored `project_id` is it.
fn project_listing(
    sim: &Sim,
    project: Option<&str>,
    query: Option<&str>,
    request_id: &str,
    entry: impl Fn(&Job) -> Value,
) -> Response {
    let Some(project) = project.filter(|p| crate::codearts::listing::check_project_id(p).is_ok())
    else {
        return reply::INVALID_PARAMETER.response(request_id);
    };
    let paging = match Paging::parse(query) {
        Ok(paging) => paging,
        Err(refused) => return refused.response(request_id),
    };
    let (jobs, total) = sim
        .jobs
        .page(Some(project), paging.index, paging.size, entry);
    reply::json_value(StatusCode::OK, &json!({ "jobs": jobs, "total": total }))
}

/// An entry with `keys`, each stored, taken from the latest build, or derived; a key none of
/// these gives (the job had it removed) is left out, as the API leaves out fields it does not
/// have.
fn pick(job: &Job, keys: &[&str]) -> Value {
    let fields = &job.fields;
    let latest = job.builds.last();
    let mut entry = Map::new();
    for key in keys {
        let value = if *key == "build_time" {
            fields.get(*key).map(build_time_ms)
        } else {
            fields
                .get(*key)
                .cloned()
                .or_else(|| latest.and_then(|build| from_build(fields, build, key)))
                .or_else(|| derive(fields, key))
        };
        if let Some(value) = value {
            entry.insert((*key).to_owned(), value);
        }
    }
    Value::Object(entry)
}

/// The stored `build_time` (seconds, as text or a number) as whole milliseconds, the
/// listings' numeric form; any other value is passed on as stored.
fn build_time_ms(value: &Value) -> Value {
    let seconds = match value {
        Value::String(text) => text.trim().parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match seconds.filter(|s| s.is_finite()) {
        // Rounded to whole ms; build times are far below i64's range.
        Some(seconds) => Value::from((seconds * 1000.0).round() as i64),
        None => value.clone(),
    }
}

/// A listing field the latest build decides (`None` for the others).
fn from_build(fields: &Map<String, Value>, build: &Build, key: &str) -> Option<Value> {
    let scm = || {
        fields
            .get("job_name")
            .and_then(Value::as_str)
            .map(builds::scm_web_url)
    };
    Some(match key {
        "last_build_user" | "nick_name" => Value::from(build.user.clone()),
        "last_build_user_id" => Value::from(builds::user_id(&build.user)),
        "trigger_type" => Value::from(build.trigger_type.clone()),
        "is_finished" => Value::Bool(!build.running()),
        "last_job_running_status" => Value::from(if build.running() {
            "Running"
        } else {
            "Finished"
        }),
        "code_branch" => Value::from(build.branch.clone()),
        "tag" => Value::from(build.tag.clone()),
        "commit_id" => Value::from(build.commit.clone()),
        "commit_detail_url" => Value::from(format!("{}/commit/{}", scm()?, build.commit)),
        "build_number" => Value::from(build.build_no.to_string()),
        _ => return None,
    })
}

/// A listing field ShowJobInfo does not store, derived from the job's fields (`None` when
/// what it derives from is missing).
fn derive(fields: &Map<String, Value>, key: &str) -> Option<Value> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    let id = text("id")?;
    let digest = Sha256::digest(id.as_bytes());
    let commit_id = || hex::encode(&digest[..20]);
    let web_url = || text("job_name").map(builds::scm_web_url);
    Some(match key {
        "job_creator" | "user_name" | "last_build_user" | "nick_name" => Value::from(SIM_USER),
        "user_id" | "last_build_user_id" => Value::from(builds::user_id(SIM_USER)),
        "trigger_type" => Value::from("Manual"),
        "is_finished" => Value::Bool(text("running_status")? == "Finished"),
        "last_job_running_status" => Value::from(text("running_status")?),
        "build_project_id" => Value::from(text("project_id")?),
        "project_name" => {
            let project = text("project_id")?;
            Value::from(format!(
                "sim-project-{}",
                project.get(..8).unwrap_or(project)
            ))
        }
        "scm_type" => Value::from(text("source_code")?),
        "scm_web_url" => Value::from(web_url()?),
        "repo_id" => Value::from(builds::repo_id(id)),
        "task_id" => Value::from(id),
        "code_branch" => Value::from("master"),
        "commit_id" => Value::from(commit_id()),
        "commit_detail_url" => Value::from(format!("{}/commit/{}", web_url()?, commit_id())),
        // No build through the control API yet: none the build operations know.
        "build_number" => Value::from("0"),
        "forbidden_msg" | "tag" => Value::from(""),
        "build_type" => Value::from("default"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::state::default_fields;

    #[test]
    fn paging_defaults_bounds_and_garbage() {
        assert_eq!(Paging::parse(None), Ok(Paging { index: 0, size: 10 }));
        assert_eq!(
            Paging::parse(Some("page_index=2&page_size=100&search=x")),
            Ok(Paging {
                index: 2,
                size: 100
            })
        );
        for bad in [
            "page_size=101",
            "page_size=0",
            "page_index=-1",
            "page_index=a",
            "page_size=",
        ] {
            assert_eq!(
                Paging::parse(Some(bad)),
                Err(reply::INVALID_PARAMETER),
                "{bad}"
            );
        }
    }

    #[test]
    fn entries_carry_every_sdk_field_with_numeric_build_time() {
        let fields = default_fields("f5af662119404ad187437cd272b5099b", None, 1_721_793_407_000);
        let job = Job::new(fields.clone());
        let entry = pick(&job, JOB_FIELDS);
        assert_eq!(entry.as_object().unwrap().len(), JOB_FIELDS.len());
        assert!(entry["build_time"].is_i64());
        assert_eq!(entry["job_name"], fields["job_name"]);
        assert_eq!(entry["is_finished"], true);
        let listed = pick(&job, JOB_LIST_FIELDS);
        assert_eq!(listed.as_object().unwrap().len(), JOB_LIST_FIELDS.len());
        assert_eq!(listed["project_id"], fields["project_id"]);
        assert_eq!(listed["build_number"], "0", "no build yet");
        assert_eq!(build_time_ms(&json!("27.51")), json!(27_510));
        assert_eq!(build_time_ms(&json!(true)), json!(true));
    }

    #[test]
    fn entries_follow_the_latest_build() {
        let fields = default_fields("f5af662119404ad187437cd272b5099b", None, 1_721_793_407_000);
        let mut job = Job::new(fields);
        let spec = crate::sim::builds::BuildSpec {
            status: Some("running".to_owned()),
            user: Some("alice".to_owned()),
            branch: Some("release/1.2".to_owned()),
            ..Default::default()
        };
        job.builds.push(Build::new(
            "f5af662119404ad187437cd272b5099b",
            "web",
            1,
            spec,
            1_721_793_407_000,
        ));
        let listed = pick(&job, JOB_LIST_FIELDS);
        assert_eq!(listed["last_build_user"], "alice");
        assert_eq!(listed["code_branch"], "release/1.2");
        assert_eq!(listed["build_number"], "1");
        assert_eq!(listed["is_finished"], false);
        assert_eq!(listed["commit_id"], job.builds[0].commit);
    }
}
