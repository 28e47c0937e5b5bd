//! The CodeArts Build API: typed answers ([`model`], the job lists in [`listing`] and
//! [`job_list`]), the HTTP client ([`client`]), how calls are authenticated ([`auth`]), and
//! where each region's endpoint is ([`region`]).

pub mod auth;
pub mod client;
pub mod error;
pub mod job_list;
pub mod listing;
pub mod model;
pub mod region;
pub mod signer;

pub use client::Client;
pub use error::{ApiError, AuthError, Error};
pub use job_list::{JobListPage, ListEntry, ListExtras};
pub use listing::{JobPage, ListedJob};
pub use model::{JobId, JobInfo};
