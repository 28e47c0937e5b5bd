//! A build log's last lines under a platform's size limit, as `/log` and the `/job` card show
//! them in a code block: the newest lines that fit, oldest first, and what was left out to make
//! them fit, so the reader is told rather than shown a silently shorter log.

use crate::util::text::truncate_chars;

/// Longest line shown, in characters: a minified bundle or a base64 dump would otherwise take
/// the whole budget and leave one line on screen.
pub const MAX_LINE: usize = 300;

/// What the code block opens and closes with (` ``` ` and a newline each side).
const FENCES: usize = 8;

/// The lines a code block shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fitted {
    /// Escaped for the platform, oldest first.
    pub lines: Vec<String>,
    /// Older lines left out because they did not fit.
    pub dropped: usize,
    /// Some shown line was shortened to [`MAX_LINE`].
    pub shortened: bool,
}

impl Fitted {
    /// Something the reader would otherwise have seen was cut.
    pub fn cut(&self) -> bool {
        self.dropped > 0 || self.shortened
    }

    /// The lines in a code block (nothing when there are none).
    pub fn code_block(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        format!("```\n{}\n```", self.lines.join("\n"))
    }

    /// "Cut to fit Discord's 2000 characters: 17 of 50 lines shown, long lines shortened.",
    /// or `None` when nothing was cut. `limit` names the limit that cut it.
    pub fn cut_note(&self, limit: &str) -> Option<String> {
        if !self.cut() {
            return None;
        }
        let mut parts = Vec::new();
        if self.dropped > 0 {
            let total = self.lines.len() + self.dropped;
            parts.push(format!("{} of {total} lines shown", self.lines.len()));
        }
        if self.shortened {
            parts.push(format!("lines over {MAX_LINE} characters shortened"));
        }
        Some(format!("Cut to fit {limit}: {}.", parts.join(", ")))
    }
}

/// The newest of `lines` that fit in a code block of at most `budget` units as `width`
/// measures them (fences included), each first shortened to [`MAX_LINE`] characters, then
/// made safe by `escape` for a code block of its platform (mentions and fences inert: again,
/// in case a text did not come through the redactor).
pub fn fit(
    lines: &[String],
    budget: usize,
    escape: impl Fn(&str) -> String,
    width: impl Fn(&str) -> usize,
) -> Fitted {
    let mut kept = Vec::new();
    let mut shortened = false;
    let mut used = FENCES;
    for line in lines.iter().rev() {
        let short = truncate_chars(line, MAX_LINE);
        let shown = escape(&short);
        // Each line but the last is followed by a newline; count one for every line.
        let cost = width(&shown) + 1;
        if used + cost > budget {
            break;
        }
        used += cost;
        shortened |= short != *line;
        kept.push(shown);
    }
    kept.reverse();
    Fitted {
        dropped: lines.len() - kept.len(),
        lines: kept,
        shortened,
    }
}

/// "Last 5 lines of build #12" (or "line").
pub fn headline(shown: usize, build_no: Option<u32>) -> String {
    let lines = if shown == 1 { "line" } else { "lines" };
    match build_no {
        Some(n) => format!("Last {shown} {lines} of build #{n}"),
        None => format!("Last {shown} {lines} of the build"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize, len: usize) -> Vec<String> {
        (0..n).map(|i| format!("{i:0>len$}")).collect()
    }

    #[test]
    fn everything_fits_when_there_is_room() {
        let fitted = fit(&lines(5, 10), 1000, str::to_owned, |s| s.len());
        assert_eq!(fitted.lines.len(), 5);
        assert!(!fitted.cut());
        assert_eq!(fitted.cut_note("x"), None);
        assert!(fitted.code_block().starts_with("```\n0000000000\n"));
        assert!(fitted.code_block().ends_with("0000000004\n```"));
    }

    #[test]
    fn the_newest_lines_are_kept_and_the_block_stays_in_budget() {
        let all = lines(50, 40);
        let fitted = fit(&all, 500, str::to_owned, |s| s.len());
        assert!(fitted.code_block().len() <= 500, "{}", fitted.code_block());
        assert_eq!(fitted.lines.last(), all.last());
        assert_eq!(fitted.lines.len() + fitted.dropped, 50);
        assert_eq!(
            fitted.cut_note("a limit").as_deref(),
            Some("Cut to fit a limit: 12 of 50 lines shown.")
        );
    }

    #[test]
    fn long_lines_are_shortened_and_mentions_and_fences_made_inert() {
        let all = vec!["x".repeat(5000), "@everyone ``` done".to_owned()];
        let neutralize = crate::util::redact::neutralize;
        let fitted = fit(&all, 2000, neutralize, |s| s.chars().count());
        assert_eq!(fitted.lines.len(), 2);
        assert_eq!(fitted.lines[0].chars().count(), MAX_LINE);
        assert!(fitted.shortened && fitted.cut());
        assert!(!fitted.lines[1].contains("@everyone") && !fitted.lines[1].contains("```"));
        assert!(fitted.cut_note("x").unwrap().contains("shortened"));
    }

    #[test]
    fn no_budget_and_no_lines_are_answers_too() {
        assert_eq!(fit(&lines(3, 5), 0, str::to_owned, |s| s.len()).dropped, 3);
        assert_eq!(fit(&[], 100, str::to_owned, |s| s.len()), Fitted::default());
        assert_eq!(Fitted::default().code_block(), "");
        assert_eq!(headline(1, Some(3)), "Last 1 line of build #3");
        assert_eq!(headline(4, None), "Last 4 lines of the build");
    }
}
