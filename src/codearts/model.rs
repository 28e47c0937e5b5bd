//! Typed CodeArts Build payloads, tolerant of the drift between documentation and real answers.
//!
//! Mirrors ShowJobInfo (`GET /v1/job/{job_id}/info`), see
//! <https://support.huaweicloud.com/intl/en-us/api-codeartsbuild/ShowJobInfo.html> and
//! `shared/codearts/show-job-info.txt`. The documented types and the real answers disagree
//! (`create_time` documented as a number, returned as a string; `build_time` declared a string,
//! returned as a number by API Explorer), so every numeric field accepts a number or a numeric
//! string, and every field is optional.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A CodeArts Build job id: exactly 32 ASCII letters or digits.
///
/// Validated before any URL is built, so a hostile id can never change the request path.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

/// Why a string is not a [`JobId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{shown:?} is not a CodeArts job id: expected exactly 32 ASCII letters or digits \
     (the string at the end of the job's URL in the console), got {reason}"
)]
pub struct InvalidJobId {
    shown: String,
    reason: String,
}

impl JobId {
    pub const LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, InvalidJobId> {
        let shown: String = raw.chars().take(48).collect();
        let len = raw.chars().count();
        if len != Self::LEN {
            return Err(InvalidJobId {
                shown,
                reason: format!("{len} characters"),
            });
        }
        if let Some(bad) = raw.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(InvalidJobId {
                shown,
                reason: format!("the character {bad:?}"),
            });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The `result` object of ShowJobInfo, normalised.
///
/// Serialised back with one type per field (times as Unix milliseconds, `build_time` and
/// `charge_time` as decimal text of seconds, as documented), which is the form stored in the
/// database and sent in the generic webhook's `previous`/`current`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct JobInfo {
    pub id: Option<String>,
    pub project_id: Option<String>,
    pub job_name: Option<String>,
    pub last_build_status: Option<String>,
    /// Unix milliseconds of the last build.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub last_build_time: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub health_score: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub disabled: Option<bool>,
    pub running_status: Option<String>,
    /// Seconds, as decimal text.
    #[serde(deserialize_with = "lenient::opt_decimal_text")]
    pub build_time: Option<String>,
    /// Seconds, as decimal text.
    #[serde(deserialize_with = "lenient::opt_decimal_text")]
    pub charge_time: Option<String>,
    /// Unix milliseconds of the job's creation.
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub create_time: Option<i64>,
    pub source_code: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub favorite: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub new_build: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub project_permission_switch: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_copy: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_delete: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_execute: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_forbidden: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_manager: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_modify: Option<bool>,
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub is_view: Option<bool>,
}

impl JobInfo {
    /// The job's name, or a placeholder when the API left it out.
    pub fn display_name(&self) -> &str {
        self.job_name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or("(unnamed job)")
    }

    /// `build_time` as seconds, when it is a number.
    pub fn build_seconds(&self) -> Option<f64> {
        self.build_time.as_deref()?.trim().parse().ok()
    }
}

/// The ShowJobInfo envelope: `{"result": {...}, "status": "success"|"fail", "error": ...}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    result: Option<serde_json::Value>,
    status: Option<String>,
    error: Option<serde_json::Value>,
}

/// Why a 200 answer could not be turned into a [`JobInfo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not the documented JSON (HTML from a proxy, a truncated body, ...).
    #[error("answer is not the documented JSON: {0}")]
    Malformed(String),
    /// HTTP 200 with `"status": "fail"`: the API says the call failed.
    #[error("API answered status \"fail\": {0}")]
    Failed(String),
}

/// Parses a ShowJobInfo 200 body.
pub fn parse_job_info(body: &[u8]) -> Result<JobInfo, ParseError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| ParseError::Malformed(format!("{e} (body starts {})", preview(body))))?;
    if let Some(status) = &envelope.status
        && !status.eq_ignore_ascii_case("success")
    {
        let reason = match envelope.error {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Null) | None => "no reason given".to_owned(),
            Some(other) => other.to_string(),
        };
        return Err(ParseError::Failed(format!("{status}: {reason}")));
    }
    let result = match envelope.result {
        Some(v @ serde_json::Value::Object(_)) => v,
        Some(other) => {
            return Err(ParseError::Malformed(format!(
                "`result` is not an object but {}",
                kind_of(&other)
            )));
        }
        None => return Err(ParseError::Malformed("`result` is missing".to_owned())),
    };
    serde_json::from_value(result).map_err(|e| ParseError::Malformed(e.to_string()))
}

