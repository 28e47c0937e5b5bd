//! The command line: parses arguments and runs the command. `main.rs` only calls [`main`].
//!
//! Exit codes (also in the README): 0 success; 1 a runtime failure (database, I/O);
//! 2 bad usage or configuration; 3 CodeArts could not be reached or refused our credentials;
//! 4 the job does not exist or is not visible to our credentials (`check`).

mod card;
pub mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::codearts::{self, JobId};
use crate::config::Config;
use crate::engine::Ctx;
use crate::engine::silences::{self, SilenceError};
use crate::{app, bench, sim};

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_CONFIG: u8 = 2;
pub const EXIT_SOURCE: u8 = 3;
pub const EXIT_JOB: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "codearts-bot",
    version,
    about = "Watches Huawei Cloud CodeArts Build jobs and tells chat when something changes"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll the watched jobs on the schedule and deliver alerts (until Ctrl-C or SIGTERM).
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Run one poll cycle, deliver what is due, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Query one job now and print its card (or its JobInfo as JSON).
    Check {
        /// The 32-character job id.
        job_id: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Print the normalised JobInfo as JSON instead of the card.
        #[arg(long)]
        json: bool,
    },
    /// Run the CodeArts Build simulator on loopback (see docs/simulator.md).
    Sim {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Seed this many jobs with deterministic ids.
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        /// Seed a job with this id (repeatable).
        #[arg(long = "job")]
        job_ids: Vec<String>,
        /// The X-Auth-Token the simulator accepts.
        #[arg(long, default_value = sim::DEFAULT_TOKEN)]
        token: String,
        /// An IAM user that may obtain tokens at POST /v3/auth/tokens (repeatable).
        #[arg(long = "iam-user", value_name = "DOMAIN/USER:PASSWORD")]
        iam_users: Vec<sim::IamUser>,
        /// Lifetime of issued IAM tokens, in seconds.
        #[arg(long, default_value_t = 86_400)]
        token_ttl_secs: u64,
        /// Accept SDK-HMAC-SHA256 signatures made with this access key (needs --sk).
        #[arg(long, requires = "sk")]
        ak: Option<String>,
        /// The secret key of --ak.
        #[arg(long, requires = "ak")]
        sk: Option<String>,
    },
    /// Watch a scripted scenario on a local simulator: a build breaks, is fixed, a health
    /// score falls, a job is disabled. Exits by itself.
    Demo,
    /// Measure poll cycles against the loopback ceiling on a local simulator (see
    /// docs/benchmarks.md). Build with --release.
    Bench {
        #[arg(long, default_value_t = 10_000)]
        jobs: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// List recent deliveries from the outbox (newest first).
    Deliveries {
        #[command(flatten)]
        config: ConfigArg,
        /// Only deliveries in this state.
        #[arg(long, value_parser = ["pending", "sent", "failed"])]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Send a sample card to one channel now and report exactly what the platform answered.
    NotifyTest {
        /// The channel's name in the config.
        channel: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stop sending alerts for a job, a project or all for a while (they are still recorded).
    /// A running bot picks the silence up at its next cycle.
    Mute {
        /// A job id, a project id (or project:<id>), or `all`.
        target: String,
        /// How long: 30m, 2h, 1d, 1h30m (at most 30d).
        duration: String,
        #[arg(long)]
        reason: Option<String>,
        /// Who is muting (default: $USER).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// End the mutes on a target now; jobs still broken are summarised to their channels.
    Unmute {
        target: String,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Acknowledge a failing job: no repeat alerts until it recovers (at most 7 days).
    Ack {
        job_id: String,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List the silences in force.
    Silences {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and report every problem with its key.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file [default: $CODEARTS_BOT_CONFIG, then config/codearts-bot.toml]
    #[arg(long = "config", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl ConfigArg {
    fn load(&self) -> Result<Config, Failure> {
        let path = Config::resolve_path(self.path.as_deref());
        Config::load(&path).map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))
    }
}

/// A command's failure: the exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn runtime(e: &anyhow::Error) -> Self {
        Self::new(EXIT_RUNTIME, format!("{e:#}"))
    }
}

/// Sets up logging, runs the command, and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format, &cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn init_tracing(format: LogFormat, command: &Command) {
    use tracing_subscriber::EnvFilter;
    // The demo's output is the messages themselves (it narrates the outage it stages); keep
    // its logs to errors unless RUST_LOG asks for more.
    let default = if matches!(command, Command::Demo | Command::Bench { .. }) {
        "error"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour is for a person at a terminal: a log file or a pipe gets plain text, and so does
    // anyone who sets NO_COLOR (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { config, once } => {
            let config = config.load()?;
            let ctx = app::start(config).await.map_err(|e| Failure::runtime(&e))?;
            if once {
                run_once(&ctx).await
            } else {
                app::run(ctx, shutdown_signal())
                    .await
                    .map_err(|e| Failure::runtime(&e))
            }
        }
        Command::Check {
            job_id,
            config,
            json,
        } => {
            let job = JobId::parse(job_id.trim())
                .map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))?;
            let config = config.load()?;
            check(&config, &job, json).await
        }
        Command::Sim {
            listen,
            jobs,
            job_ids,
            token,
            iam_users,
            token_ttl_secs,
            ak,
            sk,
        } => {
            let job_ids = job_ids
                .iter()
                .map(|raw| {
                    JobId::parse(raw).map_err(|e| Failure::new(EXIT_CONFIG, format!("--job: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            run_sim(sim::SimConfig {
                listen,
                token,
                jobs,
                job_ids,
                iam_users,
                token_ttl: std::time::Duration::from_secs(token_ttl_secs.max(1)),
                aksk: ak.zip(sk),
            })
            .await
        }
        Command::Demo => demo::run().await.map_err(|e| Failure::runtime(&e)),
        Command::Bench { jobs, concurrency } => bench::run(bench::BenchOptions {
            jobs,
            concurrency,
            changed_percent: 10,
        })
        .await
        .map_err(|e| Failure::runtime(&e)),
        Command::Deliveries {
            config,
            status,
            limit,
        } => {
            let config = config.load()?;
            list_deliveries(&config, status.as_deref(), limit).await
        }
        Command::NotifyTest { channel, config } => {
            let config = config.load()?;
            notify_test(&config, &channel).await
        }
        Command::Mute {
            target,
            duration,
            reason,
            by,
            config,
        } => {
            let ctx = start_offline(config).await?;
            let by = who(by);
            silence_outcome(silences::mute(&ctx, &target, &duration, reason.as_deref(), &by).await)
        }
        Command::Unmute { target, by, config } => {
            let ctx = start_offline(config).await?;
            silence_outcome(silences::unmute(&ctx, &target, &who(by)).await)
        }
        Command::Ack { job_id, by, config } => {
            let ctx = start_offline(config).await?;
            silence_outcome(silences::ack(&ctx, &job_id, &who(by)).await)
        }
        Command::Silences { config } => {
            let ctx = start_offline(config).await?;
            let open = ctx
                .store
                .open_silences()
                .await
                .map_err(|e| Failure::runtime(&e.into()))?;
            if open.is_empty() {
                println!("no silences in force");
            }
            for s in open {
                println!(
                    "#{:<4} {:<4} {:<48} until {}  by {}{}",
                    s.id,
                    s.kind.as_str(),
                    s.scope.describe(),
                    s.expires_at.format("%Y-%m-%d %H:%M UTC"),
                    s.created_by,
                    if s.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", s.reason)
                    }
                );
            }
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            let path = Config::resolve_path(config.path.as_deref());
            let loaded = config.load()?;
            println!(
                "{}: OK ({} jobs, {} channels, endpoint {}, schedule {:?})",
                path.display(),
                loaded.jobs.len(),
                loaded.channels.len(),
                loaded.endpoint(),
                loaded.poll.schedule
            );
            println!("\n# The configuration in effect (defaults filled in, secrets masked):");
            print!("{}", loaded.effective_toml());
            Ok(())
        }
    }
}

