//! A simulated job's builds: what `POST /_sim/jobs/{id}/builds` takes ([`BuildSpec`], every
//! key optional, unknown keys refused), the build it makes ([`Build`], with realistic defaults
//! for what the spec leaves out), and the ids every build operation shares (build number,
//! record id, commit). The API answers built from a [`Build`] are in `records.rs`.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The user who runs builds when the spec names nobody (the lists' `last_build_user` too).
pub(crate) const SIM_USER: &str = "sim-user";

/// A user's id: 32 hex characters derived from the name, as IAM user ids look.
pub(crate) fn user_id(user: &str) -> String {
    hex::encode(&Sha256::digest(format!("sim-user:{user}").as_bytes())[..16])
}

/// The job's repository id (a number as text), derived from the job id.
pub(crate) fn repo_id(job_id: &str) -> String {
    let digest = Sha256::digest(job_id.as_bytes());
    u32::from_be_bytes([0, digest[0], digest[1], digest[2]]).to_string()
}

/// The job's repository page, derived from its name.
pub(crate) fn scm_web_url(job_name: &str) -> String {
    format!("https://codehub.sim.invalid/sim/{job_name}")
}

/// The body of `POST /_sim/jobs/{id}/builds` (and of the `_sim_next_build` flag, which
/// ExecuteJob uses). Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildSpec {
    pub(crate) status: Option<String>,
    pub(crate) branch: Option<String>,
    pub(crate) tag: Option<String>,
    pub(crate) commit: Option<String>,
    pub(crate) commit_message: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) trigger_type: Option<String>,
    pub(crate) stages: Option<Vec<StageSpec>>,
    pub(crate) log: Option<String>,
    pub(crate) tests: Option<Tests>,
    pub(crate) parameters: Option<Vec<Parameter>>,
    pub(crate) duration_ms: Option<u64>,
    pub(crate) err_msg: Option<String>,
}

impl BuildSpec {
    /// Parses a control body; an empty body is the all-defaults spec.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| format!("not a build: {e}"))
    }
}

/// One stage of a [`BuildSpec`]; a stage without a status succeeded, unless it is the last
/// stage of a build that did not (then it has the build's status).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageSpec {
    pub(crate) name: String,
    pub(crate) status: Option<String>,
    pub(crate) duration_ms: Option<u64>,
}

/// A unit-test report.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tests {
    #[serde(default)]
    pub(crate) total: u64,
    #[serde(default)]
    pub(crate) failures: u64,
    #[serde(default)]
    pub(crate) errors: u64,
}

/// A build parameter.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Parameter {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// A stage of a [`Build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) duration_ms: u64,
}

/// One build of a job, as every build operation shows it.
#[derive(Debug, Clone)]
pub(crate) struct Build {
    pub(crate) job_id: String,
    pub(crate) build_no: u32,
    /// 36 characters (8-4-4-4-12 lowercase hex), what the `/v1/record/{record_id}/…`
    /// operations take.
    pub(crate) record_id: String,
    pub(crate) status: String,
    pub(crate) branch: String,
    pub(crate) tag: String,
    pub(crate) commit: String,
    pub(crate) commit_message: String,
    pub(crate) user: String,
    pub(crate) trigger_type: String,
    pub(crate) stages: Vec<Stage>,
    pub(crate) log: String,
    pub(crate) tests: Option<Tests>,
    pub(crate) parameters: Vec<Parameter>,
    pub(crate) duration_ms: u64,
    pub(crate) err_msg: String,
    /// Unix ms.
    pub(crate) start_ms: i64,
    /// Unix ms; `None` while the build runs.
    pub(crate) finish_ms: Option<i64>,
}

