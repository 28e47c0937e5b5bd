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
use crate::notify::{Sink, dispatcher::Dispatcher};
use crate::poller::{self, SchedulerStats};
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
            .build()
            .context("cannot build the HTTP client for chat services")?;
        let sinks = config
            .channels
            .iter()
            .map(|c| (c.name.clone(), Sink::from_config(c, http.clone())))
            .collect();
        if config.channels.is_empty() {
            warn!("no [[channels]] configured: events are recorded but sent nowhere");
        }
        Ok(Self {
            rules: Arc::new(config.rules.rules()),
            config: Arc::new(config),
            client,
            store,
            sinks: Arc::new(sinks),
            dispatch_wake: Arc::new(Notify::new()),
            scheduler_stats: Arc::new(SchedulerStats::default()),
        })
    }

    /// The channels an event of `job` goes to: the job's channels (or all), keeping only
    /// channels whose `events` filter lets the kind through.
    pub fn route(&self, job: &WatchedJob, event: &Event) -> Vec<String> {
        self.config
            .channels
            .iter()
            .filter(|c| {
                job.channels
                    .as_ref()
                    .is_none_or(|names| names.contains(&c.name))
            })
            .filter(|c| {
                c.events
                    .as_ref()
                    .is_none_or(|kinds| kinds.iter().any(|k| k == event.kind.as_str()))
            })
            .map(|c| c.name.clone())
            .collect()
    }

    pub fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(
            self.store.clone(),
            Arc::clone(&self.sinks),
            self.config.delivery.clone(),
        )
    }
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

/// Runs the poller and the dispatcher until `shutdown` resolves; says which part stopped.
pub async fn run(app: App, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    info!(
        jobs = app.config.jobs.len(),
        channels = app.sinks.len(),
        endpoint = %app.client.base_url(),
        "codearts-bot running"
    );
    app.client.auth().start_background();
    let poller = tokio::spawn(poller::run_scheduled(app.clone(), wait_stop(stop_rx.clone())));
    let dispatcher = app.dispatcher();
    let wake = Arc::clone(&app.dispatch_wake);
    let dispatch = tokio::spawn(async move { dispatcher.run(wake, wait_stop(stop_rx)).await });
    shutdown.await;
    info!("shutting down: finishing the running cycle and in-flight deliveries");
    let _ = stop_tx.send(true);
    let (p, d) = tokio::join!(poller, dispatch);
    p.context("the poller task failed")??;
    d.context("the dispatcher task failed")?;
    app.store.close().await;
    info!("stopped");
    Ok(())
}
