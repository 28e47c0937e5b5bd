//! The context every service shares: the config, the CodeArts client, the store, the sinks,
//! the rules and the in-memory state (snapshots, silences, discovery, health, metrics). Built
//! once by `ctx` (the composition root) and cloned cheaply: every field is shared.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::codearts;
use crate::config::Config;
use crate::domain::rules::Rules;
use crate::domain::silence::Silences;
use crate::engine::state::{ContextFetches, Discovery, ListMemory, SchedulerStats, SnapshotCache};
use crate::notify::{Sink, dispatcher::Dispatcher};
use crate::store::Store;
use crate::util::health::Health;
use crate::util::metrics::Metrics;
use crate::util::ratelimit::RateLimiter;
use crate::util::redact::Redactor;

/// The shared context. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Ctx {
    pub config: Arc<Config>,
    pub client: codearts::Client,
    pub store: Store,
    pub rules: Arc<Rules>,
    pub sinks: Arc<BTreeMap<String, Sink>>,
    /// Poked when deliveries are queued, so the dispatcher does not wait for its next tick.
    pub dispatch_wake: Arc<Notify>,
    pub scheduler_stats: Arc<SchedulerStats>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Each job's last snapshot, mirrored from the database.
    pub snapshots: Arc<SnapshotCache>,
    /// The ceiling on CodeArts calls, shared by every cycle.
    pub limiter: Arc<RateLimiter>,
    /// When subscribed projects' job lists were last read, and the project of each job found.
    pub discovery: Arc<Discovery>,
    /// The job lists' last totals and failures, for list polling.
    pub lists: Arc<ListMemory>,
    /// The silences in force, mirrored from the database.
    pub silences: Arc<Silences>,
    /// Failure-context fetches in flight, and the cycle's allowance.
    pub context_fetches: Arc<ContextFetches>,
    /// Scrubs text fetched from builds of credentials and the config's own secrets.
    pub redactor: Arc<Redactor>,
    /// Whether this process leads (polls, alerts, sends): always, except under `run`, where
    /// the database's lease decides (docs/ha.md).
    pub lead: Arc<crate::engine::state::Lead>,
}

impl Ctx {
    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            Arc::clone(&self.sinks),
            self.config.delivery.clone(),
            self.config.codearts.link_template.clone(),
            Arc::clone(&self.metrics),
            Arc::new(crate::notify::mention::Mentions::from_config(&self.config)),
            Arc::new(crate::notify::storm::thresholds(&self.config)),
        )
        .with_buttons(crate::notify::buttons::channels_with_buttons(&self.config))
        .with_lead(self.lead.subscribe())
        .with_board(&self.config.http)
    }
}
