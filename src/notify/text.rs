//! Text helpers shared by the renderers: truncation with a visible marker, Discord markdown
//! escaping and mention neutralising, control-character scrubbing, and the wording of an
//! event's facts (headline, icon, status and health changes, durations, times).
//!
//! Everything here is pure; the renderers decide which helpers their platform needs.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::detect::{Event, EventKind, Severity};

/// Appended to every shortened text so a reader knows something was cut.
pub const MARKER: char = '…';

/// A zero-width space: placed after `@` so `@everyone` or `<@123>` can never ping anyone.
const ZWSP: char = '\u{200B}';

/// Shortens `text` to at most `max` characters (code points), ending with [`MARKER`] when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    truncate_by(text, max, |_| 1)
}

/// Shortens `text` to at most `max` UTF-16 code units, ending with [`MARKER`] when cut.
///
/// Used for Discord's limits: a UTF-16 count is never smaller than a code-point count, so a
/// text that fits by this measure fits whichever way Discord counts.
pub fn truncate_utf16(text: &str, max: usize) -> String {
    truncate_by(text, max, char::len_utf16)
}

/// The length Discord's limits are checked against (see [`truncate_utf16`]).
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

fn truncate_by(text: &str, max: usize, width: impl Fn(char) -> usize) -> String {
    let total: usize = text.chars().map(&width).sum();
    if total <= max {
        return text.to_owned();
    }
    let budget = max.saturating_sub(width(MARKER));
    let mut out = String::with_capacity(budget + MARKER.len_utf8());
    let mut used = 0;
    for c in text.chars() {
        let w = width(c);
        if used + w > budget {
            break;
        }
        out.push(c);
        used += w;
    }
    // A trailing escape or zero-width space would only confuse the marker.
    while out.ends_with('\\') || out.ends_with(ZWSP) {
        out.pop();
    }
    if max >= width(MARKER) {
        out.push(MARKER);
    }
    out
}

/// Escapes the characters Discord markdown gives a meaning to, so a job name such as
/// `**prod**` or `[click](https://…)` shows as typed. Characters that only mean something at
/// the start of a line (`-`, `#`, `>`, `1.`) are escaped only there, to keep names readable.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut line_start = true;
    let mut leading_digits = false;
    for c in text.chars() {
        let anywhere = matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '[' | ']');
        let at_start = line_start && matches!(c, '-' | '#' | '>' | '+');
        let list_number = leading_digits && c == '.';
        if anywhere || at_start || list_number {
            out.push('\\');
        }
        out.push(c);
        leading_digits = (line_start || leading_digits) && c.is_ascii_digit();
        line_start = c == '\n' || (line_start && (c.is_whitespace() || at_start)) || list_number;
    }
    out
}

/// Makes mentions inert by putting a zero-width space after every `@` (`@everyone`, `@here`,
/// `<@id>`, `<@!id>`, `<@&id>`) and after `<#` (channel links). Belt and braces with
/// `allowed_mentions`: the text must not ping even where that setting is ignored.
pub fn neutralize_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev = None;
    for c in text.chars() {
        out.push(c);
        if c == '@' || (c == '#' && prev == Some('<')) {
            out.push(ZWSP);
        }
        prev = Some(c);
    }
    out
}

/// Untrusted text (job names, statuses) made safe for Discord: control characters removed,
/// markdown escaped, mentions neutralised.
pub fn discord_safe(text: &str) -> String {
    neutralize_mentions(&escape_markdown(&printable(text)))
}

/// Replaces control characters (newlines, escape sequences) with spaces, so an untrusted
/// string stays on one line and cannot drive a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The icon shown before a card's title.
pub fn severity_icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "🔴",
        Severity::Warning => "🟠",
        Severity::Good => "🟢",
        Severity::Info => "🔵",
    }
}

/// A short headline for a kind of event; the title is `<headline>: <job name>`.
pub fn headline(kind: EventKind) -> &'static str {
    match kind {
        EventKind::BuildFailed => "Build failed",
        EventKind::BuildRecovered => "Build fixed",
        EventKind::BuildStillFailing => "Still failing",
        EventKind::BuildStatusChanged => "Build status changed",
        EventKind::HealthDropped => "Health score dropped",
        EventKind::JobDisabled => "Job disabled",
        EventKind::JobEnabled => "Job enabled",
        EventKind::JobRenamed => "Job renamed",
        EventKind::JobNotFound => "Job no longer exists",
        EventKind::JobAccessLost => "Access lost to job",
    }
}

/// `before → after` when the two differ, the one value when they agree or only one is known,
/// `before (last seen)` when the job is no longer visible.
fn change(before: Option<String>, after: Option<String>, gone: bool) -> Option<String> {
    match (before, after) {
        (Some(b), Some(a)) if a != b => Some(format!("{b} → {a}")),
        (_, Some(a)) => Some(a),
        (Some(b), None) if gone => Some(format!("{b} (last seen)")),
        (Some(b), None) => Some(b),
        (None, None) => None,
    }
}

