//! The commands that are more than a call into the library: `run --once`, the silence
//! commands' output, `deliveries`, `notify test`, `check` and `sim`.

use crate::cli::args::ConfigArg;
use crate::cli::card;
use crate::cli::failure::{EXIT_CONFIG, EXIT_JOB, EXIT_RUNTIME, EXIT_SOURCE, Failure};
use crate::codearts::{self, JobId};
use crate::config::Config;
use crate::engine::Ctx;
use crate::engine::silences::SilenceError;
use crate::{app, sim};

/// The ctx for a command that only touches the database (no polling, no network).
pub(super) async fn start_offline(config: ConfigArg) -> Result<Ctx, Failure> {
    let config = config.load()?;
    app::start(config).await.map_err(|e| Failure::runtime(&e))
}

/// Who runs a CLI command, as silences record it.
pub(super) fn who(by: Option<String>) -> String {
    let name = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "someone".to_owned());
    format!("cli:{}", crate::util::text::truncate_chars(name.trim(), 64))
}

/// Prints what a silence command did; a refusal (bad target, duration, id) is a usage error.
pub(super) fn silence_outcome(result: Result<String, SilenceError>) -> Result<(), Failure> {
    match result {
        Ok(done) => {
            println!("{done}");
            Ok(())
        }
        Err(SilenceError::Refused(why)) => Err(Failure::new(EXIT_CONFIG, why)),
        Err(e @ SilenceError::Store(_)) => Err(Failure::new(EXIT_RUNTIME, e.to_string())),
    }
}

pub(super) async fn run_once(ctx: &Ctx) -> Result<(), Failure> {
    let report = crate::engine::poller::run_cycle(ctx)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, format!("the poll cycle could not run: {e}")))?;
    // Blind tracking counts cycles, so `run --once` from an external scheduler gets it too.
    crate::engine::schedule::after_cycle(ctx, &report).await;
    // A digest instant that passed since the last run (within the hour) goes out with it.
    if let Err(e) = crate::engine::digest::send_due(ctx, chrono::Utc::now()).await {
        tracing::warn!(error = %e, "cannot queue the scheduled digests");
    }
    crate::engine::context::settle(ctx).await;
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
        "cycle: {} jobs, {} ok ({} read from {} list pages), {} not found, {} forbidden, \
         {} failed polls, {} events in {:.3} s; delivered {}, retrying {}, failed {}; \
         outbox pending {}",
        report.jobs,
        report.ok,
        report.listed,
        report.list_pages,
        report.not_found,
        report.forbidden,
        report.failed_total(),
        report.events,
        report.duration.as_secs_f64(),
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

pub(super) async fn list_deliveries(
    config: &Config,
    status: Option<&str>,
    limit: u32,
) -> Result<(), Failure> {
    let store = crate::store::Store::connect(&config.store.location())
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

/// `actions`: the audit trail of actions taken on CodeArts from chat.
pub(super) async fn list_actions(
    config: &Config,
    job: Option<&str>,
    limit: u32,
) -> Result<(), Failure> {
    let job = job
        .map(|raw| crate::domain::ids::parse_job_id(raw).map_err(|e| Failure::new(EXIT_CONFIG, e)))
        .transpose()?;
    let store = crate::store::Store::connect(&config.store.location())
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    let rows = store
        .actions(job.as_ref().map(|j| j.as_str()), limit)
        .await
        .map_err(|e| Failure::new(EXIT_RUNTIME, e.to_string()))?;
    if rows.is_empty() {
        println!("no actions recorded");
    }
    for row in rows {
        println!(
            "{}  {:<6} {:<8} {}  build {:<6} by {} ({}{})  {}{}",
            row.created().format("%Y-%m-%d %H:%M:%S"),
            row.kind,
            row.state,
            row.job_id,
            row.build_no.map_or("-".to_owned(), |n| format!("#{n}")),
            row.who,
            row.platform,
            row.channel
                .as_deref()
                .map_or(String::new(), |c| format!(" #{c}")),
            row.answer.as_deref().unwrap_or("(no answer recorded)"),
            row.request_id
                .as_deref()
                .map_or(String::new(), |r| format!(" [request {r}]")),
        );
    }
    store.close().await;
    Ok(())
}

/// The card `notify-test` sends: plainly a test, with every field a real alert has.
pub(super) fn sample_event() -> crate::domain::event::Event {
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

pub(super) async fn notify_test(config: &Config, name: &str) -> Result<(), Failure> {
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
        context: None,
        mention: None,
        buttons: None,
        board: None,
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

pub(super) async fn check(config: &Config, job: &JobId, json: bool) -> Result<(), Failure> {
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

pub(super) async fn run_sim(config: sim::SimConfig) -> Result<(), Failure> {
    let listen = config.listen;
    let seeded = config.jobs + config.job_ids.len();
    let projects = config.projects.max(1);
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
         {seeded} jobs seeded over {projects} projects; {users} IAM users; AK/SK {aksk}; control API under {url}/_sim/ \
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
