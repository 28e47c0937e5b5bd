//! The dispatcher's edits of an incident's message: a later failure edited in place, and a
//! context that arrived after its alert edited in (never posted on its own).

use chrono::Utc;
use tracing::{info, warn};

use super::{DispatchReport, Dispatcher, editable};
use crate::notify::error::SendError;
use crate::notify::outgoing::Outgoing;
use crate::notify::sink::Sink;
use crate::store::{self, DueDelivery, Settle};

impl Dispatcher {
    /// Edits the message of `d`'s incident with its latest state. A message that can no longer
    /// be edited (deleted) is replaced by a new post.
    pub(super) async fn edit(
        &self,
        sink: &Sink,
        channel: &str,
        d: &DueDelivery,
    ) -> Result<DispatchReport, store::Error> {
        let Some((incident, message)) = editable(d) else {
            return self.post(sink, channel, std::slice::from_ref(d)).await;
        };
        let links = self.links(d);
        let buttons = self.card_buttons(channel, d).await?;
        let out = Outgoing {
            buttons: buttons.as_ref(),
            ..self.outgoing(d, &links)
        };
        if !self.claim(channel, std::slice::from_ref(d)).await? {
            return Ok(DispatchReport::default());
        }
        match sink.edit_incident(message, &out, incident).await {
            Ok(()) => {
                info!(incident = incident.id, "incident message edited");
                self.store
                    .note_incident_message(incident.id, channel, None, Utc::now())
                    .await?;
                let mut report = self
                    .settle(channel, std::slice::from_ref(d), Settle::Sent(Utc::now()))
                    .await?;
                report.messages += 1;
                Ok(report)
            }
            Err(SendError::Permanent { reason }) => {
                warn!(%channel, %reason, incident = incident.id, "the incident's message cannot be edited; posting a new one");
                self.post(sink, channel, std::slice::from_ref(d)).await
            }
            Err(SendError::Retry { reason, after }) => {
                let mut report = self
                    .retry_later(channel, std::slice::from_ref(d), &reason, after)
                    .await?;
                report.messages += 1;
                Ok(report)
            }
        }
    }

    /// Edits a context that arrived late into the incident's message. When there is nothing
    /// to edit any more (the platform cannot, the incident moved on or closed, the message is
    /// gone) the delivery is settled without sending: the alert itself went out already.
    pub(super) async fn edit_in_context(
        &self,
        sink: &Sink,
        channel: &str,
        d: &DueDelivery,
    ) -> Result<DispatchReport, store::Error> {
        let Some((incident, message)) = editable(d).filter(|_| sink.edits_messages()) else {
            info!(%channel, "the context arrived late; no message to edit");
            return self
                .settle(channel, std::slice::from_ref(d), Settle::Sent(Utc::now()))
                .await;
        };
        let links = self.links(d);
        let buttons = self.card_buttons(channel, d).await?;
        let out = Outgoing {
            buttons: buttons.as_ref(),
            ..self.outgoing(d, &links)
        };
        if !self.claim(channel, std::slice::from_ref(d)).await? {
            return Ok(DispatchReport::default());
        }
        let outcome = sink.edit_incident(message, &out, incident).await;
        let mut report = match outcome {
            Ok(()) => {
                info!(
                    incident = incident.id,
                    "context edited into the incident's message"
                );
                self.settle(channel, std::slice::from_ref(d), Settle::Sent(Utc::now()))
                    .await?
            }
            Err(SendError::Permanent { reason }) => {
                warn!(%channel, %reason, incident = incident.id, "could not edit the context into the incident's message; leaving it");
                self.settle(channel, std::slice::from_ref(d), Settle::Failed(&reason))
                    .await?
            }
            Err(SendError::Retry { reason, after }) => {
                self.retry_later(channel, std::slice::from_ref(d), &reason, after)
                    .await?
            }
        };
        report.messages += 1;
        Ok(report)
    }
}
