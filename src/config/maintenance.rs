//! `[[maintenance]]`: recurring windows, each a cron start in a timezone and a length, during
//! which events are recorded but not sent.

use serde::{Deserialize, Serialize};

use crate::config::schedule::parse_schedule;

/// `[[maintenance]]`: a recurring window during which events are recorded but not sent.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub name: String,
    /// 6-field cron (sec min hour day month weekday) of the moments a window starts, in
    /// `timezone`: `"0 0 22 * * SAT"` is every Saturday at 22:00.
    pub start: String,
    /// How long each window lasts.
    pub duration_mins: u32,
    /// IANA timezone of `start` (default `UTC`), e.g. `Asia/Shanghai`, `Europe/Berlin`.
    #[serde(default = "utc_name")]
    pub timezone: String,
}

fn utc_name() -> String {
    "UTC".to_owned()
}

impl MaintenanceWindow {
    /// Whether `now` falls inside one of the window's occurrences: the first start at or after
    /// `now - duration` is not later than `now`. An invalid window (refused by validation)
    /// contains nothing.
    pub fn contains(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let (Ok(cron), Ok(tz)) = (
            parse_schedule(&self.start),
            self.timezone.parse::<chrono_tz::Tz>(),
        ) else {
            return false;
        };
        let from =
            (now - chrono::Duration::minutes(i64::from(self.duration_mins))).with_timezone(&tz);
        cron.find_next_occurrence(&from, false)
            .is_ok_and(|start| start.with_timezone(&chrono::Utc) <= now)
    }

    /// `key` is `maintenance[i]`.
    pub(crate) fn validate(&self, key: &str, problems: &mut Vec<String>) {
        if let Err(e) = parse_schedule(&self.start) {
            problems.push(format!("{key}.start: {e}"));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            problems.push(format!(
                "{key}.timezone: {:?} is not an IANA timezone name \
                 (e.g. \"UTC\", \"Asia/Shanghai\", \"Europe/Berlin\")",
                self.timezone
            ));
        }
        if !(1..=10_080).contains(&self.duration_mins) {
            problems.push(format!(
                "{key}.duration_mins: {} is out of range (1 to 10080, a week)",
                self.duration_mins
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::Config;

    #[test]
    fn a_weekly_window_follows_its_timezone() {
        use chrono::TimeZone;
        let window = MaintenanceWindow {
            name: "saturday night".into(),
            start: "0 0 22 * * SAT".into(),
            duration_mins: 240,
            timezone: "Asia/Shanghai".into(),
        };
        // Saturday 2026-11-28 22:00 in Shanghai is 14:00 UTC; the window ends at 18:00 UTC.
        let utc = |d, h, m| chrono::Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        assert!(!window.contains(utc(28, 13, 59)));
        assert!(window.contains(utc(28, 14, 0)));
        assert!(window.contains(utc(28, 17, 59)));
        assert!(!window.contains(utc(28, 18, 1)));
        assert!(!window.contains(utc(29, 15, 0)), "Sunday");
    }

    #[test]
    fn bad_windows_are_named() {
        let text = r#"
            [codearts]
            region = "cn-north-4"
            [codearts.auth]
            token = "t"
            [[maintenance]]
            name = "w"
            start = "every saturday"
            duration_mins = 0
            timezone = "Mars/Olympus"
        "#;
        let err = Config::from_toml(text, "t.toml", &|_| None)
            .unwrap_err()
            .to_string();
        for key in [
            "maintenance[0].start",
            "maintenance[0].duration_mins",
            "maintenance[0].timezone",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
