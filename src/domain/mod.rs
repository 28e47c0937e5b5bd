//! Pure types and rules: what an observation of a job means (the detector and its events),
//! incidents, silences, the "monitoring blind" state and job ids as people type them. No I/O,
//! no clock: callers pass the time.

pub mod buttons;
pub mod context;
pub mod detect;
pub mod digest;
pub mod event;
pub mod ids;
pub mod incident;
pub mod lease;
pub mod list_poll;
pub mod rules;
pub mod silence;
pub mod snapshot;
pub mod snapshot_pack;
pub mod source_state;
