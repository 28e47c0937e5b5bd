//! Reading a config with a long `[[jobs]]` list without building the whole file's TOML tree.
//!
//! `toml` parses a document into one tree before anything is deserialised: every token, every
//! parser event and a map node per table are alive at once. With 100,000 `[[jobs]]` that
//! peaked at 167 MB for a 4 MB file (docs/benchmarks.md, "Start-up"). Here the file is cut at
//! its `[[jobs]]` headers, found with toml's own lexer (so a header-like line inside a
//! multi-line string or a multi-line array is not taken for one). Each job's table is parsed
//! on its own, expanded and deserialised straight into a [`JobConfig`], and dropped; the rest
//! of the file, with the jobs' bytes blanked out (newlines kept, so offsets and line numbers do
//! not move), is parsed as before.
//!
//! This is only a faster way to the same `Config`: whenever anything is unusual (a parse or
//! type error, an expansion problem, `jobs` also written another way) it gives up, and the
//! caller parses the whole file, whose messages (with their lines) are the reference.

use serde::Deserialize;
use toml::de::DeTable;
use toml_parser::lexer::TokenKind;

use crate::config::env::{Env, expand_table};
use crate::config::jobs::JobConfig;

/// The file with its `[[jobs]]` cut out, and the jobs.
pub(crate) struct Split {
    /// The text without the jobs (blanked, same length and lines).
    pub rest: String,
    pub jobs: Vec<JobConfig>,
}

