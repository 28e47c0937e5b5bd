//! What the templates show, as plain strings: every value is worked out here (times made
//! relative, states given their icon and words), so the templates only place text, and askama
//! escapes every one of them. The only markup not escaped is the SVG of [`super::svg`], which
//! holds numbers only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::model::{JobRow, State, ago};
use super::svg;
use crate::domain::context::{Context, SHORT_COMMIT};
use crate::domain::incident::Incident;
use crate::domain::silence::{Kind, Silence};
use crate::util::text::{format_duration, rfc3339, truncate_chars, url_component};

/// A job's line on `/`.
pub struct RowView {
    pub id: String,
    pub href: String,
    pub name: String,
    pub state: &'static str,
    pub icon: &'static str,
    pub label: &'static str,
    /// CodeArts' own word for the last build, when it adds something to the label.
    pub status: Option<String>,
    pub running: bool,
    pub last_build: String,
    pub last_build_iso: String,
    pub health: String,
    pub sparkline: String,
    pub notes: Vec<String>,
}

/// Consecutive rows of one project (and of the failing section or the rest).
pub struct GroupView {
    pub title: String,
    pub failing: bool,
    pub rows: Vec<RowView>,
}

pub fn job_href(id: &str) -> String {
    format!("/jobs/{}", url_component(id))
}

pub fn row_view(row: &JobRow, health: Option<&Vec<i64>>, now: DateTime<Utc>) -> RowView {
    let mut notes = Vec::new();
    if let Some(incident) = &row.incident {
        notes.push(incident_line(incident, now));
    }
    if let Some(silence) = &row.silence {
        notes.push(silence_line(silence, now));
    }
    if row.flaky {
        notes.push("flaky".to_owned());
    }
    // CodeArts' word adds something only where the state does not already say it.
    let status = row
        .status
        .clone()
        .filter(|s| !s.trim().is_empty() && matches!(row.state, State::Other | State::Unknown));
    RowView {
        id: row.id.clone(),
        href: job_href(&row.id),
        name: truncate_chars(&row.name, 120),
        state: row.state.as_str(),
        icon: row.state.icon(),
        label: row.state.label(),
        status,
        running: row.running,
        last_build: row
            .last_build_at
            .map_or_else(|| "never".to_owned(), |t| ago(t, now)),
        last_build_iso: row.last_build_at.map(rfc3339).unwrap_or_default(),
        health: row.health.map_or_else(|| "–".to_owned(), |h| h.to_string()),
        sparkline: health
            .and_then(|scores| svg::sparkline(scores))
            .unwrap_or_default(),
        notes,
    }
}

/// Rows grouped: the failing section first, each section by project.
pub fn groups(
    rows: &[JobRow],
    health: &HashMap<String, Vec<i64>>,
    now: DateTime<Utc>,
) -> Vec<GroupView> {
    let mut out: Vec<GroupView> = Vec::new();
    let mut key: Option<(bool, Option<&str>)> = None;
    for row in rows {
        let failing = row.state == State::Failing;
        let this = (failing, row.project.as_deref());
        if key != Some(this) {
            key = Some(this);
            let project = row
                .project
                .as_deref()
                .map_or_else(|| "No project".to_owned(), |p| format!("Project {p}"));
            out.push(GroupView {
                title: if failing {
                    format!("Failing · {project}")
                } else {
                    project
                },
                failing,
                rows: Vec::new(),
            });
        }
        if let Some(group) = out.last_mut() {
            group.rows.push(row_view(row, health.get(&row.id), now));
        }
    }
    out
}

/// `open 2h 05m · 3 failed builds`.
pub fn incident_line(incident: &Incident, now: DateTime<Utc>) -> String {
    let open = format_duration(incident.duration(now).as_secs_f64()).unwrap_or_default();
    let builds = incident.failed_builds;
    let plural = if builds == 1 { "" } else { "s" };
    format!("open {open} · {builds} failed build{plural}")
}

/// `muted by alice until 2026-11-30 12:00 UTC: deploy`.
pub fn silence_line(silence: &Silence, now: DateTime<Utc>) -> String {
    let what = match silence.kind {
        Kind::Mute => "muted",
        Kind::Ack => "acked",
    };
    let left = (silence.expires_at - now).to_std().unwrap_or_default();
    let reason = if silence.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", truncate_chars(&silence.reason, 200))
    };
    format!(
        "{what} by {} for {} more{reason}",
        truncate_chars(&silence.created_by, 80),
        format_duration(left.as_secs_f64()).unwrap_or_default()
    )
}

/// An open incident on `/`.
pub struct IncidentView {
    pub href: String,
    pub name: String,
    pub line: String,
    pub context: Option<String>,
}

pub fn incident_view(
    incident: &Incident,
    context: Option<&Context>,
    now: DateTime<Utc>,
) -> IncidentView {
    IncidentView {
        href: job_href(&incident.job_id),
        name: truncate_chars(&incident.job_name, 120),
        line: incident_line(incident, now),
        context: context.and_then(context_summary),
    }
}

/// One line of why it failed: `stage Integration tests: exit code 1 (alice, main@1a2b3c4d)`.
pub fn context_summary(context: &Context) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(stage) = &context.failed_stage {
        parts.push(format!("stage {stage}"));
    }
    if let Some(error) = context.error.as_deref().and_then(|e| e.lines().next()) {
        parts.push(truncate_chars(error, 200));
    }
    if let Some(why) = &context.why {
        parts.push(truncate_chars(why, 200));
    }
    let who: Vec<String> = [
        context.triggered_by.clone(),
        context.branch.as_ref().map(|b| match &context.commit {
            Some(c) => format!("{b}@{}", c.chars().take(SHORT_COMMIT).collect::<String>()),
            None => b.clone(),
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut line = parts.join(": ");
    if !who.is_empty() {
        line = format!("{line} ({})", who.join(", "));
    }
    (!line.trim().is_empty()).then(|| line.trim().to_owned())
}

/// A silence on `/`.
pub struct SilenceView {
    pub what: String,
    pub scope: String,
    pub line: String,
}

/// `name_of` turns a job id into the job's name, for a silence on one job.
pub fn silence_view(
    silence: &Silence,
    name_of: impl Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
) -> SilenceView {
    let scope = match &silence.scope {
        crate::domain::silence::Scope::Job(job) => name_of(job.as_str())
            .map_or_else(|| silence.scope.describe(), |name| format!("job {name}")),
        other => other.describe(),
    };
    SilenceView {
        what: format!(
            "{} #{}",
            if silence.kind == Kind::Ack {
                "Ack"
            } else {
                "Mute"
            },
            silence.id
        ),
        scope: truncate_chars(&scope, 160),
        line: silence_line(silence, now),
    }
}
