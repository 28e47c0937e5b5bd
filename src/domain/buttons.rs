//! The buttons on a card (docs/actions.md, "Buttons"): what each does, how it is labelled, and
//! the opaque ids the platforms carry back when one is clicked.
//!
//! A button's id names a row in the store (`buttons`), never a job: a client that edits the
//! id it sends back can only name another button, and an id the store does not know (or that
//! expired) is answered "this button has expired".

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

/// The prefix of every custom id / action id the bot issues, so foreign ids are told apart.
pub const ID_PREFIX: &str = "cb1:";

/// How long a card's buttons stay valid: past that, `/job <id>` gives a fresh card.
pub const CARD_TTL: Duration = Duration::days(14);
/// How long a confirmation (Discord's "Confirm re-run") stays valid.
pub const CONFIRM_TTL: Duration = Duration::minutes(5);
/// "Mute until tomorrow" ends at this hour of the channel's day.
pub const MORNING_HOUR: u32 = 9;

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ButtonAction {
    Rerun,
    Stop,
    Mute1h,
    Mute4h,
    /// Until 09:00 tomorrow in the channel's timezone.
    MuteTomorrow,
    Ack,
    /// The second step of Re-run on Discord (an ephemeral confirmation).
    ConfirmRerun,
    ConfirmStop,
}

impl ButtonAction {
    /// The buttons a failure card carries, in the order they are shown.
    pub const FAILURE_CARD: [ButtonAction; 5] = [
        ButtonAction::Rerun,
        ButtonAction::Ack,
        ButtonAction::Mute1h,
        ButtonAction::Mute4h,
        ButtonAction::MuteTomorrow,
    ];

    /// Every action, for parsing.
    pub const ALL: [ButtonAction; 8] = [
        ButtonAction::Rerun,
        ButtonAction::Stop,
        ButtonAction::Mute1h,
        ButtonAction::Mute4h,
        ButtonAction::MuteTomorrow,
        ButtonAction::Ack,
        ButtonAction::ConfirmRerun,
        ButtonAction::ConfirmStop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ButtonAction::Rerun => "rerun",
            ButtonAction::Stop => "stop",
            ButtonAction::Mute1h => "mute_1h",
            ButtonAction::Mute4h => "mute_4h",
            ButtonAction::MuteTomorrow => "mute_tomorrow",
            ButtonAction::Ack => "ack",
            ButtonAction::ConfirmRerun => "confirm_rerun",
            ButtonAction::ConfirmStop => "confirm_stop",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            ButtonAction::Rerun => "Re-run",
            ButtonAction::Stop => "Stop",
            ButtonAction::Mute1h => "Mute 1 h",
            ButtonAction::Mute4h => "Mute 4 h",
            ButtonAction::MuteTomorrow => "Mute until 09:00",
            ButtonAction::Ack => "Ack",
            ButtonAction::ConfirmRerun => "Confirm re-run",
            ButtonAction::ConfirmStop => "Confirm stop",
        }
    }

    /// Re-run and Stop change CodeArts: they need the actions role and a confirmation.
    pub fn acts(self) -> bool {
        matches!(
            self,
            ButtonAction::Rerun
                | ButtonAction::Stop
                | ButtonAction::ConfirmRerun
                | ButtonAction::ConfirmStop
        )
    }

    /// The confirmation step that follows a first click, for the buttons that have one.
    pub fn confirmation(self) -> Option<Self> {
        match self {
            ButtonAction::Rerun => Some(ButtonAction::ConfirmRerun),
            ButtonAction::Stop => Some(ButtonAction::ConfirmStop),
            _ => None,
        }
    }

    /// The action a confirmation performs (the button itself for the others).
    pub fn performs(self) -> Self {
        match self {
            ButtonAction::ConfirmRerun => ButtonAction::Rerun,
            ButtonAction::ConfirmStop => ButtonAction::Stop,
            other => other,
        }
    }
}

/// The buttons issued for one card: each action with its opaque id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardButtons {
    pub ids: Vec<(ButtonAction, String)>,
}

