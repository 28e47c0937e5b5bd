//! The failure context in words, the same on every platform: the labelled facts ("Failed
//! stage", "Branch", "Commit", "Triggered by", "Tests", "Error", "Why"), the log tail as a
//! block of the last lines that fit a budget, and each platform's id of the person to
//! mention, checked again before it is written into markup.
//!
//! The context's text was scrubbed and its mentions and fences neutralised when it was built
//! (`util::redact`); each platform still escapes it here, with the escapers of
//! [`super::escape`], because a context is untrusted text like a job name.

use super::fit::{Line, Markup};
use super::wording::{Fact, VALUE_MAX};
use crate::config::Person;
use crate::domain::context::Context;
use crate::util::text::{printable, truncate_chars};

pub const FAILED_STAGE: &str = "Failed stage";
pub const BRANCH: &str = "Branch";
pub const COMMIT: &str = "Commit";
pub const TRIGGERED_BY: &str = "Triggered by";
pub const TESTS: &str = "Tests";
pub const ERROR: &str = "Error";
pub const WHY: &str = "Why";

/// Ranks of the context's facts among a card's (what changed is 100, the job id 60): why a
/// job was disabled says more than what changed; the failed stage and who ran it next.
pub const RANK_WHY: u8 = 110;
pub const RANK_FAILED_STAGE: u8 = 95;
pub const RANK_TRIGGERED_BY: u8 = 90;
pub const RANK_BRANCH: u8 = 85;
pub const RANK_COMMIT: u8 = 80;
pub const RANK_ERROR: u8 = 75;
pub const RANK_TESTS: u8 = 70;
/// The log block: kept over the duration and the delivery id, dropped before the rest (it is
/// sized to its share of the message beforehand, so it is rarely dropped).
pub const RANK_LOG: u8 = 25;
/// The mention line: dropped only after every fact and the link.
pub const RANK_MENTION: u8 = 250;

/// The longest error message a card shows, in characters.
pub const ERROR_MAX: usize = 500;
/// The longest log line a card shows, in characters; a longer one is cut.
pub const LOG_LINE_MAX: usize = 300;
/// A log line is never cut shorter than this to make it fit: below, it is left out.
const LOG_LINE_MIN: usize = 24;

/// The context's facts, most important first, raw (each renderer escapes them), one line
/// each, cut to [`VALUE_MAX`] ([`ERROR_MAX`] for the error). The commit's link is
/// [`commit_link`]; a renderer that can link puts it around [`Context::short_commit`].
pub fn facts(context: &Context) -> Vec<Fact> {
    let facts = [
        (WHY, context.why.clone(), RANK_WHY, VALUE_MAX),
        (
            FAILED_STAGE,
            context.failed_stage_line(),
            RANK_FAILED_STAGE,
            VALUE_MAX,
        ),
        (BRANCH, context.branch_or_tag(), RANK_BRANCH, VALUE_MAX),
        (COMMIT, context.commit_line(), RANK_COMMIT, VALUE_MAX),
        (
            TRIGGERED_BY,
            context.triggered_line(),
            RANK_TRIGGERED_BY,
            VALUE_MAX,
        ),
        (TESTS, context.tests_line(), RANK_TESTS, VALUE_MAX),
        (ERROR, context.error.clone(), RANK_ERROR, ERROR_MAX),
    ];
    facts
        .into_iter()
        .filter_map(|(label, value, rank, max)| {
            let value = printable(&value?);
            let value = value.trim();
            (!value.is_empty()).then(|| Fact {
                label,
                value: truncate_chars(value, max),
                rank,
            })
        })
        .collect()
}

/// The commit's link, when it is an http(s) URL.
pub fn commit_link(context: &Context) -> Option<String> {
    super::escape::valid_link(context.commit_url.as_deref())
}

/// The commit's message alone (its short id is shown as the link's text).
pub fn commit_message(context: &Context) -> Option<String> {
    let message = printable(context.commit_message.as_deref()?);
    let message = message.trim();
    (!message.is_empty()).then(|| truncate_chars(message, VALUE_MAX))
}

/// The facts as markdown card lines labelled the platform's way, the commit's short id as a
/// link `[a1b2c3d4](url)` when there is one (Feishu, DingTalk, WeCom); `escape` is the
/// platform's escaper, for the short id written into the markup.
pub fn markdown_fact_lines(
    context: &Context,
    label: impl Fn(&str) -> String,
    escape: fn(&str) -> String,
) -> Vec<Line> {
    let link = context.short_commit().zip(commit_link(context));
    facts(context)
        .into_iter()
        .map(|f| match (f.label, &link) {
            (COMMIT, Some((short, url))) => Line::new(
                format!(
                    "{}[{}]({}) ",
                    label(f.label),
                    escape(short),
                    super::escape::markdown_url(url)
                ),
                commit_message(context).unwrap_or_default(),
                "",
                f.rank,
            ),
            _ => Line::new(label(f.label), f.value, "", f.rank),
        })
        .collect()
}

