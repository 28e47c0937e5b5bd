//! Text helpers shared by the renderers: truncation with a visible marker, each platform's
//! escaping and mention neutralising, control-character scrubbing, the wording of an event's
//! facts (headline, icon, what changed, durations, times), and [`Markup`], which fits cards
//! into a platform's size limit by cutting values and dropping the least important lines.
//!
//! Everything here is pure; the renderers decide which helpers their platform needs.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::detect::{Event, EventKind, Severity};
pub use crate::util::text::{
    MARKER, ZWSP, format_duration, printable, rfc3339, truncate_by, truncate_bytes, truncate_chars,
    truncate_utf16, utc_time, utf16_len,
};

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
/// `<@id>`, `<@!id>`, `<@&id>`), after every `<` (no `<#id>` channel link, no `<!channel>`
/// meant for another platform) and after `<#`. Belt and braces with `allowed_mentions`: the
/// text must not ping even where that setting is ignored.
pub fn neutralize_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut prev = None;
    for c in text.chars() {
        out.push(c);
        if c == '@' || c == '<' || (c == '#' && prev == Some('<')) {
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

/// Puts a zero-width space after every `@` and `<`: `@everyone`, `@here`, `@all`, `<@id>`,
/// `<!channel>` and `<at ...>` tags can no longer form, on any platform, while the text reads
/// the same.
pub fn inert(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        out.push(c);
        if c == '@' || c == '<' {
            out.push(ZWSP);
        }
    }
    out
}

/// Untrusted text for a field shown without markup (Slack and Feishu headers, DingTalk's
/// notification title): one line, mentions inert.
pub fn plain_safe(text: &str) -> String {
    inert(&printable(text))
}

/// Untrusted text for Slack `mrkdwn`: `&`, `<` and `>` as entities (so no `<!channel>`, `<@U1>`
/// or `<url|link>` can form), a zero-width space after `@` (`@channel` and `@here` stay
/// words) and before each formatting character (`*`, `_`, `~`, `` ` ``), which Slack cannot
/// escape otherwise: a delimiter inside a word formats nothing.
pub fn slack_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' => {
                out.push(ZWSP);
                out.push(c);
            }
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Untrusted text for a Feishu card `markdown` element: the characters its markdown and its
/// `<at>` tags use as HTML entities (the escapes Feishu documents), and `@` made inert.
pub fn feishu_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' => out.push_str("&#42;"),
            '_' => out.push_str("&#95;"),
            '~' => out.push_str("&#126;"),
            '`' => out.push_str("&#96;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            '@' => {
                out.push('@');
                out.push(ZWSP);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Untrusted text for DingTalk and WeCom markdown: one line, markdown escaped with
/// backslashes, `@` and `<` made inert (no `@13800000000`, `@all` or `<@userid>` mention).
pub fn markdown_safe(text: &str) -> String {
    inert(&escape_markdown(&printable(text)))
}

/// A link as a markdown target: parentheses, spaces and angle brackets percent-encoded, so
/// `[text](url)` cannot be closed early.
pub fn markdown_url(url: &str) -> String {
    url.replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

/// The link to show, when it is an absolute http(s) URL; anything else is left out rather
/// than sent to a platform that would refuse the whole message for it.
pub fn valid_link(link: Option<&str>) -> Option<String> {
    let url = reqwest::Url::parse(link?.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
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
        EventKind::HealthRecovered => "Health score recovered",
        EventKind::SourceUnreachable => "CodeArts cannot be reached",
        EventKind::SourceRecovered => "CodeArts reachable again",
        EventKind::SilenceEnded => "Silence ended, still broken",
        EventKind::IncidentReminder => "Still broken",
        EventKind::FlakyDigest => "Flaky jobs, daily digest",
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

/// The longest a job name or a fact's value may be on a card, before any platform limit.
pub const VALUE_MAX: usize = 256;

/// The words of a card's title: `🔴 Build failed: web-frontend` (raw, unescaped).
pub fn title(event: &Event) -> String {
    format!(
        "{} {}: {}",
        severity_icon(event.kind.severity()),
        headline(event.kind),
        event.job_name
    )
}

/// What the event is about, as `before → after`: the status for build events, the score for
/// `health_dropped`, the flag for `job_disabled`/`job_enabled`, the name for `job_renamed`,
/// the job's visibility for `job_not_found`/`job_access_lost`.
pub fn what_changed(event: &Event) -> Option<String> {
    match event.kind {
        EventKind::BuildFailed
        | EventKind::BuildRecovered
        | EventKind::BuildStillFailing
        | EventKind::BuildStatusChanged => status_change(event),
        EventKind::HealthDropped | EventKind::HealthRecovered => health_change(event),
        EventKind::JobDisabled | EventKind::JobEnabled => disabled_change(event),
        // The summary says it all: how long, and why.
        EventKind::SourceUnreachable
        | EventKind::SourceRecovered
        | EventKind::SilenceEnded
        | EventKind::IncidentReminder
        | EventKind::FlakyDigest => None,
        EventKind::JobRenamed => {
            let name = |i: Option<&crate::codearts::JobInfo>| {
                i.and_then(|i| i.job_name.clone())
                    .filter(|n| !n.trim().is_empty())
            };
            change(
                name(event.previous.as_ref()),
                name(event.current.as_ref()),
                false,
            )
        }
        EventKind::JobNotFound => Some("visible → not found (404)".to_owned()),
        EventKind::JobAccessLost => Some("visible → access denied (403)".to_owned()),
    }
}

/// One labelled fact of a card, raw (each renderer escapes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    /// How long the fact survives when a card must shrink: higher is kept longer.
    pub rank: u8,
}

/// Rank of the title line: never dropped, only shortened.
pub const RANK_TITLE: u8 = u8::MAX;
/// Rank of the link line: the last to go after the title.
pub const RANK_LINK: u8 = 200;
/// Rank of the delivery id: the first to go.
pub const RANK_DELIVERY: u8 = 1;

/// The facts every chat card shows under its title, most important first: what changed, the
/// job id, the status and health score (unless they are what changed), the last build's time
/// (as `when` writes it) and duration. Values are one line, cut to [`VALUE_MAX`].
pub fn card_facts(event: &Event, when: impl Fn(DateTime<Utc>) -> String) -> Vec<Fact> {
    let changed = what_changed(event);
    let status = status_change(event).filter(|s| changed.as_ref() != Some(s));
    let health = health_change(event).filter(|h| changed.as_ref() != Some(h));
    let facts = [
        ("Changed", changed, 100),
        (
            "Job id",
            Some(event.job_id.clone()).filter(|id| !id.is_empty()),
            60,
        ),
        ("Status", status, 50),
        ("Health score", health, 40),
        ("Last build", last_build_time(event).map(when), 30),
        (
            "Duration",
            build_seconds(event).and_then(format_duration),
            20,
        ),
    ];
    facts
        .into_iter()
        .filter_map(|(label, value, rank)| {
            let value = printable(&value?);
            (!value.trim().is_empty()).then(|| Fact {
                label,
                value: truncate_chars(&value, VALUE_MAX),
                rank,
            })
        })
        .collect()
}

/// One line of a card: markup the renderer wrote around one untrusted value. The value is
/// escaped only when the line is rendered, so shortening it can never split an escape.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub prefix: String,
    pub value: String,
    pub suffix: String,
    /// Lines of the lowest rank are dropped first; [`RANK_TITLE`] is only shortened.
    pub rank: u8,
}

/// A card's facts as lines, each labelled the platform's way (`label` turns `"Status"` into,
/// say, `"*Status:* "`), ranked for fitting.
pub fn fact_lines(event: &Event, label: impl Fn(&str) -> String) -> Vec<Line> {
    card_facts(event, utc_time)
        .into_iter()
        .map(|fact| Line::new(label(fact.label), fact.value, "", fact.rank))
        .collect()
}

impl Line {
    /// `prefix`, the escaped `value`, `suffix`.
    pub fn new(
        prefix: impl Into<String>,
        value: impl Into<String>,
        suffix: impl Into<String>,
        rank: u8,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            value: value.into(),
            suffix: suffix.into(),
            rank,
        }
    }

    /// A line of markup only (a link): dropped whole, never cut.
    pub fn fixed(markup: impl Into<String>, rank: u8) -> Self {
        Self::new(markup, "", "", rank)
    }
}

/// How a platform writes untrusted text and counts its limits: the basis for fitting cards.
#[derive(Debug, Clone, Copy)]
pub struct Markup {
    /// Makes an untrusted value safe for the platform (see `slack_safe`, `markdown_safe`, ...).
    pub escape: fn(&str) -> String,
    /// What one character costs against the limit (bytes, UTF-16 units, JSON-escaped bytes).
    pub width: fn(char) -> usize,
    /// Between the lines of one card.
    pub newline: &'static str,
}

/// The fewest units a card may be given when many share one message; below that, events are
/// left out and counted in a closing "and N more" line instead.
pub const MIN_CARD: usize = 120;

/// What one character costs once serialised as a JSON string (Feishu's and DingTalk's limits
/// are on the request body).
pub fn json_width(c: char) -> usize {
    match c {
        '"' | '\\' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

impl Markup {
    /// The size of `text` against the platform's limit.
    pub fn measure(&self, text: &str) -> usize {
        text.chars().map(self.width).sum()
    }

    fn line(&self, line: &Line) -> String {
        format!(
            "{}{}{}",
            line.prefix,
            (self.escape)(&line.value),
            line.suffix
        )
    }

    /// The lines joined, unshortened.
    pub fn block(&self, lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| self.line(l))
            .collect::<Vec<_>>()
            .join(self.newline)
    }

    /// `line` with its value shortened (ending with [`MARKER`]) so the whole line measures at
    /// most `budget`; `None` when not even the markup and the marker fit.
    fn cut_line(&self, line: &Line, budget: usize) -> Option<String> {
        let fixed = self.measure(&line.prefix) + self.measure(&line.suffix);
        if fixed + (self.width)(MARKER) > budget {
            return None;
        }
        let total = line.value.chars().count();
        // The longest prefix of the value whose escaped form fits: escaping only grows text,
        // so the size rises with the prefix length and a binary search finds it.
        let (mut lo, mut hi) = (0, total);
        let render = |n: usize| {
            let value = if n >= total {
                line.value.clone()
            } else {
                let mut v: String = line.value.chars().take(n).collect();
                v.push(MARKER);
                v
            };
            format!("{}{}{}", line.prefix, (self.escape)(&value), line.suffix)
        };
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if self.measure(&render(mid)) <= budget {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let out = render(lo);
        (self.measure(&out) <= budget).then_some(out)
    }

    /// One card within `budget`: first the title's value is shortened (down to a readable
    /// length), then the least important lines are dropped one by one, then the title is cut
    /// further. Whatever happens, the result measures at most `budget`.
    pub fn fit_card(&self, lines: &[Line], budget: usize) -> String {
        const TITLE_KEEP: usize = 100;
        let mut kept: Vec<Line> = lines.to_vec();
        loop {
            let full = self.block(&kept);
            if self.measure(&full) <= budget {
                return full;
            }
            // Shorten the title while it stays readable, keeping every other line.
            if let Some(t) = kept.iter().position(|l| l.rank == RANK_TITLE) {
                let others: Vec<Line> = kept
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != t)
                    .map(|(_, l)| l.clone())
                    .collect();
                let rest = self.measure(&self.block(&others))
                    + if others.is_empty() {
                        0
                    } else {
                        self.measure(self.newline)
                    };
                let readable = self.measure(&kept[t].prefix)
                    + self.measure(&kept[t].suffix)
                    + TITLE_KEEP.min(self.measure(&(self.escape)(&kept[t].value)));
                if budget >= rest + readable
                    && let Some(title) = self.cut_line(&kept[t], budget - rest)
                {
                    let mut parts: Vec<String> = Vec::with_capacity(kept.len());
                    for (i, l) in kept.iter().enumerate() {
                        parts.push(if i == t { title.clone() } else { self.line(l) });
                    }
                    return parts.join(self.newline);
                }
            }
            // Drop the least important line (the last of equals), never the title.
            let victim = kept
                .iter()
                .enumerate()
                .filter(|(_, l)| l.rank != RANK_TITLE)
                .min_by_key(|(i, l)| (l.rank, std::cmp::Reverse(*i)))
                .map(|(i, _)| i);
            match victim {
                Some(i) => {
                    kept.remove(i);
                }
                None => break,
            }
        }
        // Only the title is left and it is still too long.
        match kept.first() {
            Some(title) => self
                .cut_line(title, budget)
                .unwrap_or_else(|| truncate_by(&self.line(title), budget, self.width)),
            None => String::new(),
        }
    }

    /// Several cards sharing `budget` (separators of `separator` units between them): short
    /// cards keep everything, the longest are cut to a common size, and when even
    /// [`MIN_CARD`] each cannot fit, the last events are left out. Returns the cards and how
    /// many were left out (the caller says so in a line it reserved room for).
    pub fn fit_cards(
        &self,
        cards: &[Vec<Line>],
        budget: usize,
        separator: usize,
    ) -> (Vec<String>, usize) {
        let full: Vec<String> = cards.iter().map(|c| self.block(c)).collect();
        let sizes: Vec<usize> = full.iter().map(|c| self.measure(c)).collect();
        let seps = |n: usize| separator * n.saturating_sub(1);
        if sizes.iter().sum::<usize>() + seps(cards.len()) <= budget {
            return (full, 0);
        }
        let shown = (1..=cards.len())
            .rev()
            .find(|&k| k * MIN_CARD + seps(k) <= budget)
            .unwrap_or(1);
        let available = budget.saturating_sub(seps(shown));
        // Water-filling: the largest cap such that the cards cut to it fit together.
        let mut sorted: Vec<usize> = sizes[..shown].to_vec();
        sorted.sort_unstable();
        let mut remaining = available;
        let mut cap = usize::MAX;
        for (i, size) in sorted.iter().enumerate() {
            let share = remaining / (shown - i);
            if *size > share {
                cap = share;
                break;
            }
            remaining -= size;
        }
        let fitted = cards[..shown]
            .iter()
            .zip(full)
            .zip(&sizes)
            .map(|((card, text), size)| {
                if *size <= cap {
                    text
                } else {
                    self.fit_card(card, cap)
                }
            })
            .collect();
        (fitted, cards.len() - shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_platforms_escaping_leaves_no_mention_or_markup_intact() {
        let hostile =
            "@everyone <!channel> <@U1> @all <at id=all></at> **b** _i_ ~s~ `c` [l](u) & x\ny";
        for (name, safe) in [
            ("slack", slack_safe(hostile)),
            ("feishu", feishu_safe(hostile)),
            ("markdown", markdown_safe(hostile)),
            ("plain", plain_safe(hostile)),
        ] {
            for needle in ["@everyone", "<!channel>", "<@U1>", "@all", "<at", "\n"] {
                assert!(!safe.contains(needle), "{name}: {needle:?} in {safe}");
            }
        }
        for (name, safe) in [
            ("slack", slack_safe(hostile)),
            ("feishu", feishu_safe(hostile)),
            ("markdown", markdown_safe(hostile)),
        ] {
            for needle in ["**b**", "_i_", "~s~", "`c`"] {
                assert!(!safe.contains(needle), "{name}: {needle:?} in {safe}");
            }
        }
        assert!(slack_safe("a & <b>").starts_with("a &amp; &lt;b&gt;"));
        assert_eq!(feishu_safe("[x]"), "&#91;x&#93;");
        assert_eq!(markdown_url("https://h/a (b)"), "https://h/a%20%28b%29");
        assert_eq!(valid_link(Some("javascript:alert(1)")), None);
        assert_eq!(valid_link(Some("not a url")), None);
        assert_eq!(
            valid_link(Some(" https://h.example/x ")).as_deref(),
            Some("https://h.example/x")
        );
    }

    const BYTES: Markup = Markup {
        escape: markdown_safe,
        width: char::len_utf8,
        newline: "\n",
    };

    fn card(name: &str) -> Vec<Line> {
        vec![
            Line::new("# ", name, "", RANK_TITLE),
            Line::new("- changed: ", "success → failed", "", 100),
            Line::fixed("[open](https://h.example/x)", RANK_LINK),
            Line::new("- duration: ", "28s", "", 20),
            Line::new("- delivery ", "d-1", "", RANK_DELIVERY),
        ]
    }

    #[test]
    fn a_card_that_fits_is_untouched() {
        let lines = card("web");
        assert_eq!(BYTES.fit_card(&lines, 10_000), BYTES.block(&lines));
    }

    #[test]
    fn a_long_title_is_cut_first_then_the_least_important_lines_go() {
        let lines = card(&"n*".repeat(200));
        let full = BYTES.measure(&BYTES.block(&lines));
        // Room for every line and a readable title: only the title is cut, escapes intact.
        let roomy = BYTES.fit_card(&lines, 300);
        assert!(BYTES.measure(&roomy) <= 300);
        assert!(roomy.contains("- delivery d-1"), "{roomy}");
        let title = roomy.lines().next().unwrap();
        assert!(title.ends_with("n\\*…") || title.ends_with("n…"), "{title}");
        assert!(full > 300);
        // Tighter: the delivery and duration lines are dropped before the title gets short.
        let tight = BYTES.fit_card(&lines, 170);
        assert!(BYTES.measure(&tight) <= 170, "{tight}");
        assert!(
            !tight.contains("delivery") && !tight.contains("duration"),
            "{tight}"
        );
        assert!(
            tight.contains("changed") && tight.contains("[open]"),
            "{tight}"
        );
        // Absurdly tight: whatever is left still fits.
        for budget in [0, 1, 5, 20] {
            assert!(BYTES.measure(&BYTES.fit_card(&lines, budget)) <= budget);
        }
    }

    #[test]
    fn cards_share_a_budget_short_ones_whole_and_overflow_counted() {
        let short = card("web");
        let long = card(&"x".repeat(2000));
        let (cards, left_out) = BYTES.fit_cards(&[short.clone(), long.clone()], 600, 2);
        assert_eq!(left_out, 0);
        assert_eq!(
            cards[0],
            BYTES.block(&short),
            "the short card keeps everything"
        );
        assert!(cards.iter().map(|c| BYTES.measure(c)).sum::<usize>() + 2 <= 600);
        let many = vec![short; 40];
        let (cards, left_out) = BYTES.fit_cards(&many, 1_000, 2);
        assert!(left_out > 0);
        assert_eq!(cards.len() + left_out, 40);
        let total: usize =
            cards.iter().map(|c| BYTES.measure(c)).sum::<usize>() + 2 * (cards.len() - 1);
        assert!(total <= 1_000, "{total}");
    }

    #[test]
    fn card_facts_say_what_changed_first_without_repeating_it() {
        use crate::codearts::JobInfo;
        let info = |status: &str, health| JobInfo {
            last_build_status: Some(status.to_owned()),
            last_build_time: Some(1_721_793_407_000),
            health_score: Some(health),
            build_time: Some("185".to_owned()),
            ..JobInfo::default()
        };
        let mut event = Event {
            kind: EventKind::BuildFailed,
            job_id: "f5af662119404ad187437cd272b5099b".to_owned(),
            job_name: "web".to_owned(),
            detected_at: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(),
            previous: Some(info("success", 80)),
            current: Some(info("failed", 70)),
            summary: String::new(),
        };
        let labels = |e: &Event| {
            card_facts(e, utc_time)
                .into_iter()
                .map(|f| format!("{}={}", f.label, f.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            labels(&event),
            [
                "Changed=success → failed",
                "Job id=f5af662119404ad187437cd272b5099b",
                "Health score=80 → 70",
                "Last build=2024-07-24 03:56:47 UTC",
                "Duration=3m 05s",
            ]
        );
        event.kind = EventKind::HealthDropped;
        assert_eq!(labels(&event)[0], "Changed=80 → 70");
        assert!(labels(&event).contains(&"Status=success → failed".to_owned()));
        event.kind = EventKind::JobNotFound;
        event.current = None;
        assert_eq!(labels(&event)[0], "Changed=visible → not found (404)");
    }
}
