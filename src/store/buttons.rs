//! The buttons issued on cards (`buttons`): each a random id the platform carries back, naming
//! what it does and to which job. Looked up on every click; an unknown or expired id is not
//! found (docs/actions.md, "Buttons").

use chrono::{DateTime, Utc};

use super::db::{Result, Store, to_ms};
use crate::domain::buttons::{ButtonAction, CARD_TTL, CONFIRM_TTL, CardButtons};

/// One issued button, as a click finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub id: String,
    pub action: ButtonAction,
    pub job_id: String,
    pub channel: Option<String>,
    pub for_user: Option<String>,
    pub origin: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    action: String,
    job_id: String,
    channel: Option<String>,
    for_user: Option<String>,
    origin: Option<String>,
}

/// A new opaque id: 128 random bits, hex.
fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Store {
    /// The buttons of one card for `job_id`. With a `card` (the delivery's id), a card sent
    /// again gets the ids it had; without, every call issues new ones (a `/job` answer).
    pub async fn issue_card_buttons(
        &self,
        card: Option<&str>,
        job_id: &str,
        channel: Option<&str>,
        actions: &[ButtonAction],
        now: DateTime<Utc>,
    ) -> Result<CardButtons> {
        let expires = to_ms(now + CARD_TTL);
        let mut tx = self.write().await?;
        let mut ids = Vec::with_capacity(actions.len());
        for action in actions {
            let id = new_id();
            sqlx::query(
                "INSERT INTO buttons (id, action, job_id, channel, card, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (card, action) WHERE card IS NOT NULL DO NOTHING",
            )
            .bind(&id)
            .bind(action.as_str())
            .bind(job_id)
            .bind(channel)
            .bind(card)
            .bind(to_ms(now))
            .bind(expires)
            .execute(&mut *tx)
            .await?;
            ids.push((*action, id));
        }
        if card.is_some() {
            // A card sent before keeps its ids (the inserts above did nothing).
            let stored: Vec<(String, String)> =
                sqlx::query_as("SELECT action, id FROM buttons WHERE card = $1")
                    .bind(card)
                    .fetch_all(&mut *tx)
                    .await?;
            for (action, id) in stored {
                if let Some(slot) = ids.iter_mut().find(|(a, _)| a.as_str() == action) {
                    slot.1 = id;
                }
            }
        }
        tx.commit().await?;
        Ok(CardButtons { ids })
    }

    /// A confirmation button for `for_user` only, valid a few minutes; `origin` is the card
    /// message the first click came from.
    pub async fn issue_confirmation(
        &self,
        action: ButtonAction,
        job_id: &str,
        channel: Option<&str>,
        for_user: &str,
        origin: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO buttons (id, action, job_id, channel, for_user, origin, created_at,
                                  expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(action.as_str())
        .bind(job_id)
        .bind(channel)
        .bind(for_user)
        .bind(origin)
        .bind(to_ms(now))
        .bind(to_ms(now + CONFIRM_TTL))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The button `id` names, unless it is unknown or expired at `now`.
    pub async fn button(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Button>> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, action, job_id, channel, for_user, origin FROM buttons
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| {
            Some(Button {
                action: ButtonAction::parse(&r.action)?,
                id: r.id,
                job_id: r.job_id,
                channel: r.channel,
                for_user: r.for_user,
                origin: r.origin,
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_card_sent_again_keeps_its_ids_and_expired_ids_are_not_found() {
        for backend in crate::store::testing::backends(
            "a_card_sent_again_keeps_its_ids_and_expired_ids_are_not_found",
        )
        .await
        {
            let store = backend.store.clone();
            let now = Utc::now();
            let job = "0123456789abcdef0123456789abcdef";
            let actions = ButtonAction::FAILURE_CARD;
            let first = store
                .issue_card_buttons(Some("delivery-1"), job, Some("ops"), &actions, now)
                .await
                .unwrap();
            let again = store
                .issue_card_buttons(Some("delivery-1"), job, Some("ops"), &actions, now)
                .await
                .unwrap();
            assert_eq!(first, again, "a retried card carries the same buttons");
            let other = store
                .issue_card_buttons(None, job, None, &actions, now)
                .await
                .unwrap();
            assert_ne!(first.ids[0].1, other.ids[0].1);

            let (action, id) = &first.ids[0];
            let found = store.button(id, now).await.unwrap().unwrap();
            assert_eq!((found.action, found.job_id.as_str()), (*action, job));
            assert_eq!(found.channel.as_deref(), Some("ops"));
            assert_eq!(store.button(id, now + CARD_TTL).await.unwrap(), None);
            assert_eq!(store.button("nope", now).await.unwrap(), None);

            let confirm = store
                .issue_confirmation(
                    ButtonAction::ConfirmRerun,
                    job,
                    None,
                    "discord:1",
                    Some("{}"),
                    now,
                )
                .await
                .unwrap();
            let found = store.button(&confirm, now).await.unwrap().unwrap();
            assert_eq!(found.for_user.as_deref(), Some("discord:1"));
            assert_eq!(
                store.button(&confirm, now + CONFIRM_TTL).await.unwrap(),
                None
            );
        }
    }
}
