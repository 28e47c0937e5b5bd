//! `[poll]`: when and how hard the bot asks CodeArts about its jobs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::schedule::parse_schedule;
use crate::domain::list_poll::PollMode;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// 6-field cron with seconds, UTC.
    pub schedule: String,
    pub concurrency: usize,
    pub timeout_secs: u64,
    /// Ceiling on CodeArts calls per second (absent: none; throttling answers still slow the
    /// poller down).
    pub max_rps: Option<f64>,
    /// How often the job lists of subscribed projects (`[[channels]] projects`) are read
    /// again to find new and removed jobs.
    pub discover_every_secs: u64,
    /// How jobs are read: through their project's job list (100 per call), one ShowJobInfo
    /// per job, or per project whichever costs fewer calls (docs/codearts.md).
    pub mode: PollMode,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            schedule: "0 * * * * *".to_owned(),
            concurrency: 8,
            timeout_secs: 10,
            max_rps: None,
            discover_every_secs: 300,
            mode: PollMode::Auto,
        }
    }
}

impl PollConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub(crate) fn validate(&self, problems: &mut Vec<String>) {
        if let Err(e) = parse_schedule(&self.schedule) {
            problems.push(format!("poll.schedule: {e}"));
        }
        if !(1..=256).contains(&self.concurrency) {
            problems.push(format!(
                "poll.concurrency: {} is out of range (1 to 256)",
                self.concurrency
            ));
        }
        if let Some(rps) = self.max_rps
            && !(rps > 0.0 && rps <= 10_000.0)
        {
            problems.push(format!(
                "poll.max_rps: {rps} is out of range (above 0, at most 10000)"
            ));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            problems.push(format!(
                "poll.timeout_secs: {} is out of range (1 to 300)",
                self.timeout_secs
            ));
        }
        if !(10..=86_400).contains(&self.discover_every_secs) {
            problems.push(format!(
                "poll.discover_every_secs: {} is out of range (10 to 86400)",
                self.discover_every_secs
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::with;

    #[test]
    fn the_poll_mode_defaults_to_auto_and_names_the_choices_when_wrong() {
        assert_eq!(with("").unwrap().poll.mode, PollMode::Auto);
        for (text, mode) in [("list", PollMode::List), ("job", PollMode::Job)] {
            let config = with(&format!("[poll]\nmode = \"{text}\"")).unwrap();
            assert_eq!(config.poll.mode, mode);
        }
        let err = with("[poll]\nmode = \"batch\"").unwrap_err().to_string();
        assert!(err.contains("mode"), "{err}");
        assert!(err.contains("`auto`, `list`, `job`"), "{err}");
    }
}
