//! The application: everything built once at start from the config (client, store, sinks,
//! rules) and shared by the poller, the dispatcher and the commands.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;
use tracing::{info, warn};

use std::time::Duration;

use crate::codearts::{
    self,
    auth::{AkSk, AkSkSettings, Auth, IamPassword, PasswordSettings, ProjectScope},
};
use crate::config::AuthMethod;
use crate::config::Config;
use crate::detect::{Event, Rules};
use crate::discover::Discovery;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::notify::{Sink, dispatcher::Dispatcher};
use crate::poller::{self, SchedulerStats, SnapshotCache};
use crate::ratelimit::RateLimiter;
use crate::server;
use crate::silence::Silences;
use crate::store::{Store, WatchedJob};

/// The state built at start. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct App {
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
    /// When subscribed projects' job lists were last read.
    pub discovery: Arc<Discovery>,
    /// The silences in force, mirrored from the database.
    pub silences: Arc<Silences>,
}

impl App {
    /// Builds the client and the sinks, opens the database and makes the config's jobs the
    /// pinned part of the watch list.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let client = client_for(&config)?;
        let store = Store::open(&config.store.path)
            .await
            .with_context(|| format!("store.path {}", config.store.path.display()))?;
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
        let discord = discord_http(&config);
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
        Ok(Self {
            rules: Arc::new(config.rules.rules()),
            config: Arc::new(config),
            client,
            store,
            sinks: Arc::new(sinks),
            dispatch_wake: Arc::new(Notify::new()),
            scheduler_stats: Arc::new(SchedulerStats::default()),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new(interval)),
            snapshots: Arc::new(SnapshotCache::default()),
            limiter: Arc::new(RateLimiter::new(max_rps)),
            discovery: Arc::new(Discovery::default()),
            silences: Arc::new(Silences::default()),
        })
    }

    /// The channels an event of `job` goes to: the job's channels (or all), keeping only the
    /// channels whose filters let it through (`events`, `min_severity`, `projects`).
    pub fn route(&self, job: &WatchedJob, event: &Event) -> Vec<String> {
        let project = event
            .current
            .as_ref()
            .or(event.previous.as_ref())
            .and_then(|info| info.project_id.as_deref());
        self.config
            .channels
            .iter()
            .filter(|c| {
                job.channels
                    .as_ref()
                    .is_none_or(|names| names.contains(&c.name))
            })
            .filter(|c| takes_kind(c, event))
            .filter(|c| {
                c.projects
                    .as_ref()
                    .is_none_or(|projects| project.is_some_and(|p| projects.iter().any(|x| x == p)))
            })
            .map(|c| c.name.clone())
            .collect()
    }

    /// The channels a source event (`source_unreachable`, `source_recovered`) goes to: those
    /// that opted in with `source_alerts = true` and whose `events`/`min_severity` let it pass.
    pub fn route_source(&self, event: &Event) -> Vec<String> {
        self.config
            .channels
            .iter()
            .filter(|c| c.source_alerts)
            .filter(|c| takes_kind(c, event))
            .map(|c| c.name.clone())
            .collect()
    }

    /// [`App::route`], then the silences and maintenance windows in force at `now`: a
    /// suppressed event goes nowhere, and the reason is stored with it. A flip of a `flaky`
    /// job skips the channels that take the daily digest instead.
    pub fn route_now(
        &self,
        job: &WatchedJob,
        event: &Event,
        now: chrono::DateTime<chrono::Utc>,
        flaky: bool,
    ) -> (Vec<String>, Option<String>) {
        let mut channels = self.route(job, event);
        if let Some(reason) = self.suppression(event, now) {
            return (Vec::new(), Some(reason));
        }
        if flaky && event.kind.is_flip() {
            let before = channels.len();
            channels.retain(|name| {
                !self
                    .config
                    .channels
                    .iter()
                    .any(|c| c.name == *name && c.flaky_digest)
            });
            if channels.is_empty() && before > 0 {
                return (channels, Some("flaky job: in the daily digest".to_owned()));
            }
        }
        (channels, None)
    }

    /// Why an event must not be sent right now, if it must not.
    pub fn suppression(&self, event: &Event, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        if let Some(window) = self.config.maintenance.iter().find(|w| w.contains(now)) {
            return Some(format!("maintenance window {}", window.name));
        }
        self.silences.suppressing(event, now)
    }

    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            Arc::clone(&self.sinks),
            self.config.delivery.clone(),
            self.config.codearts.link_template.clone(),
            Arc::clone(&self.metrics),
        )
    }
}

/// Whether a channel's `events` and `min_severity` let this event's kind through.
fn takes_kind(channel: &crate::config::ChannelConfig, event: &Event) -> bool {
    channel
        .events
        .as_ref()
        .is_none_or(|kinds| kinds.iter().any(|k| k == event.kind.as_str()))
        && channel
            .min_severity
            .is_none_or(|min| event.kind.severity() >= min.severity())
}

/// serenity's HTTP client for the bot, when `[discord] token` is set: one per process, shared
/// by `discord_bot` channels and the chat commands. `api_base` points it elsewhere (tests).
pub fn discord_http(config: &Config) -> Option<Arc<serenity::http::Http>> {
    discord_http_builder(config).map(|b| Arc::new(b.build()))
}

/// The builder behind [`discord_http`] (the gateway builds its own client from it).
pub fn discord_http_builder(config: &Config) -> Option<serenity::http::HttpBuilder> {
    let token = config.discord.token.as_ref()?;
    let mut builder = serenity::http::HttpBuilder::new(token.expose())
        .default_allowed_mentions(serenity::builder::CreateAllowedMentions::new());
    if let Some(base) = &config.discord.api_base {
        // serenity 0.12.5's ratelimiter ignores the proxy and always calls discord.com, so
        // with another base the ratelimiter is off: our dispatcher's pacing and 429 handling
        // still apply.
        builder = builder
            .proxy(base.trim_end_matches('/'))
            .ratelimiter_disabled(true);
    }
    Some(builder)
}

