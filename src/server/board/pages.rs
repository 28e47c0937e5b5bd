//! The board's HTML pages: `/` (every watched job, failing first) and the login form. The
//! job page is [`super::job_page`]. Templates live in `templates/board/` and are compiled in
//! (askama); every value they show is escaped by askama except the SVG charts.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;

use super::model::{self, Filter, State as JobState};
use super::state::Board;
use super::views::{self, GroupView, IncidentView, SilenceView};
use crate::engine::Ctx;

/// Open incidents `/` lists in full (with their failure context); the rest are counted.
const INCIDENTS_SHOWN: usize = 10;
/// Health readings per sparkline.
pub const SPARK_POINTS: u32 = 20;

/// A count of jobs in one state, linking to the board filtered to it.
pub struct CountView {
    pub state: &'static str,
    pub icon: &'static str,
    pub label: &'static str,
    pub n: usize,
    pub href: String,
}

/// The bot's own state, as the top of `/` shows it.
pub struct BotView {
    pub blind: bool,
    pub source: String,
    pub last_cycle: String,
    pub last_failure: Option<String>,
    pub leader: &'static str,
}

pub struct StatusOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "board/index.html")]
struct IndexPage {
    bot: BotView,
    sign_out: bool,
    counts: Vec<CountView>,
    total: usize,
    q: String,
    statuses: Vec<StatusOption>,
    filter_note: Option<String>,
    groups: Vec<GroupView>,
    incidents: Vec<IncidentView>,
    more_incidents: usize,
    silences: Vec<SilenceView>,
    page: usize,
    pages: usize,
    matched: usize,
    prev_href: Option<String>,
    next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "board/login.html")]
struct LoginPage<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

/// A store failure as a page: what went wrong, never a secret (store errors name tables and
/// files only).
pub fn failure(e: &dyn std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the board cannot read the database: {e}\n"),
    )
        .into_response()
}

/// Renders a template into a response.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => failure(&e),
    }
}

pub fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    html(status, &LoginPage { next, error })
}

/// The bot's own state: blind or not, the last cycle, the replica's role.
pub async fn bot_view(ctx: &Ctx) -> BotView {
    let now = Utc::now();
    let source = ctx.store.source_state().await.unwrap_or_default();
    let (blind, source_text) = match source.blind_since {
        Some(since) if source.failed_cycles > 0 => (
            source.failed_cycles >= ctx.config.rules.blind_after,
            format!(
                "CodeArts unreachable for {} cycle(s), since {}{}",
                source.failed_cycles,
                model::ago(since, now),
                source
                    .cause
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
        ),
        _ => (false, "CodeArts reachable".to_owned()),
    };
    BotView {
        blind,
        source: source_text,
        last_cycle: ctx
            .health
            .last_success()
            .map_or_else(|| "no cycle yet".to_owned(), |t| model::ago(t, now)),
        last_failure: ctx.health.last_failure(),
        // Under `run` the replicas sharing the database elect one (docs/ha.md).
        leader: if ctx.lead.may_act() {
            "this replica leads"
        } else {
            "a follower: another replica polls and sends"
        },
    }
}

/// `GET /`.
pub async fn index(State(board): State<Board>, Query(filter): Query<Filter>) -> Response {
    let ctx = &board.ctx;
    if let Err(e) = filter.check() {
        return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
    }
    let rows = match model::all_rows(ctx).await {
        Ok(rows) => rows,
        Err(e) => return failure(&e),
    };
    let mut incidents: Vec<_> = rows.iter().filter_map(|r| r.incident.clone()).collect();
    let silences = ctx.store.open_silences().await.unwrap_or_default();
    let now = Utc::now();
    // Silences on one job are shown with the job's name.
    let silenced: std::collections::HashMap<&str, String> = silences
        .iter()
        .filter_map(|s| match &s.scope {
            crate::domain::silence::Scope::Job(job) => Some(job.as_str()),
            _ => None,
        })
        .filter_map(|id| Some((id, rows.iter().find(|r| r.id == id)?.name.clone())))
        .collect();
    let silences: Vec<SilenceView> = silences
        .iter()
        .filter(|s| s.expires_at > now)
        .map(|s| views::silence_view(s, |id| silenced.get(id).cloned(), now))
        .collect();
    let page = model::page(rows, &filter);
    let ids: Vec<&str> = page.rows.iter().map(|r| r.id.as_str()).collect();
    let health = match ctx.store.health_histories(&ids, SPARK_POINTS).await {
        Ok(h) => h,
        Err(e) => return failure(&e),
    };
    incidents.sort_by_key(|i| i.opened_at);
    let more_incidents = incidents.len().saturating_sub(INCIDENTS_SHOWN);
    incidents.truncate(INCIDENTS_SHOWN);
    let incident_ids: Vec<&str> = incidents.iter().map(|i| i.job_id.as_str()).collect();
    let contexts = ctx
        .store
        .last_failure_contexts(&incident_ids)
        .await
        .unwrap_or_default();
    let selected = filter.status.as_deref().unwrap_or("");
    let statuses = [
        ("", "Every state"),
        ("problems", "Anything not passing"),
        ("failing", "Failing"),
        ("gone", "Gone"),
        ("disabled", "Disabled"),
        ("other", "Other"),
        ("unknown", "Not seen yet"),
        ("ok", "Passing"),
    ]
    .into_iter()
    .map(|(value, label)| StatusOption {
        value,
        label,
        selected: value == selected,
    })
    .collect();
    let filter_note = filter
        .jobs
        .as_deref()
        .filter(|j| !j.trim().is_empty())
        .map(|_| format!("Showing the {} job(s) of a link.", page.matched));
    let body = IndexPage {
        bot: bot_view(ctx).await,
        sign_out: board.access.required(),
        counts: page
            .counts
            .by_state
            .iter()
            .map(|(state, n)| count_view(*state, *n))
            .collect(),
        total: page.counts.total,
        q: filter.q.clone().unwrap_or_default(),
        statuses,
        filter_note,
        groups: views::groups(&page.rows, &health, now),
        incidents: incidents
            .iter()
            .map(|i| views::incident_view(i, contexts.get(&i.job_id), now))
            .collect(),
        more_incidents,
        silences,
        page: page.page,
        pages: page.pages,
        matched: page.matched,
        prev_href: (page.page > 1).then(|| format!("/?{}", filter.query_for_page(page.page - 1))),
        next_href: (page.page < page.pages)
            .then(|| format!("/?{}", filter.query_for_page(page.page + 1))),
    };
    let mut response = html(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    response
}

fn count_view(state: JobState, n: usize) -> CountView {
    CountView {
        state: state.as_str(),
        icon: state.icon(),
        label: state.label(),
        n,
        href: format!("/?status={}", state.as_str()),
    }
}
