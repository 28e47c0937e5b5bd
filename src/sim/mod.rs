//! A CodeArts Build simulator on loopback: the ShowJobInfo API as documented, the job lists
//! (ShowJobListByProjectId, ListProjectJobs, ListJob: `listing.rs`), one build's operations
//! (ShowRunningStatus, ShowJobBuildRecordDetail, ShowBuildInfoRecord,
//! ShowBuildRecordFullStages, DownloadBuildRealTimeLog, ShowReportSummary, ListBuildParameter:
//! `build_api.rs`, `records.rs`, `build_log.rs`), ShowDisable, the recycle bin
//! (ListRecyclingJob: `recycle.rs`), ExecuteJob and StopTheJob (`execute.rs`), IAM's token
//! endpoint and the gateway's AK/SK check, plus a control API that scripts scenarios (jobs,
//! fields, builds, faults, token revocation) for the demo, tests and benchmarks. The full
//! reference, with every shape and default, is docs/simulator.md.
//!
//! Start it with [`spawn`] (or `codearts-bot sim`), drive it with [`Control`].
//!
//! # The API
//!
//! `GET /v1/job/{job_id}/info` with header `X-Auth-Token: <token>` (the static token, default
//! [`DEFAULT_TOKEN`] `sim-token`, or an issued IAM token) or an AK/SK signature answers `200` with the documented envelope and exactly the job's stored fields:
//!
//! ```json
//! {"result": {"id": "…", "project_id": "…", "project_permission_switch": true,
//!   "build_time": "27.51", "charge_time": "15.17", "create_time": "1717574458000",
//!   "disabled": false, "favorite": false, "source_code": "codehub",
//!   "running_status": "Finished", "new_build": false, "job_name": "sim-job-0001",
//!   "is_copy": true, "is_delete": true, "is_execute": true, "is_forbidden": true,
//!   "is_manager": true, "is_modify": true, "is_view": true,
//!   "last_build_status": "success", "last_build_time": 1721793407000, "health_score": 74},
//!  "status": "success", "error": null}
//! ```
//!
//! `GET /v1/job/{project_id}/list` (ListProjectJobs, `{"jobs": [Job…], "total": n}`),
//! `GET /v1/job/list` (ListJob, `{"result": {"job_list": […], "total": n}, "status":
//! "success"}`) and `GET /v3/{project_id}/jobs` (ShowJobListByProjectId) page the jobs
//! (`page_index` from 0, `page_size` 1..=100, else 400 `CB.00060200`) ordered by id, leaving out
//! `_sim_forbidden` jobs; entries carry the SDK models' fields (docs/simulator.md).
//!
//! Every answer carries an `X-Request-Id` header (32 hex characters). Checks, in order:
//!
//! | Situation | Status | Body |
//! |---|---|---|
//! | an armed fault applies | as the fault says | as the fault says (see below) |
//! | `Authorization: SDK-HMAC-SHA256 …` that does not verify | 401 | `APIGW.0301` / `APIGW.0303` (see "Identity") |
//! | no `X-Auth-Token` | 401 | `{"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information: x-auth-token not found", "request_id": "…"}` |
//! | another token (unknown, expired or revoked) | 401 | the same with `…: token expires` |
//! | id not exactly 32 ASCII letters or digits | 400 | `{"error_code": "CB.00060201", "error_msg": "invalid task id"}` |
//! | no such job | 404 | `{"error_code": "CB.00060214", "error_msg": "URL not found"}` |
//! | job flagged `_sim_forbidden` | 403 | `{"error_code": "CB.00060403", "error_msg": "no permission"}` |
//! | job flagged `_sim_fail` | 200 | `{"result": null, "status": "fail", "error": "<reason>"}` |
//! | any other path or method | 404 | `{"error_code": "APIGW.0101", "error_msg": "The API does not exist …", "request_id": "…"}` |
//!
//! # Identity
//!
//! [`SimConfig::iam_users`] (`--iam-user DOMAIN/USER:PASSWORD`) may obtain tokens at
//! `POST /v3/auth/tokens` (IAM's password body, `scope.project` required: 201 with the token in
//! `X-Subject-Token` and `token.expires_at` in the body; 401 `{"error": {"code": 401, "message":
//! "The username or password is wrong.", …}}`; 400 without a project scope). Tokens live
//! [`SimConfig::token_ttl`] (`--token-ttl-secs`, default 24 h); an expired or revoked one gets
//! the gateway's 401 `… token expires`.
//!
//! With [`SimConfig::aksk`] (`--ak`/`--sk`), `SDK-HMAC-SHA256` signatures are recomputed with
//! [`crate::codearts::signer`] over the call as received: a wrong signature answers 401
//! `APIGW.0301 … verify aksk signature fail`, an unknown key `APIGW.0301 … Get secretKey
//! failed`, an `X-Sdk-Date` missing or more than 15 minutes off `APIGW.0303`; more than five
//! consecutive failures lock the key for five minutes (`APIGW.0301 … AK access failed to reach
//! the limit,forbidden.`). The reference, with every wording, is docs/simulator.md.
//!
//! # The control API (`/_sim/`)
//!
//! JSON in and out; needs the static token as `X-Auth-Token` (401 otherwise); errors use the API's
//! `{"error_code", "error_msg"}` shape (unknown control route: 404 `SIM.0404`; wrong method:
//! 405 `SIM.0405`). Faults never apply to it and it is not counted in the stats.
//!
//! - `PUT /_sim/jobs/{id}`: body a JSON object (or empty). Creates the job if it does not exist
//!   (`201`; all 22 fields filled with realistic defaults derived from the id:
//!   `job_name` `sim-job-<first 8 chars of id>`, `last_build_status` `"success"`,
//!   `running_status` `"Finished"`, `health_score` 60..=100, `create_time` a string of ms,
//!   `last_build_time` a number of ms within the last day, …), then merges the body into it
//!   (`200` when it existed). Any key is set to any JSON value, stored and returned verbatim by
//!   the API (`"health_score": "74"`, `"create_time": 1717574458000`, `"brand_new": [1]`,
//!   `"job_name": null`). Keys starting `_sim_` are simulator flags, stored but never returned
//!   by the API:
//!   - `"_sim_forbidden": true | false`: the API answers 403 `CB.00060403` for this job;
//!   - `"_sim_fail": "<reason>" | null`: the API answers 200 `{"result": null, "status":
//!     "fail", "error": "<reason>"}`;
//!   - `"_sim_remove": ["field", …]`: deletes those fields (before the body's other fields are
//!     set), to simulate fields the API left out.
//!   - `"_sim_disabled_by"`, `"_sim_disabled_reason"`: who disabled the job and why, as
//!     ShowDisable tells it;
//!   - `"_sim_next_build": {build body} | null`: how the job's next ExecuteJob build ends;
//!   - `"_sim_build_ms": 0..=600000 | null`, `"_sim_next_result": "<status>" | null`: how long
//!     an ExecuteJob build runs (default 2000 ms) and how it ends (default `success`);
//!     `_sim_next_build`'s own `duration_ms`/`status` win (`run_flags.rs`).
//!
//!   Answers the job as stored: its fields, plus `_sim_forbidden: true` / `_sim_fail` when set.
//!   Invalid id: 400 `CB.00060201`; a body that is not a JSON object, an unknown `_sim_` flag
//!   or a flag of the wrong type: 400 `CB.00060200`.
//! - `GET /_sim/jobs/{id}`: the job as stored; 404 `CB.00060214` when unknown.
//! - `DELETE /_sim/jobs/{id}`: `{"deleted": "<id>"}` (the job goes to the recycle bin); 404
//!   `CB.00060214` when unknown.
//! - `POST /_sim/jobs/{id}/builds`: the job's next build from any of `{"status", "branch",
//!   "tag", "commit", "commit_message", "user", "trigger_type", "stages": [{"name", "status",
//!   "duration_ms"}], "log", "tests": {"total", "failures", "errors"}, "parameters": [{"name",
//!   "value"}], "duration_ms", "err_msg"}` (defaults for the rest; unknown keys refused):
//!   `201 {"build_no", "record_id"}`. The job's ShowJobInfo and list fields move to it.
//! - `GET /_sim/jobs/{id}/builds`: `{"total": n, "builds": [...]}`, oldest first.
//! - `GET /_sim/jobs`: `{"total": n, "jobs": [<job as stored>, …]}`, ordered by id.
//! - `PUT /_sim/faults`: body one fault or an array of faults; replaces the armed faults.
//!   A fault is `{"status"?: u16, "body"?: string, "delay_ms"?: u64, "retry_after"?: u64,
//!   "count"?: u32, "drop"?: bool}` (unknown keys refused):
//!   - `delay_ms` (at most 600000): wait that long first; alone, the call is then served
//!     normally;
//!   - `status` (200..=599): answer it; without `body` (4xx/5xx only), with the documented
//!     error body: 400 `CB.00060200` "invalid parameter", 401 `APIGW.0301` "…: token expires",
//!     403 `CB.00060403` "no permission", 404 `CB.00060214` "URL not found", 429 `APIG.0308`
//!     "policy user over ratelimit, limit:100, time:1 second", 500 `CB.00060101` "internal
//!     error", 502 `APIG.0202` "Backend unavailable", 503 `CB.00060100` "network busy", 504
//!     `APIG.0201` "Backend timeout", others `SIM.<status>` with the reason phrase;
//!   - `body`: sent verbatim (`Content-Type` JSON if it parses as JSON, HTML if it starts with
//!     `<`, text otherwise), with `status` or 200;
//!   - `retry_after` (seconds, needs `status` or `body`): sets the `Retry-After` header;
//!   - `drop: true`: the connection is closed without a complete answer (after `delay_ms`);
//!   - `count`: the fault applies to the next `count` API calls (at least 1), then the next
//!     fault in the array applies; without it, the fault applies until cleared.
//!
//!   Answers `{"faults": [...]}` (what `GET /_sim/faults` shows). An empty array clears.
//! - `GET /_sim/faults`: `{"faults": [{…, "count": <calls left or null>}, …]}`.
//! - `DELETE /_sim/faults`: clears every fault.
//! - `GET /_sim/stats`: `{"requests": n, "by_status": {"200": n, "404": n, …}, "dropped": n,
//!   "by_api": {"ShowJobInfo": n, "ListProjectJobs": n, …, "StopTheJob": n}, "jobs": n,
//!   "faults_armed": n}` (`by_api` names every operation the simulator serves). `requests` counts every API call received (faulted,
//!   refused and dropped ones too), `by_status` the answers sent by status, `dropped` the
//!   connections dropped by a fault (so `requests` = sum of `by_status` + `dropped` once no
//!   call is in flight). IAM calls are counted apart: `token_requests`, `tokens_issued`,
//!   `token_refusals` (wrong password), `tokens_active`; so are AK/SK refusals:
//!   `aksk_failures`, `aksk_locked`.
//! - `DELETE /_sim/stats`: sets the counters back to zero (issued tokens and a key's lock stay).
//! - `GET /_sim/tokens`: `{"total": n, "tokens": [{"token", "user", "domain", "project",
//!   "expires_at"}, …]}`, the issued tokens that still work.
//! - `DELETE /_sim/tokens`: revokes every issued token: `{"revoked": n}`.
//!
//! # Seeded jobs
//!
//! [`SimConfig::jobs`] = N creates jobs `i` in `0..N` with id [`seeded_job_id`]`(i)` (the first
//! 16 bytes of `sha256("sim-job-{i}")` as 32 lowercase hex characters) and name
//! [`seeded_job_name`]`(i)` (`sim-job-0000`, `sim-job-0001`, …) in project
//! [`seeded_project_id`]`(i % `[`SimConfig::projects`]`)`; [`SimConfig::job_ids`] adds jobs
//! with those ids and default fields in the default project.

