//! How a build that ExecuteJob starts runs and ends: the job's three execution flags and the
//! precedence between them. `_sim_build_ms` and `_sim_next_result` are the contract of issue
//! #15 (how long the build runs, how it ends) that other tools script against;
//! `_sim_next_build` is the whole build body, for tests that need stages, a log or a report.
//!
//! Precedence, per property: `_sim_next_build`'s explicit `duration_ms` / `status`, else
//! `_sim_build_ms` / `_sim_next_result`, else [`DEFAULT_BUILD_MS`] / [`DEFAULT_RESULT`].

use serde_json::{Map, Value};

use super::builds::{BuildSpec, is_running};

/// Control-body key: the build ExecuteJob starts next (a build body; `null` clears it).
pub(crate) const FLAG_NEXT_BUILD: &str = "_sim_next_build";
/// Control-body key: how long the next executed builds run, in ms (`null` clears it).
pub(crate) const FLAG_BUILD_MS: &str = "_sim_build_ms";
/// Control-body key: the status the next executed builds end with (`null` clears it).
pub(crate) const FLAG_NEXT_RESULT: &str = "_sim_next_result";

/// How long an executed build runs when no flag says (the contract's default).
pub(crate) const DEFAULT_BUILD_MS: u64 = 2000;
/// The longest `_sim_build_ms`: ten minutes, as long as a fault's delay may be.
pub(crate) const MAX_BUILD_MS: u64 = 600_000;
/// How an executed build ends when no flag says.
pub(crate) const DEFAULT_RESULT: &str = "success";
/// A status longer than this is a mistake, not a status.
const MAX_RESULT_LEN: usize = 64;

/// The execution flags of a `PUT /_sim/jobs/{id}` body; for each, `None` leaves it as it is,
/// `Some(None)` clears it (`null`), `Some(Some(v))` sets it.
#[derive(Debug, Default)]
pub(crate) struct RunPatch {
    pub(crate) next_build: Option<Option<Value>>,
    pub(crate) build_ms: Option<Option<u64>>,
    pub(crate) next_result: Option<Option<String>>,
}

/// A job's execution flags, as set; they stay until changed, so every execution ends alike.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunFlags {
    /// `_sim_next_build`: a build body, checked to parse when it was set.
    pub(crate) next_build: Option<Value>,
    pub(crate) build_ms: Option<u64>,
    pub(crate) next_result: Option<String>,
}

/// `_sim_build_ms`'s value: an integer 0..=[`MAX_BUILD_MS`], or `null`.
pub(crate) fn parse_build_ms(value: &Value) -> Result<Option<u64>, String> {
    if value.is_null() {
        return Ok(None);
    }
    value
        .as_u64()
        .filter(|ms| *ms <= MAX_BUILD_MS)
        .map(Some)
        .ok_or_else(|| {
            format!("{FLAG_BUILD_MS} must be an integer of ms, 0 to {MAX_BUILD_MS}, or null")
        })
}

/// `_sim_next_result`'s value: a status a build can end with (`success`, `failed`,
/// `aborted`, …), or `null`. An in-progress status is refused: the build would never end.
pub(crate) fn parse_next_result(value: Value) -> Result<Option<String>, String> {
    let status = match value {
        Value::Null => return Ok(None),
        Value::String(status) => status,
        _ => {
            return Err(format!(
                "{FLAG_NEXT_RESULT} must be a build status string or null"
            ));
        }
    };
    let well_formed = !status.is_empty()
        && status.len() <= MAX_RESULT_LEN
        && status
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !well_formed {
        return Err(format!(
            "{FLAG_NEXT_RESULT} must be a build status such as success, failed or aborted \
             (1 to {MAX_RESULT_LEN} letters, digits, _ or -)"
        ));
    }
    if is_running(&status) {
        return Err(format!(
            "{FLAG_NEXT_RESULT} must be a status a build ends with, not {status:?}"
        ));
    }
    Ok(Some(status))
}

impl RunFlags {
    pub(crate) fn apply(&mut self, patch: RunPatch) {
        if let Some(next) = patch.next_build {
            self.next_build = next;
        }
        if let Some(ms) = patch.build_ms {
            self.build_ms = ms;
        }
        if let Some(result) = patch.next_result {
            self.next_result = result;
        }
    }

    /// Adds the flags that are set to the control API's view of the job.
    pub(crate) fn show(&self, view: &mut Map<String, Value>) {
        if let Some(next) = &self.next_build {
            view.insert(FLAG_NEXT_BUILD.to_owned(), next.clone());
        }
        if let Some(ms) = self.build_ms {
            view.insert(FLAG_BUILD_MS.to_owned(), Value::from(ms));
        }
        if let Some(result) = &self.next_result {
            view.insert(FLAG_NEXT_RESULT.to_owned(), Value::from(result.clone()));
        }
    }

