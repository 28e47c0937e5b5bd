//! When a channel's digest is due: its `digest` cron in its `digest_timezone`, against the last
//! instant the store says was handled. Each instant is handled once (sent, skipped because
//! all green, or skipped because it was missed); the store's claim makes that hold across
//! restarts and concurrent callers.
//!
//! Decisions:
//! - A channel seen for the first time (no stored instant) starts its clock at the latest
//!   instant at or before now, sending nothing: the first digest is the next instant.
//! - An instant missed while the bot was down is sent late when it is at most [`LATE_GRACE`]
//!   old; an older one is skipped (and logged), the next instant comes as usual. Only the
//!   latest missed instant counts: a bot down for a week sends at most one late digest.

use chrono::{DateTime, SubsecRound, Utc};

/// How late a missed digest may still be sent.
pub const LATE_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// What to do about a channel's digest now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing: the latest instant was handled (or the cron never fires).
    Nothing,
    /// First sight of this schedule: record this instant, send nothing.
    Start(DateTime<Utc>),
    /// Send the digest of this instant (on time, or late within [`LATE_GRACE`]).
    Send(DateTime<Utc>),
    /// This instant passed more than [`LATE_GRACE`] ago unsent: record it, send nothing.
    Missed(DateTime<Utc>),
}

/// The latest instant of `cron` in `tz` at or before `now`.
pub fn latest(cron: &croner::Cron, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    search(now, tz, |t| cron.find_previous_occurrence(t, true))
}

/// The instant of `cron` in `tz` just before `instant`: where its period starts.
pub fn before(
    cron: &croner::Cron,
    tz: chrono_tz::Tz,
    instant: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    search(instant, tz, |t| cron.find_previous_occurrence(t, false))
}

/// The first instant of `cron` in `tz` after `now`.
pub fn next(cron: &croner::Cron, tz: chrono_tz::Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    search(now, tz, |t| cron.find_next_occurrence(t, false))
}

/// Runs a croner search from `from` in `tz`, in whole seconds: croner keeps the fraction of a
/// second it started from, and an instant must be the same whenever it is computed (the store
/// compares it with the one it claimed).
fn search(
    from: DateTime<Utc>,
    tz: chrono_tz::Tz,
    find: impl Fn(
        &DateTime<chrono_tz::Tz>,
    ) -> Result<DateTime<chrono_tz::Tz>, croner::errors::CronError>,
) -> Option<DateTime<Utc>> {
    find(&from.trunc_subsecs(0).with_timezone(&tz))
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(0))
}

/// What is due now, given the last instant handled (`None`: never).
pub fn due(
    cron: &croner::Cron,
    tz: chrono_tz::Tz,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Due {
    let Some(latest) = latest(cron, tz, now) else {
        return Due::Nothing;
    };
    match last {
        None => Due::Start(latest),
        Some(last) if latest <= last => Due::Nothing,
        Some(_) if now - latest <= LATE_GRACE => Due::Send(latest),
        Some(_) => Due::Missed(latest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn cron(expr: &str) -> croner::Cron {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .unwrap()
    }

    fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_daily_digest_is_sent_once_per_instant_in_its_timezone() {
        // 09:00 in Shanghai is 01:00 UTC.
        let (c, tz) = (cron("0 0 9 * * *"), chrono_tz::Asia::Shanghai);
        assert_eq!(due(&c, tz, None, utc(2, 0, 30)), Due::Start(utc(1, 1, 0)));
        assert_eq!(due(&c, tz, Some(utc(1, 1, 0)), utc(2, 0, 59)), Due::Nothing);
        assert_eq!(
            due(&c, tz, Some(utc(1, 1, 0)), utc(2, 1, 0)),
            Due::Send(utc(2, 1, 0))
        );
        assert_eq!(due(&c, tz, Some(utc(2, 1, 0)), utc(2, 1, 1)), Due::Nothing);
        assert_eq!(before(&c, tz, utc(2, 1, 0)), Some(utc(1, 1, 0)));
        assert_eq!(next(&c, tz, utc(2, 1, 0)), Some(utc(3, 1, 0)));
    }

    #[test]
    fn an_instant_is_the_same_whatever_fraction_of_a_second_it_is_seen_at() {
        let (c, tz) = (cron("0 0 9 * * *"), chrono_tz::UTC);
        let ms = chrono::Duration::milliseconds;
        let seen = due(&c, tz, Some(utc(1, 9, 0)), utc(2, 9, 0) + ms(20));
        assert_eq!(seen, Due::Send(utc(2, 9, 0)));
        assert_eq!(
            due(&c, tz, Some(utc(2, 9, 0)), utc(2, 9, 0) + ms(980)),
            Due::Nothing
        );
        assert_eq!(next(&c, tz, utc(2, 8, 0) + ms(500)), Some(utc(2, 9, 0)));
    }

    #[test]
    fn a_missed_instant_is_sent_late_within_the_hour_else_skipped() {
        let (c, tz) = (cron("0 0 9 * * *"), chrono_tz::UTC);
        let last = Some(utc(1, 9, 0));
        assert_eq!(due(&c, tz, last, utc(2, 9, 59)), Due::Send(utc(2, 9, 0)));
        assert_eq!(due(&c, tz, last, utc(2, 10, 0)), Due::Send(utc(2, 9, 0)));
        assert_eq!(due(&c, tz, last, utc(2, 10, 1)), Due::Missed(utc(2, 9, 0)));
        // Down for days: only the latest instant counts, once.
        assert_eq!(due(&c, tz, last, utc(5, 9, 30)), Due::Send(utc(5, 9, 0)));
    }

    #[test]
    fn a_changed_schedule_waits_for_its_next_instant() {
        // Stored: today 09:00 of the old cron; the new one fires at 17:00.
        let (c, tz) = (cron("0 0 17 * * *"), chrono_tz::UTC);
        assert_eq!(due(&c, tz, Some(utc(2, 9, 0)), utc(2, 16, 0)), Due::Nothing);
        assert_eq!(
            due(&c, tz, Some(utc(2, 9, 0)), utc(2, 17, 0)),
            Due::Send(utc(2, 17, 0))
        );
    }
}