/// The statuses of a build still in progress.
pub(crate) fn is_running(status: &str) -> bool {
    ["running", "queued", "pending", "building"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

pub(crate) fn is_success(status: &str) -> bool {
    status.eq_ignore_ascii_case("success")
}

impl Build {
    /// Build `build_no` of job `job_id` (named `job_name`) from `spec`, with defaults for what
    /// it leaves out. A finished build ends `now_ms` and started `duration_ms` before; a
    /// running one starts `now_ms`.
    pub(crate) fn new(
        job_id: &str,
        job_name: &str,
        build_no: u32,
        spec: BuildSpec,
        now_ms: i64,
    ) -> Self {
        let seed = Sha256::digest(format!("{job_id}#{build_no}").as_bytes());
        let status = spec.status.unwrap_or_else(|| "success".to_owned());
        let running = is_running(&status);
        let tag = spec.tag.unwrap_or_default();
        let branch = spec.branch.unwrap_or_else(|| {
            if tag.is_empty() {
                "master".to_owned()
            } else {
                String::new()
            }
        });
        let commit = spec.commit.unwrap_or_else(|| hex::encode(&seed[..20]));
        let stage_total: Option<u64> = spec
            .stages
            .as_ref()
            .and_then(|stages| stages.iter().map(|s| s.duration_ms).sum());
        let default_duration = 30_000 + u64::from(u16::from_be_bytes([seed[20], seed[21]])) * 4;
        let duration_ms = spec.duration_ms.or(stage_total).unwrap_or(default_duration);
        let stages = stages(spec.stages, &status, duration_ms);
        let failed_stage = stages.iter().find(|s| !is_success(&s.status));
        let err_msg = spec.err_msg.unwrap_or_else(|| match failed_stage {
            Some(stage) if !running && !is_success(&status) => {
                format!("Command exited with code 1 in stage {}", stage.name)
            }
            _ => String::new(),
        });
        let commit_message = spec
            .commit_message
            .unwrap_or_else(|| format!("Merge branch 'feature-{build_no}' into {branch}"));
        let user = spec.user.unwrap_or_else(|| SIM_USER.to_owned());
        let parameters = spec.parameters.unwrap_or_else(|| {
            vec![Parameter {
                name: "codeBranch".to_owned(),
                value: branch.clone(),
            }]
        });
        let mut build = Build {
            job_id: job_id.to_owned(),
            build_no,
            record_id: record_id(job_id, build_no),
            status,
            branch,
            tag,
            commit,
            commit_message,
            user,
            trigger_type: spec.trigger_type.unwrap_or_else(|| "Manual".to_owned()),
            stages,
            log: String::new(),
            tests: spec.tests,
            parameters,
            duration_ms,
            err_msg,
            start_ms: if running {
                now_ms
            } else {
                now_ms.saturating_sub(i64::try_from(duration_ms).unwrap_or(i64::MAX))
            },
            finish_ms: (!running).then_some(now_ms),
        };
        build.log = spec.log.unwrap_or_else(|| default_log(&build, job_name));
        build
    }

    pub(crate) fn running(&self) -> bool {
        self.finish_ms.is_none()
    }

    /// The build's place among the job's builds that day (UTC), from 1 ("daily build
    /// number, which starts from 1 every day"), given the job's earlier builds.
    pub(crate) fn daily_number(&self, earlier: &[Build]) -> String {
        let day = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y%m%d").to_string())
                .unwrap_or_default()
        };
        let today = day(self.start_ms);
        let nth = 1 + earlier.iter().filter(|b| day(b.start_ms) == today).count();
        nth.to_string()
    }

    /// `branch` or, for a tag build, `tag`: what `build_type` says was built.
    pub(crate) fn build_type(&self) -> &'static str {
        if self.tag.is_empty() { "branch" } else { "tag" }
    }

    /// Ends a running build now with `status` (the stages still running take it too).
    pub(crate) fn finish(&mut self, status: &str, now_ms: i64) {
        self.status = status.to_owned();
        self.finish_ms = Some(now_ms);
        self.duration_ms = u64::try_from(now_ms.saturating_sub(self.start_ms)).unwrap_or(0);
        for stage in &mut self.stages {
            if is_running(&stage.status) {
                stage.status = status.to_owned();
            }
        }
        self.log.push_str(&format!(
            "\n[INFO] Build finished: {}",
            status.to_ascii_uppercase()
        ));
    }

    /// How `GET /_sim/jobs/{id}/builds` shows the build: the control body's keys, plus the
    /// ids and times the simulator chose.
    pub(crate) fn control_view(&self) -> Value {
        json!({
            "build_no": self.build_no,
            "record_id": self.record_id,
            "status": self.status,
            "branch": self.branch,
            "tag": self.tag,
            "commit": self.commit,
            "commit_message": self.commit_message,
            "user": self.user,
            "trigger_type": self.trigger_type,
            "stages": self.stages.iter().map(|s| json!({
                "name": s.name, "status": s.status, "duration_ms": s.duration_ms
            })).collect::<Vec<_>>(),
            "log": self.log,
            "tests": self.tests.map(|t| json!({
                "total": t.total, "failures": t.failures, "errors": t.errors
            })),
            "parameters": self.parameters.iter().map(|p| json!({
                "name": p.name, "value": p.value
            })).collect::<Vec<_>>(),
            "duration_ms": self.duration_ms,
            "err_msg": self.err_msg,
            "start_time": self.start_ms,
            "finish_time": self.finish_ms,
        })
    }
}

/// The record id of build `build_no` of `job_id`: a UUID-shaped 36-character string
/// derived from both, so it is stable across runs.
pub(crate) fn record_id(job_id: &str, build_no: u32) -> String {
    uuid_from(&format!("record:{job_id}#{build_no}"))
}

