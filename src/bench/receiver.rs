//! The delivery benchmark's receiver: an axum server on loopback with one path per channel,
//! answering 200 and counting the events each message carries (by the webhook contract's
//! `job_name`, or by the seeded job names a chat message mentions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;

/// What the seeded job names start with (see [`sim::seeded_job_name`]).
pub(super) const NAME_PREFIX: &str = "sim-job-";

/// One channel of a pass; the receiver serves it at `/{name}`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChannelSpec {
    pub(super) name: &'static str,
    /// The config's `type`.
    pub(super) kind: &'static str,
}

impl ChannelSpec {
    pub(super) fn counting(self) -> Counting {
        if self.kind == "webhook" {
            Counting::WebhookJson
        } else {
            Counting::JobNames
        }
    }
}

/// How the receiver finds the events in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counting {
    /// The generic webhook contract: one JSON event per POST, named by its `job_name`.
    WebhookJson,
    /// A chat message: the seeded job names it mentions, each once.
    JobNames,
}

/// What one channel's receiver saw.
#[derive(Debug, Clone, Default)]
pub(super) struct Tally {
    pub(super) messages: usize,
    /// Events summed over messages (an event sent twice counts twice).
    pub(super) events: usize,
    pub(super) max_per_message: usize,
    /// Events in the first message (a quiet channel sends at once, with what is queued so far).
    pub(super) first_events: Option<usize>,
    /// Messages in which no event could be found.
    pub(super) unreadable: usize,
    /// The jobs named at least once.
    pub(super) distinct: BTreeSet<String>,
    pub(super) first: Option<Instant>,
    pub(super) last: Option<Instant>,
    /// Each generic webhook body as it arrived, when the receiver keeps them
    /// ([`Receiver::start_keeping_bodies`]): the failover pass reads delivery ids from them.
    pub(super) bodies: Vec<(Instant, serde_json::Value)>,
}

impl Tally {
    pub(super) fn record(&mut self, at: Instant, names: Option<BTreeSet<String>>) {
        self.first_events
            .get_or_insert(names.as_ref().map_or(0, BTreeSet::len));
        self.messages += 1;
        self.first.get_or_insert(at);
        self.last = Some(at);
        match names {
            Some(names) if !names.is_empty() => {
                self.events += names.len();
                self.max_per_message = self.max_per_message.max(names.len());
                self.distinct.extend(names);
            }
            _ => self.unreadable += 1,
        }
    }
}

#[derive(Clone)]
pub(super) struct ReceiverState {
    counting: Arc<HashMap<String, Counting>>,
    tallies: Arc<Mutex<BTreeMap<String, Tally>>>,
    keep_bodies: bool,
}

/// The loopback receiver: one path per channel, 200 to everything it can count.
pub(super) struct Receiver {
    pub(super) base: String,
    pub(super) tallies: Arc<Mutex<BTreeMap<String, Tally>>>,
    pub(super) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Receiver {
    pub(super) async fn start(channels: &[ChannelSpec]) -> anyhow::Result<Self> {
        Self::start_with(channels, false).await
    }

    /// [`Receiver::start`], also keeping every webhook body in its channel's [`Tally`].
    pub(super) async fn start_keeping_bodies(channels: &[ChannelSpec]) -> anyhow::Result<Self> {
        Self::start_with(channels, true).await
    }

    async fn start_with(channels: &[ChannelSpec], keep_bodies: bool) -> anyhow::Result<Self> {
        let counting: HashMap<String, Counting> = channels
            .iter()
            .map(|c| (c.name.to_owned(), c.counting()))
            .collect();
        let tallies: BTreeMap<String, Tally> = channels
            .iter()
            .map(|c| (c.name.to_owned(), Tally::default()))
            .collect();
        let tallies = Arc::new(Mutex::new(tallies));
        let state = ReceiverState {
            counting: Arc::new(counting),
            tallies: Arc::clone(&tallies),
            keep_bodies,
        };
        let router = axum::Router::new()
            .route("/{channel}", post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("the delivery receiver cannot bind 127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self {
            base,
            tallies,
            task,
        })
    }

    pub(super) fn url(&self, channel: &str) -> String {
        format!("{}/{channel}", self.base)
    }

    pub(super) fn tallies(&self) -> BTreeMap<String, Tally> {
        self.tallies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) async fn receive(
    State(state): State<ReceiverState>,
    UrlPath(channel): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let Some(counting) = state.counting.get(&channel).copied() else {
        return StatusCode::NOT_FOUND;
    };
    let names = events_in(counting, &body);
    let kept = (state.keep_bodies && counting == Counting::WebhookJson)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    let mut tallies = state.tallies.lock().unwrap_or_else(PoisonError::into_inner);
    match tallies.get_mut(&channel) {
        Some(tally) => {
            tally.record(at, names);
            tally.bodies.extend(kept.map(|value| (at, value)));
            StatusCode::OK
        }
        None => StatusCode::NOT_FOUND,
    }
}

/// The jobs whose events a message carries, or `None` when it is not what the channel sends.
pub(super) fn events_in(counting: Counting, body: &[u8]) -> Option<BTreeSet<String>> {
    match counting {
        Counting::WebhookJson => {
            let value: serde_json::Value = serde_json::from_slice(body).ok()?;
            value.get("id")?.as_str()?;
            let name = value.get("job_name")?.as_str()?;
            Some(BTreeSet::from([name.to_owned()]))
        }
        Counting::JobNames => Some(job_names(&String::from_utf8_lossy(body))),
    }
}

/// Every seeded job name (`sim-job-` and digits) in a text, each once.
pub(super) fn job_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(NAME_PREFIX) {
        let after = &rest[at + NAME_PREFIX.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            names.insert(format!("{NAME_PREFIX}{}", &after[..digits]));
        }
        rest = &after[digits..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_found_once_each_with_their_digits() {
        let text = r#"{"title":"Build failed: sim-job-0007","text":"sim-job-0007, sim-job-0123 and sim-job-"}"#;
        let names: Vec<String> = job_names(text).into_iter().collect();
        assert_eq!(names, ["sim-job-0007", "sim-job-0123"]);
    }

    #[test]
    fn a_webhook_body_carries_one_event_and_anything_else_none() {
        let body = br#"{"id":"d1","event":"build_failed","job_name":"sim-job-0001"}"#;
        assert_eq!(
            events_in(Counting::WebhookJson, body),
            Some(BTreeSet::from(["sim-job-0001".to_owned()]))
        );
        assert_eq!(events_in(Counting::WebhookJson, b"not json"), None);
    }
}
