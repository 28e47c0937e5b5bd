//! Cron schedules as the scheduler reads them: `poll.schedule` and the maintenance windows'
//! `start` share one parser so that validation accepts exactly what will run.

use std::time::Duration;

/// The gap between the schedule's next two ticks: the poll interval `/readyz` measures against.
pub fn schedule_interval(expr: &str) -> Duration {
    let Ok(cron) = parse_schedule(expr) else {
        return Duration::from_secs(60);
    };
    let now = chrono::Utc::now();
    let first = cron.find_next_occurrence(&now, false);
    let second = first
        .as_ref()
        .ok()
        .and_then(|t| cron.find_next_occurrence(t, false).ok());
    match (first, second) {
        (Ok(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
        _ => Duration::from_secs(60),
    }
}

/// Parses a 6-field cron expression (seconds first, UTC) exactly as the scheduler will.
pub(crate) fn parse_schedule(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; expected 6 (sec min hour day month weekday), \
             e.g. \"0 * * * * *\" for every minute"
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_like_the_scheduler() {
        assert!(parse_schedule("0 * * * * *").is_ok());
        assert!(parse_schedule("*/10 * * * * *").is_ok());
        assert!(parse_schedule("0 61 * * * *").is_err());
    }

    #[test]
    fn schedule_interval_is_the_gap_between_ticks() {
        assert_eq!(schedule_interval("*/1 * * * * *"), Duration::from_secs(1));
        assert_eq!(schedule_interval("0 * * * * *"), Duration::from_secs(60));
        assert_eq!(schedule_interval("*/10 * * * * *"), Duration::from_secs(10));
    }
}
