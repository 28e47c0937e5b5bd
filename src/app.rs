//! The composition root: builds the shared context from the config ([`start`]) and runs the
//! services on it ([`run`]): the HTTP server, the poll scheduler, the dispatcher, the Discord
//! gateway, scheduled digests and retention, then stops them in order. Only the entry points (`cli`, `bench`)
//! use it; nothing below imports it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::chat::{Chat, gateway};
use crate::codearts;
use crate::config::Config;
use crate::domain::lease::Role;
use crate::domain::silence::Silences;
use crate::engine::leadership;
use crate::engine::state::{Discovery, Lead, SchedulerStats, SnapshotCache};
use crate::engine::{Ctx, digest, retention, schedule};
use crate::notify::Sink;
use crate::server;
use crate::store::Store;
use crate::util::health::Health;
use crate::util::metrics::Metrics;
use crate::util::ratelimit::RateLimiter;

/// Builds the client and the sinks, opens the database and makes the config's jobs the
/// pinned part of the watch list.
pub async fn start(config: Config) -> anyhow::Result<Ctx> {
    start_with(config, false).await
}

/// [`start`] for a process that is about to poll (`run`, `run --once`): the stored snapshots
/// start loading as soon as the database is open, beside the watch-list sync, since the first
/// cycle needs them all (the largest part of a restart's work before its first request).
pub async fn start_polling(config: Config) -> anyhow::Result<Ctx> {
    start_with(config, true).await
}

async fn start_with(config: Config, prefetch_snapshots: bool) -> anyhow::Result<Ctx> {
    let client = config.codearts_client()?;
    let location = config.store.location();
    let store = Store::connect(&location)
        .await
        .with_context(|| format!("store {}", location.shown()))?;
    let snapshots = Arc::new(SnapshotCache::default());
    if prefetch_snapshots {
        let (snapshots, store) = (Arc::clone(&snapshots), store.clone());
        // A failed load is not lost: the cycle loads again and reports the error.
        tokio::spawn(async move { snapshots.ensure_loaded(&store).await });
    }
    let config_jobs: Vec<_> = config
        .jobs
        .iter()
        .filter_map(|j| {
            codearts::JobId::parse(&j.id)
                .ok()
                .map(|id| (id, j.channels.clone()))
        })
        .collect();
    store
        .sync_config_jobs(&config_jobs)
        .await
        .context("cannot record the watched jobs")?;
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(config.delivery.timeout_secs))
        .user_agent(concat!("codearts-bot/", env!("CARGO_PKG_VERSION")))
        // A redirect would carry the message (and a signature) to another host.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the HTTP client for chat services")?;
    let discord = config.discord_http();
    let sinks = config
        .channels
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                Sink::from_config(c, http.clone(), discord.as_ref()),
            )
        })
        .collect();
    if config.channels.is_empty() {
        warn!("no [[channels]] configured: events are recorded but sent nowhere");
    }
    let interval = crate::config::schedule_interval(&config.poll.schedule);
    let max_rps = config.poll.max_rps;
    if let Some(rps) = max_rps {
        let needed = config.jobs.len() as f64 / rps;
        if needed > interval.as_secs_f64() {
            warn!(
                jobs = config.jobs.len(),
                max_rps = rps,
                cycle_secs = needed,
                interval_secs = interval.as_secs(),
                "a poll cycle cannot fit in the schedule at poll.max_rps: ticks will be skipped; raise poll.max_rps or lengthen poll.schedule"
            );
        }
    }
    let redactor = crate::util::redact::Redactor::new(config.secrets());
    Ok(Ctx {
        rules: Arc::new(config.rules.rules()),
        config: Arc::new(config),
        client,
        store,
        sinks: Arc::new(sinks),
        dispatch_wake: Arc::new(Notify::new()),
        scheduler_stats: Arc::new(SchedulerStats::default()),
        metrics: Arc::new(Metrics::new()),
        health: Arc::new(Health::new(interval)),
        snapshots,
        limiter: Arc::new(RateLimiter::new(max_rps)),
        discovery: Arc::new(Discovery::default()),
        lists: Arc::default(),
        silences: Arc::new(Silences::default()),
        context_fetches: Arc::default(),
        redactor: Arc::new(redactor),
        lead: crate::engine::state::always(),
    })
}