    /// How the next executed build ends: after how many ms, as which build (its `status`
    /// always set). Applies the precedence in the module's documentation.
    pub(crate) fn outcome(&self) -> (u64, BuildSpec) {
        // Checked when the flag was set; a body that no longer parses counts as absent.
        let spec: BuildSpec = self
            .next_build
            .clone()
            .and_then(|body| serde_json::from_value(body).ok())
            .unwrap_or_default();
        let run_ms = spec
            .duration_ms
            .or(self.build_ms)
            .unwrap_or(DEFAULT_BUILD_MS);
        let status = spec
            .status
            .clone()
            .or_else(|| self.next_result.clone())
            .unwrap_or_else(|| DEFAULT_RESULT.to_owned());
        let spec = BuildSpec {
            status: Some(status),
            ..spec
        };
        (run_ms, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(next_build: Option<Value>, build_ms: Option<u64>, result: Option<&str>) -> RunFlags {
        RunFlags {
            next_build,
            build_ms,
            next_result: result.map(str::to_owned),
        }
    }

    #[test]
    fn build_ms_takes_integers_up_to_ten_minutes_and_null() {
        assert_eq!(parse_build_ms(&json!(0)), Ok(Some(0)));
        assert_eq!(parse_build_ms(&json!(600_000)), Ok(Some(600_000)));
        assert_eq!(parse_build_ms(&json!(null)), Ok(None));
        for bad in [
            json!(600_001),
            json!(-1),
            json!(2.5),
            json!("500"),
            json!(true),
        ] {
            let err = parse_build_ms(&bad).unwrap_err();
            assert!(err.contains(FLAG_BUILD_MS), "{bad}: {err}");
        }
    }

    #[test]
    fn next_result_takes_a_final_status_and_null() {
        assert_eq!(
            parse_next_result(json!("failed")),
            Ok(Some("failed".to_owned()))
        );
        assert_eq!(parse_next_result(json!(null)), Ok(None));
        for bad in [
            json!(""),
            json!("running"),
            json!("Queued"),
            json!("not a status"),
            json!(3),
            json!("x".repeat(65)),
        ] {
            let err = parse_next_result(bad.clone()).unwrap_err();
            assert!(err.contains(FLAG_NEXT_RESULT), "{bad}: {err}");
        }
    }

    #[test]
    fn without_flags_a_build_succeeds_after_two_seconds() {
        let (ms, spec) = RunFlags::default().outcome();
        assert_eq!((ms, spec.status.as_deref()), (2000, Some("success")));
    }

    #[test]
    fn the_two_flags_decide_when_next_build_does_not_say() {
        let (ms, spec) = flags(None, Some(300), Some("failed")).outcome();
        assert_eq!((ms, spec.status.as_deref()), (300, Some("failed")));
        let body = json!({"log": "x", "tests": {"total": 3}});
        let (ms, spec) = flags(Some(body), Some(300), Some("failed")).outcome();
        assert_eq!((ms, spec.status.as_deref()), (300, Some("failed")));
        assert_eq!(spec.log.as_deref(), Some("x"), "the body's other keys stay");
    }

    #[test]
    fn next_build_explicit_duration_and_status_win() {
        let body = json!({"status": "aborted", "duration_ms": 40});
        let (ms, spec) = flags(Some(body), Some(300), Some("failed")).outcome();
        assert_eq!((ms, spec.status.as_deref()), (40, Some("aborted")));
        // Each property on its own: the body's status, the flag's duration.
        let (ms, spec) = flags(Some(json!({"status": "failed"})), Some(7), None).outcome();
        assert_eq!((ms, spec.status.as_deref()), (7, Some("failed")));
    }

    #[test]
    fn a_patch_sets_keeps_and_clears_each_flag() {
        let mut run = RunFlags::default();
        run.apply(RunPatch {
            build_ms: Some(Some(500)),
            next_result: Some(Some("failed".to_owned())),
            ..RunPatch::default()
        });
        run.apply(RunPatch {
            next_build: Some(Some(json!({}))),
            ..RunPatch::default()
        });
        let mut view = Map::new();
        run.show(&mut view);
        assert_eq!(
            Value::Object(view),
            json!({"_sim_build_ms": 500, "_sim_next_result": "failed", "_sim_next_build": {}})
        );
        run.apply(RunPatch {
            build_ms: Some(None),
            next_result: Some(None),
            next_build: Some(None),
        });
        let mut view = Map::new();
        run.show(&mut view);
        assert!(view.is_empty());
        assert_eq!(run.outcome().0, DEFAULT_BUILD_MS);
    }
}
