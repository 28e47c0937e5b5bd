//! The HTTP client for ShowJobInfo and the job lists: builds the request, authenticates it,
//! bounds it in time and size, and classifies every way it can fail so the poller knows a job
//! change from an outage. The build operations (records, stages, logs, actions) are more
//! methods of [`Client`], in `build_calls.rs`.

use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Deserialize;

use super::auth::Auth;
use super::error::{ApiError, Error};
use super::job_list::{self, JobListPage};
use super::listing::{self, JobPage};
use super::model::{self, JobId, JobInfo, ParseError};
use crate::util::http::without_url;

/// Answers larger than this are refused: a ShowJobInfo answer is about 1 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One attempt's outcome, and whether credentials were renewed after it (worth one retry).
struct Answer<T> {
    result: Result<T, Error>,
    renewed: bool,
}

impl<T> Answer<T> {
    fn done(result: Result<T, Error>) -> Self {
        Self {
            result,
            renewed: false,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    error_msg: Option<String>,
}

/// The client for one CodeArts Build endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    timeout: Duration,
}

impl Client {
    /// `base` is the endpoint without a trailing slash, e.g.
    /// `https://cloudbuild-ext.cn-north-4.myhuaweicloud.com` or a loopback simulator.
    pub fn new(base: &str, auth: Auth, timeout: Duration) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("codearts-bot/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| Error::Connect(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// ShowJobInfo: `GET /v1/job/{job_id}/info`. On a 401 the auth method may renew its
    /// credentials, and then the call is retried once.
    pub async fn job_info(&self, job: &JobId) -> Result<JobInfo, Error> {
        // The id is validated (32 letters or digits), so it needs no escaping in the path.
        let url = format!("{}/v1/job/{}/info", self.base, job.as_str());
        self.get_retrying(&url, model::parse_job_info).await
    }

    /// ShowJobListByProjectId: `GET /v3/{project_id}/jobs?page_index&page_size`, one page
    /// (`page_index` counts pages from 0; `page_size` is at most [`listing::MAX_PAGE_SIZE`]).
    pub async fn list_jobs(
        &self,
        project_id: &str,
        page_index: u32,
        page_size: u32,
    ) -> Result<JobPage, Error> {
        listing::check_project_id(project_id).map_err(Error::Malformed)?;
        let url = format!(
            "{}/v3/{project_id}/jobs?page_index={page_index}&page_size={}",
            self.base,
            page_size.clamp(1, listing::MAX_PAGE_SIZE)
        );
        self.get_retrying(&url, listing::parse_job_page).await
    }

    /// ListProjectJobs: `GET /v1/job/{project_id}/list?page_index&page_size`, one page of a
    /// project's jobs with their build state (`page_size` clamped to 1..=100).
    pub async fn project_jobs_page(
        &self,
        project_id: &str,
        page_index: u32,
        page_size: u32,
    ) -> Result<JobListPage, Error> {
        // Checked before it reaches the path, which is then safe without escaping.
        listing::check_project_id(project_id).map_err(Error::Malformed)?;
        let url = format!(
            "{}/v1/job/{project_id}/list?page_index={page_index}&page_size={}",
            self.base,
            page_size.clamp(1, listing::MAX_PAGE_SIZE)
        );
        self.get_retrying(&url, |body: &[u8]| {
            job_list::parse_project_jobs(body, project_id)
        })
        .await
    }

    /// ListJob: `GET /v1/job/list?page_index&page_size`, one page of every job the credentials
    /// can see, across projects (`page_size` clamped to 1..=100).
    pub async fn all_jobs_page(
        &self,
        page_index: u32,
        page_size: u32,
    ) -> Result<JobListPage, Error> {
        let url = format!(
            "{}/v1/job/list?page_index={page_index}&page_size={}",
            self.base,
            page_size.clamp(1, listing::MAX_PAGE_SIZE)
        );
        self.get_retrying(&url, job_list::parse_all_jobs).await
    }

    /// One call, and once more when the credentials were renewed after a 401.
    pub(super) async fn get_retrying<T>(
        &self,
        url: &str,
        parse: impl Fn(&[u8]) -> Result<T, ParseError> + Copy,
    ) -> Result<T, Error> {
        self.send_retrying(Method::GET, url, None, parse).await
    }

    /// A call with `method` and an optional JSON `body`, and once more when the credentials
    /// were renewed after a 401 (the refused call did nothing, so repeating it is safe).
    pub(super) async fn send_retrying<T>(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        parse: impl Fn(&[u8]) -> Result<T, ParseError> + Copy,
    ) -> Result<T, Error> {
        match self.send(method.clone(), url, body, parse).await {
            Answer { renewed: true, .. } => self.send(method, url, body, parse).await.result,
            Answer { result, .. } => result,
        }
    }

    async fn send<T>(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        parse: impl Fn(&[u8]) -> Result<T, ParseError>,
    ) -> Answer<T> {
        let mut builder = self
            .http
            .request(method, url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(body) = body {
            builder = builder.body(body.to_vec());
        }
        let mut request = match builder.build() {
            Ok(r) => r,
            Err(e) => {
                return Answer::done(Err(Error::Connect(format!(
                    "invalid endpoint URL: {}",
                    without_url(&e)
                ))));
            }
        };
        let ticket = match self.auth.authorize(&mut request).await {
            Ok(t) => t,
            Err(e) => return Answer::done(Err(e.into())),
        };
        let response = match self.http.execute(request).await {
            Ok(r) => r,
            Err(e) => return Answer::done(Err(self.transport(&e))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let result = match read_limited(response).await {
            Ok(Some(body)) => classify_with(status, &headers, &body, parse),
            Ok(None) => Err(Error::Malformed(format!(
                "answer larger than {MAX_BODY_BYTES} bytes refused"
            ))),
            Err(e) => Err(self.transport(&e)),
        };
        let unauthorized = match &result {
            Err(Error::Unauthorized(e)) => Some(e),
            _ => None,
        };
        let renewed = self.auth.settle(ticket, unauthorized).await;
        Answer { result, renewed }
    }

    fn transport(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout(self.timeout)
        } else if e.is_decode() || e.is_body() {
            Error::Malformed(format!("answer cut short: {}", without_url(e)))
        } else {
            Error::Connect(without_url(e))
        }
    }
}

/// Reads a body up to [`MAX_BODY_BYTES`]; `None` when it is larger.
async fn read_limited(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Turns a ShowJobInfo status, headers and body into a [`JobInfo`] or a classified [`Error`].
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<JobInfo, Error> {
    classify_with(status, headers, body, model::parse_job_info)
}

/// Turns a status, headers and body into what `parse` reads from a 2xx body, or a classified
/// [`Error`]: every CodeArts API shares the error bodies and status meanings.
fn classify_with<T>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, ParseError>,
) -> Result<T, Error> {
    if status.is_success() {
        return parse(body).map_err(|e| match e {
            ParseError::Malformed(_) => Error::Malformed(e.to_string()),
            ParseError::Failed(_) => Error::Failed(e.to_string()),
        });
    }
    let error = api_error(headers, body);
    let code = status.as_u16();
    let throttled_code = error
        .code
        .as_deref()
        .is_some_and(|c| c == "APIG.0308" || c == "CB.00060211");
    Err(match status {
        StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
            status: code,
            retry_after: retry_after(headers),
            error,
        },
        _ if throttled_code => Error::RateLimited {
            status: code,
            retry_after: retry_after(headers),
            error,
        },
        StatusCode::NOT_FOUND => Error::NotFound(error),
        StatusCode::FORBIDDEN => Error::Forbidden(error),
        StatusCode::UNAUTHORIZED => Error::Unauthorized(error),
        StatusCode::BAD_REQUEST => Error::BadRequest(error),
        s if s.is_server_error() => Error::Server {
            status: code,
            error,
        },
        _ => Error::UnexpectedStatus {
            status: code,
            error,
        },
    })
}

fn api_error(headers: &HeaderMap, body: &[u8]) -> ApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match parsed {
        Some(b) if b.error_code.is_some() || b.error_msg.is_some() => ApiError {
            code: b.error_code,
            message: b.error_msg,
            request_id,
        },
        _ if body.is_empty() => ApiError {
            request_id,
            ..ApiError::default()
        },
        _ => ApiError {
            code: None,
            message: Some(format!("undocumented body {}", model::preview(body))),
            request_id,
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by these APIs).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = raw.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn statuses_are_classified_with_the_documented_error_body() {
        let body = br#"{"error_code":"CB.00060214","error_msg":"URL not found"}"#;
        let err = classify(
            StatusCode::NOT_FOUND,
            &headers(&[("x-request-id", "r-1")]),
            body,
        )
        .unwrap_err();
        assert!(matches!(&err, Error::NotFound(e) if e.code.as_deref() == Some("CB.00060214")));
        assert_eq!(err.request_id(), Some("r-1"));
        assert!(err.to_string().contains("CB.00060214"));

        let cases: [(u16, &str); 5] = [
            (400, "bad_request"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (500, "server_error"),
            (503, "server_error"),
        ];
        for (status, kind) in cases {
            let err = classify(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                b"",
            )
            .unwrap_err();
            assert_eq!(err.kind(), kind, "status {status}");
        }
    }

    #[test]
    fn throttling_carries_retry_after_even_when_not_a_429() {
        let err = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "3")]),
            br#"{"error_code":"APIG.0308","error_msg":"policy user over ratelimit"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3))
        );

