//! The simulated jobs: one JSON object per job holding exactly the fields ShowJobInfo returns,
//! plus the simulator-only flags (`_sim_*`) that change how the job answers.
//!
//! Fields are kept as a `serde_json` map, not a typed struct, so the control API can set any
//! field to any JSON value (numbers as strings, missing fields, unknown fields) and the API
//! returns exactly what is stored. The 200 body is serialised once per change and shared, so a
//! poll costs a map lookup and a reference-count increment.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use axum::body::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Control-body key: `true` makes the job answer 403; `false` restores it.
pub(crate) const FLAG_FORBIDDEN: &str = "_sim_forbidden";
/// Control-body key: a reason string makes the job answer 200 with `"status": "fail"`;
/// `null` restores it.
pub(crate) const FLAG_FAIL: &str = "_sim_fail";
/// Control-body key: names of fields to delete from the job (applied before the other fields).
pub(crate) const FLAG_REMOVE: &str = "_sim_remove";

/// The `project_id` given to jobs created without one (the documented example's form).
pub(crate) const DEFAULT_PROJECT_ID: &str = "5a1e2d3c4b5a69788796-a5b4c3d2e1f0";

/// What a ShowJobInfo call for one id finds.
pub(crate) enum Lookup {
    /// The 200 body to send (a `success` envelope, or a `fail` one when `_sim_fail` is set).
    Found(Bytes),
    /// The job exists but `_sim_forbidden` is set.
    Forbidden,
    /// No such job.
    Missing,
}

/// Why a control-API patch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PatchError(String);

/// A parsed control-API `PUT /_sim/jobs/{id}` body.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    fields: Map<String, Value>,
    forbidden: Option<bool>,
    /// `Some(None)` clears the failure, `Some(Some(reason))` sets it.
    fail: Option<Option<String>>,
    remove: Vec<String>,
}

impl Patch {
    /// Splits a JSON object into job fields and `_sim_*` flags, refusing unknown flags and
    /// flags of the wrong type.
    pub(crate) fn parse(body: Value) -> Result<Self, PatchError> {
        let Value::Object(object) = body else {
            return Err(PatchError(
                "the body must be a JSON object of job fields".to_owned(),
            ));
        };
        let mut patch = Patch::default();
        for (key, value) in object {
            match key.as_str() {
                FLAG_FORBIDDEN => match value {
                    Value::Bool(b) => patch.forbidden = Some(b),
                    _ => return Err(PatchError(format!("{FLAG_FORBIDDEN} must be a boolean"))),
                },
                FLAG_FAIL => match value {
                    Value::Null => patch.fail = Some(None),
                    Value::String(reason) => patch.fail = Some(Some(reason)),
                    _ => {
                        return Err(PatchError(format!(
                            "{FLAG_FAIL} must be a string (the reason) or null"
                        )));
                    }
                },
                FLAG_REMOVE => {
                    let names = match value {
                        Value::Array(items) => items
                            .into_iter()
                            .map(|item| match item {
                                Value::String(name) => Ok(name),
                                _ => Err(()),
                            })
                            .collect::<Result<Vec<_>, ()>>()
                            .ok(),
                        _ => None,
                    };
                    patch.remove = names.ok_or_else(|| {
                        PatchError(format!("{FLAG_REMOVE} must be an array of field names"))
                    })?;
                }
                other if other.starts_with("_sim_") => {
                    return Err(PatchError(format!(
                        "unknown simulator flag {other:?} (known: {FLAG_FORBIDDEN}, {FLAG_FAIL}, \
                         {FLAG_REMOVE})"
                    )));
                }
                _ => {
                    patch.fields.insert(key, value);
                }
            }
        }
        Ok(patch)
    }
}

/// One simulated job.
struct Job {
    fields: Map<String, Value>,
    forbidden: bool,
    fail: Option<String>,
    /// The 200 body for the current fields and flags.
    body: Bytes,
    /// The stored `project_id` when it is text, kept apart so a project's listing filters
    /// 10,000 jobs without a map lookup in each (that lookup was most of a page's cost).
    project: Option<String>,
}

impl Job {
    fn new(fields: Map<String, Value>) -> Self {
        let mut job = Job {
            fields,
            forbidden: false,
            fail: None,
            body: Bytes::new(),
            project: None,
        };
        job.render();
        job
    }

    fn apply(&mut self, patch: Patch) {
        for name in &patch.remove {
            self.fields.remove(name);
        }
        self.fields.extend(patch.fields);
        if let Some(forbidden) = patch.forbidden {
            self.forbidden = forbidden;
        }
        if let Some(fail) = patch.fail {
            self.fail = fail;
        }
        self.render();
    }

