//! Typed CodeArts Build payloads, tolerant of the drift between documentation and real answers.
//!
//! Mirrors ShowJobInfo (`GET /v1/job/{job_id}/info`), see
//! <https://support.huaweicloud.com/intl/en-us/api-codeci/ShowJobInfo.html>, summarised
//! in docs/codearts.md ("ShowJobInfo"). The documented types and the real answers disagree
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
        // The common case first, without allocating anything but the id: start-up parses
        // every watched job's id several times (config, watch list, list pages).
        if raw.len() == Self::LEN && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(Self(raw.to_owned()));
        }
        let shown: String = raw.chars().take(48).collect();
        let len = raw.chars().count();
        if len != Self::LEN {
            return Err(InvalidJobId {
                shown,
                reason: format!("{len} characters"),
            });
        }
        let bad = raw
            .chars()
            .find(|c| !c.is_ascii_alphanumeric())
            .unwrap_or('?');
        Err(InvalidJobId {
            shown,
            reason: format!("the character {bad:?}"),
        })
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
/// Parsed in one pass straight into [`JobInfo`] (no intermediate JSON tree): a poll cycle
/// parses ten thousand of these.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "lenient::opt_object")]
    result: Option<JobInfo>,
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
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        // A failure answer may carry anything in `result`: look at its status before blaming
        // the shape.
        Err(e) => {
            return Err(failure_of(body).unwrap_or_else(|| {
                ParseError::Malformed(format!("{e} (body starts {})", preview(body)))
            }));
        }
    };
    if let Some(status) = &envelope.status
        && !status.eq_ignore_ascii_case("success")
    {
        return Err(failed(status, envelope.error));
    }
    envelope
        .result
        .ok_or_else(|| ParseError::Malformed("`result` is missing or null".to_owned()))
}

fn failed(status: &str, error: Option<serde_json::Value>) -> ParseError {
    let reason = match error {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Null) | None => "no reason given".to_owned(),
        Some(other) => other.to_string(),
    };
    ParseError::Failed(format!("{status}: {reason}"))
}

/// For a body whose `result` does not parse: its `"status": "fail"` reason, if it has one.
fn failure_of(body: &[u8]) -> Option<ParseError> {
    #[derive(Deserialize)]
    struct StatusOnly {
        status: Option<String>,
        error: Option<serde_json::Value>,
    }
    let parsed: StatusOnly = serde_json::from_slice(body).ok()?;
    let status = parsed.status?;
    (!status.eq_ignore_ascii_case("success")).then(|| failed(&status, parsed.error))
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

/// Deserializers that accept the types the API is seen to send, not only the documented ones.
/// Visitors (not an intermediate `serde_json::Value`), so parsing allocates only the strings
/// it keeps.
pub(super) mod lenient {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{Error, Visitor};

    struct I64;

    impl Visitor<'_> for I64 {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("number {v} out of range")))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() {
                Ok(Some(v as i64))
            } else {
                Err(E::custom("number out of range"))
            }
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            let t = s.trim();
            if t.is_empty() {
                return Ok(None);
            }
            t.parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| E::custom(format!("expected a number, got {s:?}")))
        }
    }

    struct DecimalText;

    impl Visitor<'_> for DecimalText {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds as text or a number")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(
                serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string()),
            ))
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_owned()))
        }
        fn visit_string<E: Error>(self, s: String) -> Result<Self::Value, E> {
            Ok(Some(s))
        }
    }

    struct Text;

    impl Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("text or a number")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            DecimalText.visit_f64(v)
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_owned()))
        }
        fn visit_string<E: Error>(self, s: String) -> Result<Self::Value, E> {
            Ok(Some(s))
        }
    }

    struct Bool;

    impl Visitor<'_> for Bool {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            match v {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                _ => Err(E::custom(format!("expected a boolean, got {v}"))),
            }
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
        fn visit_str<E: Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.eq_ignore_ascii_case("true") {
                Ok(Some(true))
            } else if s.eq_ignore_ascii_case("false") {
                Ok(Some(false))
            } else {
                Err(E::custom(format!("expected a boolean, got {s:?}")))
            }
        }
    }

    /// `result` must be an object (serde would otherwise read an array as a struct).
    struct Object;

    impl<'de> Visitor<'de> for Object {
        type Value = Option<super::JobInfo>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("`result` as an object")
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            use serde::Deserialize;
            super::JobInfo::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }

    pub fn opt_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<super::JobInfo>, D::Error> {
        d.deserialize_any(Object)
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(I64)
    }

    pub fn opt_decimal_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(DecimalText)
    }

    /// Text, with a number or a boolean kept as its text (the API types some ids and numbers
    /// both ways).
    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(Text)
    }

    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        d.deserialize_any(Bool)
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
            Err(ParseError::Malformed(m)) if m.contains("`result` as an object")
        ));
        assert!(matches!(
            parse_job_info(br#"{"status":"success","result":null}"#),
            Err(ParseError::Malformed(m)) if m.contains("missing or null")
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