/// "Log (last line)", "Log (last 12 lines)".
pub fn log_heading(lines: usize) -> String {
    match lines {
        1 => "Log (last line)".to_owned(),
        n => format!("Log (last {n} lines)"),
    }
}

/// How a platform writes a block of untrusted lines: a heading, then an opening, the lines
/// (each with `line_prefix`, escaped by `escape`), a closing; measured by `width`.
#[derive(Debug, Clone, Copy)]
pub struct BlockStyle {
    /// Wraps the heading's words in the platform's markup (`**Log (last 3 lines)**`).
    pub heading: fn(&str) -> String,
    /// Before the first line, e.g. "```\n"; empty for quoted lines.
    pub open: &'static str,
    /// After the last line, e.g. "\n```".
    pub close: &'static str,
    /// Before each line, e.g. "> ".
    pub line_prefix: &'static str,
    /// Makes one untrusted line safe inside the block.
    pub escape: fn(&str) -> String,
    /// What one character costs against the platform's limit.
    pub width: fn(char) -> usize,
}

impl BlockStyle {
    /// A fenced code block under a bold heading (Discord, Feishu).
    pub const fn fenced(escape: fn(&str) -> String, width: fn(char) -> usize) -> Self {
        Self {
            heading: bold,
            open: "```\n",
            close: "\n```",
            line_prefix: "",
            escape,
            width,
        }
    }

    fn measure(&self, text: &str) -> usize {
        text.chars().map(self.width).sum()
    }

    /// One line as it is written in the block.
    fn line(&self, raw: &str) -> String {
        format!("{}{}", self.line_prefix, (self.escape)(raw))
    }

    /// The block with `heading` over `lines` (already written).
    fn assemble(&self, heading: &str, lines: &[String]) -> String {
        format!(
            "{}\n{}{}{}",
            (self.heading)(heading),
            self.open,
            lines.join("\n"),
            self.close
        )
    }
}

/// `**text**`.
pub fn bold(text: &str) -> String {
    format!("**{text}**")
}

/// The log tail as a block within `budget` units: as many of the last lines as fit, oldest
/// first, each cut to [`LOG_LINE_MAX`] characters (the newest is cut further when it alone
/// would not fit); the heading says how many are shown. `None` when there is no tail or not
/// even a short line fits. The block is whole: a fence is never cut off.
pub fn log_block(context: &Context, style: &BlockStyle, budget: usize) -> Option<String> {
    lines_block(&context.log_tail, log_heading, style, budget)
}

/// The error message as a block (Discord shows it as code), within `budget`; `None` when
/// there is none or it cannot fit.
pub fn error_block(context: &Context, style: &BlockStyle, budget: usize) -> Option<String> {
    let error = context.error.as_deref().map(str::trim)?;
    let lines: Vec<String> = error.lines().map(str::to_owned).collect();
    lines_block(&lines, |_| ERROR.to_owned(), style, budget)
}

/// The last `lines` that fit `budget` as a block under `heading(shown)`.
fn lines_block(
    lines: &[String],
    heading: impl Fn(usize) -> String,
    style: &BlockStyle,
    budget: usize,
) -> Option<String> {
    let lines: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    // The heading's size with the largest count it can show bounds every smaller one.
    let fixed = style.measure(&style.assemble(&heading(lines.len()), &[]));
    let mut room = budget.checked_sub(fixed)?;
    let mut kept: Vec<String> = Vec::new();
    for raw in lines.iter().rev() {
        let separator = if kept.is_empty() { 0 } else { 1 };
        let line = style.line(&truncate_chars(raw, LOG_LINE_MAX));
        let size = style.measure(&line) + separator;
        if size <= room {
            room -= size;
            kept.push(line);
            continue;
        }
        if kept.is_empty() {
            // The newest line alone is too long: show as much of it as fits.
            kept.extend(cut_line(raw, style, room));
        }
        break;
    }
    if kept.is_empty() {
        return None;
    }
    kept.reverse();
    Some(style.assemble(&heading(kept.len()), &kept))
}

