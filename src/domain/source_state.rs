//! "Monitoring blind": when every poll of a cycle fails, the bot cannot see CodeArts at all,
//! which must never pass for "all is well". After `rules.blind_after` such cycles in a row one
//! `source_unreachable` goes to the channels with `source_alerts = true`; the first cycle that
//! reaches CodeArts again sends one `source_recovered` saying how long the bot was blind.
//! No job event is derived from the gap (failed polls never change a snapshot).
//!
//! [`step`] is pure; the state lives in the database (`source_state`) so a restart in the
//! middle of an outage neither repeats the alert nor forgets to send the recovery.

use chrono::{DateTime, Utc};

use crate::domain::event::{Event, EventKind};

/// What the bot knows about CodeArts as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// Cycles in a row in which every poll failed.
    pub failed_cycles: u32,
    /// When the first of them ran.
    pub blind_since: Option<DateTime<Utc>>,
    /// Whether `source_unreachable` was sent for this outage.
    pub alerted: bool,
    /// The last failing cycle's error kinds, e.g. `timeout: 12`.
    pub cause: Option<String>,
}

/// How a cycle went, for the blind state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleOutcome {
    /// At least one poll got an answer about its job (200, 404 or 403).
    Reached,
    /// Every poll failed; the error kinds and counts.
    Unreachable { cause: String },
    /// Nothing was polled: says nothing.
    Idle,
}

/// The next state, and the event to send, if any.
pub fn step(
    state: &SourceState,
    outcome: &CycleOutcome,
    blind_after: u32,
    now: DateTime<Utc>,
) -> (SourceState, Option<Event>) {
    match outcome {
        CycleOutcome::Idle => (state.clone(), None),
        CycleOutcome::Unreachable { cause } => {
            let mut next = SourceState {
                failed_cycles: state.failed_cycles.saturating_add(1),
                blind_since: state.blind_since.or(Some(now)),
                alerted: state.alerted,
                cause: Some(cause.clone()),
            };
            if next.alerted || next.failed_cycles < blind_after.max(1) {
                return (next, None);
            }
            next.alerted = true;
            let since = next.blind_since.unwrap_or(now);
            let summary = format!(
                "CodeArts Build cannot be reached: every poll failed for {} cycles in a row, \
                 since {} ({cause}). Job changes are not seen until it answers again.",
                next.failed_cycles,
                since.format("%Y-%m-%d %H:%M:%S UTC"),
            );
            (
                next,
                Some(source_event(EventKind::SourceUnreachable, summary, now)),
            )
        }
        CycleOutcome::Reached => {
            let event = state.alerted.then(|| {
                let blind_for = state
                    .blind_since
                    .map(|since| (now - since).to_std().unwrap_or_default())
                    .unwrap_or_default();
                let summary = format!(
                    "CodeArts Build reachable again after {} blind ({} failed cycles; last cause: {}). \
                     Changes made meanwhile are reported as of now.",
                    crate::util::text::format_duration(blind_for.as_secs_f64())
                        .unwrap_or_else(|| "a moment".to_owned()),
                    state.failed_cycles,
                    state.cause.as_deref().unwrap_or("unknown"),
                );
                source_event(EventKind::SourceRecovered, summary, now)
            });
            (SourceState::default(), event)
        }
    }
}

fn source_event(kind: EventKind, summary: String, now: DateTime<Utc>) -> Event {
    Event {
        kind,
        job_id: String::new(),
        job_name: "CodeArts Build".to_owned(),
        detected_at: now,
        previous: None,
        current: None,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, minute, 0).unwrap()
    }

    fn down() -> CycleOutcome {
        CycleOutcome::Unreachable {
            cause: "server_error: 5".to_owned(),
        }
    }

    /// Runs outcomes from a clean state and returns the kinds sent at each step.
    fn run(outcomes: &[CycleOutcome], blind_after: u32) -> Vec<Option<EventKind>> {
        let mut state = SourceState::default();
        outcomes
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let (next, event) = step(&state, o, blind_after, at(i as u32));
                state = next;
                event.map(|e| e.kind)
            })
            .collect()
    }

    #[test]
    fn one_alert_after_blind_after_cycles_and_one_recovery() {
        use CycleOutcome::{Idle, Reached};
        use EventKind::{SourceRecovered, SourceUnreachable};
        assert_eq!(
            run(
                &[
                    Reached,
                    down(),
                    down(),
                    Idle,
                    down(),
                    down(),
                    down(),
                    Reached,
                    Reached
                ],
                3
            ),
            vec![
                None,
                None,
                None,
                None,
                Some(SourceUnreachable),
                None,
                None,
                Some(SourceRecovered),
                None
            ]
        );
    }

    #[test]
    fn an_outage_shorter_than_blind_after_is_silent_both_ways() {
        use CycleOutcome::Reached;
        assert_eq!(run(&[down(), down(), Reached], 3), vec![None, None, None]);
    }

    #[test]
    fn the_recovery_says_how_long_and_why() {
        let state = SourceState {
            failed_cycles: 4,
            blind_since: Some(at(0)),
            alerted: true,
            cause: Some("timeout: 10".to_owned()),
        };
        let (next, event) = step(&state, &CycleOutcome::Reached, 3, at(5));
        assert_eq!(next, SourceState::default());
        let summary = event.unwrap().summary;
        assert!(
            summary.contains("5m") && summary.contains("timeout: 10"),
            "{summary}"
        );
    }
}
