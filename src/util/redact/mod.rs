//! Scrubs text fetched from a build (log lines, commit messages, error messages) before it is
//! stored or sent: values that look like credentials become [`MARK`], every secret of the bot's
//! own configuration too, and chat mentions and code fences are made inert so the text can sit
//! in a code block of any platform. Pure: no I/O, no state between calls but the [`Redactor`]'s
//! literals. The rules and their limits are in docs/redaction.md.
//!
//! Hand-written scanning rather than regular expressions: every rule is one pass over the line
//! (a few passes in all), so no input can make it slow.

mod scan;

use std::fmt;

use super::text::ZWSP;

pub use scan::MARK;

/// Literal secrets shorter than this are not matched: a two-letter "secret" would blank every
/// word that contains it, and a literal that short protects nothing anyway.
pub const MIN_LITERAL_LEN: usize = 6;

/// Scrubs text of credentials: the pattern rules of [`scan`] plus the literal secrets it was
/// built with (the bot's own tokens, passwords, keys and webhook URLs).
///
/// `Debug` shows only how many literals it holds, never them.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    literals: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("literals", &self.literals.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor that also replaces each of `secrets` wherever it appears (case-sensitive).
    /// Empty secrets, and secrets shorter than [`MIN_LITERAL_LEN`] characters after trimming,
    /// are ignored.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut literals: Vec<String> = secrets
            .into_iter()
            .map(|s| s.as_ref().trim().to_owned())
            .filter(|s| s.chars().count() >= MIN_LITERAL_LEN)
            .collect();
        literals.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        literals.dedup();
        Self { literals }
    }

    /// How many literal secrets it matches.
    pub fn literal_count(&self) -> usize {
        self.literals.len()
    }

    /// One line: control characters and terminal escapes removed, literal secrets and
    /// credential-shaped values replaced by [`MARK`] (a PEM block starting on the line is
    /// redacted to its end, or to the end of the line), then mentions and code fences made
    /// inert.
    pub fn line(&self, line: &str) -> String {
        let cleaned = scan::strip_controls(line);
        let mut text = self.credentials(&cleaned);
        if let Some(begin) = pem_begin(&text) {
            let rest_at = pem_end(&text[begin..]).map(|end| begin + end);
            let mut cut = text[..begin].to_owned();
            cut.push_str(MARK);
            if let Some(rest) = rest_at {
                cut.push_str(&text[rest..]);
            }
            text = cut;
        }
        neutralize(&text)
    }

    /// Lines of a log, in order, each as [`Redactor::line`] scrubs it, with PEM blocks followed
    /// across lines: the line where a block begins keeps its text before the block and ends in
    /// one [`MARK`]; the block's other lines, up to and including its `-----END …-----` line,
    /// are left out (a block that never ends takes every line after it). A tail that starts
    /// inside a block, with no `BEGIN` before it, is caught by the body lines' shape (base64
    /// runs) and the lone `END` line, each replaced by [`MARK`].
    pub fn lines<I, S>(&self, lines: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        let mut in_block = false;
        for line in lines {
            let line = scan::strip_controls(line.as_ref());
            if in_block {
                if let Some(end) = pem_end(&line) {
                    in_block = false;
                    let rest = line[end..].trim();
                    if !rest.is_empty() {
                        out.push(self.line(rest));
                    }
                }
                continue;
            }
            let scrubbed = self.credentials(&line);
            match pem_begin(&scrubbed) {
                Some(begin) => {
                    let mut kept = scrubbed[..begin].to_owned();
                    kept.push_str(MARK);
                    match pem_end(&scrubbed[begin..]) {
                        Some(end) => kept.push_str(&scrubbed[begin + end..]),
                        None => in_block = true,
                    }
                    out.push(neutralize(&kept));
                }
                None if is_pem_end_line(&scrubbed) || scan::is_key_body_line(&scrubbed) => {
                    out.push(MARK.to_owned());
                }
                None => out.push(neutralize(&scrubbed)),
            }
        }
        out
    }

    /// A block of text (lines separated by `\n`, `\r\n` tolerated), scrubbed as
    /// [`Redactor::lines`] does and joined again with `\n`.
    pub fn block(&self, text: &str) -> String {
        self.lines(text.split('\n')).join("\n")
    }

    /// The credential rules on one line, without the mention and fence neutralisation.
    fn credentials(&self, line: &str) -> String {
        let mut text = self.replace_literals(line);
        text = scan::header_values(&text);
        text = scan::auth_schemes(&text);
        text = scan::url_userinfo(&text);
        text = scan::key_values(&text);
        text = scan::flag_values(&text);
        scan::shaped_tokens(&text)
    }

    fn replace_literals(&self, line: &str) -> String {
        let mut text = line.to_owned();
        for literal in &self.literals {
            if text.contains(literal.as_str()) {
                text = text.replace(literal.as_str(), MARK);
            }
        }
        text
    }
}

