//! Plain-text helpers with no platform in them: truncation with a visible marker (by code
//! points, UTF-16 units or UTF-8 bytes), durations and instants as people read them.

use chrono::{DateTime, SecondsFormat, Utc};

/// A zero-width space: placed after `@` so `@everyone` or `<@123>` can never ping anyone.
pub const ZWSP: char = '\u{200B}';

/// Appended to every shortened text so a reader knows something was cut.
pub const MARKER: char = '…';

/// RFC 3986 percent-encoding of everything outside the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`): a value that is safe in any part of a URL.
pub fn url_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

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

/// Shortens `text` to at most `max` UTF-8 bytes, on a character boundary, ending with
/// [`MARKER`] when cut (WeCom counts its limit in bytes).
pub fn truncate_bytes(text: &str, max: usize) -> String {
    truncate_by(text, max, char::len_utf8)
}

/// Shortens `text` to at most `max` units as `width` counts them, ending with [`MARKER`] when
/// cut; never leaves a dangling escape or zero-width space before the marker.
pub fn truncate_by(text: &str, max: usize, width: impl Fn(char) -> usize) -> String {
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

/// A UTC instant as people read it on a card: `2024-07-24 03:56:47 UTC`.
pub fn utc_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Replaces control characters (newlines, escape sequences) with spaces, so an untrusted
/// string stays on one line and cannot drive a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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
        let cut = truncate_chars("ab\\*cdef", 4);
        assert_eq!(cut, "ab…");
    }

    #[test]
    fn byte_truncation_keeps_whole_characters() {
        let cut = truncate_bytes("构建😀构建", 10);
        assert!(cut.len() <= 10, "{cut}");
        assert_eq!(cut, "构建…");
        assert_eq!(truncate_bytes("abc", 3), "abc");
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