/// Cuts the jobs out of `text` and reads them; `None` when the whole-file parse must decide.
pub(crate) fn split_jobs(text: &str, env: Env<'_>) -> Option<Split> {
    let sections = job_sections(text)?;
    if sections.is_empty() {
        return None;
    }
    let mut rest = text.as_bytes().to_vec();
    let mut jobs = Vec::with_capacity(sections.len());
    for (header, body) in sections {
        jobs.push(read_job(&text[body.clone()], env)?);
        for b in &mut rest[header.start..body.end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    // Only ASCII bytes were written over whole sections: still UTF-8.
    let rest = String::from_utf8(rest).ok()?;
    Some(Split { rest, jobs })
}

/// One job's table, parsed as a document of its own (its keys are the table's keys).
fn read_job(body: &str, env: Env<'_>) -> Option<JobConfig> {
    let mut table = DeTable::parse(body).ok()?;
    let mut problems = Vec::new();
    expand_table(table.get_mut(), env, &mut problems);
    if !problems.is_empty() {
        return None;
    }
    JobConfig::deserialize(toml::de::Deserializer::from(table)).ok()
}

/// For each `[[jobs]]` header: its bytes from the start of its line, and the body after it up
/// to the next header (or the end). `None` when the brackets do not balance (the whole-file
/// parse reports that).
fn job_sections(text: &str) -> Option<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
    let mut sections = Vec::new();
    // (header start, body start) of the section being read.
    let mut open: Option<(usize, usize)> = None;
    // Brackets and braces of values: a `[` at the start of a line is a header only outside them.
    let mut depth = 0usize;
    let mut line_start = Some(0);
    let mut tokens = toml_parser::Source::new(text).lex().peekable();
    while let Some(token) = tokens.next() {
        let span = token.span();
        match token.kind() {
            TokenKind::Newline => line_start = Some(span.end()),
            TokenKind::Whitespace => {}
            TokenKind::LeftSquareBracket if depth == 0 && line_start.is_some() => {
                let start = line_start.take().unwrap_or(span.start());
                // The header's tokens up to its end of line.
                let mut header = vec![(token.kind(), span.start(), span.end())];
                let mut end = text.len();
                for t in tokens.by_ref() {
                    if t.kind() == TokenKind::Newline {
                        end = t.span().end();
                        line_start = Some(end);
                        break;
                    }
                    header.push((t.kind(), t.span().start(), t.span().end()));
                }
                if let Some((header_start, body_start)) = open.take() {
                    sections.push((header_start..body_start, body_start..start));
                }
                if is_jobs_array_header(text, &header) {
                    open = Some((start, end));
                }
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = None;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
                line_start = None;
            }
            TokenKind::Eof => break,
            _ => line_start = None,
        }
    }
    if depth != 0 {
        return None;
    }
    if let Some((header_start, body_start)) = open {
        sections.push((header_start..body_start, body_start..text.len()));
    }
    Some(sections)
}

/// Exactly `[[jobs]]` (spaces around the key and a trailing comment allowed).
fn is_jobs_array_header(text: &str, header: &[(TokenKind, usize, usize)]) -> bool {
    let significant: Vec<_> = header
        .iter()
        .filter(|(kind, ..)| !matches!(kind, TokenKind::Whitespace | TokenKind::Comment))
        .collect();
    let [open1, open2, key, close1, close2] = significant.as_slice() else {
        return false;
    };
    open1.0 == TokenKind::LeftSquareBracket
        && open2.0 == TokenKind::LeftSquareBracket
        && open1.2 == open2.1
        && key.0 == TokenKind::Atom
        && &text[key.1..key.2] == "jobs"
        && close1.0 == TokenKind::RightSquareBracket
        && close2.0 == TokenKind::RightSquareBracket
        && close1.2 == close2.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ids(text: &str) -> Option<Vec<String>> {
        split_jobs(text, &no_env).map(|s| s.jobs.into_iter().map(|j| j.id).collect())
    }

    const A: &str = "f5af662119404ad187437cd272b5099b";
    const B: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn jobs_are_cut_out_and_the_rest_keeps_its_lines() {
        let text = format!(
            "[codearts]\nregion = \"r\"\n[[jobs]]\nid = \"{A}\"\nchannels = [\n  \"a\",\n]\n\
             [[ jobs ]] # spaced\nid = \"{B}\"\n[[channels]]\nname = \"a\"\n"
        );
        let split = split_jobs(&text, &no_env).expect("split");
        assert_eq!(split.jobs.len(), 2);
        assert_eq!(split.jobs[0].channels, Some(vec!["a".to_owned()]));
        assert_eq!(split.jobs[1].id, B);
        assert_eq!(split.rest.len(), text.len());
        assert_eq!(split.rest.lines().count(), text.lines().count());
        assert!(!split.rest.contains("jobs"), "{}", split.rest);
        assert!(split.rest.contains("[[channels]]\nname = \"a\""));
    }

    #[test]
    fn header_lookalikes_in_strings_and_arrays_are_not_headers() {
        let in_string = format!("x = \"\"\"\n[[jobs]]\nid = \"{A}\"\n\"\"\"\n");
        assert_eq!(ids(&in_string), None, "no real [[jobs]]: nothing to cut");
        let in_array = format!("x = [\n[[jobs]]\nid = \"{A}\"\n[1]]\n");
        assert_eq!(ids(&in_array), None);
    }

    /// Both ways of reading give the same `Config` on every file the fast way accepts.
    #[test]
    fn jobs_apart_read_the_same_config_as_the_whole_file() {
        let env = |name: &str| (name == "JOB").then(|| B.to_owned());
        let head =
            "\u{feff}[codearts]\r\nregion = \"cn-north-4\"\r\n[codearts.auth]\ntoken = \"t\"\n";
        let channels =
            "[[channels]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"https://x.invalid/\"\n";
        let texts = [
            format!("{head}[[jobs]]\nid = \"{A}\"\n"),
            format!(
                "{head}{channels}secret = '''\n[[jobs]]\nid = \"{B}\"\n'''\n[[jobs]] # first\r\nid = \"{A}\"\n\
                 channels = [\n  \"a\", # the only one\n]\nproject = \"p1\"\n\n\
                 [[jobs]]\nid = \"${{JOB}}\"\n[poll]\nconcurrency = 3\n"
            ),
            format!("{head}[[jobs]]\nid = \"{A}\"\n{channels}[[jobs]]\nid = \"{B}\"\n"),
        ];
        for text in texts {
            let apart = Config::with_jobs_apart(&text, &env).expect("read apart");
            let mut problems = Vec::new();
            let whole = Config::whole_file(&text, &env, &mut problems).expect("whole");
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(format!("{apart:?}"), format!("{whole:?}"), "{text}");
        }
        // `jobs` written as an array too: left to the whole-file parse (which refuses it).
        let both = format!("{head}jobs = []\n[[jobs]]\nid = \"{A}\"\n");
        assert!(Config::with_jobs_apart(&both, &env).is_none());
        assert!(Config::from_toml(&both, "t", &env).is_err());
    }

    #[test]
    fn anything_unusual_is_left_to_the_whole_file_parse() {
        // A type error, an unknown key, an empty table, an unbalanced bracket, a quoted key.
        for text in [
            "[[jobs]]\nid = 1\n".to_owned(),
            format!("[[jobs]]\nid = \"{A}\"\nnope = 1\n"),
            "[[jobs]]\n".to_owned(),
            format!("[[jobs]]\nid = \"{A}\"\nchannels = [\"a\"\n"),
            "[[jobs]]\nid = \"${MISSING}\"\n".to_owned(),
        ] {
            assert_eq!(ids(&text), None, "{text}");
        }
        assert_eq!(ids(&format!("[[\"jobs\"]]\nid = \"{A}\"\n")), None);
    }
}
