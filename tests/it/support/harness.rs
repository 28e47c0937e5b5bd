//! The harness every bot-level test module shares: a simulator, a capture server and a temp
//! dir together ([`Env`], which a module's own harness wraps with [`wraps_env`]); the bot
//! config's TOML text with the parts all modules have in common ([`BotToml`]), and a Discord bot
//! channel for the serenity path ([`discord_bot_channel`]); the app context started from a
//! config ([`start_bot`]); one poll cycle with its
//! deliveries ([`tick`], [`tick_as_run`]); the HTTP endpoints serving in the background
//! ([`serve`]); the whole `run` loop in the background ([`Running`]); and the built binary run
//! once ([`run_once`]).
//!
//! Everything here binds port 0 and writes only below its own temp dir (or its own PostgreSQL
//! scratch database), and nothing sets the process environment (only `CODEARTS_BOT_TEST_PG`,
//! the PostgreSQL server of the tests, is read from it): all modules run in one process,
//! concurrently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use codearts_bot::app;
use codearts_bot::config::Config;
use codearts_bot::engine::Ctx;
use codearts_bot::engine::poller::{self, CycleReport};
use codearts_bot::sim::{self, SimConfig, SimHandle};

use codearts_bot::store::scratch::ScratchDb;

use super::capture::CaptureServer;

/// The bot binary Cargo built for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_codearts-bot");

/// A simulator on loopback as `config` says.
pub async fn simulator_with(config: SimConfig) -> SimHandle {
    sim::spawn(config)
        .await
        .expect("simulator starts on loopback")
}

/// The id of the simulator's `i`-th seeded job, as text.
pub fn job(i: usize) -> String {
    sim::seeded_job_id(i).to_string()
}

/// What most bot tests stand on: CodeArts (the simulator), a chat service (the capture server)
/// and a private temp dir for the database and config files.
pub struct Env {
    pub sim: SimHandle,
    pub capture: CaptureServer,
    pub dir: tempfile::TempDir,
    /// The store on PostgreSQL instead of `dir`'s SQLite file ([`Env::on_postgres`]).
    pub pg: Option<ScratchDb>,
}

impl Env {
    /// With `jobs` seeded jobs.
    pub async fn start(jobs: usize) -> Self {
        Self::start_with(SimConfig {
            jobs,
            ..SimConfig::default()
        })
        .await
    }

    /// With `jobs` seeded jobs and the store on a SQLite file in both passes of the suite: for
    /// a test that is about SQLite itself, or that counts this process's sockets (which the
    /// PostgreSQL pass's concurrent tests move all the while).
    pub async fn start_on_sqlite(jobs: usize) -> Self {
        Self::on_sqlite(SimConfig {
            jobs,
            ..SimConfig::default()
        })
        .await
    }

    async fn on_sqlite(config: SimConfig) -> Self {
        Self {
            sim: simulator_with(config).await,
            capture: CaptureServer::start().await,
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    /// With `CODEARTS_BOT_IT_STORE=postgres` (the second pass of `scripts/test`), the store
    /// is on PostgreSQL: every test built on `Env::toml()` runs on both backends.
    pub async fn start_with(config: SimConfig) -> Self {
        let env = Self::on_sqlite(config).await;
        match std::env::var("CODEARTS_BOT_IT_STORE").as_deref() {
            Ok("postgres") => match ScratchDb::server() {
                Some(server) => env.on_postgres(&server).await,
                None => panic!(
                    "CODEARTS_BOT_IT_STORE=postgres: {}",
                    codearts_bot::store::scratch::HOW_TO_RUN
                ),
            },
            _ => env,
        }
    }

    /// This env with its store in a new database on the PostgreSQL server `server`.
    pub async fn on_postgres(mut self, server: &str) -> Self {
        self.pg = Some(
            ScratchDb::create(server)
                .await
                .expect("a scratch database on the test server"),
        );
        self
    }

    pub fn job(&self, i: usize) -> String {
        job(i)
    }

    /// Job `job`'s latest build, started at `build` (ms), failed: a transition for the bot.
    pub async fn fail(&self, job: &str, build: i64) {
        self.sim
            .control()
            .put_job(
                job,
                serde_json::json!({"last_build_status": "failed", "last_build_time": build}),
            )
            .await
            .expect("simulator takes the job");
    }

    /// The database path every test bot of this env shares, so a restart finds its state.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("bot.db")
    }

    /// A config pointing at this simulator and database.
    pub fn toml(&self) -> BotToml {
        let toml = BotToml::new(&self.sim, &self.db());
        match &self.pg {
            Some(db) => toml.store_url(db.url()),
            None => toml,
        }
    }
}

/// Makes a module's own harness, a struct with an [`Env`] in field `$field`, usable as that
/// `Env` (`h.sim`, `h.capture`, `h.toml()`), so the module adds only what is its own.
macro_rules! wraps_env {
    ($type:ty, $field:tt) => {
        impl std::ops::Deref for $type {
            type Target = $crate::support::harness::Env;
            fn deref(&self) -> &Self::Target {
                &self.$field
            }
        }

        impl std::ops::DerefMut for $type {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.$field
            }
        }
    };
}
pub(crate) use wraps_env;

