//! Scheduled digests (`[[channels]] digest`, `/digest`): what is broken now and how the period
//! went, as one summary. Pure: the engine gathers the inputs (open incidents, flaky snapshots,
//! the builds and failure contexts the store kept) and this file decides what the digest says
//! and whether it is all green. When it is sent is [`clock`]'s business.

pub mod clock;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::domain::event::{Event, EventKind};
use crate::util::text::{format_duration, printable, truncate_chars};

/// Most jobs (or projects, builds, stages) one section names; the rest are counted.
pub const MAX_NAMED: usize = 10;
/// Slowest builds and failed stages listed.
const MAX_TOP: usize = 5;
/// The longest a job, project or stage name may be inside a digest line.
const NAME_MAX: usize = 80;

/// The stretch of time a digest looks back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// A job failing now: its open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    pub job_name: String,
    pub since: DateTime<Utc>,
    pub failed_builds: u32,
}

/// A flaky job, from its snapshot's recent outcomes (`F`/`S`, oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flaky {
    pub job_name: String,
    pub flips: usize,
    pub outcomes: String,
}

/// How a finished build ended, by `rules`' status lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Settled, but neither (`aborted`): not counted in the success ratio.
    Other,
}

/// One build that started in the period, as the bot last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub job_name: String,
    /// `None`: the project is not known (shown as "unknown project").
    pub project: Option<String>,
    pub outcome: Outcome,
    /// How long it ran, when CodeArts said.
    pub seconds: Option<f64>,
}

/// Everything a digest is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub period: Period,
    /// The timezone the period is written in (`digest_timezone`).
    pub timezone: chrono_tz::Tz,
    pub failing: Vec<Failing>,
    pub flaky: Vec<Flaky>,
    pub builds: Vec<Build>,
    /// The failed stage of each failed build in the period whose context names one.
    pub failed_stages: Vec<String>,
    /// Since when CodeArts could not be seen, if it cannot now.
    pub blind_since: Option<DateTime<Utc>>,
}

/// One line of a digest: `label: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub label: &'static str,
    pub text: String,
}

/// A digest, ready to queue as an event or to answer `/digest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// After "Digest: " in the title: `2 failing · 1 flaky`, `all green`.
    pub title: String,
    pub sections: Vec<Section>,
    /// Nothing failing, nothing flaky, no failed build in the period: sent only to channels
    /// with `digest_when_green = true`.
    pub green: bool,
    pub period: Period,
}

/// Section labels, also the `label` the cards show.
pub const PERIOD: &str = "Period";
pub const SOURCE: &str = "CodeArts";
pub const FAILING: &str = "Failing now";
pub const FLAKY: &str = "Flaky";
pub const RATIO: &str = "Success ratio";
pub const SLOWEST: &str = "Slowest builds";
pub const STAGES: &str = "Failed stages";

/// Builds the digest of `inputs`, as of `now` (failing durations are counted to `now`).
pub fn build(inputs: &Inputs, now: DateTime<Utc>) -> Digest {
    let failed_builds = inputs
        .builds
        .iter()
        .filter(|b| b.outcome == Outcome::Failure)
        .count();
    let green = inputs.failing.is_empty() && inputs.flaky.is_empty() && failed_builds == 0;
    let mut sections = vec![Section {
        label: PERIOD,
        text: period_text(inputs.period, inputs.timezone),
    }];
    if let Some(since) = inputs.blind_since {
        sections.push(Section {
            label: SOURCE,
            text: format!(
                "not reachable since {}: what follows is as of then",
                local(since, inputs.timezone)
            ),
        });
    }
    sections.push(Section {
        label: FAILING,
        text: failing_text(&inputs.failing, now),
    });
    if !inputs.flaky.is_empty() {
        sections.push(Section {
            label: FLAKY,
            text: flaky_text(&inputs.flaky),
        });
    }
    sections.push(Section {
        label: RATIO,
        text: ratio_text(&inputs.builds),
    });
    if let Some(text) = slowest_text(&inputs.builds) {
        sections.push(Section {
            label: SLOWEST,
            text,
        });
    }
    if let Some(text) = stages_text(&inputs.failed_stages) {
        sections.push(Section {
            label: STAGES,
            text,
        });
    }
    let title = if green {
        "all green".to_owned()
    } else {
        let mut parts = Vec::new();
        if !inputs.failing.is_empty() {
            parts.push(format!("{} failing", inputs.failing.len()));
        }
        if !inputs.flaky.is_empty() {
            parts.push(format!("{} flaky", inputs.flaky.len()));
        }
        if parts.is_empty() {
            parts.push(format!("{failed_builds} failed {}", builds(failed_builds)));
        }
        parts.join(" · ")
    };
    Digest {
        title,
        sections,
        green,
        period: inputs.period,
    }
}

