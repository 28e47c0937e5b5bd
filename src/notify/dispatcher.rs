//! The dispatcher: delivers the outbox. For each channel it takes the oldest pending
//! deliveries (never overtaking an older one), waits `group_wait` after the first so that a
//! burst becomes one message, respects the destination's pacing, hands the batch to the sink,
//! and marks the deliveries sent only after the platform accepted. Failures are retried with
//! exponential backoff and jitter (or after the service's `Retry-After`); a delivery that can
//! never succeed is marked failed and logged loudly.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use rand::Rng;
use tokio::sync::Notify;
use tracing::{Instrument, error, info, info_span, warn};

use super::error::SendError;
use super::mention::Mentions;
use super::outgoing::Outgoing;
use super::sink::Sink;
use crate::config::DeliveryConfig;
use crate::domain::lease::Role;
use crate::store::{self, DueDelivery, PendingHead, Purpose, Settle, Store};
use crate::util::metrics::Metrics;

mod buttons;
mod edit;
mod lead;
mod links;
mod storm;

/// The incident and message a delivery updates in place: a failure of an open incident whose
/// message this channel shows.
fn editable(d: &DueDelivery) -> Option<(&crate::domain::incident::Incident, &str)> {
    let (incident, message) = d.incident.as_ref()?;
    let update = matches!(
        d.event.kind,
        crate::domain::event::EventKind::BuildFailed
            | crate::domain::event::EventKind::BuildStillFailing
    );
    (update && incident.is_open()).then_some((incident, message.as_deref()?))
}

/// How often the dispatcher looks at the outbox when nothing wakes it.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What one pass over the due deliveries did (counted in deliveries, not messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Messages sent (one message may carry several deliveries).
    pub messages: usize,
}

impl DispatchReport {
    fn add(&mut self, other: DispatchReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.failed += other.failed;
        self.messages += other.messages;
    }

    pub fn attempted(&self) -> usize {
        self.sent + self.retrying + self.failed
    }
}