/// The ctx for a command that only touches the database (no polling, no network).
async fn start_offline(config: ConfigArg) -> Result<Ctx, Failure> {
    let config = config.load()?;
    app::start(config).await.map_err(|e| Failure::runtime(&e))
}

/// Who runs a CLI command, as silences record it.
fn who(by: Option<String>) -> String {
    let name = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "someone".to_owned());
    format!("cli:{}", crate::util::text::truncate_chars(name.trim(), 64))
}

/// Prints what a silence command did; a refusal (bad target, duration, id) is a usage error.
fn silence_outcome(result: Result<String, SilenceError>) -> Result<(), Failure> {
    match result {
        Ok(done) => {
            println!("{done}");
            Ok(())
        }
        Err(SilenceError::Refused(why)) => Err(Failure::new(EXIT_CONFIG, why)),
        Err(e @ SilenceError::Store(_)) => Err(Failure::new(EXIT_RUNTIME, e.to_string())),
    }
}

async fn run_once(ctx: &Ctx) -> Result<(), Failure> {
    let report = crate::engine::poller::run_cycle(ctx)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, format!("the poll cycle could not run: {e}")))?;
    // Blind tracking counts cycles, so `run --once` from an external scheduler gets it too.
    crate::engine::schedule::after_cycle(ctx, &report).await;
    let delivered =
        ctx.dispatcher().drain_due().await.map_err(|e| {
            Failure::new(EXIT_RUNTIME, format!("the outbox could not be read: {e}"))
        })?;
    let counts = ctx
        .store
        .outbox_counts()
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    eprintln!(
        "cycle: {} jobs, {} ok, {} not found, {} forbidden, {} failed polls, {} events; \
         delivered {}, retrying {}, failed {}; outbox pending {}",
        report.jobs,
        report.ok,
        report.not_found,
        report.forbidden,
        report.failed_total(),
        report.events,
        delivered.sent,
        delivered.retrying,
        delivered.failed,
        counts.pending
    );
    ctx.store.close().await;
    if report.source_unreachable() {
        let kinds: Vec<String> = report
            .failed
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        return Err(Failure::new(
            EXIT_SOURCE,
            format!(
                "CodeArts could not be polled for any of the {} jobs ({}); see the log above",
                report.jobs,
                kinds.join(", ")
            ),
        ));
    }
    Ok(())
}

