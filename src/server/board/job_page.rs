//! `/jobs/{id}`: one job's state, health chart, last failure's context, builds, events and
//! deliveries per channel. The data ([`JobDetail`]) is shared with `/api/v1/jobs/{id}`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::model::{JobRow, State as JobState, ago};
use super::pages::{failure, html};
use super::state::Board;
use super::svg;
use super::views::{context_summary, incident_line, silence_line};
use crate::codearts::JobId;
use crate::domain::context::Context;
use crate::engine::Ctx;
use crate::store::{HistoryPoint, JobDelivery, LoggedEvent};
use crate::util::text::{format_duration, rfc3339, truncate_chars};

/// History rows read for the chart and the builds.
const HISTORY: u32 = 200;
const EVENTS: u32 = 50;
const DELIVERIES: u32 = 100;
const BUILDS: usize = 30;

/// A finished or running build, as the snapshot history saw it.
#[derive(Debug, Clone)]
pub struct Build {
    pub at: DateTime<Utc>,
    pub status: Option<String>,
    pub state: JobState,
    /// Seconds.
    pub duration: Option<f64>,
}

/// What the bot knows of one job.
pub struct JobDetail {
    pub row: JobRow,
    pub health: Vec<(DateTime<Utc>, i64)>,
    /// Newest first.
    pub builds: Vec<Build>,
    pub events: Vec<LoggedEvent>,
    pub deliveries: Vec<JobDelivery>,
    pub context: Option<Context>,
    pub codearts_link: Option<String>,
}

/// Reads a job's detail; `Ok(None)` when the bot neither watches nor has seen it.
pub async fn detail(ctx: &Ctx, raw_id: &str) -> Result<Option<JobDetail>, crate::store::Error> {
    let Ok(job) = JobId::parse(raw_id) else {
        return Ok(None);
    };
    let Some(row) = super::model::job_row(ctx, &job).await? else {
        return Ok(None);
    };
    let history = ctx.store.job_history(&job, HISTORY).await?;
    let health = history
        .iter()
        .filter_map(|p| Some((p.observed_at, p.info.as_ref()?.health_score?)))
        .collect();
    let builds = builds(ctx, &history);
    let events = ctx
        .store
        .event_log(Some(job.as_str()), None, EVENTS)
        .await?;
    let deliveries = ctx.store.job_deliveries(&job, DELIVERIES).await?;
    let context = ctx.store.last_failure_context(&job).await?;
    let codearts_link = ctx
        .config
        .codearts
        .link_template
        .as_deref()
        .map(|t| crate::notify::render_link(t, job.as_str(), row.project.as_deref()));
    Ok(Some(JobDetail {
        row,
        health,
        builds,
        events,
        deliveries,
        context,
        codearts_link,
    }))
}

/// One entry per build (by its time), with the status last seen for it, newest first.
fn builds(ctx: &Ctx, history: &[HistoryPoint]) -> Vec<Build> {
    let mut by_time: BTreeMap<i64, Build> = BTreeMap::new();
    for point in history {
        let Some(info) = &point.info else { continue };
        let Some(time) = info.last_build_time else {
            continue;
        };
        let status = info.last_build_status.clone();
        let snapshot_state = status.as_deref().map(|s| ctx.rules.class(s));
        let state = match snapshot_state {
            Some(crate::domain::rules::StatusClass::Failure) => JobState::Failing,
            Some(crate::domain::rules::StatusClass::Success) => JobState::Ok,
            Some(crate::domain::rules::StatusClass::Other) => JobState::Other,
            _ => JobState::Unknown,
        };
        by_time.insert(
            time,
            Build {
                at: crate::store::from_ms(time),
                status,
                state,
                duration: info.build_time.as_deref().and_then(|t| t.parse().ok()),
            },
        );
    }
    by_time.into_values().rev().take(BUILDS).collect()
}

struct BuildView {
    at: String,
    at_iso: String,
    state: &'static str,
    icon: &'static str,
    status: String,
    duration: String,
}

struct EventView {
    at: String,
    at_iso: String,
    kind: &'static str,
    summary: String,
    suppressed: Option<String>,
}

struct DeliveryView {
    at: String,
    kind: String,
    status: String,
    attempts: u32,
    error: Option<String>,
}

struct ChannelView {
    name: String,
    sent: usize,
    failed: usize,
    pending: usize,
    rows: Vec<DeliveryView>,
}

