//! Escaping untrusted text (job names, statuses, reasons) for each platform's markup, so a
//! name can neither format a card nor mention anyone, and keeping links to what a platform
//! accepts. Why each platform needs its own escaper: see `docs/platforms.md`.
//!
//! Everything here is pure.

use crate::util::text::{ZWSP, printable};

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
    slack_escape(text, true)
}

/// Slack's entities for `&`, `<`, `>` and an inert `@`; with `formatting`, a zero-width space
/// before each formatting character too (inside a code block they format nothing).
fn slack_escape(text: &str, formatting: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in printable(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' if formatting => {
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

/// Breaks every run of three or more backticks with zero-width spaces, so a line inside a
/// fenced code block can never close it (or open another) on any platform.
pub fn break_fences(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            // Two backticks in a row are harmless; the third would complete a fence.
            if run >= 2 {
                out.push(ZWSP);
                run = 0;
            }
            run += 1;
        } else {
            run = 0;
        }
        out.push(c);
    }
    out
}

/// One untrusted line inside a fenced code block (Discord, Feishu): nothing is markdown there,
/// so nothing is backslash-escaped (it would show), but control characters go, mentions are
/// inert and backtick runs cannot close the fence.
pub fn code_safe(text: &str) -> String {
    break_fences(&inert(&printable(text)))
}

/// One untrusted line inside a Slack code block: Slack still reads `&`, `<` and `>` there, so
/// they become entities; `@` is inert and backtick runs cannot close the block.
pub fn slack_code_safe(text: &str) -> String {
    break_fences(&slack_escape(text, false))
}

/// A link as the target of Slack's `<url|label>`: the characters that would end the target
/// (`|`, `>`) or start another (`<`) percent-encoded, `&` as Slack's entity.
pub fn slack_url(url: &str) -> String {
    url.replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E")
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

/// [`valid_link`], when it is also at most `max` bytes long: a platform that limits its links
/// would refuse the whole message for a longer one (URLs are ASCII once parsed, so bytes are
/// characters and UTF-16 units too).
pub fn valid_link_within(link: Option<&str>, max: usize) -> Option<String> {
    valid_link(link).filter(|l| l.len() <= max)
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
    fn code_lines_cannot_close_their_block_or_mention_anyone() {
        let hostile = "```rust @everyone <@123> <!here> a & b ``````\nnext **x**";
        for (name, safe) in [
            ("code", code_safe(hostile)),
            ("slack", slack_code_safe(hostile)),
        ] {
            for needle in ["```", "@everyone", "<@123>", "<!here>", "\n"] {
                assert!(!safe.contains(needle), "{name}: {needle:?} in {safe}");
            }
            assert!(
                safe.contains("**x**"),
                "{name}: code is shown as typed: {safe}"
            );
        }
        assert!(slack_code_safe("a & <b>").starts_with("a &amp; &lt;b&gt;"));
        assert_eq!(break_fences("``"), "``");
        assert_eq!(break_fences("````"), "``\u{200B}``");
        assert_eq!(
            slack_url("https://h.example/c?a=1&b=2|x>"),
            "https://h.example/c?a=1&amp;b=2%7Cx%3E"
        );
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
}