/// Runs the HTTP server on every replica and, while this process holds the leader's lease
/// (docs/ha.md), the poller, the dispatcher, the Discord gateway, digests and retention, until
/// `shutdown` resolves. Then it stops them in order: no new cycle starts, the running cycle and
/// in-flight deliveries get `http.shutdown_grace_secs` to finish, whatever is left stays
/// queued, and the lease is given up so another replica takes over at once.
pub async fn run(
    mut ctx: Ctx,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let listen = ctx
        .config
        .http
        .listen_addr()
        .map_err(|e| anyhow::anyhow!("http.listen: {e}"))?;
    let (listener, bound) = server::bind(listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {listen}"))?;
    // Under `run` the database's lease decides who leads.
    ctx.lead = Arc::new(Lead::new(ctx.config.ha.replica.as_deref()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    info!(
        jobs = ctx.config.jobs.len(),
        channels = ctx.sinks.len(),
        endpoint = %ctx.client.base_url(),
        auth = ctx.client.auth().method(),
        http = %bound,
        holder = %ctx.lead.holder,
        "codearts-bot running"
    );
    ctx.client.auth().start_background();
    let http = tokio::spawn(server::serve(
        listener,
        ctx.clone(),
        stopped(stop_rx.clone()),
    ));
    // The first attempt before anything else: a lone replica leads from its first second.
    let led_at_start = leadership::attempt(&ctx).await.token().is_some();
    if !led_at_start {
        info!("another replica leads: this one serves HTTP and takes over if the leader goes");
    }
    let (lead_stop_tx, lead_stop_rx) = tokio::sync::watch::channel(false);
    let leading = tokio::spawn(leadership::run(ctx.clone(), stopped(lead_stop_rx)));
    let terms = tokio::spawn(terms(ctx.clone(), stop_rx, led_at_start));

    tokio::pin!(shutdown);
    let mut http = http;
    tokio::select! {
        () = &mut shutdown => info!("shutdown requested: finishing the running cycle and in-flight deliveries"),
        result = &mut http => {
            warn!(?result, "the HTTP server stopped; shutting down");
        }
    }
    let _ = stop_tx.send(true);
    let ended = terms.await;
    // Only now, with nothing of this replica's term running, may another replica lead.
    let _ = lead_stop_tx.send(true);
    let _ = leading.await;
    if !http.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut http).await;
        http.abort();
    }
    ctx.store.close().await;
    info!("stopped");
    ended.context("the leader's services failed")?
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Runs the leader's services for each term this replica leads, until `stop`. A term that
/// ends (the lease lost, the database gone) stops its services at once; `stop` gives the
/// running cycle and in-flight deliveries the grace period.
async fn terms(
    ctx: Ctx,
    mut stop: tokio::sync::watch::Receiver<bool>,
    led_at_start: bool,
) -> anyhow::Result<()> {
    let mut roles = ctx.lead.subscribe();
    // A replica that led from its first attempt keeps the snapshots it began loading at
    // start: the lease was free then, and a previous leader stops writing a third of a lease
    // before its lease ends, longer than a start takes. Any later term reloads them.
    let mut fresh = led_at_start;
    loop {
        while !ctx.lead.may_act() {
            if *stop.borrow() {
                return Ok(());
            }
            tokio::select! {
                _ = roles.changed() => {}
                _ = stop.changed() => {}
            }
        }
        // The previous leader wrote snapshots this replica never saw; and its last cycle may
        // be a lease and more ago, so this term polls at once.
        let took_over = !std::mem::take(&mut fresh);
        if took_over {
            ctx.snapshots.forget();
        }
        let term = Term::start(&ctx, took_over);
        while let Role::Leader { until, .. } = ctx.lead.role() {
            tokio::select! {
                _ = roles.changed() => {}
                () = tokio::time::sleep_until(until.into()) => {}
                _ = stop.changed() => {
                    let grace = Duration::from_secs(ctx.config.http.shutdown_grace_secs);
                    return term.stop(grace).await;
                }
            }
            if !ctx.lead.may_act() {
                break;
            }
        }
        warn!("the term ended: the leader's services stop now");
        term.abort();
    }
}

/// The services only the leader runs, for one term.
struct Term {
    stop: tokio::sync::watch::Sender<bool>,
    poller: tokio::task::JoinHandle<anyhow::Result<()>>,
    dispatch: tokio::task::JoinHandle<()>,
    gateway: Option<tokio::task::JoinHandle<()>>,
    digests: tokio::task::JoinHandle<()>,
    retention: tokio::task::JoinHandle<()>,
}

impl Term {
    fn start(ctx: &Ctx, first_cycle_now: bool) -> Self {
        // The term's services write through a store fenced with the term's token: whatever
        // outlives the term (a cycle stuck on a database that went away) writes nothing.
        let mut ctx = ctx.clone();
        if let Some(token) = ctx.lead.role().lease_token() {
            ctx.store = ctx.store.fenced(token);
        }
        let ctx = &ctx;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let poller = tokio::spawn(schedule::run_scheduled(
            ctx.clone(),
            first_cycle_now,
            stopped(stop_rx.clone()),
        ));
        let dispatcher = ctx.dispatcher();
        let wake = Arc::clone(&ctx.dispatch_wake);
        let dispatch_rx = stop_rx.clone();
        let dispatch = tokio::spawn(async move { dispatcher.run(wake, dispatch_rx).await });
        let gateway = (ctx.config.discord.token.is_some() && ctx.config.discord.gateway)
            .then(|| tokio::spawn(gateway::run(Chat::new(ctx.clone()), stop_rx.clone())));
        let digests = tokio::spawn(digest::run(ctx.clone(), stopped(stop_rx.clone())));
        let retention = tokio::spawn(retention::run(ctx.clone(), stopped(stop_rx)));
        Self {
            stop,
            poller,
            dispatch,
            gateway,
            digests,
            retention,
        }
    }

    /// Stops the term's services: no new cycle, the running cycle and in-flight deliveries get
    /// `grace`, the rest is cut.
    async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        let (p, d) = tokio::join!(
            tokio::time::timeout_at(deadline, self.poller),
            tokio::time::timeout_at(deadline, self.dispatch),
        );
        let polled = match p {
            Ok(joined) => joined.context("the poller task failed").and_then(|r| r),
            Err(_) => {
                warn!(
                    "the running poll cycle did not finish within the grace period; its unrecorded polls are simply made again next start"
                );
                Ok(())
            }
        };
        if d.is_err() {
            warn!(
                "an in-flight delivery did not finish within the grace period; it stays queued and is sent at the next start"
            );
        }
        self.retention.abort();
        // A digest being queued commits or not as a whole; its instant is claimed with it.
        self.digests.abort();
        if let Some(gateway) = self.gateway
            && tokio::time::timeout(Duration::from_secs(2), gateway)
                .await
                .is_err()
        {
            warn!("the Discord gateway did not close within 2 s");
        }
        polled
    }

    /// Cuts the term's services at once: another replica may lead soon, and nothing of this
    /// term may run after it could.
    fn abort(self) {
        let _ = self.stop.send(true);
        // The poller is not aborted but told to stop: dropping its scheduler unstopped would
        // leave the scheduler's own tasks polling. A cycle still running finishes on its own,
        // and its writes are refused by the fence.
        drop(self.poller);
        self.dispatch.abort();
        if let Some(gateway) = self.gateway {
            gateway.abort();
        }
        self.digests.abort();
        self.retention.abort();
    }
}
