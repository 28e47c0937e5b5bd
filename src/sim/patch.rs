//! The body of the control API's `PUT /_sim/jobs/{id}`: job fields, set verbatim, and the
//! simulator flags (`_sim_*`), each checked for its type. Unknown flags are refused so a typo
//! never silently does nothing.

use serde_json::{Map, Value};

use super::builds::BuildSpec;
use super::run_flags::{self, FLAG_BUILD_MS, FLAG_NEXT_BUILD, FLAG_NEXT_RESULT, RunPatch};

/// Control-body key: `true` makes the job answer 403; `false` restores it.
pub(crate) const FLAG_FORBIDDEN: &str = "_sim_forbidden";
/// Control-body key: a reason string makes the job answer 200 with `"status": "fail"`;
/// `null` restores it.
pub(crate) const FLAG_FAIL: &str = "_sim_fail";
/// Control-body key: names of fields to delete from the job (applied before the other fields).
pub(crate) const FLAG_REMOVE: &str = "_sim_remove";
/// Control-body key: who disabled the job (ShowDisable's `forbiddener`).
pub(crate) const FLAG_DISABLED_BY: &str = "_sim_disabled_by";
/// Control-body key: why the job was disabled (ShowDisable's `reson`).
pub(crate) const FLAG_DISABLED_REASON: &str = "_sim_disabled_reason";

/// Why a control-API patch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PatchError(String);

/// A parsed control-API `PUT /_sim/jobs/{id}` body.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    pub(crate) fields: Map<String, Value>,
    pub(crate) forbidden: Option<bool>,
    /// `Some(None)` clears the failure, `Some(Some(reason))` sets it.
    pub(crate) fail: Option<Option<String>>,
    pub(crate) remove: Vec<String>,
    pub(crate) disabled_by: Option<String>,
    pub(crate) disabled_reason: Option<String>,
    /// `_sim_next_build`, `_sim_build_ms`, `_sim_next_result`: how ExecuteJob's builds run.
    pub(crate) run: RunPatch,
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
                FLAG_DISABLED_BY | FLAG_DISABLED_REASON => {
                    let Value::String(text) = value else {
                        return Err(PatchError(format!("{key} must be a string")));
                    };
                    if key == FLAG_DISABLED_BY {
                        patch.disabled_by = Some(text);
                    } else {
                        patch.disabled_reason = Some(text);
                    }
                }
                FLAG_NEXT_BUILD => {
                    if !value.is_null() {
                        serde_json::from_value::<BuildSpec>(value.clone()).map_err(|e| {
                            PatchError(format!("{FLAG_NEXT_BUILD} is not a build: {e}"))
                        })?;
                    }
                    patch.run.next_build = Some((!value.is_null()).then_some(value));
                }
                FLAG_BUILD_MS => {
                    patch.run.build_ms =
                        Some(run_flags::parse_build_ms(&value).map_err(PatchError)?);
                }
                FLAG_NEXT_RESULT => {
                    patch.run.next_result =
                        Some(run_flags::parse_next_result(value).map_err(PatchError)?);
                }
                other if other.starts_with("_sim_") => {
                    return Err(PatchError(format!(
                        "unknown simulator flag {other:?} (known: {FLAG_FORBIDDEN}, {FLAG_FAIL}, \
                         {FLAG_REMOVE}, {FLAG_DISABLED_BY}, {FLAG_DISABLED_REASON}, \
                         {FLAG_NEXT_BUILD}, {FLAG_BUILD_MS}, {FLAG_NEXT_RESULT})"
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_patches_are_refused_with_a_reason() {
        for bad in [
            json!([1, 2]),
            json!("x"),
            json!({"_sim_forbidden": "yes"}),
            json!({"_sim_fail": 3}),
            json!({"_sim_remove": "favorite"}),
            json!({"_sim_typo": true}),
            json!({"_sim_disabled_by": 1}),
            json!({"_sim_next_build": {"stauts": "failed"}}),
            json!({"_sim_build_ms": -5}),
            json!({"_sim_build_ms": 600_001}),
            json!({"_sim_next_result": "running"}),
            json!({"_sim_next_result": false}),
        ] {
            assert!(Patch::parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_are_split_from_fields() {
        let patch = Patch::parse(json!({
            "job_name": "x", "_sim_disabled_by": "carol", "_sim_next_build": {"status": "failed"}
        }))
        .unwrap();
        assert_eq!(patch.fields.len(), 1);
        assert_eq!(patch.disabled_by.as_deref(), Some("carol"));
        assert!(matches!(patch.run.next_build, Some(Some(_))));
        let cleared = Patch::parse(json!({"_sim_next_build": null})).unwrap();
        assert!(matches!(cleared.run.next_build, Some(None)));
    }

    #[test]
    fn the_build_flags_are_parsed_and_a_bad_one_is_named() {
        let patch =
            Patch::parse(json!({"_sim_build_ms": 500, "_sim_next_result": "failed"})).unwrap();
        assert_eq!(patch.run.build_ms, Some(Some(500)));
        assert_eq!(patch.run.next_result, Some(Some("failed".to_owned())));
        assert!(patch.fields.is_empty());
        let cleared =
            Patch::parse(json!({"_sim_build_ms": null, "_sim_next_result": null})).unwrap();
        assert_eq!(cleared.run.build_ms, Some(None));
        assert_eq!(cleared.run.next_result, Some(None));
        for (bad, flag) in [
            (json!({"_sim_build_ms": "2000"}), "_sim_build_ms"),
            (json!({"_sim_next_result": ""}), "_sim_next_result"),
        ] {
            let err = Patch::parse(bad).unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let unknown = Patch::parse(json!({"_sim_build_sm": 1})).unwrap_err();
        assert!(unknown.to_string().contains("_sim_build_ms"), "{unknown}");
    }
}