/// Delivers queued events to their channels.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    sinks: Arc<BTreeMap<String, Sink>>,
    config: DeliveryConfig,
    link_template: Option<String>,
    metrics: Arc<Metrics>,
    /// Who failure alerts mention, per channel.
    mentions: Arc<Mentions>,
    /// Each channel's storm threshold (channels that never summarise are absent).
    storms: Arc<HashMap<String, u64>>,
    /// When each channel's recent messages went out, for pacing.
    sent_at: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
    /// Channels whose failure cards carry buttons.
    buttons: Arc<HashSet<String>>,
    /// This process's role: nothing is sent unless it leads (docs/ha.md).
    lead: Option<tokio::sync::watch::Receiver<Role>>,
    /// Where the status board is reached, for the cards' links to it (docs/board.md).
    board: Arc<crate::config::HttpConfig>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        sinks: Arc<BTreeMap<String, Sink>>,
        config: DeliveryConfig,
        link_template: Option<String>,
        metrics: Arc<Metrics>,
        mentions: Arc<Mentions>,
        storms: Arc<HashMap<String, u64>>,
    ) -> Self {
        Self {
            store,
            sinks,
            config,
            link_template,
            metrics,
            mentions,
            storms,
            sent_at: Arc::new(Mutex::new(HashMap::new())),
            buttons: Arc::default(),
            lead: None,
            board: Arc::default(),
        }
    }

    /// One pass: every channel whose oldest delivery is due (and, unless `flush`, has waited
    /// `group_wait`), and whose pacing allows a message now, sends one message. Channels go in
    /// parallel.
    pub async fn run_once(
        &self,
        now: DateTime<Utc>,
        flush: bool,
    ) -> Result<DispatchReport, store::Error> {
        let heads = self.store.pending_heads().await?;
        let ready: Vec<&PendingHead> = heads
            .iter()
            .filter(|h| self.ready_at(h, flush) <= now && self.pacing_allows(&h.channel))
            .collect();
        let outcomes = join_all(ready.iter().map(|h| self.send_channel(&h.channel, now))).await;
        let mut report = DispatchReport::default();
        for outcome in outcomes {
            report.add(outcome?);
        }
        Ok(report)
    }

    /// Delivers everything due now without waiting for `group_wait`, channel by channel in
    /// order, until only deliveries waiting for a later retry (or for pacing) remain. Used by
    /// `run --once`, the demo and tests. Bounded, so a flood cannot keep it here forever.
    pub async fn drain_due(&self) -> Result<DispatchReport, store::Error> {
        self.drain(&|| false, true).await
    }

    async fn drain(
        &self,
        stop: &(dyn Fn() -> bool + Sync),
        flush: bool,
    ) -> Result<DispatchReport, store::Error> {
        let mut total = DispatchReport::default();
        for _ in 0..10_000 {
            if stop() {
                break;
            }
            let report = self.run_once(Utc::now(), flush).await?;
            if report.attempted() == 0 {
                if flush && self.waiting_for_pacing().await? {
                    // Flushing: wait for the pacing slot rather than leave it for later.
                    let wait = self.time_to_next().await.unwrap_or(IDLE_TICK);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                break;
            }
            total.add(report);
        }
        Ok(total)
    }

    /// Delivers until `stop` turns true: wakes when deliveries are queued, when one falls due
    /// (a retry, the end of a `group_wait`, a pacing slot), or at least every second. A send in
    /// flight when `stop` turns finishes (each is bounded by `delivery.timeout_secs`); nothing
    /// new starts after it.
    pub async fn run(&self, wake: Arc<Notify>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = stop.clone();
            if let Err(e) = self.drain(&|| *stopping.borrow(), false).await {
                warn!(error = %e, "dispatcher could not read the outbox; retrying");
            }
            if *stop.borrow() {
                return;
            }
            let sleep = self.time_to_next().await.unwrap_or(IDLE_TICK);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// When a channel's head may go. A retry goes at its retry time. A first attempt on a
    /// channel that has been quiet for `group_wait` goes at once (an isolated change reaches
    /// chat without delay); on a channel that just sent, it waits until `group_wait` after it
    /// was queued, so a burst becomes one message instead of many.
    fn ready_at(&self, head: &PendingHead, flush: bool) -> DateTime<Utc> {
        let wait = Duration::from_millis(self.config.group_wait_ms);
        if flush || head.attempts > 0 || self.quiet_for(&head.channel, wait) {
            head.next_attempt_at
        } else {
            let wait = chrono::Duration::from_std(wait).unwrap_or_default();
            head.next_attempt_at.max(head.created_at + wait)
        }
    }

    /// Whether the channel sent nothing in the last `wait`.
    fn quiet_for(&self, channel: &str, wait: Duration) -> bool {
        self.sent_at.lock().map_or(true, |sent_at| {
            sent_at
                .get(channel)
                .and_then(|h| h.back())
                .is_none_or(|last| last.elapsed() >= wait)
        })
    }

    /// How long until something pending may be tried (its retry time, its grouping wait, and
    /// the channel's next pacing slot, whichever is last), capped at a second.
    async fn time_to_next(&self) -> Option<Duration> {
        let heads = self.store.pending_heads().await.ok()?;
        let now = Utc::now();
        let next = heads
            .iter()
            .map(|h| {
                let ready = (self.ready_at(h, false) - now).to_std().unwrap_or_default();
                ready.max(self.pacing_wait(&h.channel))
            })
            .min()?;
        // A few milliseconds at least, so a slot that is just opening is not spun on.
        Some(next.clamp(Duration::from_millis(5), IDLE_TICK))
    }

    /// How long until every pacing window of the channel has room for one more message:
    /// in a full window, until its oldest message in the way leaves it.
    fn pacing_wait(&self, channel: &str) -> Duration {
        let Some(sink) = self.sinks.get(channel) else {
            return Duration::ZERO;
        };
        let Ok(sent_at) = self.sent_at.lock() else {
            return Duration::ZERO;
        };
        let Some(history) = sent_at.get(channel) else {
            return Duration::ZERO;
        };
        sink.pacing()
            .iter()
            .filter_map(|(max, window)| {
                let recent: Vec<&Instant> =
                    history.iter().filter(|t| t.elapsed() < *window).collect();
                let max = usize::try_from(*max).unwrap_or(usize::MAX);
                // With `max` allowed, the message that must leave is the one `max` back from
                // the newest; it leaves `window` after it was sent.
                let blocking = recent.len().checked_sub(max)?;
                Some(window.saturating_sub(recent[blocking].elapsed()))
            })
            .max()
            .unwrap_or_default()
    }

    async fn waiting_for_pacing(&self) -> Result<bool, store::Error> {
        let now = Utc::now();
        let heads = self.store.pending_heads().await?;
        Ok(heads
            .iter()
            .any(|h| self.ready_at(h, true) <= now && !self.pacing_allows(&h.channel)))
    }

    /// Whether every pacing window of the channel has room for one more message now.
    fn pacing_allows(&self, channel: &str) -> bool {
        let Some(sink) = self.sinks.get(channel) else {
            return true; // unknown channel: let send_channel report it
        };
        let windows = sink.pacing();
        let Ok(mut sent_at) = self.sent_at.lock() else {
            return true;
        };
        let history = sent_at.entry(channel.to_owned()).or_default();
        let longest = windows.iter().map(|(_, w)| *w).max().unwrap_or_default();
        while history.front().is_some_and(|t| t.elapsed() > longest) {
            history.pop_front();
        }
        windows.iter().all(|(max, window)| {
            let in_window = history.iter().filter(|t| t.elapsed() < *window).count();
            in_window < usize::try_from(*max).unwrap_or(usize::MAX)
        })
    }

    pub(super) fn note_sent(&self, channel: &str) {
        if let Ok(mut sent_at) = self.sent_at.lock() {
            sent_at
                .entry(channel.to_owned())
                .or_default()
                .push_back(Instant::now());
        }
    }

    /// Sends one message for a channel: its oldest due deliveries, as many as one message of
    /// that platform carries.
    async fn send_channel(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, store::Error> {
        let span = info_span!("deliver", channel = %channel);
        async {
            if !self.leads() {
                return Ok(DispatchReport::default());
            }
            let Some(sink) = self.sinks.get(channel) else {
                let due = self.store.due_for_channel(channel, now, 1000).await?;
                let reason = format!("channel {channel:?} is no longer in the config");
                error!(%channel, %reason, deliveries = due.len(), "deliveries dropped");
                return self.settle(channel, &due, Settle::Failed(&reason)).await;
            };
            let mut due = self
                .store
                .due_for_channel(channel, now, sink.max_batch())
                .await?;
            let max_age = chrono::Duration::seconds(
                i64::try_from(self.config.max_age_secs).unwrap_or(i64::MAX),
            );
            let (expired, live): (Vec<DueDelivery>, Vec<DueDelivery>) =
                due.drain(..).partition(|d| now - d.created_at > max_age);
            let mut report = DispatchReport::default();
            if !expired.is_empty() {
                let reason = format!(
                    "abandoned: still undelivered after {}s (delivery.max_age_secs)",
                    self.config.max_age_secs
                );
                error!(%channel, %reason, deliveries = expired.len(), "deliveries abandoned");
                report.add(
                    self.settle(channel, &expired, Settle::Failed(&reason))
                        .await?,
                );
            }
            if live.is_empty() {
                return Ok(report);
            }
            // A storm: more waiting than anyone reads one by one; one summary instead.
            if let Some(&threshold) = self.storms.get(channel)
                && live.first().is_some_and(|d| {
                    d.purpose == Purpose::Post
                        && d.event.kind != crate::domain::event::EventKind::Digest
                })
                && self
                    .is_storm(channel, &live, sink.max_batch(), threshold, now)
                    .await?
            {
                report.add(self.post_storm(sink, channel, now).await?);
                return Ok(report);
            }
            // A context that arrived after its alert: edited into the incident's message, or
            // nothing (it is never a message of its own).
            if let Some(first) = live.first()
                && first.purpose == Purpose::ContextEdit
            {
                report.add(self.edit_in_context(sink, channel, first).await?);
                return Ok(report);
            }
            // An update of an incident whose message this channel shows: edit it in place
            // (one per pass, in order). Anything before the first such update is posted.
            if sink.edits_messages()
                && let Some(first) = live.first()
                && editable(first).is_some()
            {
                report.add(self.edit(sink, channel, first).await?);
                return Ok(report);
            }
            let cut = live
                .iter()
                .position(|d| {
                    d.purpose == Purpose::ContextEdit
                        || (sink.edits_messages() && editable(d).is_some())
                })
                .unwrap_or(live.len());
            report.add(self.post(sink, channel, &live[..cut]).await?);
            Ok(report)
        }
        .instrument(span)
        .await
    }

    /// Posts deliveries as one message and settles them by the outcome. Remembers the message
    /// that shows each incident (when it is the message's only event) for later edits, and
    /// marks resolved incidents' old messages as resolved.
    async fn post(
        &self,
        sink: &Sink,
        channel: &str,
        live: &[DueDelivery],
    ) -> Result<DispatchReport, store::Error> {
        let links: Vec<_> = live.iter().map(|d| self.links(d)).collect();
        let buttons = match live {
            [only] => self.card_buttons(channel, only).await?,
            _ => None,
        };
        let batch: Vec<Outgoing<'_>> = live
            .iter()
            .zip(&links)
            .map(|(d, links)| Outgoing {
                buttons: buttons.as_ref(),
                ..self.outgoing(d, links)
            })
            .collect();
        if !self.claim(channel, live).await? {
            // The term ended while the batch was read: the next leader sends it.
            return Ok(DispatchReport::default());
        }
        let outcome = sink.send_batch_for_id(&batch).await;
        let mut report = DispatchReport {
            messages: 1,
            ..DispatchReport::default()
        };
        let settled = match outcome {
            Ok(message) => {
                info!(deliveries = live.len(), "delivered");
                let settled = self.settle(channel, live, Settle::Sent(Utc::now())).await?;
                self.after_post(sink, channel, live, &batch, message.as_deref())
                    .await?;
                settled
            }
            Err(SendError::Permanent { reason }) => {
                error!(%channel, %reason, deliveries = live.len(), "the chat service refused the message; not retrying (fix the channel config)");
                self.settle(channel, live, Settle::Failed(&reason)).await?
            }
            Err(SendError::Retry { reason, after }) => {
                self.retry_later(channel, live, &reason, after).await?
            }
        };
        report.add(settled);
        Ok(report)
    }

    /// Incident bookkeeping once a message was accepted.
    async fn after_post(
        &self,
        sink: &Sink,
        channel: &str,
        live: &[DueDelivery],
        batch: &[Outgoing<'_>],
        message: Option<&str>,
    ) -> Result<(), store::Error> {
        let now = Utc::now();
        for (d, out) in live.iter().zip(batch) {
            let Some((incident, shown_in)) = &d.incident else {
                continue;
            };
            // A grouped message shows other jobs too: editing it would rewrite their cards.
            // Only a failure's own card becomes the incident's message (not a reminder).
            let card = matches!(
                d.event.kind,
                crate::domain::event::EventKind::BuildFailed
                    | crate::domain::event::EventKind::BuildStillFailing
            );
            let own = (live.len() == 1 && card).then_some(message).flatten();
            self.store
                .note_incident_message(
                    incident.id,
                    channel,
                    own.filter(|_| incident.is_open()),
                    now,
                )
                .await?;
            if let (false, Some(old)) = (incident.is_open(), shown_in)
                && sink.edits_messages()
            {
                // The recovery was posted as a new message; the incident's message now says
                // it is resolved (best effort: the news itself went out).
                if let Err(e) = sink.edit_incident(old, out, incident).await {
                    warn!(%channel, error = %e, "could not mark the incident's message as resolved");
                }
            }
        }
        Ok(())
    }

    /// Whether more than `threshold` deliveries wait on the channel. Counted in the store only
    /// when the batch at hand is full (otherwise the batch is all that waits), so the usual
    /// pass of one or two events costs no extra query.
    async fn is_storm(
        &self,
        channel: &str,
        live: &[DueDelivery],
        max_batch: usize,
        threshold: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, store::Error> {
        let seen = live.len() as u64;
        if seen > threshold {
            return Ok(true);
        }
        if live.len() < max_batch {
            return Ok(false);
        }
        Ok(self.store.due_count(channel, now).await? > threshold)
    }

    async fn retry_later(
        &self,
        channel: &str,
        live: &[DueDelivery],
        reason: &str,
        after: Option<Duration>,
    ) -> Result<DispatchReport, store::Error> {
        let attempts = live.iter().map(|d| d.attempts).max().unwrap_or(0);
        let wait = after
            .map(|a| a.max(Duration::from_millis(100)))
            .unwrap_or_else(|| self.backoff(attempts));
        warn!(%channel, %reason, retry_in_ms = wait.as_millis() as u64, deliveries = live.len(), "delivery failed; will retry");
        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        self.settle(channel, live, Settle::Retry { at, error: reason })
            .await
    }

    async fn settle(
        &self,
        channel: &str,
        deliveries: &[DueDelivery],
        outcome: Settle<'_>,
    ) -> Result<DispatchReport, store::Error> {
        let ids: Vec<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        self.store.settle_many(&ids, outcome).await?;
        let n = ids.len();
        let (label, report) = match outcome {
            Settle::Sent(_) => (
                "sent",
                DispatchReport {
                    sent: n,
                    ..Default::default()
                },
            ),
            Settle::Retry { .. } => (
                "retry",
                DispatchReport {
                    retrying: n,
                    ..Default::default()
                },
            ),
            Settle::Failed(_) => (
                "failed",
                DispatchReport {
                    failed: n,
                    ..Default::default()
                },
            ),
        };
        self.metrics.add(
            "codearts_bot_deliveries_total",
            &[("channel", channel), ("outcome", label)],
            n as f64,
        );
        Ok(report)
    }

    /// Exponential backoff with jitter: `initial * 2^attempts`, capped, then a random point in
    /// its upper half so many retrying deliveries do not return in lockstep.
    fn backoff(&self, attempts: u32) -> Duration {
        let base = self
            .config
            .initial_backoff_secs
            .saturating_mul(1u64 << attempts.min(20))
            .min(self.config.max_backoff_secs);
        let ms = base.saturating_mul(1000);
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_next_wake_is_when_the_pacing_slot_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let channel: crate::config::ChannelConfig = toml::from_str(
            "name = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"",
        )
        .unwrap();
        let sink = Sink::from_config(&channel, reqwest::Client::new(), None);
        let sinks = Arc::new(BTreeMap::from([("hook".to_owned(), sink)]));
        let d = Dispatcher::new(
            store,
            sinks,
            DeliveryConfig::default(),
            None,
            Arc::new(Metrics::new()),
            Arc::new(Mentions::default()),
            Arc::default(),
        );
        assert_eq!(d.pacing_wait("hook"), Duration::ZERO);
        for _ in 0..9 {
            d.note_sent("hook");
        }
        assert_eq!(d.pacing_wait("hook"), Duration::ZERO, "9 of 10 per second");
        d.note_sent("hook");
        let wait = d.pacing_wait("hook");
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "the 10th message fills the window until the first leaves it: {wait:?}"
        );
        assert!(!d.pacing_allows("hook"));
    }
}
