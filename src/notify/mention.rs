//! Who a failure alert mentions: on a channel with `mention = "author"`, the person who ran
//! the failed build, when `[[people]]` maps them; nobody on any other channel, for any other
//! event, or for a person not mapped (they are named on the card, never mentioned).

use std::collections::HashSet;

use crate::config::{Config, Mention, Person, find_person};
use crate::domain::context::Context;
use crate::domain::event::{Event, EventKind};

/// The people, and the channels that mention them.
#[derive(Debug, Clone, Default)]
pub struct Mentions {
    people: Vec<Person>,
    channels: HashSet<String>,
}

impl Mentions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            people: config.people.clone(),
            channels: config
                .channels
                .iter()
                .filter(|c| c.mention == Some(Mention::Author))
                .map(|c| c.name.clone())
                .collect(),
        }
    }

    /// The person a message of `event` on `channel` mentions, if any.
    pub fn for_event(
        &self,
        channel: &str,
        event: &Event,
        context: Option<&Context>,
    ) -> Option<&Person> {
        let failure = matches!(
            event.kind,
            EventKind::BuildFailed | EventKind::BuildStillFailing
        );
        if !failure || !self.channels.contains(channel) {
            return None;
        }
        let context = context?;
        find_person(
            &self.people,
            context.triggered_by.as_deref(),
            context.user_id.as_deref(),
        )
    }
}