mod api;
mod build_api;
mod build_log;
mod builds;
mod control;
mod control_client;
mod execute;
mod fault;
mod iam;
mod listing;
mod patch;
mod records;
mod recycle;
mod reply;
mod run_flags;
mod server;
mod shared;
mod state;
mod stats;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::codearts::JobId;

pub use control_client::{Control, ControlError, CreatedBuild};
pub use iam::IamUser;

/// The token the simulator accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "sim-token";

/// How long [`SimHandle::stop`] lets calls in flight finish before cutting them off.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What to start: where to listen, which token to accept, which jobs to create.
#[derive(Clone)]
pub struct SimConfig {
    /// Port 0 picks a free port; [`SimHandle::addr`] tells which.
    pub listen: SocketAddr,
    /// The static `X-Auth-Token`: the API always accepts it, and it is the control API's only
    /// credential.
    pub token: String,
    /// How many seeded jobs to create (see [`seeded_job_id`]).
    pub jobs: usize,
    /// How many projects the seeded jobs are spread over: seeded job `i` belongs to project
    /// [`seeded_project_id`]`(i % projects)`. 1 (the default; 0 counts as 1) keeps every job
    /// in the default project.
    pub projects: usize,
    /// Further jobs to create with default fields (in the default project).
    pub job_ids: Vec<JobId>,
    /// IAM users that may obtain tokens at `POST /v3/auth/tokens`.
    pub iam_users: Vec<IamUser>,
    /// How long issued IAM tokens live (IAM's are 24 hours; a few seconds makes renewal
    /// testable).
    pub token_ttl: std::time::Duration,
    /// An access key pair whose SDK-HMAC-SHA256 signatures are accepted: `(ak, sk)`.
    pub aksk: Option<(String, String)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            token: DEFAULT_TOKEN.to_owned(),
            jobs: 0,
            projects: 1,
            job_ids: Vec::new(),
            iam_users: Vec::new(),
            token_ttl: std::time::Duration::from_secs(24 * 3600),
            aksk: None,
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("token", &"***")
            .field("jobs", &self.jobs)
            .field("projects", &self.projects)
            .field("job_ids", &self.job_ids)
            .field("iam_users", &self.iam_users)
            .field("token_ttl", &self.token_ttl)
            .field("aksk", &self.aksk.as_ref().map(|(ak, _)| (ak, "***")))
            .finish()
    }
}

