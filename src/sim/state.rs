//! The simulated jobs: one JSON object per job holding exactly the fields ShowJobInfo returns,
//! plus the simulator-only flags (`_sim_*`) that change how the job answers, the job's builds
//! ([`Build`]), who disabled it, and the recycle bin deleted jobs go to.
//!
//! Fields are kept as a `serde_json` map, not a typed struct, so the control API can set any
//! field to any JSON value (numbers as strings, missing fields, unknown fields) and the API
//! returns exactly what is stored. The 200 body is serialised once per change and shared, so a
//! poll costs a map lookup and a reference-count increment.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use axum::body::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::builds::{self, Build, BuildSpec};
use super::patch::{FLAG_DISABLED_BY, FLAG_DISABLED_REASON, FLAG_FAIL, FLAG_FORBIDDEN, Patch};
use super::recycle::Recycled;
use super::run_flags::RunFlags;

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

/// Who disabled a job, when and why (ShowDisable).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Disabled {
    pub(crate) by: String,
    pub(crate) reason: String,
    /// Unix ms.
    pub(crate) at: i64,
}

/// What every per-job operation checks first.
pub(crate) enum Access {
    Open,
    Forbidden,
    /// `_sim_fail` is set: the reason.
    Failed(String),
}

/// One simulated job.
pub(crate) struct Job {
    pub(crate) fields: Map<String, Value>,
    forbidden: bool,
    fail: Option<String>,
    /// Oldest first; build `n` is `builds[n - 1]`.
    pub(crate) builds: Vec<Build>,
    /// Set while `disabled` is true.
    pub(crate) disabled: Option<Disabled>,
    /// The flags' values, kept for the next time the job is disabled.
    disabled_by: Option<String>,
    disabled_reason: Option<String>,
    /// How the builds ExecuteJob starts run and end.
    pub(crate) run: RunFlags,
    /// The 200 body for the current fields and flags.
    body: Bytes,
    /// The stored `project_id` when it is text, kept apart so a project's listing filters
    /// 10,000 jobs without a map lookup in each (that lookup was most of a page's cost).
    project: Option<String>,
}

impl Job {
    pub(crate) fn new(fields: Map<String, Value>) -> Self {
        let mut job = Job {
            fields,
            forbidden: false,
            fail: None,
            builds: Vec::new(),
            disabled: None,
            disabled_by: None,
            disabled_reason: None,
            run: RunFlags::default(),
            body: Bytes::new(),
            project: None,
        };
        job.render();
        job
    }

    fn apply(&mut self, patch: Patch, now_ms: i64) {
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
        self.run.apply(patch.run);
        self.disabled_by = patch.disabled_by.or(self.disabled_by.take());
        self.disabled_reason = patch.disabled_reason.or(self.disabled_reason.take());
        self.track_disabled(now_ms);
        self.render();
    }