impl Digest {
    /// The summary: one `label: text` line per section.
    pub fn summary(&self) -> String {
        self.sections
            .iter()
            .map(|s| format!("{}: {}", s.label, s.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The digest as the event queued for a channel: about no job in particular.
    pub fn event(&self, at: DateTime<Utc>) -> Event {
        Event {
            kind: EventKind::Digest,
            job_id: String::new(),
            job_name: self.title.clone(),
            detected_at: at,
            previous: None,
            current: None,
            summary: self.summary(),
        }
    }
}

fn builds(n: usize) -> &'static str {
    if n == 1 { "build" } else { "builds" }
}

/// An untrusted name on one line (a newline would split the digest's sections), shortened.
fn name(text: &str) -> String {
    truncate_chars(printable(text).trim(), NAME_MAX)
}

/// `2026-12-01 09:00` in `tz`.
fn local(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

/// `2026-12-01 09:00 → 2026-12-02 09:00 Asia/Shanghai (24h)`.
fn period_text(period: Period, tz: chrono_tz::Tz) -> String {
    let length = (period.to - period.from)
        .to_std()
        .ok()
        .and_then(|d| format_duration(d.as_secs_f64()))
        .unwrap_or_else(|| "0s".to_owned());
    format!(
        "{} → {} {} ({length})",
        local(period.from, tz),
        local(period.to, tz),
        tz.name()
    )
}

/// `none`, or `2: web for 2h 05m (3 failed builds), api for 10m (1 failed build)`, the longest
/// failing first.
fn failing_text(failing: &[Failing], now: DateTime<Utc>) -> String {
    if failing.is_empty() {
        return "none".to_owned();
    }
    let mut sorted: Vec<&Failing> = failing.iter().collect();
    sorted.sort_by(|a, b| {
        a.since
            .cmp(&b.since)
            .then_with(|| a.job_name.cmp(&b.job_name))
    });
    let named: Vec<String> = sorted
        .iter()
        .take(MAX_NAMED)
        .map(|f| {
            let length = (now - f.since)
                .to_std()
                .ok()
                .and_then(|d| format_duration(d.as_secs_f64()))
                .unwrap_or_else(|| "a moment".to_owned());
            let n = f.failed_builds as usize;
            format!(
                "{} for {length} ({n} failed {})",
                name(&f.job_name),
                builds(n)
            )
        })
        .collect();
    format!("{}: {}", failing.len(), and_more(named, failing.len()))
}

/// `1: nightly 5 flips (FSFSFFSSFS)`, the most flips first.
fn flaky_text(flaky: &[Flaky]) -> String {
    let mut sorted: Vec<&Flaky> = flaky.iter().collect();
    sorted.sort_by(|a, b| {
        b.flips
            .cmp(&a.flips)
            .then_with(|| a.job_name.cmp(&b.job_name))
    });
    let named: Vec<String> = sorted
        .iter()
        .take(MAX_NAMED)
        .map(|f| format!("{} {} flips ({})", name(&f.job_name), f.flips, f.outcomes))
        .collect();
    format!("{}: {}", flaky.len(), and_more(named, flaky.len()))
}

/// Per project, the worst first: `p1 50% (1 of 2), p2 100% (3 of 3)`; builds neither passed
/// nor failed (aborted) are left out.
fn ratio_text(builds: &[Build]) -> String {
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for b in builds {
        let project = b.project.as_deref().unwrap_or("unknown project");
        let entry = per.entry(project).or_default();
        match b.outcome {
            Outcome::Success => {
                entry.0 += 1;
                entry.1 += 1;
            }
            Outcome::Failure => entry.1 += 1,
            Outcome::Other => {}
        }
    }
    let mut rows: Vec<(&str, usize, usize)> = per
        .into_iter()
        .filter(|(_, (_, total))| *total > 0)
        .map(|(p, (ok, total))| (p, ok, total))
        .collect();
    if rows.is_empty() {
        return "no finished builds in the period".to_owned();
    }
    // Worst ratio first: ok/total ascending, compared without division.
    rows.sort_by(|a, b| (a.1 * b.2).cmp(&(b.1 * a.2)).then_with(|| a.0.cmp(b.0)));
    let total = rows.len();
    let named: Vec<String> = rows
        .into_iter()
        .take(MAX_NAMED)
        .map(|(p, ok, n)| format!("{} {}% ({ok} of {n})", name(p), ok * 100 / n))
        .collect();
    and_more(named, total)
}

/// The slowest builds with a known duration: `nightly 42m 10s, web 12m 03s`.
fn slowest_text(builds: &[Build]) -> Option<String> {
    let mut timed: Vec<(&str, f64)> = builds
        .iter()
        .filter_map(|b| Some((b.job_name.as_str(), b.seconds.filter(|s| s.is_finite())?)))
        .collect();
    if timed.is_empty() {
        return None;
    }
    timed.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Some(
        timed
            .iter()
            .take(MAX_TOP)
            .map(|(job, secs)| {
                format!(
                    "{} {}",
                    name(job),
                    format_duration(*secs).unwrap_or_else(|| "0s".to_owned())
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The most frequent failed stages: `compile ×3, unit-test ×2`.
fn stages_text(stages: &[String]) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for stage in stages.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        *counts.entry(stage).or_default() += 1;
    }
    if counts.is_empty() {
        return None;
    }
    let mut rows: Vec<(&str, usize)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Some(
        rows.iter()
            .take(MAX_TOP)
            .map(|(stage, n)| format!("{} ×{n}", name(stage)))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// `a, b, c` and, when `total` is more than named, `and N more`.
fn and_more(named: Vec<String>, total: usize) -> String {
    let more = total.saturating_sub(named.len());
    let mut text = named.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests;
