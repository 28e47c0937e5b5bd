//! The service layer: the shared context ([`Ctx`]) and what runs on it. A poll cycle
//! ([`poller`]) after discovery ([`discovery`]) and the silence sweep ([`silences`]); the
//! scheduler ([`schedule`]) and what follows each cycle ([`source`], [`reminders`],
//! [`digests`]); scheduled digests ([`digest`]); retention ([`retention`]). Every event reaches the outbox through
//! [`routing`].

pub mod actions;
pub mod context;
pub mod ctx;
pub mod cycle_lists;
pub mod digest;
pub mod digests;
pub mod discovery;
pub mod leadership;
pub mod lists;
pub mod observe;
pub mod poller;
pub mod reminders;
pub mod retention;
pub mod routing;
pub mod schedule;
pub mod silences;
pub mod source;
pub mod state;

pub use ctx::Ctx;
