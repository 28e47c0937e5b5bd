//! DownloadBuildRealTimeLog (`GET /v1/log/{job_id}/{build_no}/real-time-log`): the query
//! ([`LogQuery`]), one answer ([`LogChunk`]) and the tail the bot shows ([`LogTail`]).
//!
//! The reference does not say what its offsets and `size` count. The client assumes lines,
//! returned in reading order even with `sort=DESC` (which picks the window from the end), as
//! the simulator serves them; docs/codearts.md says how a different answer would show.
//! Log text is as the build printed it: scrub it with [`crate::util::redact`] before it is
//! stored or sent. `Debug` shows sizes, never the text.

use std::fmt;

use serde::Deserialize;

use super::builds::result_as;
use super::model::{ParseError, lenient};

/// The most lines a tail asks for (the documented default `size`).
pub const MAX_TAIL_LINES: usize = 1000;

/// Which way a log window is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// From `start_offset` on (`sort=ASC`).
    #[default]
    Ascending,
    /// The last `size` lines before `end_offset` (`sort=DESC`): the tail.
    Descending,
}

/// The query of one log call; `None` leaves a parameter out (the API's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogQuery {
    pub start_offset: Option<u64>,
    pub end_offset: Option<u64>,
    pub sort: Sort,
    pub size: Option<u64>,
}

impl LogQuery {
    /// The last `lines` lines.
    pub fn tail(lines: usize) -> Self {
        Self {
            sort: Sort::Descending,
            size: Some(u64::try_from(lines.clamp(1, MAX_TAIL_LINES)).unwrap_or(1)),
            ..Self::default()
        }
    }

    /// The query string, without the `?`.
    pub fn to_query(self) -> String {
        let mut pairs = Vec::new();
        if let Some(n) = self.start_offset {
            pairs.push(format!("start_offset={n}"));
        }
        if let Some(n) = self.end_offset {
            pairs.push(format!("end_offset={n}"));
        }
        pairs.push(
            match self.sort {
                Sort::Ascending => "sort=ASC",
                Sort::Descending => "sort=DESC",
            }
            .to_owned(),
        );
        if let Some(n) = self.size {
            pairs.push(format!("size={n}"));
        }
        pairs.join("&")
    }
}

/// One answer (`OctopusV3LogResponseBodyResult`).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LogChunk {
    /// The text, lines separated by `\n` (may be empty: "request again").
    #[serde(deserialize_with = "lenient::opt_text")]
    pub log: Option<String>,
    /// Whether lines remain in the reading direction.
    #[serde(deserialize_with = "lenient::opt_bool")]
    pub has_more: Option<bool>,
    /// The window returned (strings in the SDK).
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub start_offset: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_i64")]
    pub end_offset: Option<i64>,
    #[serde(deserialize_with = "lenient::opt_text")]
    pub location: Option<String>,
}

impl fmt::Debug for LogChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogChunk")
            .field("log_bytes", &self.log.as_ref().map_or(0, String::len))
            .field("has_more", &self.has_more)
            .field("start_offset", &self.start_offset)
            .field("end_offset", &self.end_offset)
            .finish_non_exhaustive()
    }
}

impl LogChunk {
    /// The lines of the text: `\r\n` read as `\n`, a final newline not counted as an empty
    /// last line.
    pub fn lines(&self) -> Vec<String> {
        let text = self.log.as_deref().unwrap_or_default();
        if text.is_empty() {
            return Vec::new();
        }
        text.strip_suffix('\n')
            .unwrap_or(text)
            .split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
            .collect()
    }
}

/// The last lines of a build's log, oldest first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    pub lines: Vec<String>,
    /// Earlier lines exist that are not in `lines`.
    pub truncated: bool,
}

impl fmt::Debug for LogTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogTail")
            .field("lines", &self.lines.len())
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl LogTail {
    /// The last `want` lines of `chunk` (an answer to [`LogQuery::tail`]): if the API sent
    /// more than asked, the earlier ones are dropped and the tail is marked truncated.
    pub fn from_chunk(chunk: &LogChunk, want: usize) -> Self {
        let mut lines = chunk.lines();
        let extra = lines.len().saturating_sub(want);
        lines.drain(..extra);
        Self {
            lines,
            truncated: extra > 0 || chunk.has_more == Some(true),
        }
    }
}

/// Parses a DownloadBuildRealTimeLog 200 body.
pub fn parse_log_chunk(body: &[u8]) -> Result<LogChunk, ParseError> {
    result_as("DownloadBuildRealTimeLog", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_query_asks_for_the_last_lines() {
        assert_eq!(LogQuery::tail(20).to_query(), "sort=DESC&size=20");
        assert_eq!(LogQuery::tail(0).to_query(), "sort=DESC&size=1");
        assert_eq!(LogQuery::tail(50_000).to_query(), "sort=DESC&size=1000");
        let window = LogQuery {
            start_offset: Some(10),
            end_offset: Some(20),
            ..LogQuery::default()
        };
        assert_eq!(window.to_query(), "start_offset=10&end_offset=20&sort=ASC");
    }

    #[test]
    fn a_chunk_reads_with_offsets_as_strings_and_hides_its_text_in_debug() {
        let body = br#"{"result": {"log": "a\r\nb password=x\nc\n", "has_more": true,
            "start_offset": "17", "end_offset": "20", "location": "obs"},
            "error": null, "status": "success"}"#;
        let chunk = parse_log_chunk(body).unwrap();
        assert_eq!(chunk.lines(), ["a", "b password=x", "c"]);
        assert_eq!((chunk.start_offset, chunk.end_offset), (Some(17), Some(20)));
        assert!(!format!("{chunk:?}").contains("password"));
        let tail = LogTail::from_chunk(&chunk, 2);
        assert_eq!(tail.lines, ["b password=x", "c"]);
        assert!(tail.truncated);
        assert!(!format!("{tail:?}").contains("password"));
    }

    #[test]
    fn an_empty_or_null_log_is_no_lines() {
        for body in [
            r#"{"result": {"log": "", "has_more": false}}"#,
            r#"{"result": {"log": null}}"#,
            r#"{"result": {}}"#,
        ] {
            let chunk = parse_log_chunk(body.as_bytes()).unwrap();
            let tail = LogTail::from_chunk(&chunk, 20);
            assert!(tail.lines.is_empty() && !tail.truncated, "{body}");
        }
        assert!(matches!(
            parse_log_chunk(br#"{"result": {"log": {"text": "x"}}}"#),
            Err(ParseError::Malformed(m)) if m.contains("DownloadBuildRealTimeLog")
        ));
    }
}