struct ContextView {
    summary: Option<String>,
    facts: Vec<(&'static str, String)>,
    log_tail: Option<String>,
}

#[derive(Template)]
#[template(path = "board/job.html")]
struct JobPage {
    id: String,
    name: String,
    project: String,
    state: &'static str,
    icon: &'static str,
    label: &'static str,
    status: String,
    running: bool,
    last_build: String,
    health: String,
    notes: Vec<String>,
    codearts_link: Option<String>,
    chart: Option<String>,
    context: Option<ContextView>,
    builds: Vec<BuildView>,
    events: Vec<EventView>,
    channels: Vec<ChannelView>,
}

/// `GET /jobs/{id}`.
pub async fn page(State(board): State<Board>, Path(id): Path<String>) -> Response {
    let detail = match detail(&board.ctx, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                "the board knows no job with this id (it shows watched jobs only)\n",
            )
                .into_response();
        }
        Err(e) => return failure(&e),
    };
    html(StatusCode::OK, &view(detail, Utc::now()))
}

fn view(d: JobDetail, now: DateTime<Utc>) -> JobPage {
    let row = &d.row;
    let mut notes = Vec::new();
    if let Some(i) = &row.incident {
        notes.push(format!("Incident {}", incident_line(i, now)));
    }
    if let Some(s) = &row.silence {
        notes.push(silence_line(s, now));
    }
    if row.flaky {
        notes.push("Flaky: its recent builds flip between failure and success".to_owned());
    }
    let mut channels: BTreeMap<String, ChannelView> = BTreeMap::new();
    for delivery in &d.deliveries {
        let r = &delivery.row;
        let channel = channels
            .entry(r.channel.clone())
            .or_insert_with(|| ChannelView {
                name: r.channel.clone(),
                sent: 0,
                failed: 0,
                pending: 0,
                rows: Vec::new(),
            });
        match r.status.as_str() {
            "sent" => channel.sent += 1,
            "failed" => channel.failed += 1,
            _ => channel.pending += 1,
        }
        if channel.rows.len() < 10 {
            channel.rows.push(DeliveryView {
                at: ago(delivery.sent_at.unwrap_or(r.created_at), now),
                kind: r.kind.clone(),
                status: r.status.clone(),
                attempts: r.attempts,
                error: r.last_error.as_deref().map(|e| truncate_chars(e, 300)),
            });
        }
    }
    JobPage {
        id: row.id.clone(),
        name: row.name.clone(),
        project: row.project.clone().unwrap_or_else(|| "unknown".to_owned()),
        state: row.state.as_str(),
        icon: row.state.icon(),
        label: row.state.label(),
        status: row.status.clone().unwrap_or_default(),
        running: row.running,
        last_build: row
            .last_build_at
            .map_or_else(|| "never".to_owned(), |t| ago(t, now)),
        health: row.health.map_or_else(|| "–".to_owned(), |h| h.to_string()),
        notes,
        codearts_link: d
            .codearts_link
            .filter(|l| l.starts_with("https://") || l.starts_with("http://")),
        chart: svg::chart(&d.health),
        context: d.context.as_ref().map(context_view),
        builds: d
            .builds
            .iter()
            .map(|b| BuildView {
                at: ago(b.at, now),
                at_iso: rfc3339(b.at),
                state: b.state.as_str(),
                icon: b.state.icon(),
                status: b.status.clone().unwrap_or_default(),
                duration: b.duration.and_then(format_duration).unwrap_or_default(),
            })
            .collect(),
        events: d
            .events
            .iter()
            .map(|e| EventView {
                at: ago(e.event.detected_at, now),
                at_iso: rfc3339(e.event.detected_at),
                kind: e.event.kind.as_str(),
                summary: truncate_chars(&e.event.summary, 300),
                suppressed: e.suppressed.clone(),
            })
            .collect(),
        channels: channels.into_values().collect(),
    }
}

fn context_view(c: &Context) -> ContextView {
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    let mut add = |label, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            facts.push((label, truncate_chars(&v, 300)));
        }
    };
    add("Build", c.build_no.map(|n| format!("#{n}")));
    add("Failed stage", c.failed_stage.clone());
    add("Error", c.error.clone());
    add("Branch", c.branch.clone().or_else(|| c.tag.clone()));
    add("Commit", c.commit.clone());
    add("Commit message", c.commit_message.clone());
    add("Triggered by", c.triggered_by.clone());
    add(
        "Tests",
        c.tests
            .map(|t| format!("{} failed, {} errors of {}", t.failed, t.errors, t.total)),
    );
    add("Why", c.why.clone());
    ContextView {
        summary: context_summary(c),
        facts,
        log_tail: (!c.log_tail.is_empty()).then(|| c.log_tail.join("\n")),
    }
}