impl CardButtons {
    /// The id a platform carries for `action` (`cb1:<id>`), if the card has that button.
    pub fn custom_id(&self, action: ButtonAction) -> Option<String> {
        self.ids
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, id)| format!("{ID_PREFIX}{id}"))
    }
}

/// The store id inside a custom id the platform sent back, when it is one of ours.
pub fn stored_id(custom_id: &str) -> Option<&str> {
    let id = custom_id.strip_prefix(ID_PREFIX)?;
    (!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(id)
}

/// How long "Mute until 09:00" lasts from `now`: until the next 09:00 in `tz` that is at
/// least an hour away (so a click at 08:30 mutes until tomorrow, not for half an hour).
pub fn until_morning<Tz: TimeZone>(now: DateTime<Utc>, tz: &Tz) -> Duration {
    let local = now.with_timezone(tz);
    let morning = NaiveTime::from_hms_opt(MORNING_HOUR, 0, 0).unwrap_or_default();
    let mut day = local.date_naive();
    for _ in 0..3 {
        // A 09:00 that does not exist (a DST gap) falls back to the first instant after it.
        let at = tz
            .from_local_datetime(&day.and_time(morning))
            .earliest()
            .map(|t| t.with_timezone(&Utc));
        if let Some(at) = at
            && at - now >= Duration::hours(1)
        {
            return at - now;
        }
        day = day.succ_opt().unwrap_or(day);
    }
    // Unreachable for real timezones; a day is the honest fallback.
    Duration::hours(24)
}

/// The duration of a mute button as the silence parser reads it (`60m`, `240m`, ...).
pub fn mute_minutes(action: ButtonAction, now: DateTime<Utc>, tz: chrono_tz::Tz) -> Option<i64> {
    match action {
        ButtonAction::Mute1h => Some(60),
        ButtonAction::Mute4h => Some(240),
        ButtonAction::MuteTomorrow => {
            let d = until_morning(now, &tz);
            Some((d.num_seconds() + 59) / 60)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_only_acting_ones_confirm() {
        for a in ButtonAction::ALL {
            assert_eq!(ButtonAction::parse(a.as_str()), Some(a));
            assert_eq!(a.confirmation().is_some(), a.acts() && a.performs() == a);
        }
        assert_eq!(ButtonAction::parse("deploy"), None);
    }

    #[test]
    fn only_our_well_formed_ids_are_read_back() {
        let id = "0123456789abcdef0123456789abcdef".to_owned();
        let buttons = CardButtons {
            ids: vec![(ButtonAction::Ack, id.clone())],
        };
        let custom = buttons.custom_id(ButtonAction::Ack).unwrap();
        assert_eq!(stored_id(&custom), Some(id.as_str()));
        assert_eq!(buttons.custom_id(ButtonAction::Rerun), None);
        assert_eq!(stored_id("cb1:"), None);
        assert_eq!(stored_id("cb1:x' OR 1=1"), None);
        assert_eq!(stored_id("other:abc"), None);
    }

    #[test]
    fn mute_until_morning_is_the_next_nine_oclock_at_least_an_hour_away() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 2, h, m, 0).unwrap();
        let shanghai: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        // 15:00 UTC is 23:00 in Shanghai: 09:00 there is 01:00 UTC tomorrow, 10 h away.
        assert_eq!(until_morning(at(15, 0), &shanghai), Duration::hours(10));
        // 00:30 UTC is 08:30 in Shanghai: 30 min to 09:00 is too short, so the day after.
        assert_eq!(
            until_morning(at(0, 30), &shanghai),
            Duration::minutes(30) + Duration::hours(24)
        );
        assert_eq!(until_morning(at(10, 0), &Utc), Duration::hours(23));
        assert_eq!(
            mute_minutes(ButtonAction::MuteTomorrow, at(10, 0), chrono_tz::UTC),
            Some(23 * 60)
        );
        assert_eq!(
            mute_minutes(ButtonAction::Ack, at(10, 0), chrono_tz::UTC),
            None
        );
    }
}