async fn list_deliveries(config: &Config, status: Option<&str>, limit: u32) -> Result<(), Failure> {
    let store = crate::store::Store::open(&config.store.path)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    let rows = store
        .deliveries(status, limit)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    let counts = store
        .outbox_counts()
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    println!(
        "outbox: {} pending, {} sent, {} failed",
        counts.pending, counts.sent, counts.failed
    );
    for row in rows {
        println!(
            "{}  {:<7} {:<16} try {:<3} {:<20} {}  {}",
            row.created_at.format("%Y-%m-%d %H:%M:%S"),
            row.status,
            row.channel,
            row.attempts,
            row.kind,
            row.id,
            row.summary
        );
        if let Some(error) = row.last_error {
            println!("{:>21}last error: {error}", "");
        }
    }
    store.close().await;
    Ok(())
}

/// The card `notify-test` sends: plainly a test, with every field a real alert has.
fn sample_event() -> crate::domain::event::Event {
    let now = chrono::Utc::now();
    let info = |status: &str| crate::codearts::JobInfo {
        id: Some("0123456789abcdef0123456789abcdef".to_owned()),
        job_name: Some("codearts-bot test card".to_owned()),
        last_build_status: Some(status.to_owned()),
        last_build_time: Some(now.timestamp_millis()),
        build_time: Some("42.5".to_owned()),
        health_score: Some(90),
        disabled: Some(false),
        ..crate::codearts::JobInfo::default()
    };
    crate::domain::event::Event {
        kind: crate::domain::event::EventKind::BuildFailed,
        job_id: "0123456789abcdef0123456789abcdef".to_owned(),
        job_name: "codearts-bot test card".to_owned(),
        detected_at: now,
        previous: Some(info("success")),
        current: Some(info("failed")),
        summary:
            "Test card from codearts-bot notify-test: this channel is reachable (no build failed)"
                .to_owned(),
    }
}

async fn notify_test(config: &Config, name: &str) -> Result<(), Failure> {
    let Some(channel) = config.channels.iter().find(|c| c.name == name) else {
        let known: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        return Err(Failure::new(
            EXIT_CONFIG,
            format!(
                "no channel is named {name:?} (configured: {})",
                known.join(", ")
            ),
        ));
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(config.delivery.timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    let discord = config.discord_http();
    let sink = crate::notify::Sink::from_config(channel, http, discord.as_ref());
    let event = sample_event();
    let id = format!("dlv_test_{}", uuid::Uuid::new_v4().simple());
    let out = crate::notify::Outgoing {
        delivery_id: &id,
        event: &event,
        link: None,
    };
    match sink.send(&out).await {
        Ok(()) => {
            println!(
                "{name} ({}): accepted the sample card (delivery id {id})",
                sink.kind()
            );
            Ok(())
        }
        Err(e) => Err(Failure::new(
            EXIT_SOURCE,
            format!("{name} ({}): {}", sink.kind(), e),
        )),
    }
}

async fn check(config: &Config, job: &JobId, json: bool) -> Result<(), Failure> {
    let client = config
        .codearts_client()
        .map_err(|e| Failure::new(EXIT_CONFIG, format!("{e:#}")))?;
    match client.job_info(job).await {
        Ok(info) => {
            if json {
                let text = serde_json::to_string_pretty(&info)
                    .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
                println!("{text}");
            } else {
                print!("{}", card::job_card_text(job, &info));
            }
            Ok(())
        }
        Err(e @ (codearts::Error::NotFound(_) | codearts::Error::Forbidden(_))) => {
            Err(Failure::new(EXIT_JOB, format!("job {job}: {e}")))
        }
        Err(e) => Err(Failure::new(
            EXIT_SOURCE,
            format!("job {job}: CodeArts at {} answered: {e}", client.base_url()),
        )),
    }
}

async fn run_sim(config: sim::SimConfig) -> Result<(), Failure> {
    let listen = config.listen;
    let seeded = config.jobs + config.job_ids.len();
    let users = config.iam_users.len();
    let aksk = config.aksk.is_some();
    let handle = sim::spawn(config)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, format!("cannot listen on {listen}: {e}")))?;
    // The first line is machine-readable on purpose: scripts read the port from it. A script
    // that reads only that line and closes the pipe must not kill the simulator, so the banner
    // is written as one piece and a closed stdout is not an error.
    let banner = format!(
        "codearts-bot sim listening on {url}\ntoken: {token} (send it as X-Auth-Token)\n\
         {seeded} jobs seeded; {users} IAM users; AK/SK {aksk}; control API under {url}/_sim/ \
         (see docs/simulator.md)\n",
        url = handle.base_url(),
        token = handle.token(),
        aksk = if aksk { "on" } else { "off" },
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    shutdown_signal().await;
    handle.stop().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
