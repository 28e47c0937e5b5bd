//! A typed client for the simulator's control API, over real HTTP: what the demo, the tests
//! and the benchmarks use to script scenarios against a running simulator (in-process or not).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// How long one control call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A control-API call that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    /// The simulator could not be reached or did not answer in time.
    #[error("simulator control API unreachable: {0}")]
    Transport(String),
    /// The simulator answered with an error status (bad id, unknown job, bad body, token).
    #[error("simulator control API refused the call ({status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The answer was not the JSON the control API sends.
    #[error("simulator control API answered something unexpected: {0}")]
    Malformed(String),
}

impl ControlError {
    /// The HTTP status, when the simulator answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ControlError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one simulator's control API. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Control {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("base", &self.base)
            .field("token", &"***")
            .finish()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    error_msg: Option<String>,
}

#[derive(Deserialize)]
struct JobList {
    jobs: Vec<Value>,
}

#[derive(Deserialize)]
struct BuildList {
    builds: Vec<Value>,
}

/// What `POST /_sim/jobs/{id}/builds` answers: the new build's number and record id (what
/// the `/v1/record/{record_id}/…` operations take).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedBuild {
    pub build_no: u32,
    pub record_id: String,
}

impl Control {
    /// `base_url` is the simulator's root, e.g. `http://127.0.0.1:8080` (a trailing `/` is
    /// fine); `token` is the simulator's token (it guards the control API too).
    pub fn new(base_url: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// `PUT /_sim/jobs/{id}`: creates the job with defaults if needed, then merges `fields`
    /// (a JSON object; `_sim_*` flags allowed). Returns the job as stored.
    pub async fn put_job(&self, id: &str, fields: Value) -> Result<Value, ControlError> {
        let url = self.job_url(id);
        self.call(self.http.put(url).json(&fields)).await
    }

    /// `GET /_sim/jobs/{id}`: the job as stored (fields and set flags).
    pub async fn job(&self, id: &str) -> Result<Value, ControlError> {
        let url = self.job_url(id);
        self.call(self.http.get(url)).await
    }

    /// `DELETE /_sim/jobs/{id}`; a 404 when there is no such job.
    pub async fn delete_job(&self, id: &str) -> Result<(), ControlError> {
        let url = self.job_url(id);
        self.call(self.http.delete(url)).await.map(drop)
    }

    /// `GET /_sim/jobs`: every job as stored, ordered by id.
    pub async fn jobs(&self) -> Result<Vec<Value>, ControlError> {
        let url = format!("{}/_sim/jobs", self.base);
        let answer = self.call(self.http.get(url)).await?;
        serde_json::from_value::<JobList>(answer)
            .map(|list| list.jobs)
            .map_err(|e| ControlError::Malformed(e.to_string()))
    }

    /// `POST /_sim/jobs/{id}/builds`: the job's next build, from `build` (a JSON object with
    /// any of `status`, `branch`, `tag`, `commit`, `commit_message`, `user`, `trigger_type`,
    /// `stages`, `log`, `tests`, `parameters`, `duration_ms`, `err_msg`; defaults for the
    /// rest). The job's ShowJobInfo and list fields move to it.
    pub async fn create_build(&self, id: &str, build: Value) -> Result<CreatedBuild, ControlError> {
        let url = format!("{}/builds", self.job_url(id));
        let answer = self.call(self.http.post(url).json(&build)).await?;
        serde_json::from_value(answer).map_err(|e| ControlError::Malformed(e.to_string()))
    }

    /// `GET /_sim/jobs/{id}/builds`: the job's builds, oldest first, each with the keys of
    /// the body that made it plus `build_no`, `record_id`, `start_time`, `finish_time`.
    pub async fn builds(&self, id: &str) -> Result<Vec<Value>, ControlError> {
        let url = format!("{}/builds", self.job_url(id));
        let answer = self.call(self.http.get(url)).await?;
        serde_json::from_value::<BuildList>(answer)
            .map(|list| list.builds)
            .map_err(|e| ControlError::Malformed(e.to_string()))
    }

    /// `PUT /_sim/faults`: replaces the armed faults with `fault` (one fault object, or an
    /// array applied in order).
    pub async fn set_fault(&self, fault: Value) -> Result<(), ControlError> {
        let url = format!("{}/_sim/faults", self.base);
        self.call(self.http.put(url).json(&fault)).await.map(drop)
    }

    /// `DELETE /_sim/faults`: every API call is served normally again.
    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        let url = format!("{}/_sim/faults", self.base);
        self.call(self.http.delete(url)).await.map(drop)
    }

