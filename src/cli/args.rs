//! The command line's shape (clap): the commands, their arguments and the config file option.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cli::failure::{EXIT_CONFIG, Failure};
use crate::config::Config;
use crate::sim;
use crate::util::secret::Secret;

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
        /// Spread the seeded jobs over this many projects (job i in project i mod N).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        projects: u32,
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
        /// Measure only start-up instead: `run --once` as a process with N pinned jobs, for
        /// each N of --sizes (time to the first poll request and to exit).
        #[arg(long)]
        startup: bool,
        /// Measure only the poll modes instead: `run --once` in `job`, `list` and `auto` mode
        /// over --jobs jobs in --projects projects, the official Python SDK's loop over the
        /// same jobs, and failure-to-chat latency at `poll.max_rps = 10`.
        #[arg(long, conflicts_with = "startup")]
        modes: bool,
        /// Measure only the failure context instead: alert latency with prompt and with
        /// 10-s-slow context APIs, the late edit of the Discord message, calls per failed
        /// build (--samples failed builds per pass).
        #[arg(long, conflicts_with_all = ["startup", "modes"])]
        context: bool,
        /// Measure only the status board instead: `/`, a later page, `/api/v1/jobs`, a job
        /// page and `/api/v1/incidents` over --jobs watched jobs (--samples requests each).
        #[arg(long, conflicts_with_all = ["startup", "modes", "context"])]
        board: bool,
        /// Measure only several replicas on PostgreSQL instead: steady poll cycles on
        /// PostgreSQL against SQLite (--jobs, --repeat), and the failover of two `run`
        /// replicas when the leader is killed mid-burst (--samples, default 10).
        #[arg(long, conflicts_with_all = ["startup", "modes", "context", "board"])]
        ha: bool,
        /// HA pass: the PostgreSQL server, a role that may CREATE DATABASE
        /// [default: $CODEARTS_BOT_TEST_PG].
        #[arg(long, value_name = "URL", requires = "ha")]
        store_url: Option<String>,
        /// Poll modes pass: how many projects the jobs are spread over.
        #[arg(long, default_value_t = 10)]
        projects: usize,
        /// Poll modes pass: failure-to-chat samples (0: skip the latency pass); context pass:
        /// failed builds per pass; board pass: requests per page; HA pass: failovers (10
        /// unless given).
        #[arg(long, default_value_t = 20, default_value_if("ha", "true", "10"))]
        samples: usize,
        /// Start-up pass: the numbers of pinned jobs.
        #[arg(long, value_delimiter = ',', default_values_t = [1_000, 10_000])]
        sizes: Vec<usize>,
        /// Start-up and poll modes passes: warm runs (nothing changed) per size or mode; HA
        /// pass: steady cycles per backend.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Start-up and poll modes passes: the binary to run (default: this one), to measure
        /// another build.
        #[arg(long, value_name = "PATH")]
        exe: Option<PathBuf>,
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
    /// List the actions taken on CodeArts from chat (re-runs, stops), newest first: who, where,
    /// which build, and what CodeArts answered.
    Actions {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this job's actions.
        #[arg(long)]
        job: Option<String>,
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
    /// Database commands.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
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

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a single-machine deployment's SQLite file into an empty PostgreSQL database, all
    /// or nothing (see docs/postgres.md). Stop the bot first.
    Migrate {
        /// The SQLite file: `store.path` of the old config.
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
        /// The empty PostgreSQL database: postgres://user:password@host:5432/db. Never printed.
        #[arg(long, value_name = "URL", value_parser = secret)]
        to: Secret,
    },
}

/// Takes a secret argument as it is. It never fails, on purpose: clap's error for a refused
/// value quotes the value, and a check happens where its error can leave the secret out.
fn secret(raw: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(raw))
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file [default: $CODEARTS_BOT_CONFIG, then config/codearts-bot.toml]
    #[arg(long = "config", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl ConfigArg {
    pub(crate) fn load(&self) -> Result<Config, Failure> {
        let path = Config::resolve_path(self.path.as_deref());
        Config::load(&path).map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))
    }
}