/// The first bytes of a body, printable, for error messages.
pub fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(60)]);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > 60 {
        out.push('…');
    }
    format!("{out:?}")
}

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Deserializers that accept the types the API is seen to send, not only the documented ones.
mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_json::Value;

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("number {n} out of range"))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                let t = s.trim();
                t.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(|f| f as i64)
                    })
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(format!("expected a number, got {s:?}")))
            }
            Some(other) => Err(D::Error::custom(format!("expected a number, got {other}"))),
        }
    }

    pub fn opt_decimal_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(D::Error::custom(format!(
                "expected seconds as text or number, got {other}"
            ))),
        }
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(other) => Err(D::Error::custom(format!("expected a boolean, got {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED_EXAMPLE: &str = r#"{
      "result" : {
        "id" : "f5af662119404ad187437cd272b5099b",
        "project_id" : "85caf40575794f989920-5216d1148af6",
        "project_permission_switch" : true,
        "build_time" : "27.51",
        "charge_time" : "15.17",
        "create_time" : "1717574458000",
        "disabled" : false,
        "favorite" : false,
        "source_code" : "test",
        "running_status" : "Finished",
        "new_build" : false,
        "job_name" : "jobname",
        "is_copy" : true, "is_delete" : true, "is_execute" : true, "is_forbidden" : true,
        "is_manager" : true, "is_modify" : true, "is_view" : true,
        "last_build_status" : "success",
        "last_build_time" : 1721793407000,
        "health_score" : 74
      },
      "status" : "success",
      "error" : null
    }"#;

    #[test]
    fn parses_the_documented_example() {
        let info = parse_job_info(DOCUMENTED_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(info.id.as_deref(), Some("f5af662119404ad187437cd272b5099b"));
        assert_eq!(info.create_time, Some(1_717_574_458_000));
        assert_eq!(info.last_build_time, Some(1_721_793_407_000));
        assert_eq!(info.build_time.as_deref(), Some("27.51"));
        assert_eq!(info.build_seconds(), Some(27.51));
        assert_eq!(info.health_score, Some(74));
        assert_eq!(info.disabled, Some(false));
        assert_eq!(info.last_build_status.as_deref(), Some("success"));
        assert_eq!(info.job_name.as_deref(), Some("jobname"));
    }

    #[test]
    fn accepts_numbers_as_strings_and_the_reverse() {
        let body = r#"{"status":"success","result":{
            "create_time": 1717574458000, "last_build_time": "1721793407000",
            "build_time": 27.51, "charge_time": 15, "health_score": "74", "disabled": "true"}}"#;
        let info = parse_job_info(body.as_bytes()).unwrap();
        assert_eq!(info.create_time, Some(1_717_574_458_000));
        assert_eq!(info.last_build_time, Some(1_721_793_407_000));
        assert_eq!(info.build_time.as_deref(), Some("27.51"));
        assert_eq!(info.charge_time.as_deref(), Some("15"));
        assert_eq!(info.health_score, Some(74));
        assert_eq!(info.disabled, Some(true));
    }

    #[test]
    fn missing_optional_fields_and_unknown_fields_are_fine() {
        let body = r#"{"status":"success","result":{"job_name":"x","brand_new_field":[1,2]}}"#;
        let info = parse_job_info(body.as_bytes()).unwrap();
        assert_eq!(info.job_name.as_deref(), Some("x"));
        assert_eq!(info.health_score, None);
    }

    #[test]
    fn status_fail_is_an_error_with_the_reason() {
        let body = r#"{"status":"fail","error":"job is being migrated","result":null}"#;
        let err = parse_job_info(body.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            ParseError::Failed("fail: job is being migrated".to_owned())
        );
    }

    #[test]
    fn html_and_truncated_bodies_are_malformed_not_panics() {
        let html = b"<html><body>502 Bad Gateway</body></html>";
        assert!(matches!(
            parse_job_info(html),
            Err(ParseError::Malformed(m)) if m.contains("<html>")
        ));
        let truncated = &DOCUMENTED_EXAMPLE.as_bytes()[..120];
        assert!(matches!(
            parse_job_info(truncated),
            Err(ParseError::Malformed(_))
        ));
        assert!(matches!(parse_job_info(b""), Err(ParseError::Malformed(_))));
        assert!(matches!(
            parse_job_info(br#"{"status":"success","result":[]}"#),
            Err(ParseError::Malformed(m)) if m.contains("array")
        ));
        assert!(matches!(
            parse_job_info(br#"{"status":"success","result":{"health_score":{}}}"#),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn job_ids_are_exactly_32_ascii_letters_or_digits() {
        assert!(JobId::parse("f5af662119404ad187437cd272b5099b").is_ok());
        assert!(JobId::parse("F5AF662119404AD187437CD272B5099B").is_ok());
        for bad in [
            "",
            "f5af662119404ad187437cd272b5099",
            "f5af662119404ad187437cd272b5099bb",
            "f5af662119404ad187437cd272b5099/",
            "../../v3/auth/tokens/aaaaaaaaaaaa",
            "f5af662119404ad187437cd272b5099é",
        ] {
            let err = JobId::parse(bad).unwrap_err().to_string();
            assert!(err.contains("32 ASCII letters or digits"), "{err}");
        }
    }
}