/// The TOML text of a bot config. The defaults are what the modules share: the simulator as
/// CodeArts with its static token, `[poll] timeout_secs = 2`, the HTTP endpoint on port 0, no
/// `[delivery]` section, no jobs and no channels. Each setter replaces one section's body
/// (or adds jobs, channels, tables), so a module states only what is specific to it.
#[derive(Clone)]
pub struct BotToml {
    endpoint: String,
    codearts: String,
    auth: String,
    poll: String,
    /// The body of `[store]`.
    store: String,
    http: Option<String>,
    delivery: Option<String>,
    jobs: Vec<String>,
    tables: Vec<String>,
}

impl BotToml {
    /// For the in-process simulator `sim`, with its static token.
    pub fn new(sim: &SimHandle, db: &Path) -> Self {
        Self::at(&sim.base_url(), sim.token(), db)
    }

    /// For CodeArts at `endpoint` with the token `token` (which may be a `${NAME}`).
    pub fn at(endpoint: &str, token: &str, db: &Path) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            codearts: String::new(),
            auth: format!("token = \"{token}\""),
            poll: "timeout_secs = 2".to_owned(),
            store: format!("path = \"{}\"", db.display()),
            http: Some("listen = \"127.0.0.1:0\"".to_owned()),
            delivery: None,
            jobs: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// Lines added to `[codearts]` after region and endpoint.
    pub fn codearts(mut self, lines: &str) -> Self {
        self.codearts = lines.to_owned();
        self
    }

    /// The body of `[codearts.auth]`.
    pub fn auth(mut self, body: &str) -> Self {
        self.auth = body.to_owned();
        self
    }

    /// The body of `[poll]`.
    pub fn poll(mut self, body: &str) -> Self {
        self.poll = body.to_owned();
        self
    }

    /// The store on PostgreSQL at `url` instead of the SQLite file.
    pub fn store_url(mut self, url: &str) -> Self {
        self.store = format!("url = \"{url}\"");
        self
    }

    /// The body of `[http]`, or `None` for no such section (the bot's defaults).
    pub fn http(mut self, body: Option<&str>) -> Self {
        self.http = body.map(str::to_owned);
        self
    }

    /// The body of `[delivery]`.
    pub fn delivery(mut self, body: &str) -> Self {
        self.delivery = Some(body.to_owned());
        self
    }

    /// Watches the simulator's first `n` seeded jobs.
    pub fn jobs(mut self, n: usize) -> Self {
        self.jobs.extend((0..n).map(job));
        self
    }

    /// Watches the job `id`.
    pub fn job(mut self, id: &str) -> Self {
        self.jobs.push(id.to_owned());
        self
    }

    /// A `[[channels]]` entry of type webhook; `lines` adds keys to it.
    pub fn webhook(self, name: &str, url: &str, lines: &str) -> Self {
        self.table(&format!(
            "[[channels]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"{url}\"\n{lines}"
        ))
    }

