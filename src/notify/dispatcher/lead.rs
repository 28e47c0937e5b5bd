//! The dispatcher's options set after it is built: which channels carry buttons, and the
//! role that decides whether this process may send at all (docs/ha.md).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::Dispatcher;
use crate::domain::lease::Role;

impl Dispatcher {
    /// Sends only while `lead` says this process leads, checked before every message: a
    /// process that was paused past its term finds out before it sends anything.
    pub fn with_lead(mut self, lead: tokio::sync::watch::Receiver<Role>) -> Self {
        self.lead = Some(lead);
        self
    }

    pub(super) fn leads(&self) -> bool {
        self.lead
            .as_ref()
            .is_none_or(|role| role.borrow().may_act(Instant::now()))
    }

    /// The channels whose failure cards carry buttons
    /// ([`crate::notify::buttons::channels_with_buttons`]).
    pub fn with_buttons(mut self, channels: HashSet<String>) -> Self {
        self.buttons = Arc::new(channels);
        self
    }
}