        let err = classify(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            br#"{"error_code":"CB.00060211","error_msg":"too many requests"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "rate_limited");
    }

    #[test]
    fn html_error_pages_are_described_not_parsed() {
        let err = classify(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        )
        .unwrap_err();
        assert!(err.to_string().contains("undocumented body"), "{err}");
    }

    #[test]
    fn a_200_with_status_fail_is_an_api_failure() {
        let err = classify(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"status":"fail","error":"busy"}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind(), "api_failed");
        assert!(err.to_string().contains("busy"));
    }
}

/// The list calls over real loopback HTTP, against a tiny server that records each request and
/// answers what the test set for its path.
#[cfg(test)]
mod list_calls {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::Response;

    use super::*;
    use crate::codearts::job_list::tests::{ALL_JOBS, PROJECT_JOBS};
    use crate::util::secret::Secret;

    const TOKEN: &str = "loopback-token-7f3a";
    const PROJECT: &str = "85caf40575794f989920-5216d1148af6";

    /// What one request looked like.
    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        query: String,
        token: Option<String>,
        content_type: Option<String>,
    }

    /// A programmed answer: status, extra headers, body.
    type Canned = (u16, Vec<(&'static str, &'static str)>, String);

    #[derive(Clone, Default)]
    struct Server {
        /// path → the answer for it
        answers: Arc<Mutex<HashMap<String, Canned>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    async fn answer(State(server): State<Server>, request: Request) -> Response<Body> {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let path = request.uri().path().to_owned();
        server.seen.lock().unwrap().push(Seen {
            path: path.clone(),
            query: request.uri().query().unwrap_or("").to_owned(),
            token: header("x-auth-token"),
            content_type: header("content-type"),
        });
        let found = server.answers.lock().unwrap().get(&path).cloned();
        let (status, headers, body) = found.unwrap_or_else(|| {
            (
                404,
                vec![],
                r#"{"error_code":"APIGW.0101","error_msg":"API not found"}"#.to_owned(),
            )
        });
        let mut response = Response::builder().status(status);
        for (k, v) in headers {
            response = response.header(k, v);
        }
        response.body(Body::from(body)).unwrap()
    }

    /// Starts the server; returns it and a client pointed at it with a static token.
    async fn start() -> (Server, Client) {
        let server = Server::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = Client::new(
            &format!("http://{addr}/"),
            Auth::Token(Secret::new(TOKEN)),
            Duration::from_secs(5),
        )
        .unwrap();
        (server, client)
    }

    impl Server {
        fn set(&self, path: &str, status: u16, body: &str) {
            self.set_with(path, status, vec![], body);
        }
        fn set_with(
            &self,
            path: &str,
            status: u16,
            headers: Vec<(&'static str, &'static str)>,
            body: &str,
        ) {
            self.answers
                .lock()
                .unwrap()
                .insert(path.to_owned(), (status, headers, body.to_owned()));
        }
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn project_jobs_page_sends_the_documented_request_and_parses_the_page() {
        let (server, client) = start().await;
        let path = format!("/v1/job/{PROJECT}/list");
        server.set(&path, 200, PROJECT_JOBS);

        let page = client.project_jobs_page(PROJECT, 2, 500).await.unwrap();
        assert_eq!(
            (page.entries.len(), page.skipped, page.total),
            (2, 1, Some(3))
        );
        let first = &page.entries[0];
        assert_eq!(first.id.as_str(), "d62d64d7782545c696ffaacc9ac9c69a");
        assert_eq!(first.info.project_id.as_deref(), Some(PROJECT));
        assert_eq!(first.info.last_build_status.as_deref(), Some("success"));

        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, path);
        // page_size 500 is clamped to the documented maximum.
        assert_eq!(seen[0].query, "page_index=2&page_size=100");
        assert_eq!(seen[0].token.as_deref(), Some(TOKEN));
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    }

    #[tokio::test]
    async fn all_jobs_page_sends_the_documented_request_and_parses_the_page() {
        let (server, client) = start().await;
        server.set("/v1/job/list", 200, ALL_JOBS);

        let page = client.all_jobs_page(0, 0).await.unwrap();
        assert_eq!((page.entries.len(), page.total), (2, Some(2)));
        assert_eq!(
            page.entries[0].info.project_id.as_deref(),
            Some("85caf40575794f989920-5216d1148af6")
        );
        assert_eq!(page.entries[0].extra.code_branch.as_deref(), Some("master"));

        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/job/list");
        // page_size 0 is raised to 1.
        assert_eq!(seen[0].query, "page_index=0&page_size=1");
        assert_eq!(seen[0].token.as_deref(), Some(TOKEN));
    }

    #[tokio::test]
    async fn list_failures_are_classified_like_show_job_info() {
        let (server, client) = start().await;
        server.set(
            "/v1/job/list",
            200,
            r#"{"status":"fail","error":"job list is being rebuilt"}"#,
        );
        let err = client.all_jobs_page(0, 100).await.unwrap_err();
        assert_eq!(err.kind(), "api_failed");
        assert!(err.to_string().contains("being rebuilt"), "{err}");

        let path = format!("/v1/job/{PROJECT}/list");
        server.set(&path, 200, "<html><body>proxy says hello</body></html>");
        let err = client.project_jobs_page(PROJECT, 0, 100).await.unwrap_err();
        assert_eq!(err.kind(), "malformed");
        assert!(err.to_string().contains("<html>"), "{err}");

        server.set_with(
            &path,
            429,
            vec![("retry-after", "3"), ("x-request-id", "req-42")],
            r#"{"error_code":"APIG.0308","error_msg":"policy user over ratelimit"}"#,
        );
        let err = client.project_jobs_page(PROJECT, 0, 100).await.unwrap_err();
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)),
            "{err:?}"
        );
        assert_eq!(err.request_id(), Some("req-42"));

        server.set(
            &path,
            401,
            r#"{"error_code":"APIGW.0301","error_msg":"token expires"}"#,
        );
        let err = client.project_jobs_page(PROJECT, 0, 100).await.unwrap_err();
        assert_eq!(err.kind(), "unauthorized");
        // The token never shows in an error, in either form.
        assert!(!err.to_string().contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
        assert!(!format!("{client:?}").contains(TOKEN));

        server.set(&path, 503, "");
        let err = client.project_jobs_page(PROJECT, 0, 100).await.unwrap_err();
        assert_eq!(err.kind(), "server_error");

        // A path nobody answers: the gateway's 404.
        let err = client
            .project_jobs_page("0000000000000000", 0, 100)
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::NotFound(e) if e.code.as_deref() == Some("APIGW.0101")));
    }

    #[tokio::test]
    async fn a_bad_project_id_never_reaches_a_url() {
        let (server, client) = start().await;
        for bad in ["", "../v1/job/list", "p?page_size=1000", &"a".repeat(65)] {
            let err = client.project_jobs_page(bad, 0, 100).await.unwrap_err();
            assert_eq!(err.kind(), "malformed", "{bad:?}");
        }
        assert!(server.seen().is_empty());
    }

    #[tokio::test]
    async fn an_oversized_page_is_refused() {
        let (server, client) = start().await;
        let huge = format!(
            r#"{{"total":1,"jobs":[{{"id":"d62d64d7782545c696ffaacc9ac9c69a","job_name":"{}"}}]}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );
        server.set(&format!("/v1/job/{PROJECT}/list"), 200, &huge);
        let err = client.project_jobs_page(PROJECT, 0, 100).await.unwrap_err();
        assert_eq!(err.kind(), "malformed");
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