/// The id of seeded job `i`: the first 16 bytes of `sha256("sim-job-{i}")` in lowercase hex,
/// so every run, test and benchmark agrees on them.
pub fn seeded_job_id(i: usize) -> JobId {
    let digest = Sha256::digest(format!("sim-job-{i}").as_bytes());
    let id = hex::encode(&digest[..16]);
    // 32 lowercase hex digits are always a valid id.
    JobId::parse(&id).expect("32 hex digits are a valid job id")
}

/// The `job_name` of seeded job `i`: `sim-job-0000`, `sim-job-0001`, …
pub fn seeded_job_name(i: usize) -> String {
    format!("sim-job-{i:04}")
}

/// The id of seeded project `p`: project 0 is the default project every job is created in
/// (`5a1e2d3c4b5a69788796-a5b4c3d2e1f0`); project `p > 0` is the first 16 bytes of
/// `sha256("sim-project-{p}")` in lowercase hex, split 20 + 12 by a `-` like the default.
pub fn seeded_project_id(p: usize) -> String {
    if p == 0 {
        return state::DEFAULT_PROJECT_ID.to_owned();
    }
    let digest = hex::encode(&Sha256::digest(format!("sim-project-{p}").as_bytes())[..16]);
    format!("{}-{}", &digest[..20], &digest[20..])
}

