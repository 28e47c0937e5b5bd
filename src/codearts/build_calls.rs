//! The build operations as methods of [`Client`]: one build's number, record, runner,
//! stages, log, tests and parameters; why a job is disabled; the recycle bin; and the two
//! actions (run a job, stop a build). Same auth, timeout, size bound, retry after renewed
//! credentials and error classification as ShowJobInfo (docs/codearts.md, "Build records,
//! stages, logs"). Ids are validated before a URL is built, so paths need no escaping.

use reqwest::Method;
use serde::Serialize;

use super::build_log::{self, LogChunk, LogQuery, LogTail};
use super::builds::{
    self, BuildInfo, BuildParameter, BuildRecord, DisableInfo, Executed, RecyclePage,
    RunningStatus, Stages, TestSummary,
};
use super::client::Client;
use super::error::Error;
use super::listing::MAX_PAGE_SIZE;
use super::model::JobId;

/// What ExecuteJob runs: parameters, and optionally a commit or a tag to build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecuteRequest {
    /// `(name, value)` pairs; empty runs the job's defaults.
    pub parameters: Vec<(String, String)>,
    pub commit_id: Option<String>,
    pub tag: Option<String>,
}

impl Client {
    /// ShowRunningStatus: `GET /v1/job/{job_id}/running-status`, the job's latest build
    /// number and whether it runs.
    pub async fn running_status(&self, job: &JobId) -> Result<RunningStatus, Error> {
        let url = format!("{}/v1/job/{}/running-status", self.base_url(), job.as_str());
        self.get_retrying(&url, builds::parse_running_status).await
    }