    fn render(&mut self) {
        self.project = self
            .fields
            .get("project_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        #[derive(Serialize)]
        struct Envelope<'a> {
            result: Option<&'a Map<String, Value>>,
            status: &'static str,
            error: Option<&'a str>,
        }
        let envelope = match &self.fail {
            None => Envelope {
                result: Some(&self.fields),
                status: "success",
                error: None,
            },
            Some(reason) => Envelope {
                result: None,
                status: "fail",
                error: Some(reason),
            },
        };
        // Serialising a map of JSON values to memory cannot fail.
        self.body = serde_json::to_vec(&envelope).map_or_else(|_| Bytes::new(), Bytes::from);
    }

    /// The job as the control API shows it: the stored fields, plus the flags that are set.
    fn control_view(&self) -> Value {
        let mut view = self.fields.clone();
        if self.forbidden {
            view.insert(FLAG_FORBIDDEN.to_owned(), Value::Bool(true));
        }
        if let Some(reason) = &self.fail {
            view.insert(FLAG_FAIL.to_owned(), Value::String(reason.clone()));
        }
        Value::Object(view)
    }
}

/// All simulated jobs, keyed by the id in the URL.
#[derive(Default)]
pub(crate) struct Jobs {
    inner: RwLock<HashMap<String, Job>>,
}

impl Jobs {
    /// The ShowJobInfo answer for `id` (already validated by the caller).
    pub(crate) fn lookup(&self, id: &str) -> Lookup {
        let jobs = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        match jobs.get(id) {
            None => Lookup::Missing,
            Some(job) if job.forbidden => Lookup::Forbidden,
            Some(job) => Lookup::Found(job.body.clone()),
        }
    }

    /// Creates the job with [`default_fields`] (named `name` when given, in project `project`
    /// when given, else [`DEFAULT_PROJECT_ID`]) unless it exists.
    pub(crate) fn seed(&self, id: &str, name: Option<String>, project: Option<&str>, now_ms: i64) {
        let mut jobs = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        jobs.entry(id.to_owned()).or_insert_with(|| {
            let mut fields = default_fields(id, name, now_ms);
            if let Some(project) = project {
                fields.insert("project_id".to_owned(), Value::from(project));
            }
            Job::new(fields)
        });
    }

    /// Creates the job (with defaults) if needed, then applies the patch. Returns the job as
    /// the control API shows it, and whether it was created.
    pub(crate) fn put(&self, id: &str, patch: Patch, now_ms: i64) -> (Value, bool) {
        let mut jobs = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let mut created = false;
        let job = jobs.entry(id.to_owned()).or_insert_with(|| {
            created = true;
            Job::new(default_fields(id, None, now_ms))
        });
        job.apply(patch);
        (job.control_view(), created)
    }

    /// The job as the control API shows it.
    pub(crate) fn get(&self, id: &str) -> Option<Value> {
        let jobs = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        jobs.get(id).map(Job::control_view)
    }

    /// Removes the job; `false` when there was none.
    pub(crate) fn delete(&self, id: &str) -> bool {
        let mut jobs = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        jobs.remove(id).is_some()
    }

    /// Every job as the control API shows it, ordered by id.
    pub(crate) fn list(&self) -> Vec<Value> {
        let jobs = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<&String> = jobs.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| jobs.get(id))
            .map(Job::control_view)
            .collect()
    }

    /// One page of a job listing: the jobs of `project` (every job when `None`) that the
    /// caller may see (not `_sim_forbidden`), ordered by id so pages are stable, each shown by
    /// `entry` from the job's stored fields; with the total of matching jobs.
    pub(crate) fn page(
        &self,
        project: Option<&str>,
        index: usize,
        size: usize,
        entry: impl Fn(&Map<String, Value>) -> Value,
    ) -> (Vec<Value>, usize) {
        let jobs = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut matching: Vec<(&String, &Job)> = jobs
            .iter()
            .filter(|(_, job)| {
                !job.forbidden && project.is_none_or(|p| job.project.as_deref() == Some(p))
            })
            .collect();
        matching.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let total = matching.len();
        let page = matching
            .into_iter()
            .skip(index.saturating_mul(size))
            .take(size)
            .map(|(_, job)| entry(&job.fields))
            .collect();
        (page, total)
    }

    pub(crate) fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A new job's fields: all 22 documented fields, in the documented order and types
