//! The job card as plain text: what `check` prints for one job.

use std::fmt::Write;

use chrono::{TimeZone, Utc};

use crate::codearts::{JobId, JobInfo};

/// A multi-line card: name, id, status, last build, duration, health, disabled flag.
pub fn job_card_text(job: &JobId, info: &JobInfo) -> String {
    let mut out = String::new();
    let status = info.last_build_status.as_deref().unwrap_or("unknown");
    let _ = writeln!(out, "{}  [{}]", info.display_name(), status);
    let _ = writeln!(out, "  id:           {job}");
    if let Some(project) = &info.project_id {
        let _ = writeln!(out, "  project:      {project}");
    }
    if let Some(running) = &info.running_status {
        let _ = writeln!(out, "  running:      {running}");
    }
    if let Some(when) = info
        .last_build_time
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
    {
        let _ = writeln!(
            out,
            "  last build:   {}",
            when.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    if let Some(secs) = info.build_seconds() {
        let _ = writeln!(out, "  duration:     {secs:.2} s");
    }
    if let Some(score) = info.health_score {
        let _ = writeln!(out, "  health score: {score}");
    }
    let _ = writeln!(
        out,
        "  disabled:     {}",
        if info.disabled == Some(true) {
            "yes"
        } else {
            "no"
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_shows_what_the_on_call_engineer_needs() {
        let job = JobId::parse("f5af662119404ad187437cd272b5099b").unwrap();
        let info = JobInfo {
            job_name: Some("web".into()),
            last_build_status: Some("failed".into()),
            last_build_time: Some(1_721_793_407_000),
            build_time: Some("27.51".into()),
            health_score: Some(74),
            disabled: Some(false),
            ..JobInfo::default()
        };
        let card = job_card_text(&job, &info);
        assert!(card.starts_with("web  [failed]"), "{card}");
        assert!(card.contains("2024-07-24 03:56:47 UTC"), "{card}");
        assert!(card.contains("27.51 s"), "{card}");
        assert!(card.contains("health score: 74"), "{card}");
    }
}