/// The CodeArts client the config describes.
pub fn client_for(config: &Config) -> anyhow::Result<codearts::Client> {
    let auth = auth_for(config)?;
    codearts::Client::new(&config.endpoint(), auth, config.poll.timeout())
        .context("cannot build the CodeArts client")
}

/// The authentication method the (validated) config describes.
pub fn auth_for(config: &Config) -> anyhow::Result<Auth> {
    let a = &config.codearts.auth;
    let missing = |key: &str| anyhow::anyhow!("codearts.auth.{key} is required");
    Ok(match a.effective_method() {
        None => anyhow::bail!("codearts.auth: no method configured"),
        Some(AuthMethod::Token) => Auth::Token(a.token.clone().ok_or_else(|| missing("token"))?),
        Some(AuthMethod::Password) => {
            let scope = match (&a.project_id, &a.project_name) {
                (Some(id), _) => ProjectScope::Id(id.clone()),
                (None, Some(name)) => ProjectScope::Name(name.clone()),
                (None, None) => ProjectScope::Name(config.codearts.region.clone()),
            };
            Auth::Password(IamPassword::new(PasswordSettings {
                iam_endpoint: a.iam_endpoint(&config.codearts.region),
                domain: a.domain.clone().ok_or_else(|| missing("domain"))?,
                user: a.user.clone().ok_or_else(|| missing("user"))?,
                password: a.password.clone().ok_or_else(|| missing("password"))?,
                scope,
                refresh_margin: Duration::from_secs(a.refresh_margin_secs.unwrap_or(3600)),
                timeout: config.poll.timeout(),
            })?)
        }
        Some(AuthMethod::Aksk) => Auth::AkSk(AkSk::new(AkSkSettings {
            ak: a.ak.clone().ok_or_else(|| missing("ak"))?,
            sk: a.sk.clone().ok_or_else(|| missing("sk"))?,
            project_id: a.project_id.clone().ok_or_else(|| missing("project_id"))?,
            security_token: a.security_token.clone(),
        })),
    })
}

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Runs the HTTP server, the poller, the dispatcher and retention until `shutdown` resolves,
/// then stops them in order: no new cycle starts, the running cycle and in-flight deliveries get
/// `http.shutdown_grace_secs` to finish, whatever is left stays queued for the next start.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let listen = app
        .config
        .http
        .listen_addr()
        .map_err(|e| anyhow::anyhow!("http.listen: {e}"))?;
    let (listener, bound) = server::bind(listen)
        .await
        .with_context(|| format!("http.listen: cannot listen on {listen}"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    info!(
        jobs = app.config.jobs.len(),
        channels = app.sinks.len(),
        endpoint = %app.client.base_url(),
        auth = app.client.auth().method(),
        http = %bound,
        "codearts-bot running"
    );
    app.client.auth().start_background();
    let http = tokio::spawn(server::serve(
        listener,
        app.clone(),
        stopped(stop_rx.clone()),
    ));
    let poller = tokio::spawn(poller::run_scheduled(app.clone(), stopped(stop_rx.clone())));
    let dispatcher = app.dispatcher();
    let wake = Arc::clone(&app.dispatch_wake);
    let dispatch_rx = stop_rx.clone();
    let dispatch = tokio::spawn(async move { dispatcher.run(wake, dispatch_rx).await });
    let gateway = (app.config.discord.token.is_some() && app.config.discord.gateway).then(|| {
        tokio::spawn(crate::chat::gateway::run(
            crate::chat::Chat::new(app.clone()),
            stop_rx.clone(),
        ))
    });
    let retention = tokio::spawn(retention_loop(app.clone(), stopped(stop_rx)));

    tokio::pin!(shutdown);
    let mut http = http;
    tokio::select! {
        () = &mut shutdown => info!("shutdown requested: finishing the running cycle and in-flight deliveries"),
        result = &mut http => {
            warn!(?result, "the HTTP server stopped; shutting down");
        }
    }
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(app.config.http.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    let (p, d) = tokio::join!(
        tokio::time::timeout_at(deadline, poller),
        tokio::time::timeout_at(deadline, dispatch),
    );
    match p {
        Ok(joined) => joined.context("the poller task failed")??,
        Err(_) => warn!(
            "the running poll cycle did not finish within the grace period; its unrecorded polls are simply made again next start"
        ),
    }
    if d.is_err() {
        warn!(
            "an in-flight delivery did not finish within the grace period; it stays queued and is sent at the next start"
        );
    }
    retention.abort();
    if let Some(gateway) = gateway
        && tokio::time::timeout(Duration::from_secs(2), gateway)
            .await
            .is_err()
    {
        warn!("the Discord gateway did not close within 2 s");
    }
    if !http.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut http).await;
        http.abort();
    }
    app.store.close().await;
    info!("stopped");
    Ok(())
}

/// Prunes old rows once at start and then every hour, until shutdown.
async fn retention_loop(app: App, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let days = i64::from(app.config.store.retention_days);
        let before = chrono::Utc::now() - chrono::Duration::days(days);
        match app.store.prune(before, 500).await {
            Ok(p) if p.history + p.deliveries + p.events > 0 => info!(
                history = p.history,
                deliveries = p.deliveries,
                events = p.events,
                retention_days = days,
                "pruned old rows"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "retention pass failed; will try again"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}