/// (`create_time` a string of milliseconds, `build_time`/`charge_time` strings of seconds),
/// with values derived from the id so jobs differ but the same id always looks alike.
pub(crate) fn default_fields(id: &str, name: Option<String>, now_ms: i64) -> Map<String, Value> {
    let digest = Sha256::digest(id.as_bytes());
    let byte = |i: usize| i64::from(digest[i]);
    let health_score = 60 + byte(0) % 41;
    let build_centis = 1_000 + ((byte(1) << 8) | byte(2)) % 50_000;
    let charge_centis = build_centis * (50 + byte(3) % 50) / 100;
    let created_days_ago = 1 + ((byte(4) << 8) | byte(5)) % 365;
    let built_minutes_ago = 1 + ((byte(6) << 8) | byte(7)) % 1_440;
    let create_time = now_ms - created_days_ago * 86_400_000;
    let last_build_time = now_ms - built_minutes_ago * 60_000;
    let name = name.unwrap_or_else(|| format!("sim-job-{}", id.get(..8).unwrap_or(id)));

    let mut fields = Map::new();
    let mut set = |key: &str, value: Value| {
        fields.insert(key.to_owned(), value);
    };
    set("id", Value::from(id));
    set("project_id", Value::from(DEFAULT_PROJECT_ID));
    set("project_permission_switch", Value::Bool(true));
    set("build_time", Value::from(seconds_text(build_centis)));
    set("charge_time", Value::from(seconds_text(charge_centis)));
    set("create_time", Value::from(create_time.to_string()));
    set("disabled", Value::Bool(false));
    set("favorite", Value::Bool(false));
    set("source_code", Value::from("codehub"));
    set("running_status", Value::from("Finished"));
    set("new_build", Value::Bool(false));
    set("job_name", Value::from(name));
    for permission in [
        "is_copy",
        "is_delete",
        "is_execute",
        "is_forbidden",
        "is_manager",
        "is_modify",
        "is_view",
    ] {
        set(permission, Value::Bool(true));
    }
    set("last_build_status", Value::from("success"));
    set("last_build_time", Value::from(last_build_time));
    set("health_score", Value::from(health_score));
    fields
}

/// Hundredths of a second as the API's decimal text, e.g. `2751` -> `"27.51"`.
fn seconds_text(centis: i64) -> String {
    format!("{}.{:02}", centis / 100, centis % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "f5af662119404ad187437cd272b5099b";
    const NOW: i64 = 1_721_793_407_000;

    fn body_of(jobs: &Jobs, id: &str) -> Value {
        match jobs.lookup(id) {
            Lookup::Found(body) => serde_json::from_slice(&body).unwrap(),
            Lookup::Forbidden => panic!("forbidden"),
            Lookup::Missing => panic!("missing"),
        }
    }

    #[test]
    fn defaults_have_all_22_documented_fields_with_documented_types() {
        let fields = default_fields(ID, None, NOW);
        assert_eq!(fields.len(), 22);
        assert!(fields["create_time"].is_string());
        assert!(fields["last_build_time"].is_i64());
        assert!(
            fields["build_time"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .is_ok()
        );
        assert!(
            fields["charge_time"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .is_ok()
        );
        assert!(fields["health_score"].is_i64());
        assert_eq!(fields["id"], ID);
        assert_eq!(fields["last_build_status"], "success");
        assert_eq!(
            default_fields(ID, None, NOW),
            fields,
            "deterministic per id"
        );
    }

    #[test]
    fn a_patch_sets_any_value_and_removes_fields() {
        let jobs = Jobs::default();
        let patch = Patch::parse(json!({
            "health_score": "74", "brand_new": [1], "_sim_remove": ["favorite"]
        }))
        .unwrap();
        let (view, created) = jobs.put(ID, patch, NOW);
        assert!(created);
        assert_eq!(view["health_score"], "74");
        let result = &body_of(&jobs, ID)["result"];
        assert_eq!(result["health_score"], "74");
        assert_eq!(result["brand_new"], json!([1]));
        assert!(result.get("favorite").is_none());
    }

    #[test]
    fn flags_are_stored_but_never_returned_in_the_info() {
        let jobs = Jobs::default();
        jobs.put(
            ID,
            Patch::parse(json!({"_sim_forbidden": true})).unwrap(),
            NOW,
        );
        assert!(matches!(jobs.lookup(ID), Lookup::Forbidden));
        assert_eq!(jobs.get(ID).unwrap()["_sim_forbidden"], true);

        jobs.put(
            ID,
            Patch::parse(json!({"_sim_forbidden": false})).unwrap(),
            NOW,
        );
        let body = body_of(&jobs, ID);
        assert!(body["result"].get("_sim_forbidden").is_none());
        assert!(jobs.get(ID).unwrap().get("_sim_forbidden").is_none());

        jobs.put(ID, Patch::parse(json!({"_sim_fail": "busy"})).unwrap(), NOW);
        assert_eq!(
            body_of(&jobs, ID),
            json!({"result": null, "status": "fail", "error": "busy"})
        );
    }

    #[test]
    fn bad_patches_are_refused_with_a_reason() {
        for bad in [
            json!([1, 2]),
            json!("x"),
            json!({"_sim_forbidden": "yes"}),
            json!({"_sim_fail": 3}),
            json!({"_sim_remove": "favorite"}),
            json!({"_sim_typo": true}),
        ] {
            assert!(Patch::parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