/// A UUID-shaped (8-4-4-4-12 lowercase hex) id derived from `seed`.
pub(crate) fn uuid_from(seed: &str) -> String {
    let h = hex::encode(&Sha256::digest(seed.as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The stages from the spec, or `Checkout` then `Build` when it names none.
fn stages(spec: Option<Vec<StageSpec>>, status: &str, duration_ms: u64) -> Vec<Stage> {
    let spec = spec.unwrap_or_else(|| {
        vec![
            StageSpec {
                name: "Checkout".to_owned(),
                status: None,
                duration_ms: Some(duration_ms / 10),
            },
            StageSpec {
                name: "Build".to_owned(),
                status: None,
                duration_ms: Some(duration_ms - duration_ms / 10),
            },
        ]
    });
    let count = spec.len();
    let share = duration_ms / u64::try_from(count.max(1)).unwrap_or(1);
    spec.into_iter()
        .enumerate()
        .map(|(i, stage)| Stage {
            status: stage.status.unwrap_or_else(|| {
                if i + 1 == count {
                    status.to_owned()
                } else {
                    "success".to_owned()
                }
            }),
            duration_ms: stage.duration_ms.unwrap_or(share),
            name: stage.name,
        })
        .collect()
}

/// A plausible log: one line per stage event, the failure's message, the outcome.
fn default_log(build: &Build, job_name: &str) -> String {
    let short = build.commit.get(..8).unwrap_or(&build.commit);
    let mut lines = vec![
        format!(
            "[INFO] Build #{} of {job_name} started by {} ({})",
            build.build_no, build.user, build.trigger_type
        ),
        format!(
            "[INFO] Checking out {} at {short}",
            if build.tag.is_empty() {
                &build.branch
            } else {
                &build.tag
            }
        ),
    ];
    for stage in &build.stages {
        lines.push(format!("[INFO] Stage \"{}\" started", stage.name));
        let seconds = stage.duration_ms as f64 / 1000.0;
        if is_success(&stage.status) {
            lines.push(format!(
                "[INFO] Stage \"{}\" succeeded in {seconds:.1}s",
                stage.name
            ));
        } else if is_running(&stage.status) {
            break;
        } else {
            lines.push(format!(
                "[ERROR] Stage \"{}\" {} after {seconds:.1}s: exit code 1",
                stage.name, stage.status
            ));
            break;
        }
    }
    if !build.running() {
        lines.push(format!(
            "[INFO] Build finished: {}",
            build.status.to_ascii_uppercase()
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "f5af662119404ad187437cd272b5099b";
    const NOW: i64 = 1_721_793_407_000;

    #[test]
    fn an_empty_spec_is_a_successful_build_with_realistic_fields() {
        let build = Build::new(JOB, "web", 3, BuildSpec::parse(b"").unwrap(), NOW);
        assert_eq!(build.status, "success");
        assert_eq!(build.branch, "master");
        assert_eq!(build.commit.len(), 40);
        assert_eq!(build.record_id.len(), 36);
        assert_eq!(build.record_id, record_id(JOB, 3));
        assert_eq!(build.stages.len(), 2);
        assert!(build.stages.iter().all(|s| s.status == "success"));
        assert_eq!(
            build.stages.iter().map(|s| s.duration_ms).sum::<u64>(),
            build.duration_ms
        );
        assert_eq!(build.finish_ms, Some(NOW));
        assert_eq!(
            build.start_ms,
            NOW - i64::try_from(build.duration_ms).unwrap()
        );
        assert!(build.err_msg.is_empty());
        assert!(
            build.log.contains("Build finished: SUCCESS"),
            "{}",
            build.log
        );
        assert_eq!(build.parameters[0].name, "codeBranch");
    }

    #[test]
    fn a_failed_build_fails_its_last_stage_and_explains_itself() {
        let spec: BuildSpec = serde_json::from_value(json!({
            "status": "failed",
            "stages": [{"name": "Compile", "duration_ms": 1000},
                       {"name": "Unit tests", "duration_ms": 2500}]
        }))
        .unwrap();
        let build = Build::new(JOB, "web", 1, spec, NOW);
        assert_eq!(build.duration_ms, 3500);
        assert_eq!(build.stages[0].status, "success");
        assert_eq!(build.stages[1].status, "failed");
        assert!(build.err_msg.contains("Unit tests"), "{}", build.err_msg);
        assert!(build.log.contains("[ERROR] Stage \"Unit tests\" failed"));
    }

    #[test]
    fn a_running_build_has_no_finish_until_it_is_finished() {
        let spec = BuildSpec {
            status: Some("running".to_owned()),
            ..BuildSpec::default()
        };
        let mut build = Build::new(JOB, "web", 1, spec, NOW);
        assert!(build.running());
        assert_eq!(build.start_ms, NOW);
        assert_eq!(build.stages[1].status, "running");
        build.finish("aborted", NOW + 4000);
        assert_eq!(build.finish_ms, Some(NOW + 4000));
        assert_eq!(build.duration_ms, 4000);
        assert_eq!(build.stages[1].status, "aborted");
        assert_eq!(build.stages[0].status, "success");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        for bad in [
            r#"{"stauts": "failed"}"#,
            r#"{"stages": [{"status": "x"}]}"#,
            r#"{"duration_ms": -1}"#,
            r#"[]"#,
        ] {
            assert!(BuildSpec::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_tag_build_has_no_branch_and_daily_numbers_count_the_day() {
        let spec = BuildSpec {
            tag: Some("v1.2.0".to_owned()),
            ..BuildSpec::default()
        };
        let first = Build::new(JOB, "web", 1, BuildSpec::default(), NOW);
        let second = Build::new(JOB, "web", 2, spec, NOW);
        assert_eq!(second.branch, "");
        assert_eq!(second.build_type(), "tag");
        assert_eq!(second.daily_number(std::slice::from_ref(&first)), "2");
    }
}
