//! Storm summaries: when a channel has more than `storm_threshold` deliveries waiting (a
//! shared runner died, a base image broke), it gets one message that sums them up instead of
//! dozens nobody reads: how many of each kind, by project, the first jobs' names and how many
//! more. Pure: the dispatcher decides when, this file what it says.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::wording::headline;
use crate::domain::event::{Event, EventKind};

/// Most job names a summary lists.
pub const FIRST_NAMES: usize = 10;

/// The default `storm_threshold`: more deliveries than this waiting on a channel is a storm.
pub const DEFAULT_THRESHOLD: u32 = 20;

/// Each channel's threshold: `storm_threshold` (default [`DEFAULT_THRESHOLD`]); channels
/// with 0 and generic webhooks (one POST per event is their contract) are left out.
pub fn thresholds(config: &crate::config::Config) -> HashMap<String, u64> {
    config
        .channels
        .iter()
        .filter(|c| c.kind != crate::config::ChannelType::Webhook)
        .filter_map(|c| {
            let threshold = c.storm_threshold.unwrap_or(DEFAULT_THRESHOLD);
            (threshold > 0).then(|| (c.name.clone(), u64::from(threshold)))
        })
        .collect()
}

/// One event that sums `events` up (at least one), as of `now`.
pub fn summarise(events: &[&Event], now: DateTime<Utc>) -> Event {
    let mut kinds: HashMap<EventKind, usize> = HashMap::new();
    let mut projects: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: Vec<&str> = Vec::new();
    for event in events {
        *kinds.entry(event.kind).or_default() += 1;
        let project = event
            .current
            .as_ref()
            .or(event.previous.as_ref())
            .and_then(|i| i.project_id.clone())
            .unwrap_or_else(|| "unknown project".to_owned());
        *projects.entry(project).or_default() += 1;
        if !names.contains(&event.job_name.as_str()) {
            names.push(&event.job_name);
        }
    }
    let mut kinds: Vec<(EventKind, usize)> = kinds.into_iter().collect();
    // The most severe first, then the most frequent.
    kinds.sort_by_key(|(kind, n)| {
        (
            std::cmp::Reverse(kind.severity()),
            std::cmp::Reverse(*n),
            kind.as_str(),
        )
    });
    let mut projects: Vec<(String, usize)> = projects.into_iter().collect();
    projects.sort_by(|(a, n), (b, m)| m.cmp(n).then_with(|| a.cmp(b)));
    let kinds_line = kinds
        .iter()
        .map(|(kind, n)| format!("{n} × {}", headline(*kind)))
        .collect::<Vec<_>>()
        .join(", ");
    let projects_line = projects
        .iter()
        .take(FIRST_NAMES)
        .map(|(p, n)| format!("{p}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let shown: Vec<&str> = names.iter().take(FIRST_NAMES).copied().collect();
    let more = names.len().saturating_sub(shown.len());
    let mut jobs_line = format!("Jobs: {}", shown.join(", "));
    if more > 0 {
        jobs_line.push_str(&format!(" and {more} more"));
    }
    let summary = [
        format!(
            "{} changes across {} jobs at once: {kinds_line}.",
            events.len(),
            names.len()
        ),
        format!("By project: {projects_line}."),
        jobs_line,
        "Each job's events are in /history; its incident stays open until it recovers.".to_owned(),
    ]
    .join("\n");
    Event {
        kind: EventKind::StormSummary,
        job_id: String::new(),
        job_name: format!("{} jobs", names.len()),
        detected_at: events.iter().map(|e| e.detected_at).max().unwrap_or(now),
        previous: None,
        current: None,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::outgoing::test_event;

    #[test]
    fn a_storm_is_counted_by_kind_and_project_and_names_the_first_ten() {
        let mut events: Vec<Event> = (0..25)
            .map(|i| test_event(&format!("job-{i:02}")))
            .collect();
        events[24].kind = EventKind::BuildRecovered;
        events[0].current.as_mut().unwrap().project_id = Some("p1".to_owned());
        let refs: Vec<&Event> = events.iter().collect();
        let storm = summarise(&refs, Utc::now());
        assert_eq!(storm.kind, EventKind::StormSummary);
        assert_eq!(storm.job_name, "25 jobs");
        assert!(
            storm.job_id.is_empty(),
            "about many jobs, none in particular"
        );
        let text = &storm.summary;
        assert!(
            text.starts_with(
                "25 changes across 25 jobs at once: 24 × Build failed, 1 × Build fixed."
            ),
            "{text}"
        );
        assert!(text.contains("unknown project: 24, p1: 1"), "{text}");
        assert!(
            text.contains("job-00, job-01") && text.contains("job-09 and 15 more"),
            "{text}"
        );
        assert!(!text.contains("job-10"), "{text}");

        // Every platform's card carries the summary, not only the title.
        let out = crate::notify::Outgoing {
            delivery_id: "d",
            event: &storm,
            link: None,
            context: None,
            mention: None,
            buttons: None,
            board: None,
        };
        let rendered = [
            crate::notify::discord::render(&out).to_string(),
            crate::notify::slack::render_batch(&[out]).to_string(),
            crate::notify::feishu::render_batch(&[out]).to_string(),
            crate::notify::dingtalk::render_batch(&[out]).to_string(),
            crate::notify::wecom::render_batch(&[out]).to_string(),
        ];
        for card in rendered {
            assert!(card.contains("and 15 more"), "{card}");
        }
    }
}
