//! The store (SQLite, or PostgreSQL for several replicas): watched jobs, snapshots, events, the delivery outbox and alert state.
//!
//! All SQL of the crate lives under this folder, split by aggregate; each file holds the
//! `impl Store` block for its tables. `db` is the handle and the shared helpers every other
//! file builds on; `observations` holds the event insert that `outbox` and `alerts` use.
//! Rows are read through private `#[derive(sqlx::FromRow)]` structs, then turned into domain
//! types (a stored value that cannot be parsed is an [`Error::Corrupt`]).

mod actions;
mod alerts;
mod board;
mod bulk_read;
mod buttons;
mod contexts;
pub mod copy;
mod db;
mod digests;
mod leases;
mod observations;
mod outbox;
mod retention;
pub mod scratch;
#[cfg(test)]
mod testing;
mod watch;
mod watch_diff;

pub use actions::{ActionRow, Begun, NewAction, Settled};
pub use board::{HistoryPoint, JobDelivery, LoggedEvent};
pub use buttons::Button;
pub use contexts::{ContextState, Saved};
pub use db::{Dialect, Error, Location, Result, Store, from_ms, to_ms};
pub use digests::StoredBuild;
pub use leases::{LEADER_LEASE, LeaseHolder};
pub use observations::{Observed, Recorded};
pub use outbox::{
    DeliveryRow, DueDelivery, OutboxCounts, PendingHead, PendingSummary, Purpose, Settle,
};
pub use retention::Pruned;
pub use watch::{WatchSource, WatchedJob};
