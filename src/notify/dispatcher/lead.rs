//! The dispatcher's options set after it is built: which channels carry buttons, and the
//! role that decides whether this process may send at all (docs/ha.md).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::Dispatcher;
use crate::domain::lease::Role;
use crate::store::{self, DueDelivery, LEADER_LEASE};

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

    /// Claims `deliveries` just before they are sent as one message, and notes the send for
    /// the channel's pacing. With a lease, the claim is one statement that checks this
    /// process's term on the database's clock ([`store::Store::claim_deliveries`]): a
    /// replica deposed since its last renewal, or paused past its term, finds out there and
    /// sends nothing. `false`: leave them to the current leader.
    pub(super) async fn claim(
        &self,
        channel: &str,
        deliveries: &[DueDelivery],
    ) -> Result<bool, store::Error> {
        if let Some(lead) = &self.lead {
            let role = *lead.borrow();
            if !role.may_act(Instant::now()) {
                return Ok(false);
            }
            let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
            if let Some(token) = role.lease_token()
                && !self
                    .store
                    .claim_deliveries(LEADER_LEASE, token, &ids)
                    .await?
            {
                tracing::warn!(%channel, token, "not sending: this term no longer holds the lease, or another replica has these deliveries");
                return Ok(false);
            }
        }
        self.note_sent(channel);
        Ok(true)
    }
}
