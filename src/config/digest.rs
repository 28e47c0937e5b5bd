//! `[[channels]] digest`, `digest_timezone`, `digest_when_green`: a channel's scheduled digest.
//! The cron is read by the same parser as `poll.schedule` and the maintenance windows
//! (`config/schedule.rs`), so validation accepts exactly what will run.
//!
//! `digest_timezone` defaults to the channel's `timezone` (which defaults to `UTC`, as the
//! maintenance windows' `timezone` does), so one key sets a team's day for its digest and its
//! "Mute until 09:00" button.

use crate::config::ChannelConfig;
use crate::config::schedule::parse_schedule;

/// A channel's digest schedule, parsed.
#[derive(Debug, Clone)]
pub struct DigestSchedule {
    pub cron: croner::Cron,
    pub timezone: chrono_tz::Tz,
}

impl ChannelConfig {
    /// The channel's digest schedule; `None` without `digest` (or when it is invalid, which
    /// validation refuses).
    pub fn digest_schedule(&self) -> Option<DigestSchedule> {
        let cron = parse_schedule(self.digest.as_deref()?).ok()?;
        let timezone = self.digest_timezone().ok()?;
        Some(DigestSchedule { cron, timezone })
    }

    /// `digest_timezone`, default the channel's `timezone` (validated apart), else UTC.
    fn digest_timezone(&self) -> Result<chrono_tz::Tz, String> {
        match self.digest_timezone.as_deref() {
            None => Ok(self.tz()),
            Some(name) => name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
                format!(
                    "{name:?} is not an IANA timezone name \
                     (e.g. \"UTC\", \"Asia/Shanghai\", \"Europe/Berlin\")"
                )
            }),
        }
    }

    /// The digest keys of one channel; `key` is `channels[i]`.
    pub(super) fn validate_digest(&self, key: &str, problems: &mut Vec<String>) {
        let Some(expr) = self.digest.as_deref() else {
            if self.digest_timezone.is_some() || self.digest_when_green {
                problems.push(format!(
                    "{key}: digest_timezone and digest_when_green need digest \
                     (a 6-field cron, e.g. digest = \"0 0 9 * * MON-FRI\")"
                ));
            }
            return;
        };
        if let Err(e) = parse_schedule(expr) {
            problems.push(format!("{key}.digest: {e}"));
        }
        if let Err(e) = self.digest_timezone() {
            problems.push(format!("{key}.digest_timezone: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::with;

    const CHANNEL: &str = "[[channels]]\nname = \"c\"\ntype = \"stdout\"\n";

    #[test]
    fn a_digest_is_a_six_field_cron_in_an_iana_timezone() {
        let config = with(&format!(
            "{CHANNEL}digest = \"0 0 9 * * MON-FRI\"\ndigest_timezone = \"Asia/Shanghai\"\n\
             digest_when_green = true"
        ))
        .unwrap();
        let channel = &config.channels[0];
        let schedule = channel.digest_schedule().unwrap();
        assert_eq!(schedule.timezone, chrono_tz::Asia::Shanghai);
        assert!(channel.digest_when_green);
        let utc = with(&format!("{CHANNEL}digest = \"0 0 9 * * *\"")).unwrap();
        assert_eq!(
            utc.channels[0].digest_schedule().unwrap().timezone,
            chrono_tz::UTC
        );
        assert!(
            with(CHANNEL).unwrap().channels[0]
                .digest_schedule()
                .is_none()
        );
    }

    #[test]
    fn bad_digest_keys_are_named() {
        let err = with(&format!(
            "{CHANNEL}digest = \"0 9 * * *\"\ndigest_timezone = \"Mars/Olympus\""
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("channels[0].digest: \"0 9 * * *\" has 5 fields"),
            "{err}"
        );
        assert!(err.contains("channels[0].digest_timezone"), "{err}");
        let err = with(&format!("{CHANNEL}digest_when_green = true"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("channels[0]: digest_timezone and digest_when_green need digest"),
            "{err}"
        );
        let err = with(&format!("{CHANNEL}batch = true"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("channels[0].batch: only webhook channels batch"),
            "{err}"
        );
    }
}
