//! The dispatcher: delivers the outbox. It claims each channel's oldest due delivery, hands it
//! to the channel's sink, and marks it sent only after the sink accepted it; failures are
//! retried with exponential backoff and jitter (or after the service's `Retry-After`), and a
//! delivery that can never succeed is marked failed and logged loudly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use rand::Rng;
use tokio::sync::Notify;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Outgoing, SendError, Sink};
use crate::config::DeliveryConfig;
use crate::metrics::Metrics;
use crate::store::{self, DueDelivery, Store};

/// How often the dispatcher looks at the outbox when nothing wakes it.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What one pass over the due deliveries did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl DispatchReport {
    fn add(&mut self, other: DispatchReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.failed += other.failed;
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
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        sinks: Arc<BTreeMap<String, Sink>>,
        config: DeliveryConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            sinks,
            config,
            metrics,
        }
    }

    /// Attempts every delivery due at `now` once: one per channel (each channel's oldest), the
    /// channels in parallel.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<DispatchReport, store::Error> {
        let due = self.store.due_deliveries(now).await?;
        let outcomes = join_all(due.iter().map(|d| self.attempt(d, now))).await;
        let mut report = DispatchReport::default();
        for outcome in outcomes {
            report.add(outcome?);
        }
        Ok(report)
    }

    /// Delivers everything due now, channel by channel in order, until only deliveries waiting
    /// for a later retry remain. Bounded, so a flood cannot keep it here forever.
    pub async fn drain_due(&self) -> Result<DispatchReport, store::Error> {
        self.drain_until(&|| false).await
    }

    async fn drain_until(
        &self,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<DispatchReport, store::Error> {
        let mut total = DispatchReport::default();
        for _ in 0..10_000 {
            if stop() {
                break;
            }
            let report = self.run_once(Utc::now()).await?;
            if report.attempted() == 0 {
                break;
            }
            total.add(report);
        }
        Ok(total)
    }

    /// Delivers until `stop` turns true: wakes when deliveries are queued, when a retry falls
    /// due, or at least every second. A send in flight when `stop` turns finishes (each is
    /// bounded by `delivery.timeout_secs`); nothing new starts after it.
    pub async fn run(&self, wake: Arc<Notify>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let stopping = stop.clone();
            if let Err(e) = self.drain_until(&|| *stopping.borrow()).await {
                warn!(error = %e, "dispatcher could not read the outbox; retrying");
            }
            if *stop.borrow() {
                return;
            }
            let sleep = match self.store.next_due_at().await {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_TICK),
                _ => IDLE_TICK,
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    async fn attempt(
        &self,
        delivery: &DueDelivery,
        now: DateTime<Utc>,
    ) -> Result<DispatchReport, store::Error> {
        let span = info_span!("deliver", channel = %delivery.channel, delivery_id = %delivery.id, job_id = %delivery.event.job_id);
        async {
            let max_age = chrono::Duration::seconds(self.config.max_age_secs.try_into().unwrap_or(i64::MAX));
            if now - delivery.created_at > max_age {
                let reason = format!(
                    "abandoned: still undelivered after {}s (delivery.max_age_secs)",
                    self.config.max_age_secs
                );
                error!(channel = %delivery.channel, %reason, "delivery abandoned");
                self.count(&delivery.channel, "failed");
                self.store.mark_failed(&delivery.id, &reason).await?;
                return Ok(DispatchReport { failed: 1, ..Default::default() });
            }
            let Some(sink) = self.sinks.get(&delivery.channel) else {
                let reason = format!(
                    "channel {:?} is no longer in the config",
                    delivery.channel
                );
                error!(channel = %delivery.channel, %reason, "delivery dropped");
                self.count(&delivery.channel, "failed");
                self.store.mark_failed(&delivery.id, &reason).await?;
                return Ok(DispatchReport { failed: 1, ..Default::default() });
            };
            let out = Outgoing {
                delivery_id: &delivery.id,
                event: &delivery.event,
            };
            match sink.send(&out).await {
                Ok(()) => {
                    self.count(&delivery.channel, "sent");
                    self.store.mark_sent(&delivery.id, Utc::now()).await?;
                    info!(event = %delivery.event.kind, attempts = delivery.attempts + 1, "delivered");
                    Ok(DispatchReport { sent: 1, ..Default::default() })
                }
                Err(SendError::Permanent { reason }) => {
                    self.count(&delivery.channel, "failed");
                    error!(channel = %delivery.channel, %reason, "delivery rejected by the chat service; not retrying (fix the channel config)");
                    self.store.mark_failed(&delivery.id, &reason).await?;
                    Ok(DispatchReport { failed: 1, ..Default::default() })
                }
                Err(SendError::Retry { reason, after }) => {
                    self.count(&delivery.channel, "retry");
                    let wait = after
                        .map(|a| a.max(Duration::from_millis(100)))
                        .unwrap_or_else(|| self.backoff(delivery.attempts));
                    warn!(channel = %delivery.channel, %reason, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                    let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
                    self.store.mark_retry(&delivery.id, next, &reason).await?;
                    Ok(DispatchReport { retrying: 1, ..Default::default() })
                }
            }
        }
        .instrument(span)
        .await
    }

    fn count(&self, channel: &str, outcome: &str) {
        self.metrics.inc(
            "codearts_bot_deliveries_total",
            &[("channel", channel), ("outcome", outcome)],
        );
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
