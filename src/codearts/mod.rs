//! The CodeArts Build API: typed answers ([`model`], the job lists in [`listing`] and
//! [`job_list`], one build's record, stages, tests and more in [`builds`], its log in
//! [`build_log`]), the HTTP client ([`client`], with the build operations in
//! [`build_calls`]), how calls are authenticated ([`auth`]), and where each region's endpoint
//! is ([`region`]).

pub mod auth;
pub mod build_calls;
pub mod build_log;
pub mod builds;
pub mod client;
pub mod error;
pub mod job_list;
mod list_body;
pub mod listing;
pub mod model;
pub mod region;
pub mod signer;

pub use build_calls::ExecuteRequest;
pub use build_log::{LogChunk, LogQuery, LogTail, Sort};
pub use builds::{
    BuildInfo, BuildParameter, BuildRecord, DisableInfo, Executed, RecyclePage, RecycledJob,
    RunningStatus, Stage, Stages, TestSummary,
};
pub use client::Client;
pub use error::{ApiError, AuthError, Error};
pub use job_list::{JobListPage, ListEntry, ListExtras};
pub use listing::{JobPage, ListedJob};
pub use model::{JobId, JobInfo};