/// `raw` cut (ending with the marker) so its written form fits `room`, or `None` below
/// [`LOG_LINE_MIN`] characters. Escaping only grows text, so shorter is never bigger.
fn cut_line(raw: &str, style: &BlockStyle, room: usize) -> Option<String> {
    let mut chars = LOG_LINE_MAX.min(raw.chars().count());
    while chars >= LOG_LINE_MIN {
        let line = style.line(&truncate_chars(raw, chars));
        if style.measure(&line) <= room {
            return Some(line);
        }
        chars = chars * 3 / 4;
    }
    None
}

/// The units one card may give its log block: its share of `budget` (the room for `cards`
/// cards together) less what the card's other lines take, capped at `max`.
pub fn log_budget(
    markup: &Markup,
    card: &[Line],
    budget: usize,
    cards: usize,
    max: usize,
) -> usize {
    let share = budget / cards.max(1);
    let rest = markup.measure(&markup.block(card)) + markup.measure(markup.newline);
    share.saturating_sub(rest).min(max)
}

/// The log block as a card line (dropped whole, never cut, when the card must shrink).
pub fn log_line(context: &Context, style: &BlockStyle, budget: usize) -> Option<Line> {
    log_block(context, style, budget).map(|block| Line::fixed(block, RANK_LOG))
}

/// A card's lines with its log block (when it has a context) inserted above the last line,
/// the delivery id, which stays last: how the markdown platforms (Feishu, DingTalk, WeCom)
/// add the log to each card of a batch of `cards`.
pub fn with_log(
    mut lines: Vec<Line>,
    context: Option<&Context>,
    (markup, style): (&Markup, &BlockStyle),
    budget: usize,
    cards: usize,
    max: usize,
) -> Vec<Line> {
    if let Some(context) = context {
        let room = log_budget(markup, &lines, budget, cards, max);
        if let Some(log) = log_line(context, style, room) {
            lines.insert(lines.len().saturating_sub(1), log);
        }
    }
    lines
}

/// The Discord user id to mention: digits only (what `[[people]]` validation requires).
pub fn discord_id(person: Option<&Person>) -> Option<&str> {
    checked(person?.discord.as_deref(), |b| b.is_ascii_digit(), 21)
}

/// The Slack member id to mention: upper-case letters and digits, starting `U` or `W`.
pub fn slack_id(person: Option<&Person>) -> Option<&str> {
    checked(
        person?.slack.as_deref(),
        |b| b.is_ascii_uppercase() || b.is_ascii_digit(),
        20,
    )
    .filter(|id| id.starts_with('U') || id.starts_with('W'))
}

/// The Feishu open id to mention: `ou_` and letters, digits, `_`.
pub fn feishu_id(person: Option<&Person>) -> Option<&str> {
    checked(
        person?.feishu.as_deref(),
        |b| b.is_ascii_alphanumeric() || b == b'_',
        64,
    )
    .filter(|id| id.starts_with("ou_"))
}

/// The DingTalk mobile number to mention: digits, `+` and `-`.
pub fn dingtalk_mobile(person: Option<&Person>) -> Option<&str> {
    checked(
        person?.dingtalk_mobile.as_deref(),
        |b| b.is_ascii_digit() || b == b'+' || b == b'-',
        20,
    )
    .filter(|mobile| mobile.len() >= 5)
}

/// The WeCom user id to mention: letters, digits, `_ - . @`.
pub fn wecom_id(person: Option<&Person>) -> Option<&str> {
    checked(
        person?.wecom.as_deref(),
        |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'),
        64,
    )
}

