//! The buttons of a failure's own card on a channel that carries them (docs/actions.md,
//! "Buttons"), issued in the store before the card is rendered.

use chrono::Utc;

use super::Dispatcher;
use crate::domain::buttons::{ButtonAction, CardButtons};
use crate::store::{self, DueDelivery};

impl Dispatcher {
    /// The buttons of `d`'s card on `channel`: a failure's own card on a channel with buttons.
    /// A card sent again (a retry, an edit of the same delivery) keeps its ids.
    pub(super) async fn card_buttons(
        &self,
        channel: &str,
        d: &DueDelivery,
    ) -> Result<Option<CardButtons>, store::Error> {
        let failure = matches!(
            d.event.kind,
            crate::domain::event::EventKind::BuildFailed
                | crate::domain::event::EventKind::BuildStillFailing
        );
        if !failure || d.event.job_id.is_empty() || !self.buttons.contains(channel) {
            return Ok(None);
        }
        let buttons = self
            .store
            .issue_card_buttons(
                Some(&d.id),
                &d.event.job_id,
                Some(channel),
                &ButtonAction::FAILURE_CARD,
                Utc::now(),
            )
            .await?;
        Ok(Some(buttons))
    }
}