    /// Keeps [`Job::disabled`] in step with the `disabled` field: set (now) when it turns
    /// true, its who and why refreshed from the flags, cleared when it turns false.
    fn track_disabled(&mut self, now_ms: i64) {
        let disabled = match self.fields.get("disabled") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
            _ => false,
        };
        if !disabled {
            self.disabled = None;
            return;
        }
        let at = self.disabled.as_ref().map_or(now_ms, |d| d.at);
        self.disabled = Some(Disabled {
            by: self
                .disabled_by
                .clone()
                .unwrap_or_else(|| builds::SIM_USER.to_owned()),
            reason: self.disabled_reason.clone().unwrap_or_default(),
            at,
        });
    }

    /// Whether a per-job operation may read the job: forbidden, failing, or open.
    pub(crate) fn access(&self) -> Access {
        match (&self.fail, self.forbidden) {
            (_, true) => Access::Forbidden,
            (Some(reason), false) => Access::Failed(reason.clone()),
            (None, false) => Access::Open,
        }
    }

    /// The job's fields follow its latest build: `last_build_status`, `last_build_time` (the
    /// start), `running_status`, and `build_time` once it finished.
    fn follow_build(&mut self, build_no: u32) {
        let Some(build) = build_no
            .checked_sub(1)
            .and_then(|i| self.builds.get(i as usize))
        else {
            return;
        };
        if usize::try_from(build_no).ok() != Some(self.builds.len()) {
            return; // only the latest build moves the job
        }
        let mut set = |key: &str, value: Value| {
            self.fields.insert(key.to_owned(), value);
        };
        set("last_build_status", Value::from(build.status.clone()));
        set("last_build_time", Value::from(build.start_ms));
        let running = if build.running() {
            "Running"
        } else {
            "Finished"
        };
        set("running_status", Value::from(running));
        if !build.running() {
            let centis = build.duration_ms / 10;
            set(
                "build_time",
                Value::from(format!("{}.{:02}", centis / 100, centis % 100)),
            );
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
        for (flag, value) in [
            (FLAG_DISABLED_BY, &self.disabled_by),
            (FLAG_DISABLED_REASON, &self.disabled_reason),
        ] {
            if let Some(value) = value {
                view.insert(flag.to_owned(), Value::String(value.clone()));
            }
        }
        self.run.show(&mut view);
        Value::Object(view)
    }

    /// The job's `job_name` as text (empty when it has none).
    pub(crate) fn name(&self) -> &str {
        self.fields
            .get("job_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Build `build_no`, when it exists.
    pub(crate) fn build(&self, build_no: u32) -> Option<&Build> {
        build_no
            .checked_sub(1)
            .and_then(|i| self.builds.get(i as usize))
    }
}

/// The jobs, their builds' record ids and the recycle bin, under one lock.
#[derive(Default)]
struct Inner {
    /// Ordered by id: listings page through it without sorting (a sort per page made reading
    /// a 100,000-job list quadratic).
    jobs: BTreeMap<String, Job>,
    /// record id → (job id, build number).
    records: HashMap<String, (String, u32)>,
    /// Deleted jobs, oldest deletion first.
    recycled: Vec<Recycled>,
}

/// All simulated jobs, keyed by the id in the URL.
#[derive(Default)]
pub(crate) struct Jobs {
    inner: RwLock<Inner>,
    /// The listings' order, built on the first listing after a change: a page is then a
    /// slice, not a walk over every job (which made reading a 100,000-job list quadratic).
    index: std::sync::Mutex<Option<std::sync::Arc<ListIndex>>>,
}

/// The ids the listings show (not `_sim_forbidden`), in id order: all, and per project.
#[derive(Default)]
struct ListIndex {
    all: Vec<String>,
    by_project: HashMap<String, Vec<String>>,
}

impl Jobs {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every change goes through here, so the listing index is dropped here.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        let guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        *self.index.lock().unwrap_or_else(PoisonError::into_inner) = None;
        guard
    }

    /// The listing index for the jobs as `inner` holds them, built if a change dropped it.
    fn list_index(&self, inner: &Inner) -> std::sync::Arc<ListIndex> {
        let mut cached = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = cached.as_ref() {
            return std::sync::Arc::clone(index);
        }
        let mut index = ListIndex::default();
        for (id, job) in inner.jobs.iter().filter(|(_, job)| !job.forbidden) {
            index.all.push(id.clone());
            if let Some(project) = &job.project {
                index
                    .by_project
                    .entry(project.clone())
                    .or_default()
                    .push(id.clone());
            }
        }
        let index = std::sync::Arc::new(index);
        *cached = Some(std::sync::Arc::clone(&index));
        index
    }

    /// The ShowJobInfo answer for `id` (already validated by the caller).
    pub(crate) fn lookup(&self, id: &str) -> Lookup {
        let inner = self.read();
        match inner.jobs.get(id) {
            None => Lookup::Missing,
            Some(job) if job.forbidden => Lookup::Forbidden,
            Some(job) => Lookup::Found(job.body.clone()),
        }
    }

    /// `f` of the job, when there is one.
    pub(crate) fn with_job<T>(&self, id: &str, f: impl FnOnce(&Job) -> T) -> Option<T> {
        self.read().jobs.get(id).map(f)
    }

    /// `f` of the job holding build `record_id`, and the build's number.
    pub(crate) fn with_record<T>(
        &self,
        record_id: &str,
        f: impl FnOnce(&Job, u32) -> T,
    ) -> Option<T> {
        let inner = self.read();
        let (id, build_no) = inner.records.get(record_id)?;
        inner.jobs.get(id).map(|job| f(job, *build_no))
    }

    /// Creates the job with [`default_fields`] (named `name` when given, in project `project`
    /// when given, else [`DEFAULT_PROJECT_ID`]) unless it exists.
    pub(crate) fn seed(&self, id: &str, name: Option<String>, project: Option<&str>, now_ms: i64) {
        let mut inner = self.write();
        inner.jobs.entry(id.to_owned()).or_insert_with(|| {
            let mut fields = default_fields(id, name, now_ms);
            if let Some(project) = project {
                fields.insert("project_id".to_owned(), Value::from(project));
            }
            Job::new(fields)
        });
    }

    /// Creates the job (with defaults) if needed, then applies the patch. Returns the job as
    /// the control API shows it, and whether it was created. A job created again leaves the
    /// recycle bin.
    pub(crate) fn put(&self, id: &str, patch: Patch, now_ms: i64) -> (Value, bool) {
        let mut inner = self.write();
        let mut created = false;
        let job = inner.jobs.entry(id.to_owned()).or_insert_with(|| {
            created = true;
            Job::new(default_fields(id, None, now_ms))
        });
        job.apply(patch, now_ms);
        let view = job.control_view();
        if created {
            inner.recycled.retain(|r| r.job_id != id);
        }
        (view, created)
    }

    /// The job as the control API shows it.
    pub(crate) fn get(&self, id: &str) -> Option<Value> {
        self.read().jobs.get(id).map(Job::control_view)
    }

    /// Removes the job (and its builds) into the recycle bin; `false` when there was none.
    pub(crate) fn delete(&self, id: &str, now_ms: i64) -> bool {
        let mut inner = self.write();
        let Some(job) = inner.jobs.remove(id) else {
            return false;
        };
        for build in &job.builds {
            inner.records.remove(&build.record_id);
        }
        inner.recycled.retain(|r| r.job_id != id);
        inner.recycled.push(Recycled::of(id, &job.fields, now_ms));
        true
    }

    /// The recycle bin, oldest deletion first.
    pub(crate) fn recycled(&self) -> Vec<Recycled> {
        self.read().recycled.clone()
    }

    /// Adds the job's next build from `spec` and moves the job's fields to it; `None` when
    /// there is no such job. Returns the build's number and record id.
    pub(crate) fn add_build(
        &self,
        id: &str,
        spec: BuildSpec,
        now_ms: i64,
    ) -> Option<(u32, String)> {
        let mut inner = self.write();
        let job = inner.jobs.get_mut(id)?;
        let build_no = u32::try_from(job.builds.len() + 1).ok()?;
        let build = Build::new(id, job.name(), build_no, spec, now_ms);
        let record_id = build.record_id.clone();
        job.builds.push(build);
        job.follow_build(build_no);
        inner
            .records
            .insert(record_id.clone(), (id.to_owned(), build_no));
        Some((build_no, record_id))
    }

    /// Ends build `build_no` of the job with `status` if it is still running; `false`
    /// otherwise (no such job or build, or it already finished).
    pub(crate) fn finish_build(&self, id: &str, build_no: u32, status: &str, now_ms: i64) -> bool {
        let mut inner = self.write();
        let Some(job) = inner.jobs.get_mut(id) else {
            return false;
        };
        let Some(build) = build_no
            .checked_sub(1)
            .and_then(|i| job.builds.get_mut(i as usize))
            .filter(|b| b.running())
        else {
            return false;
        };
        build.finish(status, now_ms);
        job.follow_build(build_no);
        true
    }

    /// Ends running build `build_no` with the build `spec` describes (its status, stages,
    /// log, …), keeping what the build started with (record id, commit, tag, parameters,
    /// user, start); `false` when there is no such running build.
    pub(crate) fn settle_build(
        &self,
        id: &str,
        build_no: u32,
        spec: BuildSpec,
        now_ms: i64,
    ) -> bool {
        let mut inner = self.write();
        let Some(job) = inner.jobs.get_mut(id) else {
            return false;
        };
        let name = job.name().to_owned();
        let Some(build) = build_no
            .checked_sub(1)
            .and_then(|i| job.builds.get_mut(i as usize))
            .filter(|b| b.running())
        else {
            return false;
        };
        let spec = BuildSpec {
            commit: Some(build.commit.clone()),
            tag: Some(build.tag.clone()),
            branch: Some(build.branch.clone()),
            user: Some(build.user.clone()),
            trigger_type: Some(build.trigger_type.clone()),
            parameters: Some(build.parameters.clone()),
            commit_message: Some(build.commit_message.clone()),
            duration_ms: Some(u64::try_from(now_ms.saturating_sub(build.start_ms)).unwrap_or(0)),
            ..spec
        };
        let start_ms = build.start_ms;
        let mut done = Build::new(id, &name, build_no, spec, now_ms);
        done.start_ms = start_ms;
        *build = done;
        job.follow_build(build_no);
        true
    }

    /// The job's builds as the control API shows them, oldest first.
    pub(crate) fn builds(&self, id: &str) -> Option<Vec<Value>> {
        self.with_job(id, |job| {
            job.builds.iter().map(Build::control_view).collect()
        })
    }

    /// Every job as the control API shows it, ordered by id.
    pub(crate) fn list(&self) -> Vec<Value> {
        let inner = self.read();
        let mut ids: Vec<&String> = inner.jobs.keys().collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|id| inner.jobs.get(id))
            .map(Job::control_view)
            .collect()
    }

    /// One page of a job listing: the jobs of `project` (every job when `None`) that the
    /// caller may see (not `_sim_forbidden`), ordered by id so pages are stable, each shown by
    /// `entry`; with the total of matching jobs.
    pub(crate) fn page(
        &self,
        project: Option<&str>,
        index: usize,
        size: usize,
        entry: impl Fn(&Job) -> Value,
    ) -> (Vec<Value>, usize) {
        let inner = self.read();
        let listed = self.list_index(&inner);
        let ids = match project {
            None => Some(&listed.all),
            Some(p) => listed.by_project.get(p),
        };
        let Some(ids) = ids else {
            return (Vec::new(), 0);
        };
        let page = ids
            .iter()
            .skip(index.saturating_mul(size))
            .take(size)
            .filter_map(|id| inner.jobs.get(id))
            .map(entry)
            .collect();
        (page, ids.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.read().jobs.len()
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
}