    /// `GET /_sim/faults`: `{"faults": [...]}` with the calls each still applies to.
    pub async fn faults(&self) -> Result<Value, ControlError> {
        let url = format!("{}/_sim/faults", self.base);
        self.call(self.http.get(url)).await
    }

    /// `GET /_sim/stats`: `{"requests", "by_status": {"200": n, ...}, "dropped", "jobs",
    /// "faults_armed"}`.
    pub async fn stats(&self) -> Result<Value, ControlError> {
        let url = format!("{}/_sim/stats", self.base);
        self.call(self.http.get(url)).await
    }

    /// `by_api` of `GET /_sim/stats`: API calls received per operation name (`ShowJobInfo`,
    /// `ListProjectJobs`, `ListJob`, `ShowJobListByProjectId`), every operation present.
    pub async fn by_api(&self) -> Result<BTreeMap<String, u64>, ControlError> {
        let stats = self.stats().await?;
        serde_json::from_value(stats["by_api"].clone())
            .map_err(|e| ControlError::Malformed(format!("by_api in the stats: {e}")))
    }

    /// `DELETE /_sim/stats`: sets the API-call counters back to zero.
    pub async fn reset_stats(&self) -> Result<(), ControlError> {
        let url = format!("{}/_sim/stats", self.base);
        self.call(self.http.delete(url)).await.map(drop)
    }

    /// `GET /_sim/tokens`: `{"total": n, "tokens": [{"token", "user", "domain", "project",
    /// "expires_at"}, ...]}`, the issued IAM tokens that still work, soonest expiry first.
    pub async fn tokens(&self) -> Result<Value, ControlError> {
        let url = format!("{}/_sim/tokens", self.base);
        self.call(self.http.get(url)).await
    }

    /// `DELETE /_sim/tokens`: revokes every issued IAM token at once (the API answers them
    /// `401 APIGW.0301 ... token expires` from now on). Returns how many still worked.
    pub async fn revoke_tokens(&self) -> Result<u64, ControlError> {
        let url = format!("{}/_sim/tokens", self.base);
        let answer = self.call(self.http.delete(url)).await?;
        answer["revoked"]
            .as_u64()
            .ok_or_else(|| ControlError::Malformed(format!("no revoked count in {answer}")))
    }

    fn job_url(&self, id: &str) -> String {
        format!("{}/_sim/jobs/{}", self.base, encode_segment(id))
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ControlError> {
        let response = request
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .map_err(|e| ControlError::Transport(crate::util::http::without_url(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| ControlError::Transport(crate::util::http::without_url(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                ControlError::Malformed(format!("{e} (body starts {})", preview(&body)))
            });
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let (code, message) = match parsed {
            Some(ErrorBody {
                error_code,
                error_msg,
            }) => (error_code, error_msg.unwrap_or_default()),
            None => (None, preview(&body)),
        };
        Err(ControlError::Rejected {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

fn preview(body: &[u8]) -> String {
    crate::codearts::model::preview(body)
}

/// Percent-encodes one path segment, keeping only unreserved characters, so any id (even a
/// hostile one a test sends on purpose) stays one segment.
fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_so_an_id_cannot_change_the_path() {
        assert_eq!(encode_segment("abc123"), "abc123");
        assert_eq!(encode_segment("../x y"), "..%2Fx%20y");
    }

    #[test]
    fn debug_hides_the_token() {
        let control = Control::new("http://127.0.0.1:1/", "hunter2");
        let shown = format!("{control:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:1\""), "{shown}");
    }
}