    /// Any further tables, as written.
    pub fn table(mut self, text: &str) -> Self {
        self.tables.push(text.to_owned());
        self
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "[codearts]\nregion = \"cn-north-4\"\nendpoint = \"{}\"\n{}\n[codearts.auth]\n{}\n\
             [poll]\n{}\n[store]\n{}\n",
            self.endpoint, self.codearts, self.auth, self.poll, self.store
        );
        if let Some(http) = &self.http {
            text += &format!("[http]\n{http}\n");
        }
        if let Some(delivery) = &self.delivery {
            text += &format!("[delivery]\n{delivery}\n");
        }
        for id in &self.jobs {
            text += &format!("[[jobs]]\nid = \"{id}\"\n");
        }
        for table in &self.tables {
            text += table;
            text += "\n";
        }
        text
    }

    /// The config, with no environment variables to substitute.
    pub fn config(&self) -> Config {
        self.config_with_env(&|_| None)
    }

    /// The config, with `${NAME}` substituted from `env` (never the process environment).
    pub fn config_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Config {
        Config::from_toml(&self.text(), "test config", env).expect("test config is valid")
    }

    /// Writes the text to `bot.toml` in `dir` and returns its path, for the binary.
    pub fn write(&self, dir: &Path) -> String {
        let path = dir.join("bot.toml");
        std::fs::write(&path, self.text()).expect("config file written");
        path.display().to_string()
    }
}

/// Replaces the config's channels with one Discord bot channel (a bot token, no webhook) whose
/// Discord API is at `api_base`: the path through serenity's HTTP client.
pub fn discord_bot_channel(config: &mut Config, api_base: &str) {
    config.discord.token = Some(codearts_bot::util::secret::Secret::new(
        "bot-token-0123456789",
    ));
    config.discord.api_base = Some(api_base.to_owned());
    config.channels = vec![
        toml::from_str(
            "name = \"bot\"\ntype = \"discord_bot\"\nchannel_id = \"123456789012345678\"",
        )
        .expect("a valid channel"),
    ];
}

/// The bot's app context as `run` builds it (store open, clients built), without the loop.
pub async fn start_bot(config: Config) -> Ctx {
    app::start(config).await.expect("bot starts")
}

/// One poll cycle and one pass of deliveries.
pub async fn tick(app: &Ctx) -> CycleReport {
    let report = poller::run_cycle(app).await.expect("cycle runs");
    codearts_bot::engine::context::settle(app).await;
    app.dispatcher().drain_due().await.expect("outbox readable");
    report
}

/// A cycle as a tick of `run` does it (blind tracking and its logging included), then the
/// deliveries that are due.
pub async fn tick_as_run(app: &Ctx) -> CycleReport {
    let report = codearts_bot::engine::schedule::cycle_and_log(app)
        .await
        .expect("cycle runs");
    codearts_bot::engine::context::settle(app).await;
    app.dispatcher().drain_due().await.expect("outbox readable");
    report
}

/// The bot's HTTP endpoints serving on a port of their own; they stop when this is dropped.
pub struct Served {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn serve(app: &Ctx) -> Served {
    let (listener, addr) = codearts_bot::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("loopback port 0 binds");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(codearts_bot::server::serve(listener, app.clone(), async {
        let _ = stopped.await;
    }));
    Served { addr, _stop: stop }
}

/// The bot running as `run` runs it (scheduler, dispatcher, HTTP server), in the background.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn start(bot: &Ctx) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app::run(bot.clone(), async {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    /// Asks for shutdown and checks that it finished, within its bound, without an error.
    pub async fn stop(self) {
        self.stop.send(()).expect("run is still running");
        tokio::time::timeout(Duration::from_secs(12), self.task)
            .await
            .expect("shutdown finishes within its bound")
            .expect("the run task did not panic")
            .expect("run returns Ok");
    }
}

/// `codearts-bot run --once --config <config>` off the async runtime (so in-process servers
/// keep answering), with `RUST_LOG` set only for the child when `log` names a level.
pub async fn run_once(config: &str, log: Option<&str>) -> Output {
    let config = config.to_owned();
    let log = log.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--once", "--config", &config]);
        if let Some(log) = log {
            cmd.env("RUST_LOG", log);
        }
        cmd.output().expect("the binary runs")
    })
    .await
    .expect("the binary's runner thread")
}