/// Makes chat mentions and code fences inert with a zero-width space: `@everyone`, `@here`,
/// `@all` (Feishu, DingTalk), `<@…>` / `<@&…>` (Discord users and roles), `<!…>` (Slack's
/// `<!channel>`, `<!here>`, `<!subteam^…>`), and any run of three or more backticks, which
/// would close the code block the text is shown in.
pub fn neutralize(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'@' if ["everyone", "here", "all"]
                .iter()
                .any(|word| starts_with_word(&bytes[i + 1..], word.as_bytes())) =>
            {
                out.push_str(&text[copied..=i]);
                out.push(ZWSP);
                copied = i + 1;
            }
            b'<' if matches!(bytes.get(i + 1), Some(b'@' | b'!')) => {
                out.push_str(&text[copied..=i]);
                out.push(ZWSP);
                copied = i + 1;
            }
            b'`' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
                if run >= 3 {
                    out.push_str(&text[copied..i]);
                    for k in 0..run {
                        if k > 0 {
                            out.push(ZWSP);
                        }
                        out.push('`');
                    }
                    copied = i + run;
                }
                i += run;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// `rest` starts with `word` (ASCII case-insensitive) not followed by a letter or digit.
fn starts_with_word(rest: &[u8], word: &[u8]) -> bool {
    rest.len() >= word.len()
        && rest[..word.len()].eq_ignore_ascii_case(word)
        && !rest.get(word.len()).is_some_and(u8::is_ascii_alphanumeric)
}

/// Where a PEM `-----BEGIN <LABEL>-----` starts in `text`.
fn pem_begin(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("-----BEGIN ") {
        let start = from + at;
        let label_from = start + "-----BEGIN ".len();
        if pem_label_closes(&text[label_from..]) {
            return Some(start);
        }
        from = label_from;
    }
    None
}

/// Where the text after a PEM `-----END <LABEL>-----` starts in `text`.
fn pem_end(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("-----END ") {
        let label_from = from + at + "-----END ".len();
        if let Some(len) = pem_label_len(&text[label_from..]) {
            return Some(label_from + len + "-----".len());
        }
        from = label_from;
    }
    None
}

/// A line holding only a PEM end marker.
fn is_pem_end_line(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("-----END ") && pem_end(trimmed) == Some(trimmed.len())
}

fn pem_label_closes(rest: &str) -> bool {
    pem_label_len(rest).is_some()
}

/// The length of a PEM label (upper-case letters, digits and spaces, 1 to 40 of them) when it
/// is followed by `-----`.
fn pem_label_len(rest: &str) -> Option<usize> {
    let len = rest
        .bytes()
        .take(41)
        .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' ')
        .count();
    ((1..=40).contains(&len) && rest[len..].starts_with("-----")).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn literal_secrets_are_replaced_everywhere_but_short_ones_are_ignored() {
        let r = Redactor::new(["s3cr3t-webhook-token", "", "  ", "abc", "hunter22"]);
        assert_eq!(r.literal_count(), 2);
        assert_eq!(
            r.line("posting to https://x.test/hook/s3cr3t-webhook-token?x=hunter22 ok"),
            "posting to https://x.test/hook/[redacted]?x=[redacted] ok"
        );
        assert_eq!(r.line("abc and abcdef stay"), "abc and abcdef stay");
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("hunter22") && shown.contains('2'),
            "{shown}"
        );
    }

    #[test]
    fn a_literal_that_contains_another_is_replaced_whole() {
        let r = Redactor::new(["token-1234", "token-1234-extra"]);
        assert_eq!(r.line("x token-1234-extra y"), "x [redacted] y");
    }

    #[test]
    fn mentions_and_fences_are_made_inert() {
        let z = ZWSP;
        assert_eq!(neutralize("hi @everyone"), format!("hi @{z}everyone"));
        assert_eq!(neutralize("@here now"), format!("@{z}here now"));
        assert_eq!(neutralize("@ALL"), format!("@{z}ALL"));
        assert_eq!(
            neutralize("<@123> <@&456>"),
            format!("<{z}@123> <{z}@&456>")
        );
        assert_eq!(
            neutralize("<!channel> <!here>"),
            format!("<{z}!channel> <{z}!here>")
        );
        assert_eq!(
            neutralize("```rm -rf```"),
            format!("`{z}`{z}`rm -rf`{z}`{z}`")
        );
        assert_eq!(neutralize("a ``b`` c"), "a ``b`` c");
        for innocent in [
            "mail dev@example.com",
            "@herein",
            "@alliance",
            "a < b",
            "x`y`",
        ] {
            assert_eq!(neutralize(innocent), innocent);
        }
    }

    #[test]
    fn a_pem_block_is_one_mark_and_its_lines_are_left_out() {
        let log = [
            "writing key",
            "key: -----BEGIN RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
            "-----END RSA PRIVATE KEY-----",
            "done",
        ];
        assert_eq!(
            plain().lines(log),
            vec!["writing key", "key: [redacted]", "done"]
        );
    }

    #[test]
    fn a_pem_block_that_never_ends_takes_the_rest() {
        let log = ["-----BEGIN PRIVATE KEY-----", "MIIEvQ", "more"];
        assert_eq!(plain().lines(log), vec!["[redacted]"]);
    }

    #[test]
    fn a_tail_that_starts_inside_a_key_shows_no_key_material() {
        let log = [
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
            "dHJ1bmNhdGVkS2V5TWF0ZXJpYWw=",
            "-----END OPENSSH PRIVATE KEY-----",
            "next step",
        ];
        assert_eq!(
            plain().lines(log),
            vec!["[redacted]", "[redacted]", "[redacted]", "next step"]
        );
    }

    #[test]
    fn a_pem_block_inside_one_line_keeps_what_follows_it() {
        assert_eq!(
            plain().line("cert -----BEGIN CERTIFICATE-----MIIB-----END CERTIFICATE----- loaded"),
            "cert [redacted] loaded"
        );
        assert_eq!(
            plain().line("-----BEGIN EC PRIVATE KEY----- MHcCAQEEI"),
            "[redacted]"
        );
        assert_eq!(plain().line("-----BEGIN nothing"), "-----BEGIN nothing");
    }

    #[test]
    fn block_splits_scrubs_and_joins() {
        let r = Redactor::new(["hunter22"]);
        assert_eq!(
            r.block("a hunter22\r\nb @here\n"),
            format!("a [redacted]\nb @{ZWSP}here\n")
        );
    }

    #[test]
    fn a_failing_build_log_keeps_its_story_and_loses_its_secrets() {
        let r = Redactor::new(["my-webhook-secret-42"]);
        let log = [
            "[INFO] Cloning https://ci:hunter2@codehub.example.com/team/web.git",
            "[INFO] mvn -Ddb.password=hunter2 package",
            "curl -H 'Authorization: Bearer abc123def456ghi789' https://api.test/v1",
            "export CLOUD_SDK_AK=HPUAL6NHO1XQ4KSVPX9Z",
            "notify @everyone via https://hooks.test/my-webhook-secret-42",
            "[ERROR] Tests run: 12, Failures: 2, Errors: 0, Skipped: 1",
            "[ERROR] BUILD FAILURE at commit 4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a",
        ];
        let out = r.lines(log).join("\n");
        for secret in [
            "hunter2",
            "abc123def456ghi789",
            "HPUAL6NHO1XQ4KSVPX9Z",
            "my-webhook-secret-42",
        ] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(!out.contains("@everyone"), "{out}");
        assert!(
            out.contains("Tests run: 12, Failures: 2, Errors: 0, Skipped: 1"),
            "{out}"
        );
        assert!(
            out.contains("4a1c5e0b9d2f7e6a8c3b1d0e9f8a7b6c5d4e3f2a"),
            "{out}"
        );
        assert!(out.contains("codehub.example.com/team/web.git"), "{out}");
    }

    #[test]
    fn innocent_lines_are_unchanged() {
        let r = Redactor::new(["correct-horse-battery"]);
        let innocent = [
            "[INFO] BUILD SUCCESS",
            "Total time:  01:02 min",
            "Finished at: 2024-07-24T10:11:12+08:00",
            "Compiling tokenizer v0.15.2",
            "npm WARN deprecated inflight@1.0.6: This module is not supported",
            "remote: Counting objects: 100% (12/12), done.",
            "Step 3/7 : RUN make -j4",
            "HEAD is now at 4a1c5e0 fix: keys are read from the vault",
            "Downloaded from central: https://repo.maven.apache.org/maven2/org/x/1.0/x-1.0.pom",
            "git@github.com:org/repo.git",
            "Tests: 12 passed, 0 failed",
            "password policy checked",
            "if (a == b && c != d) { return; }",
            "PWD=/home/build/workspace",
            "构建成功 ✅",
            "\tat com.example.App.main(App.java:42)",
            "",
        ];
        for line in innocent {
            assert_eq!(r.line(line), line);
        }
        assert_eq!(r.lines(innocent), innocent);
    }

    #[test]
    fn control_characters_and_terminal_colours_are_removed() {
        assert_eq!(
            plain().line("\u{1b}[31mERROR\u{1b}[0m build\u{7} failed\r"),
            "ERROR build failed"
        );
        assert_eq!(plain().line("tab\tkept"), "tab\tkept");
    }
}