/// The ids of seeded jobs `0..n`, in order.
pub fn seeded_job_ids(n: usize) -> Vec<JobId> {
    (0..n).map(seeded_job_id).collect()
}

/// A running simulator. Dropping it stops the server at once; [`SimHandle::stop`] stops it
/// gracefully.
pub struct SimHandle {
    addr: SocketAddr,
    token: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Binds `config.listen`, creates the configured jobs, and serves in a background task.
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    use axum::serve::ListenerExt;

    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        // Small answers on kept-alive connections must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });

    let identity = iam::Identity::new(iam::IdentityConfig {
        users: config.iam_users.clone(),
        token_ttl: config.token_ttl,
        aksk: config.aksk.clone(),
    });
    let sim = Arc::new(shared::Sim::new(config.token.clone(), identity));
    let now_ms = chrono::Utc::now().timestamp_millis();
    let projects: Vec<String> = (0..config.projects.max(1)).map(seeded_project_id).collect();
    for i in 0..config.jobs {
        let project = &projects[i % projects.len()];
        sim.jobs.seed(
            seeded_job_id(i).as_str(),
            Some(seeded_job_name(i)),
            Some(project),
            now_ms,
        );
    }
    for id in &config.job_ids {
        sim.jobs.seed(id.as_str(), None, None, now_ms);
    }

    let app = server::router(sim);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::debug!(%addr, jobs = config.jobs + config.job_ids.len(), "CodeArts simulator listening");
    Ok(SimHandle {
        addr,
        token: config.token,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

impl SimHandle {
    /// The bound address (the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, usable as the CodeArts endpoint and the control API's base. A wildcard
    /// listen address is replaced by loopback.
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The token the simulator accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A control-API client for this simulator.
    pub fn control(&self) -> Control {
        Control::new(&self.base_url(), &self.token)
    }

    /// Stops accepting connections, lets calls in flight finish (for at most two seconds),
    /// and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(STOP_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "simulator server failed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "simulator server task failed"),
                Err(_) => task.abort(),
            }
        }
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
