//! The command line: parses arguments and runs the command. `main.rs` only calls [`main`].
//!
//! Exit codes (also in the README): 0 success; 1 a runtime failure (database, I/O);
//! 2 bad usage or configuration; 3 CodeArts could not be reached or refused our credentials;
//! 4 the job does not exist or is not visible to our credentials (`check`).

mod args;
mod card;
mod commands;
pub mod demo;
mod failure;
mod migrate;

use std::process::ExitCode;

use clap::Parser;

use crate::codearts::JobId;
use crate::config::Config;
use crate::engine::silences;
use crate::{app, bench, sim};

pub use args::{Cli, Command, ConfigArg, ConfigCommand, LogFormat, StoreCommand};
use commands::{
    check, list_actions, list_deliveries, notify_test, run_once, run_sim, shutdown_signal,
    silence_outcome, start_offline, who,
};
pub use failure::{EXIT_CONFIG, EXIT_JOB, EXIT_RUNTIME, EXIT_SOURCE, Failure};

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
            let ctx = app::start_polling(config)
                .await
                .map_err(|e| Failure::runtime(&e))?;
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
            projects,
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
                projects: projects as usize,
                job_ids,
                iam_users,
                token_ttl: std::time::Duration::from_secs(token_ttl_secs.max(1)),
                aksk: ak.zip(sk),
            })
            .await
        }
        Command::Demo => demo::run().await.map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            ha: true,
            store_url,
            jobs,
            concurrency,
            repeat,
            samples,
            ..
        } => bench::ha::run(bench::ha::HaOptions {
            server: store_url,
            jobs,
            concurrency,
            repeat,
            samples,
        })
        .await
        .map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            board: true,
            jobs,
            samples,
            ..
        } => bench::board::run(jobs, samples)
            .await
            .map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            context: true,
            samples,
            ..
        } => bench::context::run(samples)
            .await
            .map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            startup: true,
            sizes,
            repeat,
            exe,
            ..
        } => bench::startup::run(&sizes, repeat, exe)
            .await
            .map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            modes: true,
            jobs,
            projects,
            repeat,
            samples,
            exe,
            ..
        } => bench::modes::run(bench::modes::ModesOptions {
            jobs,
            projects,
            repeat,
            samples,
            exe,
        })
        .await
        .map_err(|e| Failure::runtime(&e)),
        Command::Bench {
            jobs, concurrency, ..
        } => bench::run(bench::BenchOptions {
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
        Command::Actions { config, job, limit } => {
            let config = config.load()?;
            list_actions(&config, job.as_deref(), limit).await
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
        Command::Store {
            command: StoreCommand::Migrate { from, to },
        } => migrate::run(&from, &to).await,
    }
}