/// `id` when it is not empty, at most `max` bytes and every byte passes `ok`: an id that
/// could carry markup is never written into a message, whatever the config held.
fn checked(id: Option<&str>, ok: fn(u8) -> bool, max: usize) -> Option<&str> {
    id.map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= max && id.bytes().all(ok))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::context::{StageOutcome, TestCounts};

    /// A failed build's context with a long log tail, the same in every platform's tests.
    pub(crate) fn failed_context() -> Context {
        let mut tail: Vec<String> = (1..=200)
            .map(|i| {
                format!(
                    "[INFO] step {i}: compiling module_{i} ... {}",
                    "x".repeat(60)
                )
            })
            .collect();
        tail.push("error[E0425]: cannot find value `tokn` in this scope".to_owned());
        tail.push("LAST LINE: build failed".to_owned());
        Context {
            build_no: Some(42),
            record_id: Some("rec-42".to_owned()),
            branch: Some("main".to_owned()),
            commit: Some("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678".to_owned()),
            commit_message: Some("Fix the login page".to_owned()),
            commit_url: Some("https://code.example/repo/commit/a1b2c3d4".to_owned()),
            triggered_by: Some("alice".to_owned()),
            user_id: Some("u-1".to_owned()),
            trigger_type: Some("Manual".to_owned()),
            failed_stage: Some("compile".to_owned()),
            failed_stage_ms: Some(72_000),
            stages: vec![StageOutcome {
                name: "compile".to_owned(),
                status: Some("failed".to_owned()),
                duration_ms: Some(72_000),
            }],
            error: Some("compile failed: exit code 101".to_owned()),
            log_tail: tail,
            log_truncated: true,
            tests: Some(TestCounts {
                total: 120,
                failed: 3,
                errors: 1,
            }),
            complete: true,
            ..Context::default()
        }
    }

    /// The person the tests mention, with an id on every platform.
    pub(crate) fn alice() -> Person {
        Person {
            codearts: "alice".to_owned(),
            discord: Some("123456789012345678".to_owned()),
            slack: Some("U012ABCDEF".to_owned()),
            feishu: Some("ou_7d8a6e6df7621556ce0d21922b676706".to_owned()),
            dingtalk_mobile: Some("13800000000".to_owned()),
            wecom: Some("alice.w".to_owned()),
        }
    }

    const PLAIN: BlockStyle = BlockStyle::fenced(super::super::escape::code_safe, |_| 1);

    #[test]
    fn facts_are_labelled_and_ordered() {
        let labels: Vec<String> = facts(&failed_context())
            .into_iter()
            .map(|f| format!("{}={}", f.label, f.value))
            .collect();
        assert_eq!(
            labels,
            [
                "Failed stage=compile (1 m 12 s)",
                "Branch=main",
                "Commit=a1b2c3d4 Fix the login page",
                "Triggered by=alice (Manual)",
                "Tests=120 tests, 3 failed, 1 error",
                "Error=compile failed: exit code 101",
            ]
        );
        let why = Context::why(
            "disabled by bob at 2026-11-30 10:02 UTC: migrating".into(),
            true,
        );
        assert_eq!(facts(&why)[0].label, WHY);
    }

    #[test]
    fn the_log_block_keeps_the_last_lines_that_fit_and_its_fences() {
        let context = failed_context();
        let block = log_block(&context, &PLAIN, 1000).unwrap();
        assert!(block.chars().count() <= 1000, "{}", block.chars().count());
        assert!(block.starts_with("**Log (last "), "{block}");
        assert!(block.ends_with("LAST LINE: build failed\n```"), "{block}");
        assert_eq!(block.matches("```").count(), 2, "{block}");
        // The fence inside the error line's backticks stays harmless.
        assert!(block.contains("`tokn`"));
        let shown = block.lines().count() - 3;
        assert!(block.starts_with(&format!("**Log (last {shown} lines)**")));
        // Too small for anything: no block rather than a broken one.
        assert_eq!(log_block(&context, &PLAIN, 20), None);
        // Room for the newest line only.
        let tiny = log_block(&context, &PLAIN, 80).unwrap();
        assert_eq!(
            tiny,
            "**Log (last line)**\n```\nLAST LINE: build failed\n```"
        );
        // A newest line too long for the room is cut, ending with the marker.
        let mut long = context.clone();
        long.log_tail.push("y".repeat(1000));
        let cut = log_block(&long, &PLAIN, 200).unwrap();
        assert!(cut.chars().count() <= 200, "{cut}");
        assert!(cut.ends_with("y…\n```"), "{cut}");
        assert_eq!(log_block(&Context::default(), &PLAIN, 10_000), None);
    }

    #[test]
    fn mention_ids_of_the_wrong_shape_are_never_used() {
        let mut bad = alice();
        bad.discord = Some("<@&1> @everyone".to_owned());
        bad.slack = Some("<!channel>".to_owned());
        bad.feishu = Some("all></at><at id=all".to_owned());
        bad.dingtalk_mobile = Some("all".to_owned());
        bad.wecom = Some("<@all>".to_owned());
        let bad = Some(&bad);
        assert_eq!(
            (
                discord_id(bad),
                slack_id(bad),
                feishu_id(bad),
                dingtalk_mobile(bad),
                wecom_id(bad)
            ),
            (None, None, None, None, None)
        );
        let good = alice();
        assert_eq!(discord_id(Some(&good)), Some("123456789012345678"));
        assert_eq!(slack_id(Some(&good)), Some("U012ABCDEF"));
        assert_eq!(wecom_id(None), None);
    }
}