/// The last build status, as a change when it moved.
pub fn status_change(event: &Event) -> Option<String> {
    let pick = |i: Option<&crate::codearts::JobInfo>| {
        i.and_then(|i| i.last_build_status.as_deref())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    change(
        pick(event.previous.as_ref()),
        pick(event.current.as_ref()),
        event.current.is_none(),
    )
}

/// The health score, as a change when it moved.
pub fn health_change(event: &Event) -> Option<String> {
    let pick = |i: Option<&crate::codearts::JobInfo>| i.and_then(|i| i.health_score);
    change(
        pick(event.previous.as_ref()).map(|v| v.to_string()),
        pick(event.current.as_ref()).map(|v| v.to_string()),
        event.current.is_none(),
    )
}

/// Whether the job is disabled, as a change when it moved.
pub fn disabled_change(event: &Event) -> Option<String> {
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let pick = |i: Option<&crate::codearts::JobInfo>| i.and_then(|i| i.disabled).map(yes_no);
    change(
        pick(event.previous.as_ref()),
        pick(event.current.as_ref()),
        event.current.is_none(),
    )
}

/// The most recent view of the job: the current answer, or the last one seen.
fn latest(event: &Event) -> Option<&crate::codearts::JobInfo> {
    event.current.as_ref().or(event.previous.as_ref())
}

/// When the last build ran (from `last_build_time`, Unix milliseconds).
pub fn last_build_time(event: &Event) -> Option<DateTime<Utc>> {
    let ms = latest(event)?.last_build_time?;
    Utc.timestamp_millis_opt(ms).single()
}

/// How long the last build took, in seconds.
pub fn build_seconds(event: &Event) -> Option<f64> {
    latest(event)?.build_seconds()
}

/// A build duration as people say it: `4.2s`, `28s`, `3m 05s`, `1h 02m`.
/// `None` for a negative or non-finite number.
pub fn format_duration(seconds: f64) -> Option<String> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    if seconds < 10.0 {
        let tenths = (seconds * 10.0).round() / 10.0;
        if tenths < 10.0 {
            return Some(format!("{tenths:.1}s"));
        }
    }
    // Whole seconds from here; the float is finite and non-negative, `as` saturates.
    let whole = seconds.round() as u64;
    Some(match whole {
        0..60 => format!("{whole}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60),
    })
}

/// A UTC instant in RFC 3339 with a `Z`, as every payload carries it.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched_and_long_text_ends_with_the_marker() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("abcd", 0), "");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
    }

    #[test]
    fn utf16_truncation_never_splits_a_surrogate_pair() {
        let text = "😀😀😀"; // 2 UTF-16 units each
        let cut = truncate_utf16(text, 4);
        assert_eq!(cut, "😀…");
        assert!(utf16_len(&cut) <= 4);
    }

    #[test]
    fn truncation_does_not_leave_a_dangling_escape() {
        let cut = truncate_chars(&escape_markdown("ab*cdef"), 4);
        assert_eq!(cut, "ab…");
    }

    #[test]
    fn markdown_is_escaped_and_mentions_are_inert() {
        assert_eq!(escape_markdown("**x**"), r"\*\*x\*\*");
        assert_eq!(escape_markdown("web-app #2 > 1.5"), "web-app #2 > 1.5");
        assert_eq!(escape_markdown("- # > 12. x"), r"\- \# \> 12\. x");
        assert_eq!(escape_markdown("[a](b) __u__"), r"\[a\](b) \_\_u\_\_");
        let safe = discord_safe("@everyone <@123> <@&9> <#42> @here\nnext");
        assert!(!safe.contains("@everyone"), "{safe}");
        assert!(!safe.contains("@here"), "{safe}");
        // Every `@` and `<#` is followed by the zero-width space, so nothing parses as a mention.
        assert_eq!(
            safe.matches('@').count(),
            safe.matches("@\u{200B}").count(),
            "{safe}"
        );
        assert!(
            !safe.contains("<@1") && !safe.contains("<@&9") && !safe.contains("#4"),
            "{safe}"
        );
        assert!(!safe.contains('\n'), "{safe}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(4.24).as_deref(), Some("4.2s"));
        assert_eq!(format_duration(9.97).as_deref(), Some("10s"));
        assert_eq!(format_duration(27.51).as_deref(), Some("28s"));
        assert_eq!(format_duration(185.0).as_deref(), Some("3m 05s"));
        assert_eq!(format_duration(3725.0).as_deref(), Some("1h 02m"));
        assert_eq!(format_duration(-1.0), None);
        assert_eq!(format_duration(f64::NAN), None);
    }
}
