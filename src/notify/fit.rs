//! Fitting cards into a platform's size limit: [`Markup`] says how a platform escapes text and
//! counts its limit, [`Line`] is one ranked line of a card, and fitting shortens values and
//! drops the least important lines (never splitting an escape) until the card, or several cards
//! sharing one message, measure within the limit.

use crate::util::text::{MARKER, truncate_by};

/// Rank of the title line: never dropped, only shortened.
pub const RANK_TITLE: u8 = u8::MAX;
/// Rank of the link line: the last to go after the title.
pub const RANK_LINK: u8 = 200;
/// Rank of the delivery id: the first to go.
pub const RANK_DELIVERY: u8 = 1;

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
    use crate::notify::escape::markdown_safe;

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
}