    /// ShowJobBuildRecordDetail: `GET /v1/record/{job_id}/{build_no}/record-info`: branch or
    /// tag, commit and message, trigger, status, `err_msg`, the record id.
    pub async fn build_record(&self, job: &JobId, build_no: u32) -> Result<BuildRecord, Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/record/{}/{n}/record-info",
            self.base_url(),
            job.as_str()
        );
        self.get_retrying(&url, builds::parse_build_record).await
    }

    /// ShowBuildInfoRecord: `GET /v1/record/{job_id}/{build_no}/build-info-record`: who ran
    /// the build, the commit's link.
    pub async fn build_info(&self, job: &JobId, build_no: u32) -> Result<BuildInfo, Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/record/{}/{n}/build-info-record",
            self.base_url(),
            job.as_str()
        );
        self.get_retrying(&url, builds::parse_build_info).await
    }

    /// ShowBuildRecordFullStages: `GET /v1/record/{record_id}/full-stages`, the stages in
    /// the order they ran. `record_id` is record-info's `build_record_id`.
    pub async fn build_stages(&self, record_id: &str) -> Result<Stages, Error> {
        check_record_id(record_id)?;
        let url = format!("{}/v1/record/{record_id}/full-stages", self.base_url());
        self.get_retrying(&url, builds::parse_stages).await
    }

    /// DownloadBuildRealTimeLog: `GET /v1/log/{job_id}/{build_no}/real-time-log?…`, one
    /// window of the log.
    pub async fn build_log(
        &self,
        job: &JobId,
        build_no: u32,
        query: LogQuery,
    ) -> Result<LogChunk, Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/log/{}/{n}/real-time-log?{}",
            self.base_url(),
            job.as_str(),
            query.to_query()
        );
        self.get_retrying(&url, build_log::parse_log_chunk).await
    }

    /// The last `lines` lines of the build's log (1 to 1000), in one call (`sort=DESC`).
    pub async fn log_tail(
        &self,
        job: &JobId,
        build_no: u32,
        lines: usize,
    ) -> Result<LogTail, Error> {
        let want = lines.clamp(1, build_log::MAX_TAIL_LINES);
        let chunk = self.build_log(job, build_no, LogQuery::tail(want)).await?;
        Ok(LogTail::from_chunk(&chunk, want))
    }

    /// ShowReportSummary: `GET /v1/report/{job_id}/summary?build_no=N`, the build's unit-test
    /// counts; `None` when it has no report.
    pub async fn test_summary(
        &self,
        job: &JobId,
        build_no: u32,
    ) -> Result<Option<TestSummary>, Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/report/{}/summary?build_no={n}",
            self.base_url(),
            job.as_str()
        );
        self.get_retrying(&url, builds::parse_test_summary).await
    }

    /// ListBuildParameter: `GET /v1/job/{job_id}/{build_no}/history-parameters`, the
    /// parameters the build ran with (values may be secrets).
    pub async fn build_parameters(
        &self,
        job: &JobId,
        build_no: u32,
    ) -> Result<Vec<BuildParameter>, Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/job/{}/{n}/history-parameters",
            self.base_url(),
            job.as_str()
        );
        self.get_retrying(&url, builds::parse_parameters).await
    }

    /// ShowDisable: `GET /v1/job/{job_id}/check/disable`, who disabled the job, when, why.
    pub async fn disable_info(&self, job: &JobId) -> Result<DisableInfo, Error> {
        let url = format!("{}/v1/job/{}/check/disable", self.base_url(), job.as_str());
        self.get_retrying(&url, builds::parse_disable).await
    }

    /// ListRecyclingJob: `GET /v1/job/recycling-jobs?page_no&page_size`, one page of the
    /// deleted jobs still in the recycle bin (`page_no` from 1, `page_size` clamped to
    /// 1..=100).
    pub async fn recycled_jobs(&self, page_no: u32, page_size: u32) -> Result<RecyclePage, Error> {
        self.recycled_jobs_matching(None, page_no, page_size).await
    }

    /// [`Client::recycled_jobs`], only the jobs whose name contains `search` (the API's
    /// `search`: a part of the name).
    pub async fn recycled_jobs_matching(
        &self,
        search: Option<&str>,
        page_no: u32,
        page_size: u32,
    ) -> Result<RecyclePage, Error> {
        let mut query = vec![
            ("page_no", page_no.max(1).to_string()),
            ("page_size", page_size.clamp(1, MAX_PAGE_SIZE).to_string()),
        ];
        if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
            query.push(("search", search.to_owned()));
        }
        let query = serde_urlencoded::to_string(&query).map_err(|e| {
            Error::Malformed(format!("ListRecyclingJob: cannot encode the query: {e}"))
        })?;
        let url = format!("{}/v1/job/recycling-jobs?{query}", self.base_url());
        self.get_retrying(&url, builds::parse_recycle_page).await
    }

    /// ExecuteJob: `POST /v1/job/execute` with `{job_id, parameter: [{name, value}], scm:
    /// {build_commit_id, build_tag}}`; the build it started. Not idempotent: a call that
    /// timed out may still have started a build.
    pub async fn execute_job(&self, job: &JobId, run: &ExecuteRequest) -> Result<Executed, Error> {
        #[derive(Serialize)]
        struct Parameter<'a> {
            name: &'a str,
            value: &'a str,
        }
        #[derive(Serialize)]
        struct Scm<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            build_commit_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            build_tag: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            job_id: &'a str,
            parameter: Vec<Parameter<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            scm: Option<Scm<'a>>,
        }
        let scm = (run.commit_id.is_some() || run.tag.is_some()).then_some(Scm {
            build_commit_id: run.commit_id.as_deref(),
            build_tag: run.tag.as_deref(),
        });
        let body = Body {
            job_id: job.as_str(),
            parameter: run
                .parameters
                .iter()
                .map(|(name, value)| Parameter { name, value })
                .collect(),
            scm,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::Malformed(format!("ExecuteJob: cannot encode the body: {e}")))?;
        let url = format!("{}/v1/job/execute", self.base_url());
        self.send_retrying(Method::POST, &url, Some(&body), builds::parse_executed)
            .await
    }

    /// StopTheJob: `POST /v1/job/{job_id}/stop?build_no=N`.
    pub async fn stop_build(&self, job: &JobId, build_no: u32) -> Result<(), Error> {
        let n = check_build_no(build_no)?;
        let url = format!(
            "{}/v1/job/{}/stop?build_no={n}",
            self.base_url(),
            job.as_str()
        );
        self.send_retrying(Method::POST, &url, None, builds::parse_stopped)
            .await
    }
}

/// Build numbers start at 1; 0 is a caller's mistake, refused before any call.
fn check_build_no(build_no: u32) -> Result<u32, Error> {
    if build_no == 0 {
        return Err(Error::Malformed(
            "build number 0: CodeArts numbers builds from 1".to_owned(),
        ));
    }
    Ok(build_no)
}

/// A record id as CodeArts makes them (36 characters: hex and `-`), accepted as 1 to 64
/// ASCII letters, digits or `-` so it can go into a path unescaped.
fn check_record_id(record_id: &str) -> Result<(), Error> {
    let ok = (1..=64).contains(&record_id.len())
        && record_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        let shown: String = record_id.chars().take(48).collect();
        Err(Error::Malformed(format!(
            "{shown:?} is not a build record id (1 to 64 letters, digits or '-')"
        )))
    }
}
